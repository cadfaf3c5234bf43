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
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

from core.engine.trainer import Trainer
from core.lab.run.worker import PAUSE, pack, params_from, read_frame, state_arrays, unpack, write_frame

IDLE, RUNNING, PAUSING, PAUSED, DONE, STOPPED, DIVERGED, FAILED = (
    "idle", "running", "pausing", "paused", "done", "stopped", "diverged", "failed")

ROOT = Path(__file__).resolve().parents[3]
ORPHAN_AFTER = 90.0     # seconds without a heartbeat before a run pauses itself
NICE = 10               # the training process's niceness: when the cores are busy, pages are drawn first


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
    trainer.restore(params_from(arrays), params_from(arrays, "opt/"), header["state"])


def worker_command() -> list[str]:
    return [sys.executable, "-m", "core.lab.run.worker"]


# --------------------------------------------------------------------------- the controller
class RunController:
    def __init__(self, trainer: Trainer, *, orphan_after: float | None = None, nice: int = NICE):
        self.trainer = trainer
        self.orphan_after = default_orphan_after() if orphan_after is None else orphan_after
        self.nice = nice
        self.status = IDLE
        self.message = ""
        self.target_epochs = 0
        self.pause_at: int | None = None
        self.started_from = None                 # the trainer's Point where this run started (undo goes back there)
        self.pid: int | None = None              # the training process of the current stretch
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._stop_reason = PAUSED
        self._last_beat = time.monotonic()
        self.started_at: float | None = None     # wall clock of the current stretch of running
        self.steps_at_start = 0
        self._lock = threading.RLock()
        self._io = threading.Lock()               # the process's stdin: the start frame, then commands
        self._listening = False                   # the start frame is written: commands may follow

    # -- what the page asks ---------------------------------------------------------
    @property
    def active(self) -> bool:
        """A run is (still) going on: its process trains, or its last report is not in yet."""
        return self._thread is not None and self._thread.is_alive()

    def heartbeat(self) -> None:
        self._last_beat = time.monotonic()

    def between_reports(self) -> threading.RLock:
        """``with runner.between_reports():`` no report is being applied inside, so the
        trainer reads whole (its history, parameters and counters at one step boundary)."""
        return self._lock

    def progress(self) -> dict:
        tr = self.trainer
        total = max(self.target_epochs * tr.steps_per_epoch, 1)
        done = tr.global_step
        elapsed = time.monotonic() - self.started_at if self.started_at and self.active else 0.0
        rate = (done - self.steps_at_start) / elapsed if elapsed > 0.5 else 0.0
        left = max(total - done, 0)
        return {"status": self.status, "epoch": tr.epoch, "target": self.target_epochs,
                "step_in_epoch": tr.step_in_epoch, "steps_per_epoch": tr.steps_per_epoch,
                "global_step": done, "total_steps": total, "fraction": min(done / total, 1.0),
                "steps_per_second": rate, "eta": left / rate if rate > 0 else None,
                "elapsed": elapsed, "train_seconds": tr.train_seconds, "message": self.message}

    # -- what the page does -----------------------------------------------------------
    def start(self, epochs: int, *, pause_at: int | None = None) -> bool:
        """Train until ``epochs`` epochs are complete (or, with ``pause_at``, until global
        step ``pause_at``, then pause); returns False if a run is already going on."""
        with self._lock:
            if self.active and self.status not in (RUNNING, PAUSING):
                self._thread.join(1.0)  # it has written its final status and is returning
            if self.active:
                return False
            if epochs <= self.trainer.epoch:
                self.status, self.message = DONE, f"The network has already trained {self.trainer.epoch} epochs."
                return False
            if self.status != PAUSED or self.started_from is None:   # resuming carries on the same run
                self.started_from = self.trainer.point()
            self.target_epochs = int(epochs)
            self.pause_at = pause_at
            self._stop.clear()
            self._stop_reason = PAUSED
            self._listening = False
            self.status, self.message = RUNNING, ""
            self.heartbeat()
            self.started_at, self.steps_at_start = time.monotonic(), self.trainer.global_step
            self._thread = threading.Thread(target=self._work, name="training-run", daemon=True)
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
        """Ask the process to end between two steps. The final status is written under
        the lock once its last report is in, so a run that has just finished is never
        left "pausing"."""
        with self._lock:
            if self.active and self.status in (RUNNING, PAUSING):
                self._stop_reason = reason
                self.status = PAUSING
                self._stop.set()
                self._tell(PAUSE)
                return True
            return False

    def _tell(self, command: bytes) -> None:
        with self._io:
            if not self._listening or self._proc is None:
                return                  # _work sends it as soon as the process is listening
            try:
                self._proc.stdin.write(command)
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass                    # it has already ended; its last report says where

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
    def _orphaned(self) -> None:
        if not self._stop.is_set() and time.monotonic() - self._last_beat > self.orphan_after:
            with self._lock:
                self.message = "Paused because no browser tab was watching this run."
            self._request(PAUSED)

    def _work(self) -> None:
        end, proc = None, None
        try:
            header, arrays = start_frame(self.trainer, self.target_epochs, pause_at=self.pause_at, nice=self.nice)
            payload = pack(header, arrays)
            del arrays
            # ``python -m`` puts its working directory first on sys.path: ROOT makes ``core`` importable
            proc = subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
            self._proc, self.pid = proc, proc.pid
            with self._io:
                write_frame(proc.stdin, payload)
                del payload
                self._listening = True
            if self._stop.is_set():     # asked to end before the process could hear it
                self._tell(PAUSE)
            while True:
                frame = read_frame(proc.stdout)
                if frame is None:
                    break
                header, arrays = unpack(frame)
                if header["kind"] in ("progress", "end"):
                    with self._lock:
                        apply_frame(self.trainer, header, arrays)
                if header["kind"] != "progress":
                    end = header
                    break
                self._orphaned()
        except Exception as err:  # a bug must not vanish into a thread
            end = {"kind": "failed", "message": f"{err!r}\n{traceback.format_exc(limit=3)}"}
        finally:
            code = self._close(proc)
        with self._lock:
            self._listening = False
            if end is None:
                self.status = FAILED
                self.message = (f"The training process ended without reporting (exit code {code}); the network "
                                f"keeps the last state it reported, step {self.trainer.global_step:,}.")
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
            proc.kill()
            return proc.wait()
