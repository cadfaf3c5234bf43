"""One user's workspace: settings, links, stepping and the step history."""
from dataclasses import replace

import numpy as np
import pytest

from core.engine.network import DivergenceError
from core.lab.settings import Settings, most_epochs
from core.lab.workspace import STEP_HISTORY, Workspace


def small_settings(**kw):
    return replace(Settings(pool=3000, val=500, hidden=(32, 16)), **kw)


def test_stepping_records_a_bounded_history_that_replays_exactly(mnist):
    ws = Workspace(small_settings(optimizer="momentum"), mnist["train"], mnist["test"])
    first = ws.step()
    saved = {k: np.array(first[k]) for k in ("Z1", "dW1", "ΔW1", "W1_new")}
    for _ in range(STEP_HISTORY + 5):
        ws.step()
    assert len(ws.steps) == STEP_HISTORY
    assert ws.steps[-1].number == ws.trainer.global_step == STEP_HISTORY + 6
    # an old step, recomputed by the same engine from what the history kept, is the same step
    rec = ws.steps[0]
    assert rec.number == 7
    again = ws.trace_of(rec)
    X, y = ws.split.images(rec.idx)
    np.testing.assert_array_equal(again["X"], X)
    assert again["W1"] is rec.params_before["W1"]
    # and the very first step, replayed on a fresh workspace, gives the same numbers
    ws2 = Workspace(small_settings(optimizer="momentum"), mnist["train"], mnist["test"])
    replay = ws2.step()
    for k, v in saved.items():
        np.testing.assert_array_equal(replay[k], v)
    mem = ws.memory()
    assert mem["current_trace"] == ws.current.nbytes
    assert mem["step_history"] < STEP_HISTORY * 2 * sum(p.nbytes for p in ws.net.params.values()) + 1e5


def test_a_chosen_batch_is_trained_at_the_current_position(mnist):
    ws = Workspace(small_settings(), mnist["train"], mnist["test"])
    idx = ws.split.train_idx[[5, 9, 11]]
    t = ws.step(idx, how="chosen")
    assert t["X"].shape == (3, 784) and ws.steps[-1].how == "chosen"
    np.testing.assert_array_equal(t["y"], ws.split.source.y[idx])


def test_a_diverging_step_keeps_the_network_and_explains(mnist):
    ws = Workspace(small_settings(lr=50.0, init="he"), mnist["train"], mnist["test"])
    with pytest.raises(DivergenceError):
        for _ in range(50):
            before, n = ws.net.params, ws.trainer.global_step
            ws.step()
    assert ws.net.params is before and ws.trainer.global_step == n   # the failed step changed nothing
    assert all(np.isfinite(p).all() for p in ws.net.params.values())
    assert "learning rate" in ws.error


def test_changing_the_learning_rate_keeps_the_network_and_optimizer_state(mnist):
    ws = Workspace(small_settings(optimizer="momentum"), mnist["train"], mnist["test"])
    ws.step()
    params, V = ws.net.params, ws.optimizer.V
    ws.set_hyper(replace(ws.settings, lr=0.01))
    assert ws.net.params is params and ws.optimizer.lr == 0.01 and ws.optimizer.V == V


def test_changing_only_the_epochs_during_a_run_keeps_the_optimizer_its_reports_land_in(mnist):
    ws = Workspace(small_settings(optimizer="momentum"), mnist["train"], mnist["test"])
    ws.step()
    opt = ws.optimizer
    ahead = Workspace(small_settings(optimizer="momentum"), mnist["train"], mnist["test"])
    ahead.step()
    ahead.step()
    reported = ahead.optimizer.state()
    real_state, landed = opt.state, []

    def report():   # what the run's thread does with a report (apply_frame)
        ws.trainer.restore(ahead.net.params, reported, ahead.trainer.state())
        landed.append(True)

    def state_as_a_report_lands():   # the report lands while set_hyper copies the state
        before = real_state()
        report()
        return before

    opt.state = state_as_a_report_lands
    ws.set_hyper(replace(ws.settings, epochs=ws.settings.epochs + 5))
    if not landed:
        report()    # it lands just after instead
    assert ws.settings.epochs == small_settings().epochs + 5
    assert ws.optimizer is opt
    for k, v in reported.items():   # the report's velocities, not the ones from before it
        np.testing.assert_array_equal(real_state()[k], v)


def test_two_workspaces_share_images_but_nothing_else(mnist):
    a = Workspace(small_settings(seed=1), mnist["train"], mnist["test"])
    b = Workspace(small_settings(seed=2), mnist["train"], mnist["test"])
    a.step()
    assert a.split.source.X is b.split.source.X          # the images: shared, read-only
    assert b.trainer.global_step == 0 and len(b.steps) == 0
    assert not np.array_equal(a.net.params["W1"], b.net.params["W1"])


def own_state(params, optimizer, history, snapshots, position) -> dict:
    """Copies of everything a session may change, to compare later."""
    return {"params": {k: v.copy() for k, v in params.items()},
            "opt": {k: np.array(v, copy=True) for k, v in optimizer.state().items()},
            "history": history.to_arrays(), "snapshots": {e: {k: v.copy() for k, v in p.items()}
                                                          for e, p in snapshots.items()},
            "position": dict(position)}


def assert_same_state(now: dict, before: dict) -> None:
    assert now["position"] == before["position"]
    for part in ("params", "opt", "history"):
        assert now[part].keys() == before[part].keys(), part
        for k in now[part]:
            np.testing.assert_array_equal(now[part][k], before[part][k], err_msg=f"{part} {k}")
    assert now["snapshots"].keys() == before["snapshots"].keys()
    for e in now["snapshots"]:
        for k in now["snapshots"][e]:
            np.testing.assert_array_equal(now["snapshots"][e][k], before["snapshots"][e][k])


def test_two_workspaces_opened_from_one_checkpoint_share_nothing_that_changes(mnist):
    """The pretrained network is one cached Checkpoint for every session: a session that
    trains it must not change the other sessions' network, optimizer, history or snapshots,
    nor the checkpoint itself."""
    from core.lab import checkpoint
    settings = small_settings(optimizer="momentum", pool=1100, val=100)
    src = Workspace(settings, mnist["train"], mnist["test"])
    src.trainer.run(1)
    src.step()
    ck = checkpoint.load(checkpoint.to_bytes(src.net, src.optimizer, src.trainer))
    for p in [ck.net.params, ck.optimizer.state(), *ck.snapshots.values()]:   # as ui/session.pretrained does
        for a in p.values():
            a.flags.writeable = False
    ck_before = own_state(ck.net.params, ck.optimizer, ck.history, ck.snapshots, ck.trainer_state)

    a, b = (Workspace(settings, mnist["train"], mnist["test"]) for _ in range(2))
    for ws in (a, b):
        ws.open_checkpoint(ck, settings, mnist["train"], mnist["test"], origin="a checkpoint")
    tb = b.trainer
    b_before = own_state(tb.net.params, tb.optimizer, tb.history, tb.snapshots, tb.state())
    assert (tb.epoch, tb.global_step) == (1, src.trainer.global_step)

    a.trainer.run(2)            # ends an epoch: a history row and the epoch-2 snapshot
    a.step()
    assert len(a.history) == 2 and 2 in a.trainer.snapshots

    assert_same_state(own_state(tb.net.params, tb.optimizer, tb.history, tb.snapshots, tb.state()), b_before)
    assert_same_state(own_state(ck.net.params, ck.optimizer, ck.history, ck.snapshots, ck.trainer_state), ck_before)
    assert a.optimizer is not b.optimizer is not ck.optimizer
    assert a.history is not b.history is not ck.history and a.trainer.snapshots is not tb.snapshots


def test_a_checkpoint_that_does_not_fit_leaves_the_workspace_as_it_was(mnist):
    from core.lab import checkpoint
    big = Workspace(small_settings(batch_size=600), mnist["train"], mnist["test"])
    ck = checkpoint.load(checkpoint.to_bytes(big.net, big.optimizer, big.trainer))
    ws = Workspace(small_settings(), mnist["train"], mnist["test"])
    trainer, settings = ws.trainer, ws.settings
    with pytest.raises(ValueError, match="batch size must be 1 to 400"):
        ws.open_checkpoint(ck, small_settings(pool=500, val=100, batch_size=600), mnist["train"], mnist["test"],
                           origin="a checkpoint")
    assert ws.trainer is trainer and ws.settings is settings


def test_a_network_steps_no_further_than_the_epochs_its_checkpoint_can_hold(mnist):
    """The stepper and a run stop where the settings' bound is (most_epochs: at most MAX_STEPS
    steps), so nothing they make is a checkpoint the app refuses."""
    ws = Workspace(Settings(pool=60_000, val=1, batch_size=1, epochs=10), mnist["train"])
    assert most_epochs(ws.trainer.steps_per_epoch) == 156
    ws.step()
    ws.trainer.epoch, ws.trainer.step_in_epoch = 156, 0          # as if it had trained that far
    with pytest.raises(RuntimeError, match=r"trained 156 epochs of 59,999 steps, the most the app keeps"):
        ws.step()
    assert ws.trainer.global_step == 1
    assert not ws.runner.start(157) and not ws.busy               # a run goes no further either
