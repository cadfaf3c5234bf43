"""The learning-rate lesson's figure and table (arrays in, figure and DataFrame out; no Streamlit)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.engine.history import HEALTHY_RATIO, TYPICAL_RATIO
from core.teach.lr_lesson import OUTCOMES, Lesson, Verdict
from ui.colours import NEGATIVE, POSITIVE
from ui.training_plots import LAYER_COLOURS

REFUSED = "#d55e00"       # Okabe–Ito vermillion: a step the engine refused


def _log_range(values, *also, pad: float = 0.3) -> list[float]:
    """A log axis's range around the positive finite values, ``pad`` decades (at least a
    tenth of their span) beyond them."""
    v = np.array([x for x in [*values, *also] if math.isfinite(x) and x > 0])
    if not v.size:
        return [-1, 1]
    lo, hi = math.log10(v.min()), math.log10(v.max())
    pad = max(pad, 0.1 * (hi - lo))
    return [lo - pad, hi + pad]


LAYOUT = dict(height=360, margin=dict(l=10, r=10, t=50, b=10),
              legend=dict(orientation="h", yanchor="bottom", y=-0.45, xanchor="center", x=0.5))


def _lr_axis(fig: go.Figure, lrs) -> go.Figure:
    fig.update_xaxes(type="log", title="learning rate η", tickvals=lrs, ticktext=[f"{x:g}" for x in lrs])
    return fig.update_layout(**LAYOUT)


def loss_figure(lesson: Lesson) -> go.Figure:
    """The batch's loss after one step at each η, against the loss before (dashed). Steps the
    engine refused are crosses: the loss their update would have given."""
    took = [t for t in lesson.trials if not t.refused and math.isfinite(t.loss_after)]
    refused = [t for t in lesson.trials if t.refused and math.isfinite(t.loss_after)]
    fig = go.Figure(layout=dict(title="The batch's loss after one step"))
    fig.add_trace(go.Scatter(x=[t.lr for t in took], y=[t.loss_after for t in took], mode="lines+markers",
                             name="loss after", line=dict(color=POSITIVE, width=2), marker=dict(size=10),
                             hovertemplate="η = %{x:g}<br>loss after %{y:.4g}<extra></extra>"))
    if refused:
        fig.add_trace(go.Scatter(x=[t.lr for t in refused], y=[t.loss_after for t in refused], mode="markers+text",
                                 name="refused (would have been)", text=["refused"] * len(refused),
                                 textposition="middle left", textfont=dict(color=REFUSED),
                                 marker=dict(symbol="x", size=13, color=REFUSED),
                                 hovertemplate="η = %{x:g}: refused<br>its weights would give %{y:.4g}<extra></extra>"))
    fig.add_hline(y=lesson.loss_before, line=dict(color="#444", dash="dash", width=1.5))
    fig.add_annotation(x=0.0, xref="x domain", y=math.log10(lesson.loss_before) if lesson.loss_before > 0 else 0,
                       yref="y", text=f"before: {lesson.loss_before:.4g}", showarrow=False, xanchor="left",
                       yanchor="bottom", font=dict(size=12, color="#444"))
    losses = [t.loss_after for t in lesson.trials]
    fig.update_yaxes(type="log", title="loss of this batch", exponentformat="power",
                     range=_log_range(losses, lesson.loss_before, pad=0.02))
    return _lr_axis(fig, list(lesson.lrs))


def ratio_figure(lesson: Lesson) -> go.Figure:
    """‖ΔW_l‖/‖W_l‖ per layer at each η, over the usual healthy range; refused steps as crosses."""
    lo, hi = HEALTHY_RATIO
    lrs = list(lesson.lrs)
    fig = go.Figure(layout=dict(title="Update-to-weight ratio ‖ΔW‖ / ‖W‖"))
    ratios = np.array([t.ratios for t in lesson.trials], float)
    symbols = ["x" if t.refused else "circle" for t in lesson.trials]
    for l in range(ratios.shape[1]):
        fig.add_trace(go.Scatter(x=lrs, y=ratios[:, l], mode="lines+markers", name=f"W{l + 1}",
                                 line=dict(color=LAYER_COLOURS[l % len(LAYER_COLOURS)], width=2),
                                 marker=dict(size=9, symbol=symbols),
                                 hovertemplate=f"η = %{{x:g}}<br>‖ΔW{l + 1}‖/‖W{l + 1}‖ = %{{y:.2e}}<extra></extra>"))
    fig.add_hrect(y0=lo, y1=hi, fillcolor="rgba(0,114,178,0.12)", line_width=0, layer="below")
    fig.add_hline(y=TYPICAL_RATIO, line=dict(color=NEGATIVE, dash="dot", width=1.5))
    fig.add_annotation(x=0.0, xref="x domain", y=math.log10(hi), yref="y", text="usual healthy range",
                       showarrow=False, xanchor="left", yanchor="top", font=dict(size=11, color="#1f4e79"))
    fig.update_yaxes(type="log", title="‖ΔW‖ / ‖W‖", exponentformat="power",
                     range=_log_range(ratios.ravel(), lo, hi))
    return _lr_axis(fig, lrs)


def lesson_table(lesson: Lesson, verdicts: list[Verdict] | None = None) -> pd.DataFrame:
    """One row per η: what happened, the prediction, the losses and each layer's ratio."""
    rows = []
    for i, t in enumerate(lesson.trials):
        row = {"η": t.lr, "what happened": OUTCOMES[t.outcome].label + (" (refused)" if t.refused else "")}
        if verdicts is not None:
            v = verdicts[i]
            row["you said"] = OUTCOMES[v.predicted].label if v.predicted else "—"
            row["right?"] = "✓" if v.right else "—" if v.predicted is None else "✗"
        row |= {"loss after": t.loss_after, "change": t.change,
                "first-order prediction": t.first_order}
        row |= {f"‖ΔW{l}‖/‖W{l}‖": r for l, r in enumerate(t.ratios, start=1)}
        rows.append(row)
    return pd.DataFrame(rows)
