"""The stepper page, driven through Streamlit's AppTest: what it shows is what the engine computed.

The step itself is drawn by the trace viewer (ui/trace_viewer.py), a v2 component whose
JavaScript AppTest cannot run: these tests read what the page mounted it with (the whole
trace, packed, the stop it opens on, the step's label), and leave moving between stops,
hovering and *Train one mini-batch* to tests/browser/test_trace_viewer.py and
tests/browser/test_flows.py."""
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.teach.explain import explain
from ui import trace_viewer as tv
from ui.state import session
from ui.stepper_views import build_stops

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
SMALL = {"pool": "3000", "val": "500"}


def open_stepper(**query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({**SMALL, **query})
    at.run()
    at.switch_page("pages/stepper.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def state(at):
    return session(at.session_state).stepper


def ws_of(at):
    return session(at.session_state).ws


def table(at, column: str):
    """The dataframe on screen that has ``column``."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert found, f"no table with a {column!r} column"
    return found[0]


def stats_table(at):
    return table(at, "fraction of zeros").set_index("quantity")


def check_table(at):
    return table(at, "").set_index("")["value"]


def latex(at):
    return [e.value.strip("$\n") for e in at.latex]


def viewers(at) -> list:
    return [e for e in at.get("bidi_component") if e.proto.component_name == "backprop.trace_viewer"]


def viewer(at) -> dict:
    """What the page mounted the trace viewer with (its one instance on the page)."""
    found = viewers(at)
    assert len(found) == 1, f"{len(found)} trace viewers on the page"
    return json.loads(found[0].proto.json)


def viewer_arrays(at) -> dict:
    """The arrays the viewer got, unpacked as the browser does."""
    view = viewer(at)["view"]
    return tv.unpack(view["blob"], view["arrays"])


def assert_viewer_shows(at, trace):
    """The viewer holds every array of ``trace``, bit for bit, and its stops."""
    got = viewer_arrays(at)
    assert list(got) == list(trace)
    for name in trace:
        assert got[name].tobytes() == np.asarray(trace[name]).tobytes(), name
    assert [s["key"] for s in viewer(at)["view"]["stops"]] == [s.key for s in build_stops(trace)]


def assert_stats_match(shown, trace, name):
    a = np.asarray(trace[name], np.float64)
    row = shown.loc[name]
    assert row["shape"] == str(a.shape) if a.ndim != 1 else row["shape"] == f"({len(a)},)"
    for col, want in (("min", a.min()), ("max", a.max()), ("mean", a.mean()), ("std", a.std()),
                      ("fraction of zeros", (a == 0).mean())):
        assert row[col] == pytest.approx(float(want), rel=1e-9, abs=1e-15), (name, col)


def test_a_step_goes_to_the_viewer_whole_and_opens_on_its_first_stop():
    at = open_stepper()
    assert any("Press **Step**" in i.value for i in at.info)
    assert not viewers(at)                                   # nothing to view before a step
    click(at, "stepper_step")
    ws = ws_of(at)
    trace = ws.current
    assert ws.trainer.global_step == 1 and len(ws.steps) == 1
    keys = [s.key for s in build_stops(trace)]
    assert keys[:7] == ["X", "Z1", "A1", "Z2", "A2", "Z3", "A3"] and keys[7:9] == ["losses", "dZ3"]
    assert keys[-3:] == ["ΔW1", "ΔW2", "ΔW3"] and len(keys) == 22
    assert_viewer_shows(at, trace)
    data = viewer(at)
    assert data["start"] == "X" and data["step_label"] == "step 1 (latest)"
    assert data["can_train"] and data["reveal"]
    z1 = data["view"]["stops"][1]
    assert z1["equations"] == [r"Z_{1} = X\, W_{1} + b_{1}"] == [trace.spec("Z1").latex]
    assert z1["rows"][0]["inputs"] == ["X", "W1", "b1"] and z1["rows"][0]["outputs"] == ["Z1"]
    assert at.query_params["stop"] == "X" and at.query_params["step"] == "1"
    link = [c.value for c in at.code if "stop=" in c.value][0]
    assert "step=1" in link and "stop=X" in link
    # the stops are the viewer's: the page draws none of them, and has no buttons that move between them
    assert not any(b.key in ("stepper_next", "stepper_prev", "stepper_rest") for b in at.button)
    assert not at.get("pills")

    click(at, "stepper_step")                                # the page's Step trains the next one
    assert ws.trainer.global_step == 2
    assert_viewer_shows(at, ws.current)
    assert viewer(at)["step_label"] == "step 2 (latest)" and viewer(at)["start"] == "X"


def test_the_zoom_of_all_quantities_rebuilds_the_chosen_cell():
    at = open_stepper()
    click(at, "stepper_step")
    trace = ws_of(at).current
    at.segmented_control(key="stepper_view").set_value("All quantities").run()
    at.selectbox(key="stepper_browse").set_value("Z1").run()
    at.number_input(key="browse_Z1_64x64_0").set_value(3).run()
    at.number_input(key="browse_Z1_64x64_1").set_value(5).run()
    shown = check_table(at)
    cell = float(trace["Z1"][3, 5])
    assert shown["value in the trace"] == cell
    assert shown["recomputed from the inputs (float64)"] == pytest.approx(cell, rel=1e-5, abs=1e-7)
    assert shown["recomputed from the inputs (float64)"] == explain(trace, "Z1", (3, 5)).total
    assert shown["sum of all terms"] == pytest.approx(shown["recomputed from the inputs (float64)"], abs=1e-12)
    terms = table(at, "contribution")
    X, W1 = np.asarray(trace["X"], np.float64), np.asarray(trace["W1"], np.float64)
    products = X[3] * W1[:, 5]
    assert terms["contribution"].iloc[0] == pytest.approx(products[np.argmax(np.abs(products))], rel=1e-12)
    assert any(r"Z_{1}[3, 5]" in t for t in latex(at))
    assert_stats_match(stats_table(at), trace, "Z1")

    at.selectbox(key="stepper_browse").set_value("dW1").run()
    at.number_input(key="browse_dW1_784x64_0").set_value(400).run()
    at.number_input(key="browse_dW1_784x64_1").set_value(7).run()
    shown = check_table(at)
    assert shown["value in the trace"] == float(trace["dW1"][400, 7])
    assert shown["recomputed from the inputs (float64)"] == pytest.approx(float(trace["dW1"][400, 7]), rel=1e-4, abs=1e-9)
    assert len(table(at, "contribution")) == 12                  # the largest of 64 per-sample terms
    assert_stats_match(stats_table(at), trace, "dW1")


def test_one_samples_view():
    at = open_stepper()
    click(at, "stepper_step")
    trace = ws_of(at).current
    assert at.segmented_control(key="stepper_view").value is None      # nothing below the viewer by default
    assert not at.dataframe and not at.metric                            # (no view's table or figures)
    at.segmented_control(key="stepper_view").set_value("One sample").run()
    assert at.selectbox(key="stepper_sample").value == int(np.nanargmax(trace["losses"]))   # the worst sample
    at.selectbox(key="stepper_sample").set_value(5).run()
    y, loss = int(trace["y"][5]), float(trace["losses"][5])
    assert any(f"Sample **5** is a **{y}**" in m.value and f"{loss:.4f}" in m.value for m in at.markdown)
    shares = table(at, "share of dW").set_index("layer")
    X, dZ1 = np.asarray(trace["X"], np.float64), np.asarray(trace["dZ1"], np.float64)
    assert shares.loc[1, "‖term of sample 5‖"] == pytest.approx(np.linalg.norm(np.outer(X[5], dZ1[5])), rel=1e-9)
    assert shares.loc[1, "‖dW‖ (whole batch)"] == pytest.approx(np.linalg.norm(np.asarray(trace["dW1"], np.float64)), rel=1e-4)


def test_history_revisits_an_earlier_step_with_the_same_values():
    at = open_stepper()
    click(at, "stepper_step")
    ws = ws_of(at)
    first = {k: np.array(ws.current[k]) for k in ws.current}
    click(at, "stepper_step")
    click(at, "stepper_step")
    assert ws.trainer.global_step == 3 and at.selectbox(key="stepper_shown").value == 3
    assert viewer(at)["step_label"] == "step 3 (latest)"
    at.selectbox(key="stepper_shown").set_value(1).run()
    assert any("recomputed" in i.value for i in at.info)
    shown_trace = ws.trace_of(ws.steps[0])             # the one recomputed trace the workspace keeps
    assert ws.memory()["recomputed_trace"] == shown_trace.nbytes
    for k, v in first.items():                         # the same numbers as when step 1 was taken
        assert np.array_equal(np.asarray(shown_trace[k]), v), k
    assert_viewer_shows(at, shown_trace)
    assert viewer(at)["step_label"] == "step 1 (recomputed; the network is at step 3)"
    assert at.query_params["step"] == "1"
    at.segmented_control(key="stepper_view").set_value("History and memory").run()
    assert list(table(at, "batch of the epoch")["step"]) == [3, 2, 1]
    assert any("3 past steps kept (at most 50)" in m.value for m in at.markdown)
    labels = [m.label for m in at.metric]
    assert "This step's trace" in labels and "Step history" in labels
    assert ws.trainer.global_step == 3                      # looking back trains nothing


def test_gradient_check_on_screen_agrees_with_backprop():
    at = open_stepper()
    click(at, "stepper_step")
    trace = ws_of(at).current
    at.segmented_control(key="stepper_view").set_value("Gradient check").run()
    at.number_input(key="gc_n").set_value(9).run()
    click(at, "gc_run")
    shown = table(at, "relative error")
    assert len(shown) == 9
    smooth = shown[~shown["kink"]]
    assert len(smooth) >= 5 and (smooth["relative error"] < 1e-5).all()
    assert (shown["backprop"] - shown["in the trace (float32)"]).abs().max() < 1e-6
    for _, row in shown.iterrows():     # the float32 column is the step's own gradient
        index = tuple(int(i) for i in row["index"].strip("(),").split(",") if i.strip())
        assert row["in the trace (float32)"] == float(trace["d" + row["param"]][index])
    assert any("agrees" in s.value for s in at.success)


def test_a_link_replays_the_same_step_and_phase():
    at = open_stepper()
    for _ in range(3):
        click(at, "stepper_step")
    assert at.query_params["step"] == "3" and at.query_params["stop"] == "X"
    link = [c.value for c in at.code if "stop=" in c.value][0]
    assert "step=3" in link and "stop=X" in link and "pool=3000" in link
    assert any("where this step was opened" in c.value for c in at.caption)    # moves in the browser are not in it
    before = ws_of(at).current
    view_before = viewer(at)["view"]

    fresh = open_stepper(step="3", stop="dW2")           # a teacher's link, edited to open on dW2
    ws = ws_of(fresh)
    assert ws.trainer.global_step == 3 and state(fresh).stop == "dW2"
    assert viewer(fresh)["start"] == "dW2" and fresh.query_params["stop"] == "dW2"
    assert_viewer_shows(fresh, before)
    assert viewer(fresh)["view"] == view_before                      # the same step, the same view


def test_a_custom_batch_is_stepped_and_flagged_for_links():
    at = open_stepper()
    at.radio(key="stepper_how").set_value("chosen").run()
    at.text_input(key="stepper_chosen").input("0-3, 10").run()
    click(at, "stepper_step")
    ws = ws_of(at)
    rec = ws.steps[-1]
    assert rec.how == "chosen" and list(rec.idx) == list(ws.split.train_idx[[0, 1, 2, 3, 10]])
    assert ws.current["X"].shape == (5, 784)
    assert any("random or chosen batches" in w.value for w in at.warning)
    assert viewer(at)["step_label"] == "step 1 (latest) · trains on images I choose"
    at.text_input(key="stepper_chosen").input("0, 99999").run()
    assert any("outside" in e.value for e in at.error) and at.button(key="stepper_step").disabled
    data = viewer(at)                                       # nor can the viewer's Train one mini-batch
    assert not data["can_train"] and "99,999 is outside" in data["train_help"]


def test_divergence_shows_the_message_and_the_partial_trace():
    at = open_stepper(lr="100")
    click(at, "stepper_step")
    ws = ws_of(at)
    params = ws.net.params
    click(at, "stepper_step")                                # lr 100 would blow the weights up on the second step
    assert ws.net.params is params and ws.trainer.global_step == 1
    assert any("diverged" in e.value and "learning rate" in e.value for e in at.error)
    t = state(at).diverged.trace
    assert t is not None
    assert_viewer_shows(at, t)
    data = viewer(at)
    assert data["step_label"] == "step 2: diverged, not applied" and not data["reveal"]   # the message stays in view
    assert data["view"]["stops"][-1]["key"] == "ΔW3"          # the partial trace ends at the refused update
    assert "ΔW3" in data["view"]["quantities"] and "W3_new" not in data["view"]["quantities"]   # never applied                             # a layer it would have made > 10 times larger
    assert max(np.linalg.norm(t[f"W{l}"] + t[f"ΔW{l}"]) / np.linalg.norm(t[f"W{l}"]) for l in (1, 2, 3)) > 10


def test_stepping_is_disabled_while_a_run_is_active():
    at = open_stepper()
    click(at, "stepper_step")
    ws = ws_of(at)
    ws.runner.status = "running"                             # what an active background run looks like
    try:
        at.run()
        assert any("pause the run" in w.value for w in at.warning)
        assert at.button(key="stepper_step").disabled
        data = viewer(at)                                    # looking is still allowed, training is not
        assert not data["can_train"] and "pause it" in data["train_help"]
        assert_viewer_shows(at, ws.current)
    finally:
        ws.runner.status = "idle"


def test_any_architecture_and_optimizer_is_viewed_and_zoomed_exactly():
    at = open_stepper(hidden="32", activation="tanh", optimizer="adam", lr="0.001")
    click(at, "stepper_step")
    click(at, "stepper_step")                               # Adam now has moments from the step before
    ws = ws_of(at)
    trace, rec = ws.current, ws.steps[-1]
    stops = build_stops(trace)
    assert [s.key for s in stops] == ["X", "Z1", "A1", "Z2", "A2", "losses", "dZ2", "dW2", "db2", "dA1", "dZ1",
                                      "dW1", "db1", "ΔW1", "ΔW2"]
    assert_viewer_shows(at, trace)
    at.segmented_control(key="stepper_view").set_value("All quantities").run()
    at.selectbox(key="stepper_browse").set_value("ΔW2").run()
    shown = check_table(at)                                  # ΔW2 under Adam's rule
    cell = tuple(int(at.number_input(key=f"browse_ΔW2_32x10_{ax}").value) for ax in (0, 1))
    assert shown["value in the trace"] == float(trace["ΔW2"][cell])
    assert shown["recomputed from the inputs (float64)"] == pytest.approx(float(trace["ΔW2"][cell]), rel=1e-4)
    assert explain(trace, "ΔW2", cell, optimizer=rec.optimizer_before).combine == "adam"


def test_the_step_shown_says_when_the_network_trained_on_since():
    at = open_stepper()
    click(at, "stepper_step")
    ws = ws_of(at)
    ws.trainer.train_step()                                  # what a run on the training page does
    at.run()
    assert any("trained on since" in i.value for i in at.info)
    assert viewer(at)["step_label"] == "step 1 (the network is at step 2)"
    click(at, "stepper_step")
    assert ws.trainer.global_step == 3 and ws.steps[-1].number == 3


def test_a_drawn_digit_can_be_stepped_through_backprop():
    """The Draw page leaves the digit in the session; the stepper trains one real step on it."""
    import numpy as _np
    from core.data.mnist import load_mnist

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "streamlit_app.py"), default_timeout=120)
    at.query_params["pool"] = "3000"
    at.query_params["val"] = "500"
    at.run()
    digit = load_mnist()["test"].X[0]                 # a 7
    session(at.session_state).drawn_digit = digit
    at.switch_page("pages/stepper.py")
    at.run()
    at.radio(key="stepper_how").set_value("drawn")
    at.run()
    at.number_input(key="stepper_drawn_label").set_value(7)
    at.run()
    [b for b in at.button if b.key == "stepper_step"][0].click()
    at.run()
    assert not at.exception
    ws = ws_of(at)
    t = ws.current
    assert t["X"].shape == (1, 784) and int(t["y"][0]) == 7
    _np.testing.assert_array_equal(t["X"][0], digit / _np.float32(255))
    rec = ws.steps[-1]
    assert rec.how == "drawn" and ws.trainer.global_step == 1
    again = ws.trace_of(rec) if rec is not ws.steps[-1] else ws.net.with_params(rec.params_before).forward_backward(
        t["X"], t["y"])
    _np.testing.assert_allclose(again["dW1"], t["dW1"])
    # the gradient check runs on the drawn digit itself (it once checked an empty batch: a drawn
    # step has no indices into the data set)
    at.segmented_control(key="stepper_view").set_value("Gradient check").run()
    click(at, "gc_run")
    shown = table(at, "relative error")
    assert (shown["backprop"] - shown["in the trace (float32)"]).abs().max() < 1e-6
    assert any("agrees" in s.value for s in at.success)


@pytest.mark.parametrize("query, says", [
    ({"step": "three"}, "The link's step number was not a number; nothing was replayed."),
    ({"step": "2000", "hidden": "512,512,512", "batch_size": "2048"}, "at these sizes a link replays at most 4 steps"),
])
def test_a_fresh_session_sees_why_its_link_replayed_nothing(query, says):
    at = open_stepper(**query)
    assert ws_of(at).trainer.global_step == 0
    assert any(says in i.value for i in at.info), [i.value for i in at.info]


def test_a_long_link_replays_in_the_training_process_and_shows_how_far():
    at = open_stepper(step="300", stop="dW1")
    ws = ws_of(at)
    if state(at).replaying:            # (unless the training process has already ended)
        bars = [e.proto.text for e in at.get("progress")]
        assert any(t.startswith("Replaying the link: step ") and "of 300, in the training process" in t
                   for t in bars), bars
        assert not at.get("plotly_chart") and "stepper_step" not in [b.key for b in at.button]   # it waits
        ws.runner.join(120)
        assert not ws.busy
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert ws.trainer.global_step == 300 and len(ws.steps) == 1 and state(at).stop == "dW1"
    assert any(i.value == "Replayed 300 steps from the link." for i in at.info)
    assert at.query_params["step"] == "300" and at.query_params["stop"] == "dW1"
    assert viewer(at)["start"] == "dW1" and viewer(at)["step_label"] == "step 300 (latest)"
    click(at, "stepper_step")                                   # the student steps on: the note goes
    assert not any("Replayed" in i.value for i in at.info)
    assert viewer(at)["start"] == "X"                            # and the new step opens on its first stop
