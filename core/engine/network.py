"""The multilayer perceptron, written so it can be read next to its math.

Samples are rows. For the seed's network 784 → 64 → 64 → 10:

    Z1 = X  W1 + b1      A1 = relu(Z1)          X  (m, 784)   W1 (784, 64)
    Z2 = A1 W2 + b2      A2 = relu(Z2)          A1 (m, 64)    W2 (64, 64)
    Z3 = A2 W3 + b3      A3 = softmax(Z3)       A2 (m, 64)    W3 (64, 10)
    L  = mean_i  -log A3[i, y_i]

    dZ3 = (A3 - Y) / m                          (softmax and cross-entropy fused)
    dW3 = A2.T dZ3     db3 = sum_i dZ3[i]       dA2 = dZ3 W3.T
    dZ2 = dA2 * relu'(Z2)  ...  down to dW1 = X.T dZ1, db1 = sum_i dZ1[i]

``dQ`` always holds ∂L/∂Q, the derivative of the mean loss with respect to Q.

One call, :meth:`MLP.step`, runs forward → loss → backward → update on one
mini-batch and returns a :class:`Trace` holding every one of those quantities.
The trainer calls the very same method for each of the 641,000 mini-batches of
the full run: there is no separate fast path.

Why recording is free: every array in the trace is one the step computes
anyway, and parameters are never modified in place. An update builds new
arrays ``W1 + ΔW1``, so the trace can keep the parameters *before* the step
(the arrays the forward pass used) and *after* it by reference, without a copy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import numpy as np

from core.engine.activations import ACTIVATIONS, Activation
from core.engine.explained import tex_name

PHASES = ("forward", "loss", "backward", "update")

IMAGE_SIDE = 28                     # the digits are 28×28 pictures ...
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE  # ... so a row of X holds 784 pixels
N_CLASSES = 10                      # one output per digit 0–9
MAX_HIDDEN_LAYERS, MAX_UNITS = 3, 512   # the largest network the engine (and so the app) builds
DTYPES = ("float32", "float64")     # what the parameters may be stored in

# A step may make no layer's weights more than this many times larger (‖W + ΔW‖ ≤ 10 ‖W‖).
# Healthy steps of every setting we tried, batch sizes 1 to 4096 included, stay under 2;
# the steps that blow a network up (SGD at η = 50, Adam at η = 10, sigmoid at η = 100) make
# some layer 25 to 1000 times larger in one go.
MAX_GROWTH = 10.0
MIN_WEIGHT = 1e-3   # a layer's size counts as at least this per weight, so a layer of zeros may start to move
MAX_DROPOUT = 0.9   # dropout drops each hidden unit with probability p, 0 ≤ p ≤ this (0: off, the seed's)
BN_EPS = 1e-5       # batch norm: Ẑ = (Z − μ)/√(σ² + ε), so a unit that is constant over the batch gives 0, not 0/0
BN_MOMENTUM = 0.9   # batch norm's running statistics: run ← 0.9·run + 0.1·(this batch's), used at evaluation
BN_EPS_TEX = "10^{%d}" % round(math.log10(BN_EPS))   # ε as LaTeX (a power of ten)
BN_EPS_TEXT = "10" + str(round(math.log10(BN_EPS))).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
BN_ONE_IMAGE = ("Batch norm needs batches of at least 2 images: a batch of one has no spread to normalise by "
                "(every Ẑ would be 0, no weight would learn, and the running variance would shrink towards 0).")
RUN = "_run"        # the suffix of a running statistic (μ1_run, σ²1_run): kept with the parameters, never trained


def is_trained(name: str) -> bool:
    """Whether the optimizer trains parameter ``name``: W, b, γ, β are; batch norm's running
    statistics (``μ1_run``, ``σ²1_run``) are not, each step averages them in instead."""
    return not name.endswith(RUN)


def trained_names(n_layers: int, batchnorm: bool = False) -> tuple[str, ...]:
    """The parameters an optimizer trains, in the network's order: ``W1, b1, γ1, β1, W2, …`` (γ, β
    only with batch norm, only on hidden layers)."""
    return tuple(n for l in range(1, n_layers + 1)
                 for n in (f"W{l}", f"b{l}") + ((f"γ{l}", f"β{l}") if batchnorm and l < n_layers else ()))


def pre_name(l: int, n_layers: int, batchnorm: bool) -> str:
    """What layer ``l``'s activation is applied to: ``Z{l}``, or ``N{l}`` for a hidden layer with batch norm."""
    return f"N{l}" if batchnorm and l < n_layers else f"Z{l}"


def dropout_masks(net: "MLP", m: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Inverted dropout's masks for a batch of ``m``: ``M1 … M_{L-1}``, one per hidden layer, each
    entry kept (1/(1−p)) with probability 1 − p and dropped (0) with probability p. Empty when p = 0."""
    p = net.dropout
    if not p:
        return {}
    keep, scale = 1.0 - p, net.dtype.type(1.0 / (1.0 - p))
    return {f"M{l}": (rng.random((m, net.sizes[l])) < keep).astype(net.dtype) * scale
            for l in range(1, net.n_layers)}


class DivergenceError(ArithmeticError):
    """A step that would break the network, refused: the parameters stay as they were.

    Either the update would have made the parameters non-finite or some layer's
    weights more than ``MAX_GROWTH`` times larger (``trace`` holds the whole step up to
    the refused update ``ΔW``; ``layer``, ``before`` and ``after`` say which layer and
    its ‖W‖ before and after), or the loss was not finite (``already_broken``: the
    network was broken before this step, which a smaller step cannot mend; ``trace``
    ends at the loss). ``advice`` is filled in by the trainer: where it happened and
    what to try.
    """

    def __init__(self, message: str, trace: "Trace | None" = None, *, layer: int | None = None,
                 before: float | None = None, after: float | None = None, already_broken: bool = False):
        super().__init__(message)
        self.trace = trace
        self.layer, self.before, self.after = layer, before, after
        self.already_broken = already_broken
        self.advice = message


def to_float(X_u8: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Pixels 0–255 → [0, 1] in the network's dtype (the seed divides by 255)."""
    return np.divide(X_u8, 255, dtype=dtype)


# --------------------------------------------------------------------------- initialisations
@dataclass(frozen=True)
class Init:
    """How the weights start: ``W_l ~ scale(fan_in) · N(0, 1)``, biases zero."""

    key: str                          # what settings, checkpoints and the command line store
    name: str                         # for sentences: "He initialisation"
    rule: str                         # the distribution, for a menu
    scale: Callable[[int], float]     # the standard deviation, from the layer's fan-in

    @property
    def label(self) -> str:
        return f"{self.name}: {self.rule}"


INITS: dict[str, Init] = {i.key: i for i in (
    Init("seed", "seed", "0.01·N(0,1)", lambda fan_in: 0.01),
    Init("he", "He", "N(0, 2/fan_in)", lambda fan_in: float(np.sqrt(2.0 / fan_in))),
)}


# --------------------------------------------------------------------------- the trace
@dataclass(frozen=True)
class RecordSpec:
    """What one named quantity of a step is: the same for every step of a network."""

    name: str
    phase: str
    layer: int
    latex: str
    inputs: tuple[str, ...]
    about: str


@dataclass(frozen=True)
class Record:
    spec: RecordSpec
    value: np.ndarray

    name = property(lambda self: self.spec.name)
    phase = property(lambda self: self.spec.phase)
    layer = property(lambda self: self.spec.layer)
    latex = property(lambda self: self.spec.latex)
    inputs = property(lambda self: self.spec.inputs)
    about = property(lambda self: self.spec.about)
    shape = property(lambda self: np.shape(self.value))


class Trace(Mapping):
    """Every named quantity of one step, in the order the step produced them.

    ``trace["Z1"]`` is the array; :meth:`records` pairs each value with its
    name, phase, layer, LaTeX equation and inputs, so a page can draw the whole
    step from the trace alone. A trace of ``forward_backward`` stops after the
    backward phase; a trace of ``step`` also holds ``ΔW1 … W1_new …``.

    It also says what it came from: the network's ``sizes`` and hidden
    ``activation`` (the :class:`Activation` record), and for a step, the
    ``hyper`` of the optimizer that made the update (``{"optimizer": "sgd",
    "lr": 0.1, …}``, see ``core.engine.optim``).
    """

    __slots__ = ("values", "specs", "sizes", "activation", "hyper", "dropout", "augment", "batchnorm")

    def __init__(self, values: dict, specs: tuple[RecordSpec, ...], *, sizes, activation: Activation,
                 hyper: dict | None = None, dropout: float = 0.0, batchnorm: bool = False):
        self.values = values
        self.specs = specs
        self.sizes = tuple(sizes)
        self.activation = activation
        self.hyper = hyper
        self.dropout = dropout     # p of the dropout masks M1, M2, … this step applied (0: none)
        self.augment = None        # a training step's core.engine.augment.Augmentation: X is its images moved
        self.batchnorm = batchnorm  # the hidden layers normalise Z over the batch: Ẑ, N = γ ⊙ Ẑ + β, A = f(N)

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def __getitem__(self, name):
        return self.values[name]

    def __iter__(self) -> Iterator[str]:
        return (s.name for s in self.specs if s.name in self.values)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @property
    def trained(self) -> tuple[str, ...]:
        """The names of the parameters the optimizer trains, in order: W1, b1 (γ1, β1 with batch norm), W2, …"""
        return trained_names(self.n_layers, self.batchnorm)

    def pre(self, l: int) -> str:
        """What hidden layer ``l``'s activation is applied to: ``Z{l}``, or ``N{l}`` with batch norm."""
        return pre_name(l, self.n_layers, self.batchnorm)

    @property
    def masks(self) -> dict[str, np.ndarray]:
        """Dropout's masks ``M1, …`` this step applied (empty without dropout)."""
        return {f"M{l}": self.values[f"M{l}"] for l in range(1, self.n_layers) if f"M{l}" in self.values}

    @property
    def loss(self) -> float:
        return float(self.values["loss"])

    def records(self, phase: str | None = None) -> list[Record]:
        return [Record(s, self.values[s.name]) for s in self.specs
                if s.name in self.values and (phase is None or s.phase == phase)]

    def spec(self, name: str) -> RecordSpec:
        for s in self.specs:
            if s.name == name:
                return s
        raise KeyError(name)

    def update_ratio(self, l: int) -> float:
        """‖ΔW_l‖/‖W_l‖, this step's update of layer ``l`` against its weights before it:
        Karpathy's "is the learning rate sane" number (healthy near ``history.TYPICAL_RATIO``).
        A refused update's trace holds its ``ΔW`` too, so it has a ratio as well."""
        W = np.asarray(self.values[f"W{l}"], np.float64)
        d = np.asarray(self.values[f"ΔW{l}"], np.float64)
        return float(np.linalg.norm(d) / max(np.linalg.norm(W), 1e-300))

    @property
    def nbytes(self) -> int:
        """Bytes held by the distinct arrays of this trace (shared arrays counted once)."""
        seen, total = set(), 0
        for v in self.values.values():
            if isinstance(v, np.ndarray) and id(v) not in seen:
                seen.add(id(v))
                total += v.nbytes
        return total


# --------------------------------------------------------------------------- the network
class MLP:
    """A fully connected network: ``sizes = [784, 64, 64, 10]`` gives the seed's.

    ``params`` maps ``"W1", "b1", …`` to arrays; ``W_l`` has shape
    ``(sizes[l-1], sizes[l])`` so column ``j`` of ``W1`` holds hidden neuron
    ``j``'s 784 input weights.
    """

    def __init__(self, sizes=(N_PIXELS, 64, 64, N_CLASSES), *, activation: str = "relu",
                 init: str = "seed", seed: int = 0, dtype=np.float32, params: dict | None = None,
                 dropout: float = 0.0, batchnorm: bool = False):
        sizes = [int(s) for s in sizes]
        if not 1 <= len(sizes) - 2 <= MAX_HIDDEN_LAYERS:
            raise ValueError(f"A network has 1 to {MAX_HIDDEN_LAYERS} hidden layers: sizes like "
                             f"[{N_PIXELS}, 64, 64, {N_CLASSES}].")
        if any(s < 1 for s in sizes) or any(s > MAX_UNITS for s in sizes[1:-1]):
            raise ValueError(f"Hidden layers have 1 to {MAX_UNITS} units.")
        if sizes[-1] < 2:
            raise ValueError("The output layer needs at least 2 classes.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}.")
        if init not in INITS:
            raise ValueError(f"Unknown initialisation {init!r}; choose one of {sorted(INITS)}.")
        self.sizes = sizes
        self.activation = activation
        self.init = init
        self.seed = int(seed)
        self.dtype = np.dtype(dtype)
        if self.dtype.name not in DTYPES:
            raise ValueError(f"dtype is {' or '.join(DTYPES)}.")
        dropout = float(dropout)
        if not 0.0 <= dropout <= MAX_DROPOUT:     # False for NaN
            raise ValueError(f"Dropout's p is 0 to {MAX_DROPOUT:g}, not {dropout}.")
        self.dropout = dropout
        self.batchnorm = bool(batchnorm)
        self.act = ACTIVATIONS[activation]
        self.n_layers = len(sizes) - 1
        L = self.n_layers
        # names used on every step, built once
        self._W = tuple(f"W{l}" for l in range(1, L + 1))
        self._b = tuple(f"b{l}" for l in range(1, L + 1))
        self._Z = tuple(f"Z{l}" for l in range(1, L + 1))
        self._A = ("X",) + tuple(f"A{l}" for l in range(1, L + 1))
        self._spec_cache: dict = {}
        self._identity: np.ndarray | None = None  # the one-hot rows, made on first use
        self.params = params if params is not None else self._initial_params()

    def pre(self, l: int) -> str:
        """What layer ``l``'s activation is applied to: ``Z{l}``, or ``N{l}`` with batch norm."""
        return pre_name(l, self.n_layers, self.batchnorm)

    # -- parameters ---------------------------------------------------------
    def _initial_params(self) -> dict[str, np.ndarray]:
        """Weights ``scale(fan_in)·N(0,1)`` as the init says (the seed's 0.01, He's √(2/fan_in)); biases zero."""
        rng = np.random.default_rng(self.seed)
        params = {}
        scale_of = INITS[self.init].scale
        for l, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            scale = scale_of(n_in)
            params[f"W{l}"] = (scale * rng.standard_normal((n_in, n_out))).astype(self.dtype)
            params[f"b{l}"] = np.zeros(n_out, self.dtype)
            if self.batchnorm and l < self.n_layers:    # batch norm starts as the identity: γ = 1, β = 0
                params[f"γ{l}"] = np.ones(n_out, self.dtype)
                params[f"β{l}"] = np.zeros(n_out, self.dtype)
                params[f"μ{l}{RUN}"] = np.zeros(n_out, self.dtype)
                params[f"σ²{l}{RUN}"] = np.ones(n_out, self.dtype)
        return params

    @property
    def trained(self) -> tuple[str, ...]:
        """The parameters the optimizer trains (W, b, and γ, β with batch norm), in order."""
        return trained_names(self.n_layers, self.batchnorm)

    @property
    def config(self) -> dict:
        return {"sizes": list(self.sizes), "activation": self.activation, "init": self.init,
                "seed": self.seed, "dtype": self.dtype.name, "dropout": self.dropout, "batchnorm": self.batchnorm}

    def with_params(self, params: dict) -> "MLP":
        """The same architecture holding other parameters (e.g. a snapshot)."""
        return MLP(self.sizes, activation=self.activation, init=self.init, seed=self.seed,
                   dtype=self.dtype, params=params, dropout=self.dropout, batchnorm=self.batchnorm)

    def astype(self, dtype) -> "MLP":
        net = self.with_params({k: v.astype(dtype) for k, v in self.params.items()})
        net.dtype = np.dtype(dtype)
        return net

    @property
    def n_params(self) -> int:
        return sum(v.size for v in self.params.values())

    # -- the step -----------------------------------------------------------
    def forward(self, X: np.ndarray, params: dict | None = None, values: dict | None = None,
                masks: dict | None = None, train: bool = False) -> dict:
        """Z_l = A_{l-1} W_l + b_l, A_l = f(Z_l); the last A is the softmax.

        Writes ``Z1, A1, …`` (and ``logsumexp``, the softmax normaliser the loss
        reuses) into ``values`` and returns it. With dropout's ``masks`` (a training
        step's, :func:`dropout_masks`), a hidden layer's A_l = f(Z_l) ⊙ M_l and ``M1, …``
        go into ``values`` too; without them (evaluation) nothing is dropped.

        With batch norm a hidden layer normalises Z_l first (:meth:`_normalise`):
        ``A_l = f(N_l)``, ``N_l = γ_l ⊙ Ẑ_l + β_l``. ``train``: Ẑ from this batch's mean
        and variance (``μ1, σ²1`` go into ``values``), as a training step does; otherwise
        from the running statistics, as evaluation does. Without batch norm it changes nothing.
        """
        p = self.params if params is None else params
        v = {} if values is None else values
        v["X"] = A = X
        L = self.n_layers
        for l in range(L):
            Z = A @ p[self._W[l]]
            Z += p[self._b[l]]
            v[self._Z[l]] = Z
            if l < L - 1:
                A = self.act.f(self._normalise(Z, p, l + 1, v, train) if self.batchnorm else Z)
                if masks:
                    M = v[f"M{l + 1}"] = masks[f"M{l + 1}"]
                    A = A * M
            else:
                # softmax with the row maximum subtracted, so exp never overflows
                zmax = Z.max(axis=1, keepdims=True)
                E = np.exp(Z - zmax)
                s = E.sum(axis=1, keepdims=True)
                A = E / s
                v["logsumexp"] = (zmax + np.log(s))[:, 0]
            v[self._A[l + 1]] = A
        return v

    def _normalise(self, Z: np.ndarray, p: dict, l: int, v: dict, train: bool) -> np.ndarray:
        """Batch norm of hidden layer ``l``: Ẑ = (Z − μ)/√(σ² + ε), N = γ ⊙ Ẑ + β, with μ and σ² the
        batch's (``train``: the mean and the biased variance of each unit over the samples) or the
        running ones (evaluation: one image's answer does not depend on the others in its batch)."""
        if train:
            if Z.shape[0] < 2:
                raise ValueError(BN_ONE_IMAGE)
            mu = v[f"μ{l}"] = Z.mean(axis=0)
            var = v[f"σ²{l}"] = Z.var(axis=0)
        else:
            mu, var = p[f"μ{l}{RUN}"], p[f"σ²{l}{RUN}"]
        Zhat = v[f"Ẑ{l}"] = (Z - mu) / np.sqrt(var + self.dtype.type(BN_EPS))
        N = v[f"N{l}"] = Zhat * p[f"γ{l}"] + p[f"β{l}"]
        return N

    def _normalise_backward(self, dN: np.ndarray, p: dict, v: dict, l: int) -> np.ndarray:
        """dZ from dN through batch norm of layer ``l``; writes dN, dγ, dβ, dẐ into ``v``.

        dγ = Σ_i dN ⊙ Ẑ, dβ = Σ_i dN, dẐ = dN ⊙ γ, and since every Ẑ of a unit depends on every Z
        of that unit in the batch (through μ and σ²):
        dZ = (m·dẐ − Σ_i dẐ − Ẑ ⊙ Σ_i dẐ ⊙ Ẑ) / (m √(σ² + ε))."""
        Zhat = v[f"Ẑ{l}"]
        m = Zhat.shape[0]
        v[f"dN{l}"] = dN
        v[f"dγ{l}"] = (dN * Zhat).sum(axis=0)
        v[f"dβ{l}"] = dN.sum(axis=0)
        dZhat = v[f"dẐ{l}"] = dN * p[f"γ{l}"]
        scale = self.dtype.type(1.0 / m) / np.sqrt(v[f"σ²{l}"] + self.dtype.type(BN_EPS))
        return scale * (m * dZhat - dZhat.sum(axis=0) - Zhat * (dZhat * Zhat).sum(axis=0))

    def sample_losses(self, values: dict, y: np.ndarray) -> np.ndarray:
        """L_i = -log softmax(Z)_{i, y_i}, computed as logsumexp(Z_i) - Z_{i, y_i} so
        that a tiny probability gives a large finite loss, not log(0)."""
        return values["logsumexp"] - values[self._Z[-1]][np.arange(len(y)), y]

    def forward_backward(self, X: np.ndarray, y: np.ndarray, params: dict | None = None,
                         masks: dict | None = None) -> Trace:
        """Forward, loss and backward on one mini-batch; no update. ``masks``: dropout's,
        held as given (a step draws them, :meth:`step`; a gradient check holds them fixed).

        Raises :class:`DivergenceError` (carrying the partial trace) when the
        loss is not finite: then there is no gradient to follow.
        """
        p = self.params if params is None else params
        X = np.asarray(X)
        if X.dtype != self.dtype:
            X = X.astype(self.dtype)
        y = np.asarray(y)
        m = X.shape[0]
        L = self.n_layers
        v: dict = {}
        for name in self.trained:  # the parameters this step reads, for the trace
            v[name] = p[name]
        v["y"] = y
        self.forward(X, p, v, masks, train=True)
        Aout = v[self._A[-1]]
        v["losses"] = losses = self.sample_losses(v, y)
        del v["logsumexp"]
        v["loss"] = loss = losses.sum() / m
        if not np.isfinite(loss):
            raise DivergenceError("The loss is not a finite number: the network's outputs overflowed, so there "
                                  "is no gradient to follow.", self._trace(v, None), already_broken=True)

        # backward: softmax + cross-entropy fused, dZ_L = (A_L - Y) / m
        v["Y"] = Y = self.one_hot(y)
        dZ = Aout - Y
        dZ *= self.dtype.type(1.0 / m)
        for l in range(L - 1, -1, -1):
            v["d" + self._Z[l]] = dZ
            A_prev = v[self._A[l]]
            v["d" + self._W[l]] = A_prev.T @ dZ
            # batch norm subtracts the batch mean right after adding b, so b cannot move the loss: db = 0 exactly
            normed = self.batchnorm and l < L - 1
            v["d" + self._b[l]] = np.zeros_like(p[self._b[l]]) if normed else dZ.sum(axis=0)
            if l > 0:  # dX is never needed, so its (m × 784) product is skipped
                dA = dZ @ p[self._W[l]].T
                v["d" + self._A[l]] = dA
                pre = v[self.pre(l)]   # what f was applied to
                if masks:   # dropout: only the kept units pass the blame on, scaled as they were
                    dZ = self.act.backward(dA * v[f"M{l}"], pre, self.act.f(pre))
                else:
                    dZ = self.act.backward(dA, pre, v[self._A[l]])
                if self.batchnorm:      # that was dN; on through the normalisation to dZ
                    dZ = self._normalise_backward(dZ, p, v, l)
        return self._trace(v, None)

    def _trace(self, values: dict, optimizer) -> Trace:
        dropped = "M1" in values
        return Trace(values, self._specs(optimizer, dropped), sizes=self.sizes, activation=self.act,
                     hyper=None if optimizer is None else dict(optimizer.hyper),
                     dropout=self.dropout if dropped else 0.0, batchnorm=self.batchnorm)

    def one_hot(self, y: np.ndarray) -> np.ndarray:
        """Y_ic = 1[y_i = c]: row y_i of the identity matrix, for every sample i."""
        if self._identity is None or self._identity.dtype != self.dtype:
            self._identity = np.eye(self.sizes[-1], dtype=self.dtype)
        return self._identity.take(y, axis=0)

    def gradients(self, trace: Mapping) -> dict[str, np.ndarray]:
        return {name: trace["d" + name] for name in self.trained}

    def step(self, X: np.ndarray, y: np.ndarray, optimizer, rng: np.random.Generator | None = None) -> Trace:
        """forward → loss → backward → update on one mini-batch; returns the trace.

        With dropout (p > 0) the step draws its masks from ``rng`` (the trainer gives each
        step its own, :func:`core.engine.trainer.step_rng`, so a run is the same run bit for
        bit; without one, from the network's seed).

        The update is ``W_new = W + ΔW`` with ``ΔW`` from the optimizer; the
        network then holds the new arrays. A step is judged by what it does to
        the network: if its loss is not finite, or the parameters it produces
        are not finite or blow up (see :meth:`judge`), it raises
        :class:`DivergenceError` and leaves the parameters and the optimizer's
        state as they were, so the network kept is the last healthy one.
        """
        masks = None
        if self.dropout:
            masks = dropout_masks(self, np.shape(X)[0], rng if rng is not None else np.random.default_rng(self.seed))
        try:
            trace = self.forward_backward(X, y, masks=masks)
        except DivergenceError as err:
            err.trace.specs = self._specs(optimizer, bool(masks))
            err.trace.hyper = dict(optimizer.hyper)
            raise
        v = trace.values
        state = optimizer.state()   # references: an update replaces its state arrays, never writes into them
        deltas = optimizer.update({k: self.params[k] for k in self.trained}, self.gradients(v))
        keep = self.dtype.type(BN_MOMENTUM)
        new = {}
        for name, p in self.params.items():
            if is_trained(name):
                d = deltas[name]
                v["Δ" + name] = d
                new[name] = p + d
            else:   # a running statistic: μ1_run ← 0.9·μ1_run + 0.1·μ1 (the batch's)
                v[name] = p
                new[name] = keep * p + (1 - keep) * v[name.removesuffix(RUN)]
        trace.specs = self._specs(optimizer, bool(masks))
        trace.hyper = dict(optimizer.hyper)
        problem = self.judge(self.params, new)
        if problem is not None:
            optimizer.load_state(state)
            problem.trace = trace
            raise problem
        for name, p in new.items():
            v[name + "_new"] = p
        self.params = new
        return trace

    def judge(self, before: dict, after: dict) -> DivergenceError | None:
        """Why an update from ``before`` to ``after`` would break the network, or None.

        Broken: a parameter that is not a finite number, or a layer whose weights
        would be more than ``MAX_GROWTH`` times larger, ‖W + ΔW‖ > 10 ‖W‖ (Frobenius
        norms). Only a far too large step does that; whatever the batch size, the
        loss of a batch is no such sign (one confidently wrong image can make it 50).
        """
        for l, name in enumerate(self._W, start=1):
            a, b = _norm(before[name]), _norm(after[name])
            if b <= MAX_GROWTH * max(a, MIN_WEIGHT * math.sqrt(before[name].size)):   # False for inf and NaN
                continue
            if not np.isfinite(after[name]).all():
                return DivergenceError(f"This step's update of W{l} is not a finite number: the weights are "
                                       "blowing up.", layer=l, before=a, after=b)
            r = b / a if a > 0 else math.inf
            times = f"{r:,.0f}" if r >= 100 else f"{r:.3g}" if math.isfinite(r) else "far more than 10"
            return DivergenceError(f"This step would have made the weights of layer {l} {times} times larger "
                                   f"(‖W{l}‖ from {a:.3g} to {b:.3g}): the weights are blowing up.",
                                   layer=l, before=a, after=b)
        for name in self.trained:
            if name not in self._W and not np.isfinite(after[name]).all():
                l = int(name[-1])
                return DivergenceError(f"This step's update of {name} is not a finite number: the weights are "
                                       "blowing up.", layer=l)
        return None

    # -- what each quantity is (static per architecture and optimizer) -------------------
    def _specs(self, optimizer, dropped: bool = False) -> tuple[RecordSpec, ...]:
        key = (None if optimizer is None else optimizer.describe_key(), dropped)
        if key not in self._spec_cache:
            self._spec_cache[key] = build_specs(self, optimizer, dropped)
        return self._spec_cache[key]


def loss_after_update(trace: Trace) -> float | None:
    """The batch's mean loss through the parameters the update made (the engine's own forward
    and loss on the trace's X and y, and dropout's masks if it had them): what the step did to the loss
    of the batch it trained on.
    None for a trace without an update (a step that diverged, a forward_backward)."""
    names = trace.trained
    if any(n + "_new" not in trace for n in names):
        return None
    X = np.asarray(trace["X"])
    net = MLP(trace.sizes, activation=trace.activation.key, dtype=X.dtype,
              params={n: np.asarray(trace[n + "_new"]) for n in names}, batchnorm=trace.batchnorm)
    # dropout: the masks the step trained with, held; batch norm: the batch's own statistics, as in training
    values = net.forward(X, masks=trace.masks, train=True)
    return float(net.sample_losses(values, np.asarray(trace["y"])).mean())


def _norm(a: np.ndarray) -> float:
    """‖a‖, the Frobenius norm (inf when it overflows, NaN when a holds a NaN)."""
    flat = a.ravel()
    return math.sqrt(float(np.dot(flat, flat)))


def build_specs(net: MLP, optimizer=None, dropped: bool = False) -> tuple[RecordSpec, ...]:
    """Name, phase, layer, LaTeX and a line of explanation for every quantity of a step
    (``dropped``: a training step with dropout, whose masks ``M1, …`` are quantities too;
    with batch norm, ``γ, β, μ, σ², Ẑ, N`` of each hidden layer and their gradients)."""
    L, sizes, act, bn = net.n_layers, net.sizes, net.act, net.batchnorm
    out = []

    def add(name, phase, layer, latex, inputs, about):
        out.append(RecordSpec(name, phase, layer, latex, tuple(inputs), about))

    def on_pre(tex: str, l: int) -> str:
        """An activation's formula for layer l, applied to N_l instead of Z_l under batch norm."""
        return tex.replace(f"Z_{{{l}}}", f"N_{{{l}}}") if bn else tex

    eps = rf"\epsilon = {BN_EPS_TEX}"
    add("X", "forward", 0, r"X \in \mathbb{R}^{m \times %d}" % sizes[0], [],
        f"The mini-batch: one image per row, {sizes[0]} pixels scaled to [0, 1].")
    add("y", "forward", 0, r"y \in \{0, \dots, %d\}^m" % (sizes[-1] - 1), [],
        "The true digit of each image in the batch.")
    for l in range(1, L + 1):
        prev = "X" if l == 1 else f"A{l-1}"
        prev_tex = "X" if l == 1 else f"A_{{{l-1}}}"
        normed = bn and l < L
        pre = pre_name(l, L, bn)
        add(f"W{l}", "forward", l, rf"W_{{{l}}} \in \mathbb{{R}}^{{{sizes[l-1]} \times {sizes[l]}}}", [],
            f"Layer {l}'s weights before this step: column j holds unit j's {sizes[l-1]} input weights.")
        add(f"b{l}", "forward", l, rf"b_{{{l}}} \in \mathbb{{R}}^{{{sizes[l]}}}", [],
            f"Layer {l}'s biases before this step, one per unit"
            + (" (with batch norm they change nothing: the batch's mean is subtracted right after)." if normed else "."))
        if normed:
            add(f"γ{l}", "forward", l, rf"\gamma_{{{l}}} \in \mathbb{{R}}^{{{sizes[l]}}}", [],
                f"Batch norm's scale for layer {l} before this step, one per unit (it starts at 1): trained like the weights.")
            add(f"β{l}", "forward", l, rf"\beta_{{{l}}} \in \mathbb{{R}}^{{{sizes[l]}}}", [],
                f"Batch norm's shift for layer {l} before this step, one per unit (it starts at 0): trained like the weights.")
        add(f"Z{l}", "forward", l, rf"Z_{{{l}}} = {prev_tex}\, W_{{{l}}} + b_{{{l}}}", [prev, f"W{l}", f"b{l}"],
            f"Each unit's weighted input: row i is sample i, column j is unit j (m × {sizes[l]}).")
        if normed:
            add(f"μ{l}", "forward", l, rf"\mu_{{{l}}} = \frac{{1}}{{m}} \sum_i Z_{{{l},i}}", [f"Z{l}"],
                f"Batch norm: each unit's mean weighted input over the {'batch'} (one number per unit).")
            add(f"σ²{l}", "forward", l, rf"\sigma^2_{{{l}}} = \frac{{1}}{{m}} \sum_i (Z_{{{l},i}} - \mu_{{{l}}})^2",
                [f"Z{l}", f"μ{l}"], "Batch norm: each unit's variance over the batch (divided by m, not m − 1).")
            add(f"Ẑ{l}", "forward", l,
                rf"\hat Z_{{{l}}} = \frac{{Z_{{{l}}} - \mu_{{{l}}}}}{{\sqrt{{\sigma^2_{{{l}}} + \epsilon}}}},\quad {eps}",
                [f"Z{l}", f"μ{l}", f"σ²{l}"],
                "Z normalised: every column (unit) now has mean 0 and variance 1 over the batch, whatever the "
                "weights below did. At evaluation the running μ and σ² are used instead of the batch's.")
            add(f"N{l}", "forward", l, rf"N_{{{l}}} = \gamma_{{{l}}} \odot \hat Z_{{{l}}} + \beta_{{{l}}}",
                [f"Ẑ{l}", f"γ{l}", f"β{l}"],
                "Scaled by γ and shifted by β, one of each per unit, so the layer can learn the mean and spread "
                "that suit its activation (γ = 1, β = 0 keeps Ẑ).")
        if l < L and dropped:
            p = net.dropout
            add(f"M{l}", "forward", l,
                rf"M_{{{l}}} = \frac{{\mathbf{{1}}[\text{{kept}}]}}{{1 - p}} \in \{{0,\ {1 / (1 - p):.4g}\}}"
                rf",\quad P(\text{{kept}}) = 1 - p = {1 - p:g}", [],
                f"Dropout's mask for layer {l}: each unit of each sample is dropped (0) with probability p = {p:g} "
                f"or kept and scaled by 1/(1 − p) = {1 / (1 - p):.4g}, so the layer's mean output stays the same. "
                "Drawn anew every training step; at evaluation nothing is dropped.")
            add(f"A{l}", "forward", l, rf"A_{{{l}}} = M_{{{l}}} \odot \tilde A_{{{l}}},\quad "
                + on_pre(act.latex.format(l=l), l).replace(f"A_{{{l}}}", rf"\tilde A_{{{l}}}", 1),
                [pre, f"M{l}"],
                f"Layer {l}'s activations: {act.label} applied to every entry of {pre}, times the mask M{l} "
                "(a dropped unit gives 0).")
        elif l < L:
            add(f"A{l}", "forward", l, on_pre(act.latex.format(l=l), l), [pre],
                f"Layer {l}'s activations: {act.label} applied to every entry of {pre}.")
        else:
            add(f"A{l}", "forward", l,
                rf"A_{{{l}}} = \mathrm{{softmax}}(Z_{{{l}}}),\quad A_{{{l},ic}} = \frac{{e^{{Z_{{{l},ic}}}}}}{{\sum_k e^{{Z_{{{l},ik}}}}}}",
                [f"Z{l}"], "The predicted probability of each digit: every row sums to 1.")
    add("losses", "loss", L, rf"L_i = -\log A_{{{L},\,i\,y_i}}", [f"A{L}", "y"],
        "Each sample's cross-entropy: small when the true digit got a high probability.")
    add("loss", "loss", L, r"L = \frac{1}{m} \sum_i L_i", ["losses"],
        "The mean loss over the batch: the number gradient descent makes smaller.")
    add("Y", "backward", L, r"Y_{ic} = \mathbf{1}[y_i = c]", ["y"],
        "The labels one-hot encoded, to compare with the probabilities.")
    for l in range(L, 0, -1):
        prev = "X" if l == 1 else f"A{l-1}"
        prev_tex = "X" if l == 1 else f"A_{{{l-1}}}"
        normed = bn and l < L
        pre, dpre = (f"N{l}", f"dN{l}") if normed else (f"Z{l}", f"dZ{l}")
        if l == L:
            add(f"dZ{l}", "backward", l, rf"dZ_{{{l}}} = \frac{{1}}{{m}} (A_{{{l}}} - Y)", [f"A{l}", "Y"],
                "∂L/∂Z at the output: softmax and cross-entropy together give simply (probabilities − truth)/m.")
        elif dropped:
            add(dpre, "backward", l, on_pre(rf"dZ_{{{l}}} = (dA_{{{l}}} \odot M_{{{l}}}) \odot f'(Z_{{{l}}})", l),
                [f"dA{l}", f"M{l}", pre],
                f"∂L/∂{pre}: the blame through the mask (a dropped unit gets none, a kept one 1/(1 − p) of it), "
                f"times the slope of {act.label} at {pre}.")
        else:
            add(dpre, "backward", l, on_pre(act.grad_latex.format(l=l), l), [f"dA{l}", pre],
                f"∂L/∂{pre}: {act.dz_about}.")
        if normed:
            add(f"dγ{l}", "backward", l, rf"d\gamma_{{{l}}} = \sum_i dN_{{{l},i}} \odot \hat Z_{{{l},i}}",
                [f"dN{l}", f"Ẑ{l}"], f"∂L/∂γ{l}: how much scaling each unit's Ẑ up would raise the loss, summed over the batch.")
            add(f"dβ{l}", "backward", l, rf"d\beta_{{{l}}} = \sum_i dN_{{{l},i}}", [f"dN{l}"],
                f"∂L/∂β{l}: β is added to every sample, so its gradient is dN{l} summed over the batch.")
            add(f"dẐ{l}", "backward", l, rf"d\hat Z_{{{l}}} = dN_{{{l}}} \odot \gamma_{{{l}}}", [f"dN{l}", f"γ{l}"],
                f"∂L/∂Ẑ{l}: the blame on N, scaled by each unit's γ.")
            add(f"dZ{l}", "backward", l,
                rf"\begin{{aligned}} dZ_{{{l}}} &= \frac{{1}}{{m \sqrt{{\sigma^2_{{{l}}} + \epsilon}}}} \Bigl(m\, d\hat Z_{{{l}}} "
                rf"- \sum_i d\hat Z_{{{l},i}} \\ &\qquad - \hat Z_{{{l}}} \odot \sum_i d\hat Z_{{{l},i}} \odot "
                rf"\hat Z_{{{l},i}}\Bigr) \end{{aligned}}",     # two lines: the stepper's equation column is narrow
                [f"dẐ{l}", f"Ẑ{l}", f"σ²{l}"],
                f"∂L/∂Z{l} through the normalisation: every Ẑ of a unit depends on every sample's Z through μ and "
                "σ², so each entry's blame loses the column's mean blame and the part along Ẑ.")
        add(f"dW{l}", "backward", l, rf"dW_{{{l}}} = {prev_tex}^\top dZ_{{{l}}}", [prev, f"dZ{l}"],
            f"∂L/∂W{l}: same shape as W{l}; entry (k, j) sums input k × error of unit j over the batch.")
        if normed:
            add(f"db{l}", "backward", l, rf"db_{{{l}}} = \sum_i dZ_{{{l},i}} = 0", [f"dZ{l}"],
                f"∂L/∂b{l} is exactly 0 with batch norm: b{l} shifts a whole column of Z{l}, and the batch's mean "
                "is subtracted right after, so b cannot change the loss (β does its job). The engine stores 0; "
                f"the column sums of dZ{l} are 0 up to rounding.")
        else:
            add(f"db{l}", "backward", l, rf"db_{{{l}}} = \sum_i dZ_{{{l},i}}", [f"dZ{l}"],
                f"∂L/∂b{l}: the error of each unit summed over the batch.")
        if l > 1:
            add(f"dA{l-1}", "backward", l - 1, rf"dA_{{{l-1}}} = dZ_{{{l}}}\, W_{{{l}}}^\top", [f"dZ{l}", f"W{l}"],
                f"∂L/∂A{l-1}: each unit's share of the blame, sent back through W{l}.")
    if optimizer is not None:
        for l in range(1, L + 1):
            for p in trained_names(L, bn):
                if int(p[-1]) != l:
                    continue
                add("Δ" + p, "update", l, optimizer.latex(p), [p, "d" + p],
                    f"The change the optimizer ({optimizer.name}) makes to {p}.")
                add(p + "_new", "update", l,
                    rf"{tex_name(p)} \leftarrow {tex_name(p)} + {tex_name('Δ' + p)}", [p, "Δ" + p],
                    f"{p} after the step: what the next mini-batch will see.")
            if bn and l < L:
                for stat, what in ((f"μ{l}", "mean"), (f"σ²{l}", "variance")):
                    run = stat + RUN
                    add(run, "update", l, rf"{tex_name(run)} \in \mathbb{{R}}^{{{sizes[l]}}}", [],
                        f"Batch norm's running {what} of layer {l} before this step: what evaluation normalises with "
                        f"(it starts at {0 if what == 'mean' else 1}). Not trained: each step averages its batch's in.")
                    add(run + "_new", "update", l,
                        rf"{tex_name(run)} \leftarrow {BN_MOMENTUM:g}\, {tex_name(run)} + {1 - BN_MOMENTUM:.1g}\, "
                        rf"{tex_name(stat)}", [run, stat],
                        f"The running {what} after the step: {BN_MOMENTUM:.0%} of what it was and {1 - BN_MOMENTUM:.0%} of this batch's {stat}, so it "
                        "follows the last few dozen batches. Evaluation and prediction use it.")
    return tuple(out)
