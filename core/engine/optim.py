"""Optimizers: each turns the gradients dW into the update ΔW it applies.

The network applies ``W ← W + ΔW``; the optimizer only decides ΔW, and returns
it so the trace can show it. State (velocities, moments) is replaced by new
arrays every step rather than changed in place, so an earlier step's state can
be kept by reference (the stepper's history relies on this).

L2 weight decay λ adds ``λ W`` to the gradient of weight matrices (not biases).

Each optimizer class says what it is once: its ``key`` (what settings,
checkpoints and the command line store), its ``label`` (for a menu), its
``name`` (for sentences), the state it keeps per parameter (``state_keys``:
``V`` gives ``V_W1``, ``V_b1``, …) and as plain counters (``counters``), its
LaTeX, and a ``divergence_tip`` for when training with it blows up. The
registry :data:`OPTIMIZERS` maps keys to classes; nothing compares names.
"""
from __future__ import annotations

import numpy as np


def _decayed(name: str, g: np.ndarray, p: np.ndarray, wd: float) -> np.ndarray:
    return g + wd * p if wd and name.startswith("W") else g


def _tex(name: str) -> tuple[str, str]:
    """"W1" → ("W_{1}", "dW_{1}")."""
    sym = f"{name[0]}_{{{name[1:]}}}"
    return sym, "d" + sym


class SGD:
    """The seed's plain gradient descent: ΔW = -η dW."""

    key = "sgd"
    label = "SGD (the seed's)"
    name = "SGD"
    state_keys: tuple[str, ...] = ()   # per parameter: "V" → V_W1, V_b1, … (each a dict attribute)
    counters: tuple[str, ...] = ()     # plain integers: Adam's step count t
    divergence_tip: str | None = None  # what to try when training with it diverges
    settings: tuple[str, ...] = ("lr", "weight_decay")   # the settings it is made from (core/lab/settings.py)

    def __init__(self, lr: float = 0.1, weight_decay: float = 0.0):
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)

    def update(self, params: dict, grads: dict) -> dict:
        lr, wd = self.lr, self.weight_decay
        return {k: -lr * _decayed(k, grads[k], params[k], wd) for k in params}

    def latex(self, name: str) -> str:
        p, g = _tex(name)
        if self.weight_decay and name.startswith("W"):
            return rf"\Delta {p} = -\eta\,({g} + \lambda {p})"
        return rf"\Delta {p} = -\eta\, {g}"

    def describe_key(self):
        return (self.key, bool(self.weight_decay))

    @classmethod
    def state_names(cls, params) -> set[str]:
        """The names :meth:`state` uses for a network with these parameter names."""
        return {f"{s}_{p}" for s in cls.state_keys for p in params} | set(cls.counters)

    def state(self) -> dict:
        out = {f"{s}_{p}": v for s in self.state_keys for p, v in getattr(self, s).items()}
        out.update({c: np.array(getattr(self, c), dtype=np.int64) for c in self.counters})
        return out

    def load_state(self, state: dict) -> None:
        for k in state:
            if k not in self.counters and k.split("_", 1)[0] not in self.state_keys:
                raise ValueError(f"{self.name} keeps no state named {k!r}.")
        for s in self.state_keys:
            setattr(self, s, {k[len(s) + 1:]: v for k, v in state.items() if k.startswith(s + "_")})
        for c in self.counters:
            setattr(self, c, int(state.get(c, 0)))

    @property
    def hyper(self) -> dict:
        return {"optimizer": self.key, "lr": self.lr, "weight_decay": self.weight_decay}


class Momentum(SGD):
    """Heavy-ball momentum: V ← μV + dW, ΔW = -η V."""

    key = "momentum"
    label = name = "SGD + momentum"
    state_keys = ("V",)
    settings = ("lr", "momentum", "weight_decay")

    def __init__(self, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.momentum = float(momentum)
        self.V: dict = {}

    def update(self, params, grads):
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        V = {}
        for k in params:
            g = _decayed(k, grads[k], params[k], wd)
            V[k] = mu * self.V[k] + g if k in self.V else g
        self.V = V
        return {k: -lr * V[k] for k in params}

    def latex(self, name):
        p, g = _tex(name)
        g = rf"({g} + \lambda {p})" if self.weight_decay and name.startswith("W") else g
        return rf"V_{{{p}}} \leftarrow \mu V_{{{p}}} + {g},\quad \Delta {p} = -\eta\, V_{{{p}}}"

    @property
    def hyper(self):
        return {"optimizer": self.key, "lr": self.lr, "momentum": self.momentum,
                "weight_decay": self.weight_decay}


class Adam(SGD):
    """Adam: bias-corrected running means of dW and dW², ΔW = -η m̂ / (√v̂ + ε)."""

    key = "adam"
    label = name = "Adam"
    state_keys = ("M", "S")
    counters = ("t",)
    divergence_tip = "plain SGD (Adam's usual learning rate is 0.001)"

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.t = 0
        self.M: dict = {}
        self.S: dict = {}

    def update(self, params, grads):
        b1, b2, wd = self.beta1, self.beta2, self.weight_decay
        self.t += 1
        # fold both bias corrections into one step size
        step = float(self.lr * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t))
        M, S, out = {}, {}, {}
        for k in params:
            g = _decayed(k, grads[k], params[k], wd)
            M[k] = b1 * self.M[k] + (1 - b1) * g if k in self.M else (1 - b1) * g
            S[k] = b2 * self.S[k] + (1 - b2) * (g * g) if k in self.S else (1 - b2) * (g * g)
            out[k] = -step * M[k] / (np.sqrt(S[k]) + self.eps)
        self.M, self.S = M, S
        return out

    def latex(self, name):
        p, g = _tex(name)
        return (rf"m \leftarrow \beta_1 m + (1-\beta_1)\,{g},\ v \leftarrow \beta_2 v + (1-\beta_2)\,{g}^2,\ "
                rf"\Delta {p} = -\eta\,\hat m / (\sqrt{{\hat v}} + \epsilon)")

    @property
    def hyper(self):
        return {"optimizer": self.key, "lr": self.lr, "beta1": self.beta1, "beta2": self.beta2,
                "eps": self.eps, "weight_decay": self.weight_decay}


OPTIMIZERS: dict[str, type[SGD]] = {cls.key: cls for cls in (SGD, Momentum, Adam)}


def make_optimizer(name: str = "sgd", lr: float = 0.1, weight_decay: float = 0.0, **kw):
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}.")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"The learning rate must be a positive number, not {lr}.")
    if not (np.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"Weight decay must be zero or positive, not {weight_decay}.")
    return OPTIMIZERS[name](lr=lr, weight_decay=weight_decay, **kw)


def from_hyper(hyper: dict):
    """Rebuild an optimizer from its ``hyper`` dict (as stored in a checkpoint)."""
    h = dict(hyper)
    name = h.pop("optimizer")
    return make_optimizer(name, **h)


def snapshot(opt):
    """A copy of the optimizer whose state can be restored later; cheap, since
    state arrays are replaced (not mutated) on every update."""
    clone = from_hyper(opt.hyper)
    clone.load_state(opt.state())
    return clone
