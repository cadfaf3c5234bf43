"""The runs a session keeps side by side (the *Compare runs* page): one :class:`Run` per network
kept, in a bounded :class:`Runs`.

A run is a network as it was when it was kept: its settings, its history's curves, its results
(best and final validation accuracy, test accuracy, training time) and the network itself as a
checkpoint (``blob``: the project's ``.npz``, read back by :func:`core.lab.checkpoint.load`, the
one validation), so it can be reopened as the current network and trained on. A run never
changes once kept, except its name.

Bounded: at most :data:`MAX_RUNS` runs and :data:`MAX_BYTES` bytes of them a session. A run that
does not fit is refused with :class:`RunsFull`, whose message says what to do; nothing already
kept is dropped to make room. A removed run can be put back (:meth:`Runs.undo_remove`) until
another run is removed or kept.

Which settings differ between runs (:meth:`Runs.differences`) is read from
:data:`core.lab.settings.FIELDS`, so a setting added there shows up in the comparison.
"""
from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from core.engine.history import COLUMN, History
from core.lab import checkpoint
from core.lab.settings import FIELDS, PRESETS, Settings

MAX_RUNS = 12
MAX_BYTES = 96 * 2**20          # a session's runs together (the seed's 1000-epoch run is 6.5 MB)
MAX_NAME = 60                   # characters of a run's name

# the history columns a run keeps for its curves (the step losses and histograms stay in its blob)
CURVES = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "update_ratio")


class RunsFull(ValueError):
    """A run that does not fit the session's runs; the message says why and what to do."""


def curves_of(history: History) -> dict[str, np.ndarray]:
    """The per-epoch columns a comparison draws (:data:`CURVES`), arrays of their own."""
    return {k: np.array(v) for k, v in history.columns(names=CURVES).items()}


def checkpoint_blob(net, optimizer, trainer, meta: dict | None = None) -> bytes:
    """The network, its optimizer, counters, history and snapshots as a checkpoint (.npz,
    uncompressed: mostly float noise, which zlib hardly shrinks)."""
    buf = io.BytesIO()
    np.savez(buf, **checkpoint.to_arrays(net, optimizer, trainer, meta=meta))
    return buf.getvalue()


@dataclass(frozen=True)
class Run:
    """One network kept for comparison. ``made``, ``made_at`` and ``retuned_at`` are the
    workspace's (core.lab.workspace) when it was kept, so reopening it is the network as it was."""

    id: int                         # unique in its Runs, never reused: widget keys and store rows
    name: str
    settings: Settings
    blob: bytes                     # the network as a checkpoint (core.lab.checkpoint)
    curves: dict                    # CURVES of its history, one row per epoch
    test_acc: float | None          # on the test images (None: none to test on, an upload)
    seconds: float                  # training time
    origin: str                     # where it came from, in words
    made: str = "file"
    made_at: int = 0
    retuned_at: int | None = None
    steps: int = 0                  # the trainer's global step
    shipped: str = ""               # the shipped network it is as shipped (SHIPPED_RUNS), else ""
    kept: float = field(default_factory=time.time)

    @property
    def epochs(self) -> int:
        return int(self.curves["epoch"][-1]) if len(self.curves["epoch"]) else 0

    @cached_property
    def digest(self) -> str:
        """SHA-256 of its network's bytes: what the store checks a run's row against."""
        return hashlib.sha256(self.blob).hexdigest()

    @property
    def best_val_acc(self) -> float | None:
        v = self.curves["val_acc"]
        return float(np.nanmax(v)) if len(v) else None

    @property
    def final_val_acc(self) -> float | None:
        v = self.curves["val_acc"]
        return float(v[-1]) if len(v) else None

    @property
    def nbytes(self) -> int:
        return len(self.blob) + sum(a.nbytes for a in self.curves.values())

    def checkpoint(self) -> checkpoint.Checkpoint:
        """The network, read back and checked (raises CheckpointError when the blob is damaged)."""
        return checkpoint.load(io.BytesIO(self.blob))


def check_curves(curves, n_layers: int) -> dict[str, np.ndarray]:
    """``curves`` as a run keeps them, checked against the history's schema; raises ValueError."""
    if not isinstance(curves, dict) or set(curves) != set(CURVES):
        raise ValueError("A run's curves are not the columns a run keeps.")
    n = len(curves["epoch"])
    out = {}
    for name in CURVES:
        col, a = COLUMN[name], np.asarray(curves[name])
        if a.shape != col.shape(n, n_layers) or not col.accepts(a):
            raise ValueError(f"A run's {name} is not one number per epoch.")
        out[name] = a.astype(col.dtype)
    if not np.array_equal(out["epoch"], np.arange(1, n + 1)):
        raise ValueError("A run's epochs are not 1, 2, 3, …")
    return out


def run_of_checkpoint(ck: checkpoint.Checkpoint, blob: bytes, settings: Settings, *, id: int, name: str,
                      origin: str, made: str, made_at: int, retuned_at: int | None = None,
                      test_acc: float | None = None, shipped: str = "", kept: float | None = None) -> Run:
    """A run of a network read back from ``blob`` (``ck``: what :func:`checkpoint.load` made of it)."""
    curves = curves_of(ck.history)
    ts = ck.trainer_state
    seconds = max(float(curves["seconds"][-1]) if len(curves["seconds"]) else 0.0,
                  float(ts.get("train_seconds", 0.0) or 0.0))
    if test_acc is None and isinstance(ck.meta.get("test_acc"), float):
        test_acc = float(ck.meta["test_acc"])
    return Run(id, clean_name(name), settings, blob, curves, test_acc, seconds, origin, made, int(made_at),
               retuned_at, int(ts["global_step"]), shipped, time.time() if kept is None else kept)


def clean_name(name: str) -> str:
    """A run's name as kept: one line, at most MAX_NAME characters, never empty."""
    name = " ".join(str(name).split())[:MAX_NAME]
    return name or "a run"


def preset_of(settings: Settings) -> str | None:
    """The preset whose settings these are (the epochs aside), if any: a run is named after it."""
    for p in PRESETS.values():
        if replace(p.settings, epochs=settings.epochs) == settings:
            return p.name
    return None


def describe(settings: Settings) -> str:
    """A few words for settings: the preset's name, else what differs from the seed's."""
    preset = preset_of(settings)
    if preset is not None:
        return PRESETS[preset].label
    default = Settings()
    parts = [f"{FIELDS[n].heading} {FIELDS[n].words(getattr(settings, n))}" for n in FIELDS
             if n != "epochs" and getattr(settings, n) != getattr(default, n)]
    return ", ".join(parts[:3]) + (" …" if len(parts) > 3 else "") if parts else "the seed"


# --------------------------------------------------------------------------- the collection
class Runs:
    """One session's runs, oldest first, bounded (see the module's docstring)."""

    def __init__(self, runs=(), *, next_id: int = 1, max_runs: int = MAX_RUNS, max_bytes: int = MAX_BYTES):
        self.max_runs, self.max_bytes = max_runs, max_bytes
        self._runs: list[Run] = []
        self.next_id = next_id
        self.removed: Run | None = None     # the last run removed, until undone or another change
        self.version = 0                    # one more on every change (what the store writes when it changes)
        for r in runs:
            self._check_room(r)
            self._runs.append(r)
            self.next_id = max(self.next_id, r.id + 1)

    def __iter__(self):
        return iter(list(self._runs))

    def __len__(self) -> int:
        return len(self._runs)

    def __bool__(self) -> bool:
        return bool(self._runs)

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self._runs)

    def get(self, run_id: int) -> Run:
        for r in self._runs:
            if r.id == run_id:
                return r
        raise KeyError(f"No run {run_id} is kept.")

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def unique_name(self, name: str) -> str:
        """``name``, or ``name (2)``, ``name (3)``, … when a kept run has it already."""
        name = clean_name(name)
        taken = {r.name for r in self._runs}
        if name not in taken:
            return name
        n = 2
        while f"{name[:MAX_NAME - 6]} ({n})" in taken:
            n += 1
        return f"{name[:MAX_NAME - 6]} ({n})"

    def room_for(self, nbytes: int) -> str:
        """Why a run of ``nbytes`` cannot be kept now ("" when it can)."""
        if len(self._runs) >= self.max_runs:
            return (f"You keep {len(self._runs)} runs, the most this app keeps for a session: remove one "
                    f"(Compare runs) to keep another.")
        if self.nbytes + nbytes > self.max_bytes:
            return (f"This run takes {nbytes / 2**20:.1f} MB and the {len(self._runs)} runs kept take "
                    f"{self.nbytes / 2**20:.1f} MB, over the {self.max_bytes / 2**20:.0f} MB a session keeps: remove "
                    f"a run (Compare runs) to keep this one.")
        return ""

    def _check_room(self, run: Run) -> None:
        why = self.room_for(run.nbytes)
        if why:
            raise RunsFull(why)

    def add(self, run: Run) -> Run:
        """Keep ``run`` (its name made unique). Raises RunsFull when it does not fit."""
        self._check_room(run)
        if any(r.id == run.id for r in self._runs):
            raise ValueError(f"Run {run.id} is kept already.")
        run = replace(run, name=self.unique_name(run.name))
        self._runs.append(run)
        self.next_id = max(self.next_id, run.id + 1)
        self.removed = None
        self.version += 1
        return run

    def rename(self, run_id: int, name: str) -> Run:
        old = self.get(run_id)
        name = clean_name(name)
        if name == old.name:
            return old
        others = Runs([r for r in self._runs if r.id != run_id], max_runs=len(self._runs) + 1, max_bytes=2**62)
        new = replace(old, name=others.unique_name(name))
        self._runs[self._runs.index(old)] = new
        self.version += 1
        return new

    def remove(self, run_id: int) -> Run:
        """Remove a run; :meth:`undo_remove` puts it back (until the next remove or add)."""
        run = self.get(run_id)
        self._runs.remove(run)
        self.removed = run
        self.version += 1
        return run

    def undo_remove(self) -> Run | None:
        """Put the last run removed back where it was (by id, which grows with time)."""
        run, self.removed = self.removed, None
        if run is None:
            return None
        self._check_room(run)
        self._runs.append(run)
        self._runs.sort(key=lambda r: r.id)
        self.version += 1
        return run

    # -- the comparison ---------------------------------------------------------------------------
    def differences(self) -> list[str]:
        """The names of the settings (FIELDS, in its order) whose values are not the same in every run."""
        runs = self._runs
        return [n for n in FIELDS if len({_hashable(getattr(r.settings, n, None)) for r in runs}) > 1]

    def table(self) -> list[dict]:
        """One row per run: its name, the settings that differ (by their short headings), then its
        results. Numbers stay numbers (accuracies as fractions, seconds), for sorting and CSV."""
        diff = self.differences()
        rows = []
        for r in self._runs:
            row = {"Run": r.name}
            row.update({FIELDS[n].heading: FIELDS[n].words(getattr(r.settings, n)) for n in diff})
            row.update({"Epochs trained": r.epochs, "Best val acc": r.best_val_acc,
                        "Final val acc": r.final_val_acc, "Test acc": r.test_acc, "Time (s)": round(r.seconds, 1)})
            rows.append(row)
        return rows

    def best(self) -> dict[str, int]:
        """For each result column, the id of the best run (highest accuracy); none when no run has one."""
        out = {}
        for col, get in (("Best val acc", Run.best_val_acc.fget), ("Final val acc", Run.final_val_acc.fget),
                         ("Test acc", lambda r: r.test_acc)):
            have = [(get(r), r.id) for r in self._runs if get(r) is not None]
            if have:
                out[col] = max(have, key=lambda t: t[0])[1]
        return out

    def table_csv(self) -> str:
        import pandas as pd
        return pd.DataFrame(self.table()).to_csv(index=False)

    def curves_csv(self) -> str:
        """Every run's curves, one row per run and epoch (one column per layer's update ratio)."""
        import pandas as pd
        frames = []
        layers = max((r.curves["update_ratio"].shape[1] for r in self._runs), default=0)
        for r in self._runs:
            c = r.curves
            cols = {"run": [r.name] * len(c["epoch"]), **{k: c[k] for k in CURVES if k != "update_ratio"}}
            for l in range(layers):
                ratio = c["update_ratio"]
                cols[f"update_ratio_{l + 1}"] = ratio[:, l] if l < ratio.shape[1] else np.full(len(c["epoch"]), np.nan)
            frames.append(pd.DataFrame(cols))
        columns = ["run", *[k for k in CURVES if k != "update_ratio"], *[f"update_ratio_{l + 1}" for l in range(layers)]]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
        return frame.to_csv(index=False)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value
