"""The stepper's trace viewer: one step's whole trace in the browser, every stop a click away.

When a step is taken, :func:`view` packs every quantity of its trace, exactly as the
engine stored it (zlib over the raw little-endian bytes, base64 in the JSON), with what
each of the step's stops shows: its title, equations (LaTeX), words, and each
quantity's statistics and colour limits, all computed here. The browser component in
``ui/components/trace_viewer/`` unpacks it once with the browser's own
``DecompressionStream`` and from then on moves between stops, draws the heatmaps, and
reads the hovered cell without a message to the server.

Two things go back to Python, as trigger values of the component:

* ``cell``: a clicked cell, ``{"view", "stop", "name", "index"}``. :func:`show` answers
  in the same rerun with :func:`explanation` of that cell (``core.teach.explain``, the
  numbers rebuilt by the engine's own rules), which the viewer draws. The answer goes in a
  small element of its own (``answer.js``), so the viewer's element, the whole step, is
  unchanged and Streamlit sends only a reference to it.
* ``train``: "Train one mini-batch". The page's ``on_train`` callback takes the step.

Equations are typeset in the browser by KaTeX, vendored in ``static/katex`` and served by
Streamlit's static file serving (``/app/static/katex/``): nothing comes from the internet.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import html
import math
import re
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import plotly.colors
import streamlit as st

from core.engine.history import TYPICAL_RATIO
from core.engine.network import Trace, loss_after_update
from core.teach.explain import Explanation, explain
from ui.figures import DIGIT_COLOURS, DIGITS, SIGNED, UNSIGNED, is_signed, stats
from ui.stepper_views import (PER_SAMPLE, PHASE_ICONS, PHASE_TITLES, axis_titles, build_stops, row_columns,
                              row_inputs, shape_text, stats_caption, stop_text, update_ratio)

ASSETS = Path(__file__).parent / "components" / "trace_viewer"
KATEX_URL = "app/static/katex/"     # relative to the page, so a server.baseUrlPath is kept
KINDS = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64", np.dtype(np.uint8): "uint8",
         np.dtype(np.int32): "int32"}   # the typed arrays the browser makes of the bytes
TERMS_SHOWN = 12

_mount = st.components.v2.component(
    "backprop.trace_viewer",
    html=(ASSETS / "viewer.html").read_text(encoding="utf-8"),
    css=(ASSETS / "viewer.css").read_text(encoding="utf-8"),
    js=(ASSETS / "viewer.js").read_text(encoding="utf-8"),
)
_mount_answer = st.components.v2.component("backprop.trace_viewer_answer",
                                           js=(ASSETS / "answer.js").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the arrays
def pack(arrays: dict[str, np.ndarray]) -> tuple[str, list[dict]]:
    """Every array's bytes, little-endian, each starting at a multiple of 8 (so the browser
    can view it as a typed array in place), in one zlib stream, base64-encoded; and the
    index: name, dtype, shape and byte offset of each."""
    chunks, index, offset = [], [], 0
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype not in KINDS:
            if a.dtype.kind in "iub" and a.size and (a.min() < -2**31 or a.max() >= 2**31):
                raise ValueError(f"{name}: integers too large for the browser's Int32Array.")
            a = a.astype(np.int32 if a.dtype.kind in "iub" else np.float64)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)      # tobytes() is in C order whatever the layout
        pad = -offset % 8
        chunks.append(bytes(pad))
        offset += pad
        index.append({"name": name, "dtype": KINDS[a.dtype.newbyteorder("=")], "shape": list(a.shape),
                      "offset": offset, "length": int(a.size)})
        chunks.append(a.tobytes())
        offset += a.nbytes
    return base64.b64encode(zlib.compress(b"".join(chunks), 1)).decode("ascii"), index


def unpack(blob: str, index: list[dict]) -> dict[str, np.ndarray]:
    """The arrays :func:`pack` packed (what the browser does, in Python: for tests)."""
    raw = zlib.decompress(base64.b64decode(blob))
    return {e["name"]: np.frombuffer(raw, np.dtype(e["dtype"]).newbyteorder("<"), e["length"],
                                     e["offset"]).reshape(tuple(e["shape"])) for e in index}


# --------------------------------------------------------------------------- words and numbers
_MARKS = ((re.compile(r"`([^`]+)`"), r"<code>\1</code>"), (re.compile(r"\*\*(.+?)\*\*"), r"<b>\1</b>"),
          (re.compile(r"\*(.+?)\*"), r"<i>\1</i>"))


def md_html(text: str) -> str:
    """The little markdown the stepper's texts use (``code``, **bold**, *italic*) as HTML;
    everything else escaped."""
    out = html.escape(text, quote=False)
    for pattern, repl in _MARKS:
        out = pattern.sub(repl, out)
    return out.replace("  \n", "<br>")


def num(x) -> float | None:
    """A float for JSON, which has no NaN or infinity (the browser's JSON.parse rejects them)."""
    x = float(x)
    return x if math.isfinite(x) else None


def fmt(x, spec: str = ".4g") -> str:
    x = float(x)
    return format(x, spec) if math.isfinite(x) else {math.inf: "∞", -math.inf: "−∞"}.get(x, "NaN")


def _lut(name: str) -> str:
    """A plotly colour scale as 256 colours, "rrggbb" each: the browser's look-up table."""
    rgb = plotly.colors.sample_colorscale(plotly.colors.get_colorscale(name), np.linspace(0, 1, 256),
                                          colortype="tuple")
    return "".join("%02x%02x%02x" % tuple(round(255 * c) for c in t) for t in rgb)


@functools.cache
def colour_scales() -> dict[str, str]:
    """The scales of ui.figures.heatmap: diverging for signed data, sequential otherwise,
    grey for the pixels; one colour per digit for the labels."""
    return {"signed": _lut(SIGNED), "unsigned": _lut(UNSIGNED), "grey": _lut(DIGITS),
            "labels": "".join(c.lstrip("#") for c in DIGIT_COLOURS)}


def quantity(trace: Trace, name: str) -> dict:
    """What the viewer shows of one quantity besides its numbers: shape, axes, statistics,
    and the colour scale with its limits (a signed scale is centred on 0, like ui.figures.heatmap)."""
    a = np.asarray(trace[name])
    spec = trace.spec(name)
    x_title, y_title = axis_titles(name, trace.n_layers)
    if a.ndim == 1 and name not in PER_SAMPLE:
        y_title = ""
    s = stats(a)
    finite = np.asarray(a, np.float64)[np.isfinite(a)] if a.size else np.zeros(0)
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if name == "y":
        scale, lo, hi = "labels", 0.0, float(len(DIGIT_COLOURS) - 1)
    elif name == "X":
        scale, lo, hi = "grey", 0.0, max(hi, 1.0)
    elif is_signed(finite) or lo == hi == 0:           # all zeros: white, the middle of the signed scale
        scale = "signed"
        hi = float(np.abs(finite).max()) or 1.0
        lo = -hi
    else:
        scale = "unsigned"
    return {"name": name, "shape": list(a.shape), "shape_text": shape_text(a), "latex": spec.latex,
            "about": spec.about, "phase": spec.phase, "rows": y_title, "cols": x_title,
            "per_sample": name in PER_SAMPLE, "scale": scale, "lo": lo, "hi": hi,
            **dict(zip(("lo_text", "hi_text"), limits_text(lo, hi))),
            "stats": {k: num(v) for k, v in s.items()}, "stats_text": stats_caption(a),
            "text": fmt(a) if a.ndim == 0 else ""}


def limits_text(lo: float, hi: float) -> tuple[str, str]:
    """The colour bar's ends, with as many digits as it takes to tell them apart (up to 6)."""
    for digits in range(3, 7):
        a, b = fmt(lo, f".{digits}g"), fmt(hi, f".{digits}g")
        if a != b or lo == hi:
            break
    return a, b


# --------------------------------------------------------------------------- the step
def view(trace: Trace) -> dict:
    """Everything the viewer needs of one step: its arrays (packed) and, for each of its
    stops, what to draw and say. ``id`` names the step's numbers (a digest of the packed
    arrays): the browser unpacks a view only when its id is new."""
    blob, index = pack({n: trace[n] for n in trace})
    stops, L = build_stops(trace), trace.n_layers
    loss_after = loss_after_update(trace)
    out_stops = []
    for stop in stops:
        rows = []
        for row in stop.rows:
            ins = row_inputs(trace, row)
            shown = [n for n in ins + list(row) if n != "loss"]
            rows.append({"inputs": [n for n in ins if n != "loss"], "outputs": [n for n in row if n != "loss"],
                         "weights": dict(zip(shown, row_columns(trace, shown, row)))})
        d = {"key": stop.key, "phase": stop.phase, "layer": stop.layer, "title": stop.title,
             "names": list(stop.names), "rows": rows, "equations": [trace.spec(n).latex for n in stop.names],
             "text": md_html(stop_text(stop, trace)),
             "notes": [{"name": n, "about": trace.spec(n).about} for n in stop.names]}
        if "loss" in stop.names:
            d["facts"] = [{"label": "loss = mean of the losses", "value": fmt(trace.loss), "id": "loss"}]
        if stop.phase == "update" and stop.key.startswith("ΔW"):
            ratio = update_ratio(trace, stop.layer)
            d["facts"] = [
                {"label": f"‖ΔW{stop.layer}‖ / ‖W{stop.layer}‖", "value": fmt(ratio, ".2e"), "id": "ratio",
                 "help": f"Karpathy's rule of thumb: around {TYPICAL_RATIO:g} is healthy."},
                {"label": "this batch's loss before the update", "value": fmt(trace.loss), "id": "loss-before"},
                {"label": "and after it (same batch, new parameters)",
                 "value": fmt(loss_after) if loss_after is not None else "–", "id": "loss-after"}]
        out_stops.append(d)
    return {
        "id": hashlib.blake2b(blob.encode("ascii"), digest_size=8).hexdigest(),
        "blob": blob, "arrays": index,
        "quantities": {n: quantity(trace, n) for n in trace},
        "stops": out_stops,
        "phases": [{"key": p, "title": PHASE_TITLES[p], "icon": PHASE_ICONS[p]} for p in PHASE_TITLES
                   if any(s.phase == p for s in stops)],
        "colours": colour_scales(),
        "loss": num(trace.loss), "loss_after": None if loss_after is None else num(loss_after),
        "layers": L,
    }


def digest(trace: Trace) -> str:
    """A name for the trace's numbers (and which names they have), cheaper than packing them."""
    h = hashlib.blake2b(digest_size=16)
    for n in trace:
        a = np.ascontiguousarray(trace[n])
        h.update(f"{n}{a.dtype.str}{a.shape}".encode())
        h.update(a.data if a.size else b"")
    h.update(repr(trace.hyper).encode())
    return h.hexdigest()


@st.cache_data(max_entries=8, show_spinner=False)
def _cached_view(key: str, _trace: Trace) -> dict:
    """:func:`view`, made once per step's numbers (``key``: :func:`digest`), shared read-only."""
    return view(_trace)


# --------------------------------------------------------------------------- one number, explained
def explanation(trace: Trace, name: str, index, *, optimizer=None, view_id: str = "") -> dict:
    """:func:`core.teach.explain.explain` of one cell, ready to draw: its rule and the rule with
    the numbers in (LaTeX), the note, the largest terms, and the check of recomputed against
    stored; ``value`` and ``total`` are explain's floats themselves."""
    ex = explain(trace, name, index, optimizer=optimizer)
    top, n_rest, rest = ex.top(TERMS_SHOWN)
    terms = [{"term": t.label, "numbers": " × ".join(f"{f:.5g}" for f in t.factors),
              "contribution": fmt(t.value, ".5g")} for t in top] if len(ex.terms) > 1 or ex.combine == "sum" else []
    more = ""
    if n_rest and terms:
        nz = sum(1 for t in ex.terms[TERMS_SHOWN:] if t.value != 0)
        more = (f"…and {n_rest} smaller terms ({nz} of them non-zero) adding up to {rest:.5g}. "
                "Terms are sorted by the size of their contribution.")
    check = ([("sum of all terms", ex.sum_of_terms)] if ex.combine == "sum" else []) + list(ex.details) + [
        ("recomputed from the inputs (float64)", ex.total), ("value in the trace", ex.value),
        ("difference", ex.total - ex.value)]
    return {"view": view_id, "name": name, "index": list(ex.index),
            "cell": f"{name}[{', '.join(map(str, ex.index))}]" if ex.index else name,
            "rule": ex.rule, "substituted": ex.substituted, "note": md_html(ex.note),
            "terms": terms, "more": more,
            "check": [{"label": label, "value": fmt(v, ".10g")} for label, v in check],
            "value": num(ex.value), "total": num(ex.total), "verdict": verdict(ex)}


def verdict(ex: Explanation) -> str:
    if ex.combine == "input":
        return "An input of the step: nothing in this step computed it."
    if ex.error > 1e-6 * max(1.0, abs(ex.value)):
        return "The recomputed number differs from the stored one by more than float32 rounding."
    return "The recomputed total equals the cell (up to float32 rounding of the stored value)."


# --------------------------------------------------------------------------- on the page
def asked_cell(values, view_id: str) -> dict | None:
    """The cell clicked that made this rerun, from the viewer's values in st.session_state
    (a trigger value: there for one rerun only), if it belongs to the view ``view_id`` and
    names a cell."""
    cell = values.get("cell") if hasattr(values, "get") else None
    if not isinstance(cell, dict) or cell.get("view") != view_id:
        return None
    if not isinstance(cell.get("name"), str) or not isinstance(cell.get("index"), list):
        return None
    return cell


def show(trace: Trace, *, key: str = "trace_viewer", step_label: str = "", start: str | None = None,
         optimizer=None, can_train: bool = True, train_help: str = "", reveal: bool = False,
         present: bool = False, on_train: Callable[[], None] | None = None) -> dict | None:
    """Mount the viewer on ``trace``. ``start``: the stop it opens on when the step is new
    (or when ``start`` changes); ``step_label``: the step shown, in words; ``optimizer``: the
    optimizer as it was before the step (what :func:`explain` needs to rebuild a stateful ΔW);
    ``reveal``: scroll the page to the viewer when a new step arrives, so its toolbar, title,
    equations and heatmaps are on screen together; ``present``: larger, darker text (presentation mode).
    ``on_train`` runs (as a callback, before the rerun) when "Train one mini-batch" is
    pressed. Returns the cell a click asked about in this rerun (``{"stop", "name",
    "index"}``), which the viewer now explains, or None."""
    data = _cached_view(digest(trace), trace)
    cell = asked_cell(st.session_state.get(key), data["id"])
    _mount(key=key, data={"key": key, "view": data, "start": start, "step_label": step_label,
                          "can_train": bool(can_train), "train_help": train_help, "reveal": bool(reveal),
                          "present": bool(present), "katex": KATEX_URL},
           on_cell_change=_ignore, on_train_change=on_train or _ignore)
    if cell is not None:
        try:
            answer = explanation(trace, cell["name"], cell["index"], optimizer=optimizer, view_id=data["id"])
        except (KeyError, IndexError, ValueError, TypeError) as err:
            answer = {"view": data["id"], "name": cell["name"], "index": cell["index"], "error": str(err)}
        _mount_answer(key=f"{key}_answer", data={"viewer": key, "answer": answer}, height=0)
    return cell


def _ignore() -> None:
    """The viewer's triggers need a callback to be reported; this one does nothing."""
