"""Every file a user uploads comes in here: a Kaggle train.csv (sidebar), a
checkpoint .npz (training page), a Kaggle test.csv (Kaggle page).

Each reader hands the uploaded bytes to the engine's own loader
(:func:`core.data.kaggle_csv.load_csv`, :func:`core.lab.checkpoint.load`), which checks
everything before anything is built, and returns an :class:`Upload`: the loaded
value, or the loader's message saying what is wrong and where. Nothing here
touches the session's network, history or settings, so a rejected file cannot
disturb them; the page decides what a loaded one replaces.

An uploader keeps one key for the whole session and goes on showing the file
that was loaded, which is then the file in use. Streamlit holds that file's
bytes in server memory until the user removes it (×), replaces it (the browser
then deletes the old one) or the session ends: at most one file per uploader,
each at most ``server.maxUploadSize``. No public call frees them sooner (see
docs/streamlit-notes.md).

The file's name and every piece of its text inside a message are the user's:
:meth:`Upload.error` escapes them with :func:`ui.text.plain`, so they are shown
literally and never rendered as markdown, LaTeX or HTML.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.data import kaggle_csv
from core.lab import checkpoint
from core.lab.settings import FIELDS
from ui.state import session
from ui.text import plain

UNCHANGED = "Your network, its history and the settings are unchanged."
OUT_OF_MEMORY = "The server ran out of memory reading it; try a smaller file."


@dataclass(frozen=True)
class Upload:
    """What came of one uploaded file."""

    name: str                    # the user's file name, as given (raw text: escape before showing)
    value: object = None         # a CsvDigits or a Checkpoint when the file was accepted
    problem: str = ""            # the loader's message when it was not (raw text)
    notes: tuple[str, ...] = field(default_factory=tuple)   # what was accepted or converted

    @property
    def ok(self) -> bool:
        return self.value is not None

    def error(self, consequence: str = UNCHANGED) -> str:
        """Markdown for st.error: which file, what is wrong and where, and what did not change."""
        return f"{plain(self.name)} was not loaded. {plain(self.problem)} {consequence}".rstrip()


def is_new(up, key: str) -> bool:
    """True the first time this uploaded file is seen under ``key``.

    The uploader keeps its file across reruns; each file is read once. Streamlit
    gives every upload its own ``file_id``, so the same name uploaded again (a
    corrected file) counts as new. An emptied uploader forgets, so uploading the
    same file once more is handled again.
    """
    seen = session().upload_tokens
    if up is None:
        seen.pop(key, None)
        return False
    token = getattr(up, "file_id", None) or (up.name, up.size)
    if seen.get(key) == token:
        return False
    seen[key] = token
    return True


def _name(up) -> str:
    return str(getattr(up, "name", "") or "the file")


def read_csv(up, *, require_labels: bool | None, max_bytes: int | None = None) -> Upload:
    """A Kaggle digits CSV (plain or gzip) through :func:`core.data.kaggle_csv.load_csv`."""
    limit = kaggle_csv.MAX_CSV_BYTES if max_bytes is None else max_bytes
    try:
        csv = kaggle_csv.load_csv(up, require_labels=require_labels, max_bytes=limit)
    except kaggle_csv.DataError as err:
        return Upload(_name(up), problem=str(err))
    except MemoryError:
        return Upload(_name(up), problem=OUT_OF_MEMORY)
    least = int(FIELDS["pool"].lo)      # one image to train on, one to validate
    if require_labels and len(csv.X) < least:
        return Upload(_name(up), problem=f"A data set to train on needs at least {least} labelled images (one to "
                                         f"train on, one to validate); this file has {len(csv.X)}.")
    return Upload(_name(up), value=csv, notes=tuple(csv.notes))


def read_checkpoint(up, *, max_bytes: int | None = None) -> Upload:
    """A checkpoint .npz through :func:`core.lab.checkpoint.load` (never unpickled)."""
    limit = checkpoint.MAX_CHECKPOINT_BYTES if max_bytes is None else max_bytes
    try:
        data = up.getvalue() if hasattr(up, "getvalue") else up.read()
        ck = checkpoint.load(data, max_bytes=limit)
    except checkpoint.CheckpointError as err:
        return Upload(_name(up), problem=str(err))
    except MemoryError:
        return Upload(_name(up), problem=OUT_OF_MEMORY)
    return Upload(_name(up), value=ck)
