"""The background run in its own process: pause/resume/stop (bit-identical to an
uninterrupted run in this process, also at an epoch's last step), start-while-running,
divergence, abandoned tabs, a process that dies, freezes or loses its server, two
sessions side by side, at most K runs at once with a queue, and the memory a full run
costs one session."""
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.data.mnist import make_split
from core.engine.network import MLP
from core.engine.optim import SGD, Momentum
from core.lab.run.controller import (DIVERGED, DONE, PAUSED, PAUSING, QUEUED, RUNNING, STALLED, STOPPED,
                                    RunController)
from core.lab.run.slots import RunSlots
from core.engine.history import History
from core.engine.trainer import SNAPSHOT_EPOCHS, Trainer
from core.lab.settings import Settings
from core.lab.workspace import STEP_HISTORY, StepRecord, Workspace

SMALL = Settings(hidden=(32, 32), pool=2200, val=200, epochs=3)   # 2000 images → 32 steps per epoch


@pytest.fixture(scope="module")
def small(mnist):
    return make_split(mnist["train"], pool=2200, val=200, seed=0, test=mnist["test"])


def make_trainer(split, seed=0, opt=None, hidden=(32, 32)):
    return Trainer(MLP([784, *hidden, 10], seed=seed), opt or Momentum(0.05), split, batch_size=64, seed=seed)


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
    assert not ctrl.active, "the run did not end"


def wait_for(cond, timeout=30.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_pausing_twice_and_resuming_gives_the_uninterrupted_run(small):
    whole = make_trainer(small)
    whole.run(3)

    tr = make_trainer(small)
    ctrl = RunController(tr)
    assert ctrl.start(3, pause_at=45)            # mid-epoch 2
    finish(ctrl)
    assert ctrl.status == PAUSED and (tr.global_step, tr.epoch, tr.step_in_epoch) == (45, 1, 13)
    assert ctrl.pid is not None and ctrl.pid != __import__("os").getpid()
    p = ctrl.progress()
    assert p["status"] == PAUSED and p["global_step"] == 45 and p["total_steps"] == 96 and p["eta"] is None
    time.sleep(0.05)
    assert tr.global_step == 45, "a paused run must not train"

    assert ctrl.start(3, pause_at=70)            # mid-epoch 3
    finish(ctrl)
    assert ctrl.status == PAUSED and tr.global_step == 70
    assert ctrl.resume()
    finish(ctrl)
    assert ctrl.status == DONE and tr.epoch == 3 and ctrl.progress()["fraction"] == 1.0
    histories_equal(whole.history, tr.history)
    params_equal(whole.net.params, tr.net.params)
    params_equal(whole.optimizer.state(), tr.optimizer.state())
    assert sorted(tr.snapshots) == [0, 1, 2]


def test_a_pause_from_the_page_at_any_moment_resumes_exactly(small):
    whole = make_trainer(small)
    whole.run(150)
    tr = make_trainer(small)
    ctrl = RunController(tr)
    assert ctrl.start(150)                       # 4,800 steps: a second or two
    wait_for(lambda: tr.global_step > 0)         # the first report is in: it is training
    ctrl.pause()
    finish(ctrl)
    assert ctrl.status == PAUSED and 0 < tr.global_step < 150 * 32
    assert tr.history.n_steps == tr.global_step and len(tr.history) == tr.epoch
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
    assert ctrl.start(2, pause_at=40)
    finish(ctrl)
    ctrl.stop()
    assert ctrl.status == STOPPED and tr.global_step == 40 and len(tr.history) == 1
    assert ctrl.resume()        # a stopped run can be trained further: a new start to the same target
    finish(ctrl)
    assert ctrl.status == DONE
    histories_equal(whole.history, tr.history)
    params_equal(whole.net.params, tr.net.params)

    # stopping a paused run only changes its status
    tr2 = make_trainer(small)
    ctrl2 = RunController(tr2)
    ctrl2.start(1000)
    wait_for(lambda: tr2.global_step > 0)
    ctrl2.stop()                                 # stopping a running run
    finish(ctrl2)
    assert ctrl2.status == STOPPED and 0 < tr2.global_step < 1000 * 32


def test_start_while_running_returns_false_and_starts_nothing(small):
    tr = make_trainer(small)
    ctrl = RunController(tr)
    assert ctrl.start(1000)
    wait_for(lambda: tr.global_step > 0)
    assert ctrl.active and ctrl.status == RUNNING
    workers = [t for t in threading.enumerate() if t.name == "training-run"]
    pid = ctrl.pid
    assert not ctrl.start(2000) and not ctrl.start(5) and not ctrl.resume()
    assert [t for t in threading.enumerate() if t.name == "training-run"] == workers and ctrl.pid == pid
    assert ctrl.target_epochs == 1000
    ctrl.pause()
    finish(ctrl)
    assert ctrl.start(tr.epoch + 1)              # to the end of the current epoch
    finish(ctrl)
    assert ctrl.status == DONE and tr.step_in_epoch == 0 and tr.history.n_steps == tr.global_step

    # a target already reached starts nothing either
    steps = tr.global_step
    assert not ctrl.start(tr.epoch) and not ctrl.active and tr.global_step == steps


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
    tr = make_trainer(small)
    ctrl = RunController(tr, orphan_after=0.5)
    assert ctrl.start(100_000)                  # far more than the test lasts
    until = time.monotonic() + 1.5      # three orphan periods, with a tab beating every 50 ms
    while time.monotonic() < until:
        ctrl.heartbeat()
        time.sleep(0.05)
    assert ctrl.active and ctrl.status == RUNNING
    steps = tr.global_step
    finish(ctrl, timeout=5)             # no more heartbeats: it must pause on its own
    assert ctrl.status == PAUSED and "no browser tab" in ctrl.message
    assert steps <= tr.global_step < 100_000 * tr.steps_per_epoch
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
    assert a.runner.start(3, pause_at=50) and b.runner.start(3)
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


def test_the_run_trains_in_another_process_and_leaves_this_interpreter_free(small):
    """The point of the process: pages are drawn by this interpreter, and a run must not
    take it from them. While the run trains for a second, this process spends a
    fraction of that on applying its reports."""
    tr = make_trainer(small)
    ctrl = RunController(tr)
    ctrl.start(100_000)
    wait_for(lambda: tr.global_step > 0)
    steps, cpu, wall = tr.global_step, time.process_time(), time.monotonic()
    time.sleep(1.0)
    used = time.process_time() - cpu
    trained = tr.global_step - steps
    ctrl.stop()
    finish(ctrl)
    assert trained > 100, "it did not train meanwhile"
    assert used < 0.5 * (time.monotonic() - wall), f"this process used {used:.2f} CPU-s in 1 s of training"


def test_a_training_process_that_dies_leaves_the_last_reported_state(small):
    tr = make_trainer(small)
    ctrl = RunController(tr)
    ctrl.start(100_000)
    wait_for(lambda: tr.global_step > 0)
    subprocess.run(["kill", "-9", str(ctrl.pid)], check=True)
    finish(ctrl)
    assert ctrl.status == "failed" and "ended without reporting" in ctrl.message and "exit code -9" in ctrl.message
    # what it had reported is a consistent state: resuming from it equals an uninterrupted run
    steps = tr.global_step
    assert tr.history.n_steps == steps and len(tr.history) == tr.epoch
    assert ctrl.start(tr.epoch + 2)
    finish(ctrl)
    whole = make_trainer(small)
    whole.run(tr.epoch)
    histories_equal(whole.history, tr.history)
    params_equal(whole.net.params, tr.net.params)
    params_equal(whole.optimizer.state(), tr.optimizer.state())


def test_a_training_process_whose_server_went_away_stops(small):
    """If the server dies, nobody reads the reports; the process must not train on alone."""
    from core.lab.run.controller import start_frame, worker_command, ROOT
    from core.lab.run.worker import pack, write_frame
    header, arrays = start_frame(make_trainer(small), 100_000)
    proc = subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    write_frame(proc.stdin, pack(header, arrays))
    assert proc.stdout.read(8)                   # it reports: it is training
    proc.stdin.close()                           # the server is gone (its end of the pipes closes)
    proc.stdout.close()
    proc.wait(10)                                # ends by itself (TimeoutExpired otherwise)


def test_momentum_and_adam_state_cross_the_process_boundary_exactly(small):
    from core.engine.optim import Adam
    for opt in (lambda: Momentum(0.05), lambda: Adam(0.001)):
        whole = make_trainer(small, opt=opt())
        whole.run(2)
        tr = make_trainer(small, opt=opt())
        ctrl = RunController(tr)
        ctrl.start(2, pause_at=33)
        finish(ctrl)
        assert tr.global_step == 33 and ctrl.status == PAUSED
        ctrl.resume()
        finish(ctrl)
        params_equal(whole.net.params, tr.net.params)
        params_equal(whole.optimizer.state(), tr.optimizer.state())


def test_frames_carry_numbers_exactly_and_refuse_anything_else():
    from core.lab.run.worker import pack, unpack
    arrays = {"W1": np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32), "t": np.array(7, np.int64),
              "empty": np.zeros((0, 3, 40), np.int32), "col": np.arange(10.0)[::2]}   # a strided view too
    header, back = unpack(bytearray(pack({"kind": "progress", "n": [1, 2]}, arrays)))
    assert header == {"kind": "progress", "n": [1, 2]}
    for k, a in arrays.items():
        assert back[k].dtype == a.dtype and back[k].shape == a.shape, k
        np.testing.assert_array_equal(back[k], a)
    assert back["W1"].flags.writeable and int(back["t"]) == 7
    with pytest.raises(TypeError):
        pack({}, {"evil": np.array([object()])})
    frame = pack({}, {"x": np.arange(4.0)})
    with pytest.raises(ValueError):
        unpack(bytearray(frame[:-8]))            # cut short
    with pytest.raises(ValueError):
        unpack(bytearray(frame.replace(b"<f8", b"|O8")))   # an object array announced


def test_a_bug_in_the_training_process_is_reported_as_a_failed_run(small):
    tr = make_trainer(small)
    tr.optimizer.load_state({"V_W1": np.zeros((3, 3), np.float32)})   # a state that does not fit the network
    ctrl = RunController(tr)
    assert ctrl.start(2)
    finish(ctrl)
    assert ctrl.status == "failed" and ctrl.message.startswith("The run failed: ") and "Traceback" in ctrl.message
    assert tr.global_step == 0


def test_the_history_keeps_its_own_arrays_not_views_into_the_reports(small):
    """A report is one buffer; a row that were a view into it would keep the whole
    report (parameters included) alive: about 350 MB over a 1000-epoch run."""
    tr = make_trainer(small)
    ctrl = RunController(tr)
    ctrl.start(5)
    finish(ctrl)
    assert ctrl.status == DONE and len(tr.history) == 5
    for k in History.LAYERED + History.HISTS:
        assert all(a.base is None for a in tr.history.rows[k]), k
    for e, snap in tr.snapshots.items():
        assert all(a.base is None for a in snap.values()) or e == 0, e


# --------------------------------------------------------------------------- a process that stops answering
def process_state(pid: int) -> str:
    """The kernel's one-letter state of a process (R, S, T = stopped, Z = zombie), "" once reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return ""


def gone(pid: int) -> bool:
    return process_state(pid) in ("", "Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGSTOP and /proc: Linux")
@pytest.mark.parametrize("pause_first", [False, True], ids=["running", "pausing"])
def test_a_frozen_training_process_is_ended_and_the_session_keeps_its_last_step(small, pause_first):
    tr = make_trainer(small)
    ctrl = RunController(tr, stall_after=2.0)
    assert ctrl.start(100_000)
    wait_for(lambda: tr.global_step > 0)
    pid = ctrl.pid
    os.kill(pid, signal.SIGSTOP)
    wait_for(lambda: process_state(pid) == "T")
    if pause_first:                 # Pause while it is frozen: "pausing…" must not last for ever
        ctrl.pause()
        assert ctrl.status == PAUSING and ctrl.active
    wait_for(lambda: not ctrl.active, timeout=60)
    assert ctrl.status == STALLED
    steps = tr.global_step
    assert ctrl.message == (f"The training process stopped answering at step {steps:,}; the network keeps that "
                            f"step. Start again to carry on.")
    assert gone(pid), "the frozen process was left behind"
    assert not ctrl.progress()["active"] and ctrl.progress()["status"] == STALLED
    # the state it keeps is a consistent one: saving works, and training again equals an uninterrupted run
    assert tr.history.n_steps == steps and len(tr.history) == tr.epoch
    ws_bytes = __import__("core.lab.checkpoint", fromlist=["to_bytes"]).to_bytes(tr.net, tr.optimizer, tr)
    assert len(ws_bytes) > 0
    assert ctrl.start(tr.epoch + 1)
    finish(ctrl)
    assert ctrl.status == DONE and ctrl.message.startswith("Finished")
    whole = make_trainer(small)
    whole.run(tr.epoch)
    histories_equal(whole.history, tr.history)
    params_equal(whole.net.params, tr.net.params)
    params_equal(whole.optimizer.state(), tr.optimizer.state())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGSTOP and /proc: Linux")
def test_a_process_frozen_before_it_reads_its_start_frame_does_not_freeze_the_page(small, monkeypatch):
    """The start frame (1.7 MB here, 47 MB for MNIST) fills the pipe; a frozen reader blocks the
    writer. Pause must still return at once, and the watchdog ends the process."""
    import core.lab.run.controller as controller
    frozen = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSTOP)"]
    monkeypatch.setattr(controller, "worker_command", lambda: frozen)
    tr = make_trainer(small)
    ctrl = RunController(tr, stall_after=3600)
    assert ctrl.start(3)
    wait_for(lambda: ctrl.pid is not None and process_state(ctrl.pid) == "T")
    ctrl.pause()                    # returns although the start frame is half written …
    assert ctrl.status == PAUSING and not gone(ctrl.pid)
    ctrl.stall_after = 1.0          # … and the watchdog, once its deadline has passed, ends the process
    finish(ctrl)
    assert ctrl.status == STALLED and tr.global_step == 0 and gone(ctrl.pid)


# --------------------------------------------------------------------------- bit-exact at an epoch's end
def test_pausing_on_the_last_step_of_an_epoch_resumes_bit_exactly(small):
    whole = make_trainer(small)
    whole.run(4)
    for opt in (None, Momentum(0.05)):
        tr = make_trainer(small, opt=opt)
        ctrl = RunController(tr)
        last = 2 * tr.steps_per_epoch             # the last step of epoch 2
        assert ctrl.start(4, pause_at=last)
        finish(ctrl)
        assert ctrl.status == PAUSED and (tr.global_step, tr.epoch, tr.step_in_epoch) == (last, 2, 0)
        # the session's arrays are its own, allocated like any other, not views into a report
        for k, a in {**tr.net.params, **tr.optimizer.state()}.items():
            assert isinstance(a, np.ndarray) and a.flags.owndata and a.flags.aligned, k
            assert a.ndim == 0 or a.ctypes.data % 16 == 0, k
        assert ctrl.resume()
        finish(ctrl)
        assert ctrl.status == DONE
        histories_equal(whole.history, tr.history)
        params_equal(whole.net.params, tr.net.params)
        params_equal(whole.optimizer.state(), tr.optimizer.state())


# --------------------------------------------------------------------------- at most K runs at once
def test_at_most_k_runs_train_at_once_and_the_others_wait_in_order(small, tmp_path):
    slots = RunSlots(limit=1, folder=tmp_path)
    trs = [make_trainer(small, seed=s) for s in range(3)]
    a, b, c = (RunController(t, slots=slots) for t in trs)
    assert a.start(100_000) and a.status == RUNNING
    assert b.start(100_000) and c.start(100_000)
    wait_for(lambda: (b.queue_position, c.queue_position) == (1, 2))
    assert b.status == c.status == QUEUED and b.active and c.active and b.pid is None and c.pid is None
    p = c.progress()
    assert p["status"] == QUEUED and p["queue_position"] == 2 and p["max_runs"] == 1 and p["active"]
    assert not b.start(5), "a queued run is a run going on"
    wait_for(lambda: trs[0].global_step > 0)
    assert trs[1].global_step == trs[2].global_step == 0

    a.pause()                       # its slot goes to the first in line
    finish(a)
    wait_for(lambda: b.status == RUNNING and c.queue_position == 1)
    wait_for(lambda: trs[1].global_step > 0)
    assert c.status == QUEUED and trs[2].global_step == 0

    c.stop()                        # leaving the queue: no process, nothing trained
    finish(c)
    assert c.status == STOPPED and c.pid is None and trs[2].global_step == 0
    assert a.start(100_000) and a.status == QUEUED      # B holds the one slot
    wait_for(lambda: a.queue_position == 1)
    b.pause()
    finish(b)
    wait_for(lambda: a.status == RUNNING)
    a.pause()
    finish(a)
    assert a.status == PAUSED and b.status == PAUSED


def test_a_queued_run_nobody_watches_leaves_the_queue(small, tmp_path):
    slots = RunSlots(limit=1, folder=tmp_path)
    held = slots.take()
    try:
        tr = make_trainer(small)
        ctrl = RunController(tr, slots=slots, orphan_after=0.5)
        assert ctrl.start(3) and ctrl.status == QUEUED
        finish(ctrl, timeout=30)
        assert ctrl.status == PAUSED and "no browser tab" in ctrl.message and tr.global_step == 0
    finally:
        held.release()


def test_slots_are_shared_by_processes_and_die_with_them(small, tmp_path):
    """The limit is the OS's: a slot taken in another process counts, a ticket whose
    process died is not waited for, and the slot of a process that died is free."""
    code = ("import sys; from core.lab.run.slots import RunSlots; s = RunSlots(1, sys.argv[1]).take(); "
            "t = RunSlots(1, sys.argv[1]).queue(); print('held' if s else 'none', flush=True); sys.stdin.read()")
    other = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert other.stdout.readline().strip() == "held"
        tr = make_trainer(small)
        ctrl = RunController(tr, slots=RunSlots(limit=1, folder=tmp_path))
        assert ctrl.start(2)
        wait_for(lambda: ctrl.queue_position == 2)   # behind the other process's ticket
        assert ctrl.status == QUEUED
    finally:
        other.stdin.close()
        other.wait(10)
    finish(ctrl)                                      # its slot and its ticket died with it
    assert ctrl.status == DONE and tr.epoch == 2


def test_the_limit_is_the_number_of_cores_unless_the_setting_says_otherwise(monkeypatch):
    monkeypatch.delenv("BACKPROP_MAX_RUNS", raising=False)
    assert RunSlots().limit == (os.cpu_count() or 1)
    monkeypatch.setenv("BACKPROP_MAX_RUNS", "3")
    assert RunSlots().limit == 3
    monkeypatch.setenv("BACKPROP_MAX_RUNS", "0")
    assert RunSlots().limit == 1
