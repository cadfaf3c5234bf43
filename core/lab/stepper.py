"""The stepper's logic: one student stepping mini-batches through backprop, phase by phase.

A :class:`Stepper` holds where the student stands (the stop and the step shown,
the partial trace of a step that diverged, which steps trained on a batch of
their own choosing) for one trainer; the network, its trainer and the history
of steps are the :class:`~core.lab.workspace.Workspace`'s. Taking a step is one
``ws.step``, the same ``Trainer.train_step`` the 1000-epoch run makes; an
earlier step is recomputed through ``ws.trace_of``. A shared link
(``?step=N&stop=Z1``) replays the trainer's own batches from a fresh network.

Plain Python, no Streamlit: the stepper page (``pages/stepper.py``) turns its
widgets into calls here and draws what these return.
"""
from __future__ import annotations

import re
import weakref
from dataclasses import MISSING, dataclass, field, fields
from urllib.parse import quote

import numpy as np

from core.engine.network import DivergenceError, Trace
from core.engine.trainer import Point
from core.lab.settings import Settings
from core.lab.workspace import StepRecord, Workspace

MAX_REPLAY = 2000          # steps a shared link may replay (≈ 3 epochs at the default sizes)
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


def parse_positions(text: str, n: int, limit: int = 1024) -> tuple[list[int], str]:
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

    stop: str = FIRST_STOP                  # the stop shown: a Stop.key ("X", "Z1", …, "ΔW3")
    keys: list[str] = field(default_factory=list)   # the stops of the trace shown, in order
    shown: int | str | None = None          # the step shown: a step number, DIVERGED, or None (the latest)
    diverged: Diverged | None = None        # the last step, when it diverged
    custom: set[int] = field(default_factory=set)   # steps that trained on a random, chosen or drawn batch
    random_draw: int = 0                    # which random batch "a random mini-batch" is (Draw another: +1)
    problem: str = ""                       # why the last Step trained nothing
    recomputed: tuple[StepRecord, Trace] | None = None   # an earlier step's trace, recomputed once
    gradcheck: tuple[StepRecord, list] | None = None     # (step, results) of the last gradient check
    link_done: bool = False                 # the URL's step=/stop= were read (once per session)
    link_note: str = ""                     # what came of them
    _trainer: weakref.ref | None = field(default=None, repr=False)   # whose steps these are

    KEEP = ("link_done", "link_note")       # a session reads its link once, whatever it trains

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
            return Batch(how, ws.split.train_idx[pos] if pos else None, problem=problem)
        if how == "drawn":
            if drawn is None:
                return Batch(how, problem="Draw a digit on the Draw page first.")
            return Batch(how, images=(np.asarray(drawn).reshape(1, -1), np.array([int(drawn_label)])))
        return Batch("next", tr.next_indices())

    def draw_again(self) -> None:
        self.random_draw += 1

    def take_step(self, ws: Workspace, batch: Batch) -> bool:
        """One ``ws.step`` on ``batch``; True when it trained. A step that diverged was refused:
        the network is unchanged and its partial trace is shown; a problem is kept in ``problem``."""
        self.follow(ws)
        self.problem = batch.problem
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
        self.diverged, self.problem, self.recomputed, self.gradcheck = None, "", None, None
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

    # -- moving between stops -------------------------------------------------------------------
    def place(self, keys: list[str]) -> int:
        """The stops of the trace on screen: keep the stop among them; its position."""
        self.keys = list(keys)
        if self.stop not in self.keys:
            self.stop = self.keys[0]
        return self.keys.index(self.stop)

    def go(self, delta: int) -> None:
        if self.keys:
            i = self.keys.index(self.stop) if self.stop in self.keys else 0
            self.stop = self.keys[max(0, min(len(self.keys) - 1, i + delta))]

    def go_end(self) -> None:
        if self.keys:
            self.stop = self.keys[-1]

    def go_to(self, key: str | None) -> None:
        if key:
            self.stop = key

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
        if rec is ws.steps[-1] and ws.current is not None:
            return Shown(ws.current, rec, choice, rec.number)
        if not (self.recomputed and self.recomputed[0] is rec):
            self.recomputed = (rec, ws.trace_of(rec))
        return Shown(self.recomputed[1], rec, choice, rec.number)

    def step_choices(self, ws: Workspace) -> list[int | str]:
        """What "Step shown" offers (the diverged step first, then the newest); keeps ``shown`` among them."""
        options = ([DIVERGED] if self.diverged else []) + [r.number for r in reversed(ws.steps)]
        if options and self.shown not in options:
            self.shown = options[0]
        return options

    # -- a shared link ------------------------------------------------------------------------------
    def read_link(self, ws: Workspace, query) -> int:
        """Once per session: ``stop=`` opens that phase; ``step=N`` asks for N steps of a
        fresh network. Returns how many steps to :meth:`replay` (0: none, and
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
        if tr.global_step != 0 or not ws.origin.startswith("a new network"):
            self.link_note = (f"The link asks for step {n:,}; your network is already elsewhere, so nothing "
                              "was replayed.")
            return 0
        if n > MAX_REPLAY:
            self.link_note = (f"The link asks for step {n:,}; links replay at most {MAX_REPLAY:,} steps, so "
                              "nothing was replayed. Train on the training page to get that far.")
            return 0
        return n

    def replay(self, ws: Workspace, n: int) -> None:
        """``n`` steps of the trainer's own batches (the same ``ws.step`` loop); a step that
        diverges stops the replay and is shown."""
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
        self.link_note = f"Replayed {n:,} step{'s' if n > 1 else ''} from the link."

    def link_query(self, ws: Workspace, shown: Shown) -> dict[str, str]:
        """The URL's ``step`` and ``stop`` for what is on screen (a diverged step is not
        in the history: its link gives the step before it)."""
        return {"step": str(ws.trainer.global_step if shown.label == DIVERGED else shown.number), "stop": self.stop}

    def link_caveats(self, ws: Workspace, number: int) -> list[str]:
        """Why a link to step ``number`` would not give the same numbers in a new session."""
        notes = []
        if any(n <= number for n in self.custom):
            notes.append("Some of these steps used random or chosen batches: a link replays the trainer's own "
                         "batches, so it will not give the same numbers.")
        if not ws.origin.startswith("a new network"):
            notes.append(f"This network is {ws.origin}: a link starts from a fresh seed network, so it will "
                         "not match.")
        if ws.settings.dataset == "upload":
            notes.append("This network trains on your uploaded CSV, which a link cannot carry.")
        if number > MAX_REPLAY:
            notes.append(f"Step {number:,} is beyond the {MAX_REPLAY:,} steps a link replays.")
        return notes


def link_path(settings: Settings, number: int, stop: str) -> str:
    """``/stepper?…``: the settings that differ from the defaults, the step and the stop."""
    q = dict(settings.to_query(), step=str(number), stop=stop)
    return "/stepper?" + "&".join(f"{k}={quote(v, safe=',')}" for k, v in q.items()).replace("%CE%94", "Δ")
