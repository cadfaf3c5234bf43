"""Batch norm after each hidden layer's Z: μ, σ² of the batch, Ẑ = (Z − μ)/√(σ² + ε), N = γ ⊙ Ẑ + β,
A = f(N), each a quantity of the step with its own backward (checked against finite differences);
running statistics averaged in by every training step and used at evaluation; a setting carried by
links, the command line and checkpoints; shown by the stepper, the lesson and the notebook like the rest."""
import io
import json
from dataclasses import replace

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from core.engine.activations import ACTIVATIONS
from core.engine.gradcheck import check_gradients
from core.engine.network import BN_EPS, MLP, dropout_masks, loss_after_update
from core.engine.optim import SGD, Adam
from core.engine.trainer import evaluate
from core.lab import checkpoint
from core.lab.checkpoint import CheckpointError
from core.lab.settings import FIELDS, Settings
from core.lab.workspace import Workspace
from core.teach.explain import explain
from core.teach.lesson import RIGHT, questions
from core.teach.notebook import step_notebook
from tests.run_helpers import paused_and_resumed_is_the_whole_run, small_split

# 2,560 training images: 40 full batches of 64 (a last batch of a few images gives noisy statistics)
SMALL = Settings(pool=3060, val=500, batch_size=64, epochs=3, batchnorm=True)


def batch(m=16, n_in=30, k=10, seed=1):
    rng = np.random.default_rng(seed)
    return rng.random((m, n_in)), rng.integers(0, k, m)


# --------------------------------------------------------------------------- the engine
def test_a_training_step_normalises_each_unit_over_the_batch_then_scales_and_shifts():
    net = MLP([30, 20, 12, 10], seed=0, dtype=np.float64, batchnorm=True, init="he")
    net.params["γ1"] = np.linspace(0.5, 2, 20)
    net.params["β1"] = np.linspace(-1, 1, 20)
    X, y = batch(40)
    trace = net.step(X, y, SGD(0.1))
    assert trace.batchnorm and trace.trained == ("W1", "b1", "γ1", "β1", "W2", "b2", "γ2", "β2", "W3", "b3")
    Z, Zh = trace["Z1"], trace["Ẑ1"]
    np.testing.assert_allclose(trace["μ1"], Z.mean(0), rtol=1e-12)
    np.testing.assert_allclose(trace["σ²1"], Z.var(0), rtol=1e-12)          # biased: divided by m
    np.testing.assert_allclose(Zh.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(Zh.var(0), Z.var(0) / (Z.var(0) + BN_EPS), rtol=1e-12)   # 1 but for ε
    np.testing.assert_allclose(trace["N1"], np.linspace(0.5, 2, 20) * Zh + np.linspace(-1, 1, 20), rtol=1e-12)
    np.testing.assert_array_equal(trace["A1"], np.maximum(trace["N1"], 0))
    assert "N3" not in trace and "μ3" not in trace and "γ3" not in net.params       # the output layer has none
    # the order of the step and the specs: Z, μ, σ², Ẑ, N, A; backward dA, dN, dγ, dβ, dẐ, dZ, dW, db
    names = list(trace)
    assert [names.index(n) for n in ("Z1", "μ1", "σ²1", "Ẑ1", "N1", "A1")] == sorted(
        names.index(n) for n in ("Z1", "μ1", "σ²1", "Ẑ1", "N1", "A1"))
    back = ["dA1", "dN1", "dγ1", "dβ1", "dẐ1", "dZ1", "dW1", "db1"]
    assert [names.index(n) for n in back] == sorted(names.index(n) for n in back)
    assert trace.spec("A1").inputs == ("N1",) and r"N_{1}" in trace.spec("A1").latex
    assert r"\hat Z_{1}" in trace.spec("Ẑ1").latex and r"\epsilon" in trace.spec("Ẑ1").latex
    assert trace.spec("N1").inputs == ("Ẑ1", "γ1", "β1")
    # db is exactly 0: the mean subtraction cancels the bias, and the screen says so
    assert not trace["db1"].any() and not trace["db2"].any() and trace["db3"].any()
    np.testing.assert_allclose(trace["dZ1"].sum(0), 0, atol=1e-12)
    assert "exactly 0" in trace.spec("db1").about


def test_batchnorm_off_is_the_seeds_step_exactly_and_the_weights_start_the_same():
    X, y = batch()
    a = MLP([30, 12, 10], seed=0).step(X, y, SGD(0.1))
    b = MLP([30, 12, 10], seed=0, batchnorm=False).step(X, y, SGD(0.1))
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a) and not a.batchnorm
    on = MLP([30, 12, 10], seed=0, batchnorm=True)
    assert np.array_equal(on.params["W1"], MLP([30, 12, 10], seed=0).params["W1"])    # the same draws
    assert (on.params["γ1"] == 1).all() and (on.params["β1"] == 0).all()
    assert (on.params["μ1_run"] == 0).all() and (on.params["σ²1_run"] == 1).all()
    assert MLP([30, 12, 10]).config["batchnorm"] is False and on.config["batchnorm"] is True


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("sizes", [[30, 9, 10], [25, 12, 7, 5, 10]])
@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_every_gradient_through_batchnorm_matches_finite_differences(activation, sizes, dropout):
    net = MLP(sizes, activation=activation, init="he", seed=3, dtype=np.float64, batchnorm=True, dropout=dropout)
    rng = np.random.default_rng(0)
    for l in range(1, net.n_layers):        # γ and β away from their start, so every term of dZ matters
        net.params[f"γ{l}"] = rng.uniform(0.5, 1.5, sizes[l])
        net.params[f"β{l}"] = rng.uniform(-0.5, 0.5, sizes[l])
    X, y = batch(12, sizes[0], sizes[-1], seed=4)
    masks = dropout_masks(net, 12, np.random.default_rng(7)) or None
    entries = [(name, tuple(int(rng.integers(s)) for s in net.params[name].shape))
               for name in net.trained for _ in range(5)]
    assert {n for n, _ in entries} >= {"γ1", "β1", "W1", "b1"}
    results = check_gradients(net, X, y, entries, masks=masks)
    smooth = [r for r in results if not r.kink]
    assert len(smooth) >= 0.8 * len(results)
    for r in smooth:
        assert r.rel_error <= 1e-6 or r.abs_error <= 1e-10, r
    for name in net.trained:
        sizable = [r for r in smooth if r.param == name and abs(r.backprop) > 1e-5]
        assert all(r.rel_error <= 1e-6 for r in sizable), name
        if name.startswith(("γ", "β", "W")):
            assert sizable, f"no sizable gradient of {name} was checked"
    # a hidden layer's db is exactly 0 in backprop and agrees with finite differences' rounding noise
    biases = [r for r in results if r.param == "b1"]
    assert biases and all(r.backprop == 0 and r.rel_error == 0 for r in biases)


def test_the_gradient_check_fails_a_wrong_backward_pass_through_batchnorm(monkeypatch):
    net = MLP([30, 9, 10], init="he", seed=3, dtype=np.float64, batchnorm=True)
    X, y = batch(12, 30, seed=4)
    entries = [("W1", (k, j)) for k in range(3, 6) for j in range(3)]
    assert all(r.rel_error < 1e-6 for r in check_gradients(net, X, y, entries) if not r.kink)

    right = MLP._normalise_backward

    def only_scaled(self, dN, p, v, l):      # forgets that μ and σ² depend on every sample
        right(self, dN, p, v, l)            # (writes dN, dγ, dβ, dẐ)
        return v[f"dẐ{l}"] / np.sqrt(v[f"σ²{l}"] + BN_EPS)
    monkeypatch.setattr(MLP, "_normalise_backward", only_scaled, raising=True)
    wrong = [r for r in check_gradients(net, X, y, entries) if not r.kink]
    assert max(r.rel_error for r in wrong) > 1e-2


# --------------------------------------------------------------------------- running statistics
def test_a_step_averages_the_batch_statistics_into_the_running_ones_which_the_optimizer_never_sees():
    net = MLP([30, 9, 8, 10], seed=0, dtype=np.float64, batchnorm=True)
    X, y = batch(20)
    opt = Adam(0.01)
    trace = net.step(X, y, opt)
    for l in (1, 2):
        np.testing.assert_allclose(trace[f"μ{l}_run_new"], 0.1 * trace[f"μ{l}"], rtol=1e-12)
        np.testing.assert_allclose(trace[f"σ²{l}_run_new"], 0.9 + 0.1 * trace[f"σ²{l}"], rtol=1e-12)
        assert net.params[f"μ{l}_run"] is trace[f"μ{l}_run_new"]
        assert f"Δμ{l}_run" not in trace and f"dμ{l}_run" not in trace
    assert not any(k.endswith("_run") for k in opt.state())          # not trained
    assert "μ1_run" in net.params and "μ1_run" not in net.trained
    # many steps on one batch: the running statistics converge to its statistics (the weights held still)
    still = MLP([30, 9, 8, 10], seed=0, dtype=np.float64, batchnorm=True)
    for _ in range(200):
        t = still.step(X, y, SGD(1e-12))
    np.testing.assert_allclose(still.params["μ1_run"], t["μ1"], rtol=1e-5)      # 0.9²⁰⁰ of the start is left
    np.testing.assert_allclose(still.params["σ²1_run"], t["σ²1"], rtol=1e-5)


def test_evaluation_normalises_with_the_running_statistics_and_differs_from_training_mode():
    net = MLP([30, 9, 8, 10], seed=0, dtype=np.float64, batchnorm=True, init="he")
    X, y = batch(20)
    for _ in range(5):
        net.step(X, y, SGD(0.1))
    ev, tr = net.forward(X), net.forward(X, train=True)
    p = net.params
    np.testing.assert_allclose(ev["Ẑ1"], (ev["Z1"] - p["μ1_run"]) / np.sqrt(p["σ²1_run"] + BN_EPS), rtol=1e-12)
    assert "μ1" not in ev and "μ1" in tr
    assert not np.allclose(ev["A3"], tr["A3"])                       # another normalisation, other outputs
    # at evaluation an image's answer does not depend on the rest of its batch; in training mode it does
    np.testing.assert_allclose(net.forward(X[:1])["A3"][0], ev["A3"][0], rtol=1e-12)
    assert not np.allclose(net.forward(X[:2], train=True)["A3"][0], tr["A3"][0])
    got = evaluate(net, np.round(X * 255).astype(np.uint8), y)
    want = net.forward(np.round(X * 255).astype(np.uint8) / 255)["A3"]
    np.testing.assert_allclose(got["proba"], want.astype(net.dtype), rtol=1e-6)


# --------------------------------------------------------------------------- training
def test_the_same_seed_gives_the_same_run_bit_for_bit(mnist):
    def run(settings):
        ws = Workspace(settings, mnist["train"], mnist["test"])
        ws.trainer.run(1)
        ws.step()
        return ws
    a, b, off = run(SMALL), run(SMALL), run(replace(SMALL, batchnorm=False))
    assert set(a.net.params) == set(b.net.params) and "γ2" in a.net.params
    assert all(np.array_equal(a.net.params[k], b.net.params[k]) for k in a.net.params)
    assert np.array_equal(a.current["N1"], b.current["N1"])
    assert not np.array_equal(a.net.params["W1"], off.net.params["W1"]) and "γ1" not in off.net.params
    # a kept step is recomputed exactly, and undo goes back to the running statistics of before
    again = a.trace_of(a.steps[-1])
    assert all(np.array_equal(a.current[k], again[k]) for k in a.current)
    before = a.steps[-1].params_before["μ1_run"]
    a.undo(a.steps[-1].before)
    assert np.array_equal(a.net.params["μ1_run"], before)


def test_a_few_epochs_with_batchnorm_beat_the_same_network_without_it(mnist):
    """The seed's 0.01·N(0,1) weights start on a plateau that plain SGD takes hundreds of steps to leave;
    batch norm rescales every layer's inputs and leaves it at once (fixed seed: the same numbers every run)."""
    acc = {}
    for bn in (False, True):
        ws = Workspace(replace(SMALL, batchnorm=bn), mnist["train"], mnist["test"])
        ws.trainer.run(3)
        acc[bn] = ws.trainer.history.rows["val_acc"][-1]
    assert acc[False] < 0.5 and acc[True] > 0.8 and acc[True] > acc[False] + 0.3, acc


def test_batchnorm_trains_in_the_training_process_exactly_as_here(mnist):
    """The run of Start training (another process, paused and resumed) is the in-process run, bit for bit."""
    from core.engine.trainer import Trainer
    _, tr = paused_and_resumed_is_the_whole_run(lambda: Trainer(MLP([784, 16, 16, 10], seed=0, batchnorm=True),
                                                                Adam(0.001), small_split(mnist), batch_size=64, seed=0))
    assert tr.net.batchnorm


# --------------------------------------------------------------------------- settings, links, checkpoints
def test_batchnorm_is_a_setting_of_links_the_command_line_and_the_one_validation():
    s, notes = Settings.from_query({"batchnorm": "1"})
    assert not notes and s.batchnorm is True and s.to_query() == {"batchnorm": "1"}
    assert Settings.from_query({"batchnorm": "0"})[0].batchnorm is False
    s, notes = Settings.from_query({"batchnorm": "maybe"})
    assert s.batchnorm is False and "batchnorm" in notes[0]
    assert "batchnorm" in Settings().model_changes(Settings(batchnorm=True))
    assert FIELDS["batchnorm"].problem(2) and FIELDS["batchnorm"].problem(True) is None
    assert any("at least 2" in p for p in Settings(batchnorm=True, batch_size=1, epochs=1).problems())
    assert not Settings(batch_size=1, epochs=1).problems()
    # a last batch of one image each epoch: 601 − 100 = 501 = 10·50 + 1
    last_one = Settings(pool=601, val=100, batch_size=50, batchnorm=True)
    assert any("leave one image for the last batch" in p for p in last_one.problems())
    assert not replace(last_one, batch_size=40).problems() and not replace(last_one, batchnorm=False).problems()
    from core.train import parse_args, settings_of
    assert settings_of(parse_args(["--batchnorm"])).batchnorm is True
    assert settings_of(parse_args([])).batchnorm is False


def test_the_command_line_trains_with_batchnorm_and_writes_a_checkpoint_that_loads(tmp_path, capsys):
    from core.train import main
    out = tmp_path / "bn.npz"
    assert main(["--batchnorm", "--epochs", "1", "--train-size", "640", "--val-size", "64", "--quiet",
                 "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["config"]["batchnorm"] is True
    ck = checkpoint.load(out)
    assert ck.net.batchnorm and "σ²2_run" in ck.net.params and "γ2" in ck.net.params


def test_a_checkpoint_carries_batchnorm_and_resuming_is_the_same_run(mnist):
    ws = Workspace(replace(SMALL, optimizer="adam", lr=0.001), mnist["train"], mnist["test"])
    ws.trainer.run(1)       # a snapshot at epoch 1, with its running statistics
    for _ in range(3):
        ws.step()
    ck = checkpoint.load(checkpoint.to_bytes(ws.net, ws.optimizer, ws.trainer))
    assert ck.net.batchnorm and set(ck.net.params) == set(ws.net.params)
    assert set(ck.snapshots[1]) == set(ws.net.params)
    assert {"M_γ1", "S_β2"} <= set(ck.optimizer.state()) and not any("_run" in k for k in ck.optimizer.state())
    assert Settings.of_network(ck.net.config, ck.optimizer.hyper, ck.trainer_state, ck.split).batchnorm
    for k, v in ws.net.params.items():
        np.testing.assert_array_equal(ck.net.params[k], v, err_msg=k)
    again = checkpoint.restore_trainer(ck, ws.split)
    a, b = ws.trainer.train_step(), again.train_step()
    assert np.array_equal(a["N2"], b["N2"])
    assert all(np.array_equal(ws.net.params[k], again.net.params[k]) for k in ws.net.params)


def _rewritten(data: bytes, change_config=None, change_arrays=None) -> bytes:
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    config = json.loads(str(arrays["config"]))
    if change_config:
        change_config(config["net"])
    arrays["config"] = np.array(json.dumps(config))
    if change_arrays:
        change_arrays(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_a_checkpoint_from_before_batchnorm_loads_as_off_and_bad_ones_are_refused(mnist):
    ws = Workspace(replace(SMALL, batchnorm=False), mnist["train"], mnist["test"])
    ws.step()
    plain = checkpoint.to_bytes(ws.net, ws.optimizer, ws.trainer)
    old = checkpoint.load(_rewritten(plain, lambda net: net.pop("batchnorm")))
    assert old.net.batchnorm is False
    assert not Settings.of_network(old.net.config, old.optimizer.hyper, old.trainer_state, old.split).batchnorm
    for bad in (1, "yes", None):
        with pytest.raises(CheckpointError, match="batch norm"):
            checkpoint.load(_rewritten(plain, lambda net: net.update(batchnorm=bad)))
    # a file that says batch norm but lacks its parameters, or whose running variance is negative
    bn = Workspace(SMALL, mnist["train"], mnist["test"])
    bn.step()
    data = checkpoint.to_bytes(bn.net, bn.optimizer, bn.trainer)
    with pytest.raises(CheckpointError, match="σ²1_run"):
        checkpoint.load(_rewritten(data, change_arrays=lambda a: a.pop("param/σ²1_run")))
    with pytest.raises(CheckpointError, match="negative variances"):
        checkpoint.load(_rewritten(data, change_arrays=lambda a: a.update({"param/σ²1_run": -a["param/σ²1_run"]})))
    with pytest.raises(CheckpointError, match="lacks 'param/β1'"):        # said on, but without its parameters
        checkpoint.load(_rewritten(plain, lambda net: net.update(batchnorm=True)))
    with pytest.raises(CheckpointError, match="unexpected entry 'param/β1'"):     # said off, but with them
        checkpoint.load(_rewritten(data, lambda net: net.update(batchnorm=False)))


# --------------------------------------------------------------------------- shown like everything else
def test_every_quantity_of_a_batchnorm_step_is_explained_exactly():
    for activation, dropout in (("relu", 0.0), ("sigmoid", 0.3)):
        net = MLP([784, 32, 16, 10], activation=activation, init="he", seed=3, dtype=np.float64, batchnorm=True,
                  dropout=dropout)
        X, y = batch(16, 784, seed=2)
        trace = net.step(X, y, SGD(0.1), np.random.default_rng(3))
        rng = np.random.default_rng(0)
        for name in trace:
            a = np.asarray(trace[name])
            cells = [()] if a.ndim == 0 else [tuple(int(rng.integers(s)) for s in a.shape) for _ in range(6)]
            for index in cells:
                ex = explain(trace, name, index)
                assert ex.value == float(a[index])
                assert abs(ex.total - ex.value) <= 1e-9 * max(1.0, abs(ex.value)), (name, index, ex.total, ex.value)
        assert "exactly 0" in explain(trace, "db1", (0,)).note
        assert len(explain(trace, "dZ1", (0, 0)).terms) == 3


def test_the_stepper_has_a_stop_and_words_for_every_batchnorm_quantity():
    from ui.stepper_views import build_stops, stop_text
    X, y = batch(8, 784)
    trace = MLP([784, 16, 16, 10], batchnorm=True).step(X, y, SGD(0.1))
    stops = {s.key: s for s in build_stops(trace)}
    for key in ("μ1", "Ẑ1", "N1", "dN2", "dγ2", "dβ2", "dẐ2", "dZ2", "Δγ1", "μ1_run_new"):
        assert key in stops and stop_text(stops[key], trace), key
    assert stops["μ1"].names == ("μ1", "σ²1") and stops["μ2_run_new"].names == ("μ2_run_new", "σ²2_run_new")
    assert stops["Δγ2"].rows == (("Δγ2", "γ2_new"), ("Δβ2", "β2_new"))
    shown = {n for s in stops.values() for n in s.names}
    inputs = {i for s in stops.values() for n in s.names for i in trace.spec(n).inputs}
    assert {"γ1", "β1", "μ1_run", "σ²2_run"} <= inputs
    assert {n for n in trace if n[0] not in "Wbγβ" and not n.endswith("_run")} <= shown     # all but the parameters
    assert "0" in stop_text(stops["db1"], trace) and "exactly 0" in stop_text(stops["db1"], trace)


def test_the_stepper_page_with_batchnorm_shows_every_quantity_and_checks_its_gradients():
    from tests.test_stepper_page import assert_viewer_shows, check_table, click, open_stepper, table, ws_of
    at = open_stepper(batchnorm="1")
    assert ws_of(at).net.batchnorm
    click(at, "stepper_step")
    trace = ws_of(at).current
    assert {"μ1", "σ²1", "Ẑ1", "N1", "dγ1", "dβ1", "γ1_new", "μ1_run_new"} <= set(trace)
    assert_viewer_shows(at, trace)
    heads = [e.label for e in at.expander]       # the chain rule's fold-out names what g' takes: N, not Z
    assert any("dN2 = dA2 ⊙ g′(N2)" in h for h in heads) and not any("g′(Z2)" in h for h in heads), heads
    assert any("read $g(Z_{2})$ as $g(N_{2})$" in i.value for i in at.info)
    at.segmented_control(key="stepper_view").set_value("All quantities").run()
    at.selectbox(key="stepper_browse").set_value("Ẑ1").run()
    shown = check_table(at)
    assert abs(shown["difference"]) < 1e-5
    at.segmented_control(key="stepper_view").set_value("Gradient check").run()
    at.number_input(key="gc_n").set_value(16).run()
    click(at, "gc_run")
    shown = table(at, "relative error")
    assert {"γ1", "β1"} <= set(shown["param"])
    smooth = shown[~shown["kink"]]
    assert len(smooth) >= 10 and (smooth["relative error"] < 1e-5).all()
    assert any("agrees" in s.value for s in at.success)


def test_the_lessons_questions_are_right_with_batchnorm(mnist):
    ws = Workspace(replace(SMALL, pool=3000), mnist["train"], mnist["test"])
    trace = ws.step()
    qs = {q.key: q for q in questions(trace)}
    z = qs["zeros"]
    assert z.stop == "dN2" and z.stop in trace and z.formula == trace.spec("dN2").latex
    right = tuple(o for o in z.parts[0].options
                  if np.asarray(trace["dN2"])[tuple(int(i) for i in o[o.index("[") + 1:-1].split(","))] == 0)
    assert right and z.check((right,)).status == RIGHT
    assert "N_{2}" in z.prompt and z.given.rows[0].startswith("N2")
    for q in qs.values():
        assert q.check(tuple(p.right if p.kind != "choice" else sorted(p.right)[0] for p in q.parts)).status == RIGHT
    after = loss_after_update(trace)        # the batch through the new parameters, normalised by its own statistics
    assert after == pytest.approx(float(ws.net.forward_backward(trace["X"], trace["y"]).loss), rel=1e-6)


def test_the_lr_lessons_trials_are_the_step_with_batchnorm(mnist):
    from core.teach import lr_lesson
    ws = Workspace(SMALL, mnist["train"], mnist["test"])
    ws.step()
    lesson = lr_lesson.run(ws.trainer, (0.001, 0.1), keep_params=True)
    mine = lesson.trial(0.1)
    trace = ws.step()
    assert mine.loss_before == trace.loss
    assert all(np.array_equal(mine.params_after[k], trace[k + "_new"]) for k in ws.net.params)
    small = lesson.trial(0.001)
    assert small.first_order < 0
    assert small.loss_after - small.loss_before == pytest.approx(small.first_order, rel=0.05)


def test_the_notebook_of_a_batchnorm_step_runs_and_checks_every_quantity(mnist):
    ws = Workspace(Settings(pool=3000, val=500, batch_size=8, batchnorm=True, dropout=0.3, optimizer="adam",
                            lr=0.001), mnist["train"], mnist["test"])
    ws.step()
    ws.step()
    rec = ws.steps[-1]
    trace = ws.trace_of(rec)
    nb = nbformat.reads(step_notebook(trace, rec.optimizer_before, number=rec.number).decode(), as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "Ẑ1 = (Z1 - μ1) / np.sqrt(var1 + bn_eps)" in source and "N1 = γ1 * Ẑ1 + β1" in source
    assert "dγ2 = (dN2 * Ẑ2).sum(axis=0)" in source and "var1_run_new = bn_momentum * var1_run" in source
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()      # every assert_allclose passes
    inputs = {"X", "y", "M1", "M2", *trace.trained, "μ1_run", "σ²1_run", "μ2_run", "σ²2_run"}
    assert source.count("np.testing.assert_allclose(") == len([n for n in trace if n not in inputs]) + 2   # + Σ dZ = 0


def test_a_batch_of_one_is_refused_by_the_engine_and_the_stepper_says_why(mnist):
    """Normalised by itself an image is all 0: no weight learns and the running variance shrinks
    towards 0, which every later prediction would use. The engine refuses; the stepper explains."""
    from core.lab.stepper import Stepper
    net = MLP([30, 9, 10], seed=0, batchnorm=True)
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match="at least 2 images"):
        net.step(np.ones((1, 30), np.float32), np.array([3]), SGD(0.1))
    assert all(np.array_equal(before[k], net.params[k]) for k in before)        # nothing changed
    ws = Workspace(replace(SMALL, pool=3000), mnist["train"], mnist["test"])
    stepper = Stepper()
    drawn = stepper.batch(ws, "drawn", drawn=np.zeros(784, np.uint8), drawn_label=3)
    assert "at least 2 images" in drawn.problem and not stepper.take_step(ws, drawn)
    one = stepper.batch(ws, "chosen", chosen="5, 5")
    assert "two different images" in one.problem and not stepper.take_step(ws, one)
    assert ws.trainer.global_step == 0 and "at least 2 images" in stepper.problem
    assert not stepper.batch(ws, "chosen", chosen="5, 6").problem
    off = Workspace(replace(SMALL, pool=3000, batchnorm=False), mnist["train"], mnist["test"])
    assert not stepper.batch(off, "drawn", drawn=np.zeros(784, np.uint8)).problem
