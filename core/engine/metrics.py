"""Looking inside a trained network: pure NumPy, no plotting.

Everything here takes arrays (and the network for a forward pass) and returns
arrays, so a page can show the numbers and a test can check them:

* :func:`confusion_matrix`, :func:`precision_recall`, :func:`row_normalise`
* :func:`mistakes`, :func:`top_k` — which images it gets wrong, how sure it was
* :func:`pca` — a 2-D picture of a representation (``X``, ``A1``, ``A2``) by SVD
* :func:`activations`, :func:`firing_rate`, :func:`neuron_order`, :func:`extremes`,
  :func:`by_class` — what one hidden neuron responds to
* :func:`logit_contributions` — ``Z3[c] = Σ_j A2[j]·W3[j, c] + b3[c]``, term by term
* :func:`submission_csv` — Kaggle's ``ImageId,Label`` file
* :class:`Memo` — a small per-session cache keyed on the identity of the
  (never mutated) parameter dicts, so a rerun does not redo a forward pass
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.engine.network import MLP, to_float


# --------------------------------------------------------------------------- how well
def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """``cm[t, p]`` = number of images of true class ``t`` predicted as ``p``."""
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.shape} labels but {y_pred.shape} predictions.")
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes) \
        .reshape(n_classes, n_classes)


def row_normalise(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its total (the fraction of class ``t`` predicted as ``p``);
    a class with no images keeps a row of zeros."""
    cm = np.asarray(cm, float)
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)


def precision_recall(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per class: precision = TP / predicted as it, recall = TP / truly it, their
    harmonic mean F1, and the support (images truly of the class).
    Undefined ratios (nothing predicted, no images) are NaN, not 0."""
    cm = np.asarray(cm, float)
    tp = np.diag(cm)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(actual > 0, tp / actual, np.nan)
        f1 = 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual.astype(np.int64)}


def top_k(proba: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most probable classes of each row, most probable first, and their probabilities."""
    proba = np.asarray(proba)
    k = min(k, proba.shape[1])
    idx = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(proba, idx, axis=1)


def mistakes(y: np.ndarray, pred: np.ndarray, proba: np.ndarray, *, true_class: int | None = None,
             pred_class: int | None = None, most_confident_first: bool = True) -> np.ndarray:
    """Indices of the misclassified images (optionally only true ``true_class`` /
    predicted ``pred_class``), ordered by the probability the network gave its
    wrong answer: the most confident mistakes first."""
    y, pred = np.asarray(y), np.asarray(pred)
    keep = pred != y
    if true_class is not None:
        keep &= y == true_class
    if pred_class is not None:
        keep &= pred == pred_class
    idx = np.flatnonzero(keep)
    conf = np.asarray(proba)[idx, pred[idx]]
    order = np.argsort(-conf if most_confident_first else conf, kind="stable")
    return idx[order]


# --------------------------------------------------------------------------- representations
@dataclass(frozen=True)
class PCA:
    """Principal axes of a set of rows: ``coords = (X - mean) @ components.T``."""

    mean: np.ndarray        # (d,)
    components: np.ndarray  # (k, d), orthonormal rows, largest variance first
    variance: np.ndarray    # (k,) variance along each component
    explained: np.ndarray   # (k,) fraction of the total variance
    coords: np.ndarray      # (n, k) the rows it was fitted on, projected

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, np.float64) - self.mean) @ self.components.T


def pca(X: np.ndarray, k: int = 2) -> PCA:
    """Principal component analysis by the SVD of the centred data.

    ``X - mean = U S Vt``: the rows of ``Vt`` are the principal axes, ``S² / n``
    the variance along each. Each axis's sign is fixed (its largest loading is
    positive) so the picture does not flip between two calls.
    """
    X = np.asarray(X, np.float64)
    n, d = X.shape
    mean = X.mean(axis=0)
    Xc = X - mean
    _, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    k = min(k, len(S))
    comps = Vt[:k].copy()
    for i in range(k):
        j = np.argmax(np.abs(comps[i]))
        if comps[i, j] < 0:
            comps[i] = -comps[i]
    var_all = S ** 2 / max(n, 1)
    total = var_all.sum()
    var = var_all[:k]
    explained = var / total if total > 0 else np.zeros(k)
    coords = Xc @ comps.T
    if k < 2:  # a representation with a single direction: draw it on a line
        coords = np.hstack([coords, np.zeros((n, 2 - k))])
    return PCA(mean, comps, var, explained, coords)


def activations(net: MLP, X_u8: np.ndarray, params: dict | None = None, *,
                keep_input: bool = False) -> dict[str, np.ndarray]:
    """``Z1, A1, …, ZL, AL`` (and ``X`` with ``keep_input``) of the network's own
    forward pass for uint8 images."""
    v = net.forward(to_float(X_u8, net.dtype), params)
    v.pop("logsumexp", None)
    if not keep_input:
        del v["X"]
    return v


def firing_rate(Z: np.ndarray) -> np.ndarray:
    """Per unit, the fraction of images on which its pre-activation is positive
    (for ReLU: on which it fires, ``A > 0``). 0 means dead on these images."""
    Z = np.asarray(Z)
    if len(Z) == 0:
        return np.zeros(Z.shape[1])
    return (Z > 0).mean(axis=0)


def neuron_order(W: np.ndarray, rates: np.ndarray | None = None, by: str = "index") -> np.ndarray:
    """Unit numbers ordered by ``"index"``, by ``"norm"`` of their incoming weights
    (column of ``W``, largest first) or by ``"firing"`` rate (most often first)."""
    n = W.shape[1]
    if by == "index":
        return np.arange(n)
    if by == "norm":
        return np.argsort(-np.linalg.norm(np.asarray(W, np.float64), axis=0), kind="stable")
    if by == "firing":
        if rates is None:
            raise ValueError("Ordering by firing needs the firing rates.")
        return np.argsort(-np.asarray(rates), kind="stable")
    raise ValueError(f"Unknown order {by!r}.")


def extremes(a: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``k`` largest values of ``a`` (largest first) and the ``k``
    smallest (smallest first)."""
    a = np.asarray(a)
    k = min(k, len(a))
    return np.argsort(-a, kind="stable")[:k], np.argsort(a, kind="stable")[:k]


def by_class(a: np.ndarray, y: np.ndarray, n_classes: int = 10) -> list[np.ndarray]:
    """The values of ``a`` split by the label of their image."""
    a, y = np.asarray(a), np.asarray(y)
    return [a[y == c] for c in range(n_classes)]


def logit_contributions(a_prev: np.ndarray, W: np.ndarray, c: int) -> np.ndarray:
    """The terms of one logit: ``a_prev[j] · W[j, c]`` for every unit ``j``.

    For the seed's network ``Z3[c] = Σ_j A2[j]·W3[j, c] + b3[c]``, so these plus
    ``b3[c]`` add up to the logit the network computed.
    """
    return np.asarray(a_prev) * np.asarray(W)[:, c]


# --------------------------------------------------------------------------- Kaggle
def submission_csv(pred: np.ndarray) -> bytes:
    """Kaggle's Digit Recognizer format: ``ImageId,Label`` with ImageId from 1."""
    pred = np.asarray(pred, np.int64)
    if pred.ndim != 1 or (len(pred) and (pred.min() < 0 or pred.max() > 9)):
        raise ValueError("Predictions must be one digit 0-9 per image.")
    lines = ["ImageId,Label"]
    lines += [f"{i},{p}" for i, p in enumerate(pred.tolist(), start=1)]
    return ("\n".join(lines) + "\n").encode("ascii")


# --------------------------------------------------------------------------- caching
class Memo:
    """Remembers a few results keyed by a name and the *identity* of the objects
    they were computed from (parameter dicts, splits).

    Parameters are never modified in place — every update builds a new dict —
    so the same dict object means the same numbers. The least recently used
    entry goes first when the memo is full. The memo holds a reference
    to its keys, so an id cannot be reused while the entry lives. One Memo lives
    in a session's state; nothing here is shared between users.
    """

    def __init__(self, size: int = 32):
        self.size = size
        self._items: dict[str, tuple[tuple, object]] = {}

    def get(self, name: str, keys: tuple, compute):
        hit = self._items.pop(name, None)
        if hit is not None and len(hit[0]) == len(keys) and all(a is b for a, b in zip(hit[0], keys)):
            self._items[name] = hit  # most recently used last
            return hit[1]
        value = compute()
        self._items[name] = (tuple(keys), value)
        while len(self._items) > self.size:
            self._items.pop(next(iter(self._items)))
        return value

    def __len__(self) -> int:
        return len(self._items)
