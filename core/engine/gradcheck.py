"""Check backprop against central finite differences.

For a parameter entry θ, the numerical gradient is

    (L(θ + ε) − L(θ − ε)) / 2ε

with L the mean loss of the same mini-batch. The check runs on a float64 copy
of the network, because float32 loses the difference of two nearby losses in
rounding. The relative error ``|g_bp − g_fd| / (|g_bp| + |g_fd|)`` is about
1e-7 or smaller where backprop is right; the app calls the two in agreement below
``AGREES`` (1e-5); a wrong backward pass gives errors near 1.

Two honest limits of the numerical side: float64 rounds the loss (≈2.3) to
about 1e-16, so the difference quotient carries an absolute error near
1e-16/ε ≈ 1e-11 and tiny gradients show larger *relative* errors; and where
θ ± ε moves some hidden unit across a kink (Z = 0 of an activation whose record
says ``kink``, like ReLU) the loss is not smooth there, so the entry is flagged
``kink`` rather than compared.

Dropout: a training step's gradients are those of the network with that step's masks
(``M1, …``, :attr:`Trace.masks`), so the check holds the same masks fixed on both sides;
without masks it checks the network with nothing dropped.

Batch norm: the loss on both sides is the training step's, normalised with the batch's own
mean and variance (the function backprop differentiates), and the kinks are those of ``N``,
what the activation is applied to. Its ``db`` is exactly 0 (the mean subtraction cancels any
bias); finite differences of a function that does not depend on ``b`` give rounding noise of
about 1e-11, so an exact 0 against a numerical value below ``ZERO_AGREES`` counts as agreement.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.engine.network import MLP

AGREES = 1e-5   # relative error below which backprop and finite differences agree
ZERO_AGREES = 1e-9   # an exact 0 from backprop agrees with a numerical gradient smaller than this


@dataclass(frozen=True)
class GradCheck:
    param: str
    index: tuple[int, ...]
    backprop: float
    numeric: float
    rel_error: float
    kink: bool = False

    @property
    def abs_error(self) -> float:
        return abs(self.backprop - self.numeric)


def relative_error(a: float, b: float) -> float:
    denom = abs(a) + abs(b)
    return 0.0 if denom < 1e-300 else abs(a - b) / denom


def random_entries(net: MLP, n: int, seed: int = 0, params=None) -> list[tuple[str, tuple[int, ...]]]:
    """``n`` entries spread over all parameters (each parameter gets its share)."""
    rng = np.random.default_rng(seed)
    names = list(params or net.trained)
    out = []
    for i in range(n):
        name = names[i % len(names)]
        shape = net.params[name].shape
        out.append((name, tuple(int(rng.integers(s)) for s in shape)))
    return out


def check_gradients(net: MLP, X: np.ndarray, y: np.ndarray, entries=None, *, n: int = 12,
                    eps: float = 1e-5, seed: int = 0, masks: dict | None = None) -> list[GradCheck]:
    """Compare ``dW``/``db`` from backprop with finite differences at ``entries``
    (a list of ``(param, index)``; ``n`` random ones when not given), with dropout's
    ``masks`` held fixed when given."""
    net64 = net.astype(np.float64)
    X = np.asarray(X, np.float64)
    y = np.asarray(y)
    masks = {k: np.asarray(v, np.float64) for k, v in masks.items()} if masks else None
    trace = net64.forward_backward(X, y, masks=masks)
    entries = entries or random_entries(net64, n, seed)
    results = []
    for name, index in entries:
        index = tuple(int(i) for i in np.atleast_1d(index))
        base = net64.params[name]
        losses, patterns = [], set()
        for sign in (+1, -1):
            p = dict(net64.params)
            p[name] = base.copy()
            p[name][index] += sign * eps
            v = net64.forward(X, p, masks=masks, train=True)
            losses.append(float(net64.sample_losses(v, y).mean()))
            patterns.add(b"".join((v[trace.pre(l)] > 0).tobytes() for l in range(1, net64.n_layers)))
        numeric = (losses[0] - losses[1]) / (2 * eps)
        bp = float(trace["d" + name][index])
        kink = len(patterns) > 1 and net64.act.kink
        rel = 0.0 if bp == 0 and abs(numeric) < ZERO_AGREES else relative_error(bp, numeric)
        results.append(GradCheck(name, index, bp, numeric, rel, kink))
    return results
