"""The stepper's logic: one student stepping mini-batches through backprop, phase by phase.

A :class:`Stepper` holds where the student stands (the step shown and the stop it opens on,
the partial trace of a step that diverged, which steps trained on a batch of
their own choosing) for one trainer; the network, its trainer and the history
of steps are the :class:`~core.lab.workspace.Workspace`'s. Taking a step is one
``ws.step``, the same ``Trainer.train_step`` the 1000-epoch run makes; an
earlier step is recomputed through ``ws.trace_of``. A shared link
(``?step=N&stop=Z1``) replays the trainer's own batches from a fresh network:
as much work as 2,000 steps of the default network at most, in the training
process (``RunController``, off the server's page path) up to step N−1, then
step N here so its trace is on screen.

Plain Python, no Streamlit: the stepper page (``pages/stepper.py``) turns its
widgets into calls here and draws what these return.
"""
from __future__ import annotations

import re
import weakref
from dataclasses import MISSING, dataclass, field, fields

import numpy as np

from core.engine.network import BN_ONE_IMAGE, N_CLASSES, N_PIXELS, DivergenceError, Trace
from core.engine.trainer import Point
from core.lab import links
from core.lab.settings import FIELDS, Settings
from core.lab.workspace import SEED, StepRecord, Workspace

# What a link's replay costs: steps × (batch × parameters + STEP_OVERHEAD), about the multiply-adds of
# their forward passes plus what any step costs whatever its size (Python, small arrays: a 784 → 1 → 10
# step on one image takes as long as half a million multiply-adds).
STEP_OVERHEAD = 500_000
MAX_REPLAY = 2000          # a link replays as much work as MAX_REPLAY steps of the default network …


def step_work(batch_size: int, sizes) -> int:
    """What one step costs in the unit of ``MAX_REPLAY_WORK``: batch × parameters + STEP_OVERHEAD."""
    return batch_size * sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:])) + STEP_OVERHEAD


_SEED = Settings()
DEFAULT_STEP_WORK = step_work(_SEED.batch_size, (N_PIXELS, *_SEED.hidden, N_CLASSES))   # 784 → 64 → 64 → 10, batch 64
MAX_REPLAY_WORK = MAX_REPLAY * DEFAULT_STEP_WORK   # … of the default network
INLINE_WORK = 64 * DEFAULT_STEP_WORK   # a replay this small is not worth a process (~20 ms)
BATCH_CHOICES = ("next", "random", "chosen", "drawn")
DIVERGED = "diverged"      # the "step shown" of a step that diverged (it has no number in the history)
FIRST_STOP = "X"


# --------------------------------------------------------------------------- the batch
@dataclass(frozen=True)
class Batch:
    """The mini-batch the next step would train on, or why there is none."""

    how: str                                           # one of BATCH_CHOICES
    idx: np.ndarray | None = None                      # source images (next, random, chosen)
    images: tuple[np.ndarray, np.ndarray] | None = None  # (X_u8 of shape (m, 784), y): a drawn digit
    problem: str = ""                                  # why there is no batch (shown to the student)

    def pictures(self, source) -> tuple[np.ndarray, np.ndarray]:
        """(X_u8, y) of the batch, ``source`` being the workspace's images."""
        if self.images is not None:
            return self.images
        return source.X[self.idx], source.y[self.idx]


def parse_positions(text: str, n: int, limit: int = int(FIELDS["batch_size"].hi)) -> tuple[list[int], str]:
    """``"0, 5, 10-20"`` → training-set positions; an error message (never echoing the text) when unusable."""
    out: list[int] = []
    for part in re.split(r"[,;\s]+", text.strip()):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            return [], "Could not read the indices: use whole numbers and ranges, like 0, 5, 10-20."
        a, b = int(m[1]), int(m[2] or m[1])
        if b < a:
            a, b = b, a
        if b >= n:
            return [], f"The training set holds positions 0 to {n - 1:,}; {b:,} is outside it."
        out.extend(range(a, b + 1))
        if len(out) > limit:
            return [], f"At most {limit:,} images per mini-batch."
    if not out:
        return [], "Type at least one index, like 0, 5, 10-20."
    return out, ""


# --------------------------------------------------------------------------- what is on screen
@dataclass(frozen=True)
class Diverged:
    """A step that would have broken the network, refused: its partial trace (up to its update,
    or to the loss when that was not finite); the network is as it was before it."""

    trace: Trace
    message: str             # what happened and what to try (the workspace's error)
    number: int              # the step number it would have been


@dataclass(frozen=True)
class Shown:
    """The step on screen."""

    trace: Trace
    record: StepRecord | None    # None for a step that diverged
    label: int | str             # its step number, or DIVERGED
    number: int                  # the step number (the one it would have been, when it diverged)


@dataclass
class Stepper:
    """Where one student stands in the stepper. Everything but the link's outcome starts
    over when the workspace gets another trainer (new settings, a checkpoint, the
    pretrained network): see :meth:`follow`."""

    stop: str = FIRST_STOP                  # the stop a step opens on: a Stop.key ("X", "Z1", …, "ΔW3")
    shown: int | str | None = None          # the step shown: a step number, DIVERGED, or None (the latest)
    diverged: Diverged | None = None        # the last step, when it diverged
    custom: set[int] = field(default_factory=set)   # steps that trained on a random, chosen or drawn batch
    random_draw: int = 0                    # which random batch "a random mini-batch" is (Draw another: +1)
    problem: str = ""                       # why the last Step trained nothing
    gradcheck: tuple[StepRecord, list] | None = None     # (step, results) of the last gradient check
    link_done: bool = False                 # the URL's step=/stop= were read (once per session)
    link_note: str = ""                     # what came of them, until the student does something else
    replaying: int = 0                      # the step a link's replay in the training process heads for
    _trainer: weakref.ref | None = field(default=None, repr=False)   # whose steps these are

    KEEP = ("link_done",)                   # a session reads its link once, whatever it trains

    def follow(self, ws: Workspace) -> "Stepper":
        """Start over when ``ws`` holds another trainer than the one stepped last; forget a
        refused step and later custom batches once the trainer is elsewhere (it trained on,
        or went back: see ``Workspace.undo``)."""
        if self._trainer is None or self._trainer() is not ws.trainer:
            for f in fields(self):
                if f.name not in self.KEEP:
                    setattr(self, f.name, f.default_factory() if f.default_factory is not MISSING else f.default)
            self._trainer = weakref.ref(ws.trainer)
        at = ws.trainer.global_step
        if self.diverged is not None and self.diverged.number != at + 1:
            self.diverged = None
        if any(n > at for n in self.custom):
            self.custom = {n for n in self.custom if n <= at}
        return self

    # -- the batch and the step ---------------------------------------------------------------
    def batch(self, ws: Workspace, how: str, *, chosen: str = "", drawn: np.ndarray | None = None,
              drawn_label: int = 0) -> Batch:
        """The mini-batch the next step would use: the trainer's next one, a random one (the
        same until *Draw another*), the training-set positions in ``chosen``, or the digit
        ``drawn`` on the Draw page (784 grey levels) labelled ``drawn_label``."""
        tr = ws.trainer
        if how == "random":
            rng = np.random.default_rng([ws.settings.seed, 7919, self.random_draw])
            return Batch(how, rng.choice(ws.split.train_idx, tr.batch_size, replace=False))
        if how == "chosen":
            pos, problem = parse_positions(chosen, ws.split.n_train)
            if pos and not problem and ws.net.batchnorm and len(set(pos)) < 2:
                problem = BN_ONE_IMAGE + " Choose two different images or more."
            return Batch(how, ws.split.train_idx[pos] if pos else None, problem=problem)
        if how == "drawn":
            if drawn is None:
                return Batch(how, problem="Draw a digit on the Draw page first.")
            if ws.net.batchnorm:
                return Batch(how, problem=BN_ONE_IMAGE + " Your drawing is one image: train on it without batch norm.")
            return Batch(how, images=(np.asarray(drawn).reshape(1, -1), np.array([int(drawn_label)])))
        return Batch("next", tr.next_indices())

    def draw_again(self) -> None:
        self.link_note = ""
        self.random_draw += 1

    def take_step(self, ws: Workspace, batch: Batch) -> bool:
        """One ``ws.step`` on ``batch``; True when it trained. A step that diverged was refused:
        the network is unchanged and its partial trace is shown; a problem is kept in ``problem``."""
        self.follow(ws)
        self.problem, self.link_note = batch.problem, ""
        if batch.problem:
            return False
        number = ws.trainer.global_step + 1
        try:
            if batch.images is not None:
                ws.step(how=batch.how, images=batch.images)
            else:
                ws.step(None if batch.how == "next" else batch.idx, batch.how)
        except DivergenceError as err:
            self.diverged = Diverged(err.trace, ws.error, number)
            self.stop, self.shown = FIRST_STOP, DIVERGED
            return False
        except RuntimeError as err:          # a run started meanwhile
            self.problem = str(err)
            return False
        self.diverged = None
        if batch.how != "next":
            self.custom.add(number)
        if batch.how == "random":
            self.random_draw += 1
        self.stop, self.shown = FIRST_STOP, number
        return True

    def undo(self, ws: Workspace, point: Point) -> None:
        """Go back to ``point`` (one of ``ws.undo_points()``); the latest step kept is shown."""
        self.follow(ws)
        try:
            ws.undo(point)
        except RuntimeError as err:          # a run started meanwhile
            self.problem = str(err)
            return
        self.diverged, self.problem, self.gradcheck = None, "", None
        self.stop, self.shown = FIRST_STOP, None
        self.custom = {n for n in self.custom if n <= point.global_step}

    def fresh(self, ws: Workspace) -> None:
        """Start over from a new network made from the settings."""
        try:
            ws.fresh()
        except RuntimeError as err:
            self.problem = str(err)
            return
        self.follow(ws)

    # -- what the viewer opens on -------------------------------------------------------------------
    def opening_stop(self, keys: list[str]) -> str:
        """The stop the trace viewer opens the step on (a link's, or the first), kept among the
        trace's stops ``keys`` (a diverged step's partial trace has fewer). Moving between stops
        happens in the browser and never comes back here."""
        if self.stop not in keys:
            self.stop = keys[0]
        return self.stop

    def show(self, choice: int | str | None) -> None:
        """Show the step ``choice`` (a step number or DIVERGED)."""
        self.shown, self.link_note = choice, ""

    # -- which step is shown ----------------------------------------------------------------------
    def shown_step(self, ws: Workspace) -> Shown | None:
        """The step on screen: the one chosen, the latest, an earlier one recomputed by the
        same engine, or the partial trace of a step that diverged; None before any step."""
        self.follow(ws)
        records = {r.number: r for r in ws.steps}
        choice = self.shown
        d = self.diverged
        if d is not None and choice not in records:      # DIVERGED, or a step no longer kept
            return Shown(d.trace, None, DIVERGED, d.number)
        if choice not in records:
            if not ws.steps:
                return None
            choice = ws.steps[-1].number
        rec = records[choice]
        return Shown(ws.trace_of(rec), rec, choice, rec.number)

    def step_choices(self, ws: Workspace) -> list[int | str]:
        """What "Step shown" offers (the diverged step first, then the newest); keeps ``shown`` among them."""
        options = ([DIVERGED] if self.diverged else []) + [r.number for r in reversed(ws.steps)]
        if options and self.shown not in options:
            self.shown = options[0]
        return options

    # -- a shared link ------------------------------------------------------------------------------
    def read_link(self, ws: Workspace, query) -> int:
        """Once per session: ``stop=`` opens that phase; ``step=N`` asks for N steps of a
        fresh network. Returns how many steps to :meth:`start_replay` (0: none, and
        ``link_note`` says why when the link asked for something it cannot have)."""
        if self.link_done:
            return 0
        self.link_done = True
        if "stop" in query:
            self.stop = str(query["stop"])
        if "step" not in query:
            return 0
        try:
            n = int(query["step"])
        except (TypeError, ValueError):
            self.link_note = "The link's step number was not a number; nothing was replayed."
            return 0
        tr = ws.trainer
        if n == tr.global_step or n <= 0:
            return 0
        if not ws.fresh_from_seed:
            self.link_note = (f"The link asks for step {n:,}; your network is already elsewhere, so nothing "
                              "was replayed.")
            return 0
        most = max_replay_steps(ws)
        if n > most:
            self.link_note = (f"The link asks for step {n:,}; at these sizes a link replays at most {most:,} "
                              f"step{'s' if most > 1 else ''} (as much work as {MAX_REPLAY:,} steps of the "
                              "default network), so nothing was replayed. Train on the training page to get "
                              "that far.")
            return 0
        return n

    def start_replay(self, ws: Workspace, n: int) -> bool:
        """Replay ``n`` steps of a fresh network: steps 1 to n−1 in the training process (a
        child process at nice 10, which the page waits for: :meth:`finish_replay`), step n
        here, so its trace is on screen. A replay too small to be worth a process is made
        here at once. True while the training process replays."""
        self.follow(ws)
        if replay_work(ws, n - 1) <= INLINE_WORK:
            self.replay(ws, n)
            return False
        if not ws.runner.start(-(-(n - 1) // ws.trainer.steps_per_epoch), pause_at=n - 1):
            self.link_note = f"The link asks for step {n:,}, but a training run is going on: nothing was replayed."
            return False
        self.replaying = n
        return True

    def finish_replay(self, ws: Workspace) -> bool:
        """Once the training process has stopped: the link's last step, here. False while it
        still trains; True when the replay is over (or there was none)."""
        self.follow(ws)
        if not self.replaying:
            return True
        if ws.busy:
            return False
        n, self.replaying = self.replaying, 0
        done, why = ws.trainer.global_step, ws.runner.message
        ws.forget_run()
        if done == n - 1:
            self.replay(ws, 1)
        else:                    # it diverged, failed, or was paused or stopped on the training page
            self.link_note = (f"The link asks for step {n:,}; its replay stopped at step {done:,}"
                              + (f": {why}" if why else "."))
        return True

    def replay(self, ws: Workspace, n: int) -> None:
        """``n`` steps of the trainer's own batches, here (the same ``ws.step`` loop); a step
        that diverges stops the replay and is shown."""
        self.follow(ws)
        tr = ws.trainer
        for _ in range(n):
            try:
                ws.step()
            except DivergenceError as err:
                self.diverged = Diverged(err.trace, ws.error, tr.global_step + 1)
                self.shown = DIVERGED
                return
        self.shown = tr.global_step
        self.link_note = f"Replayed {tr.global_step:,} step{'s' if tr.global_step > 1 else ''} from the link."

    def link_query(self, ws: Workspace, shown: Shown) -> dict[str, str]:
        """The URL's ``step`` and ``stop`` for what is on screen (a diverged step is not
        in the history: its link gives the step before it)."""
        return links.query("stepper", step=ws.trainer.global_step if shown.label == DIVERGED else shown.number,
                           stop=self.stop)

    def link_caveats(self, ws: Workspace, number: int) -> list[str]:
        """Why a link to step ``number`` would not give the same numbers in a new session."""
        notes = []
        if any(n <= number for n in self.custom):
            notes.append("Some of these steps used random or chosen batches: a link replays the trainer's own "
                         "batches, so it will not give the same numbers.")
        if ws.made != SEED:
            notes.append(f"This network is {ws.origin}: a link starts from a fresh seed network, so it will "
                         "not match.")
        if ws.settings.dataset == "upload":
            notes.append("This network trains on your uploaded CSV, which a link cannot carry.")
        if ws.made == SEED and ws.retuned_at is not None:
            notes.append(f"The optimizer's settings (the learning rate, …) changed after step {ws.retuned_at:,}: a link "
                         "replays every step with the settings it carries, the ones in use now, so it will not "
                         "give the same numbers.")
        most = max_replay_steps(ws)
        if number > most:
            notes.append(f"Step {number:,} is beyond the {most:,} steps a link replays at these sizes.")
        return notes


def replay_work(ws: Workspace, n: int) -> int:
    """What replaying ``n`` steps of ``ws``'s trainer costs, in the units of MAX_REPLAY_WORK."""
    return max(n, 0) * step_work(ws.trainer.batch_size, ws.net.sizes)


def max_replay_steps(ws: Workspace) -> int:
    """The most steps a link replays at ``ws``'s sizes (MAX_REPLAY at the default ones)."""
    return MAX_REPLAY_WORK // replay_work(ws, 1)


def link_path(settings: Settings, number: int, stop: str, extra: dict[str, str] | None = None) -> str:
    """``/stepper?…``: the settings that differ from the defaults, the step and the stop (and
    ``extra``: presentation mode's ``present=1``)."""
    return links.path("stepper", {**settings.to_query(), **links.query("stepper", step=number, stop=stop),
                                  **(extra or {})})
