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
LaTeX (:meth:`latex`, one form for the whole matrix and for one cell), how it
rebuilds one cell of its update for a student (:meth:`explain_update`, with the
same arithmetic as :meth:`update`), and a ``divergence_tip`` for when training
with it blows up. The registry :data:`OPTIMIZERS` maps keys to classes; nothing
compares names.
"""
from __future__ import annotations

import inspect

from dataclasses import dataclass

import numpy as np

from core.engine.explained import Explanation, Term, by_size, cell_label, tex_cell, tex_factor, tex_name, tex_num


def _decayed(name: str, g: np.ndarray, p: np.ndarray, wd: float) -> np.ndarray:
    return g + wd * p if wd and name.startswith("W") else g


def _at(index: tuple) -> str:
    return f"[{', '.join(map(str, index))}]" if index else ""


@dataclass(frozen=True)
class UpdateCell:
    """What every optimizer's ΔW cell starts from: the gradient, weight decay folded in."""

    p: str                    # "W1"
    index: tuple[int, ...]
    value: float              # ΔW[index] as the step stored it
    g: float                  # dW[index]
    w: float                  # W[index] before the step
    lr: float
    wd: float                 # λ for a weight, 0 for a bias
    grad: float               # dW + λW

    @classmethod
    def of(cls, trace, p, index, value, optimizer) -> "UpdateCell":
        g, w = float(trace["d" + p][index]), float(trace[p][index])
        wd = optimizer.weight_decay if p.startswith("W") else 0.0
        return cls(p, index, value, g, w, optimizer.lr, wd, g + wd * w)

    @property
    def name(self) -> str:
        return "Δ" + self.p

    def gradient_terms(self) -> list[Term]:
        """−η dW, and −η λ W under weight decay."""
        c = self
        terms = [Term(f"−η·{cell_label('d' + c.p, *c.index)}", -c.lr * c.g, (c.lr, c.g))]
        if c.wd:
            terms.append(Term(f"−η·λ·{cell_label(c.p, *c.index)}", -c.lr * c.wd * c.w, (c.lr, c.wd, c.w)))
        return terms


class SGD:
    """The seed's plain gradient descent: ΔW = -η dW."""

    key = "sgd"
    label = "SGD (the seed's)"
    name = "SGD"
    state_keys: tuple[str, ...] = ()   # per parameter: "V" → V_W1, V_b1, … (each a dict attribute)
    counters: tuple[str, ...] = ()     # plain integers: Adam's step count t
    divergence_tip: str | None = None  # what to try when training with it diverges
    # what η multiplies in its update, for the learning-rate lesson (core/teach/lr_lesson.py; Markdown)
    lr_note = ("ΔW = −η dW: the step is η times the gradient, so ‖ΔW‖/‖W‖ = η ‖dW‖/‖W‖. Ten times η, ten times "
               "the ratio; and a layer whose gradient is small moves little at any η.")
    settings: tuple[str, ...] = ("lr", "weight_decay")   # the settings it is made from (core/lab/settings.py)
    constants: tuple[str, ...] = ()    # numbers it is made with that no setting offers (Adam's β1, β2, ε)

    def __init__(self, lr: float = 0.1, weight_decay: float = 0.0):
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)

    def update(self, params: dict, grads: dict) -> dict:
        lr, wd = self.lr, self.weight_decay
        return {k: -lr * _decayed(k, grads[k], params[k], wd) for k in params}

    def _gradient_tex(self, name: str, index: tuple = ()) -> str:
        """dW, or (dW + λW) under weight decay, for the matrix or one cell."""
        g = tex_cell("d" + name, index)
        return rf"({g} + \lambda\,{tex_cell(name, index)})" if self.weight_decay and name.startswith("W") else g

    def latex(self, name: str, index: tuple = ()) -> str:
        """The update rule of parameter ``name`` ("W1"), or of its cell ``index``."""
        return rf"{tex_cell('Δ' + name, index)} = -\eta\, {self._gradient_tex(name, index)}"

    def explain_update(self, c: UpdateCell) -> Explanation:
        """One cell of this optimizer's update, rebuilt; ``self`` is the optimizer as it was
        before the step (its state is what the step started from)."""
        lr, wd, g, w = c.lr, c.wd, c.g, c.w
        total = -lr * c.grad
        sub = rf"= -{tex_num(lr)} \cdot " + (rf"({tex_factor(g)} + {tex_num(wd)} \cdot {tex_factor(w)})" if wd
                                             else tex_factor(g)) + f" = {tex_num(total)}"
        note = (f"Plain gradient descent: a step of size η = {lr:g} against the gradient"
                + (" plus weight decay, which pulls every weight towards 0." if wd else "."))
        return Explanation(c.name, c.index, self.latex(c.p, c.index), sub, by_size(c.gradient_terms()), total,
                           c.value, note, "sum")

    def _gradient_numpy(self, name: str) -> str:
        """dW as NumPy source, plus λW under weight decay (what :func:`_decayed` computes)."""
        return f"(d{name} + weight_decay * {name})" if self.weight_decay and name.startswith("W") else f"d{name}"

    def numpy_update(self, names) -> str:
        """The update of parameters ``names`` as plain NumPy source, for the step's notebook
        (``core/teach/notebook.py``); ``self`` is the optimizer as it was before the step, and
        its hyperparameters and state are variables of the same names (``lr``, ``V_W1``, …), and
        the state after the step gets names of its own (``V_W1_new``), so the source can run twice."""
        return "\n".join(f"Δ{p} = -lr * {self._gradient_numpy(p)}" for p in names)

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
        """What it is made from (a checkpoint stores this; :func:`from_hyper` rebuilds it)."""
        return {"optimizer": self.key, **{n: getattr(self, n) for n in self.settings + self.constants}}


class Momentum(SGD):
    """Heavy-ball momentum: V ← μV + dW, ΔW = -η V."""

    key = "momentum"
    label = name = "SGD + momentum"
    state_keys = ("V",)
    settings = ("lr", "momentum", "weight_decay")
    lr_note = ("ΔW = −η V, where the velocity V is μ times the last steps' plus this gradient: η times the "
               "velocity, so the ratio is still proportional to η, but once V has built up it is larger than "
               "SGD's at the same η (up to 1/(1 − μ) times).")

    def __init__(self, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.momentum = float(momentum)
        self.V: dict = {}

    def _velocity(self, V0, g):
        """V ← μV + g (arrays, or one cell's numbers); V0 is None before the first step."""
        return g if V0 is None else self.momentum * V0 + g

    def update(self, params, grads):
        lr, wd = self.lr, self.weight_decay
        V = {k: self._velocity(self.V.get(k), _decayed(k, grads[k], params[k], wd)) for k in params}
        self.V = V
        return {k: -lr * V[k] for k in params}

    def latex(self, name, index=()):
        v = rf"V_{{{tex_name(name)}}}{_at(index)}"
        return (rf"{v} \leftarrow \mu {v} + {self._gradient_tex(name, index)},\quad "
                rf"{tex_cell('Δ' + name, index)} = -\eta\, {v}")

    def numpy_update(self, names):
        lines = []
        for p in names:      # the new state gets new names, so running the cell again gives the same
            g = self._gradient_numpy(p)
            lines.append(f"V_{p}_new = momentum * V_{p} + {g}" if p in self.V else
                         f"V_{p}_new = {g}    # the first step: no velocity yet")
            lines.append(f"Δ{p} = -lr * V_{p}_new")
        return "\n".join(lines)

    def explain_update(self, c):
        lr, mu, grad = c.lr, self.momentum, c.grad
        V0 = self.V.get(c.p)
        v0 = float(V0[c.index]) if V0 is not None else None
        V = self._velocity(v0, grad)
        total = -lr * V
        terms = c.gradient_terms()
        if v0 is not None:
            terms.append(Term(f"−η·μ·V_{c.p}[{','.join(map(str, c.index))}] (before)", -lr * mu * v0, (lr, mu, v0)))
        sub = (rf"= -{tex_num(lr)} \cdot ({tex_num(mu)} \cdot {tex_factor(v0 or 0.0)} + {tex_factor(grad)}) "
               rf"= {tex_num(total)}")
        note = ("The optimizer's rule (momentum): the step follows a velocity V that remembers μ of the previous "
                "steps' direction, plus this step's gradient."
                + ("" if v0 is not None else " This is its first step, so V is just the gradient."))
        return Explanation(c.name, c.index, self.latex(c.p, c.index), sub, by_size(terms), total, c.value, note,
                           "sum", (("V (new)", V),))


class Adam(SGD):
    """Adam: bias-corrected running means of dW and dW², ΔW = -η m̂ / (√v̂ + ε)."""

    key = "adam"
    label = name = "Adam"
    state_keys = ("M", "S")
    counters = ("t",)
    constants = ("beta1", "beta2", "eps")
    divergence_tip = "plain SGD (Adam's usual learning rate is 0.001)"
    lr_note = ("ΔW = −η m̂ / (√v̂ + ε): the gradient is divided by (a running mean of) its own size, so every "
               "weight moves by about η, however small its gradient (on Adam's first step, exactly η in the "
               "direction of −dW wherever dW is not tiny). For one step from the same state the ratio is still "
               "proportional to η, but its size no longer depends on the gradient's: at the same η Adam moves the "
               "weights far more than SGD. That is why Adam's usual η is 0.001, and why η = 0.1 or more throws "
               "its weights around.")

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.t = 0
        self.M: dict = {}
        self.S: dict = {}

    def _moments(self, M0, S0, g):
        """The running means m of g and v of g² (arrays, or one cell's numbers); None before
        the first step."""
        b1, b2 = self.beta1, self.beta2
        m = (1 - b1) * g if M0 is None else b1 * M0 + (1 - b1) * g
        v = (1 - b2) * (g * g) if S0 is None else b2 * S0 + (1 - b2) * (g * g)
        return m, v

    def _step_size(self, t: int) -> float:
        """η with both bias corrections folded in: η·√(1−β2ᵗ)/(1−β1ᵗ)."""
        return float(self.lr * np.sqrt(1 - self.beta2 ** t) / (1 - self.beta1 ** t))

    def update(self, params, grads):
        self.t += 1
        step = self._step_size(self.t)
        M, S, out = {}, {}, {}
        for k in params:
            M[k], S[k] = self._moments(self.M.get(k), self.S.get(k),
                                       _decayed(k, grads[k], params[k], self.weight_decay))
            out[k] = -step * M[k] / (np.sqrt(S[k]) + self.eps)
        self.M, self.S = M, S
        return out

    def latex(self, name, index=()):
        g = self._gradient_tex(name, index)
        return (rf"m \leftarrow \beta_1 m + (1-\beta_1)\,{g},\ v \leftarrow \beta_2 v + (1-\beta_2)\,{g}^2,\ "
                rf"{tex_cell('Δ' + name, index)} = -\eta\,\frac{{\sqrt{{1-\beta_2^{{t}}}}}}{{1-\beta_1^{{t}}}}\,"
                rf"\frac{{m}}{{\sqrt{{v}} + \epsilon}}")

    def numpy_update(self, names):
        lines = ["t_new = t + 1",
                 "step = float(lr * np.sqrt(1 - beta2 ** t_new) / (1 - beta1 ** t_new))    # η, bias corrections in"]
        for p in names:
            g = self._gradient_numpy(p)
            if p in self.M:
                lines += [f"M_{p}_new = beta1 * M_{p} + (1 - beta1) * {g}",
                          f"S_{p}_new = beta2 * S_{p} + (1 - beta2) * ({g} * {g})"]
            else:
                lines += [f"M_{p}_new = (1 - beta1) * {g}    # the first step: no running means yet",
                          f"S_{p}_new = (1 - beta2) * ({g} * {g})"]
            lines.append(f"Δ{p} = -step * M_{p}_new / (np.sqrt(S_{p}_new) + eps)")
        return "\n".join(lines)

    def explain_update(self, c):
        b1, eps, grad = self.beta1, self.eps, c.grad
        t = self.t + 1
        M0, S0 = self.M.get(c.p), self.S.get(c.p)
        m0 = float(M0[c.index]) if M0 is not None else None
        mt, vt = self._moments(m0, float(S0[c.index]) if S0 is not None else None, grad)
        step = self._step_size(t)
        total = -step * mt / (float(np.sqrt(vt)) + eps)
        terms = [Term(f"(1−β1)·{cell_label('d' + c.p, *c.index)}", (1 - b1) * grad, (1 - b1, grad))]
        if m0 is not None:
            terms.append(Term("β1·m (before)", b1 * m0, (b1, m0)))
        sub = (rf"= -{tex_num(step)} \cdot \frac{{{tex_num(mt)}}}{{\sqrt{{{tex_num(vt)}}} + {tex_num(eps)}}} "
               rf"= {tex_num(total)}")
        note = (f"The optimizer's rule (Adam, step t = {t}): the terms below make the running mean m of the "
                "gradient; it is divided by the root of the running mean v of the squared gradient, so every "
                "weight moves by roughly η whatever the size of its gradient.")
        return Explanation(c.name, c.index, self.latex(c.p, c.index), sub, by_size(terms), total, c.value, note,
                           "adam", (("m (new)", mt), ("v (new)", vt), ("step size η·√(1−β2ᵗ)/(1−β1ᵗ)", step)))


class RMSprop(SGD):
    """RMSprop (Hinton's lecture 6e): a running mean S of dW², ΔW = -η dW / (√S + ε).

    S starts at 0, so the first step's S is (1 − ρ) dW² (no bias correction: that is Adam's)."""

    key = "rmsprop"
    label = name = "RMSprop"
    state_keys = ("S",)
    constants = ("rho", "eps")
    divergence_tip = "plain SGD (RMSprop's usual learning rate is 0.001)"
    lr_note = ("ΔW = −η dW / (√S + ε), where S is a running mean of dW²: like Adam, the gradient is divided by "
               "its own recent size, so every weight moves by about η (on its first step by η/√(1 − ρ) ≈ 3.2 η "
               "wherever dW is not tiny). For one step from the same state the ratio is proportional to η, but "
               "at the same η RMSprop moves the weights far more than SGD: its usual η is 0.001.")

    def __init__(self, lr: float = 0.001, rho: float = 0.9, eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.rho, self.eps = float(rho), float(eps)
        self.S: dict = {}

    def _mean_square(self, S0, g):
        """S ← ρS + (1 − ρ) g² (arrays, or one cell's numbers); S0 is None before the first step."""
        return (1 - self.rho) * (g * g) if S0 is None else self.rho * S0 + (1 - self.rho) * (g * g)

    def update(self, params, grads):
        S, out = {}, {}
        for k in params:
            g = _decayed(k, grads[k], params[k], self.weight_decay)
            S[k] = self._mean_square(self.S.get(k), g)
            out[k] = -self.lr * g / (np.sqrt(S[k]) + self.eps)
        self.S = S
        return out

    def latex(self, name, index=()):
        g = self._gradient_tex(name, index)
        s = rf"S_{{{tex_name(name)}}}{_at(index)}"
        return (rf"{s} \leftarrow \rho\, {s} + (1-\rho)\,{g}^2,\quad "
                rf"{tex_cell('Δ' + name, index)} = -\eta\,\frac{{{g}}}{{\sqrt{{{s}}} + \epsilon}}")

    def numpy_update(self, names):
        lines = []
        for p in names:
            g = self._gradient_numpy(p)
            lines.append(f"S_{p}_new = rho * S_{p} + (1 - rho) * ({g} * {g})" if p in self.S else
                         f"S_{p}_new = (1 - rho) * ({g} * {g})    # the first step: no running mean yet")
            lines.append(f"Δ{p} = -lr * {g} / (np.sqrt(S_{p}_new) + eps)")
        return "\n".join(lines)

    def explain_update(self, c):
        rho, eps, grad = self.rho, self.eps, c.grad
        S0 = self.S.get(c.p)
        s0 = float(S0[c.index]) if S0 is not None else None
        s = self._mean_square(s0, grad)
        total = -c.lr * grad / (float(np.sqrt(s)) + eps)
        terms = [Term(f"(1−ρ)·{cell_label('d' + c.p, *c.index)}²", (1 - rho) * grad * grad, (1 - rho, grad, grad))]
        if s0 is not None:
            terms.append(Term(f"ρ·S_{c.p}[{','.join(map(str, c.index))}] (before)", rho * s0, (rho, s0)))
        sub = (rf"= -{tex_num(c.lr)} \cdot \frac{{{tex_factor(grad)}}}{{\sqrt{{{tex_num(s)}}} + {tex_num(eps)}}} "
               rf"= {tex_num(total)}")
        note = ("The optimizer's rule (RMSprop): the terms below make the running mean S of the squared gradient; "
                "the gradient is divided by its root, so every weight moves by roughly η whatever the size of its "
                "gradient." + ("" if s0 is not None else " This is its first step, so S is just (1 − ρ) dW²."))
        return Explanation(c.name, c.index, self.latex(c.p, c.index), sub, by_size(terms), total, c.value, note,
                           "rmsprop", (("S (new)", s), ("√S + ε", float(np.sqrt(s)) + eps)))


OPTIMIZERS: dict[str, type[SGD]] = {cls.key: cls for cls in (SGD, Momentum, RMSprop, Adam)}


def usual_lr(name: str) -> float:
    """The learning rate ``name`` is usually run with: its class's default (0.1 for SGD, 0.001 for Adam)."""
    return float(inspect.signature(OPTIMIZERS[name].__init__).parameters["lr"].default)


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
