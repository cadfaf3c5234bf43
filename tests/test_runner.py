"""The background run: pause/resume/stop, start-while-running, divergence, abandoned
tabs, two sessions side by side, and the memory a full run costs one session."""
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from core.data import load_mnist, make_split
from core.network import MLP
from core.optim import SGD, Momentum
from core.runner import DIVERGED, DONE, PAUSED, RUNNING, STOPPED, RunController
from core.trainer import SNAPSHOT_EPOCHS, History, Trainer
from core.workspace import STEP_HISTORY, Settings, StepRecord, Workspace

SMALL = Settings(hidden=(32, 32), pool=2200, val=200, epochs=3)   # 2000 images → 32 steps per epoch


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def small(mnist):
    return make_split(mnist["train"], pool=2200, val=200, seed=0, test=mnist["test"])


def make_trainer(split, seed=0, opt=None, hidden=(32, 32)):
    return Trainer(MLP([784, *hidden, 10], seed=seed), opt or Momentum(0.05), split, batch_size=64, seed=seed)


def hook(trainer, at_step=None, delay=0.0):
    """Make the trainer call ``at_step[n]()`` right after its n-th step (from the worker
    thread, so a pause lands on an exact step) and optionally take ``delay`` s longer per step."""
    at_step = at_step or {}
    original = trainer.train_step

    def step(idx=None):
        trace = original(idx)
        if delay:
            time.sleep(delay)
        action = at_step.get(trainer.global_step)
        if action is not None:
            action()
        return trace

    trainer.train_step = step
    return trainer


def histories_equal(a: History, b: History):
    assert len(a) == len(b)
    for k in History.SCALARS + History.LAYERED + History.HISTS:
        if k != "seconds":
            np.testing.assert_array_equal(a.column(k), b.column(k), err_msg=k)
    np.testing.assert_array_equal(a.step_loss, b.step_loss)


def params_equal(p, q):
    assert p.keys() == q.keys()
    for k in p:
        np.testing.assert_array_equal(p[k], q[k], err_msg=k)


def finish(ctrl: RunController, timeout=60.0):
    ctrl.join(timeout)
    assert not ctrl.active, "the worker thread did not end"


def test_pausing_twice_and_resuming_gives_the_uninterrupted_run(small):
    whole = make_trainer(small)
    whole.run(3)

    tr = make_trainer(small)
    ctrl = RunController(tr)
    hook(tr, {45: ctrl.pause, 70: ctrl.pause})   # mid-epoch 2, and mid-epoch 3
    assert ctrl.start(3)
    finish(ctrl)
    assert ctrl.status == PAUSED and (tr.global_step, tr.epoch, tr.step_in_epoch) == (45, 1, 13)
    p = ctrl.progress()
    assert p["status"] == PAUSED and p["global_step"] == 45 and p["total_steps"] == 96 and p["eta"] is None
    time.sleep(0.05)
    assert tr.global_step == 45, "a paused run must not train"

    assert ctrl.resume()
    finish(ctrl)
    assert ctrl.status == PAUSED and tr.global_step == 70
    assert ctrl.resume()
    finish(ctrl)
    assert ctrl.status == DONE and tr.epoch == 3 and ctrl.progress()["fraction"] == 1.0
    histories_equal(whole.history, tr.history)
    params_equal(whole.net.params, tr.net.params)
    params_equal(whole.optimizer.state(), tr.optimizer.state())
    assert sorted(tr.snapshots) == [0, 1, 2]


def test_a_pause_from_another_thread_at_any_moment_resumes_exactly(small):
    whole = make_trainer(small)
    whole.run(2)
    tr = hook(make_trainer(small), delay=0.002)
    ctrl = RunController(tr)
    assert ctrl.start(2)
    while tr.global_step < 3:
        time.sleep(0.005)
    ctrl.pause()
    finish(ctrl)
    assert ctrl.status == PAUSED and 0 < tr.global_step < 64
    assert ctrl.resume()
    finish(ctrl)
    assert ctrl.status == DONE
    histories_equal(whole.history, tr.history)
    params_equal(whole.net.params, tr.net.params)


def test_stop_ends_the_run_keeps_the_network_and_training_can_continue(small):
    whole = make_trainer(small)
    whole.run(2)
    tr = make_trainer(small)
    ctrl = RunController(tr)
    hook(tr, {40: ctrl.stop})
    assert ctrl.start(2)
    finish(ctrl)
    assert ctrl.status == STOPPED and tr.global_step == 40 and len(tr.history) == 1
    assert ctrl.resume()        # a stopped run can be trained further: a new start to the same target
    finish(ctrl)
    assert ctrl.status == DONE
    histories_equal(whole.history, tr.history)
    params_equal(whole.net.params, tr.net.params)

    # stopping a paused run only changes its status
    tr2 = make_trainer(small)
    ctrl2 = RunController(tr2)
    hook(tr2, {10: ctrl2.pause})
    ctrl2.start(1)
    finish(ctrl2)
    assert ctrl2.status == PAUSED
    ctrl2.stop()
    assert ctrl2.status == STOPPED and tr2.global_step == 10


def test_start_while_running_returns_false_and_starts_nothing(small):
    gate = threading.Event()
    tr = make_trainer(small)
    ctrl = RunController(tr)
    hook(tr, {5: lambda: gate.wait(10)})
    assert ctrl.start(2)
    for _ in range(200):
        if tr.global_step >= 5:
            break
        time.sleep(0.01)
    assert ctrl.active and ctrl.status == RUNNING
    workers = [t for t in threading.enumerate() if t.name == "training-run"]
    assert not ctrl.start(2) and not ctrl.start(5) and not ctrl.resume()
    assert [t for t in threading.enumerate() if t.name == "training-run"] == workers
    assert ctrl.target_epochs == 2
    gate.set()
    finish(ctrl)
    assert ctrl.status == DONE and tr.epoch == 2 and tr.history.n_steps == 64

    # a target already reached starts nothing either
    assert not ctrl.start(2) and not ctrl.active and tr.global_step == 64


def test_divergence_ends_the_run_as_diverged_with_the_advice(small):
    tr = make_trainer(small, opt=SGD(1e4))
    ctrl = RunController(tr)
    assert ctrl.start(3)
    finish(ctrl)
    assert ctrl.status == DIVERGED
    assert "diverged" in ctrl.message and "1000 instead of 10000" in ctrl.message
    assert ctrl.progress()["message"] == ctrl.message
    assert all(np.isfinite(p).all() for p in tr.net.params.values())
    assert np.isfinite(tr.history.step_loss).all()


def test_a_run_nobody_watches_pauses_itself_and_heartbeats_keep_it_going(small):
    tr = hook(make_trainer(small), delay=0.003)
    ctrl = RunController(tr, orphan_after=0.5)
    assert ctrl.start(50)
    until = time.monotonic() + 1.5      # three orphan periods, with a tab beating every 50 ms
    while time.monotonic() < until:
        ctrl.heartbeat()
        time.sleep(0.05)
    assert ctrl.active and ctrl.status == RUNNING
    steps = tr.global_step
    finish(ctrl, timeout=5)             # no more heartbeats: it must pause on its own
    assert ctrl.status == PAUSED and "no browser tab" in ctrl.message
    assert steps <= tr.global_step < 50 * tr.steps_per_epoch
    assert ctrl.resume() and ctrl.message == ""
    ctrl.pause()
    finish(ctrl)


def test_two_sessions_train_side_by_side_without_cross_talk(mnist):
    a = Workspace(SMALL, mnist["train"], mnist["test"])
    b = Workspace(replace(SMALL, seed=1), mnist["train"], mnist["test"])
    refs = []
    for s in (a.settings, b.settings):
        split = make_split(mnist["train"], pool=s.pool, val=s.val, seed=s.seed, test=mnist["test"])
        ref = Trainer(MLP([784, *s.hidden, 10], seed=s.seed), s.make_optimizer(), split, seed=s.seed)
        ref.run(3)
        refs.append(ref)
    hook(a.trainer, {50: a.runner.pause}, delay=0.001)
    hook(b.trainer, delay=0.001)
    assert a.runner.start(3) and b.runner.start(3)
    assert a.busy and b.busy
    finish(a.runner)
    assert a.runner.status == PAUSED and a.trainer.global_step == 50
    finish(b.runner)
    assert b.runner.status == DONE and a.runner.status == PAUSED and a.trainer.global_step == 50
    assert a.runner.resume()
    finish(a.runner)
    for ws, ref in ((a, refs[0]), (b, refs[1])):
        histories_equal(ref.history, ws.history)
        params_equal(ref.net.params, ws.net.params)
    assert not np.array_equal(a.history.step_loss, b.history.step_loss)
    assert a.trainer is not b.trainer and a.history is not b.history


def full_run_memory(mnist) -> dict:
    """``ws.memory()`` of a session after the seed's 1000-epoch run, at its worst: the
    history of 1000 epochs (rows measured on a real epoch of the seed's network),
    641,000 per-step losses, every snapshot, and the stepper's full step history."""
    ws = Workspace(Settings(pool=1100, val=100), mnist["train"], mnist["test"])   # 784-64-64-10
    for _ in range(STEP_HISTORY):
        ws.step()
    ws.trainer.run(ws.trainer.epoch + 1)
    h = ws.history
    assert len(h) >= 1 and h.column("hist_W").shape[1:] == (3, 40)
    full = History(h.n_layers)
    for k, vals in h.rows.items():
        full.rows[k] = [np.array(vals[-1], copy=True) if isinstance(vals[-1], np.ndarray) else vals[-1]
                        for _ in range(1000)]
    steps = 1000 * 641                               # 41,000 images in batches of 64
    full.reserve_steps(steps)
    full.n_steps = steps
    ws.trainer.history = full
    params = ws.net.params
    ws.trainer.snapshots = {e: {k: v.copy() for k, v in params.items()} for e in SNAPSHOT_EPOCHS if e <= 1000}
    assert len(ws.steps) == STEP_HISTORY and all(isinstance(r, StepRecord) for r in ws.steps)
    return ws.memory()


def test_a_full_1000_epoch_run_costs_one_session_at_most_50_mb(mnist):
    m = full_run_memory(mnist)
    assert m["history"] >= 641_000 * 4 + 1000 * 3 * 40 * 2 * 4    # the step losses and the histograms
    assert m["params_and_snapshots"] >= 12 * 50_890 * 4            # now + 11 snapshots of 50,890 float32
    assert m["total"] <= 50e6, m


def test_a_run_gives_way_while_a_page_is_drawn_and_carries_on_after(small):
    """Pages and runs share one interpreter: while any page is drawn, runs wait
    between two steps, then carry on."""
    from core.runner import Foreground

    fg = Foreground(max_wait=30)
    ctrl = RunController(make_trainer(small), foreground=fg)
    ctrl.start(10_000)
    time.sleep(0.3)
    with fg.busy():                      # a page is being drawn
        time.sleep(0.2)                  # the run reaches its next step boundary and waits
        held = ctrl.trainer.global_step
        time.sleep(0.5)
        assert ctrl.trainer.global_step == held and ctrl.active
    time.sleep(0.5)
    assert ctrl.trainer.global_step > held + 10   # and goes on once the page is drawn
    ctrl.stop()
    ctrl.join(10)
    assert ctrl.status == STOPPED
