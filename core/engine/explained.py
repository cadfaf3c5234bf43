"""One number, explained: the record of how one cell of a step was computed, and the LaTeX
helpers every explanation writes with.

It sits in the engine because the engine's registries explain themselves: each optimizer
(:mod:`core.engine.optim`) rebuilds one cell of its own update, beside the code that made
it, as design notes ask ("the derivative next to the forward"). :mod:`core.teach.explain`
builds the other quantities' explanations on the same record.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Term:
    """One contribution to a cell: ``label`` in the trace's names, its ``value``,
    and the numbers multiplied to make it (empty when it is a single number)."""

    label: str
    value: float
    factors: tuple[float, ...] = ()


@dataclass(frozen=True)
class Explanation:
    """One cell of a trace, rebuilt from its inputs.

    ``total`` follows from ``terms`` as ``combine`` says: ``"sum"`` means
    ``total = Σ terms``; otherwise ``details`` lists the intermediate numbers
    (the softmax's denominator, Adam's moments) and ``note`` says the rule.
    ``value`` is the cell as the step stored it; ``total`` should equal it.
    """

    name: str
    index: tuple[int, ...]
    rule: str                  # LaTeX: this cell's equation, in symbols
    substituted: str           # LaTeX: the same with the numbers put in
    terms: tuple[Term, ...]    # largest |value| first
    total: float
    value: float
    note: str
    combine: str = "sum"       # "sum", "input" (nothing to compute) or the name of the rule
    details: tuple[tuple[str, float], ...] = field(default_factory=tuple)

    @property
    def sum_of_terms(self) -> float:
        return math.fsum(t.value for t in self.terms)

    @property
    def error(self) -> float:
        """|recomputed − stored|."""
        return abs(self.total - self.value)

    def top(self, k: int = 10) -> tuple[tuple[Term, ...], int, float]:
        """The ``k`` largest terms, how many others there are, and what the others add up to."""
        rest = self.terms[k:]
        return self.terms[:k], len(rest), math.fsum(t.value for t in rest)


# --------------------------------------------------------------------------- LaTeX
# a quantity of layer l: an optional d or Δ, a symbol (a letter, or batch norm's Ẑ μ σ² γ β), the layer,
# then _run for a running statistic and _new for the value after the update
TRACE_NAME = re.compile(r"^(d|Δ)?([A-Za-z]|Ẑ|μ|σ²|γ|β)(\d+)(_run)?(_new)?$")
_SYMBOLS = {"Ẑ": r"\hat Z", "μ": r"\mu", "σ²": r"\sigma", "γ": r"\gamma", "β": r"\beta"}


def tex_name(name: str) -> str:
    """Trace name → LaTeX: ``Z1`` → ``Z_{1}``, ``dW3`` → ``dW_{3}``, ``ΔW1`` → ``\\Delta W_{1}``,
    ``Ẑ1`` → ``\\hat Z_{1}``, ``σ²1_run_new`` → ``\\sigma^{2,\\,\\mathrm{run},\\,\\mathrm{new}}_{1}``."""
    if name == "losses":
        return "L"
    if name == "loss":
        return r"\mathcal{L}"
    m = TRACE_NAME.match(name)
    if not m:
        return name
    pre, sym, l, run, new = m.groups()
    pre = {"d": "d", "Δ": r"\Delta ", None: ""}[pre]
    sup = (["2"] if sym == "σ²" else []) + ([r"\mathrm{run}"] if run else []) + ([r"\mathrm{new}"] if new else [])
    body = f"{pre}{_SYMBOLS.get(sym, sym)}"
    if pre and sym in _SYMBOLS:
        body = f"{pre}{{{_SYMBOLS[sym]}}}"     # d{\gamma}: the d stays apart from the symbol
    if not sup:
        return f"{body}_{{{l}}}"
    if sup == [r"\mathrm{new}"]:
        return f"{body}_{{{l}}}^{{\\mathrm{{new}}}}"     # as before: W_{1}^{\mathrm{new}}
    sep = r",\,"
    return f"{body}^{{{sep.join(sup)}}}_{{{l}}}"


def tex_num(x: float, digits: int = 4) -> str:
    """A number for LaTeX, 4 significant digits, ``1.2\\times10^{-5}`` instead of 1.2e-05."""
    x = float(x)
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return r"\infty" if x > 0 else (r"-\infty" if x < 0 else r"\mathrm{NaN}")
    s = f"{x:.{digits}g}"
    if "e" in s:
        mant, exp = s.split("e")
        return rf"{mant}\times10^{{{int(exp)}}}"
    return s


def tex_factor(x: float) -> str:
    """A factor in a product: negatives in parentheses."""
    s = tex_num(x)
    return f"({s})" if float(x) < 0 else s


def tex_cell(name: str, index: tuple[int, ...] = ()) -> str:
    """``ΔW1``, (3, 5) → ``\\Delta W_{1}[3, 5]``; no index: the whole quantity."""
    if name == "losses":
        return f"L_{{{index[0]}}}"
    if not index:
        return tex_name(name)
    return f"{tex_name(name)}[{', '.join(map(str, index))}]"


def cell_label(name: str, *index) -> str:
    """Plain text for a term's label: ``dW1[3,5]``."""
    return f"{name}[{','.join(str(i) for i in index)}]"


def by_size(terms: list[Term]) -> tuple[Term, ...]:
    """Largest contribution first."""
    return tuple(sorted(terms, key=lambda t: -abs(t.value)))
