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
from core.engine.trainer import Trainer, divergence_message

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
    how: str                 # "next", "random", "chosen" or "drawn"
    images: tuple | None = None  # (X_u8, y) when the batch is not from the data set (a drawn digit)


class Workspace:
    def __init__(self, settings: Settings, source: Digits, test: Digits | None = None, *,
                 source_label: str = "MNIST"):
        problems = settings.problems(len(source))
        if problems:
            raise ValueError(" ".join(problems))
        self.settings = settings
        self.source_label = source_label
        self.split: Split = make_split(source, pool=settings.pool, val=settings.val, seed=settings.seed, test=test)
        net = MLP([784, *settings.hidden, 10], activation=settings.activation, init=settings.init,
                  seed=settings.seed)
        self._attach(Trainer(net, settings.make_optimizer(), self.split, batch_size=settings.batch_size,
                             seed=settings.seed), origin=f"a new network (seed {settings.seed})")

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

        On divergence the network keeps its parameters, ``error`` says what to
        try, and the partial trace (up to the loss) is returned in the error.
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
                            tr.net.params, snapshot_optimizer(tr.optimizer), how, images)
        try:
            trace = tr.train_step(record.idx, images=images)
        except DivergenceError as err:
            self.error = divergence_message(err, record.epoch, record.step_in_epoch, tr.optimizer, tr.net)
            raise
        self.error = ""
        self.steps.append(record)
        self.current = trace
        return trace

    def batch_of(self, record: StepRecord) -> tuple[np.ndarray, np.ndarray]:
        """The images (scaled) and labels a past step trained on: from the data set, or drawn."""
        if record.images is not None:
            return to_float(record.images[0], self.net.dtype), record.images[1]
        return self.split.images(record.idx, self.net.dtype)

    def trace_of(self, record: StepRecord) -> Trace:
        """Recompute a past step's trace: same parameters, optimizer state and batch."""
        if self.steps and record is self.steps[-1] and self.current is not None:
            return self.current
        X, y = self.batch_of(record)
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

