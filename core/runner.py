"""Train in the background while the page stays usable.

A :class:`RunController` runs ``trainer.run`` in a daemon thread of its own,
one per user session. Pausing asks the trainer to stop between two steps (the
thread then ends); resuming starts a new thread that carries on from exactly
that step, so a paused-and-resumed run equals an uninterrupted one.

Abandoned runs: the page calls :meth:`heartbeat` every few seconds while a
browser tab shows it. When no heartbeat has come for ``orphan_after`` seconds
(the tab was closed), the run pauses itself instead of using the CPU forever.
``orphan_after`` is 90 s unless the environment variable ``BACKPROP_ORPHAN_AFTER``
says otherwise (the browser test of a closed tab uses a few seconds).
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
import time
import traceback

from core.trainer import Trainer

IDLE, RUNNING, PAUSING, PAUSED, DONE, STOPPED, DIVERGED, FAILED = (
    "idle", "running", "pausing", "paused", "done", "stopped", "diverged", "failed")


ORPHAN_AFTER = 90.0     # seconds without a heartbeat before a run pauses itself


def default_orphan_after() -> float:
    try:
        return float(os.environ.get("BACKPROP_ORPHAN_AFTER", ORPHAN_AFTER))
    except ValueError:
        return ORPHAN_AFTER


class Foreground:
    """Interactive work going on in this process: pages being drawn for someone.

    Every session's run is a thread of the same Python process as the pages, so a
    page drawn while two runs train gets a third of the interpreter (the GIL) and
    a click took 4.5 s instead of 1 s. Runs therefore give way: between two steps
    a run waits while any page is being drawn, at most ``max_wait`` seconds at a
    time, so training can slow the pages down only by a step, and the pages can
    slow training down only by the time they take to draw. One object per server
    (the app keeps it in ``st.cache_resource``); it holds no one's data.
    """

    def __init__(self, max_wait: float = 2.0):
        self.max_wait = max_wait
        self._count = 0
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()

    @contextmanager
    def busy(self):
        with self._lock:
            self._count += 1
            self._idle.clear()
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1
                if self._count == 0:
                    self._idle.set()

    def give_way(self) -> None:
        if not self._idle.is_set():
            self._idle.wait(self.max_wait)


class RunController:
    def __init__(self, trainer: Trainer, *, orphan_after: float | None = None,
                 foreground: Foreground | None = None):
        self.trainer = trainer
        self.foreground = foreground
        self.orphan_after = default_orphan_after() if orphan_after is None else orphan_after
        self.status = IDLE
        self.message = ""
        self.target_epochs = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stop_reason = PAUSED
        self._last_beat = time.monotonic()
        self.started_at: float | None = None     # wall clock of the current stretch of running
        self.steps_at_start = 0
        self._lock = threading.RLock()

    # -- what the page asks ---------------------------------------------------------
    @property
    def active(self) -> bool:
        """A worker thread is (still) training."""
        return self._thread is not None and self._thread.is_alive()

    def heartbeat(self) -> None:
        self._last_beat = time.monotonic()

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
    def start(self, epochs: int) -> bool:
        """Train until ``epochs`` epochs are complete; returns False if already running."""
        with self._lock:
            if self.active and self.status not in (RUNNING, PAUSING):
                self._thread.join(1.0)  # it has written its final status and is returning
            if self.active:
                return False
            if epochs <= self.trainer.epoch:
                self.status, self.message = DONE, f"The network has already trained {self.trainer.epoch} epochs."
                return False
            self.target_epochs = int(epochs)
            self._stop.clear()
            self._stop_reason = PAUSED
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
        """Ask the worker to end between two steps. The worker writes its final status
        under the lock, so a run that has just finished is never left "pausing"."""
        with self._lock:
            if self.active and self.status in (RUNNING, PAUSING):
                self._stop_reason = reason
                self.status = PAUSING
                self._stop.set()
                return True
            return False

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the worker ----------------------------------------------------------------------
    def _should_stop(self) -> bool:
        if self.foreground is not None:
            self.foreground.give_way()
        if self._stop.is_set():
            return True
        if time.monotonic() - self._last_beat > self.orphan_after:
            self._stop_reason = PAUSED
            self.message = "Paused because no browser tab was watching this run."
            return True
        return False

    def _work(self) -> None:
        try:
            result = self.trainer.run(self.target_epochs, should_stop=self._should_stop)
        except Exception as err:  # a bug must not vanish into a thread
            with self._lock:
                self.status = FAILED
                self.message = f"The run failed: {err!r}\n{traceback.format_exc(limit=3)}"
            return
        with self._lock:
            if result.reason == "done":
                self.status, self.message = DONE, f"Finished {self.trainer.epoch} epochs."
            elif result.reason == "diverged":
                self.status, self.message = DIVERGED, result.message
            else:
                self.status = self._stop_reason
