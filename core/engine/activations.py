"""Hidden-layer activations: one record each, one registry everyone reads.

Like tensorflow/playground's ``RELU = {output, der}``: an :class:`Activation`
holds the function, its derivative, how to write both (for a whole layer and
for one cell), and the words that explain them. The engine, the explanations,
the pages, the checkpoint and the command line all read :data:`ACTIVATIONS`;
nothing decides what an activation is by its name. Adding a record to the
registry is all a new activation needs.

LaTeX strings are ``str.format`` templates (literal braces doubled):
``latex``/``grad_latex`` take ``{l}``, the layer; ``cell_latex`` takes ``{z}``,
one cell of Z (or its number); ``slope_latex`` takes ``{z}`` and ``{a}``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

LEAK = 0.01  # leaky ReLU's slope for Z ≤ 0


@dataclass(frozen=True)
class Activation:
    key: str                     # what settings, checkpoints and the command line store: "relu"
    label: str                   # what a menu shows: "ReLU"
    f: Callable                  # A = f(Z), elementwise; also used on one 0-d float64 cell
    backward: Callable           # dZ = dA ⊙ f'(Z), as (dA, Z, A) → dZ, written through Z or A
    latex: str                   # A_l = f(Z_l)
    grad_latex: str              # dZ_l = dA_l ⊙ f'(Z_l)
    cell_latex: str              # f of one cell {z}
    slope_latex: str             # f' of one cell, through {z} or {a}
    a_about: str                 # what A is after this activation, and what to look at
    dz_about: str                # what the dZ step does to the gradient, in one line
    dz_look: str                 # what to look at in dZ_{l}
    a_note: Callable[[float], str]          # one cell of A, from its z
    dz_note: Callable[[float, float], str]  # one cell of dZ, from its z and a
    kink: bool = False           # f' jumps at Z = 0: finite differences across it are not a derivative
    dies: bool = False           # a unit with Z ≤ 0 on every input passes no gradient back (a dead unit)
    suited_init: str | None = None  # the initialisation made for it (a key of network.INITS)
    # The same two rules as plain NumPy source, for the step's notebook (core/teach/notebook.py):
    # ``f_numpy`` takes ``{Z}``, ``dz_numpy`` takes ``{dA}``, ``{Z}`` and ``{A}`` (variable names).
    f_numpy: str = ""
    dz_numpy: str = ""
    # Why the slope is what it is, for the fold-outs (ui/derivations.py): f and f' as display LaTeX
    # (plain strings, not templates), and their derivation in Markdown with $…$. Optional.
    derivative_tex: str = ""
    derivative_why: str = ""


def _sigmoid(Z):
    E = np.exp(-np.abs(Z))  # never overflows; same value as 1 / (1 + exp(-Z))
    return np.where(Z >= 0, 1 / (1 + E), E / (1 + E))


_SATURATED = ("Where a unit is saturated (flat), almost nothing gets through: *look at* the entries "
              "near 0 here where `A{l}` is near its limits.")

RELU = Activation(
    key="relu", label="ReLU",
    f=lambda Z: np.maximum(Z, 0),
    backward=lambda dA, Z, A: dA * (Z > 0),
    latex=r"A_{{{l}}} = \mathrm{{ReLU}}(Z_{{{l}}}) = \max(0,\, Z_{{{l}}})",
    grad_latex=r"dZ_{{{l}}} = dA_{{{l}}} \odot \mathbf{{1}}[Z_{{{l}}} > 0]",
    cell_latex=r"\max(0,\ {z})",
    slope_latex=r"\mathbf{{1}}[{z} > 0]",
    a_about=("ReLU keeps what is positive and sets the rest to 0: the *zeros* figure in the statistics is the "
             "share of (sample, unit) pairs where the unit is silent. *Look at:* a column that is 0 for every "
             "sample is a unit that fired for none of them; if that holds for every image it is a *dead* unit, "
             "and no gradient will ever reach its weights."),
    dz_about="the gradient flowing back, let through only where the unit was active",
    dz_look=("For ReLU the slope is 1 where the unit fired and 0 where it did not, so the gradient passes only "
             "where `A{l}` was positive. *Look at:* the zeros here sit exactly where `A{l}` is 0."),
    a_note=lambda z: ("Z is positive, so the unit fires and passes it on unchanged." if z > 0 else
                      "Z is not positive, so the unit is silent: 0, and no gradient will flow back through it."),
    dz_note=lambda z, a: ("The unit fired (Z > 0), so the gradient passes through unchanged." if z > 0 else
                          "The unit did not fire (Z ≤ 0): ReLU's slope is 0 there, so this sample teaches this "
                          "unit nothing."),
    kink=True, dies=True, suited_init="he",
    f_numpy="np.maximum({Z}, 0)", dz_numpy="{dA} * ({Z} > 0)",
    derivative_tex=(r"g(z) = \max(0,\, z), \qquad g'(z) = \begin{cases} 1 & z > 0 \\ 0 & z < 0 \\ "
                    r"\text{none (a kink)} & z = 0 \end{cases}"),
    derivative_why=(
        "For $z > 0$ ReLU is the line $g(z) = z$, slope 1; for $z < 0$ it is the constant $0$, slope 0. At "
        "$z = 0$ the two lines meet in a kink: the slope from the left is 0, from the right 1, so there is no "
        "derivative there, only a choice, and any number in $[0, 1]$ is a valid one (a *subgradient*). The code "
        "takes **0**, because it tests $Z > 0$ strictly (below). An entry of $Z$ is rarely exactly 0 (it happens "
        "when every input of a unit is 0 and so is its bias), so the choice seldom matters; the gradient check "
        "leaves out the entries whose nudge crosses the kink, where finite differences measure neither slope."),
)

LEAKY_RELU = Activation(
    key="leaky_relu", label="leaky ReLU",
    f=lambda Z: np.where(Z > 0, Z, Z * Z.dtype.type(LEAK)),
    backward=lambda dA, Z, A: dA * np.where(Z > 0, 1, Z.dtype.type(LEAK)),
    latex=rf"A_{{{{{{l}}}}}} = \max({LEAK:g}\,Z_{{{{{{l}}}}}},\, Z_{{{{{{l}}}}}})",
    grad_latex=(rf"dZ_{{{{{{l}}}}}} = dA_{{{{{{l}}}}}} \odot (\mathbf{{{{1}}}}[Z_{{{{{{l}}}}}} > 0] + {LEAK:g}\,"
                rf"\mathbf{{{{1}}}}[Z_{{{{{{l}}}}}} \le 0])"),
    cell_latex=rf"\max({LEAK:g} \cdot {{z}},\ {{z}})",
    slope_latex=rf"(\mathbf{{{{1}}}}[{{z}} > 0] + {LEAK:g}\,\mathbf{{{{1}}}}[{{z}} \le 0])",
    a_about=(f"Leaky ReLU keeps what is positive and scales the rest by {LEAK:g}, so a unit is never completely "
             "silent and always passes some gradient back."),
    dz_about=f"the gradient flowing back, whole where the unit was active and scaled by {LEAK:g} where it was not",
    dz_look=(f"For leaky ReLU the slope is 1 where the unit fired and {LEAK:g} where it did not. *Look at:* where "
             f"`A{{l}}` is negative, `dZ{{l}}` is {LEAK:g} of `dA{{l}}`: small, but never exactly 0."),
    a_note=lambda z: ("Z is positive, so the unit passes it on unchanged." if z > 0 else
                      f"Z is not positive, so the unit passes on {LEAK:g} of it: small, but not silent."),
    dz_note=lambda z, a: ("The unit fired (Z > 0), so the gradient passes through unchanged." if z > 0 else
                          f"Z ≤ 0: leaky ReLU's slope is {LEAK:g} there, so only {LEAK:g} of the gradient gets "
                          "through."),
    kink=True, suited_init="he",
    f_numpy=f"np.where({{Z}} > 0, {{Z}}, {{Z}} * {{Z}}.dtype.type({LEAK:g}))",
    dz_numpy=f"{{dA}} * np.where({{Z}} > 0, 1, {{Z}}.dtype.type({LEAK:g}))",
    derivative_tex=(rf"g(z) = \max({LEAK:g}\,z,\, z), \qquad g'(z) = \begin{{cases}} 1 & z > 0 \\ {LEAK:g} & z < 0 "
                    r"\\ \text{none (a kink)} & z = 0 \end{cases}"),
    derivative_why=(
        f"Two lines again, of slopes 1 and {LEAK:g}, meeting in a kink at $z = 0$. The code tests $Z > 0$ "
        f"strictly, so at exactly 0 it takes {LEAK:g}. A unit is never completely cut off: {LEAK:g} of the "
        "gradient always gets through, so a leaky unit cannot die the way a ReLU unit can."),
)

SIGMOID = Activation(
    key="sigmoid", label="sigmoid",
    f=_sigmoid,
    backward=lambda dA, Z, A: dA * A * (1 - A),
    latex=r"A_{{{l}}} = \sigma(Z_{{{l}}}) = \frac{{1}}{{1 + e^{{-Z_{{{l}}}}}}}",
    grad_latex=r"dZ_{{{l}}} = dA_{{{l}}} \odot A_{{{l}}} \odot (1 - A_{{{l}}})",
    cell_latex=r"1 / (1 + e^{{-{z}}})",
    slope_latex=r"{a}\,(1 - {a})",
    a_about=("The sigmoid squashes every number into (0, 1). *Look at:* values near 0 or 1 are saturated "
             "units, whose slope — and so whose gradient — is almost 0."),
    dz_about="the gradient flowing back, scaled by the sigmoid's slope A(1 − A): at most 1/4, almost 0 where "
             "the unit is saturated",
    dz_look="The sigmoid's slope is A(1 − A), at most 1/4. " + _SATURATED,
    a_note=lambda z: "The sigmoid of the weighted input, applied to this one entry: a number between 0 and 1.",
    dz_note=lambda z, a: "The gradient arriving at A times the sigmoid's slope at this entry, A(1 − A).",
    f_numpy="1 / (1 + np.exp(-{Z}))", dz_numpy="{dA} * {A} * (1 - {A})",
    derivative_tex=(r"\sigma(z) = \frac{1}{1 + e^{-z}}, \qquad \sigma'(z) = \frac{e^{-z}}{(1 + e^{-z})^2} "
                    r"= \frac{1}{1 + e^{-z}} \cdot \frac{e^{-z}}{1 + e^{-z}} = \sigma(z)\,\bigl(1 - \sigma(z)\bigr)"),
    derivative_why=(
        "Differentiate $(1 + e^{-z})^{-1}$ with the chain rule: $-(1 + e^{-z})^{-2} \\cdot (-e^{-z})$. Split it "
        "into two factors: the first is $\\sigma(z)$, and the second, $\\frac{e^{-z}}{1 + e^{-z}}$, is "
        "$1 - \\sigma(z)$. So the slope is written through the output $A = \\sigma(Z)$ itself, and the code "
        "needs no second exponential. It is largest, $\\frac14$, at $z = 0$, and near 0 where $A$ is near 0 or "
        "1: a saturated unit passes almost no gradient back. Smooth everywhere: no kink."),
)

TANH = Activation(
    key="tanh", label="tanh",
    f=np.tanh,
    backward=lambda dA, Z, A: dA * (1 - A * A),
    latex=r"A_{{{l}}} = \tanh(Z_{{{l}}})",
    grad_latex=r"dZ_{{{l}}} = dA_{{{l}}} \odot (1 - A_{{{l}}}^2)",
    cell_latex=r"\tanh({z})",
    slope_latex=r"(1 - {a}^2)",
    a_about=("tanh squashes every number into (−1, 1). *Look at:* values near ±1 are saturated units, whose "
             "slope — and so whose gradient — is almost 0."),
    dz_about="the gradient flowing back, scaled by tanh's slope 1 − A²: almost 0 where the unit is saturated",
    dz_look="tanh's slope is 1 − A², at most 1. " + _SATURATED,
    a_note=lambda z: "The tanh of the weighted input, applied to this one entry: a number between −1 and 1.",
    dz_note=lambda z, a: "The gradient arriving at A times tanh's slope at this entry, 1 − A².",
    f_numpy="np.tanh({Z})", dz_numpy="{dA} * (1 - {A} * {A})",
    derivative_tex=(r"\tanh z = \frac{e^{z} - e^{-z}}{e^{z} + e^{-z}}, \qquad \tanh'(z) = "
                    r"\frac{(e^{z} + e^{-z})^2 - (e^{z} - e^{-z})^2}{(e^{z} + e^{-z})^2} = 1 - \tanh^2 z"),
    derivative_why=(
        "The quotient rule, with the derivative of $e^{z} - e^{-z}$ being $e^{z} + e^{-z}$ and the other way "
        "round. The result is written through the output $A = \\tanh Z$: the code computes $1 - A^2$, no second "
        "exponential. It is largest, 1, at $z = 0$, and near 0 where $A$ is near $\\pm 1$ (a saturated unit). "
        "Smooth everywhere: no kink."),
)

ACTIVATIONS: dict[str, Activation] = {a.key: a for a in (RELU, LEAKY_RELU, SIGMOID, TANH)}
