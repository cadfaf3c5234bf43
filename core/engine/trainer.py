"""Epochs of shuffled mini-batches through :meth:`MLP.step`, with telemetry.

The trainer owns *where* training is (epoch, step within it) and what it has
seen (the history); the network owns the math. :meth:`Trainer.train_step` is
the one way a mini-batch is trained: the stepper page calls it for a single
batch, :meth:`Trainer.run` calls it 641,000 times.

Determinism and resuming: the order of epoch ``e`` is drawn from
``default_rng([seed, e])``, so it depends on nothing but the seed and the
epoch. Stopping between two steps and resuming later visits exactly the
batches an uninterrupted run would have, with the same parameters, and gives
the same history. Each step's random numbers (dropout's masks, :func:`step_rng`; data augmentation's
shifts and angles, :func:`augment_rng`) come from the seed and the step's number in the same way, and
:meth:`Trainer.take_step` is the one place both are drawn.

Telemetry per epoch is summarised, not streamed: the loss and accuracy of every
step are accumulated as numbers; the per-layer norms are measured on every
``telemetry_every``-th step and averaged; histograms are taken at the end of
the epoch. Nothing here recomputes what the step already computed.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from core.engine.augment import Augmentation, augment
from core.engine.history import HIST_BINS, History
from core.engine.network import INITS, MLP, DivergenceError, Trace, to_float
from core.engine.optim import from_hyper

def step_rng(seed: int, global_step: int) -> np.random.Generator:
    """The random numbers of the training step after ``global_step`` steps (dropout's masks):
    drawn from the seed and the step's number alone, like an epoch's order, so a resumed, undone
    or recomputed step draws exactly what the uninterrupted run drew."""
    return np.random.default_rng([seed, global_step, 1])


def augment_rng(seed: int, global_step: int) -> np.random.Generator:
    """The random numbers of that step's data augmentation (each image's shift and angle): a stream
    of its own beside :func:`step_rng`'s, so turning dropout on or off moves no image."""
    return np.random.default_rng([seed, global_step, 2])


SNAPSHOT_EPOCHS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
EVAL_CHUNK = 2048


# --------------------------------------------------------------------------- evaluation
def evaluate(net: MLP, X_u8: np.ndarray, y: np.ndarray | None, params: dict | None = None,
             chunk: int = EVAL_CHUNK) -> dict:
    """Accuracy, mean loss, predictions and dead-unit masks over a whole set.

    Runs the network's own ``forward`` in chunks. A hidden unit is *dead* on
    this set when its pre-activation ``Z`` (``N`` with batch norm) is never positive (a dead
    ReLU never fires, so it never learns again).
    """
    p = net.params if params is None else params
    n, L = len(X_u8), net.n_layers
    pred = np.empty(n, np.int64)
    proba = np.empty((n, net.sizes[-1]), net.dtype)
    alive = [np.zeros(net.sizes[l], bool) for l in range(1, L)]
    loss_sum = 0.0
    for s in range(0, n, chunk):
        v = net.forward(to_float(X_u8[s:s + chunk], net.dtype), p)
        A = v[f"A{L}"]
        proba[s:s + chunk] = A
        pred[s:s + chunk] = A.argmax(axis=1)
        if y is not None:
            yy = y[s:s + chunk]
            loss_sum += float(net.sample_losses(v, yy).sum())
        for l in range(1, L):
            alive[l - 1] |= (v[net.pre(l)] > 0).any(axis=0)   # what f is applied to
    out = {"pred": pred, "proba": proba, "dead": [~a for a in alive]}
    if y is not None and n:
        out["acc"] = float((pred == y).mean())
        out["loss"] = loss_sum / n
    return out


# --------------------------------------------------------------------------- trainer
@dataclass
class RunResult:
    reason: str            # "done", "stopped" or "diverged"
    message: str = ""
    epochs_done: int = 0
    steps_done: int = 0


@dataclass(frozen=True)
class Point:
    """Where a trainer stood between two steps: enough to go back there exactly (see
    :meth:`Trainer.rewind`). Everything by reference: a step replaces the parameter and
    optimizer-state arrays, it never writes into them."""

    params: dict
    optimizer_state: dict
    state: dict                 # Trainer.state(): the counters and the epoch's running sums

    @property
    def global_step(self) -> int:
        """Steps taken before this point."""
        return int(self.state["global_step"])

    @property
    def epoch(self) -> int:
        """Epochs completed before this point."""
        return int(self.state["epoch"])

    @property
    def step_in_epoch(self) -> int:
        return int(self.state["step_in_epoch"])


@dataclass
class _EpochAcc:
    """What the current epoch has seen so far; survives a pause mid-epoch."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    tel_n: int = 0
    tel: np.ndarray | None = None  # (3, L): ‖W‖, ‖dW‖, ‖ΔW‖ summed over sampled steps


class Trainer:
    def __init__(self, net: MLP, optimizer, split, *, batch_size: int = 64, seed: int = 0,
                 history: History | None = None, snapshots: dict | None = None,
                 snapshot_epochs=SNAPSHOT_EPOCHS, telemetry_every: int = 64, shift: int = 0, rotate: float = 0.0):
        if not 1 <= batch_size <= split.n_train:
            raise ValueError(f"The batch size must be 1 to {split.n_train:,} (the training set), "
                             f"not {batch_size}.")
        self.net, self.optimizer, self.split = net, optimizer, split
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.shift, self.rotate = int(shift), float(rotate)    # data augmentation: 0, 0 is none (the seed's)
        self.history = history if history is not None else History(net.n_layers)
        self.snapshot_epochs = frozenset(snapshot_epochs)
        self.telemetry_every = max(1, int(telemetry_every))
        self.epoch = 0          # completed epochs
        self.step_in_epoch = 0  # steps done in the current epoch
        self.global_step = 0
        self.train_seconds = 0.0
        self._acc = _EpochAcc()
        self._order_epoch, self._order = -1, None
        # a new trainer starts at epoch 0; a restored one brings its own snapshots
        if snapshots is None:
            snapshots = {0: net.params} if 0 in self.snapshot_epochs else {}
        self.snapshots: dict[int, dict] = snapshots

    @classmethod
    def from_state(cls, net_config: dict, params: dict, optimizer_hyper: dict, optimizer_state: dict,
                   state: dict, split, *, history: History | None = None, snapshots: dict | None = None,
                   **kw) -> "Trainer":
        """The one way to carry on from a state reached elsewhere (a checkpoint, the
        session that started a training process, the pretrained network): a trainer at
        ``state``'s position in its epoch, with the same network, optimizer state, history
        and snapshots.

        Everything that changes while training is its own: a new network and optimizer,
        a copy of ``history``, a new snapshots dict. The parameter and state arrays are
        shared, since a step replaces them rather than writing into them.
        """
        net = MLP(net_config["sizes"], activation=net_config["activation"], init=net_config["init"],
                  seed=int(net_config["seed"]), dtype=net_config["dtype"], params=dict(params),
                  dropout=float(net_config.get("dropout", 0.0)), batchnorm=bool(net_config.get("batchnorm", False)))
        optimizer = from_hyper(optimizer_hyper)
        optimizer.load_state(dict(optimizer_state))
        trainer = cls(net, optimizer, split, batch_size=int(state.get("batch_size", 64)),
                      seed=int(state.get("seed", net.seed)),
                      history=history.copy() if history is not None else History(net.n_layers),
                      snapshots={int(e): dict(p) for e, p in (snapshots or {}).items()}, **kw)
        trainer.load_state(state)
        return trainer

    # -- where we are ---------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.split.n_train / self.batch_size)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Indices into the split's source, in the order epoch ``epoch`` visits them."""
        if epoch != self._order_epoch:
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.split.n_train)
            self._order, self._order_epoch = self.split.train_idx[perm], epoch
        return self._order

    def next_indices(self) -> np.ndarray:
        """The source indices of the mini-batch the next :meth:`train_step` will use."""
        s = self.step_in_epoch * self.batch_size
        return self.epoch_order(self.epoch)[s:s + self.batch_size]

    # -- one step ---------------------------------------------------------------
    def train_step(self, idx: np.ndarray | None = None, images: tuple | None = None) -> Trace:
        """Train on the next mini-batch (or on the source images ``idx``, or on
        ``images = (X_u8, y)`` from elsewhere, e.g. a digit the user drew); return its trace.

        A batch chosen by ``idx`` or ``images`` still counts as this position's
        step, so the epoch advances as usual. A step that would break the network
        raises ``DivergenceError`` (see ``MLP.step``) and changes nothing: not the
        parameters, not the optimizer's state, not the counters or the history. Its
        ``advice`` says where it happened and what to try (:func:`divergence_message`).
        """
        if images is not None:
            X, y = to_float(images[0], self.net.dtype), np.asarray(images[1])
        else:
            if idx is None:
                idx = self.next_indices()
            X, y = self.split.images(idx, self.net.dtype)
        try:
            trace = self.take_step(self.net, X, y, self.optimizer, self.global_step)
        except DivergenceError as err:
            err.advice = divergence_message(err, self.epoch + 1, self.step_in_epoch + 1, self.optimizer, self.net,
                                            global_step=self.global_step + 1)
            raise
        acc, v, L = self._acc, trace.values, self.net.n_layers
        loss = float(v["loss"])
        self.history.add_step_loss(loss)
        m = len(y)
        acc.loss_sum += loss * m
        acc.correct += int(np.count_nonzero(v[f"A{L}"].argmax(axis=1) == y))
        acc.seen += m
        if self.step_in_epoch % self.telemetry_every == 0:
            self._sample_telemetry(v)
        self.step_in_epoch += 1
        self.global_step += 1
        if self.step_in_epoch >= self.steps_per_epoch:
            self._end_epoch(v)
        return trace

    def augmented(self, X: np.ndarray, global_step: int) -> tuple[np.ndarray, Augmentation | None]:
        """The images ``X`` of the step after ``global_step`` steps as the network trains on them:
        shifted and turned at random when augmentation is on (drawn from the seed and the step's
        number, :func:`augment_rng`), else ``X`` itself and None."""
        if not (self.shift or self.rotate):
            return X, None
        return augment(X, augment_rng(self.seed, global_step), self.shift, self.rotate)

    def take_step(self, net: MLP, X: np.ndarray, y: np.ndarray, optimizer, global_step: int) -> Trace:
        """The training step after ``global_step`` steps on the images ``X``, as this trainer
        takes it: augmented, with that step's dropout masks (the one place both are drawn, so a
        step recomputed later, ``Workspace.trace_of``, is the step as taken). The trace's ``X``
        is what the network saw; its ``augment`` says how it was moved from the images given."""
        X, aug = self.augmented(X, global_step)
        try:
            trace = net.step(X, y, optimizer, step_rng(self.seed, global_step))
        except DivergenceError as err:
            if getattr(err, "trace", None) is not None:
                err.trace.augment = aug
            raise
        trace.augment = aug
        return trace

    def _sample_telemetry(self, v: dict) -> None:
        L, acc = self.net.n_layers, self._acc
        t = np.empty((3, L))
        for l in range(1, L + 1):
            for r, key in enumerate((f"W{l}_new", f"dW{l}", f"ΔW{l}")):
                a = v[key].ravel().astype(np.float64)  # float32 squares overflow for huge weights
                t[r, l - 1] = math.sqrt(float(np.dot(a, a)))
        acc.tel = t if acc.tel is None else acc.tel + t
        acc.tel_n += 1

    def _end_epoch(self, v: dict) -> None:
        """Close the epoch: evaluate on validation, summarise telemetry, snapshot.
        Histograms show the weights after, and the gradients of, the epoch's last step."""
        net, acc, L = self.net, self._acc, self.net.n_layers
        self.epoch += 1
        self.step_in_epoch = 0
        val = evaluate(net, self.split.source.X[self.split.val_idx], self.split.source.y[self.split.val_idx])
        tel = acc.tel / max(acc.tel_n, 1)
        hW, rW, hG, rG = [], [], [], []
        for l in range(1, L + 1):
            for src, hs, rs in ((net.params[f"W{l}"], hW, rW), (v[f"dW{l}"], hG, rG)):
                lo, hi = float(src.min()), float(src.max())
                if not hi > lo:
                    hi = lo + 1e-12
                counts, _ = np.histogram(src, bins=HIST_BINS, range=(lo, hi))
                hs.append(counts.astype(np.int32)), rs.append(np.array([lo, hi]))
        self.history.append({
            "epoch": self.epoch, "train_loss": acc.loss_sum / max(acc.seen, 1),
            "train_acc": acc.correct / max(acc.seen, 1),
            "val_loss": val.get("loss", float("nan")), "val_acc": val.get("acc", float("nan")),
            "seconds": self.train_seconds, "lr": self.optimizer.lr,
            "weight_norm": tel[0], "grad_norm": tel[1], "update_norm": tel[2],
            "update_ratio": tel[2] / np.maximum(tel[0], 1e-12),
            "dead_frac": np.array([d.mean() for d in val["dead"]] + [np.nan]),
            "hist_W": np.stack(hW), "range_W": np.stack(rW), "hist_dW": np.stack(hG), "range_dW": np.stack(rG),
        })
        self._acc = _EpochAcc()
        if self.epoch in self.snapshot_epochs:
            self.snapshots[self.epoch] = net.params

    # -- many steps ---------------------------------------------------------------
    def run(self, epochs: int, *, should_stop=None, on_epoch=None, on_step=None) -> RunResult:
        """Train until ``epochs`` epochs are complete (counting those already done).

        ``should_stop()`` is asked before every step; ``on_step(trainer, trace)``
        and ``on_epoch(trainer)`` are called after each. Returns why it ended: a
        step that would have broken the network ends the run as "diverged", with the
        step's advice as the message and the network as it was before that step.
        """
        target = int(epochs)
        self.history.reserve_steps((target - self.epoch) * self.steps_per_epoch + self.history.n_steps)
        start_epoch, start_step = self.epoch, self.global_step
        t_mark = time.perf_counter()
        reason, message = "done", ""
        try:
            while self.epoch < target:
                if should_stop is not None and should_stop():
                    reason = "stopped"
                    break
                epoch_before = self.epoch
                try:
                    trace = self.train_step()
                except DivergenceError as err:
                    reason, message = "diverged", err.advice
                    break
                if on_step is not None:
                    on_step(self, trace)
                if self.epoch != epoch_before:
                    now = time.perf_counter()
                    self.train_seconds += now - t_mark
                    self.history.rows["seconds"][-1] = self.train_seconds
                    t_mark = now
                    if on_epoch is not None:
                        on_epoch(self)
        finally:
            self.train_seconds += time.perf_counter() - t_mark
        return RunResult(reason, message, self.epoch - start_epoch, self.global_step - start_step)

    # -- checkpoints -----------------------------------------------------------------
    def state(self) -> dict:
        return {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
                "batch_size": self.batch_size, "seed": self.seed, "train_seconds": self.train_seconds,
                "shift": self.shift, "rotate": self.rotate,
                "acc": [self._acc.loss_sum, self._acc.correct, self._acc.seen, self._acc.tel_n],
                "tel": None if self._acc.tel is None else self._acc.tel.tolist()}

    def restore(self, params: dict, optimizer_state: dict, state: dict) -> None:
        """Take over a state reached elsewhere (the training process, see core/lab/run/controller.py):
        parameters and optimizer state first, the counters last."""
        self.net.params = params
        self.optimizer.load_state(optimizer_state)
        self.load_state(state)

    def point(self) -> Point:
        """Where this trainer stands now, to come back to with :meth:`rewind`."""
        return Point(self.net.params, self.optimizer.state(), self.state())

    def rewind(self, point: Point) -> None:
        """Go back to ``point``, taken earlier from this trainer (undo): its parameters,
        optimizer state and counters, and a history and snapshots cut back to what they
        were then. Training on from there visits the same batches again."""
        if not 0 <= point.global_step <= self.global_step or point.epoch > self.epoch:
            raise ValueError(f"Step {point.global_step:,} is not behind this network (at step {self.global_step:,}).")
        self.restore(point.params, point.optimizer_state, point.state)
        self.history.truncate(self.epoch, self.global_step)
        for e in [e for e in self.snapshots if e > self.epoch]:
            del self.snapshots[e]

    def load_state(self, state: dict) -> None:
        self.epoch, self.step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])
        self.global_step = int(state["global_step"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.shift, self.rotate = int(state.get("shift", 0)), float(state.get("rotate", 0.0))  # before: none
        a = state.get("acc", [0, 0, 0, 0])
        tel = state.get("tel")
        self._acc = _EpochAcc(float(a[0]), int(a[1]), int(a[2]), int(a[3]),
                              None if tel is None else np.asarray(tel, float))


def divergence_message(err: DivergenceError, epoch: int, step: int, optimizer, net: MLP, *,
                       global_step: int | None = None) -> str:
    """Which step broke the network, what happened, and what to try, in words a student can act on."""
    where = f"epoch {epoch}, step {step}" + (f" (global step {global_step:,})" if global_step else "")
    if err.already_broken:   # a smaller step cannot mend it
        return (f"Training diverged at {where}. {err} The network cannot learn from here: undo the last steps "
                f"or start a fresh network.")
    lr = optimizer.lr
    tips = [f"a learning rate ten times smaller ({lr / 10:g} instead of {lr:g})"]
    if optimizer.divergence_tip:
        tips.append(optimizer.divergence_tip)
    suited = net.act.suited_init
    if suited and net.init != suited and lr >= 1:
        tips.append(f"{INITS[suited].name} initialisation")
    return (f"Training diverged at {where}. {err} "
            f"That step was not applied: the network keeps the parameters it had before it. "
            f"Try {', or '.join(tips)}.")


def dead_layers(history: History) -> list[int]:
    """Hidden layers (1-based) none of whose units fired on the validation set in the last
    epoch: their gradients are zero, so the network can no longer learn."""
    if not len(history):
        return []
    dead = history.rows["dead_frac"][-1]
    return [l + 1 for l in range(len(dead) - 1) if dead[l] >= 1.0]
