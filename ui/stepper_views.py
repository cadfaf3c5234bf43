"""What the stepper page draws: its stops, figures, tables and explanations.

The stepper's logic (``core/lab/stepper.py``) decides *what* is shown and the
page (``pages/stepper.py``) lays it out; this module decides *how*. The figure and table builders take arrays and
return ``go.Figure`` / ``DataFrame``; the ``render_*`` helpers draw a piece of
the page with Streamlit elements but never read or write ``st.session_state``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.teach.explain import Explanation, sample_gradient_norms, sample_gradient_shares
from core.engine.gradcheck import AGREES
from core.engine.history import TYPICAL_RATIO
from core.engine.network import BN_EPS_TEXT, BN_MOMENTUM, RUN, Trace
from ui.figures import DIGIT_COLOURS, DIGITS, bars, digit_grid, heatmap, stats
from ui.present import chart

PHASE_TITLES = {"forward": "Forward pass", "loss": "Loss", "backward": "Backward pass", "update": "Update"}
PHASE_ICONS = {"forward": "→", "loss": "∑", "backward": "←", "update": "Δ"}
ROW_HEIGHT = 380        # figures of one row share a height so their rows line up
VECTOR_HEIGHT = 130
PER_SAMPLE = ("y", "losses")
CLICKABLE_CELLS = 5000  # vectors with one entry per sample, drawn as a column


# --------------------------------------------------------------------------- the stops
@dataclass(frozen=True)
class Stop:
    """One place the stepper can stand: a phase, a layer, and the quantities it reveals.

    ``rows`` groups the outputs drawn together; each row also shows the inputs
    of its equations (from the trace's records) to their left.
    """

    key: str                           # the name in the URL: "Z1", "losses", "ΔW1", …
    phase: str
    layer: int
    rows: tuple[tuple[str, ...], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for row in self.rows for n in row)

    @property
    def title(self) -> str:
        layer = f" · layer {self.layer}" if self.layer and self.key not in ("losses",) else ""
        return f"{PHASE_TITLES[self.phase]}{layer} · {', '.join(self.names)}"


def build_stops(trace: Trace) -> list[Stop]:
    """The sequence of stops of a trace, read from its records: one per quantity the
    step produces (X with y first, losses with loss, Y with dZ of the output),
    and one per layer for the update (ΔW, W_new, Δb, b_new). With batch norm: μ with σ², Ẑ and N
    of each hidden layer, each of its gradients, and two more update stops per hidden layer
    (Δγ, γ_new, Δβ, β_new; the running μ and σ²). A partial trace (a diverged step) gives only
    the stops it has."""
    stops, names = [], set(trace)
    for rec in trace.records():
        n, ph, l = rec.name, rec.phase, rec.layer
        if ph == "forward":
            if n == "X":
                stops.append(Stop("X", ph, 0, (("X", "y"),)))
            elif n[0] in "ZAẐN":
                stops.append(Stop(n, ph, l, ((n,),)))
            elif n == f"μ{l}":
                stops.append(Stop(n, ph, l, (tuple(x for x in (n, f"σ²{l}") if x in names),)))
        elif ph == "loss" and n == "losses":
            stops.append(Stop("losses", ph, l, (tuple(x for x in ("losses", "loss") if x in names),)))
        elif ph == "backward" and n != "Y":
            first = n.startswith("dZ") and not any(s.phase == "backward" for s in stops) and "Y" in names
            stops.append(Stop(n, ph, l, (("Y", n) if first else (n,),)))
        elif ph == "update" and n.startswith(("ΔW", "Δγ")):
            rows = tuple(tuple(x for x in (f"Δ{p}{l}", f"{p}{l}_new") if x in names)
                         for p in (("W", "b") if n.startswith("ΔW") else ("γ", "β")))
            stops.append(Stop(n, ph, l, tuple(r for r in rows if r)))
        elif ph == "update" and n == f"μ{l}{RUN}_new":
            stops.append(Stop(n, ph, l, (tuple(x for x in (n, f"σ²{l}{RUN}_new") if x in names),)))
    return stops


def row_inputs(trace: Trace, outputs: tuple[str, ...]) -> list[str]:
    """The inputs of the outputs' equations, in order, without the outputs themselves."""
    out = []
    for n in outputs:
        for i in trace.spec(n).inputs:
            if i not in outputs and i not in out and i in trace:
                out.append(i)
    return out


# --------------------------------------------------------------------------- words
def stop_text(stop: Stop, trace: Trace) -> str:
    """A few sentences for a student who has seen the equations once: what this
    matrix is, why it has this shape, what to look at."""
    sizes, L = trace.sizes, trace.n_layers
    m = trace["X"].shape[0]
    l, k = stop.layer, stop.key
    n_in, n_out = (sizes[l - 1], sizes[l]) if 1 <= l <= L else (0, 0)
    below = "X" if l == 1 else f"A{l - 1}"
    if k == "X":
        return (f"**The mini-batch.** `X` holds one image per row (m = {m}) and one column per pixel "
                f"({sizes[0]} = 28 × 28, read row by row), divided by 255 so 0 is background and 1 full ink; "
                "`y` holds the true digits. *Look at:* most of every row is 0; the vertical stripes are "
                "pixels near the centre, where strokes usually are. Every matrix that follows has one row per "
                "sample too." + augment_text(trace))
    if k.startswith("Z") and l < L:
        return (f"**Weighted inputs of layer {l}.** Every unit multiplies each of the {n_in} numbers of a "
                f"sample by its weight, adds them up and adds its bias. For the whole batch at once that is "
                f"one matrix product: ({m} × {n_in}) · ({n_in} × {n_out}) = ({m} × {n_out}). Row i is sample i, "
                f"column j is unit j; `W{l}` has one column per unit, so column j of `W{l}` is unit j's "
                f"{n_in} weights" + (" (a 28 × 28 picture of what it looks for)" if l == 1 else "") +
                f" and `b{l}` is added to every row. *Look at:* early in training `Z{l}` is centred on 0, so "
                "roughly half of it is negative (with the seed's 0.01·N(0,1) weights it also starts tiny).")
    if k.startswith("μ") and stop.phase == "forward":
        return (f"**Batch norm, the batch's statistics.** `μ{l}` is each unit's mean weighted input over the {m} "
                f"samples, `σ²{l}` its variance (divided by m): one number per unit, shape ({n_out},). They are "
                "quantities of *this* batch: another batch gives other ones, and the backward pass goes through "
                f"them. *Look at:* with the seed's tiny weights `σ²{l}` starts tiny too; batch norm is about to "
                "blow it up to 1.")
    if k.startswith("Ẑ"):
        return (f"**Normalised.** `Ẑ{l} = (Z{l} − μ{l}) / √(σ²{l} + ε)`, column by column: every unit now has mean 0 "
                f"and variance 1 over the batch, shape ({m} × {n_out}), however large or small `W{l}` made `Z{l}`. "
                f"ε = {BN_EPS_TEXT} keeps a unit that is constant over the batch at 0 instead of 0/0. *Look at:* every column "
                "spans about −2 to 2; at evaluation the running μ and σ² are used instead, so an image's answer does "
                "not depend on the rest of its batch.")
    if k.startswith("N") and l < L:
        return (f"**Scaled and shifted.** `N{l} = γ{l} ⊙ Ẑ{l} + β{l}`: each unit's own scale γ (starting at 1) and "
                f"shift β (starting at 0), trained like the weights, so the layer can undo the normalisation where "
                f"that helps. `b{l}` no longer matters (the mean was subtracted); `β{l}` does its job. *Look at:* "
                "at the start `N` equals `Ẑ`.")
    if k.startswith("A") and l < L:
        pre = trace.pre(l)
        # dropout first: the viewer's text box shows its start, and the mask is what differs from the seed
        return (f"**Activations of layer {l}.**" + dropout_text(trace, l) + f" The non-linearity is applied to "
                f"every entry of `{pre}` separately, so the shape stays ({m} × {n_out}). {trace.activation.a_about} "
                "Without a non-linearity here, the layers would collapse into a single matrix product."
                + (" With batch norm about half of every column is positive, so ReLU units rarely die." if pre != f"Z{l}"
                   else ""))
    if k == f"Z{L}":
        return (f"**Scores of the {n_out} digits.** The same weighted sum, now giving one score (logit) per digit "
                f"for every sample: ({m} × {n_in}) · ({n_in} × {n_out}) = ({m} × {n_out}). Scores can be any "
                "real number; only their differences within a row matter to the softmax. *Look at:* early in "
                "training every score is close to 0 — the network has no opinion yet.")
    if k == f"A{L}":
        return (f"**Probabilities.** Softmax exponentiates each row of `Z{L}` and divides by the row's sum, "
                "so every row is positive and sums to 1: sample i's belief about each digit. *Look at:* at "
                f"the start every cell is near 1/{n_out} = {1 / n_out:.2f} (uniform guessing); a trained network "
                "puts one bright cell per row, in the true digit's column when it is right.")
    if k == "losses":
        return (f"**The loss.** For each sample, minus the log of the probability the network gave its true "
                f"digit: `L_i = −log A{L}[i, y_i]`. Guessing uniformly gives −log(1/{n_out}) = "
                f"{math.log(n_out):.3f}; a sure right answer gives 0; a sure wrong one a large number. The batch's "
                "loss is their mean — the single number gradient descent makes smaller, and the start of the "
                "backward pass.")
    if k == f"dZ{L}":
        return (f"**The backward pass starts here.** `dQ` always means ∂L/∂Q, the derivative of the mean loss "
                f"with respect to Q, and it always has Q's shape. Softmax and cross-entropy together give a "
                f"simple result: `dZ{L} = (A{L} − Y) / m`, the probabilities minus the one-hot truth `Y`, divided "
                f"by m = {m} because the loss is a mean. *Look at:* each row is negative (blue) at the true "
                "digit — raise that score — and positive (red) at the others.")
    if k.startswith("dW"):
        return (f"**Gradient of the weights of layer {l}.** `dW{l} = {below}ᵀ dZ{l}`: ({n_in} × {m}) · "
                f"({m} × {n_out}) = ({n_in} × {n_out}), exactly the shape of `W{l}` — one number per weight. "
                f"Entry (k, j) adds up, over the {m} samples, input k times the error of unit j; it is a sum of "
                f"{m} outer products, one per sample (see *One sample* below). " +
                ("*Look at:* rows of pixels that are blank in every image of the batch (the border) are exactly "
                 "0 — a weight whose input is 0 gets no gradient." if l == 1 else
                 f"*Look at:* rows for units of layer {l - 1} that were silent for the whole batch are 0."))
    if k.startswith("db") and trace.batchnorm and l < L:
        return (f"**Gradient of the biases of layer {l}: exactly 0.** `db{l}` would be `dZ{l}` summed over the "
                f"samples, and with batch norm those sums are 0: `b{l}` shifts a whole column of `Z{l}` and the "
                "batch's mean is subtracted right after, so the bias cannot change the loss. The engine stores 0 "
                f"(the gradient check agrees: finite differences give 0 up to rounding). `β{l}` shifts the units instead.")
    if k.startswith("db"):
        return (f"**Gradient of the biases of layer {l}.** A bias's input is always 1, so `db{l}` is `dZ{l}` "
                f"summed over the samples: one number per unit, shape ({n_out},).")
    if k.startswith("dN"):
        return (f"**Through the non-linearity, to N.** `dN{l} = dA{l} ⊙ f′(N{l})`"
                + (f" ⊙ `M{l}` (dropout's mask)" if f"M{l}" in trace else "")
                + f", entry by entry: {trace.activation.dz_about}. *Look at:* for ReLU the zeros sit where `A{l}` is "
                  "0. Batch norm's backward pass starts here.")
    if k.startswith("dγ") or k.startswith("dβ"):
        return (f"**Gradients of batch norm's γ{l} and β{l}.** `N = γ ⊙ Ẑ + β`, so `dγ{l} = Σᵢ dN{l} ⊙ Ẑ{l}` and "
                f"`dβ{l} = Σᵢ dN{l}`, column sums: one number per unit, shape ({n_out},), like a bias's gradient.")
    if k.startswith("dẐ"):
        return (f"**Back through the scale.** `dẐ{l} = dN{l} ⊙ γ{l}`: each column of the blame times its unit's γ.")
    if k.startswith("dZ") and trace.batchnorm and l < L:
        return (f"**Back through the normalisation.** `dZ{l} = (m·dẐ{l} − Σᵢ dẐ{l} − Ẑ{l} ⊙ Σᵢ dẐ{l} ⊙ Ẑ{l}) / "
                f"(m √(σ²{l} + ε))`. Each sample's Ẑ depends on every sample's Z of the same unit, through μ and σ², "
                "so the blame is not simply scaled: moving a whole column up changes nothing after the mean is "
                "subtracted (the second term removes that part), and stretching it changes nothing after dividing "
                f"by its spread (the third). *Look at:* every column of `dZ{l}` sums to 0, so `db{l}` will be 0.")
    if k.startswith("dA"):
        return (f"**The gradient goes down a layer.** `dA{l} = dZ{l + 1} W{l + 1}ᵀ`: ({m} × {sizes[l + 1]}) · "
                f"({sizes[l + 1]} × {n_out}) = ({m} × {n_out}), the shape of `A{l}`. This is the *back* in "
                f"backpropagation: the same weights that carried the signal up carry each unit's share of the "
                f"blame down (transposed). Layer 1 sends nothing further: `dX` is never needed.")
    if k.startswith("dZ"):
        if f"M{l}" in trace:
            return (f"**Through dropout and the non-linearity.** `dZ{l} = (dA{l} ⊙ M{l}) ⊙ f′(Z{l})`, entry by "
                    f"entry: a unit that dropout dropped in the forward pass gets no gradient, a kept one gets its "
                    f"blame scaled by 1/(1 − p) as its output was; then {trace.activation.dz_about}. *Look at:* "
                    f"`dZ{l}` is 0 wherever `M{l}` is 0.")
        return (f"**Through the non-linearity.** `dZ{l} = dA{l} ⊙ f′(Z{l})`, entry by entry: "
                f"{trace.activation.dz_about}. " + trace.activation.dz_look.format(l=l))
    if stop.phase == "update" and k.startswith("Δγ"):
        return (f"**The update of batch norm's γ{l} and β{l}.** The optimizer treats them like weights: "
                f"`Δγ{l}` from `dγ{l}`, `Δβ{l}` from `dβ{l}` (for the seed's SGD, `−η dγ{l}`), and `γ{l}_new = γ{l} + "
                f"Δγ{l}`. No weight decay on them.")
    if stop.phase == "update" and k.endswith(RUN + "_new"):
        return (f"**Batch norm's running statistics of layer {l}.** Not trained: each training step averages its "
                f"batch's `μ{l}` and `σ²{l}` in, `μ{l}_run ← {BN_MOMENTUM:g}·μ{l}_run + {1 - BN_MOMENTUM:.1g}·μ{l}`. "
                "Evaluation, the test set and a drawn digit normalise with these, not with a batch's, so one image "
                "gets the same answer whatever else is in its batch.")
    if stop.phase == "update":
        return (f"**The update of layer {l}.** The optimizer turns the gradient into a change `ΔW{l}` (for the "
                f"seed's SGD, `ΔW{l} = −η dW{l}`: a small step against the gradient), and `W{l}_new = W{l} + "
                f"ΔW{l}` is what the next mini-batch will see. The change is tiny next to the weights: the "
                f"ratio ‖ΔW‖/‖W‖ below is the one number that says whether the learning rate is sane (around "
                f"{TYPICAL_RATIO:g} is healthy; near 1 means the weights are being thrown around).")
    return ""


def augment_text(trace: Trace) -> str:
    """What data augmentation did to this step's batch, or nothing without it."""
    aug = trace.augment
    if aug is None:
        return ""
    return (" **Data augmentation**: these are the batch's images as the network saw them, each moved by up to "
            f"{int(abs(aug.shifts).max()) if aug.shifts.size else 0} px and turned by up to "
            f"{float(abs(aug.angles).max()) if aug.angles.size else 0:.1f}° in this step (image 1: {aug.describe(0)}), "
            "drawn afresh each step, so the network never sees exactly the same image twice. Evaluation uses the "
            "images as they are.")


def dropout_text(trace: Trace, l: int) -> str:
    """What dropout did to layer ``l`` in this step, or nothing without it."""
    if f"M{l}" not in trace:
        return ""
    p = trace.dropout
    return (f" **Dropout** (p = {p:g}): each entry is then multiplied by the mask `M{l}`, 0 for a dropped unit "
            f"(about {p:.0%} of them, drawn anew every training step) and 1/(1 − p) = {1 / (1 - p):.4g} for a kept "
            "one, so the layer's mean output stays the same; the *zeros* of `A" f"{l}` count the dropped units too. "
            "At evaluation nothing is dropped.")


# --------------------------------------------------------------------------- figures and tables
def axis_titles(name: str, L: int) -> tuple[str, str]:
    """(x, y) axis titles for a quantity: what its rows and columns are."""
    base = name.lstrip("dΔ").removesuffix("_new").removesuffix(RUN)
    if name == "X":
        return "pixel k", "sample i"
    if base[0] in "μσγβ":       # batch norm's vectors: one number per unit of a hidden layer
        return "unit j", ""
    if base[0] in "ZAYẐN" and name not in ("y",):
        layer = int(base[1:]) if base[1:].isdigit() else L
        return ("digit c" if layer == L else "unit j"), "sample i"
    if base[0] == "W":
        l = int(base[1:])
        return ("digit c" if l == L else "unit j"), ("pixel k" if l == 1 else f"unit k of layer {l - 1}")
    if base[0] == "b":
        return ("digit c" if int(base[1:]) == L else "unit j"), ""
    if name in ("losses", "y"):
        return "sample i", ""
    return "", ""


def shape_text(a) -> str:
    s = tuple(np.shape(a))
    return str(s) if len(s) != 1 else f"({s[0]},)"


def quantity_figure(name: str, a: np.ndarray, L: int, *, highlight=None, height: int | None = None) -> go.Figure:
    """A quantity as a heatmap titled with its name and shape; diverging scale centred at 0
    when it has negative entries, grey for the pixels, the digit written on ``y``."""
    a = np.asarray(a)
    x_title, y_title = axis_titles(name, L)
    title = f"<b>{name}</b>  {shape_text(a)}"
    if a.ndim == 1 and name in PER_SAMPLE:
        # one number per sample: a column beside the rows it belongs to
        fig = heatmap(a[:, None], title, y_title="sample i", highlight=(highlight[0], 0) if highlight else None,
                      height=height or ROW_HEIGHT, signed=False if name == "y" else None)
        if name == "y":
            k = len(DIGIT_COLOURS)
            bands = [[(d + e) / k, c] for d, c in enumerate(DIGIT_COLOURS) for e in (0, 1)]
            fig.update_traces(colorscale=bands, zmin=-0.5, zmax=k - 0.5,
                              colorbar=dict(tickvals=list(range(k)), thickness=10, title="digit"))
        fig.update_xaxes(visible=False)
        fig.update_traces(colorbar=dict(thickness=10, exponentformat="e"))
        fig.update_layout(width=190)
        return fig
    if a.ndim == 1:
        highlight = (0, highlight[0]) if highlight is not None else None
        fig = heatmap(a, title, x_title=x_title, highlight=highlight, height=height or VECTOR_HEIGHT)
        fig.update_yaxes(visible=False)
        fig.update_traces(colorbar=dict(thickness=10, len=1.2, exponentformat="e"))
        return fig
    colorscale = DIGITS if name == "X" else None
    fig = heatmap(a, title, x_title=x_title, y_title=y_title, highlight=highlight,
                  height=height or ROW_HEIGHT, colorscale=colorscale, signed=False if name == "X" else None)
    fig.update_traces(colorbar=dict(thickness=12, xpad=4, exponentformat="e"))
    fig.update_layout(margin=dict(r=28))          # room for the colour bar's longest tick label
    return fig


def stats_frame(trace: Trace, names: list[str], roles: dict[str, str] | None = None) -> pd.DataFrame:
    """min, max, mean, std and the fraction of exact zeros of each quantity (ui.figures.stats)."""
    rows = []
    for n in names:
        s = stats(trace[n])
        rows.append({"quantity": n, "role": (roles or {}).get(n, ""), "shape": shape_text(trace[n]), **s})
    return pd.DataFrame(rows).rename(columns={"zeros": "fraction of zeros"})


def stats_caption(a) -> str:
    s = stats(a)
    return (f"min {s['min']:.3g} · max {s['max']:.3g} · mean {s['mean']:.3g} · std {s['std']:.3g} · "
            f"zeros {s['zeros']:.0%}")


def terms_frame(ex: Explanation, k: int = 12) -> pd.DataFrame:
    top, _, _ = ex.top(k)
    return pd.DataFrame([{"#": rank, "term": t.label, "numbers": " × ".join(f"{f:.5g}" for f in t.factors),
                          "contribution": t.value} for rank, t in enumerate(top, start=1)])


def check_frame(ex: Explanation) -> pd.DataFrame:
    """The bottom line of an explanation: recomputed total against the stored cell."""
    rows = []
    if ex.combine == "sum":
        rows.append(("sum of all terms", ex.sum_of_terms))
    for label, v in ex.details:
        rows.append((label, v))
    rows += [("recomputed from the inputs (float64)", ex.total), ("value in the trace", ex.value),
             ("difference", ex.total - ex.value)]
    return pd.DataFrame(rows, columns=["", "value"])


def update_ratio(trace: Trace, l: int) -> float:
    """‖ΔW_l‖/‖W_l‖ (see ``Trace.update_ratio``, which the learning-rate lesson uses too)."""
    return trace.update_ratio(l)


def gradcheck_frame(results, trace: Trace | None = None) -> pd.DataFrame:
    rows = []
    for r in results:
        row = {"param": r.param, "index": str(r.index), "backprop": r.backprop, "numeric": r.numeric,
               "relative error": r.rel_error, "kink": r.kink}
        if trace is not None:
            row["in the trace (float32)"] = float(np.asarray(trace["d" + r.param])[r.index])
        rows.append(row)
    return pd.DataFrame(rows)


def gradcheck_verdict(results, tol: float = AGREES) -> tuple[bool, str]:
    """Do backprop and finite differences agree on the entries that can be compared?"""
    smooth = [r for r in results if not r.kink]
    kinks = len(results) - len(smooth)
    if not smooth:
        return False, "Every checked entry sat at a kink of the activation; check other entries."
    worst = max(r.rel_error for r in smooth)
    k = f" {kinks} entr{'y' if kinks == 1 else 'ies'} at a kink of the activation (not comparable) left out." if kinks else ""
    if worst < tol:
        return True, (f"Backprop agrees with finite differences: the largest relative error over "
                      f"{len(smooth)} entries is {worst:.1e} (below {tol:g}).{k}")
    return False, (f"Largest relative error {worst:.1e} (above {tol:g}). Tiny gradients (≈1e-9) have large "
                   f"relative errors from rounding alone; a wrong backward pass shows errors near 1.{k}")


# --------------------------------------------------------------------------- one sample
def sample_view_data(trace: Trace, i: int) -> dict:
    """Everything the one-sample view shows about sample ``i`` of the batch."""
    L = trace.n_layers
    y = int(trace["y"][i])
    proba = np.asarray(trace[f"A{L}"][i], np.float64)
    out = {"label": y, "pred": int(proba.argmax()), "proba": proba, "loss": float(trace["losses"][i]),
           "hidden": {l: np.asarray(trace[f"A{l}"][i]) for l in range(1, L)}, "grad": []}
    if f"dZ{L}" in trace:
        for l in range(1, L + 1):
            norms = sample_gradient_norms(trace, l)
            shares = sample_gradient_shares(trace, l)
            out["grad"].append({"layer": l, "norms": norms, "norm": float(norms[i]), "share": float(shares[i]),
                                "total": float(np.linalg.norm(np.asarray(trace[f"dW{l}"], np.float64)))})
    return out


def render_sample(trace: Trace, i: int, X_image: np.ndarray) -> dict:
    d = sample_view_data(trace, i)
    L, m = trace.n_layers, trace["X"].shape[0]
    c1, c2 = st.columns([1, 3])
    with c1:
        chart(st, digit_grid(X_image[None], size=220), key="sample_img", config={"displayModeBar": False})
        ok = "right" if d["pred"] == d["label"] else "wrong"
        st.markdown(f"Sample **{i}** is a **{d['label']}**; the network says **{d['pred']}** ({ok}), giving the "
                    f"true digit probability **{d['proba'][d['label']]:.3f}**.  \nIts loss "
                    f"`losses[{i}]` = −log {d['proba'][d['label']]:.3f} = **{d['loss']:.4f}**.")
    with c2:
        cols = st.columns(len(d["hidden"]) + 1)
        for col, (l, a) in zip(cols, d["hidden"].items()):
            fig = bars(a, title=f"A{l}[{i}]: layer {l}'s activations", y_title="activation")
            fig.update_xaxes(type="linear", title="unit j")
            chart(col, fig, key=f"sample_A{l}")
            col.caption(f"{int((a > 0).sum())} of {len(a)} units fire for this image.")
        fig = bars(d["proba"], list(range(len(d["proba"]))), title=f"A{L}[{i}]: probabilities",
                   highlight=d["label"], y_title="probability")
        fig.update_xaxes(title="digit c")
        chart(cols[-1], fig, key="sample_proba")
        cols[-1].caption(f"The true digit, {d['label']}, in orange.")
    if d["grad"]:
        st.markdown(f"**Its share of the gradient.** $dW_l$ is a sum of {m} outer products, one per sample: "
                    r"sample $i$ adds $A_{l-1}[i]^\top\, dZ_l[i]$ (with $A_0 = X$). The *size* of its term is "
                    r"$\lVert A_{l-1}[i] \rVert \cdot \lVert dZ_l[i] \rVert$; its *share* is how much of $dW_l$ "
                    "it points along (the shares of the batch add up to 100 %; a negative share pulls against the "
                    "rest).")
        rows = [{"layer": g["layer"], f"‖term of sample {i}‖": g["norm"], "‖dW‖ (whole batch)": g["total"],
                 "size ratio": g["norm"] / g["total"] if g["total"] else np.nan, "share of dW": g["share"]}
                for g in d["grad"]]
        st.dataframe(pd.DataFrame(rows), hide_index=True,
                     column_config={"share of dW": st.column_config.NumberColumn(format="percent")})
        g1 = d["grad"][0]
        fig = bars(g1["norms"], title=f"Size of each sample's term in dW1 (sample {i} in orange)", highlight=i,
                   y_title="‖X[i]ᵀ dZ1[i]‖")
        fig.update_xaxes(title="sample i", type="linear")
        chart(st, fig, key="sample_share")
        st.caption("Samples the network already gets right with confidence have small errors dZ and add little; "
                   "the badly classified ones dominate the step.")
    return d


# --------------------------------------------------------------------------- rendering a row
def row_columns(trace: Trace, figures: list[str], outputs=()) -> list[float]:
    """Column widths: wide for wide matrices (X), narrow for vectors, outputs larger than inputs."""
    widths = []
    for n in figures:
        a = np.asarray(trace[n])
        w = min(1.6, max(1.0, a.shape[1] / 64)) if a.ndim == 2 else 0.55 if n in PER_SAMPLE else 0.9
        # an input matrix gets at least 1.35: narrower, its colour bar's tick labels (−0.5e−4) are cut off
        widths.append(w * 1.8 if n in outputs and a.ndim == 2 else max(w, 1.35) if a.ndim == 2 else w)
    return widths


def add_click_layer(fig: go.Figure, a: np.ndarray) -> bool:
    """Make the cells of a heatmap clickable: Streamlit reports no selection for heatmaps
    (streamlit/streamlit#8760), so an invisible marker sits on every cell and carries the
    click. Only for matrices up to ``CLICKABLE_CELLS`` cells; bigger ones use the inputs."""
    a = np.asarray(a)
    if a.ndim != 2 or a.size > CLICKABLE_CELLS:
        return False
    rows, cols = np.mgrid[0:a.shape[0], 0:a.shape[1]]
    fig.update_traces(hoverinfo="skip", hovertemplate=None, selector=dict(type="heatmap"))
    fig.add_trace(go.Scatter(x=cols.ravel(), y=rows.ravel(), mode="markers", customdata=a.ravel(),
                             marker=dict(size=8, opacity=0), showlegend=False,
                             hovertemplate="row %{y}, col %{x}: %{customdata:.4g}<br>click to zoom<extra></extra>"))
    fig.update_layout(clickmode="event+select", dragmode=False)
    return True


def render_row(trace: Trace, outputs: tuple[str, ...], L: int, *, key: str, highlight: dict | None = None,
               inputs: bool = True, on_click=None) -> None:
    """The inputs of ``outputs``' equations, then the outputs, side by side, each a heatmap
    with its name and shape and a line of statistics. The scalar ``loss`` is a number.
    ``on_click(name, chart_key)`` gives the callback for a click on an output's cell."""
    highlight = highlight or {}
    ins = row_inputs(trace, outputs) if inputs else []
    shown = [n for n in ins + list(outputs) if n != "loss"]
    cols = st.columns(row_columns(trace, shown, outputs) or [1])
    for col, n in zip(cols, shown):
        a = np.asarray(trace[n])
        with col:
            role = "output" if n in outputs else "input"
            fig = quantity_figure(n, a, L, highlight=highlight.get(n))
            if role == "input":
                fig.update_layout(title=dict(text=f"{n}  {shape_text(a)}  <i>(input)</i>"))
            chart_key = f"{key}_fig_{n}"
            width = "content" if n in PER_SAMPLE else "stretch"
            if on_click is not None and role == "output" and add_click_layer(fig, a):
                chart(st, fig, key=chart_key, width=width, on_select=on_click(n, chart_key), selection_mode="points")
            else:
                chart(st, fig, key=chart_key, width=width)
            st.caption(stats_caption(a))
    if "loss" in outputs:
        st.metric("loss = mean of the losses", f"{float(trace['loss']):.4f}",
                  help="The number gradient descent makes smaller.")


def render_explanation(ex: Explanation, k: int = 12, picture=None, key: str = "zoom") -> None:
    """The cell's equation in symbols and in numbers (full width, they can be long), then the
    note, the largest terms and the check; ``picture`` (a figure and its caption) goes beside them."""
    st.latex(ex.rule)
    st.latex(ex.substituted)
    if picture is None:
        _explanation_details(ex, k)
        return
    c1, c2 = st.columns([3, 1])
    with c1:
        _explanation_details(ex, k)
    with c2:
        chart(st, picture[0], key=f"{key}_picture", config={"displayModeBar": False})
        st.caption(picture[1])


def _explanation_details(ex: Explanation, k: int) -> None:
    st.markdown(ex.note)
    if len(ex.terms) > 1 or ex.combine == "sum":
        top, n_rest, rest = ex.top(k)
        st.dataframe(terms_frame(ex, k), hide_index=True,
                     column_config={"contribution": st.column_config.NumberColumn(format="%.5g"),
                                    "numbers": st.column_config.TextColumn(help="The numbers multiplied (or the "
                                                                           "score exponentiated) to make the term.")})
        if n_rest:
            nz = sum(1 for t in ex.terms[k:] if t.value != 0)
            st.caption(f"…and {n_rest} smaller terms ({nz} of them non-zero) adding up to {rest:.5g}. "
                       "Terms are sorted by the size of their contribution.")
    st.dataframe(check_frame(ex), hide_index=True,
                 column_config={"value": st.column_config.NumberColumn(format="%.10g")})
    if ex.combine == "input":
        st.caption("An input of the step: nothing in this step computed it.")
    elif ex.error > 1e-6 * max(1.0, abs(ex.value)):
        st.warning("The recomputed number differs from the stored one by more than float32 rounding.")
    else:
        st.caption("The recomputed total equals the cell (up to float32 rounding of the stored value).")


def picture_of(name: str, a: np.ndarray, index: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, int], str] | None:
    """The 784 numbers around a zoomed cell that form a 28×28 picture: the image (row i of
    ``X``) or a first-layer unit's weights (column j of ``W1``, ``dW1``, ``ΔW1``, ``W1_new``).
    Returns (picture, the cell's (row, col) in it, caption) or None."""
    a = np.asarray(a)
    if a.ndim != 2 or len(index) != 2:
        return None
    if name == "X" and a.shape[1] == 784:
        i, k = index
        return a[i].reshape(28, 28), divmod(k, 28), f"X[{i}]: image {i} of the batch, pixel {k} outlined"
    if name.lstrip("dΔ").removesuffix("_new") == "W1" and a.shape[0] == 784:
        k, j = index
        return a[:, j].reshape(28, 28), divmod(k, 28), f"{name}[:, {j}]: unit {j}'s 784 numbers as a picture, pixel {k} outlined"
    return None


def picture_figure(pic: np.ndarray, cell: tuple[int, int], *, grey: bool = False) -> go.Figure:
    fig = heatmap(pic, "", highlight=cell, height=260, signed=None if not grey else False,
                  colorscale=DIGITS if grey else None)
    fig.update_traces(colorbar=dict(thickness=10, exponentformat="e"))
    fig.update_yaxes(scaleanchor="x", constrain="domain", showticklabels=False)
    fig.update_xaxes(constrain="domain", showticklabels=False)
    fig.update_layout(margin=dict(l=0, r=0, t=10, b=0))
    return fig


def batch_picture(images_u8: np.ndarray, labels, cols: int = 16, scale: int = 2) -> np.ndarray:
    """The mini-batch's images (28×28 grey levels, dark ink on white) in a grid, each with its
    label above it, as one RGB picture: a few kB as a PNG, where a plotly grid of 64 images is
    0.4 MB of JSON sent again at every step."""
    from PIL import Image, ImageDraw, ImageFont
    band, cw = 13, 30
    imgs = np.asarray(images_u8, np.uint8).reshape(-1, 28, 28)
    n = len(imgs)
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    canvas = np.full((rows * (28 + band), cols * cw), 255, np.uint8)
    for i, img in enumerate(imgs):
        r, c = divmod(i, cols)
        canvas[r * (28 + band) + band:(r + 1) * (28 + band), c * cw + 1:c * cw + 29] = 255 - img
    pic = Image.fromarray(canvas).resize((canvas.shape[1] * scale, canvas.shape[0] * scale), Image.NEAREST)
    draw = ImageDraw.Draw(pic)
    font = ImageFont.load_default(size=11 * scale)
    for i, label in enumerate(list(labels)[:n]):
        r, c = divmod(i, cols)
        draw.text(((c * cw + 15) * scale, (r * (28 + band) + band / 2 + 0.5) * scale), str(int(label)),
                  fill=110, font=font, anchor="mm")
    return np.asarray(pic.convert("RGB"))


# --------------------------------------------------------------------------- small widgets
def index_inputs(name: str, a, L: int, key: str) -> tuple[int, ...]:
    """Number inputs for one cell of ``a``; they start on its largest |entry|."""
    a = np.asarray(a)
    if a.ndim == 0:
        return ()
    flat = np.abs(np.nan_to_num(a.astype(np.float64), nan=np.inf))
    default = np.unravel_index(int(np.argmax(flat)), a.shape)
    x_title, y_title = axis_titles(name, L)
    labels = [y_title or "row", x_title or "column"] if a.ndim == 2 else [x_title or "index"]
    cols = st.columns(a.ndim)
    return tuple(int(c.number_input(f"{labels[ax]}, 0–{n - 1}", 0, n - 1, int(default[ax]), step=1,
                                    key=index_key(key, name, a.shape, ax)))
                 for ax, (c, n) in enumerate(zip(cols, a.shape)))


def index_key(key: str, name: str, shape, axis: int) -> str:
    """The widget key of one index input of the zoom (the shape is part of it, so a network
    of another size gets fresh inputs)."""
    return f"{key}_{name}_{'x'.join(map(str, shape))}_{axis}"

