"""One browser session's state: one typed object under one ``st.session_state`` key.

Everything a page keeps between reruns, or hands to another page, is a field of
:class:`Session`, got with :func:`session`; no page reads another page's raw
keys. Widget values stay under their widget keys (Streamlit keeps them there);
the keys that code other than the widget's own line reads or sets are the
constants at the end of this module, so no callback spells one out.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import streamlit as st

from core.engine.metrics import Memo
from core.lab.lesson import Lesson
from core.lab.stepper import Stepper
from core.lab.store import Keeper

if TYPE_CHECKING:
    import numpy as np

    from core.data.kaggle_csv import CsvDigits
    from core.data.mnist import Digits
    from core.lab.settings import Settings
    from core.lab.workspace import Workspace
    from core.teach.surgery import Edit
    from core.teach.lr_lesson import Lesson

STATE_KEY = "backprop_session"      # the one st.session_state key this app's own state lives under


@dataclass
class TrainUpload:
    """The Kaggle train.csv of the sidebar's uploader (written by streamlit_app.upload_box)."""

    digits: Digits | None = None
    """The labelled images parsed from the last accepted file; ``new_workspace`` trains on them
    when the settings say ``dataset="upload"``. Read by the sidebar and ui.session.source_for."""
    error: str = ""
    """Markdown for st.error: why the last file was refused (empty when it was not). Shown by the sidebar."""
    notes: list[str] = field(default_factory=list)
    """What the loader accepted or converted in ``digits`` (raw text). Shown by the sidebar."""


@dataclass
class KaggleUpload:
    """The Kaggle page's test.csv and the submission made from it (written and read by pages/kaggle.py)."""

    csv: CsvDigits | None = None
    """The images of the last accepted file; their predictions stay on screen when a later file is refused."""
    name: str = ""
    """That file's name, as given (raw text: escape before showing)."""
    error: str = ""
    """Markdown for st.error: why the last file was refused (empty when it was not)."""
    submission: bytes | None = None
    """The submission.csv bytes the download button serves, for ``csv`` and the network shown."""


@dataclass
class LrLesson:
    """The learning-rate lesson (written and read by pages/lr_lesson.py)."""

    lesson: Lesson | None = None
    """The four steps, taken from the network as it was then (``lesson.params``, ``lesson.hyper``)."""
    revealed: bool = False
    """The student has asked to see what the steps did."""
    serial: int = 0
    """One more for every new lesson or new try, so the prediction widgets start empty."""
    predictions: dict = field(default_factory=dict)
    """η → the outcome the student predicted (a key of lr_lesson.OUTCOMES, or None), kept when revealed."""
    best_guess: float | None = None
    """The η the student said lowers the loss most, kept when revealed."""


@dataclass
class NetworkEdits:
    """*Edit the network and see* (pages/inspect.py): the edits tried on a copy of the parameters shown."""

    edits: tuple[Edit, ...] = ()
    """In the order applied (core.teach.surgery.apply). A new tuple on every change, so the page's
    memo (keyed by identity) recomputes only then."""
    trainer: weakref.ref | None = None
    """The trainer whose network they were made for (a weak reference: an old network is not kept alive)."""

    def of(self, trainer) -> tuple[Edit, ...]:
        """The edits, forgotten first if the session's network is another one than they were made for."""
        if self.trainer is None or self.trainer() is not trainer:
            self.edits, self.trainer = (), weakref.ref(trainer)
        return self.edits


@dataclass
class Session:
    """What one browser session keeps. Made on first use by :func:`session`."""

    ws: Workspace | None = None
    """The session's network, trainer, run and step history. Made from the URL by
    ``ui.session.workspace()`` (every page reads it through that); replaced by the sidebar
    (streamlit_app.py) when settings that make another network are applied."""
    link_notes: list[str] = field(default_factory=list)
    """What ``Settings.from_query`` ignored in the URL the workspace was made from. Written by
    ``ui.session.workspace()``, shown in the sidebar."""
    settings_error: str = ""
    """Why the settings just submitted were refused (empty when they were not). Sidebar only."""
    settings_note: str = ""
    """What applying the settings changed that the user did not ask for (η set to a new optimizer's
    usual value). Sidebar only."""
    pending_settings: Settings | None = None
    """Settings that need a new network, waiting for the user to confirm throwing the trained
    one away. Written by the sidebar's apply, read by streamlit_app.confirm_pending."""
    pending_network: str | None = None
    """"new" (a fresh network with the current settings), "pretrained" (the shipped one), "run:<id>" (a
    kept run) or "preset:<name>" (a preset's new network, trained at once): what *New network*, *Open the
    pretrained network* (training and home pages), *Open* or a preset (Compare runs) would put in place of a
    network whose work would be lost, waiting for the user to confirm. Written and read by ui/replace.py."""
    runs_message: tuple[str, str] | None = None
    """("ok" or "error", Markdown) of the last thing done to the kept runs (reopened, not opened, kept,
    refused as full). Written by ui/replace.py and pages/compare.py, shown on pages/compare.py."""
    link_network: str | None = None
    """"pretrained": what the address's ``?network=`` asked for when putting it in place of this
    session's network would lose work, waiting for the user to confirm (ui/replace.confirm_link,
    above every page). Written by ``ui.session.workspace()`` when it reads the link."""
    settings_form: int = 0
    """Counts *Keep the current network*: part of the sidebar form's key, so its widgets show the
    network's own settings again rather than the ones the user chose and then kept away from."""
    views_read: set[str] = field(default_factory=set)
    """The pages (``/inspect`` → "inspect") whose view parameters in the address (core/lab/links.py)
    this session has read (ui/links.py): a link opens its view once, then the page's widgets are the truth."""
    upload: TrainUpload = field(default_factory=TrainUpload)
    """The sidebar's train.csv."""
    drawn_digit: np.ndarray | None = None
    """The digit on the Draw page, made MNIST-like: 784 grey levels 0–255 (None when the canvas
    is empty). Written by pages/draw.py; the stepper offers to train a step on it."""
    stepper: Stepper = field(default_factory=Stepper)
    """Where the student stands in the stepper (core.lab.stepper). Written and read by pages/stepper.py;
    pages/lesson.py takes its steps through it (``Lesson.new_step``), so the stepper shows the lesson's step."""
    lesson: Lesson = field(default_factory=Lesson)
    """Where the student stands in the lesson (core.lab.lesson): its step, question, answers. pages/lesson.py."""
    memo: Memo = field(default_factory=Memo)
    """Forward passes and evaluations of the network shown, remembered by the identity of its
    parameters. Used by pages/inspect.py, pages/evaluate.py and pages/kaggle.py."""
    data_summary: tuple | None = None
    """(split, (counts, means, pixel histogram)) of an uploaded data set: summarised for this session
    only, never in the shared cache. Written and read by pages/data.py."""
    neuron_click: int | None = None
    """The neuron last clicked in the grid of pages/inspect.py, so one click opens it once."""
    probe_random: int | None = None
    """The validation image "at random" of pages/inspect.py (Another one draws again)."""
    probe_image: int | None = None
    """The validation image of "One image through the network" (pages/inspect.py), which the
    section "Edit the network and see" below it shows too."""
    network_edits: NetworkEdits = field(default_factory=NetworkEdits)
    """The edits of "Edit the network and see" (pages/inspect.py)."""
    confusion_click: tuple[int, int] | None = None
    """(true, predicted) of the confusion-matrix cell last clicked on pages/evaluate.py, so one click
    sets the gallery's filters once."""
    kaggle: KaggleUpload = field(default_factory=KaggleUpload)
    """The Kaggle page's test.csv."""
    checkpoint_result: tuple[str, str] | None = None
    """("ok" or "error", message) of the last checkpoint upload on pages/training.py."""
    upload_tokens: dict[str, object] = field(default_factory=dict)
    """The file last handled under each ``ui.uploads.is_new`` key, so each upload is read once."""
    navigated: bool = False
    """This session's runs go through the entry point's st.navigation (``ui.session.navigation``)."""
    rerouted: bool = False
    """A page run alone (a deep link on a fresh server) has asked for the entry point once
    (``ui.session._ensure_navigation``)."""
    present: bool | None = None
    """Presentation mode (ui/present.py): None until the address's ``?present=1`` is read, on the
    session's first run; then set by the sidebar's toggle, and the address follows it."""
    lr_lesson: LrLesson = field(default_factory=LrLesson)
    """The learning-rate lesson's steps and how far the student is (pages/lr_lesson.py)."""
    lab: Keeper = field(default_factory=Keeper)
    """This browser's lab token (ui/token.py: also in its cookie) and what was last handed to the
    store's writer (``ui.session.keep_lab``), so ``ws`` is found again after a reload."""


def session(store=None) -> Session:
    """This browser session's :class:`Session` (``store``: a session-state mapping, for tests)."""
    store = st.session_state if store is None else store
    if STATE_KEY not in store:
        store[STATE_KEY] = Session()
    return store[STATE_KEY]


# --------------------------------------------------------------------------- widget keys read elsewhere
# The stepper (pages/stepper.py): its callbacks read the batch choice; the page sets the
# step shown from its state, and a click on a chart sets the zoom of "All quantities".
STEPPER_HOW = "stepper_how"
STEPPER_CHOSEN = "stepper_chosen"
STEPPER_DRAWN_LABEL = "stepper_drawn_label"
STEPPER_SHOWN = "stepper_shown"


def zoom_target(key: str) -> str:
    """The quantity picked in the stepper's zoom ``key`` (a click on a chart sets it)."""
    return f"{key}_target"


# The lesson (pages/lesson.py): its callbacks read the answer widgets; the page sets the question strip.
LESSON_AT = "lesson_at"


def lesson_answer(step: int, question: int, part: int) -> str:
    """The widget of one part of a lesson question (new widgets for every step and question)."""
    return f"lesson_{step}_{question}_{part}"


# What it learned (pages/inspect.py): a click on a chart picks the neuron; a number box whose
# range shrank (another network) is put back in range.
NEURON = "neuron"
PROBE_INDEX = "probe_index"
PROBE_DIGIT_K = "probe_digit_k"
PROBE_HOW = "probe_how"     # how that image is picked: a link asks for one by number

# Where it fails (pages/evaluate.py): a click on the confusion matrix sets the gallery's filters.
MIS_TRUE = "mis_true"
MIS_PRED = "mis_pred"
EVAL_SET = "eval_set"       # validation or test images: a link may say which


def snapshot_key(key: str, trainer) -> str:
    """The widget key of ui.session.snapshot_choice's select box ``key`` for ``trainer`` (a link sets it)."""
    return f"{key}_{id(trainer)}"
