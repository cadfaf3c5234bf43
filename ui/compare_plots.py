"""Figures of several runs at once (Compare runs): one line per run, its name in the legend.
Arrays in, ``go.Figure`` out; the layout, the empty state and the thinning are the training
page's (ui/training_plots.py), so both pages read alike, and on a projector alike too."""
from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from core.engine.history import HEALTHY_RATIO, TYPICAL_RATIO
from ui.colours import RUN_COLOURS
from ui.training_plots import MAX_POINTS, empty, layout, thinned

HEIGHT = 380


def run_style(i: int) -> dict:
    """The line of the ``i``-th run: its colour, dashed once the colours come round again."""
    return dict(color=RUN_COLOURS[i % len(RUN_COLOURS)], width=2.5,
                dash="solid" if i < len(RUN_COLOURS) else "dash")


def label(run) -> str:
    """A run's name as plotly draws it: its own text, never markup (a name is typed by the user)."""
    return html.escape(run.name, quote=False)


def _legend(fig: go.Figure) -> go.Figure:
    # the run names under the plot, where several long names fit (above it they would cover the title)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0,
                                  font=dict(size=13)), height=HEIGHT, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def loss_figure(runs: list, *, log_x: bool = False, max_points: int = MAX_POINTS) -> go.Figure:
    """Validation loss per epoch of each run (solid), its training loss (dotted, same colour)."""
    title = "Loss: validation (solid), training (dotted)"
    if not any(len(r.curves["epoch"]) for r in runs):
        return empty(title, "No run has finished an epoch.")
    fig = go.Figure()
    for i, r in enumerate(runs):
        e, train, val = thinned(max_points, log_x, r.curves["epoch"], r.curves["train_loss"], r.curves["val_loss"])
        style = run_style(i)
        fig.add_trace(go.Scatter(x=e, y=val, name=label(r), legendgroup=str(r.id), line=style,
                                 hovertemplate="%{y:.4f}<extra>%{fullData.name} · validation</extra>"))
        fig.add_trace(go.Scatter(x=e, y=train, name=label(r), legendgroup=str(r.id), showlegend=False,
                                 line={**style, "dash": "dot", "width": 1.5},
                                 hovertemplate="%{y:.4f}<extra>%{fullData.name} · training</extra>"))
    fig.update_yaxes(title="cross-entropy", type="log")
    return _legend(layout(fig, title, log_x=log_x))


def accuracy_figure(runs: list, *, log_x: bool = False, max_points: int = MAX_POINTS) -> go.Figure:
    """Validation accuracy per epoch of each run."""
    title = "Validation accuracy"
    if not any(len(r.curves["epoch"]) for r in runs):
        return empty(title, "No run has finished an epoch.")
    fig = go.Figure()
    later = []
    for i, r in enumerate(runs):
        e, acc = thinned(max_points, log_x, r.curves["epoch"], r.curves["val_acc"])
        fig.add_trace(go.Scatter(x=e, y=np.asarray(acc) * 100, name=label(r), line=run_style(i),
                                 mode="lines+markers" if len(e) < 30 else "lines",
                                 hovertemplate="%{y:.2f}%<extra>%{fullData.name}</extra>"))
        later.append(np.asarray(acc)[len(acc) // 20:] * 100)    # as on the training page: not squashed by epoch 1
    lo = float(np.nanmin(np.concatenate(later))) if any(len(a) for a in later) else 0.0
    fig.update_yaxes(title="accuracy (%)", range=[max(0.0, min(lo, 90.0) - 2), 100.5])
    return _legend(layout(fig, title, log_x=log_x))


def ratio_figure(runs: list, layer: int, *, log_x: bool = False, max_points: int = MAX_POINTS) -> go.Figure:
    """‖ΔW‖/‖W‖ of layer ``layer`` (1-based) of each run that has it, over the healthy band."""
    title = f"Update-to-weight ratio ‖ΔW{layer}‖ / ‖W{layer}‖ per step"
    have = [(i, r) for i, r in enumerate(runs)
            if len(r.curves["epoch"]) and r.curves["update_ratio"].shape[1] >= layer]
    if not have:
        return empty(title, "No run has finished an epoch.")
    fig = go.Figure()
    fig.add_hrect(y0=HEALTHY_RATIO[0], y1=HEALTHY_RATIO[1], fillcolor="rgba(44,160,44,0.12)", line_width=0,
                  layer="below")
    fig.add_hline(y=TYPICAL_RATIO, line=dict(color="#2a7a2a", dash="dot", width=1))
    values = []
    for i, r in have:
        e, ratio = thinned(max_points, log_x, r.curves["epoch"], r.curves["update_ratio"][:, layer - 1])
        fig.add_trace(go.Scatter(x=e, y=ratio, name=label(r), line=run_style(i),
                                 hovertemplate="%{y:.2e}<extra>%{fullData.name}</extra>"))
        values.append(ratio)
    v = np.concatenate(values)
    v = v[np.isfinite(v) & (v > 0)]
    lo = min(HEALTHY_RATIO[0], float(v.min())) if v.size else HEALTHY_RATIO[0]
    hi = max(HEALTHY_RATIO[1], float(v.max())) if v.size else HEALTHY_RATIO[1]
    fig.update_yaxes(type="log", title="‖ΔW‖ / ‖W‖", range=[np.log10(lo) - 0.3, np.log10(hi) + 0.3],
                     exponentformat="power")
    return _legend(layout(fig, title, log_x=log_x))
