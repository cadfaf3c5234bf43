"""The seed notebook's algorithm, re-stated as the benchmark's reference.

The seed (a Kaggle *Digit Recognizer* notebook) trains 784 → 64 ReLU → 64 ReLU
→ 10 softmax with plain NumPy in the textbook layout: **features by samples**,
``X`` of shape ``(784, m)``, weights ``W1`` of shape ``(64, 784)`` so that
``Z1 = W1 · X + b1``; float64 throughout (pixels divided by ``255.``); weights
``0.01·N(0,1)``, biases zero; mini-batch SGD with learning rate 0.1 and batch
64 for 1000 epochs on 41,000 images (1,000 held out). At the start of every
epoch it shuffles by *copying* the column-permuted training matrix,
``X_shuf = X[:, perm]``, and then slices consecutive batches of columns.

This is the notebook's math in the notebook's style, not a strawman: where
the description leaves a detail open, the cheaper choice is taken (``exp`` is
computed once per softmax; no per-step loss is computed, since the seed only
reports accuracy). Two well-known slips of the classic "MNIST from scratch"
notebook are *not* copied, so that the reference trains the same network as
the app: bias gradients are per-unit sums (not one scalar ``np.sum(dZ)``), and
the one-hot matrix always has 10 rows (not ``Y.max() + 1``, which breaks on a
batch without a 9).

It is deliberately independent of ``core/``: nothing here imports the engine,
so the test that compares the two compares two separate implementations.
"""
from __future__ import annotations

import numpy as np

N_CLASSES = 10


# --------------------------------------------------------------------------- data
def seed_layout(X_u8: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Images as rows of uint8 → the notebook's ``X_train`` (784, m) float64 in [0, 1]
    and ``Y_train`` (m,) integer labels."""
    X = X_u8.T / 255.
    return X, np.asarray(y, dtype=np.int64)


# --------------------------------------------------------------------------- parameters
def init_params(rng: np.random.Generator | None = None, sizes=(784, 64, 64, 10)):
    """``W_l = 0.01·N(0,1)`` of shape (n_out, n_in), ``b_l = 0`` of shape (n_out, 1)."""
    rng = rng or np.random.default_rng(0)
    W1 = rng.standard_normal((sizes[1], sizes[0])) * 0.01
    b1 = np.zeros((sizes[1], 1))
    W2 = rng.standard_normal((sizes[2], sizes[1])) * 0.01
    b2 = np.zeros((sizes[2], 1))
    W3 = rng.standard_normal((sizes[3], sizes[2])) * 0.01
    b3 = np.zeros((sizes[3], 1))
    return W1, b1, W2, b2, W3, b3


def from_rows_layout(params: dict) -> tuple[np.ndarray, ...]:
    """Parameters in the app's samples-by-rows layout (``W1`` (784, 64), ``b1`` (64,))
    → the notebook's layout, as float64 copies: ``W1.T`` (64, 784), ``b1`` (64, 1)."""
    out = []
    for l in (1, 2, 3):
        out.append(np.array(params[f"W{l}"], dtype=np.float64).T.copy())
        out.append(np.array(params[f"b{l}"], dtype=np.float64).reshape(-1, 1))
    return tuple(out)


def to_rows_layout(W1, b1, W2, b2, W3, b3) -> dict:
    """The inverse of :func:`from_rows_layout` (float64)."""
    return {"W1": W1.T, "b1": b1[:, 0], "W2": W2.T, "b2": b2[:, 0], "W3": W3.T, "b3": b3[:, 0]}


# --------------------------------------------------------------------------- the step
def ReLU(Z):
    return np.maximum(Z, 0)


def ReLU_deriv(Z):
    return Z > 0


def softmax(Z):
    E = np.exp(Z)
    return E / np.sum(E, axis=0, keepdims=True)


def forward_prop(W1, b1, W2, b2, W3, b3, X):
    Z1 = W1.dot(X) + b1
    A1 = ReLU(Z1)
    Z2 = W2.dot(A1) + b2
    A2 = ReLU(Z2)
    Z3 = W3.dot(A2) + b3
    A3 = softmax(Z3)
    return Z1, A1, Z2, A2, Z3, A3


def one_hot(Y):
    one_hot_Y = np.zeros((N_CLASSES, Y.size))
    one_hot_Y[Y, np.arange(Y.size)] = 1
    return one_hot_Y


def backward_prop(Z1, A1, Z2, A2, Z3, A3, W2, W3, X, Y):
    m = Y.size
    one_hot_Y = one_hot(Y)
    dZ3 = A3 - one_hot_Y
    dW3 = 1 / m * dZ3.dot(A2.T)
    db3 = 1 / m * np.sum(dZ3, axis=1, keepdims=True)
    dZ2 = W3.T.dot(dZ3) * ReLU_deriv(Z2)
    dW2 = 1 / m * dZ2.dot(A1.T)
    db2 = 1 / m * np.sum(dZ2, axis=1, keepdims=True)
    dZ1 = W2.T.dot(dZ2) * ReLU_deriv(Z1)
    dW1 = 1 / m * dZ1.dot(X.T)
    db1 = 1 / m * np.sum(dZ1, axis=1, keepdims=True)
    return dW1, db1, dW2, db2, dW3, db3


def update_params(W1, b1, W2, b2, W3, b3, dW1, db1, dW2, db2, dW3, db3, alpha):
    W1 = W1 - alpha * dW1
    b1 = b1 - alpha * db1
    W2 = W2 - alpha * dW2
    b2 = b2 - alpha * db2
    W3 = W3 - alpha * dW3
    b3 = b3 - alpha * db3
    return W1, b1, W2, b2, W3, b3


# --------------------------------------------------------------------------- training
def train_epoch(params, X, Y, alpha=0.1, batch_size=64, perm=None, rng=None):
    """One epoch the notebook's way: copy the column-shuffled matrix, then SGD over
    consecutive column slices. ``perm`` fixes the order (else drawn from ``rng``)."""
    W1, b1, W2, b2, W3, b3 = params
    m = X.shape[1]
    if perm is None:
        perm = (rng or np.random.default_rng()).permutation(m)
    X_shuf = X[:, perm]
    Y_shuf = Y[perm]
    for i in range(0, m, batch_size):
        X_b = X_shuf[:, i:i + batch_size]
        Y_b = Y_shuf[i:i + batch_size]
        Z1, A1, Z2, A2, Z3, A3 = forward_prop(W1, b1, W2, b2, W3, b3, X_b)
        grads = backward_prop(Z1, A1, Z2, A2, Z3, A3, W2, W3, X_b, Y_b)
        W1, b1, W2, b2, W3, b3 = update_params(W1, b1, W2, b2, W3, b3, *grads, alpha)
    return W1, b1, W2, b2, W3, b3


def get_predictions(A3):
    return np.argmax(A3, 0)


def get_accuracy(predictions, Y):
    return np.sum(predictions == Y) / Y.size


def mean_loss(params, X, Y) -> float:
    """Mean cross-entropy over ``X`` (not part of training; for cross-checks)."""
    A3 = forward_prop(*params, X)[-1]
    return float(-np.log(A3[Y, np.arange(Y.size)]).mean())
