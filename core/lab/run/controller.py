"""Train in the background while the page stays usable.

A :class:`RunController` trains one session's network in a process of its own
(``python -m core.lab.run.worker``: see there why a process and not a thread) and keeps
the session's trainer up to date from what that process reports: about four
times a second the parameters, the optimizer state, the counters and whatever
the history gained, each time a complete state at a step boundary. A thread of
the server, named ``training-run``, does nothing but wait for those reports and
apply them, so the pages read the run's progress from the session as before.

Pausing asks the process to end between two steps; it reports its exact state
and exits. Resuming starts a new process from that state, so a paused-and-resumed
run equals an uninterrupted one, bit for bit (the tests compare them with
``Trainer.run`` in this process). ``start(epochs, pause_at=N)`` pauses by itself
once the run has made global step N, like a breakpoint.

Abandoned runs: the page calls :meth:`heartbeat` every few seconds while a
browser tab shows it. When no heartbeat has come for ``orphan_after`` seconds
(the tab was closed), the run pauses itself instead of using a core forever.
``orphan_after`` is 90 s unless the environment variable ``BACKPROP_ORPHAN_AFTER``
says otherwise (the browser test of a closed tab uses a few seconds). If the
server itself goes away, the process sees its input close and stops.

A process that stops reporting (frozen by a signal, swapped out, deadlocked) cannot
wedge the session: a watchdog thread ends it when no report has come for
``stall_after`` seconds (far above the quarter second between reports), the
session keeps the last state it applied, and the status says so (``stalled``).

One truth: :attr:`RunController.status`. A run is *active* while its status is
queued, running or pausing; the listening thread writes the final status last,
once the process is reaped and its last report applied. :meth:`RunController.progress`
reads everything the page shows at one moment, under the lock.

At most K runs train at once on a server (:mod:`core.lab.run.slots`); the others
wait with the status ``queued`` and their place in line, and start when a slot
comes free.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

from core.engine.trainer import Trainer
from core.lab.run.slots import RunSlots
from core.lab.settings import most_epochs
from core.lab.run.worker import PAUSE, owned, pack, params_from, read_frame, state_arrays, unpack, write_frame

IDLE, QUEUED, RUNNING, PAUSING, PAUSED, DONE, STOPPED, DIVERGED, FAILED, STALLED = (
    "idle", "queued", "running", "pausing", "paused", "done", "stopped", "diverged", "failed", "stalled")
ACTIVE = (QUEUED, RUNNING, PAUSING)     # a run is going on: no stepping, no second run, no download

ROOT = Path(__file__).resolve().parents[3]
ORPHAN_AFTER = 90.0     # seconds without a heartbeat before a run pauses itself
NICE = 10               # the training process's niceness: when the cores are busy, pages are drawn first
STALL_AFTER = 30.0      # seconds without a report (one comes every 0.25 s) before the process is ended
WATCH_EVERY = 0.5       # seconds between the watchdog's looks
QUEUE_POLL = 0.2        # seconds between a queued run's looks at the queue


def default_orphan_after() -> float:
    try:
        return float(os.environ.get("BACKPROP_ORPHAN_AFTER", ORPHAN_AFTER))
    except ValueError:
        return ORPHAN_AFTER


# --------------------------------------------------------------------------- the conversation
def start_frame(trainer: Trainer, epochs: int, *, pause_at: int | None = None,
                nice: int = NICE) -> tuple[dict, dict]:
    """Everything the training process needs to carry on exactly where ``trainer`` is:
    the network, the optimizer and its state, the counters, and the split's images
    (training images first, then validation images, each in the split's order)."""
    split = trainer.split
    order = np.concatenate([split.train_idx, split.val_idx])
    header = {"kind": "start", "net": trainer.net.config, "optimizer": trainer.optimizer.hyper,
              "state": trainer.state(), "n_train": split.n_train,
              "snapshot_epochs": sorted(int(e) for e in trainer.snapshot_epochs),
              "telemetry_every": trainer.telemetry_every, "epochs": int(epochs),
              "pause_at": None if pause_at is None else int(pause_at), "nice": nice}
    arrays = {"X": split.source.X.take(order, axis=0), "y": split.source.y.take(order), **state_arrays(trainer)}
    return header, arrays


def apply_frame(trainer: Trainer, header: dict, arrays: dict) -> None:
    """Bring ``trainer`` to the state a progress or end frame reports. The history
    grows first and the counters move last, so a page drawn meanwhile sees at
    worst the previous state with some of the new rows."""
    h = trainer.history
    h.extend(params_from(arrays, "row/"))   # copies the rows: a view would keep the whole report alive
    h.add_step_losses(arrays["step_loss"])
    for e in header["snapshots"]:
        trainer.snapshots[int(e)] = {k: v.copy() for k, v in params_from(arrays, f"snap/{e}/").items()}
    # the session's own aligned arrays, not views into the report: a view would keep the whole
    # report alive, and its alignment would depend on the length of the report's header
    trainer.restore(owned(params_from(arrays)), owned(params_from(arrays, "opt/")), header["state"])


def queue_place(p: dict) -> str:
    """Where a queued run waits (``p``: :meth:`RunController.progress`)."""
    return f"place {p['queue_position']} in the queue" if p["queue_position"] else "joining the queue"


def run_summary(p: dict) -> str:
    """Where a run is, in the few words the training page and the sidebar both use (``p``:
    :meth:`RunController.progress`)."""
    if p["status"] == QUEUED:
        return f"waiting for a free slot, {queue_place(p)}"
    return f"epoch {p['epoch']:,}" + (f" of {p['target']:,}" if p["target"] else "")


def worker_command() -> list[str]:
    return [sys.executable, "-m", "core.lab.run.worker"]


# --------------------------------------------------------------------------- the controller
class RunController:
    def __init__(self, trainer: Trainer, *, orphan_after: float | None = None, nice: int = NICE,
                 stall_after: float = STALL_AFTER, slots: RunSlots | None = None):
        self.trainer = trainer
        self.orphan_after = default_orphan_after() if orphan_after is None else orphan_after
        self.stall_after = stall_after
        self.nice = nice
        self.slots = slots if slots is not None else RunSlots()
        self.status = IDLE                       # the one truth about the run: see ACTIVE
        self.message = ""
        self.target_epochs = 0
        self.pause_at: int | None = None
        self.started_from = None                 # the trainer's Point where this run started (undo goes back there)
        self.queue_position: int | None = None   # while QUEUED: 1 = next to start
        self.pid: int | None = None              # the training process of the current stretch
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._stop_reason = PAUSED
        self._last_beat = time.monotonic()
        self._last_frame = time.monotonic()      # when the training process last proved it is alive
        self._stalled_at: int | None = None      # the watchdog ended a process that stopped answering
        self.started_at: float | None = None     # wall clock of the current stretch of running
        self.steps_at_start = 0
        self._lock = threading.RLock()
        self._io = threading.Lock()               # the process's stdin: the start frame, then commands
        self._listening = False                   # the start frame is written: commands may follow

    # -- what the page asks ---------------------------------------------------------
    @property
    def active(self) -> bool:
        """A run is going on (waiting for a slot, training, or ending): read from the status alone,
        which the listening thread sets last, once the process is gone and its last report is in."""
        return self.status in ACTIVE

    def heartbeat(self) -> None:
        self._last_beat = time.monotonic()

    def between_reports(self) -> threading.RLock:
        """``with runner.between_reports():`` no report is being applied inside, so the
        trainer reads whole (its history, parameters and counters at one step boundary)."""
        return self._lock

    def progress(self) -> dict:
        """Where the run is, read at one moment: the page decides every button and every
        number it shows from one of these, so no two of them can disagree."""
        with self._lock:
            tr = self.trainer
            status = self.status
            total = max(self.target_epochs * tr.steps_per_epoch, 1)
            done = tr.global_step
            running = status in (RUNNING, PAUSING) and self.started_at is not None
            elapsed = time.monotonic() - self.started_at if running else 0.0
            rate = (done - self.steps_at_start) / elapsed if elapsed > 0.5 else 0.0
            left = max(total - done, 0)
            return {"status": status, "active": status in ACTIVE, "epoch": tr.epoch, "target": self.target_epochs,
                    "step_in_epoch": tr.step_in_epoch, "steps_per_epoch": tr.steps_per_epoch,
                    "global_step": done, "total_steps": total, "fraction": min(done / total, 1.0),
                    "steps_per_second": rate, "eta": left / rate if rate > 0 else None,
                    "elapsed": elapsed, "train_seconds": tr.train_seconds, "message": self.message,
                    "queue_position": self.queue_position if status == QUEUED else None,
                    "max_runs": self.slots.limit}

    # -- what the page does -----------------------------------------------------------
    def start(self, epochs: int, *, pause_at: int | None = None) -> bool:
        """Train until ``epochs`` epochs are complete, or ``most_epochs`` (or, with ``pause_at``, until global
        step ``pause_at``, then pause); returns False if a run is already going on. When
        the server already trains as many networks as it has slots, the run waits its
        turn (status QUEUED, its place in ``queue_position``)."""
        with self._lock:
            if self.active:
                return False
            # no further than a checkpoint can hold (the training page offers no more)
            epochs = min(int(epochs), most_epochs(self.trainer.steps_per_epoch))
            if epochs <= self.trainer.epoch:
                self.status, self.message = DONE, f"The network has already trained {self.trainer.epoch} epochs."
                return False
            if self.status != PAUSED or self.started_from is None:   # resuming carries on the same run
                self.started_from = self.trainer.point()
            if self._thread is not None:
                self._thread.join(5.0)  # the last run's thread has set its final status and is returning
            self.target_epochs = int(epochs)
            self.pause_at = pause_at
            self._stop.clear()
            self._stop_reason = PAUSED
            self._listening = False
            self._stalled_at = None
            self._proc, self.pid = None, None
            self.message = ""
            self.heartbeat()
            slot, ticket = self.slots.take(), None
            if slot is None:        # in line now, in the order of the clicks, with its place known at once
                ticket = self.slots.queue()
                self.status, self.queue_position = QUEUED, ticket.position()
            else:
                self._running()
            self._thread = threading.Thread(target=self._work, args=(slot, ticket), name="training-run",
                                            daemon=True)
            self._thread.start()
            return True

    def resume(self) -> bool:
        return self.start(self.target_epochs)

    def pause(self) -> None:
        self._request(PAUSED)

    def stop(self) -> None:
        """End the run; the network and its history stay, and can be trained further."""
        with self._lock:
            if not self._request(STOPPED) and self.status == PAUSED:
                self.status = STOPPED

    def _request(self, reason: str) -> bool:
        """Ask the run to end: the process between two steps, a queued run at once. The
        final status is written under the lock once its last report is in, so a run that
        has just finished is never left "pausing"."""
        with self._lock:
            if self.status in ACTIVE:
                self._stop_reason = reason
                if self.status != QUEUED:
                    self.status = PAUSING
                self._stop.set()
                self._tell(PAUSE)
                return True
            return False

    def _tell(self, command: bytes) -> None:
        # never wait for the start frame to be written (a frozen process would make the page
        # wait with it): _work sends the command itself once it has written that frame
        if not self._io.acquire(blocking=False):
            return
        try:
            if not self._listening or self._proc is None:
                return
            self._proc.stdin.write(command)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass                    # it has already ended; its last report says where
        finally:
            self._io.release()

    def forget(self, global_step: int) -> None:
        """The network went back to step ``global_step`` (undo): what the last run reported is over, and
        where it started is no place to go back to once that is ahead."""
        with self._lock:
            if not self.active:
                self.status, self.message = IDLE, ""
                if self.started_from is not None and self.started_from.global_step > global_step:
                    self.started_from = None

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the thread that listens to the process ------------------------------------------
    def _running(self) -> None:
        self.status, self.queue_position = RUNNING, None
        self.started_at, self.steps_at_start = time.monotonic(), self.trainer.global_step

    def _orphaned(self) -> None:
        if not self._stop.is_set() and time.monotonic() - self._last_beat > self.orphan_after:
            with self._lock:
                self.message = "Paused because no browser tab was watching this run."
            self._request(PAUSED)

    def _wait_for_slot(self, ticket):
        """Wait in line for a slot; None when the run was paused or stopped meanwhile."""
        try:
            while True:
                self.queue_position = ticket.position()
                slot = ticket.take()
                if slot is not None:
                    return slot
                self._orphaned()
                if self._stop.wait(QUEUE_POLL):
                    return None
        finally:
            ticket.leave()

    def _watch(self, proc: subprocess.Popen, done: threading.Event) -> None:
        """Pause orphaned runs; end a process that has stopped reporting (frozen, swapped
        out, deadlocked): the listening thread then finds its output closed."""
        while not done.wait(WATCH_EVERY):
            self._orphaned()
            if time.monotonic() - self._last_frame > self.stall_after:
                self._stalled_at = self.trainer.global_step
                end_process(proc)
                return

    def _work(self, slot, ticket) -> None:
        end, proc, code = None, None, None
        done = threading.Event()
        try:
            if slot is None:
                slot = self._wait_for_slot(ticket)
                if slot is None:
                    end = {"kind": "end", "reason": "stopped"}
                    return
                with self._lock:
                    if self._stop.is_set():     # paused or stopped as the slot came free
                        end = {"kind": "end", "reason": "stopped"}
                        return
                    self._running()
            header, arrays = start_frame(self.trainer, self.target_epochs, pause_at=self.pause_at, nice=self.nice)
            payload = pack(header, arrays)
            del arrays
            # ``python -m`` puts its working directory first on sys.path: ROOT makes ``core`` importable
            proc = subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
            self._proc, self.pid = proc, proc.pid
            self._last_frame = time.monotonic()
            threading.Thread(target=self._watch, args=(proc, done), name="training-watchdog", daemon=True).start()
            with self._io:
                write_frame(proc.stdin, payload)
                del payload
                self._listening = True
            self._last_frame = time.monotonic()
            if self._stop.is_set():     # asked to end before the process could hear it
                self._tell(PAUSE)
            while True:
                frame = read_frame(proc.stdout)
                if frame is None:
                    break
                self._last_frame = time.monotonic()
                header, arrays = unpack(frame)
                if header["kind"] in ("progress", "end"):
                    with self._lock:
                        apply_frame(self.trainer, header, arrays)
                if header["kind"] != "progress":
                    end = header
                    break
        except Exception as err:  # a bug must not vanish into a thread
            if self._stalled_at is None:   # (a write to a process the watchdog ended fails: not a bug)
                end = {"kind": "failed", "message": f"{err!r}\n{traceback.format_exc(limit=3)}"}
        finally:
            done.set()
            code = self._close(proc)
            if slot is not None:
                slot.release()
            self._finish(end, code)

    def _finish(self, end: dict | None, code: int | None) -> None:
        """The run's final status: the last thing its thread does."""
        with self._lock:
            self._listening = False
            self.queue_position = None
            steps = self.trainer.global_step
            if end is None and self._stalled_at is not None:
                self.status = STALLED
                self.message = (f"The training process stopped answering at step {steps:,}; the network keeps "
                                f"that step. Start again to carry on.")
            elif end is None:
                self.status = FAILED
                self.message = (f"The training process ended without reporting (exit code {code}); the network "
                                f"keeps the last state it reported, step {steps:,}.")
            elif end["kind"] == "failed":
                self.status, self.message = FAILED, f"The run failed: {end['message']}"
            elif end["reason"] == "done":
                self.status, self.message = DONE, f"Finished {self.trainer.epoch} epochs."
            elif end["reason"] == "diverged":
                self.status, self.message = DIVERGED, end["message"]
            else:
                self.status = self._stop_reason

    def _close(self, proc: subprocess.Popen | None) -> int | None:
        """Let the process go (closing its input tells it to stop if it has not) and reap it."""
        if proc is None:
            return None
        with self._io:
            self._listening = False
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            return proc.wait(10)
        except subprocess.TimeoutExpired:
            end_process(proc)
            return proc.wait()


def end_process(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """End a training process that may be frozen: SIGTERM, and SIGCONT so a stopped
    process can act on it; SIGKILL if it has not ended after ``grace`` seconds."""
    try:
        proc.terminate()
        if hasattr(signal, "SIGCONT"):
            proc.send_signal(signal.SIGCONT)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
    except OSError:
        pass        # already gone
