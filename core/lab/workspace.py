"""One user's laboratory: settings, network, optimizer, trainer, run and step history.

Everything a browser session owns lives in one :class:`Workspace` (the app keeps
it in ``st.session_state``); the image arrays it trains on are shared read-only
by all sessions. Nothing here knows about Streamlit, so it is tested directly.

What the stepper keeps is bounded in bytes, whatever the settings: a past step
keeps what recomputes it exactly (its parameters, optimizer state and batch:
a :class:`StepRecord`), never its trace; the history keeps at most
``STEP_HISTORY`` steps and ``STEP_BYTES`` bytes of them. Whole traces (the
latest step's, one earlier step recomputed) are kept between reruns only while
they fit in ``TRACE_BYTES``; a larger one is recomputed by the same engine each
time it is asked for (:meth:`Workspace.trace_of`).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from core.data.mnist import Digits, Split, make_split, to_float
from core.engine.network import MLP, DivergenceError, Trace
from core.engine.optim import snapshot as snapshot_optimizer
from core.lab.checkpoint import restore_trainer
from core.lab.run.controller import DONE, RunController
from core.lab.runs import Run, Runs, RunsFull, checkpoint_blob, curves_of, describe
from core.lab.settings import Settings, most_epochs
from core.engine.trainer import Point, Trainer, evaluate

STEP_HISTORY = 50           # past steps the stepper keeps at most …
STEP_BYTES = 40 * 2**20     # … and bytes of them (the largest network with Adam: 3 steps of 11 MB)
TRACE_BYTES = 24 * 2**20    # whole traces kept between reruns (one of batch 4096 on 3×512 is 129 MB)

# How a workspace's network came to be (``Workspace.made``): code decides by these, never by the
# words ``Workspace.origin`` shows, so rewording the screen cannot change what the app does.
SEED = "seed"           # made here from the settings (their seed): what a link to these settings makes
SHIPPED = "shipped"     # a network the app ships (the pretrained one): it can open it again any time
FILE = "file"           # a checkpoint from elsewhere (an upload)
MADE = (SEED, SHIPPED, FILE)


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

    @cached_property
    def nbytes(self) -> int:
        """Bytes of the arrays it holds (some may be shared with the network or a snapshot)."""
        arrays = [*self.params_before.values(), *self.optimizer_before.state().values(), self.idx,
                  *(self.images or ())]
        return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))

    @property
    def before(self) -> Point:
        """The trainer just before this step: where undoing it goes back to."""
        return Point(self.params_before, self.optimizer_before.state(), self.state_before)


class Workspace:
    def __init__(self, settings: Settings, source: Digits, test: Digits | None = None, *,
                 source_label: str = "MNIST", runs: Runs | None = None):
        problems = settings.problems(len(source))
        if problems:
            raise ValueError(" ".join(problems))
        self.settings = settings
        self.runs = runs if runs is not None else Runs()   # the runs kept side by side: they outlive the network
        self.runs_note = ""         # why a finished training run could not be kept as a run ("" when it was)
        self.source_label = source_label
        self.split: Split = make_split(source, pool=settings.pool, val=settings.val, seed=settings.seed, test=test)
        self._attach(*self._new_trainer())

    def _new_trainer(self) -> tuple[Trainer, str, str]:
        s = self.settings
        net = MLP([784, *s.hidden, 10], activation=s.activation, init=s.init, seed=s.seed, dropout=s.dropout,
                  batchnorm=s.batchnorm)
        return (Trainer(net, s.make_optimizer(), self.split, batch_size=s.batch_size, seed=s.seed,
                        shift=s.shift, rotate=s.rotate),
                f"a new network (seed {s.seed})", SEED)

    def _attach(self, trainer: Trainer, origin: str, made: str) -> None:
        if made not in MADE:
            raise ValueError(f"A network is made one of the ways {MADE}, not {made!r}.")
        self.trainer = trainer
        self.runner = RunController(trainer)
        self.steps: deque[StepRecord] = deque()   # the newest last; see _remember for its bounds
        self.current: Trace | None = None     # the trace of the latest step, when it fits TRACE_BYTES
        self._recomputed: tuple[StepRecord, Trace] | None = None   # one earlier step's, when it fits too
        self.origin = origin                  # the screen's words for where the network came from
        self.made = made                      # … and what the code decides by: SEED, SHIPPED or FILE
        self.made_at = trainer.global_step    # the trainer's step count when it came
        self.retuned_at: int | None = None    # its step count when the optimizer's numbers first changed after
                                              # it had trained here: a link's replay would use the new ones throughout
        self.error = ""
        self.kept: tuple[int, dict] | None = None   # (run id, the parameters) when this network is a kept run
        self._auto_kept: dict | None = None          # the parameters a finished training run was kept with

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

    @property
    def fresh_from_seed(self) -> bool:
        """Made here from the settings and not trained: the network a link to these settings
        makes, so the link's steps replay to the same numbers."""
        return self.made == SEED and self.trainer.global_step == 0

    @property
    def would_lose_work(self) -> bool:
        """Whether putting another network in this one's place loses training: once it has
        taken a step, unless it is a shipped network as shipped (the app opens it again any time)."""
        step = self.trainer.global_step
        return step > 0 and not (self.made == SHIPPED and step == self.made_at) and not self.is_kept

    @property
    def is_kept(self) -> bool:
        """Whether this network, as it is now, is one of the runs kept (so replacing it loses nothing)."""
        if self.kept is None or self.kept[1] is not self.net.params:
            return False
        return any(r.id == self.kept[0] for r in self.runs)

    def forget_run(self) -> None:
        """A new run controller once a run has ended, so no page offers to resume it (a link's
        replay trains in the training process, but it is not a run the student started)."""
        if not self.busy:
            self.runner = RunController(self.trainer)

    def set_hyper(self, settings: Settings) -> None:
        """Apply learning rate / optimizer changes to the network as it is.
        The optimizer's state is kept when only its numbers change.

        A run's reports land in the trainer's optimizer (``apply_frame``), so the optimizer is
        left alone when its numbers are the same (only ``epochs`` changed, say, during a run),
        and otherwise swapped between two reports: a report applied while the new one copied
        the old one's state would be lost, leaving the optimizer one report behind."""
        new = settings.make_optimizer()
        with self.runner.between_reports():
            old = self.optimizer
            if new.hyper != old.hyper:
                if self.retuned_at is None and self.trainer.global_step > self.made_at:
                    self.retuned_at = self.trainer.global_step
                if type(new) is type(old):
                    new.load_state(old.state())
                self.trainer.optimizer = new
            self.settings = settings

    def open_checkpoint(self, ckpt, settings: Settings, source: Digits, test: Digits | None = None, *,
                        origin: str, made: str = FILE, source_label: str = "MNIST") -> None:
        """Carry on from a checkpoint (an uploaded file, the pretrained network) with
        ``settings`` that describe it: the one way the app opens a saved network.

        The workspace gets a trainer of its own (network, optimizer, history and
        snapshots: see ``Trainer.from_state``), so the checkpoint, which may be shared by
        every session, is never changed. ``made`` is SHIPPED for a network the app ships,
        FILE for any other. When the checkpoint does not fit (a batch
        larger than the training set, settings out of range) this raises ValueError
        and the workspace keeps what it had.
        """
        split = make_split(source, pool=settings.pool, val=settings.val, seed=settings.seed, test=test)
        trainer = restore_trainer(ckpt, split)
        problems = settings.problems(len(source))
        if problems:
            raise ValueError(" ".join(problems))
        self.settings, self.split, self.source_label = settings, split, source_label
        self._attach(trainer, origin, made)

    # -- runs kept side by side (core/lab/runs.py) --------------------------------------------------
    def keep_run(self, name: str | None = None, *, shipped: str = "") -> Run:
        """Keep the network as it is now among the runs (named ``name``, or after its settings and
        epochs). Raises RunsFull when it does not fit, ValueError when it is kept already, RuntimeError
        while a run trains."""
        if self.busy:
            raise RuntimeError("A training run is going on: pause it before keeping the network as a run.")
        if self.is_kept:
            raise ValueError(f"Your network is kept already, as the run “{self.runs.get(self.kept[0]).name}”.")
        tr = self.trainer
        test = self.split.test
        test_acc = float(evaluate(self.net, test.X, test.y)["acc"]) if test is not None and len(test) else None
        blob = checkpoint_blob(tr.net, tr.optimizer, tr, meta={"test_acc": test_acc} if test_acc is not None else {})
        curves = curves_of(tr.history)
        seconds = max(float(curves["seconds"][-1]) if len(curves["seconds"]) else 0.0,
                      float(tr.state().get("train_seconds", 0.0)))
        if name is None:
            name = f"{describe(self.settings)}, {tr.epoch:,} epoch{'s' if tr.epoch != 1 else ''}"
        run = Run(self.runs.new_id(), name, self.settings, blob, curves, test_acc, seconds, self.origin, self.made,
                  self.made_at, self.retuned_at, tr.global_step, shipped)
        run = self.runs.add(run)
        self.kept = (run.id, self.net.params)
        return run

    def keep_finished_run(self) -> Run | None:
        """Once a training run has finished (not paused or stopped), keep its network as a run, once.
        When the runs are full, ``runs_note`` says so and the network stays as it is."""
        if self.runner.status != DONE or self.runner.started_from is None or self._auto_kept is self.net.params:
            return None
        self._auto_kept = self.net.params
        if self.is_kept:
            return None
        try:
            run = self.keep_run()
        except RunsFull as err:
            self.runs_note = f"The finished run was not kept for comparison: {err}"
            return None
        self.runs_note = ""
        return run

    def reopen(self, run_id: int, source: Digits, test: Digits | None = None, *, source_label: str = "MNIST") -> None:
        """Make a kept run the current network, as it was when kept (the run stays kept). Raises
        ValueError (a CheckpointError when its blob is damaged) and changes nothing when it cannot."""
        if self.busy:
            raise RuntimeError("A training run is going on: stop it before opening another network.")
        run = self.runs.get(run_id)
        ck = run.checkpoint()
        self.open_checkpoint(ck, run.settings, source, test, origin=f"the run “{run.name}”", made=run.made,
                             source_label=source_label)
        self.made_at, self.retuned_at = run.made_at, run.retuned_at
        self.kept = (run.id, self.net.params)

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
        if tr.epoch >= (most := most_epochs(tr.steps_per_epoch)):     # what it wrote, the app could not read
            raise RuntimeError(f"This network has trained {tr.epoch:,} epochs of {tr.steps_per_epoch:,} steps, the "
                               f"most the app keeps at these sizes ({most:,}): start a new network to step on.")
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
        self._remember(record, trace)
        return trace

    def _remember(self, record: StepRecord, trace: Trace) -> None:
        """Keep ``record`` (dropping the oldest past STEP_HISTORY steps or STEP_BYTES bytes; the
        latest always stays) and ``trace`` whole if it fits TRACE_BYTES."""
        self.steps.append(record)
        while len(self.steps) > 1 and (len(self.steps) > STEP_HISTORY or
                                       sum(r.nbytes for r in self.steps) > STEP_BYTES):
            self.steps.popleft()
        self.current = trace if trace.nbytes <= TRACE_BYTES else None
        self._recomputed = None

    def step_capacity(self) -> int:
        """How many past steps the history keeps at these sizes: STEP_HISTORY, or fewer when
        that many parameter sets (with the optimizer's state and the batch) exceed STEP_BYTES."""
        params = sum(p.nbytes for p in self.net.params.values())
        per_step = params * (1 + len(self.optimizer.state_keys)) + self.trainer.batch_size * 8
        return max(1, min(STEP_HISTORY, STEP_BYTES // per_step))

    def batch_of(self, record: StepRecord) -> tuple[np.ndarray, np.ndarray]:
        """The images (scaled) and labels a past step trained on: from the data set, or drawn."""
        if record.images is not None:
            return to_float(record.images[0], self.net.dtype), record.images[1]
        return self.split.images(record.idx, self.net.dtype)

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
        if self.retuned_at is not None and point.global_step < self.retuned_at:   # the steps kept before it used
            self.retuned_at = point.global_step if point.global_step > self.made_at else None   # the old numbers
        self.steps = deque((r for r in self.steps if r.number <= point.global_step), maxlen=STEP_HISTORY)
        self.current = None          # the latest kept step's trace is recomputed when asked for
        self._recomputed = None
        self.error = ""
        self.runner.forget(point.global_step)

    def fresh(self) -> None:
        """Start over: a new network from the settings (their seed and learning rate), on the same images."""
        if self.busy:
            raise RuntimeError("A training run is going on: stop it before starting a fresh network.")
        self._attach(*self._new_trainer())

    def trace_of(self, record: StepRecord) -> Trace:
        """A kept step's trace: the latest one as kept, or recomputed by the same engine from
        the parameters, optimizer state and batch it had. One recomputed trace is kept while
        it fits TRACE_BYTES beside the latest; a larger one is recomputed on every call."""
        if self.steps and record is self.steps[-1] and self.current is not None:
            return self.current
        if self._recomputed is not None and self._recomputed[0] is record:
            return self._recomputed[1]
        X, y = self.batch_of(record)
        net = self.net.with_params(record.params_before)
        trace = self.trainer.take_step(net, X, y, snapshot_optimizer(record.optimizer_before), record.number - 1)
        held = self.current.nbytes if self.current is not None else 0
        self._recomputed = (record, trace) if held + trace.nbytes <= TRACE_BYTES else None
        return trace

    def memory(self) -> dict:
        """Bytes this workspace holds beyond the shared images. Each part counts the arrays
        it holds (``current_trace``: all of the latest trace's); ``total`` counts an array
        that several parts share once."""
        seen, total = set(), 0

        def add(arrays) -> int:
            nonlocal total
            before = total
            for a in arrays:
                if isinstance(a, np.ndarray) and id(a) not in seen:
                    seen.add(id(a))
                    total += a.nbytes
            return total - before

        params = add(self.net.params.values()) + add(self.optimizer.state().values())
        params += sum(add(snap.values()) for snap in self.trainer.snapshots.values())
        steps = sum(add([*r.params_before.values(), *r.optimizer_before.state().values(), r.idx,
                         *(r.images or ())]) for r in self.steps)
        add(self.current.values.values() if self.current is not None else ())
        recomputed = self._recomputed[1] if self._recomputed is not None else None
        add(recomputed.values.values() if recomputed is not None else ())
        return {"history": self.history.nbytes, "params_and_snapshots": params, "step_history": steps,
                "current_trace": self.current.nbytes if self.current is not None else 0,
                "recomputed_trace": recomputed.nbytes if recomputed is not None else 0,
                "runs": self.runs.nbytes, "total": self.history.nbytes + total + self.runs.nbytes}

