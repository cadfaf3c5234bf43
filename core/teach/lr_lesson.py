"""The learning-rate lesson: one mini-batch, one step at each of several learning rates.

The student's network stands somewhere (its parameters, its optimizer's state, its
trainer's place in the epoch). :func:`run` takes that place once, then takes the step the
network would take next, on the trainer's next mini-batch, at η = 0.01, 0.1, 1 and 10,
each on a trainer of its own made with :meth:`Trainer.from_state` (the one way to carry
on from a state reached elsewhere) and trained with the same :meth:`Trainer.train_step`
as every other step of the app. The network itself is never touched: the copies share
its parameter arrays, and a step replaces arrays instead of writing into them. A run
training in the background is not disturbed either: the state is read between two of
its reports (``lock``), and nothing is written back.

For each η the lesson measures the batch's loss before and after the update (on the
same batch), the update-to-weight ratio ‖ΔW_l‖/‖W_l‖ per layer (``Trace.update_ratio``,
the stepper's number), and the change a first-order Taylor expansion predicts,
Σ ⟨dθ, Δθ⟩ over all parameters. A step the engine refuses (``DivergenceError``: its
update would blow the weights up) is a result like any other: the loss the refused
parameters would have had is measured all the same, and the outcome is "blows up".

:func:`score` checks a student's predictions against what happened.
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from core.engine.augment import describe_settings
from core.engine.history import HEALTHY_RATIO, TYPICAL_RATIO
from core.engine.network import DivergenceError, Trace, dropout_masks, is_trained
from core.engine.trainer import Trainer, step_rng

LEARNING_RATES = (0.01, 0.1, 1.0, 10.0)
BIG_DROP = 0.10     # the batch's loss falling by at least this share of itself is "a lot"


@dataclass(frozen=True)
class Outcome:
    key: str
    label: str        # what the student picks: "goes down a little"
    means: str        # what it means when it happens (Markdown)


OUTCOMES: dict[str, Outcome] = {o.key: o for o in (
    Outcome("down_little", "goes down a little",
            f"The step went downhill, but not far: the loss fell by less than {BIG_DROP:.0%}."),
    Outcome("down_lot", "goes down a lot",
            f"A long step that still went downhill: the loss fell by {BIG_DROP:.0%} or more, on the batch the "
            "step was made for."),
    Outcome("up", "goes up",
            "The step overshot: the gradient only says which way is downhill *here*; a step this long went past "
            "the bottom of the valley and up the other side, so the loss is higher than before."),
    Outcome("blew_up", "blows up",
            "The engine refused the step: it would have made some layer's weights more than 10 times larger "
            "(or not a finite number). A network that took it would be wrecked (the loss shown is what the "
            "refused weights would give); in training, the app stops there and keeps the last healthy network."),
)}


@dataclass(frozen=True)
class Trial:
    """One step at one learning rate, taken on a copy."""

    lr: float
    loss_before: float
    loss_after: float           # the batch's loss with the new parameters (those refused, when refused)
    ratios: tuple[float, ...]   # ‖ΔW_l‖/‖W_l‖ per layer (NaN when no update was computed)
    first_order: float          # Σ ⟨dθ, Δθ⟩: the change of the loss a straight line through here predicts
    refused: str = ""           # why the engine refused the step (DivergenceError), "" when it took it
    params_after: dict | None = None   # the parameters after the step (kept on request; None when refused)

    @property
    def change(self) -> float:
        """The loss after against before, as a share of before: −0.05 is 5% lower."""
        return (self.loss_after - self.loss_before) / self.loss_before if self.loss_before else math.nan

    @property
    def outcome(self) -> str:
        """The key in :data:`OUTCOMES` of what happened."""
        if self.refused or not math.isfinite(self.loss_after):
            return "blew_up"
        if self.loss_after > self.loss_before:
            return "up"
        return "down_lot" if self.change <= -BIG_DROP else "down_little"


@dataclass(frozen=True)
class Lesson:
    """The same batch and the same starting point, stepped at each learning rate."""

    idx: np.ndarray             # the mini-batch: source indices (the trainer's next batch)
    labels: np.ndarray
    epoch: int                  # 1-based: the position the network would train next
    step_in_epoch: int          # 1-based
    global_step: int            # steps the network had taken
    params: dict                # the parameters it started from (the network's own arrays, by reference)
    optimizer_name: str
    hyper: dict                 # the network's optimizer as it was made (its own η among them)
    lr_note: str                # what η multiplies in this optimizer's update
    loss_before: float
    trials: tuple[Trial, ...]
    X: np.ndarray | None = None  # the batch's images as every trial's step saw them (augmented, if on)
    moved: str = ""             # the augmentation in words ("" without): what was done to X

    @property
    def optimizer_lr(self) -> float:
        """The network's own η."""
        return float(self.hyper["lr"])

    @property
    def lrs(self) -> tuple[float, ...]:
        return tuple(t.lr for t in self.trials)

    def trial(self, lr: float) -> Trial:
        for t in self.trials:
            if t.lr == lr:
                return t
        raise KeyError(lr)

    @property
    def best(self) -> float | None:
        """The η whose step (one the engine took) lowered the batch's loss most; None if none did."""
        down = [t for t in self.trials if t.outcome in ("down_little", "down_lot")]
        return min(down, key=lambda t: t.loss_after).lr if down else None

    def ratio_per_lr(self) -> np.ndarray:
        """(trials, layers): each ratio divided by its η. Every row is the same when ΔW is
        proportional to η, as it is for every optimizer here (for one step from one state)."""
        return np.array([t.ratios for t in self.trials]) / np.array(self.lrs)[:, None]

    @property
    def proportional(self) -> bool:
        r = self.ratio_per_lr()
        ok = np.isfinite(r).all(axis=1)
        return bool(ok.sum() >= 2 and np.allclose(r[ok], r[ok][0], rtol=1e-3))


def at_the_start(lesson: Lesson) -> str:
    """Why every η only lowered the loss, when the network has not left the flat start of training
    (it still gives each of its K classes about 1/K: a loss near ln K, and tiny gradients, so that
    even η = 10 is a short step); "" otherwise. Says what to do to see the rest of the lesson."""
    weights = [a for name, a in lesson.params.items() if name.startswith("W")]
    if not weights or any(t.outcome in ("up", "blew_up") for t in lesson.trials):
        return ""
    k = int(np.shape(weights[-1])[-1])        # the output layer's units: the classes
    if not lesson.loss_before >= 0.9 * math.log(k):
        return ""
    return (f"Your network has not left the start of training yet: it gives each digit about 1/{k} (the batch's "
            f"loss is {lesson.loss_before:.3f}, ln {k} = {math.log(k):.3f} is a pure guess), and its gradients are "
            "still tiny, so even η = 10 is a short step, and every step went downhill. This flat start lasts the "
            "first few hundred steps. Train your network for an epoch or two and take the lesson again: then a "
            "large η overshoots the valley, and the largest blows up.")


# --------------------------------------------------------------------------- taking the steps
def run(trainer: Trainer, lrs=LEARNING_RATES, *, lock=None, keep_params: bool = False) -> Lesson:
    """Take the trainer's next step at each η in ``lrs``, each on a copy; ``trainer`` is left
    as it was. ``lock``: held while the trainer's state is read (``RunController.between_reports``),
    so a run in the background is read at one step boundary and never waited on longer.
    ``keep_params``: keep each step's new parameters in ``Trial.params_after`` (a page has no use
    for four more copies of a network it does not change; a test compares them)."""
    with lock if lock is not None else nullcontext():
        net, opt = trainer.net, trainer.optimizer
        config, params, hyper = net.config, net.params, dict(opt.hyper)
        opt_state, state = opt.state(), trainer.state()
        idx = np.array(trainer.next_indices())
        split = trainer.split
        position = (trainer.epoch + 1, trainer.step_in_epoch + 1, trainer.global_step)
        name, lr_note = opt.name, opt.lr_note
        rng = step_rng(trainer.seed, trainer.global_step)
        augmented = trainer.augmented
        moved = describe_settings(trainer.shift, trainer.rotate)
    X, y = split.images(idx, net.dtype)
    X = augmented(X, position[2])[0]         # augmentation: the images as every trial's step will see them
    # dropout: every trial is the same step, so it drops the same units; the losses are the batch's through them
    masks = dropout_masks(net, len(y), rng)
    before = _batch_loss(net.with_params(params), X, y, masks)
    trials = []
    for lr in lrs:
        copy = Trainer.from_state(config, params, {**hyper, "lr": float(lr)}, opt_state, state, split)
        trials.append(_trial(copy, idx, X, y, before, keep_params, masks))
    return Lesson(idx, np.asarray(y), *position, params, name, hyper, lr_note, before, tuple(trials), X, moved)


def _trial(copy: Trainer, idx, X, y, before: float, keep_params: bool, masks: dict | None = None) -> Trial:
    lr, L = copy.optimizer.lr, copy.net.n_layers
    start = copy.net.params
    try:
        trace = copy.train_step(idx)
        refused, after_params = "", copy.net.params
    except DivergenceError as err:
        trace, refused, after_params = err.trace, str(err), None
    if "ΔW1" not in trace:                 # the loss itself was not finite: no update was computed
        nan = (math.nan,) * L
        return Trial(lr, before, math.nan, nan, math.nan, refused)
    # a refused step's parameters (batch norm's running statistics do not enter a training step's loss)
    tried = after_params or {k: p + trace["Δ" + k] if is_trained(k) else p for k, p in start.items()}
    return Trial(lr, before, _batch_loss(copy.net.with_params(tried), X, y, masks),
                 tuple(trace.update_ratio(l) for l in range(1, L + 1)), _first_order(trace, start), refused,
                 after_params if keep_params else None)


def _batch_loss(net, X, y, masks: dict | None = None) -> float:
    """The mean loss of the batch, as the step computes it (float32 for a float32 network; through
    dropout's ``masks`` when the step had them; with batch norm, normalised by the batch's own statistics)."""
    with np.errstate(all="ignore"):      # the weights a refused step would have made may overflow
        v = net.forward(X, masks=masks, train=True)
        return float(net.sample_losses(v, y).sum() / len(y))


def _first_order(trace: Trace, params: dict) -> float:
    """Σ over the parameters of Σ dθ·Δθ: how much the loss would change if it were a straight
    line (its tangent plane) around the parameters before the step."""
    with np.errstate(all="ignore"):
        return float(sum(np.dot(np.ravel(trace["d" + k]).astype(np.float64), np.ravel(trace["Δ" + k]).astype(np.float64))
                         for k in params if is_trained(k)))


# --------------------------------------------------------------------------- the student's guesses
@dataclass(frozen=True)
class Verdict:
    lr: float
    predicted: str | None     # an OUTCOMES key, or None when the student skipped it
    actual: str

    @property
    def right(self) -> bool:
        return self.predicted == self.actual


def score(lesson: Lesson, predictions: Mapping[float, str | None]) -> list[Verdict]:
    """Each η's prediction against what happened (a missing one counts as skipped)."""
    for p in predictions.values():
        if p is not None and p not in OUTCOMES:
            raise ValueError(f"A prediction is one of {sorted(OUTCOMES)}, not {p!r}.")
    return [Verdict(t.lr, predictions.get(t.lr), t.outcome) for t in lesson.trials]


def best_guess_right(lesson: Lesson, guess: float | None) -> bool:
    return guess is not None and guess == lesson.best


# --------------------------------------------------------------------------- words with the numbers
def ratio_words(r: float) -> str:
    """Where one update-to-weight ratio stands against the healthy range."""
    lo, hi = HEALTHY_RATIO
    if not math.isfinite(r):
        return "not a number"
    if r < lo:
        return f"below the usual {lo:g}–{hi:g}: the weights barely move"
    if r <= hi:
        return f"in the usual healthy range {lo:g}–{hi:g} (around {TYPICAL_RATIO:g})"
    if r < 1:
        return f"above the usual {lo:g}–{hi:g}: one step changes these weights by {r:.1%} of their size"
    return "1 or more: one step changes the weights by more than their own size"


def percent(x: float) -> str:
    """A change as a signed percentage that shows even a tiny one: −0.0043%, −3.1%, +820%."""
    if not math.isfinite(x):
        return str(x)
    p = 100 * x
    return f"{p:+.2g}%" if abs(p) < 1 else f"{p:+.1f}%" if abs(p) < 100 else f"{p:+,.0f}%"


def trial_text(t: Trial) -> str:
    """What happened at one η, with the numbers (Markdown)."""
    o = OUTCOMES[t.outcome]
    if t.loss_after == t.loss_before:
        loss = (f"the batch's loss stayed at {t.loss_before:.4g}: the change was smaller than the rounding of the "
                "numbers the network computes in")
    elif math.isfinite(t.loss_after):
        loss = f"the batch's loss went from {t.loss_before:.4g} to {t.loss_after:.4g} ({percent(t.change)})"
    else:
        loss = f"the batch's loss went from {t.loss_before:.4g} to {t.loss_after}"
    finite = [(r, l) for l, r in enumerate(t.ratios, start=1) if math.isfinite(r)]
    same = t.loss_after == t.loss_before
    text = f"**η = {t.lr:g}: {o.label}.** In numbers, {loss}." + ("" if same else f" {o.means}")
    if t.refused:
        text += f" The engine said: “{t.refused}”"
    if finite:
        r, l = max(finite)
        text += f" The largest update-to-weight ratio, ‖ΔW{l}‖/‖W{l}‖ = {r:.2g}, is {ratio_words(r)}."
        if t.outcome in ("down_little", "down_lot"):
            if r < HEALTHY_RATIO[0]:
                text += " At this η the network learns from this batch only slowly."
            elif r <= HEALTHY_RATIO[1]:
                text += " Steps of this size are what healthy training is made of: many of them."
            else:
                text += (f" The loss still fell: along this step's direction, the valley is wide enough here. But "
                         f"the step is {r / TYPICAL_RATIO:,.0f} times the typical {TYPICAL_RATIO:g}, a size healthy "
                         "training rarely takes, step after step.")
    return text


def first_order_text(lesson: Lesson) -> str:
    """How well the straight-line prediction Σ dθ·Δθ did, from the smallest η up (Markdown)."""
    parts = []
    for t in lesson.trials:
        if not (math.isfinite(t.first_order) and math.isfinite(t.loss_after)):
            continue
        parts.append(f"η = {t.lr:g}: predicted {t.first_order:+.3g}, measured {t.loss_after - t.loss_before:+.3g}")
    return "; ".join(parts)
