"""RMSprop beside SGD, momentum and Adam: its update is the textbook one, its state is saved,
loaded and kept by the store, and a run with the same seed is the same run, bit for bit."""
from dataclasses import replace

import numpy as np
import pytest

from core.lab import checkpoint
from core.lab.settings import FIELDS, Settings
from core.lab.store import LabCopy, LabStore, key_of, new_token
from core.lab.workspace import Workspace
from core.engine.network import MLP
from core.engine.optim import OPTIMIZERS, RMSprop, make_optimizer
from core.engine.trainer import Trainer

SMALL = Settings(pool=600, val=100, batch_size=50, epochs=2, optimizer="rmsprop", lr=0.001)


def by_hand(params, grads_seq, lr, rho=0.9, eps=1e-8, wd=0.0):
    """RMSprop as a textbook writes it: S = 0 at first, S ← ρS + (1−ρ)g², W ← W − η g/(√S + ε)."""
    S = {k: np.zeros_like(v) for k, v in params.items()}
    out = []
    for grads in grads_seq:
        deltas = {}
        for k in params:
            g = grads[k] + (wd * params[k] if k.startswith("W") else 0)
            S[k] = rho * S[k] + (1 - rho) * g ** 2
            deltas[k] = -lr * g / (np.sqrt(S[k]) + eps)
        out.append(deltas)
    return out


@pytest.mark.parametrize("wd", [0.0, 1e-2])
def test_an_rmsprop_update_is_the_textbook_one(wd):
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((4, 3)), "b1": rng.standard_normal(3)}
    grads_seq = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(4)]
    opt = make_optimizer("rmsprop", lr=0.01, weight_decay=wd)
    assert (opt.rho, opt.eps) == (0.9, 1e-8) and OPTIMIZERS["rmsprop"] is RMSprop
    for got, want in zip([opt.update(params, g) for g in grads_seq], by_hand(params, grads_seq, 0.01, wd=wd)):
        for k in params:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-13, atol=0)
    # the first step moves every weight whose gradient is not tiny by η/√(1−ρ), against its gradient
    first = make_optimizer("rmsprop", lr=0.01).update(params, grads_seq[0])
    np.testing.assert_allclose(first["W1"], -0.01 / np.sqrt(0.1) * np.sign(grads_seq[0]["W1"]), rtol=1e-6)


def test_a_network_step_with_rmsprop_applies_that_update():
    net = MLP([30, 8, 10], seed=1, dtype=np.float64)
    rng = np.random.default_rng(2)
    X, y = rng.random((12, 30)), rng.integers(0, 10, 12)
    W_before = net.params["W1"]
    trace = net.step(X, y, RMSprop(lr=0.005))
    g = trace["dW1"]
    np.testing.assert_allclose(trace["ΔW1"], -0.005 * g / (np.sqrt(0.1 * g * g) + 1e-8), rtol=1e-12)
    np.testing.assert_array_equal(net.params["W1"], W_before + trace["ΔW1"])
    assert trace.hyper == {"optimizer": "rmsprop", "lr": 0.005, "weight_decay": 0.0, "rho": 0.9, "eps": 1e-8}
    assert "RMSprop" in trace.spec("ΔW1").about and r"\rho" in trace.spec("ΔW1").latex


def test_rmsprop_is_offered_wherever_the_optimizers_are():
    assert "rmsprop" in FIELDS["optimizer"].choices
    assert FIELDS["optimizer"].choice_label("rmsprop") == "RMSprop"
    s, notes = Settings.from_query({"optimizer": "rmsprop", "lr": "0.001"})
    assert not notes and s.optimizer == "rmsprop" and s.make_optimizer().hyper["rho"] == 0.9


def test_the_same_seed_gives_the_same_run_bit_for_bit(mnist):
    def run():
        ws = Workspace(SMALL, mnist["train"], mnist["test"])
        ws.trainer.run(1)
        ws.step()
        return ws.trainer
    a, b = run(), run()
    assert all(np.array_equal(a.net.params[k], b.net.params[k]) for k in a.net.params)
    sa, sb = a.optimizer.state(), b.optimizer.state()
    assert sa.keys() == sb.keys() == {f"S_{p}" for p in a.net.params}
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_a_checkpoint_carries_rmsprops_state_and_training_on_is_the_same(mnist):
    ws = Workspace(SMALL, mnist["train"], mnist["test"])
    for _ in range(13):
        ws.step()
    ck = checkpoint.load(checkpoint.to_bytes(ws.net, ws.optimizer, ws.trainer))
    assert ck.optimizer.hyper == ws.optimizer.hyper
    assert ck.optimizer.state().keys() == ws.optimizer.state().keys()
    assert all(np.array_equal(ck.optimizer.state()[k], v) for k, v in ws.optimizer.state().items())
    again = checkpoint.restore_trainer(ck, ws.split)
    assert Settings.of_network(ck.net.config, ck.optimizer.hyper, ck.trainer_state, ck.split).optimizer == "rmsprop"
    ws.trainer.train_step(), again.train_step()
    assert all(np.array_equal(ws.net.params[k], again.net.params[k]) for k in ws.net.params)


def test_the_store_keeps_an_rmsprop_lab(mnist, tmp_path):
    ws = Workspace(SMALL, mnist["train"], mnist["test"])
    for _ in range(3):
        ws.step()
    key = key_of(new_token())
    LabStore(tmp_path).save(key, LabCopy.of(ws))
    back = LabStore(tmp_path).load(key).workspace(mnist["train"], mnist["test"])
    assert back.optimizer.hyper == ws.optimizer.hyper
    assert all(np.array_equal(back.optimizer.state()[k], v) for k, v in ws.optimizer.state().items())
    for a, b in zip(ws.steps, back.steps):
        assert all(np.array_equal(a.optimizer_before.state()[k], v) for k, v in b.optimizer_before.state().items())
    ws.step(), back.step()
    assert all(np.array_equal(ws.net.params[k], back.net.params[k]) for k in ws.net.params)


def test_a_fresh_rmsprop_checkpoint_without_state_loads(mnist):
    """Before its first step RMSprop keeps no state: the file has no opt/ members, and that is fine."""
    ws = Workspace(replace(SMALL, seed=3), mnist["train"], mnist["test"])
    ck = checkpoint.load(checkpoint.to_bytes(ws.net, ws.optimizer, ws.trainer))
    assert ck.optimizer.key == "rmsprop" and ck.optimizer.state() == {}
