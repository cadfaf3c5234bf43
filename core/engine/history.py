"""What a run remembers, epoch by epoch: the one schema of the history.

Each column is declared once in :data:`COLUMNS`, with its dtype and the shape of one
epoch's value (a function of the number of layers and ``HIST_BINS``). Everything that
builds, sends, applies, reads or checks the history goes through :class:`History`:

* the trainer appends one row per epoch (:meth:`History.append`);
* the training process sends the rows a frame adds (:meth:`History.columns`) and the
  session applies them (:meth:`History.extend`);
* a checkpoint saves :meth:`History.to_arrays` and loads :meth:`History.from_arrays`,
  which checks the arrays against the schema first (:func:`validate`);
* the plots read :meth:`History.columns`.

So an empty history has the same dtypes and shapes as a long one, and whatever is
written is read back.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HIST_BINS = 40
HEALTHY_RATIO = (1e-4, 1e-2)   # ‖ΔW‖/‖W‖ per step: the usual healthy range ...
TYPICAL_RATIO = 1e-3           # ... around Karpathy's rule of thumb ("is the learning rate sane")
L = "L"                     # in a cell shape: the number of layers
STEP_LOSS_DTYPE = np.dtype(np.float32)


class HistoryError(ValueError):
    """Arrays that are not a history; the message says which column and why."""


@dataclass(frozen=True)
class Column:
    name: str
    dtype: np.dtype
    cell: tuple             # the shape of one epoch's value; L stands for the number of layers
    doc: str

    def cell_shape(self, n_layers: int) -> tuple[int, ...]:
        return tuple(n_layers if d == L else d for d in self.cell)

    def shape(self, n_epochs: int, n_layers: int) -> tuple[int, ...]:
        return (n_epochs,) + self.cell_shape(n_layers)

    def cell_value(self, value, n_layers: int):
        """One epoch's value as the history keeps it: a Python number, or an array of its
        own (never a view into a report or a file) that nobody may write into, so copies of
        a history can share it."""
        if not self.cell:
            return int(value) if self.dtype.kind == "i" else float(value)
        a = np.array(value, dtype=self.dtype)
        if a.shape != self.cell_shape(n_layers):
            raise ValueError(f"One epoch's {self.name} has shape {a.shape}, not {self.cell_shape(n_layers)}.")
        a.flags.writeable = False
        return a

    def stack(self, values: list, n_layers: int) -> np.ndarray:
        return np.asarray(values, self.dtype).reshape(self.shape(len(values), n_layers))

    def accepts_dtype(self, dtype: np.dtype) -> bool:
        """Whether a saved array of ``dtype`` can hold this column's kind of number (files
        written before this schema stored the epochs as floats, which is still fine)."""
        return dtype.kind in "fiu"

    def accepts(self, a: np.ndarray) -> bool:
        """Whether a saved array holds this column's kind of number. Integer columns are
        counts: whole and not negative."""
        if not self.accepts_dtype(a.dtype):
            return False
        if self.dtype.kind == "f":
            return True
        if a.dtype.kind == "f":
            if not (np.isfinite(a).all() and (a == np.round(a)).all()):
                return False
        return a.size == 0 or (a.min() >= 0 and a.max() <= np.iinfo(self.dtype).max)


def _f(name, cell, doc):
    return Column(name, np.dtype(np.float64), cell, doc)


COLUMNS: tuple[Column, ...] = (
    Column("epoch", np.dtype(np.int64), (), "epochs completed: 1, 2, 3, …"),
    _f("train_loss", (), "mean loss over the epoch's mini-batches"),
    _f("train_acc", (), "accuracy over the epoch's mini-batches"),
    _f("val_loss", (), "loss on the validation set at the end of the epoch"),
    _f("val_acc", (), "accuracy on the validation set at the end of the epoch"),
    _f("seconds", (), "training time so far"),
    _f("lr", (), "the learning rate"),
    _f("weight_norm", (L,), "‖W_l‖, averaged over the sampled steps"),
    _f("grad_norm", (L,), "‖dW_l‖, likewise"),
    _f("update_norm", (L,), "‖ΔW_l‖, likewise"),
    _f("update_ratio", (L,), f"‖ΔW_l‖/‖W_l‖: is the learning rate sane (healthy near {TYPICAL_RATIO:g})"),
    _f("dead_frac", (L,), "fraction of layer l's units that never fire on validation (NaN for the output)"),
    Column("hist_W", np.dtype(np.int32), (L, HIST_BINS), "histogram of W_l after the epoch's last step"),
    _f("range_W", (L, 2), "(lo, hi) of those bins"),
    Column("hist_dW", np.dtype(np.int32), (L, HIST_BINS), "histogram of dW_l of the epoch's last step"),
    _f("range_dW", (L, 2), "(lo, hi) of those bins"),
)
COLUMN = {c.name: c for c in COLUMNS}
ARRAY_NAMES = tuple(COLUMN) + ("step_loss",)     # what to_arrays returns and from_arrays needs


def check_layout(layout: dict, n_layers: int, *, max_steps: int | None = None) -> int:
    """Check what the arrays of a history declare, before any is read: ``layout`` maps
    each of :data:`ARRAY_NAMES` to its ``(shape, dtype)``. Every column must have one
    row per epoch in its cell's shape and a kind of number it can hold; the per-step
    losses are a list of at most ``max_steps`` numbers. Returns the number of epochs or
    raises :class:`HistoryError`."""
    missing = [k for k in ARRAY_NAMES if k not in layout]
    if missing:
        raise HistoryError(f"The history has no {missing[0]!r} column.")
    epochs_shape = tuple(layout["epoch"][0])
    if len(epochs_shape) != 1:
        raise HistoryError("The history's epoch column is not a list.")
    n = epochs_shape[0]
    for col in COLUMNS:
        shape, dtype = tuple(layout[col.name][0]), np.dtype(layout[col.name][1])
        if shape != col.shape(n, n_layers):
            raise HistoryError(f"History column {col.name!r} has the wrong shape: {shape}, where {n} epochs "
                               f"of a {n_layers}-layer network make {col.shape(n, n_layers)}.")
        if not col.accepts_dtype(dtype):
            what = "numbers" if col.dtype.kind == "f" else "counts (whole numbers, not negative)"
            raise HistoryError(f"History column {col.name!r} holds {dtype} values that are not {what}.")
    shape, dtype = tuple(layout["step_loss"][0]), np.dtype(layout["step_loss"][1])
    if len(shape) != 1 or dtype.kind != "f":
        raise HistoryError("The per-step losses are not a list of numbers.")
    if max_steps is not None and shape[0] > max_steps:
        raise HistoryError(f"The history holds {shape[0]:,} per-step losses, but only {max_steps:,} steps "
                           f"were taken.")
    return n


def validate(arrays: dict, n_layers: int, *, max_steps: int | None = None) -> int:
    """Check that ``arrays`` (by :data:`ARRAY_NAMES`) form a history of a network with
    ``n_layers`` layers; return its number of epochs or raise :class:`HistoryError`."""
    missing = [k for k in ARRAY_NAMES if k not in arrays]
    if missing:
        raise HistoryError(f"The history has no {missing[0]!r} column.")
    n = check_layout({k: (arrays[k].shape, arrays[k].dtype) for k in ARRAY_NAMES}, n_layers, max_steps=max_steps)
    for col in COLUMNS:
        a = arrays[col.name]
        if not col.accepts(a):
            what = "numbers" if col.dtype.kind == "f" else "counts (whole numbers, not negative)"
            raise HistoryError(f"History column {col.name!r} holds {a.dtype} values that are not {what}.")
    if not np.array_equal(arrays["epoch"], np.arange(1, n + 1)):
        raise HistoryError("The history's epochs are not 1, 2, 3, …")
    return n


class History:
    """Per-epoch telemetry plus the loss of every step, as growing lists.

    ``rows[name]`` is the list of one column's values (see :data:`COLUMNS`), one per
    epoch; the per-step losses grow in a buffer of their own. Per layer ``l``:
    ``weight_norm`` ‖W_l‖, ``grad_norm`` ‖dW_l‖, ``update_norm`` ‖ΔW_l‖,
    ``update_ratio`` ‖ΔW_l‖/‖W_l‖ (Karpathy's "is the learning rate sane" number,
    healthy near :data:`TYPICAL_RATIO`), and ``dead_frac``, the fraction of the layer's units that never
    fire on the validation set. ``hist_W``/``hist_dW`` are histograms of each layer's
    weights and gradients with ``HIST_BINS`` bins between the ``range_W``/``range_dW``
    of that epoch.
    """

    SCALARS = tuple(c.name for c in COLUMNS if not c.cell)
    LAYERED = tuple(c.name for c in COLUMNS if c.cell == (L,))
    HISTS = tuple(c.name for c in COLUMNS if len(c.cell) == 2)

    def __init__(self, n_layers: int):
        self.n_layers = n_layers
        self.rows: dict[str, list] = {k: [] for k in COLUMN}
        self._step_loss = np.empty(1024, STEP_LOSS_DTYPE)
        self.n_steps = 0

    def __len__(self) -> int:
        return len(self.rows["epoch"])

    def _complete(self) -> int:
        """Epochs every column has: another thread may be appending a row key by key."""
        return min(len(v) for v in self.rows.values())

    # -- per-step losses ------------------------------------------------------------
    def add_step_loss(self, loss: float) -> None:
        if self.n_steps == len(self._step_loss):
            self.reserve_steps(2 * len(self._step_loss))
        self._step_loss[self.n_steps] = loss
        self.n_steps += 1

    def add_step_losses(self, losses: np.ndarray) -> None:
        n = len(losses)
        if self.n_steps + n > len(self._step_loss):
            self.reserve_steps(max(self.n_steps + n, 2 * len(self._step_loss)))
        self._step_loss[self.n_steps:self.n_steps + n] = losses
        self.n_steps += n

    def reserve_steps(self, total: int) -> None:
        if total > len(self._step_loss):
            grown = np.empty(total, STEP_LOSS_DTYPE)
            grown[:self.n_steps] = self._step_loss[:self.n_steps]
            self._step_loss = grown

    @property
    def step_loss(self) -> np.ndarray:
        return self._step_loss[:self.n_steps]

    # -- epoch rows -------------------------------------------------------------------
    def append(self, row: dict) -> None:
        """One epoch: a value for every column, converted to the column's type and shape."""
        if row.keys() != self.rows.keys():
            raise KeyError(f"A history row has the columns {sorted(self.rows)}, not {sorted(row)}.")
        cells = {k: COLUMN[k].cell_value(v, self.n_layers) for k, v in row.items()}
        # "epoch" goes last: len(self) counts epochs, so a reader in another thread
        # never sees an epoch whose other columns are not there yet
        for k, v in cells.items():
            if k != "epoch":
                self.rows[k].append(v)
        self.rows["epoch"].append(cells["epoch"])

    def extend(self, columns: dict[str, np.ndarray]) -> None:
        """Append the epochs of ``columns`` (as :meth:`columns` returns them)."""
        for i in range(len(columns["epoch"])):
            self.append({k: columns[k][i] for k in COLUMN})

    def truncate(self, epochs: int, steps: int) -> None:
        """Forget every epoch after the first ``epochs`` and every step loss after the first
        ``steps`` (a trainer going back to an earlier step)."""
        del self.rows["epoch"][epochs:]     # first: len(self) never counts an epoch being removed
        for k, v in self.rows.items():
            del v[epochs:]
        self.n_steps = min(self.n_steps, int(steps))

    def column(self, key: str) -> np.ndarray:
        """``(epochs,)`` for scalars, ``(epochs, layers)`` for per-layer metrics, and
        ``(epochs, layers, bins)`` for histograms, in the column's dtype."""
        return COLUMN[key].stack(self.rows[key][:self._complete()], self.n_layers)

    def columns(self, start: int = 0, stop: int | None = None, names=None) -> dict[str, np.ndarray]:
        """The columns ``names`` (every column by default) for epochs ``start`` to ``stop``
        (all complete ones by default), consistent with each other even while another
        thread appends. A page that draws a few columns asks for those: stacking the
        histograms of a long run costs far more than the curves."""
        n = self._complete()
        stop = n if stop is None else min(stop, n)
        cols = COLUMNS if names is None else [COLUMN[k] for k in names]
        return {c.name: c.stack(self.rows[c.name][start:stop], self.n_layers) for c in cols}

    def frame(self):
        """The per-epoch history as a pandas DataFrame (one column per layer metric)."""
        import pandas as pd
        got = self.columns()
        cols = {k: got[k] for k in self.SCALARS}
        for k in self.LAYERED:
            for l in range(self.n_layers if k != "dead_frac" else self.n_layers - 1):
                cols[f"{k}_{l + 1}"] = got[k][:, l]
        return pd.DataFrame(cols)

    # -- as arrays (checkpoints) --------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        return {**self.columns(), "step_loss": self.step_loss.copy()}

    @classmethod
    def from_arrays(cls, n_layers: int, arrays: dict[str, np.ndarray]) -> "History":
        """The history ``arrays`` hold; raises :class:`HistoryError` when they are not one."""
        validate(arrays, n_layers)
        h = cls(n_layers)
        h.extend(arrays)
        h.add_step_losses(np.asarray(arrays["step_loss"], STEP_LOSS_DTYPE))
        return h

    def copy(self) -> "History":
        """A history of its own: its own lists and step-loss buffer. The rows' arrays
        are shared: they are read-only."""
        h = History(self.n_layers)
        n = self._complete()
        h.rows = {k: v[:n] for k, v in self.rows.items()}
        h.add_step_losses(self.step_loss)
        return h

    @property
    def nbytes(self) -> int:
        """The bytes of the rows' values (a number counts as 8) and of the step-loss buffer.
        Every row of a column has the same shape and dtype (``Column.cell_value``), so this is
        arithmetic, not a walk over every cell: the training page shows it on each redraw."""
        return self._step_loss.nbytes + sum(
            len(self.rows[c.name]) * (int(np.prod(c.cell_shape(self.n_layers))) * c.dtype.itemsize if c.cell else 8)
            for c in COLUMNS)

