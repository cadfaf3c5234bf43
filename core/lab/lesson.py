"""Where one student stands in the lesson "Your first step of backprop".

The lesson is about one step of the session's own network: a real training step, taken
through the stepper (:meth:`Stepper.take_step`, one ``ws.step``: the same ``train_step`` the
1000-epoch run makes) and kept in the workspace's step history with the stepper's steps, so
the stepper shows it too. The questions are made from that step's trace
(``core.teach.lesson``); a :class:`Lesson` keeps which step, which question is on screen and
what became of each. A link ``?q=3`` opens question 3 of the current step.

Plain Python, no Streamlit: ``pages/lesson.py`` turns its buttons into calls here.
"""
from __future__ import annotations

import weakref
from dataclasses import MISSING, dataclass, field, fields

from core.engine.network import Trace
from core.lab import links
from core.lab.stepper import Stepper
from core.lab.workspace import StepRecord, Workspace
from core.teach.lesson import RIGHT, SKIPPED, WRONG, Feedback, Question


@dataclass
class Lesson:
    """One student's lesson. It starts over when the workspace gets another trainer (new
    settings, a checkpoint, the pretrained network), like the stepper."""

    step: int | None = None                  # the step the questions are about (its global step number)
    at: int = 0                              # the question on screen, 0-based
    results: dict[int, Feedback] = field(default_factory=dict)   # question → what became of it
    note: str = ""                           # what the student should know: a link's problem, a step forgotten
    problem: str = ""                        # why the last New step trained nothing (a refused step, a run)
    link_done: bool = False                  # the URL's q= was read (once per session)
    _trainer: weakref.ref | None = field(default=None, repr=False)

    KEEP = ("link_done",)

    def follow(self, ws: Workspace) -> "Lesson":
        """Start over when ``ws`` holds another trainer; forget the step when the workspace no
        longer keeps it (undone, or older than the history keeps)."""
        if self._trainer is None or self._trainer() is not ws.trainer:
            for f in fields(self):
                if f.name not in self.KEEP:
                    setattr(self, f.name, f.default_factory() if f.default_factory is not MISSING else f.default)
            self._trainer = weakref.ref(ws.trainer)
        if self.step is not None and self.record(ws) is None:
            self.note = (f"Step {self.step:,}, which your lesson was about, is no longer kept (it was undone, or "
                         "the history moved past it): the lesson goes on with the latest step.")
            self._start(None)
        return self

    def record(self, ws: Workspace) -> StepRecord | None:
        return next((r for r in ws.steps if r.number == self.step), None)

    def _start(self, step: int | None) -> None:
        self.step, self.results, self.at = step, {}, 0

    # -- the step -------------------------------------------------------------------------------------
    def trace(self, ws: Workspace, stepper: Stepper) -> Trace | None:
        """The trace of the lesson's step: its own step while the workspace keeps it; else the latest
        step kept (a reload, or steps taken on the stepper, lead into the same numbers); else a new
        step on the trainer's next mini-batch. None when no step could be taken (``problem`` says why)."""
        self.follow(ws)
        if self.step is None:
            if ws.steps:
                self._start(ws.steps[-1].number)
            elif not self.new_step(ws, stepper):
                return None
        return ws.trace_of(self.record(ws))

    def new_step(self, ws: Workspace, stepper: Stepper) -> bool:
        """Train one step on the trainer's next mini-batch, through the stepper (so the stepper
        shows it), and start the questions again on it. False when it trained nothing: a step
        that diverged was refused, or a training run holds the network (``problem`` says which)."""
        self.follow(ws)
        stepper.follow(ws)
        if not stepper.take_step(ws, stepper.batch(ws, "next")):
            self.problem = stepper.problem or (stepper.diverged.message if stepper.diverged else
                                               "No step was taken.")
            return False
        self.note = self.problem = ""
        self._start(ws.steps[-1].number)
        return True

    # -- the questions ------------------------------------------------------------------------------
    def read_link(self, query, n: int) -> None:
        """Once per session: ``q=3`` opens question 3 (of ``n``)."""
        if self.link_done:
            return
        self.link_done = True
        values, notes = links.read("lesson", query, {links.QUESTION: range(1, n + 1)})   # the one validation of a link
        if notes:
            self.note = " ".join(notes) + " The lesson starts at question 1."
        q = values.get(links.QUESTION, 1)
        self.at = q - 1

    def place(self, n: int) -> int:
        """The question on screen, kept among the ``n`` there are."""
        self.at = min(max(self.at, 0), n - 1)
        return self.at

    def go(self, i: int) -> None:
        self.at, self.note = i, ""

    def answer(self, i: int, question: Question, answers) -> Feedback:
        """Check ``answers`` to question ``i`` (the first answer counts; raises ValueError, and
        records nothing, when an answer is missing)."""
        if i in self.results:
            return self.results[i]
        self.results[i] = feedback = question.check(answers)
        self.note = ""
        return feedback

    def skip(self, i: int, question: Question) -> Feedback:
        if i not in self.results:
            self.results[i] = question.skip()
        self.note = ""
        return self.results[i]

    def score(self) -> dict[str, int]:
        """How many questions were answered right, wrong, and skipped."""
        out = {RIGHT: 0, WRONG: 0, SKIPPED: 0}
        for f in self.results.values():
            out[f.status] += 1
        return out

    def finished(self, n: int) -> bool:
        return all(i in self.results for i in range(n))

    def link_query(self) -> dict[str, str]:
        """The URL's ``q`` for the question on screen."""
        return links.query("lesson", q=self.at + 1)
