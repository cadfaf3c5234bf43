"""The stepper page, driven through Streamlit's AppTest: what it shows is what the engine computed."""
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.teach.explain import explain
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


def stats_table_of(at, k):
    return [d.value for d in at.dataframe if "fraction of zeros" in d.value.columns][k].set_index("quantity")


def check_table(at):
    return table(at, "").set_index("")["value"]


def latex(at):
    return [e.value.strip("$\n") for e in at.latex]


def assert_stats_match(shown, trace, name):
    a = np.asarray(trace[name], np.float64)
    row = shown.loc[name]
    assert row["shape"] == str(a.shape) if a.ndim != 1 else row["shape"] == f"({len(a)},)"
    for col, want in (("min", a.min()), ("max", a.max()), ("mean", a.mean()), ("std", a.std()),
                      ("fraction of zeros", (a == 0).mean())):
        assert row[col] == pytest.approx(float(want), rel=1e-9, abs=1e-15), (name, col)


def test_step_once_and_walk_every_phase_forward_and_back():
    at = open_stepper()
    assert any("Press **Step**" in i.value for i in at.info)
    click(at, "stepper_step")
    ws = ws_of(at)
    trace = ws.current
    assert ws.trainer.global_step == 1 and len(ws.steps) == 1
    keys = [s.key for s in build_stops(trace)]
    assert keys[:7] == ["X", "Z1", "A1", "Z2", "A2", "Z3", "A3"] and keys[7:9] == ["losses", "dZ3"]
    assert keys[-3:] == ["ΔW1", "ΔW2", "ΔW3"] and len(keys) == 22

    seen = []
    for k, key in enumerate(keys):
        assert state(at).stop == key
        assert at.query_params["stop"] == key and at.query_params["step"] == "1"
        stop = build_stops(trace)[k]
        shown = stats_table(at)
        for name in stop.names:
            assert trace.spec(name).latex in latex(at)
            assert_stats_match(shown, trace, name)
        if key == "Z1":
            assert r"Z_{1} = X\, W_{1} + b_{1}" in latex(at)
            assert shown.loc["Z1", "shape"] == "(64, 64)" and shown.loc["W1", "shape"] == "(784, 64)"
            assert list(shown.index) == ["X", "W1", "b1", "Z1"]          # the inputs beside the output
        seen.append(key)
        if k < len(keys) - 1:
            click(at, "stepper_next")
    assert seen == keys and at.button(key="stepper_next").disabled
    for key in reversed(keys[:-1]):
        click(at, "stepper_prev")
        assert state(at).stop == key
    assert at.button(key="stepper_prev").disabled
    click(at, "stepper_rest")
    assert state(at).stop == "ΔW3"
    assert ws.trainer.global_step == 1                      # walking never trains


def test_the_zoom_rebuilds_the_chosen_cell():
    at = open_stepper()
    click(at, "stepper_step")
    trace = ws_of(at).current
    at.pills(key="stepper_strip_forward").set_value("Z1").run()
    assert state(at).stop == "Z1"
    at.number_input(key="stop_Z1_Z1_64x64_0").set_value(3).run()
    at.number_input(key="stop_Z1_Z1_64x64_1").set_value(5).run()
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

    at.pills(key="stepper_strip_backward").set_value("dW1").run()
    at.number_input(key="stop_dW1_dW1_784x64_0").set_value(400).run()
    at.number_input(key="stop_dW1_dW1_784x64_1").set_value(7).run()
    shown = check_table(at)
    assert shown["value in the trace"] == float(trace["dW1"][400, 7])
    assert shown["recomputed from the inputs (float64)"] == pytest.approx(float(trace["dW1"][400, 7]), rel=1e-4, abs=1e-9)
    assert len(table(at, "contribution")) == 12                  # the largest of 64 per-sample terms

    # the browser of all quantities can show the same quantity as the stop, with its own zoom
    at.segmented_control(key="stepper_view").set_value("All quantities").run()
    at.selectbox(key="stepper_browse").set_value("dW1").run()
    assert not at.exception
    assert sum("fraction of zeros" in d.value.columns for d in at.dataframe) == 2
    at.selectbox(key="stepper_browse").set_value("A2").run()
    at.number_input(key="browse_A2_64x64_0").set_value(7).run()
    at.number_input(key="browse_A2_64x64_1").set_value(9).run()
    shown = [d.value.set_index("")["value"] for d in at.dataframe if "" in d.value.columns][-1]
    assert shown["value in the trace"] == float(trace["A2"][7, 9])
    assert_stats_match(stats_table_of(at, -1), trace, "A2")


def test_one_samples_view():
    at = open_stepper()
    click(at, "stepper_step")
    trace = ws_of(at).current
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
    first = {k: np.array(ws.current[k]) for k in ("Z1", "dW2", "W3_new")}
    click(at, "stepper_again")
    click(at, "stepper_again")
    assert ws.trainer.global_step == 3 and at.selectbox(key="stepper_shown").value == 3
    at.selectbox(key="stepper_shown").set_value(1).run()
    at.pills(key="stepper_strip_forward").set_value("Z1").run()
    assert any("recomputed" in i.value for i in at.info)
    shown_trace = ws.trace_of(ws.steps[0])             # the one recomputed trace the workspace keeps
    assert ws.memory()["recomputed_trace"] == shown_trace.nbytes
    for k, v in first.items():
        assert np.array_equal(np.asarray(shown_trace[k]), v), k
    assert_stats_match(stats_table(at), {"Z1": first["Z1"]}, "Z1")
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
    click(at, "stepper_step")
    click(at, "stepper_again")
    click(at, "stepper_again")
    at.pills(key="stepper_strip_backward").set_value("dW2").run()
    assert at.query_params["step"] == "3" and at.query_params["stop"] == "dW2"
    link = [c.value for c in at.code if "stop=" in c.value][0]
    assert "step=3" in link and "stop=dW2" in link and "pool=3000" in link
    before = ws_of(at).current
    shown_before = stats_table(at)

    fresh = open_stepper(step="3", stop="dW2")
    ws = ws_of(fresh)
    assert ws.trainer.global_step == 3 and state(fresh).stop == "dW2"
    for k in ("X", "Z1", "dW2", "W3_new"):
        assert np.array_equal(np.asarray(ws.current[k]), np.asarray(before[k])), k
    assert stats_table(fresh).equals(shown_before)


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
    at.text_input(key="stepper_chosen").input("0, 99999").run()
    assert any("outside" in e.value for e in at.error) and at.button(key="stepper_step").disabled


def test_divergence_shows_the_message_and_the_partial_trace():
    at = open_stepper(lr="100")
    click(at, "stepper_step")
    ws = ws_of(at)
    params = ws.net.params
    click(at, "stepper_again")                               # lr 100 would blow the weights up on the second step
    assert ws.net.params is params and ws.trainer.global_step == 1
    assert any("diverged" in e.value and "learning rate" in e.value for e in at.error)
    assert state(at).diverged.trace is not None
    click(at, "stepper_rest")
    assert state(at).stop == "ΔW3"                          # the partial trace ends at the refused update
    shown = stats_table(at)
    assert "ΔW3" in shown.index and "W3_new" not in shown.index      # never applied
    t = state(at).diverged.trace                             # a layer it would have made > 10 times larger
    assert max(np.linalg.norm(t[f"W{l}"] + t[f"ΔW{l}"]) / np.linalg.norm(t[f"W{l}"]) for l in (1, 2, 3)) > 10


def test_stepping_is_disabled_while_a_run_is_active():
    at = open_stepper()
    click(at, "stepper_step")
    ws = ws_of(at)
    ws.runner.status = "running"                             # what an active background run looks like
    try:
        at.run()
        assert any("pause the run" in w.value for w in at.warning)
        assert at.button(key="stepper_again").disabled and at.button(key="stepper_step").disabled
        click(at, "stepper_next")                            # looking is still allowed
        assert state(at).stop == "Z1"
    finally:
        ws.runner.status = "idle"


def test_any_architecture_and_optimizer_walks_and_zooms_exactly():
    at = open_stepper(hidden="32", activation="tanh", optimizer="adam", lr="0.001")
    click(at, "stepper_step")
    click(at, "stepper_again")                              # Adam now has moments from the step before
    ws = ws_of(at)
    trace, rec = ws.current, ws.steps[-1]
    stops = build_stops(trace)
    assert [s.key for s in stops] == ["X", "Z1", "A1", "Z2", "A2", "losses", "dZ2", "dW2", "db2", "dA1", "dZ1",
                                      "dW1", "db1", "ΔW1", "ΔW2"]
    for stop in stops:
        at.pills(key=f"stepper_strip_{stop.phase}").set_value(stop.key).run()
        assert not at.exception and state(at).stop == stop.key
    shown = check_table(at)                                  # the last stop: ΔW2 under Adam's rule
    cell = tuple(int(at.number_input(key=f"stop_ΔW2_ΔW2_32x10_{ax}").value) for ax in (0, 1))
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
    click(at, "stepper_again")
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
    click(at, "stepper_next")                                   # the student moves on: the note goes
    assert not any("Replayed" in i.value for i in at.info)
