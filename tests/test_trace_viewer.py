"""The trace viewer's payload (ui/trace_viewer.py): what the browser gets of a step must be
the engine's numbers, bit for bit, small enough to send, and strict JSON."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from core.data.mnist import load_mnist
from core.engine.network import MLP, DivergenceError
from core.lab.settings import Settings
from core.lab.workspace import Workspace
from core.teach.explain import explain
from ui import trace_viewer as tv
from ui.figures import stats
from ui.stepper_views import build_stops, row_inputs

ROOT = Path(__file__).resolve().parent.parent
KEYS = ["X", "Z1", "A1", "Z2", "A2", "Z3", "A3", "losses", "dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2",
        "dA1", "dZ1", "dW1", "db1", "ΔW1", "ΔW2", "ΔW3"]


@pytest.fixture(scope="module")
def seed_step():
    """The seed network's first step (the default settings), its workspace and its view."""
    m = load_mnist()
    ws = Workspace(Settings(), m["train"], m["test"])
    trace = ws.step()
    return ws, trace, tv.view(trace)


def test_the_browser_gets_every_array_of_the_trace_bit_for_bit(seed_step):
    _, trace, view = seed_step
    back = tv.unpack(view["blob"], view["arrays"])
    assert list(back) == list(trace)
    for name in trace:
        a = np.asarray(trace[name])
        assert back[name].dtype == a.dtype and back[name].shape == a.shape, name
        assert back[name].tobytes() == a.tobytes(), name
    assert back["W1"].dtype == np.float32 and back["y"].dtype == np.uint8


def test_arrays_start_where_the_browser_can_view_them_in_place(seed_step):
    """Float32Array(buffer, offset) needs the offset to be a multiple of 4 (8 for float64)."""
    _, _, view = seed_step
    assert all(e["offset"] % 8 == 0 for e in view["arrays"])


def test_a_default_step_is_at_most_1_5_MB_as_sent(seed_step):
    _, trace, view = seed_step
    sent = json.dumps({"key": "stepper_viewer", "view": view, "start": None, "step_label": "step 1 (latest)",
                       "can_train": True, "train_help": "", "katex": tv.KATEX_URL})
    assert len(sent.encode()) <= 1_500_000
    raw = sum(np.asarray(trace[n]).nbytes for n in trace)
    assert len(view["blob"]) < 0.8 * raw * 4 / 3            # compressed (base64 alone would be 4/3 of raw)


def test_the_22_stops_with_their_equations_and_words(seed_step):
    _, trace, view = seed_step
    stops = view["stops"]
    assert [s["key"] for s in stops] == KEYS == [s.key for s in build_stops(trace)]
    z1 = stops[1]
    assert z1["title"] == "Forward pass · layer 1 · Z1"
    assert z1["equations"] == [trace.spec("Z1").latex]
    assert z1["rows"] == [{"inputs": ["X", "W1", "b1"], "outputs": ["Z1"],
                           "weights": z1["rows"][0]["weights"]}]
    assert "<b>Weighted inputs of layer 1.</b>" in z1["text"] and "<code>W1</code>" in z1["text"]
    for stop in build_stops(trace):          # every quantity a stop draws is described
        for row in stop.rows:
            assert set(row_inputs(trace, row)) | set(row) <= set(view["quantities"])


def test_statistics_and_colour_limits_come_from_python(seed_step):
    _, trace, view = seed_step
    for name in trace:
        q = view["quantities"][name]
        assert q["stats"] == pytest.approx(stats(trace[name]), nan_ok=True), name
    assert view["quantities"]["Z1"]["scale"] == "signed"
    lim = float(np.abs(trace["Z1"]).max())
    assert (view["quantities"]["Z1"]["lo"], view["quantities"]["Z1"]["hi"]) == (-lim, lim)
    assert view["quantities"]["X"]["scale"] == "grey" and view["quantities"]["y"]["scale"] == "labels"
    assert view["quantities"]["A3"]["scale"] == "unsigned"
    assert view["quantities"]["b1"]["scale"] == "signed"          # all zeros: drawn white
    assert len(view["colours"]["signed"]) == 256 * 6


def test_update_stops_show_the_loss_before_and_after_the_update(seed_step):
    """After: the same batch through the parameters the step made, by the engine's forward."""
    ws, trace, view = seed_step
    again = ws.net.forward_backward(trace["X"], trace["y"])      # ws.net holds the new parameters
    after = tv.loss_after_update(trace)
    assert after == pytest.approx(float(again.loss), rel=1e-6)
    assert after < trace.loss                                     # one SGD step on a batch lowers its loss
    for stop in view["stops"][-3:]:
        facts = {f["id"]: f["value"] for f in stop["facts"]}
        assert facts["loss-before"] == f"{trace.loss:.4g}" and facts["loss-after"] == f"{after:.4g}"
    assert view["loss_after"] == after


def test_a_diverged_step_is_strict_json_with_the_stops_it_has():
    net = MLP(seed=0)
    net.params = {k: v * np.float32(1e30) for k, v in net.params.items()}   # the loss overflows
    X = np.ones((4, 784), np.float32)
    with pytest.raises(DivergenceError) as err:
        net.forward_backward(X, np.arange(4))
    view = tv.view(err.value.trace)
    json.dumps(view, allow_nan=False)                 # the browser's JSON.parse has no NaN or Infinity
    assert [s["key"] for s in view["stops"]] == KEYS[:8]
    assert view["loss_after"] is None


def test_a_drawn_digit_s_int64_labels_arrive_as_the_same_integers():
    blob, index = tv.pack({"y": np.array([7], np.int64), "s": np.float32(2.5)})
    back = tv.unpack(blob, index)
    assert back["y"].tolist() == [7] and back["y"].dtype == np.int32
    assert back["s"].shape == () and back["s"] == np.float32(2.5)


def test_a_clicked_cell_is_answered_with_core_s_explanation(seed_step):
    ws, trace, view = seed_step
    rec = ws.steps[-1]
    for name, index in (("Z1", [3, 17]), ("dW1", [300, 5]), ("ΔW2", [1, 2]), ("losses", [9]), ("loss", [])):
        got = tv.explanation(trace, name, index, optimizer=rec.optimizer_before, view_id=view["id"])
        ex = explain(trace, name, index, optimizer=rec.optimizer_before)
        assert (got["value"], got["total"]) == (ex.value, ex.total)
        assert (got["rule"], got["substituted"]) == (ex.rule, ex.substituted)
        assert [t["term"] for t in got["terms"]] == [t.label for t in ex.top(tv.TERMS_SHOWN)[0]][:len(got["terms"])]
        assert got["check"][-2] == {"label": "value in the trace", "value": f"{ex.value:.10g}"}
        json.dumps(got, allow_nan=False)


def test_only_a_well_formed_click_on_this_step_is_answered():
    ok = {"view": "abc", "stop": "Z1", "name": "Z1", "index": [1, 2]}
    assert tv.asked_cell({"cell": ok}, "abc") == ok
    assert tv.asked_cell({"cell": ok}, "another step") is None
    assert tv.asked_cell({"cell": None}, "abc") is None and tv.asked_cell(None, "abc") is None
    assert tv.asked_cell({"cell": dict(ok, index="1,2")}, "abc") is None


def test_words_are_escaped_before_they_become_html():
    assert tv.md_html("**bold** `W1` *it* <script>x</script> & a") == \
        "<b>bold</b> <code>W1</code> <i>it</i> &lt;script&gt;x&lt;/script&gt; &amp; a"


def test_katex_is_vendored_and_served_by_the_app():
    """The viewer typesets with the KaTeX under static/ (nothing from the internet), which the
    server serves only with static serving on; the demo app's static/ is the same folder."""
    base = ROOT / "static" / "katex"
    assert (base / "katex.min.js").stat().st_size > 100_000 and (base / "LICENSE").exists()
    css = (base / "katex.min.css").read_text()
    fonts = set(re.findall(r"url\((fonts/[^)]+\.woff2)\)", css))
    assert fonts and all((base / f).exists() for f in fonts)
    assert re.search(r"(?m)^enableStaticServing\s*=\s*true", (ROOT / ".streamlit" / "config.toml").read_text())
    assert (ROOT / "tests/browser/apps/static").resolve() == (ROOT / "static").resolve()
    assert tv.KATEX_URL == "app/static/katex/"
    assert 'root + "katex.min.js"' in (tv.ASSETS / "viewer.js").read_text()
