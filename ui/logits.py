"""One logit, taken apart: the widget the inspect and draw pages share.

``Z_L[c] = Σ_j A_{L-1}[j]·W_L[j, c] + b_L[c]``: the bars show the largest terms, the
LaTeX the rule and the sum with the numbers put in. The terms come from the engine
(:func:`core.engine.metrics.logit_contributions`), so they add up to the logit it computed.
"""
from __future__ import annotations

import numpy as np

from core.engine.metrics import logit_contributions
from ui.inspect_plots import contributions
from ui.present import chart


def logit_breakdown(chart_col, text_col, a_prev: np.ndarray, params: dict, c: int, *, title: str,
                    key: str) -> np.ndarray:
    """Draw the breakdown of logit ``c`` from the last hidden layer's activations ``a_prev`` (one
    image) and the network's ``params``: the bars in ``chart_col``, the equation in ``text_col``.
    Returns the terms (unit ``j``'s share), for the page's own words."""
    L = sum(1 for k in params if k.startswith("W"))
    last, W = f"A{L - 1}", f"W{L}"
    terms = logit_contributions(a_prev, params[W], c)
    bias = float(params[f"b{L}"][c])
    chart(chart_col, contributions(terms, 8, last, W, c, title), key=key, config={"displayModeBar": False})
    text_col.latex(rf"Z_{L}[{c}] = \sum_j A_{L - 1}[j]\,W_{L}[j,{c}] + b_{L}[{c}]")
    text_col.latex(rf"= {terms[terms > 0].sum():.3f} {terms[terms < 0].sum():+.3f} {bias:+.3f} "
                   rf"= {terms.sum() + bias:.3f}")
    return terms
