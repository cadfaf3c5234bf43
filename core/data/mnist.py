"""The data the network learns from.

The full MNIST set ships with the project as ``data/mnist.npz`` (uint8 pixels,
read with ``allow_pickle=False``). Images stay uint8 in memory, shared by
everyone on a server; a mini-batch is gathered and scaled to [0, 1] when it is
used, so a split is just two index arrays and costs no copy of the images.

The default split mirrors the seed notebook on Kaggle's train.csv: take the
first 42,000 MNIST training images, shuffle them with the seed, hold the first
1,000 out for validation and train on the other 41,000. The official 10,000
test images stay apart and give the test accuracy.

Kaggle's own ``train.csv``/``test.csv`` load through :func:`load_csv`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.data.kaggle_csv import CsvDigits, DataError
from core.engine.network import N_CLASSES, N_PIXELS, to_float

DEFAULT_MNIST = Path(__file__).resolve().parents[2] / "data" / "mnist.npz"
SEED_POOL, SEED_VAL = 42_000, 1_000     # the seed notebook's split (the app's default settings too)


@dataclass(frozen=True)
class Digits:
    """Labelled (or unlabelled) images: ``X`` (n, 784) uint8, ``y`` (n,) uint8 or None."""

    X: np.ndarray
    y: np.ndarray | None
    name: str = ""

    def __len__(self) -> int:
        return len(self.X)


def check_images(X, y, where: str) -> None:
    if X.dtype != np.uint8 or X.ndim != 2 or X.shape[1] != N_PIXELS:
        raise DataError(f"{where}: images must be uint8 of shape (n, {N_PIXELS}), got {X.dtype} {X.shape}.")
    if y is not None:
        if y.shape != (len(X),) or y.dtype.kind not in "ui":
            raise DataError(f"{where}: labels must be integers of shape ({len(X)},), got {y.dtype} {y.shape}.")
        if len(y) and (y.min() < 0 or y.max() >= N_CLASSES):
            raise DataError(f"{where}: labels must be digits 0-{N_CLASSES - 1}.")


def load_mnist(path: str | Path = DEFAULT_MNIST) -> dict[str, Digits]:
    """``{"train": 60,000 images, "test": 10,000 images}`` from the shipped file."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, KeyError, ValueError) as err:
        raise DataError(f"Cannot read the MNIST file {Path(path).name}: {err}") from err
    check_images(arrays["x_train"], arrays["y_train"], "x_train")
    check_images(arrays["x_test"], arrays["y_test"], "x_test")
    return {"train": Digits(arrays["x_train"], arrays["y_train"], "MNIST train"),
            "test": Digits(arrays["x_test"], arrays["y_test"], "MNIST test")}


def digits_from_csv(csv: CsvDigits, name: str = "uploaded CSV") -> Digits:
    return Digits(csv.X, csv.y, name)


@dataclass(frozen=True)
class Split:
    """Which images of ``source`` train and which validate; ``test`` kept apart."""

    source: Digits
    train_idx: np.ndarray
    val_idx: np.ndarray
    test: Digits | None = None
    seed: int = 0
    info: dict = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return len(self.train_idx)

    @property
    def n_val(self) -> int:
        return len(self.val_idx)

    def images(self, idx: np.ndarray, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
        """The images and labels at ``idx`` (indices into ``source``), scaled to [0, 1]."""
        return to_float(self.source.X.take(idx, axis=0), dtype), self.source.y.take(idx)

    @property
    def val(self) -> Digits:
        return Digits(self.source.X[self.val_idx], self.source.y[self.val_idx], "validation")

    def describe(self) -> str:
        test = f", {len(self.test):,} test images kept apart" if self.test is not None else ", no labelled test set"
        return (f"{self.n_train:,} training and {self.n_val:,} validation images "
                f"from {self.source.name} (shuffled with seed {self.seed}){test}.")


def make_split(source: Digits, *, pool: int | None = SEED_POOL, val: int = SEED_VAL, seed: int = 0,
               test: Digits | None = None) -> Split:
    """Shuffle the first ``pool`` images of ``source`` with ``seed``; the first ``val`` validate."""
    if source.y is None:
        raise DataError("This file has no label column, so the network cannot learn from it "
                        "(a Kaggle test.csv is for predictions; train on train.csv).")
    n = len(source) if pool is None else int(pool)
    if not 2 <= n <= len(source):
        raise DataError(f"The pool must hold 2 to {len(source):,} images, not {n:,}.")
    val = int(val)
    if not 1 <= val < n:
        raise DataError(f"The validation set must hold 1 to {n - 1:,} images, not {val:,}.")
    perm = np.random.default_rng(seed).permutation(n)
    return Split(source, perm[val:], perm[:val], test, int(seed),
                 {"source": source.name, "pool": n, "val": val, "seed": int(seed)})

