"""Figures of a training run: curves and per-layer telemetry. Arrays in, ``go.Figure`` out.

The training page redraws these every few seconds while a run goes on, from the
history alone: nothing here touches the network. :func:`read_history` takes a
consistent copy of the history's columns while the run's reports are being
applied, and :func:`downsample` keeps the per-step loss curve to a size a browser
draws quickly (641,000 steps become at most 2,000 points).

While a run goes on, the page asks for at most ``LIVE_POINTS`` points a line
(:func:`thin` picks the epochs). Measured in headless Chromium on the project's
2-core machine: with 2,000-point curves redrawn every 3 s the browser used 0.38
of a core, with 400 points 0.18, and what the browser takes the training process
on the other core loses.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.engine.history import HEALTHY_RATIO, TYPICAL_RATIO

# one colour per layer (W1, W2, W3, W4), the same in every figure
LAYER_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
TRAIN, VAL, STEP = "#1f77b4", "#d62728", "rgba(90,90,90,0.45)"
MAX_POINTS = 2000
LIVE_POINTS = 400
MAX_HEATMAP_EPOCHS = 300


# --------------------------------------------------------------------------- data
CURVE_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")   # the live panel's


def read_history(history, names=None) -> dict[str, np.ndarray]:
    """The columns ``names`` (all by default) of a :class:`core.engine.history.History`, cut to
    the epochs all of them have (the run's reports are applied while the page draws), and the
    per-step losses."""
    return {**history.columns(names=names), "step_loss": history.step_loss}


def downsample(values: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """``(x, mean)`` of consecutive buckets of ``values``, at most ``max_points`` of them.

    ``x`` is the 1-based position of each bucket's centre (step numbers for the
    per-step loss); with few values every value is its own bucket. The last
    bucket may be shorter. Non-finite values are left out of their bucket's mean.
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    size = max(1, -(-n // max_points))
    starts = np.arange(0, n, size)
    finite = np.isfinite(v)
    sums = np.add.reduceat(np.where(finite, v, 0.0), starts)
    counts = np.add.reduceat(finite.astype(np.int64), starts)
    ends = np.minimum(starts + size, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return (starts + ends + 1) / 2, means


def ema(values: np.ndarray, span: float) -> np.ndarray:
    """Exponential moving average with TensorBoard's bias correction (no lag at the start)."""
    v = np.asarray(values, dtype=np.float64)
    if span <= 1 or len(v) == 0:
        return v.copy()
    a = 2.0 / (span + 1.0)
    out, s, w = np.empty_like(v), 0.0, 0.0
    for i, x in enumerate(v):
        s = (1 - a) * s + a * x
        w = (1 - a) * w + a
        out[i] = s / w
    return out


def rebin(hist: np.ndarray, ranges: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Histograms with their own ranges, redistributed onto common bin ``edges``.

    ``hist`` is ``(E, B)`` counts over ``B`` equal bins between ``ranges[e] = (lo, hi)``.
    Within a bin the values are taken as uniformly spread, so the cumulative
    count is piecewise linear; evaluating it at the common edges and taking
    differences moves every count to where it belongs. Counts outside the
    edges are dropped. Returns ``(E, len(edges) - 1)``.
    """
    hist = np.asarray(hist, dtype=np.float64)
    E, B = hist.shape
    out = np.zeros((E, len(edges) - 1))
    for e in range(E):
        lo, hi = ranges[e]
        own = np.linspace(lo, hi, B + 1)
        cdf = np.concatenate([[0.0], np.cumsum(hist[e])])
        out[e] = np.diff(np.interp(edges, own, cdf, left=0.0, right=cdf[-1]))
    return out


def quantiles(hist: np.ndarray, ranges: np.ndarray, qs=(0.05, 0.5, 0.95)) -> np.ndarray:
    """``(E, len(qs))`` quantiles read from each epoch's histogram (uniform within a bin)."""
    hist = np.asarray(hist, dtype=np.float64)
    E, B = hist.shape
    out = np.empty((E, len(qs)))
    for e in range(E):
        lo, hi = ranges[e]
        cdf = np.concatenate([[0.0], np.cumsum(hist[e])])
        total = cdf[-1] or 1.0
        # np.interp needs increasing x: drop the flat stretches of empty bins
        keep = np.concatenate([[True], np.diff(cdf) > 0])
        out[e] = np.interp(np.asarray(qs) * total, cdf[keep], np.linspace(lo, hi, B + 1)[keep])
    return out


def thin(epochs, k: int, log_x: bool = False) -> np.ndarray:
    """At most ``k`` indices into the increasing ``epochs``, evenly spread along the
    axis they are drawn on (in log space for a log axis, so the early epochs keep
    their detail), first and last included."""
    x = np.asarray(epochs, dtype=np.float64)
    n = len(x)
    if n <= k:
        return np.arange(n)
    pos = np.log10(np.maximum(x, 1e-9)) if log_x else x
    at = np.searchsorted(pos, np.linspace(pos[0], pos[-1], k))
    return np.unique(np.concatenate([[0], np.minimum(at, n - 1), [n - 1]]))


def thinned(k: int, log_x: bool, epochs, *columns) -> tuple[np.ndarray, ...]:
    """``epochs`` and each per-epoch column, cut to the epochs :func:`thin` picks."""
    pick = thin(epochs, k, log_x)
    return tuple(np.asarray(a)[pick] for a in (epochs, *columns))


def even_pick(n: int, k: int) -> np.ndarray:
    """At most ``k`` indices spread evenly over ``range(n)``, first and last included."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))


# --------------------------------------------------------------------------- layout
def layout(fig: go.Figure, title: str, height: int = 320, log_x: bool = False,
            mark_epoch: int | None = None) -> go.Figure:
    """Title, size, legend and the epoch axis; ``mark_epoch`` (a snapshot picked) as a dotted line."""
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), height=height,
                      margin=dict(l=10, r=10, t=40, b=10), hovermode="x unified",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))
    fig.update_xaxes(title="epoch", type="log" if log_x else "linear")
    if mark_epoch is not None:
        fig.add_vline(x=mark_epoch, line=dict(dash="dot", color="#999"))
    return fig


def empty(title: str, note: str, height: int = 320) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=13, color="#777"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), height=height,
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


# --------------------------------------------------------------------------- curves
def loss_figure(epochs, train_loss, val_loss, step_loss, steps_per_epoch: int, *,
                log_x: bool = False, log_y: bool = True, title: str = "Loss",
                max_points: int = MAX_POINTS, mark_epoch: int | None = None) -> go.Figure:
    """The loss per epoch (training mean, validation) over the per-step loss.

    The per-step loss is averaged in buckets (at most ``max_points`` points) and
    then smoothed with an EMA; its x is the step number in epochs, so a step
    ``s`` of the run sits at ``s / steps_per_epoch``. The epoch curves keep at
    most ``max_points`` epochs (:func:`thin`).
    """
    if len(step_loss) == 0 and len(epochs) == 0:
        return empty(title, "No step trained yet.")
    fig = go.Figure()
    epochs, train_loss, val_loss = thinned(max_points, log_x, epochs, train_loss, val_loss)
    if len(step_loss):
        x, mean = downsample(step_loss, max_points)
        bucket = -(-len(step_loss) // max_points)
        smooth = ema(mean, span=16 / bucket)   # ~16 steps either way: buckets of 16+ need no more
        fig.add_trace(go.Scatter(x=x / steps_per_epoch, y=smooth, name="per step (smoothed)",
                                 line=dict(color=STEP, width=1),
                                 hovertemplate="%{y:.4f}<extra>per step</extra>"))
    if len(epochs):
        fig.add_trace(go.Scatter(x=epochs, y=train_loss, name="training (epoch mean)",
                                 mode="lines+markers" if len(epochs) < 60 else "lines",
                                 line=dict(color=TRAIN, width=2), hovertemplate="%{y:.4f}"))
        fig.add_trace(go.Scatter(x=epochs, y=val_loss, name="validation",
                                 mode="lines+markers" if len(epochs) < 60 else "lines",
                                 line=dict(color=VAL, width=2), hovertemplate="%{y:.4f}"))
    fig.update_yaxes(title="cross-entropy", type="log" if log_y else "linear")
    return layout(fig, title, log_x=log_x, mark_epoch=mark_epoch)


def accuracy_figure(epochs, train_acc, val_acc, *, reference: float | None = None,
                    reference_label: str = "", log_x: bool = False, title: str = "Accuracy",
                    max_points: int = MAX_POINTS, mark_epoch: int | None = None) -> go.Figure:
    """Training and validation accuracy per epoch (at most ``max_points`` of them),
    with an optional dashed reference line."""
    if len(epochs) == 0:
        fig = empty(title, "The first point appears when the first epoch ends.")
        return fig
    epochs, train_acc, val_acc = thinned(max_points, log_x, epochs, train_acc, val_acc)
    mode = "lines+markers" if len(epochs) < 60 else "lines"
    fig = go.Figure([
        go.Scatter(x=epochs, y=np.asarray(train_acc) * 100, name="training", mode=mode,
                   line=dict(color=TRAIN, width=2), hovertemplate="%{y:.2f}%"),
        go.Scatter(x=epochs, y=np.asarray(val_acc) * 100, name="validation", mode=mode,
                   line=dict(color=VAL, width=2), hovertemplate="%{y:.2f}%"),
    ])
    if reference is not None:
        fig.add_hline(y=reference * 100, line=dict(color="#555", dash="dash", width=1.5),
                      annotation_text=reference_label or f"{reference:.1%}", annotation_position="top left",
                      annotation_font=dict(size=11, color="#555"), annotation_bgcolor="rgba(255,255,255,0.8)")
    # a long run spends most epochs above 95%: the axis starts where the run is after its first
    # 5% of epochs (at most at 90%), so those are not squashed flat by the first few (double-click: all)
    skip = len(epochs) // 20
    later = np.concatenate([np.asarray(train_acc)[skip:], np.asarray(val_acc)[skip:]]) * 100
    lo = float(np.nanmin(later)) if np.isfinite(later).any() else 0.0
    fig.update_yaxes(title="accuracy (%)", range=[max(0.0, min(lo, 90.0) - 2), 100.5])
    return layout(fig, title, log_x=log_x, mark_epoch=mark_epoch)


# --------------------------------------------------------------------------- per layer
def norms_figure(epochs, weight_norm, grad_norm, update_norm, *, log_x: bool = False,
                 max_points: int = MAX_POINTS) -> go.Figure:
    """‖W‖, ‖dW‖ and ‖ΔW‖ per layer and epoch, side by side (Frobenius norms, averaged
    over the steps sampled in the epoch)."""
    titles = ("‖W‖  weights", "‖dW‖  gradient", "‖ΔW‖  update per step")
    if len(epochs) == 0:
        return empty("Norms per layer", "Appears when the first epoch ends.", height=300)
    epochs, weight_norm, grad_norm, update_norm = thinned(max_points, log_x, epochs, weight_norm, grad_norm,
                                                          update_norm)
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles, horizontal_spacing=0.07)
    for c, data in enumerate((weight_norm, grad_norm, update_norm), start=1):
        for l in range(data.shape[1]):
            fig.add_trace(go.Scatter(x=epochs, y=data[:, l], name=f"W{l + 1}", legendgroup=f"W{l + 1}",
                                     showlegend=c == 1, line=dict(color=LAYER_COLOURS[l % 4], width=1.8),
                                     hovertemplate="%{y:.3g}"), row=1, col=c)
        fig.update_yaxes(type="log", row=1, col=c)
    fig.update_xaxes(title="epoch", type="log" if log_x else "linear")
    fig.update_annotations(font=dict(size=12))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=60, b=10), hovermode="x unified",
                      legend=dict(orientation="h", yanchor="bottom", y=1.12, xanchor="right", x=1))
    return fig


def update_ratio_figure(epochs, ratio, *, log_x: bool = False,
                        band: tuple[float, float] = HEALTHY_RATIO, typical: float = TYPICAL_RATIO,
                        max_points: int = MAX_POINTS) -> go.Figure:
    """‖ΔW‖/‖W‖ per layer on a log axis, over the shaded healthy band."""
    title = "Update-to-weight ratio ‖ΔW‖ / ‖W‖ per step"
    if len(epochs) == 0:
        return empty(title, "Appears when the first epoch ends.")
    epochs, ratio = thinned(max_points, log_x, epochs, ratio)
    fig = go.Figure()
    fig.add_hrect(y0=band[0], y1=band[1], fillcolor="rgba(44,160,44,0.12)", line_width=0, layer="below")
    fig.add_hline(y=typical, line=dict(color="#2a7a2a", dash="dot", width=1))
    # on a log axis an annotation's y is log10 of the value (shapes take the value itself)
    for y, text, anchor in ((band[1], "usual healthy range", "top"), (typical, f"≈ {typical:g}", "bottom")):
        fig.add_annotation(x=0.005, xref="paper", y=float(np.log10(y)), yref="y", text=text, showarrow=False,
                           xanchor="left", yanchor=anchor, font=dict(size=11, color="#2a7a2a"))
    for l in range(ratio.shape[1]):
        fig.add_trace(go.Scatter(x=epochs, y=ratio[:, l], name=f"W{l + 1}",
                                 line=dict(color=LAYER_COLOURS[l % 4], width=2), hovertemplate="%{y:.2e}"))
    finite = ratio[np.isfinite(ratio) & (ratio > 0)]
    lo = min(band[0], float(finite.min())) if finite.size else band[0]
    hi = max(band[1], float(finite.max())) if finite.size else band[1]
    fig.update_yaxes(type="log", title="‖ΔW‖ / ‖W‖", range=[np.log10(lo) - 0.3, np.log10(hi) + 0.3],
                     exponentformat="power")
    return layout(fig, title, log_x=log_x)


def dead_figure(epochs, dead_frac, *, log_x: bool = False, max_points: int = MAX_POINTS) -> go.Figure:
    """Per hidden layer, the percentage of units whose Z was never positive on the
    validation images in that epoch (dead ReLUs)."""
    title = "Dead units per hidden layer (never active on the validation set)"
    if len(epochs) == 0:
        return empty(title, "Appears when the first epoch ends.")
    epochs, dead_frac = thinned(max_points, log_x, epochs, dead_frac)
    fig = go.Figure()
    hidden = dead_frac.shape[1] - 1   # the last column (output layer) is NaN by definition
    for l in range(hidden):
        fig.add_trace(go.Scatter(x=epochs, y=dead_frac[:, l] * 100, name=f"A{l + 1}",
                                 line=dict(color=LAYER_COLOURS[l % 4], width=2), hovertemplate="%{y:.1f}%"))
    fig.update_yaxes(title="dead units (%)", range=[-2, 102])
    return layout(fig, title, log_x=log_x)


def distribution_figure(epochs, hist, ranges, *, name: str, grid: int = 80, log_x: bool = False,
                        max_epochs: int = MAX_HEATMAP_EPOCHS) -> go.Figure:
    """TensorBoard-style distribution of one layer's values over epochs.

    Each epoch's histogram (its own range) is re-binned onto one value grid:
    epoch on x, value on y, colour the share of the layer's values in the cell
    (log scale, so the tails stay visible next to the peak). The 5%, 50% and
    95% quantiles are drawn over it. At most ``max_epochs`` epochs (spread
    evenly) are drawn.
    """
    title = f"Distribution of {name} over epochs"
    if len(epochs) == 0:
        return empty(title, "Appears when the first epoch ends.")
    pick = even_pick(len(epochs), max_epochs)
    ep, h, r = np.asarray(epochs)[pick], np.asarray(hist)[pick], np.asarray(ranges)[pick]
    q = quantiles(h, r, qs=(0.001, 0.05, 0.5, 0.95, 0.999))
    lo, hi = float(q[:, 0].min()), float(q[:, -1].max())   # the tails beyond 0.1% would squash the rest
    if not hi > lo:
        lo, hi = float(r[:, 0].min()), float(r[:, 1].max()) + 1e-12
    edges = np.linspace(lo, hi, grid + 1)
    share = rebin(h, r, edges) / np.maximum(h.sum(axis=1, keepdims=True), 1)
    with np.errstate(divide="ignore"):
        z = np.where(share > 0, np.log10(np.maximum(share, 1e-12)), np.nan)
    centres = (edges[:-1] + edges[1:]) / 2
    ticks = [-4, -3, -2, -1, 0]
    fig = go.Figure(go.Heatmap(
        x=ep, y=centres, z=z.T.astype(np.float32), colorscale="Viridis", zmin=-4, zmax=0,
        customdata=(share.T * 100).astype(np.float32),
        colorbar=dict(title=dict(text="share", side="right"), tickvals=ticks,
                      ticktext=["0.01%", "0.1%", "1%", "10%", "100%"], thickness=12),
        hovertemplate="epoch %{x}<br>value %{y:.3g}<br>%{customdata:.3g}% of the values<extra></extra>"))
    for j, (label, dash) in enumerate((("5%", "dot"), ("median", "solid"), ("95%", "dot")), start=1):
        fig.add_trace(go.Scatter(x=ep, y=q[:, j], name=label, mode="lines", showlegend=False,
                                 line=dict(color="white", width=1.2, dash=dash),
                                 hovertemplate=f"{label}: %{{y:.3g}}<extra></extra>"))
    fig.update_yaxes(title=name, range=[lo, hi], showgrid=False, zeroline=False)
    fig = layout(fig, title, height=340, log_x=log_x)
    if not log_x:
        fig.update_xaxes(range=[float(ep[0]) - 0.5, float(ep[-1]) + 0.5])
    fig.update_xaxes(showgrid=False)
    fig.update_layout(hovermode="closest", plot_bgcolor="#440154")   # Viridis' bottom: "no values here"
    return fig
