"""The trainer: determinism, stop/resume, divergence, checkpoints, the CLI."""
import io
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.lab import checkpoint
from core.lab.checkpoint import CheckpointError
from core.data.mnist import make_split
from core.engine.network import MLP
from core.engine.optim import SGD, Adam, Momentum, make_optimizer
from core.engine.history import History
from core.engine.trainer import Trainer, dead_layers

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def small(mnist):
    return make_split(mnist["train"], pool=2200, val=200, seed=0, test=mnist["test"])


def make_trainer(split, seed=0, opt=None, hidden=(32, 32), batch_size=64, init="seed"):
    net = MLP([784, *hidden, 10], seed=seed, init=init)
    return Trainer(net, opt or SGD(0.1), split, batch_size=batch_size, seed=seed)


def histories_equal(a: History, b: History):
    assert len(a) == len(b)
    for k in History.SCALARS + History.LAYERED + History.HISTS:
        if k == "seconds":
            continue
        np.testing.assert_array_equal(a.column(k), b.column(k), err_msg=k)
    np.testing.assert_array_equal(a.step_loss, b.step_loss)


def params_equal(p, q):
    assert p.keys() == q.keys()
    for k in p:
        np.testing.assert_array_equal(p[k], q[k], err_msg=k)


def test_same_seed_same_run_and_other_seed_other_run(small):
    a, b, c = make_trainer(small, 0), make_trainer(small, 0), make_trainer(small, 1)
    for t in (a, b, c):
        assert t.run(2).reason == "done"
    histories_equal(a.history, b.history)
    params_equal(a.net.params, b.net.params)
    assert not np.array_equal(a.history.step_loss, c.history.step_loss)


def test_history_has_the_per_epoch_telemetry(small):
    t = make_trainer(small)
    t.run(3)
    h = t.history
    assert h.rows["epoch"] == [1, 2, 3]
    assert h.n_steps == 3 * t.steps_per_epoch == 3 * 32     # 2000 images / 64 → 32 steps
    assert h.column("update_ratio").shape == (3, 3)
    assert h.column("hist_W").shape == (3, 3, 40)
    # a histogram counts every weight of its layer
    assert h.column("hist_W")[0].sum(axis=1).tolist() == [784 * 32, 32 * 32, 32 * 10]
    np.testing.assert_allclose(h.column("weight_norm")[-1], [np.linalg.norm(t.net.params[f"W{l}"])
                                                             for l in (1, 2, 3)], rtol=0.2)
    assert np.all(h.column("update_ratio") > 0)
    frame = h.frame()
    assert {"train_loss", "val_acc", "update_ratio_1", "dead_frac_2"} <= set(frame.columns)
    assert sorted(t.snapshots) == [0, 1, 2]


def test_stop_and_resume_gives_the_uninterrupted_run(small):
    whole = make_trainer(small, opt=Momentum(0.05))
    whole.run(2)
    parts = make_trainer(small, opt=Momentum(0.05))
    calls = {"n": 0}

    def stop_after_45():
        calls["n"] += 1
        return calls["n"] > 45

    r = parts.run(2, should_stop=stop_after_45)
    assert r.reason == "stopped" and parts.epoch == 1 and parts.step_in_epoch == 13
    assert parts.run(2).reason == "done"
    histories_equal(whole.history, parts.history)
    params_equal(whole.net.params, parts.net.params)


def test_checkpoint_mid_epoch_round_trips_and_carries_on_exactly(small, tmp_path):
    whole = make_trainer(small, opt=Adam(0.002))
    whole.run(2)
    first = make_trainer(small, opt=Adam(0.002))
    n = {"i": 0}
    first.run(2, should_stop=lambda: (n.__setitem__("i", n["i"] + 1), n["i"] > 40)[1])
    path = tmp_path / "mid.npz"
    checkpoint.save(path, first.net, first.optimizer, first)
    ck = checkpoint.load(path)
    params_equal(ck.net.params, first.net.params)
    assert ck.optimizer.t == first.optimizer.t
    resumed = checkpoint.restore_trainer(ck, small)
    assert (resumed.epoch, resumed.step_in_epoch) == (first.epoch, first.step_in_epoch)
    resumed.run(2)
    histories_equal(whole.history, resumed.history)
    params_equal(whole.net.params, resumed.net.params)
    assert sorted(resumed.snapshots) == [0, 1, 2]


def test_divergence_stops_the_run_with_advice_and_keeps_finite_parameters(small):
    t = make_trainer(small, opt=SGD(1e4))
    r = t.run(3)
    assert r.reason == "diverged"
    assert "learning rate" in r.message and "1000 instead of 10000" in r.message
    assert all(np.isfinite(p).all() for p in t.net.params.values())
    assert np.isfinite(t.history.step_loss).all()


@pytest.mark.parametrize("opt, init", [(SGD(10.0), "seed"), (Adam(1.0), "seed"), (SGD(10.0), "he")])
def test_the_exploding_settings_students_try_are_caught(small, opt, init):
    t = make_trainer(small, opt=opt, init=init)
    t.run(2)
    before = t.net.params
    r = t.run(3)
    assert r.reason == "diverged", r
    assert "times larger" in r.message or "not a finite number" in r.message
    assert t.net.params is before and all(np.isfinite(p).all() for p in t.net.params.values())
    assert np.isfinite(t.history.step_loss).all() and len(t.history.step_loss) == t.global_step


def test_a_network_whose_relus_all_died_is_reported(small):
    t = make_trainer(small, opt=SGD(0.1))
    t.run(1)
    assert dead_layers(t.history) == []
    t.history.rows["dead_frac"][-1] = np.array([0.2, 1.0, np.nan])
    assert dead_layers(t.history) == [2]


def test_a_short_run_learns(mnist):
    split = make_split(mnist["train"], pool=6000, val=1000, seed=0, test=mnist["test"])
    # He initialisation: the seed's 0.01·N(0,1) needs ~600 steps before it starts to learn
    t = Trainer(MLP(seed=0, init="he"), SGD(0.1), split, batch_size=64, seed=0)
    t.run(8)
    assert t.history.rows["val_acc"][-1] >= 0.85
    assert t.history.rows["train_loss"][-1] < t.history.rows["train_loss"][0]


def test_settings_out_of_range_are_refused(small):
    with pytest.raises(ValueError, match="batch size"):
        make_trainer(small, batch_size=5000)
    for lr in (0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="learning rate"):
            make_optimizer("sgd", lr=lr)


# --------------------------------------------------------------------------- checkpoint safety
def saved(trainer) -> dict:
    with np.load(io.BytesIO(checkpoint.to_bytes(trainer.net, trainer.optimizer, trainer)), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def rewrite(arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


class _Boom:
    """Unpickling this would create a file: the proof that nothing was unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_a_pickle_bearing_checkpoint_is_refused_without_running_it(small, tmp_path):
    t = make_trainer(small)
    arrays = saved(t)
    marker = tmp_path / "executed"
    arrays["param/W1"] = np.array([_Boom(marker)], dtype=object)
    data = rewrite(arrays)
    assert b"touch" in data or b"pathlib" in data  # the file really carries a pickle
    with pytest.raises(CheckpointError, match="pickle"):
        checkpoint.load(data)
    assert not marker.exists()


@pytest.mark.parametrize("damage, message", [
    (lambda a: a.pop("param/b2"), "lacks 'param/b2'"),
    (lambda a: a.update({"extra": np.zeros(3)}), "unexpected entry 'extra'"),
    (lambda a: a.update({"param/W2": np.zeros((32, 31), np.float32)}), r"W2 has shape \(32, 31\)"),
    (lambda a: a.update({"param/W1": a["param/W1"].astype(np.float64)}), "W1 is float64"),
    (lambda a: a.update({"param/W1": a["param/W1"].astype(np.int32)}), "W1 holds int32"),
    (lambda a: a["param/W3"].__setitem__((0, 0), np.nan), "W3 holds values that are not finite"),
    (lambda a: a.update({"config": np.array("{not json")}), "not valid JSON"),
    (lambda a: a.update({"config": np.array(str(a["config"]).replace("[784, 32, 32, 10]", "[784, 32, 16, 10]"))}),
     r"W2 has shape \(32, 32\); the configuration says \(32, 16\)"),
])
def test_damaged_checkpoints_are_refused_with_a_reason(small, damage, message):
    arrays = saved(make_trainer(small))
    damage(arrays)
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(rewrite(arrays))


@pytest.mark.parametrize("blob", [b"", b"hello", b"PK\x03\x04garbage", pickle.dumps({"W1": 1})])
def test_non_checkpoints_are_refused(blob):
    with pytest.raises(CheckpointError):
        checkpoint.load(blob)


# --------------------------------------------------------------------------- command line
def test_command_line_prints_progress_and_a_final_json_line(tmp_path):
    out, hist = tmp_path / "m.npz", tmp_path / "h.csv"
    proc = subprocess.run([sys.executable, "-m", "core.train", "--epochs", "2", "--train-size", "3000",
                           "--val-size", "500", "--hidden", "32", "--out", str(out), "--history", str(hist)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "epoch    2/2" in proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"epochs", "train_loss", "val_acc", "test_acc", "seconds"} <= set(summary)
    assert summary["epochs"] == 2 and 0.5 < summary["val_acc"] <= 1 and 0.5 < summary["test_acc"] <= 1
    ck = checkpoint.load(out)
    assert ck.net.sizes == [784, 32, 10] and len(ck.history) == 2
    assert hist.read_text().splitlines()[0].startswith("epoch,train_loss")


def test_command_line_reports_bad_arguments_clearly(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("label,pixel0\n1,2\n")
    proc = subprocess.run([sys.executable, "-m", "core.train", "--data", str(bad)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and "784" in proc.stderr


def test_presets_are_valid_and_the_improved_one_keeps_the_seeds_network():
    """The issue's rule for "the seed, improved": the same 784-64-64-10 ReLU network (and here the same
    optimizer, batches and initial weights); only the data it sees changes."""
    from core.lab.settings import MNIST_IMAGES, PRESETS, Settings
    assert PRESETS["seed"].settings == Settings()
    for p in PRESETS.values():
        assert p.settings.problems(MNIST_IMAGES) == [], p.name
    improved, seed = PRESETS["seed-improved"].settings, Settings()
    same = ("hidden", "activation", "init", "optimizer", "lr", "batch_size", "seed", "dropout", "weight_decay")
    assert {n: getattr(improved, n) for n in same} == {n: getattr(seed, n) for n in same}
    assert improved.pool - improved.val == 59_000 and (improved.shift, improved.rotate) == (2, 10.0)


def test_a_preset_on_the_command_line_gives_its_settings_and_flags_change_them():
    from core.lab.settings import PRESETS
    from core.train import parse_args, settings_of
    assert settings_of(parse_args(["--preset", "seed-improved"])) == PRESETS["seed-improved"].settings
    changed = settings_of(parse_args(["--preset", "seed-improved", "--epochs", "3", "--rotate", "0"]))
    assert (changed.epochs, changed.rotate, changed.shift, changed.pool) == (3, 0.0, 2, 60_000)
    assert settings_of(parse_args([])) == PRESETS["seed"].settings


def test_the_shipped_improved_network_is_its_preset_and_scores_at_least_98_3_on_the_test_images():
    """data/improved.npz is `python -m core.train --preset seed-improved`: its settings, its history of
    150 epochs, and at least 98.3% on MNIST's 10,000 test images, which it never trained on."""
    from core.data.mnist import load_mnist
    from core.engine.trainer import evaluate
    from core.lab.settings import PRESETS
    ck = checkpoint.load(ROOT / "data" / "improved.npz")
    preset = PRESETS["seed-improved"].settings
    assert ck.net.sizes == [784, 64, 64, 10] and ck.net.config["activation"] == "relu"
    assert len(ck.history) == preset.epochs == 150
    assert (ck.trainer_state["shift"], ck.trainer_state["rotate"]) == (preset.shift, preset.rotate)
    test = load_mnist()["test"]
    assert evaluate(ck.net, test.X, test.y)["acc"] >= 0.983
