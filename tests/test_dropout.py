"""Inverted dropout on the hidden layers: A_l = f(Z_l) ⊙ M_l with M_l ∈ {0, 1/(1−p)} drawn per
training step from the seed and the step's number; nothing at evaluation; backprop through the mask
checked against finite differences with the mask held; the mask is a quantity of the trace, so the
stepper, the explanations, the lesson and the notebook work with it; checkpoints carry p."""
import io
import json
from dataclasses import replace

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from core.engine.activations import ACTIVATIONS
from core.engine.gradcheck import check_gradients
from core.engine.network import MLP, dropout_masks, loss_after_update
from core.engine.optim import SGD
from core.engine.trainer import evaluate
from core.lab import checkpoint
from core.lab.checkpoint import CheckpointError
from core.lab.settings import FIELDS, Settings
from core.lab.workspace import Workspace
from core.teach.explain import explain
from core.teach.lesson import RIGHT, questions
from core.teach.notebook import step_notebook
from tests.run_helpers import paused_and_resumed_is_the_whole_run, small_split

SMALL = Settings(pool=600, val=100, batch_size=50, epochs=2, dropout=0.5)


def batch(m=16, n_in=30, k=10, seed=1):
    rng = np.random.default_rng(seed)
    return rng.random((m, n_in)), rng.integers(0, k, m)


# --------------------------------------------------------------------------- the engine
def test_a_training_step_drops_units_and_scales_the_kept_ones_and_evaluation_drops_nothing():
    net = MLP([30, 200, 100, 10], seed=0, dtype=np.float64, dropout=0.25)
    X, y = batch(40)
    trace = net.step(X, y, SGD(0.1), np.random.default_rng(5))
    assert list(trace.masks) == ["M1", "M2"] and trace.dropout == 0.25
    for l in (1, 2):
        M = trace[f"M{l}"]
        assert M.shape == trace[f"Z{l}"].shape and set(np.unique(M)) <= {0.0, 1 / 0.75}
        assert abs((M == 0).mean() - 0.25) < 0.03                  # dropped with probability p
        np.testing.assert_array_equal(trace[f"A{l}"], np.maximum(trace[f"Z{l}"], 0) * M)
    assert "M1" not in net.forward(X) and "M3" not in trace       # evaluation: no mask; none at the output
    # backward: dZ = (dA ⊙ M) ⊙ f'(Z), so a dropped unit gets no gradient
    dZ1, M1 = trace["dZ1"], trace["M1"]
    assert (dZ1[M1 == 0] == 0).all()
    np.testing.assert_allclose(dZ1, trace["dA1"] * M1 * (trace["Z1"] > 0), rtol=1e-12)
    # the specs: M between Z and A, with its equation and scaling, and the equations that use it
    names = list(trace)
    assert names.index("Z1") < names.index("M1") < names.index("A1")
    assert trace.spec("M1").phase == "forward" and "1.333" in trace.spec("M1").latex
    assert "M1" in trace.spec("A1").inputs and r"M_{1}" in trace.spec("A1").latex
    assert "M1" in trace.spec("dZ1").inputs and r"\odot M_{1}" in trace.spec("dZ1").latex
    assert "p = 0.25" in trace.spec("M1").about


def test_p_zero_is_the_seeds_step_exactly():
    X, y = batch()
    a = MLP([30, 12, 10], seed=0).step(X, y, SGD(0.1), np.random.default_rng(1))
    b = MLP([30, 12, 10], seed=0, dropout=0.0).step(X, y, SGD(0.1))
    assert not a.masks and list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    assert MLP([30, 12, 10]).config["dropout"] == 0.0


@pytest.mark.parametrize("bad", [-0.1, 0.95, 1.0, float("nan")])
def test_dropout_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="Dropout"):
        MLP([30, 12, 10], dropout=bad)
    assert FIELDS["dropout"].problem(bad)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("sizes", [[30, 9, 10], [25, 12, 7, 5, 10]])
def test_backprop_through_dropout_matches_finite_differences_with_the_mask_held(activation, sizes):
    net = MLP(sizes, activation=activation, init="he", seed=3, dtype=np.float64, dropout=0.4)
    X, y = batch(12, sizes[0], sizes[-1], seed=4)
    masks = dropout_masks(net, 12, np.random.default_rng(7))
    assert all((m == 0).any() for m in masks.values())          # some units really are dropped
    rng = np.random.default_rng(0)
    entries = [(name, tuple(int(rng.integers(s)) for s in p.shape)) for name, p in net.params.items() for _ in range(6)]
    results = check_gradients(net, X, y, entries, masks=masks)
    smooth = [r for r in results if not r.kink]
    assert len(smooth) >= 0.8 * len(results)      # a dropped row can leave a Z exactly at a kink: flagged, not compared
    for r in smooth:
        assert r.rel_error <= 1e-6 or r.abs_error <= 1e-10, r
    for name in net.params:
        sizable = [r for r in smooth if r.param == name and abs(r.backprop) > 1e-5]
        assert all(r.rel_error <= 1e-6 for r in sizable), name
    # and the check can fail: backprop that ignored the mask disagrees
    W1 = [(n, i) for n, i in entries if n == "W2"]
    ignoring = check_gradients(net, X, y, W1)                    # no mask in backprop …
    held = check_gradients(net, X, y, W1, masks=masks)           # … against the masked loss
    assert any(abs(a.backprop - b.numeric) > 1e-6 * (abs(b.numeric) + 1e-8) for a, b in zip(ignoring, held))


# --------------------------------------------------------------------------- training
def test_the_same_seed_gives_the_same_run_bit_for_bit_and_another_seed_other_masks(mnist):
    def run(settings):
        ws = Workspace(settings, mnist["train"], mnist["test"])
        ws.trainer.run(1)
        ws.step()
        return ws
    a, b, off = run(SMALL), run(SMALL), run(replace(SMALL, dropout=0.0))
    assert all(np.array_equal(a.net.params[k], b.net.params[k]) for k in a.net.params)
    assert np.array_equal(a.current["M1"], b.current["M1"])
    assert not np.array_equal(a.net.params["W1"], off.net.params["W1"])
    # evaluation drops nothing: the validation accuracy is the plain forward pass's, the same every time
    val = a.split.val_idx
    first, second = (evaluate(a.net, mnist["train"].X[val], mnist["train"].y[val]) for _ in range(2))
    assert first["acc"] == second["acc"] and np.array_equal(first["proba"], second["proba"])
    # each step draws its own masks
    first = a.trace_of(a.steps[-1])["M1"]
    assert not np.array_equal(first, a.step()["M1"])


def test_a_kept_step_is_recomputed_with_the_masks_it_drew(mnist):
    ws = Workspace(SMALL, mnist["train"], mnist["test"])
    traces = [ws.step() for _ in range(3)]
    again = ws.trace_of(ws.steps[0])
    assert all(np.array_equal(traces[0][k], again[k]) for k in traces[0])
    assert loss_after_update(traces[-1]) == pytest.approx(
        float(ws.net.forward_backward(traces[-1]["X"], traces[-1]["y"], masks=traces[-1].masks).loss), rel=1e-6)
    # undo goes back, and stepping again draws the same masks as the first time
    ws.undo(ws.steps[-1].before)
    assert np.array_equal(ws.step()["M2"], traces[-1]["M2"])


def test_a_checkpoint_carries_p_and_resuming_is_the_same_run(mnist):
    ws = Workspace(SMALL, mnist["train"], mnist["test"])
    for _ in range(13):
        ws.step()
    ck = checkpoint.load(checkpoint.to_bytes(ws.net, ws.optimizer, ws.trainer))
    assert ck.net.dropout == 0.5
    assert Settings.of_network(ck.net.config, ck.optimizer.hyper, ck.trainer_state, ck.split).dropout == 0.5
    again = checkpoint.restore_trainer(ck, ws.split)
    a, b = ws.trainer.train_step(), again.train_step()
    assert np.array_equal(a["M1"], b["M1"])
    assert all(np.array_equal(ws.net.params[k], again.net.params[k]) for k in ws.net.params)


def _with_config(data: bytes, change) -> bytes:
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    config = json.loads(str(arrays["config"]))
    change(config["net"])
    arrays["config"] = np.array(json.dumps(config))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_a_checkpoint_from_before_dropout_loads_as_p_zero_and_a_bad_p_is_refused(mnist):
    ws = Workspace(replace(SMALL, dropout=0.0), mnist["train"], mnist["test"])
    ws.step()
    data = checkpoint.to_bytes(ws.net, ws.optimizer, ws.trainer)
    old = checkpoint.load(_with_config(data, lambda net: net.pop("dropout")))
    assert old.net.dropout == 0.0
    assert Settings.of_network(old.net.config, old.optimizer.hyper, old.trainer_state, old.split).dropout == 0.0
    for bad in (0.95, -1, "half", True, None):
        with pytest.raises(CheckpointError, match="dropout"):
            checkpoint.load(_with_config(data, lambda net: net.update(dropout=bad)))


def test_dropout_is_a_setting_with_bounds_links_and_the_command_line():
    s, notes = Settings.from_query({"dropout": "0.2"})
    assert not notes and s.dropout == 0.2 and s.to_query() == {"dropout": "0.2"}
    s, notes = Settings.from_query({"dropout": "0.95"})
    assert s.dropout == 0.0 and "Dropout p must be 0 to 0.9" in notes[0]
    assert "dropout" in Settings().model_changes(Settings(dropout=0.3))
    from core.train import parse_args, settings_of
    assert settings_of(parse_args(["--dropout", "0.3"])).dropout == 0.3


# --------------------------------------------------------------------------- shown like everything else
def test_every_quantity_of_a_dropout_step_is_explained_exactly(mnist):
    for activation in ("relu", "sigmoid"):
        net = MLP([784, 32, 16, 10], activation=activation, init="he", seed=3, dtype=np.float64, dropout=0.3)
        X, y = batch(16, 784, seed=2)
        trace = net.step(X, y, SGD(0.1), np.random.default_rng(3))
        rng = np.random.default_rng(0)
        for name in trace:
            a = np.asarray(trace[name])
            cells = [()] if a.ndim == 0 else [tuple(int(rng.integers(s)) for s in a.shape) for _ in range(8)]
            if name in ("M1", "A1", "dZ1"):        # a dropped cell and a kept one
                cells += [tuple(int(i) for i in np.argwhere(trace["M1"] == 0)[0]),
                          tuple(int(i) for i in np.argwhere(trace["M1"] != 0)[0])]
            for index in cells:
                ex = explain(trace, name, index)
                assert ex.value == float(a[index])
                assert abs(ex.total - ex.value) <= 1e-9 * max(1.0, abs(ex.value)), (name, index, ex.total, ex.value)
        dropped = tuple(int(i) for i in np.argwhere(trace["M1"] == 0)[0])
        assert "dropped" in explain(trace, "M1", dropped).note and explain(trace, "dZ1", dropped).total == 0


def test_the_lessons_questions_are_right_with_dropout(mnist):
    ws = Workspace(Settings(pool=3000, val=500, dropout=0.5), mnist["train"], mnist["test"])
    trace = ws.step()
    qs = {q.key: q for q in questions(trace)}
    z = qs["zeros"]
    right = tuple(o for o in z.parts[0].options
                  if np.asarray(trace["dZ2"])[tuple(int(i) for i in o[o.index("[") + 1:-1].split(","))] == 0)
    assert z.check((right,)).status == RIGHT
    assert "M_{2}" in z.prompt and "dropout" in z.why and z.given.rows[1].startswith("M2")
    assert z.formula == trace.spec("dZ2").latex
    after = loss_after_update(trace)      # with the step's own masks: what the first-order promise is about
    assert after == pytest.approx(float(ws.net.forward_backward(trace["X"], trace["y"], masks=trace.masks).loss),
                                  rel=1e-6)


def test_the_notebook_of_a_dropout_step_runs_and_checks_every_quantity(mnist):
    ws = Workspace(Settings(pool=3000, val=500, batch_size=8, dropout=0.5, activation="sigmoid",
                            optimizer="momentum"), mnist["train"], mnist["test"])
    ws.step()
    ws.step()
    rec = ws.steps[-1]
    trace = ws.trace_of(rec)
    nb = nbformat.reads(step_notebook(trace, rec.optimizer_before, number=rec.number).decode(), as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "A1 = F1 * M1" in source and "dZ1 = (dA1 * M1) * F1 * (1 - F1)" in source
    assert 'M1 = unpack("' in nb.cells[3].source or 'M1 = unpack("' in source
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()      # every assert_allclose passes
    asserts = source.count("np.testing.assert_allclose(")
    assert asserts == len([n for n in trace if n not in ("X", "y", "M1", "M2", "W1", "b1", "W2", "b2", "W3", "b3")])


def test_the_stepper_shows_the_masks_zooms_them_and_checks_gradients_with_them():
    from tests.test_stepper_page import assert_viewer_shows, check_table, click, open_stepper, table, ws_of
    at = open_stepper(dropout="0.5")
    assert ws_of(at).net.dropout == 0.5
    click(at, "stepper_step")
    trace = ws_of(at).current
    assert "M1" in trace and "M2" in trace
    assert_viewer_shows(at, trace)                      # the masks go to the trace viewer like every quantity
    at.segmented_control(key="stepper_view").set_value("All quantities").run()
    at.selectbox(key="stepper_browse").set_value("A1").run()
    i, j = (int(v) for v in np.argwhere(np.asarray(trace["M1"]) == 0)[0])
    at.number_input(key="browse_A1_64x64_0").set_value(i).run()
    at.number_input(key="browse_A1_64x64_1").set_value(j).run()
    shown = check_table(at)
    assert shown["value in the trace"] == 0.0 and shown["recomputed from the inputs (float64)"] == 0.0
    at.segmented_control(key="stepper_view").set_value("Gradient check").run()
    at.number_input(key="gc_n").set_value(9).run()
    click(at, "gc_run")
    shown = table(at, "relative error")
    smooth = shown[~shown["kink"]]
    assert len(smooth) >= 5 and (smooth["relative error"] < 1e-5).all()     # against the masked loss
    assert any("agrees" in s.value for s in at.success)


def test_the_stepper_says_what_dropout_did_at_its_stops():
    from ui.stepper_views import build_stops, stop_text
    X, y = batch(8, 784)
    with_masks = MLP([784, 16, 16, 10], dropout=0.5).step(X, y, SGD(0.1))
    plain = MLP([784, 16, 16, 10]).step(X, y, SGD(0.1))
    said = {s.key: stop_text(s, with_masks) for s in build_stops(with_masks)}
    assert "Dropout" in said["A1"] and "M1" in said["A1"] and "(dA2 ⊙ M2)" in said["dZ2"]
    assert not any("ropout" in stop_text(s, plain) for s in build_stops(plain))


def test_rmsprop_and_dropout_train_in_the_training_process_exactly_as_here(mnist):
    """The run of Start training (another process, paused and resumed) is the in-process run, bit for bit."""
    from core.engine.optim import RMSprop
    from core.engine.trainer import Trainer
    _, tr = paused_and_resumed_is_the_whole_run(lambda: Trainer(MLP([784, 16, 16, 10], seed=0, dropout=0.3),
                                                                RMSprop(0.001), small_split(mnist), batch_size=64, seed=0))
    assert tr.net.dropout == 0.3


def test_the_lr_lessons_trials_are_the_step_with_its_masks(mnist):
    from core.teach import lr_lesson
    ws = Workspace(Settings(pool=3000, val=500, dropout=0.3), mnist["train"], mnist["test"])
    ws.step()
    lesson = lr_lesson.run(ws.trainer, (0.001, 0.1), keep_params=True)
    mine = lesson.trial(0.1)
    trace = ws.step()
    assert mine.loss_before == trace.loss                   # the batch's loss through the step's own masks
    assert all(np.array_equal(mine.params_after[k], trace[k + "_new"]) for k in ws.net.params)
    small = lesson.trial(0.001)
    assert small.first_order < 0
    assert small.loss_after - small.loss_before == pytest.approx(small.first_order, rel=0.05)
