"""One user's laboratory: settings, network, optimizer, trainer, run and step history.

Everything a browser session owns lives in one :class:`Workspace` (the app keeps
it in ``st.session_state``); the image arrays it trains on are shared read-only
by all sessions. Nothing here knows about Streamlit, so it is tested directly.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from core.data.mnist import Digits, Split, make_split, to_float
from core.engine.network import MLP, DivergenceError, Trace
from core.engine.optim import snapshot as snapshot_optimizer
from core.lab.checkpoint import restore_trainer
from core.lab.run.controller import RunController
from core.lab.settings import Settings
from core.engine.trainer import Point, Trainer

STEP_HISTORY = 50


@dataclass
class StepRecord:
    """Enough to show a past step again: the same engine recomputes its trace."""

    number: int              # the trainer's global step this was (1-based)
    epoch: int               # epoch it belonged to (1-based)
    step_in_epoch: int       # 1-based
    idx: np.ndarray          # the source images of its mini-batch
    params_before: dict      # by reference: updates never write into arrays
    optimizer_before: object  # a snapshot (state arrays by reference)
    state_before: dict       # the trainer's counters and running sums before it (Trainer.state())
    how: str                 # "next", "random", "chosen" or "drawn"
    images: tuple | None = None  # (X_u8, y) when the batch is not from the data set (a drawn digit)

    @property
    def before(self) -> Point:
        """The trainer just before this step: where undoing it goes back to."""
        return Point(self.params_before, self.optimizer_before.state(), self.state_before)


class Workspace:
    def __init__(self, settings: Settings, source: Digits, test: Digits | None = None, *,
                 source_label: str = "MNIST"):
        problems = settings.problems(len(source))
        if problems:
            raise ValueError(" ".join(problems))
        self.settings = settings
        self.source_label = source_label
        self.split: Split = make_split(source, pool=settings.pool, val=settings.val, seed=settings.seed, test=test)
        self._attach(*self._new_trainer())

    def _new_trainer(self) -> tuple[Trainer, str]:
        s = self.settings
        net = MLP([784, *s.hidden, 10], activation=s.activation, init=s.init, seed=s.seed)
        return (Trainer(net, s.make_optimizer(), self.split, batch_size=s.batch_size, seed=s.seed),
                f"a new network (seed {s.seed})")

    def _attach(self, trainer: Trainer, origin: str) -> None:
        self.trainer = trainer
        self.runner = RunController(trainer)
        self.steps: deque[StepRecord] = deque(maxlen=STEP_HISTORY)
        self.current: Trace | None = None     # the trace of the latest step, kept whole
        self.origin = origin
        self.error = ""

    # -- conveniences ---------------------------------------------------------------------
    @property
    def net(self) -> MLP:
        return self.trainer.net

    @property
    def optimizer(self):
        return self.trainer.optimizer

    @property
    def history(self):
        return self.trainer.history

    @property
    def busy(self) -> bool:
        return self.runner.active

    def set_hyper(self, settings: Settings) -> None:
        """Apply learning rate / optimizer changes to the network as it is.
        The optimizer's state is kept when only its numbers change."""
        old = self.optimizer
        new = settings.make_optimizer()
        if type(new) is type(old):
            new.load_state(old.state())
        self.trainer.optimizer = new
        self.settings = settings

    def open_checkpoint(self, ckpt, settings: Settings, source: Digits, test: Digits | None = None, *,
                        origin: str, source_label: str = "MNIST") -> None:
        """Carry on from a checkpoint (an uploaded file, the pretrained network) with
        ``settings`` that describe it: the one way the app opens a saved network.

        The workspace gets a trainer of its own (network, optimizer, history and
        snapshots: see ``Trainer.from_state``), so the checkpoint, which may be shared by
        every session, is never changed. When the checkpoint does not fit (a batch
        larger than the training set, settings out of range) this raises ValueError
        and the workspace keeps what it had.
        """
        split = make_split(source, pool=settings.pool, val=settings.val, seed=settings.seed, test=test)
        trainer = restore_trainer(ckpt, split)
        problems = settings.problems(len(source))
        if problems:
            raise ValueError(" ".join(problems))
        self.settings, self.split, self.source_label = settings, split, source_label
        self._attach(trainer, origin)

    # -- stepping -----------------------------------------------------------------------------
    def step(self, idx: np.ndarray | None = None, how: str = "next", images: tuple | None = None) -> Trace:
        """One mini-batch through the same ``train_step`` the full run uses
        (``images = (X_u8, y)``: a batch from outside the data set, e.g. a drawn digit).

        A step that would break the network changes nothing (see ``Trainer.train_step``):
        ``error`` says which step it was and what to try, and the error carries the
        step's partial trace.
        """
        if self.busy:
            raise RuntimeError("A training run is going on: pause it before stepping.")
        tr = self.trainer
        if images is not None:
            images = (np.asarray(images[0], np.uint8).reshape(-1, 784), np.asarray(images[1], np.int64).ravel())
            idx = np.zeros(0, np.int64)
        elif idx is None:
            idx = tr.next_indices()
        record = StepRecord(tr.global_step + 1, tr.epoch + 1, tr.step_in_epoch + 1, np.asarray(idx),
                            tr.net.params, snapshot_optimizer(tr.optimizer), tr.state(), how, images)
        try:
            trace = tr.train_step(record.idx, images=images)
        except DivergenceError as err:
            self.error = err.advice
            raise
        self.error = ""
        self.steps.append(record)
        self.current = trace
        return trace

    # -- going back ----------------------------------------------------------------------------
    def undo_points(self) -> list[Point]:
        """Where undo can go back to, newest first: just before each step kept in the step
        history, and where the last training run started."""
        points = {r.number - 1: r.before for r in self.steps}
        start = self.runner.started_from
        if start is not None:
            points.setdefault(start.global_step, start)
        return [points[n] for n in sorted(points, reverse=True) if n < self.trainer.global_step]

    def undo(self, point: Point) -> None:
        """Go back to ``point`` (one of :meth:`undo_points`): the network, its optimizer,
        its counters, history and snapshots as they were there; the steps after it are
        forgotten, and so is what the last run reported."""
        if self.busy:
            raise RuntimeError("A training run is going on: pause it before going back.")
        self.trainer.rewind(point)
        self.steps = deque((r for r in self.steps if r.number <= point.global_step), maxlen=STEP_HISTORY)
        self.current = None          # the latest kept step's trace is recomputed when asked for
        self.error = ""
        self.runner.forget(point.global_step)

    def fresh(self) -> None:
        """Start over: a new network from the settings (their seed and learning rate), on the same images."""
        if self.busy:
            raise RuntimeError("A training run is going on: stop it before starting a fresh network.")
        self._attach(*self._new_trainer())

    def trace_of(self, record: StepRecord) -> Trace:
        """Recompute a past step's trace: same parameters, optimizer state and batch."""
        if self.steps and record is self.steps[-1] and self.current is not None:
            return self.current
        if record.images is not None:
            X, y = to_float(record.images[0], self.net.dtype), record.images[1]
        else:
            X, y = self.split.images(record.idx, self.net.dtype)
        net = self.net.with_params(record.params_before)
        return net.step(X, y, snapshot_optimizer(record.optimizer_before))

    def memory(self) -> dict:
        """Bytes this workspace holds beyond the shared images."""
        seen, total = set(), 0

        def add(arrays):
            nonlocal total
            for a in arrays:
                if isinstance(a, np.ndarray) and id(a) not in seen:
                    seen.add(id(a))
                    total += a.nbytes

        add(self.net.params.values())
        add(self.optimizer.state().values())
        for snap in self.trainer.snapshots.values():
            add(snap.values())
        steps_before = total
        for r in self.steps:
            add(r.params_before.values())
            add(r.optimizer_before.state().values())
            add([r.idx])
        steps_bytes = total - steps_before
        trace = self.current.nbytes if self.current is not None else 0
        return {"history": self.history.nbytes, "params_and_snapshots": steps_before,
                "step_history": steps_bytes, "current_trace": trace,
                "total": self.history.nbytes + total + trace}

