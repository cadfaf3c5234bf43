"""Labs kept across reloads and restarts: one SQLite file, keyed by a hash of a browser's token.

A *lab* is everything one browser's :class:`~core.lab.workspace.Workspace` holds: the
network, the optimizer and its state, where the trainer stands in its epoch, the history,
the time-travel snapshots, the stepper's last steps, the settings, where the network came
from, the runs kept side by side (core/lab/runs.py: each run's network a row of the ``runs``
table, written once; a run that cannot be read back is left out with a note, never the lab), and
the images it trains on when they are an upload. A reload, or coming back
within :data:`MAX_AGE` in the same browser, reopens it.

Why it is built this way:

* **SQLite** (Python's ``sqlite3``): one file, no server to run, atomic transactions (a
  server killed mid-write leaves the last complete lab), safe for the writer thread and
  the pages' threads at once (WAL mode), and it survives a restart. Its folder is a
  setting: ``BACKPROP_STATE_DIR`` (default: under the user's cache directory, outside the
  repository; ``off`` turns keeping off), its size ``BACKPROP_STATE_MAX_MB``.
* **Numbers and JSON only, never pickle.** The network, optimizer, counters, history and
  snapshots are the project's own checkpoint (:func:`core.lab.checkpoint.to_arrays`, read
  back by :func:`core.lab.checkpoint.load`, which validates everything); each kept step
  is a checkpoint of the network and optimizer *before* it plus its batch in the JSON
  ``meta``; an uploaded data set is a uint8 ``.npz``; the rest (settings, origin) is a small
  JSON record. Whatever :meth:`LabStore.save` writes, :meth:`LabStore.load` reads back
  (``tests/test_store.py``). The checkpoint is stored uncompressed: it is mostly float
  noise, which zlib shrinks little at a CPU cost many times that of writing it.
* **A token the browser holds, a hash the server keeps.** The key of a lab is
  :func:`key_of` (SHA-256) of a random token of 192 bits (:func:`new_token`) that lives
  in the browser's cookie, never in a URL (a shared link shares settings, never a lab).
  The file holds no token, so reading it gives no way to open anyone's lab; a session
  with another token finds nothing.
* **Off the page's path.** A page hands a :class:`LabCopy` (taken in well under a
  millisecond: the arrays are shared, since a step replaces arrays instead of writing
  into them) to the :class:`Writer`, whose one thread serialises and writes. Copies of
  the same lab that queue up are merged: only the newest is written. Each kept step is
  written once (a row of its own, known by its signature), not with every save.
* **Bounded.** A lab unused for :data:`MAX_AGE` is dropped; past the total size limit
  the least recently used labs go first.
* **Reattaching to a live run.** A run trains in a process of its own for hours; a reload
  makes a new browser session, which must find that run's workspace, not a copy of it.
  :class:`LiveLabs` is the server's map from a key to the workspace a session holds or a
  run trains (see its docstring for why it is not module-level mutable state). The live
  workspace wins over the stored copy: it is never older.
* **One browser, one lab.** Two tabs of one browser send the same cookie, so they open
  the same workspace, as a reload does; each change is written, and the last one wins.
  Another browser (another person) has another token and never sees it.
"""
from __future__ import annotations

import atexit
import hashlib
import io
import json
import logging
import os
import re
import secrets
import sqlite3
import sys
import threading
import time
import weakref
import zlib
from contextlib import closing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from core.data.kaggle_csv import DataError
from core.data.mnist import Digits, check_images
from core.engine.trainer import Trainer
from core.lab import checkpoint
from core.lab.runs import Run, Runs, RunsFull, run_of_checkpoint
from core.lab.settings import FIELDS, Settings
from core.lab.workspace import FILE, MADE, StepRecord, Workspace

log = logging.getLogger(__name__)

FORMAT = "backprop-lab/1"
MAX_AGE = 7 * 24 * 3600.0          # seconds a lab is kept after its last use
MAX_BYTES = 512 * 1024 * 1024      # all labs together, unless BACKPROP_STATE_MAX_MB says otherwise
RUN_SAVE_EVERY = 60.0              # seconds between copies of a lab whose run is training
ENV_DIR, ENV_MAX_MB = "BACKPROP_STATE_DIR", "BACKPROP_STATE_MAX_MB"
TOKEN_BYTES = 24                   # 192 bits; token_urlsafe gives 32 characters
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{32,128}")


class StoreError(ValueError):
    """A kept lab cannot be reopened; the message says why. ``runs``: its kept runs that could
    still be read (a lab's network may be past saving while the runs kept beside it are not)."""

    def __init__(self, message: str, runs: "Runs | None" = None):
        super().__init__(message)
        self.runs = runs


# --------------------------------------------------------------------------- settings and tokens
def folder_setting() -> Path | None:
    """Where labs are kept: ``BACKPROP_STATE_DIR``, else a folder under the user's cache
    directory; None when the variable says ``off`` (or is empty)."""
    raw = os.environ.get(ENV_DIR)
    if raw is not None:
        return None if raw.strip().lower() in ("", "off", "none", "0") else Path(raw).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "backprop-step-by-step" / "labs"


def max_bytes_setting() -> int:
    try:
        return max(1, int(float(os.environ[ENV_MAX_MB]) * 1024 * 1024))
    except (KeyError, ValueError):
        return MAX_BYTES


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def valid_token(token) -> bool:
    """A token this app could have made (anything else, e.g. a cookie set by hand, is not used)."""
    return isinstance(token, str) and TOKEN_PATTERN.fullmatch(token) is not None


def key_of(token: str) -> str:
    """What the server keeps instead of the token: its SHA-256."""
    if not valid_token(token):
        raise ValueError("not a lab token")
    return hashlib.sha256(token.encode("ascii")).hexdigest()


# --------------------------------------------------------------------------- a lab, copied and reopened
@dataclass(frozen=True)
class LabCopy:
    """A workspace as it was at one moment, for the writer: nothing in it changes when the
    page steps on (the trainer is a trainer of its own; arrays are shared, never written into)."""

    trainer: Trainer
    settings: Settings
    origin: str
    made: str                      # Workspace.made and made_at: how the network came to be
    made_at: int
    source_label: str
    error: str
    steps: tuple[StepRecord, ...]
    images: Digits | None = None   # the upload trained on, when it has not been written yet
    retuned_at: int | None = None  # Workspace.retuned_at
    runs: tuple[Run, ...] = ()     # Workspace.runs (a run never changes but for its name)
    next_run: int = 1              # the id the next run kept gets (ids are never reused)

    @classmethod
    def of(cls, ws: Workspace, *, images: bool = True) -> "LabCopy":
        """Taken on the page's thread (or the writer's, for a run that ended unwatched);
        a run's reports wait meanwhile. ``images``: include an uploaded data set."""
        with ws.runner.between_reports():
            tr = ws.trainer
            copy = Trainer.from_state(tr.net.config, tr.net.params, tr.optimizer.hyper, tr.optimizer.state(),
                                      tr.state(), tr.split, history=tr.history, snapshots=tr.snapshots)
            steps = tuple(ws.steps)
        upload = ws.settings.dataset == "upload"
        return cls(copy, ws.settings, ws.origin, ws.made, ws.made_at, ws.source_label, ws.error, steps,
                   ws.split.source if upload and images else None, ws.retuned_at, tuple(ws.runs), ws.runs.next_id)


@dataclass
class SavedLab:
    """A lab read back from the store, checked; :meth:`workspace` makes it live again."""

    checkpoint: checkpoint.Checkpoint
    settings: Settings
    origin: str
    made: str
    made_at: int
    source_label: str
    error: str
    steps: list[StepRecord]
    images: Digits | None          # the upload it trains on (None: the shipped MNIST)
    retuned_at: int | None = None  # Workspace.retuned_at
    runs: Runs = field(default_factory=Runs)
    notes: list[str] = field(default_factory=list)   # what could not be reopened (a damaged run), for the user

    def workspace(self, source: Digits, test: Digits | None = None) -> Workspace:
        """The workspace as it was, on ``source`` (``images`` when there are, else MNIST).
        Raises ValueError (StoreError) when it does not fit these images."""
        ws = Workspace(self.settings, source, test, source_label=self.source_label, runs=self.runs)
        ws.open_checkpoint(self.checkpoint, self.settings, source, test, origin=self.origin,
                           source_label=self.source_label)
        for r in self.steps:
            if r.images is None and r.idx.size and not (0 <= r.idx.min() and r.idx.max() < len(source)):
                raise StoreError(f"Step {r.number} used images that are not in {self.source_label}.")
        ws.steps.extend(self.steps)
        ws.error = self.error
        ws.made, ws.made_at, ws.retuned_at = self.made, self.made_at, self.retuned_at
        return ws


# --------------------------------------------------------------------------- encoding
def _npz(arrays: dict, compressed: bool = False) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _encode_trainer(tr: Trainer) -> bytes:
    return _npz(checkpoint.to_arrays(tr.net, tr.optimizer, tr, meta={"kept_by": FORMAT}))


def step_signature(r: StepRecord) -> str:
    """Which step a row holds: its number, its batch, the optimizer's settings and the
    parameters before it, so that a workspace that got another trainer rewrites its steps.
    Of the parameters, the biases and the last layer's weights are enough and cheap (every
    update moves them, and two initialisations differ there too); W1 alone is 200 KB."""
    L = sum(k.startswith("W") for k in r.params_before)
    crc = zlib.crc32(json.dumps(r.optimizer_before.hyper, sort_keys=True).encode())
    for a in [r.idx, r.params_before[f"W{L}"], *(r.params_before[f"b{l}"] for l in range(1, L + 1)),
              *(r.images or ())]:
        crc = zlib.crc32(np.ascontiguousarray(a).data, crc)
    return f"{r.number}-{r.how}-{crc:08x}"


def _encode_step(net, r: StepRecord) -> bytes:
    # one JSON string: the checkpoint keeps only plain values in its meta
    step = {"number": int(r.number), "epoch": int(r.epoch), "step_in_epoch": int(r.step_in_epoch),
            "how": r.how, "idx": np.asarray(r.idx, np.int64).tolist(), "state_before": r.state_before,
            "images": None if r.images is None else
            {"X": np.asarray(r.images[0], np.uint8).tolist(), "y": np.asarray(r.images[1]).tolist()}}
    return _npz(checkpoint.to_arrays(net.with_params(dict(r.params_before)), r.optimizer_before,
                                     meta={"step": json.dumps(step)}))


def _decode_step(blob: bytes, net_config: dict) -> StepRecord:
    ck = checkpoint.load(blob)
    if ck.net.config != net_config:
        raise StoreError("A kept step belongs to another network.")
    try:
        s = json.loads(ck.meta["step"])
        idx = np.asarray(s["idx"], np.int64).reshape(-1)
        state_before = s["state_before"]
        if not isinstance(state_before, dict) or not all(
                isinstance(state_before[k], int) and state_before[k] >= 0
                for k in ("epoch", "step_in_epoch", "global_step")):
            raise StoreError("A kept step's position is not readable.")
        images = None
        if s["images"] is not None:
            X = np.asarray(s["images"]["X"], np.int64)
            y = np.asarray(s["images"]["y"], np.int64).reshape(-1)
            try:
                if X.min() < 0 or X.max() > 255:
                    raise DataError("grey levels beyond 0-255")
                check_images(X.astype(np.uint8), y, "A kept step's images")
            except DataError:
                raise StoreError("A kept step's images are not digits.") from None
            images = (X.astype(np.uint8), y)
        if s["how"] not in ("next", "random", "chosen", "drawn"):
            raise StoreError("A kept step's batch is of an unknown kind.")
        return StepRecord(int(s["number"]), int(s["epoch"]), int(s["step_in_epoch"]), idx, ck.net.params,
                          ck.optimizer, state_before, str(s["how"]), images)
    except (AttributeError, KeyError, TypeError, ValueError, RecursionError) as err:
        if isinstance(err, StoreError):
            raise
        raise StoreError(f"A kept step is not readable: {err}") from None


def _encode_images(d: Digits) -> bytes:
    return _npz({"X": np.asarray(d.X, np.uint8), "y": np.asarray(d.y)}, compressed=True)


def _decode_images(blob: bytes, name: str) -> Digits:
    with np.load(io.BytesIO(blob), allow_pickle=False) as f:
        X, y = f["X"], f["y"]
    try:
        check_images(X, y, "The kept images")
    except DataError:
        raise StoreError("The kept images are not labelled digits.") from None
    for a in (X, y):
        a.flags.writeable = False
    return Digits(X, y, name)


def settings_record(s: Settings) -> dict:
    return asdict(s)


def run_record(r: Run) -> dict:
    """What the lab's record keeps of a run (its network is a row of the runs table)."""
    return {"id": r.id, "name": r.name, "settings": settings_record(r.settings), "origin": r.origin,
            "made": r.made, "made_at": r.made_at, "retuned_at": r.retuned_at, "test_acc": r.test_acc,
            "shipped": r.shipped, "kept": r.kept, "digest": r.digest}


def _run_from(rec, blob: bytes) -> Run:
    """A run from its record and its network's row, checked; raises StoreError."""
    if not isinstance(rec, dict):
        raise StoreError("A kept run's record is not one the app writes.")
    try:
        ck = checkpoint.load(io.BytesIO(blob))
    except checkpoint.CheckpointError as err:
        raise StoreError(f"its network is damaged: {err}") from None
    steps = ck.trainer_state["global_step"]
    made, at, retuned = rec.get("made"), rec.get("made_at"), rec.get("retuned_at")
    if "digest" in rec and rec["digest"] != hashlib.sha256(blob).hexdigest():   # another network than the record's
        raise StoreError("its network is not the one that was kept")
    test_acc, kept = rec.get("test_acc"), rec.get("kept")
    if (made not in MADE or type(at) is not int or not 0 <= at <= steps
            or (retuned is not None and (type(retuned) is not int or not at <= retuned <= steps))
            or (test_acc is not None and (type(test_acc) is not float or not 0.0 <= test_acc <= 1.0))
            or type(rec.get("id")) is not int or rec["id"] < 1 or not isinstance(rec.get("name"), str)
            or not isinstance(rec.get("origin"), str) or not isinstance(rec.get("shipped"), str)
            or type(kept) not in (int, float)):
        raise StoreError("its record is not one the app writes")
    settings = settings_from(rec.get("settings"))
    return run_of_checkpoint(ck, blob, settings, id=rec["id"], name=rec["name"], origin=rec["origin"], made=made,
                             made_at=at, retuned_at=retuned, test_acc=test_acc, shipped=rec["shipped"],
                             kept=float(kept))


def _salvage(record_text: str, blobs: dict[int, bytes]) -> Runs | None:
    """The kept runs of a lab that cannot be reopened, those that can be read; None when none can."""
    try:
        record = json.loads(record_text)
        runs, _ = _runs_from(record.get("runs"), record.get("next_run"), blobs) if isinstance(record, dict) else (None, 0)
    except (json.JSONDecodeError, TypeError, ValueError):
        return None
    return runs if runs is not None and len(runs) else None


def _runs_from(records, next_run, blobs: dict[int, bytes]) -> tuple[Runs, list[str]]:
    """The kept runs that can be reopened, and a note for each that cannot: a damaged run is
    left out, never the lab with it."""
    if records is None:                 # a lab kept before runs were
        return Runs(), []
    if not isinstance(records, list):
        return Runs(), ["The runs kept for comparison could not be read."]
    runs, notes = Runs(next_id=next_run if type(next_run) is int and next_run >= 1 else 1), []
    for rec in records:
        label = f"“{rec['name']}”" if isinstance(rec, dict) and isinstance(rec.get("name"), str) else "a run"
        blob = blobs.get(rec.get("id")) if isinstance(rec, dict) else None
        try:
            if blob is None:
                raise StoreError("its network was not kept")
            runs.add(_run_from(rec, blob))
        except (StoreError, RunsFull, KeyError, TypeError, ValueError) as err:
            notes.append(f"The kept run {label[:80]} could not be reopened: {err}")
    runs.version = 0
    return runs, notes


def _made(record: dict, global_step: int) -> tuple[str, int]:
    """How the kept network came to be (``Workspace.made``, ``made_at``). A lab kept before
    the app wrote them counts as a file opened where it is now: the app asks before replacing
    it once it has trained, and a link does not replay over it."""
    if "made" not in record:
        return FILE, global_step
    made, at = record["made"], record.get("made_at")
    if made not in MADE or type(at) is not int or not 0 <= at <= global_step:
        raise StoreError("The kept record of how the network was made is not one the app writes.")
    return made, at


def settings_from(record) -> Settings:
    names = {f.name for f in fields(Settings)}
    if not isinstance(record, dict) or not set(record) <= names or "hidden" not in record:
        raise StoreError("The kept settings are not this app's settings.")
    try:   # a setting the app gained after the lab was kept (batch norm, say) takes its default: off
        s = Settings(**{**record, "hidden": tuple(int(h) for h in record["hidden"])})
        problems = [p for n, f in FIELDS.items() if (p := f.problem(getattr(s, n)))]
    except (TypeError, ValueError):
        raise StoreError("The kept settings are not numbers where numbers belong.") from None
    if problems:
        raise StoreError(" ".join(problems))
    return s


# --------------------------------------------------------------------------- the store
SCHEMA = """
CREATE TABLE IF NOT EXISTS labs (
    key TEXT PRIMARY KEY,          -- key_of(token): the token itself is never stored
    used REAL NOT NULL,            -- last written or opened (seconds since the epoch): expiry and LRU
    size INTEGER NOT NULL,         -- bytes of this lab, its steps included
    record TEXT NOT NULL,          -- JSON: format, settings, origin, source label, error, the steps' order
    checkpoint BLOB NOT NULL,      -- core.lab.checkpoint arrays (.npz): network, optimizer, counters, history, snapshots
    images BLOB                    -- the uploaded images trained on (.npz of uint8), or NULL for MNIST
);
CREATE INDEX IF NOT EXISTS labs_used ON labs(used);
CREATE TABLE IF NOT EXISTS runs (
    key TEXT NOT NULL,
    id INTEGER NOT NULL,           -- Run.id: unique in its lab, never reused
    digest TEXT NOT NULL,          -- SHA-256 of blob: the record names it, a save rewrites a row only when it differs
    blob BLOB NOT NULL,            -- checkpoint arrays (.npz) of the run's network; the rest is in the lab's record
    PRIMARY KEY (key, id)
);
CREATE TABLE IF NOT EXISTS steps (
    key TEXT NOT NULL,
    sig TEXT NOT NULL,             -- step_signature: which step of which trainer
    number INTEGER NOT NULL,
    blob BLOB NOT NULL,            -- checkpoint arrays of the network and optimizer before the step; its batch in meta
    PRIMARY KEY (key, sig)
);
"""


class LabStore:
    """The labs of a folder (``labs.sqlite3`` in it). Holds no connection and nothing that
    changes: every call opens its own, so any thread may call any method."""

    FILE = "labs.sqlite3"

    def __init__(self, folder: str | Path, *, max_bytes: int = MAX_BYTES, max_age: float = MAX_AGE,
                 clock=time.time):
        self.folder = Path(folder)
        self.max_bytes, self.max_age, self.clock = int(max_bytes), float(max_age), clock
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.folder / self.FILE
        with closing(self._connect()) as db:
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")   # only takes effect on a new file
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(SCHEMA)
            # a runs table made before rows carried their network's digest: add the column; its rows
            # ("" digest) are rewritten at their lab's next save and opened unchecked until then
            if "digest" not in {c[1] for c in db.execute("PRAGMA table_info(runs)")}:
                db.execute("ALTER TABLE runs ADD COLUMN digest TEXT NOT NULL DEFAULT ''")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    # -- writing ------------------------------------------------------------------------------
    def save(self, key: str, lab: LabCopy) -> None:
        """Write ``lab`` under ``key``: the lab row, the steps it does not have yet (and drop
        those it no longer keeps), the images when they come with it. Then the oldest labs
        go until all fit."""
        tr = lab.trainer
        if tr.epoch != len(tr.history):
            raise ValueError(f"A lab copy caught mid-epoch-end ({tr.epoch} epochs, {len(tr.history)} rows).")
        blob = _encode_trainer(tr)
        sigs = [step_signature(r) for r in lab.steps]
        record = json.dumps({"format": FORMAT, "settings": settings_record(lab.settings), "origin": lab.origin,
                             "made": lab.made, "made_at": lab.made_at, "retuned_at": lab.retuned_at, "source_label": lab.source_label, "error": lab.error, "steps": sigs,
                             "runs": [run_record(r) for r in lab.runs], "next_run": lab.next_run})
        run_ids = {r.id for r in lab.runs}
        images = _encode_images(lab.images) if lab.images is not None else None
        upload = lab.settings.dataset == "upload"
        now = self.clock()
        with closing(self._connect()) as db:
            have = {s for (s,) in db.execute("SELECT sig FROM steps WHERE key = ?", (key,))}
            new_steps = [(key, s, int(r.number), _encode_step(tr.net, r))
                         for s, r in zip(sigs, lab.steps) if s not in have]
            have_runs = dict(db.execute("SELECT id, digest FROM runs WHERE key = ?", (key,)).fetchall())
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("DELETE FROM steps WHERE key = ? AND sig = ?",
                               [(key, s) for s in have - set(sigs)])
                db.executemany("INSERT OR REPLACE INTO steps (key, sig, number, blob) VALUES (?, ?, ?, ?)", new_steps)
                db.executemany("DELETE FROM runs WHERE key = ? AND id = ?", [(key, i) for i in set(have_runs) - run_ids])
                # a run never changes: written once, unless its id's row holds another network (a lab that
                # could not be reopened started again under the same key, its ids from 1)
                db.executemany("INSERT OR REPLACE INTO runs (key, id, digest, blob) VALUES (?, ?, ?, ?)",
                               [(key, r.id, r.digest, r.blob) for r in lab.runs if have_runs.get(r.id) != r.digest])
                db.execute("INSERT INTO labs (key, used, size, record, checkpoint, images) VALUES (?, ?, 0, ?, ?, ?) "
                           "ON CONFLICT(key) DO UPDATE SET used = excluded.used, record = excluded.record, "
                           "checkpoint = excluded.checkpoint, "
                           "images = CASE WHEN ? THEN COALESCE(excluded.images, labs.images) ELSE NULL END",
                           (key, now, record, blob, images, upload))
                db.execute("UPDATE labs SET size = LENGTH(record) + LENGTH(checkpoint) + IFNULL(LENGTH(images), 0) "
                           "+ (SELECT IFNULL(SUM(LENGTH(blob)), 0) FROM steps WHERE steps.key = labs.key) "
                           "+ (SELECT IFNULL(SUM(LENGTH(blob)), 0) FROM runs WHERE runs.key = labs.key) "
                           "WHERE key = ?", (key,))
                self._evict(db, now, keep=key)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("PRAGMA incremental_vacuum")

    def _evict(self, db: sqlite3.Connection, now: float, keep: str) -> None:
        """Expired labs out, then the least recently used ones until all fit (``keep``, just
        written, goes last: only when it alone is larger than the limit)."""
        gone = [k for (k,) in db.execute("SELECT key FROM labs WHERE used < ?", (now - self.max_age,))]
        total = db.execute("SELECT IFNULL(SUM(size), 0) FROM labs WHERE used >= ?", (now - self.max_age,)).fetchone()[0]
        for k, size in db.execute("SELECT key, size FROM labs WHERE used >= ? ORDER BY (key = ?), used",
                                  (now - self.max_age, keep)).fetchall():
            if total <= self.max_bytes:
                break
            if k == keep:
                log.warning("A lab of %d bytes is larger than the store's limit of %d bytes: not kept.",
                            size, self.max_bytes)
            gone.append(k)
            total -= size
        for k in gone:
            db.execute("DELETE FROM labs WHERE key = ?", (k,))
            db.execute("DELETE FROM steps WHERE key = ?", (k,))
            db.execute("DELETE FROM runs WHERE key = ?", (k,))

    def forget(self, key: str) -> None:
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM labs WHERE key = ?", (key,))
            db.execute("DELETE FROM steps WHERE key = ?", (key,))
            db.execute("DELETE FROM runs WHERE key = ?", (key,))
            db.execute("COMMIT")

    # -- reading ------------------------------------------------------------------------------
    def load(self, key: str) -> SavedLab | None:
        """The lab kept under ``key``, checked through and through; None when there is none
        (or it expired). Raises :class:`StoreError` when it is there but cannot be used."""
        now = self.clock()
        with closing(self._connect()) as db:
            row = db.execute("SELECT record, checkpoint, images FROM labs WHERE key = ? AND used >= ?",
                             (key, now - self.max_age)).fetchone()
            if row is None:
                return None
            steps = dict(db.execute("SELECT sig, blob FROM steps WHERE key = ?", (key,)).fetchall())
            run_blobs = dict(db.execute("SELECT id, blob FROM runs WHERE key = ?", (key,)).fetchall())
            db.execute("UPDATE labs SET used = ? WHERE key = ?", (now, key))
        record_text, blob, images_blob = row
        try:
            record = json.loads(record_text)
            if not isinstance(record, dict) or record.get("format") != FORMAT:
                raise StoreError("The kept lab was written by another version of the app.")
            ck = checkpoint.load(blob)
            settings = settings_from(record.get("settings"))
            order = record.get("steps")
            if not isinstance(order, list) or any(s not in steps for s in order):
                raise StoreError("Some of the kept steps are missing.")
            kept = [_decode_step(steps[s], ck.net.config) for s in order]
            images = None
            if settings.dataset == "upload":
                if images_blob is None:
                    raise StoreError("The uploaded images this network trains on were not kept.")
                images = _decode_images(images_blob, str(record.get("source_label", "uploaded CSV")))
            made, made_at = _made(record, ck.trainer_state["global_step"])
            retuned = record.get("retuned_at")
            if retuned is not None and (type(retuned) is not int or not made_at <= retuned <= ck.trainer_state["global_step"]):
                raise StoreError("The kept record of when the optimizer changed is not one the app writes.")
            runs, notes = _runs_from(record.get("runs"), record.get("next_run"), run_blobs)
            return SavedLab(ck, settings, str(record.get("origin", "a kept network")), made, made_at,
                            str(record.get("source_label", "MNIST")), str(record.get("error", "")), kept, images,
                            retuned, runs, notes)
        except checkpoint.CheckpointError as err:
            raise StoreError(f"The kept network is damaged: {err}", _salvage(record_text, run_blobs)) from None
        except (json.JSONDecodeError, TypeError, ValueError, OSError) as err:
            message = str(err) if isinstance(err, StoreError) else f"The kept lab is damaged: {err}"
            raise StoreError(message, _salvage(record_text, run_blobs)) from None

    def keys(self) -> list[str]:
        with closing(self._connect()) as db:
            return [k for (k,) in db.execute("SELECT key FROM labs ORDER BY used")]

    def total_bytes(self) -> int:
        with closing(self._connect()) as db:
            return int(db.execute("SELECT IFNULL(SUM(size), 0) FROM labs").fetchone()[0])


# --------------------------------------------------------------------------- the server's live labs
class LiveLabs:
    """The workspaces this server process holds, by key: what a reload finds again.

    One object per server (the app caches it with ``st.cache_resource``). It is not
    module-level mutable state in the sense the design forbids: it holds no user's data of
    its own and is never a place to look data up by a guessable name; it is an index of
    workspaces that sessions own, reachable only with the key of a token that session's
    browser holds, and every access goes through its lock.

    Contract:

    * :meth:`hold` (a session, after each run of its script): ``key``'s workspace is ``ws``.
      It is held *weakly*: when no session holds it any more, it is gone. While ``ws``
      trains, it is held strongly, so a run whose tab was closed or reloaded goes on and is
      found again.
    * :meth:`find` (a new session of the same browser): the workspace, or None.
    * :meth:`finished` (the writer, now and then): the workspaces whose run has ended since,
      each returned once and then held weakly only, to be written to the store.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._held: weakref.WeakValueDictionary[str, Workspace] = weakref.WeakValueDictionary()
        self._training: dict[str, Workspace] = {}

    def hold(self, key: str, ws: Workspace) -> None:
        with self._lock:
            self._held[key] = ws
            if ws.busy:
                self._training[key] = ws
            elif self._training.get(key) is not ws:
                self._training.pop(key, None)   # another workspace replaced the one that trained

    def find(self, key: str) -> Workspace | None:
        with self._lock:
            return self._training.get(key) or self._held.get(key)

    def finished(self) -> list[tuple[str, Workspace]]:
        with self._lock:
            done = [(k, ws) for k, ws in self._training.items() if not ws.busy]
            for k, _ in done:
                del self._training[k]
        return done

    def __len__(self) -> int:
        with self._lock:
            return len(set(self._held.keys()) | set(self._training))


# --------------------------------------------------------------------------- the writer thread
class Writer:
    """Writes :class:`LabCopy` objects to a :class:`LabStore` in one background thread.

    :meth:`submit` only files the copy (the newest copy of a lab replaces one still
    waiting) and returns. Every ``sweep_every`` seconds the thread also writes the labs
    of :meth:`LiveLabs.finished` (runs that ended with nobody watching). A failed write
    is logged, and the next copy of that lab tries again.
    """

    def __init__(self, store: LabStore, *, live: LiveLabs | None = None, sweep_every: float = 10.0):
        self.store, self.live, self.sweep_every = store, live, sweep_every
        self._cv = threading.Condition()
        self._waiting: dict[str, LabCopy] = {}
        self._writing: str | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.written = 0            # copies written (for tests and benchmarks)

    def submit(self, key: str, lab: LabCopy) -> None:
        with self._cv:
            older = self._waiting.pop(key, None)
            if older is not None and lab.images is None and older.images is not None and \
                    lab.settings.dataset == "upload":
                lab = replace(lab, images=older.images)    # the images were to be written once: still are
            self._waiting[key] = lab
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lab-store-writer", daemon=True)
                self._thread.start()
                atexit.register(self.close)
            self._cv.notify_all()

    def load(self, key: str, timeout: float = 10.0) -> SavedLab | None:
        """The lab under ``key`` once its pending copy (if any) is written."""
        self.flush(key, timeout)
        return self.store.load(key)

    def flush(self, key: str | None = None, timeout: float = 30.0) -> bool:
        """Wait until ``key``'s copies (or all) are written; False on timeout."""
        def done():
            if key is None:
                return not self._waiting and self._writing is None
            return key not in self._waiting and self._writing != key
        with self._cv:
            return self._cv.wait_for(done, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what waits, then end the thread."""
        self.flush(timeout=timeout)
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                if not self._waiting and not self._closed:
                    self._cv.wait(self.sweep_every)
                if self._closed and not self._waiting:
                    return
                job = next(iter(self._waiting.items()), None)
                if job is not None:
                    del self._waiting[job[0]]
                    self._writing = job[0]
            if job is None:
                self._sweep()
                continue
            try:
                self.store.save(*job)
                self.written += 1
            except Exception:   # a failed write must not end the thread; the next copy tries again
                log.exception("Could not keep a lab")
            finally:
                with self._cv:
                    self._writing = None
                    self._cv.notify_all()

    def _sweep(self) -> None:
        if self.live is None:
            return
        for key, ws in self.live.finished():
            try:
                self.submit(key, LabCopy.of(ws))
            except Exception:
                log.exception("Could not copy a lab whose run ended")


# --------------------------------------------------------------------------- one session's side
def fingerprint(ws: Workspace) -> tuple:
    """What changes when a lab needs writing: a step, a run's end or pause, another
    network or settings. While a run trains: its epochs only."""
    tr = ws.trainer
    where = ("training", tr.epoch) if ws.busy else (ws.runner.status, tr.global_step)
    return (id(ws), id(tr), id(tr.optimizer), ws.settings, ws.origin, ws.error, ws.retuned_at, len(tr.history),
            len(ws.steps), ws.steps[-1].number if ws.steps else 0, id(ws.runs), ws.runs.version) + where


@dataclass
class Keeper:
    """One browser session's side of keeping its lab: its token, and what it handed over last,
    so that it hands over only changes (and an upload's images once)."""

    token: str = ""                                   # also in the browser's cookie (ui/token.py)
    seen: tuple = ()                                  # the fingerprint of the last copy handed over
    run_copied: float = -1e18                         # time.monotonic() of the last copy while a run trained
    images: weakref.ref | None = field(default=None, repr=False)   # the upload last handed over

    @property
    def key(self) -> str:
        return key_of(self.token)

    def adopt(self, ws: Workspace) -> None:
        """``ws`` came from the store or the server's live labs: it is kept as it is."""
        self.seen = fingerprint(ws)
        self.images = weakref.ref(ws.split.source) if ws.settings.dataset == "upload" else None

    def changed(self, ws: Workspace, now: float | None = None) -> LabCopy | None:
        """A copy of ``ws`` to write when it changed since the last one (while a run trains, at
        most every ``RUN_SAVE_EVERY`` seconds), else None. Costs a tuple when nothing changed."""
        fp = fingerprint(ws)
        if fp == self.seen:
            return None
        now = time.monotonic() if now is None else now
        if ws.busy:
            if now - self.run_copied < RUN_SAVE_EVERY:
                return None
            self.run_copied = now
        self.seen = fp
        upload = ws.settings.dataset == "upload"
        send = upload and (self.images is None or self.images() is not ws.split.source)
        copy = LabCopy.of(ws, images=send)
        if send:
            self.images = weakref.ref(ws.split.source)
        return copy
