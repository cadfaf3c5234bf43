"""Edit a trained network and see: silence hidden neurons or set one weight, on a *copy*
of the parameters, and compare the validation accuracy, the per-digit recall and one
image's probabilities before and after.

Silencing neuron ``j`` of hidden layer ``l`` means that nothing it computes reaches the
layer above: ``W{l+1}[j, :] = 0``, its outgoing weights. Then every
``Z{l+1}[i, c] = Σ_k A{l}[i, k]·W{l+1}[k, c] + b{l+1}[c]`` is what it would be with
``A{l}[i, j] = 0``, whatever the activation. Zeroing its *incoming* weights and bias
(``W{l}[:, j]``, ``b{l}[j]``) would give ``A{l}[i, j] = f(0)``: 0 for ReLU and tanh, but
0.5 for the sigmoid, which still feeds ``0.5·W{l+1}[j, c]`` to every unit above.

The edited parameters go through the engine's own forward pass
(:func:`core.engine.metrics.activations`); there is no second forward here.
Pure NumPy: no Streamlit, no plotly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import numpy as np

from core.engine.metrics import activations, confusion_matrix, precision_recall

MAX_WEIGHT = 1000.0   # |value| a weight may be set to: far beyond any trained weight, still finite in float32


@dataclass(frozen=True)
class Silence:
    """Silence neuron ``unit`` of hidden layer ``layer``: ``W{layer+1}[unit, :] = 0``."""

    layer: int
    unit: int

    @property
    def label(self) -> str:
        return f"silence A{self.layer}[:, {self.unit}]: W{self.layer + 1}[{self.unit}, :] = 0"


@dataclass(frozen=True)
class SetWeight:
    """Set one weight: ``W{layer}[i, j] = value``."""

    layer: int
    i: int
    j: int
    value: float

    @property
    def label(self) -> str:
        return f"W{self.layer}[{self.i}, {self.j}] = {self.value:g}"


Edit = Union[Silence, SetWeight]


def sizes_of(params: dict) -> list[int]:
    """``[784, 64, 64, 10]`` read from the shapes of ``W1, W2, …``."""
    L = sum(1 for k in params if k.startswith("W"))
    return [params["W1"].shape[0]] + [params[f"W{l}"].shape[1] for l in range(1, L + 1)]


def check(edit: Edit, sizes) -> None:
    """Raise ValueError, in words a student can act on, if ``edit`` does not fit a network
    of these ``sizes`` (the one place edits are validated)."""
    L = len(sizes) - 1
    if isinstance(edit, Silence):
        if not 1 <= edit.layer <= L - 1:
            raise ValueError(f"Only hidden neurons can be silenced: layers 1 to {L - 1}, not {edit.layer}.")
        if not 0 <= edit.unit < sizes[edit.layer]:
            raise ValueError(f"Layer {edit.layer} has neurons 0 to {sizes[edit.layer] - 1}, not {edit.unit}.")
    elif isinstance(edit, SetWeight):
        if not 1 <= edit.layer <= L:
            raise ValueError(f"The weights are W1 to W{L}, not W{edit.layer}.")
        rows, cols = sizes[edit.layer - 1], sizes[edit.layer]
        if not (0 <= edit.i < rows and 0 <= edit.j < cols):
            raise ValueError(f"W{edit.layer} is {rows}×{cols}: i from 0 to {rows - 1}, j from 0 to {cols - 1}; "
                             f"not [{edit.i}, {edit.j}].")
        if not (math.isfinite(edit.value) and abs(edit.value) <= MAX_WEIGHT):
            raise ValueError(f"A weight is set to a number between {-MAX_WEIGHT:g} and {MAX_WEIGHT:g}, "
                             f"not {edit.value}.")
    else:
        raise TypeError(f"Not an edit: {edit!r}.")


def apply(params: dict, edits) -> dict:
    """A new parameter dict with ``edits`` applied in order (a later edit of the same weight
    wins). The arrays an edit touches are copied first; the others are shared, unchanged.
    ``params`` is never written into (the pretrained network's arrays are read-only)."""
    edits = tuple(edits)
    sizes = sizes_of(params)
    for e in edits:
        check(e, sizes)
    out = dict(params)
    copied: set[str] = set()

    def writable(name: str) -> np.ndarray:
        if name not in copied:
            out[name] = np.array(params[name], copy=True)
            copied.add(name)
        return out[name]

    for e in edits:
        if isinstance(e, Silence):
            writable(f"W{e.layer + 1}")[e.unit, :] = 0
        else:
            writable(f"W{e.layer}")[e.i, e.j] = e.value
    return out


def silenced(edits, layer: int) -> list[int]:
    """The neurons of hidden layer ``layer`` that ``edits`` silence, in order."""
    return sorted({e.unit for e in edits if isinstance(e, Silence) and e.layer == layer})


@dataclass(frozen=True)
class Outcome:
    """How one set of parameters does on labelled images."""

    accuracy: float        # share of images whose most probable digit is the label
    recall: np.ndarray     # (n_classes,) per digit: share of its images recognised (NaN: no images)
    proba: np.ndarray      # (n, n_classes) A_L = softmax(Z_L), one row per image

    @property
    def pred(self) -> np.ndarray:
        return self.proba.argmax(axis=1)


def outcome(net, params: dict, X_u8: np.ndarray, y: np.ndarray) -> Outcome:
    """The engine's forward pass of ``params`` on ``X_u8``, scored against ``y``."""
    proba = activations(net, X_u8, params)[f"A{net.n_layers}"]
    return outcome_of(proba, y)


def outcome_of(proba: np.ndarray, y: np.ndarray) -> Outcome:
    """The same from probabilities already computed (the page's forward pass of the unedited network)."""
    y = np.asarray(y)
    n_classes = proba.shape[1]
    pred = proba.argmax(axis=1)
    cm = confusion_matrix(y, pred, n_classes)
    acc = float((pred == y).mean()) if len(y) else float("nan")
    return Outcome(acc, precision_recall(cm)["recall"], proba)


def compare(net, params: dict, edits, X_u8: np.ndarray, y: np.ndarray) -> tuple[Outcome, Outcome]:
    """(before, after): ``params`` as they are, and with ``edits`` applied to a copy."""
    return outcome(net, params, X_u8, y), outcome(net, apply(params, edits), X_u8, y)
