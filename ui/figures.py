"""Plotly figures shared by the pages: arrays in, ``go.Figure`` out.

Nothing here knows about Streamlit or sessions.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ui.colours import DIGIT_COLOURS  # noqa: F401  (the one palette, re-exported for the figures)

SIGNED = "RdBu_r"      # diverging, white at zero
UNSIGNED = "Viridis"
DIGITS = "Greys"


def stats(a: np.ndarray) -> dict[str, float]:
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0:
        return {"min": np.nan, "max": np.nan, "mean": np.nan, "std": np.nan, "zeros": np.nan}
    return {"min": float(a.min()), "max": float(a.max()), "mean": float(a.mean()), "std": float(a.std()),
            "zeros": float((a == 0).mean())}


def is_signed(a: np.ndarray) -> bool:
    return bool(np.size(a)) and float(np.min(a)) < 0


def heatmap(a: np.ndarray, title: str = "", *, signed: bool | None = None, height: int | None = None,
            x_title: str = "", y_title: str = "", highlight: tuple[int, int] | None = None,
            colorscale: str | None = None) -> go.Figure:
    """A matrix as a heatmap, rows top to bottom. Signed data gets a diverging
    scale centred at zero; vectors are drawn as one row."""
    z = np.asarray(a, dtype=np.float32)
    if z.ndim == 0:
        z = z.reshape(1, 1)
    if z.ndim == 1:
        z = z[None, :]
    signed = is_signed(z) if signed is None else signed
    kw = {}
    if signed:
        lim = float(np.max(np.abs(z))) or 1.0
        kw = dict(zmin=-lim, zmax=lim, zmid=0)
    fig = go.Figure(go.Heatmap(z=z, colorscale=colorscale or (SIGNED if signed else UNSIGNED),
                               hovertemplate="row %{y}, col %{x}: %{z:.4g}<extra></extra>", **kw))
    if highlight is not None:
        r, c = highlight
        fig.add_shape(type="rect", x0=c - 0.5, x1=c + 0.5, y0=r - 0.5, y1=r + 0.5,
                      line=dict(color="#ffb000", width=3))
    rows = z.shape[0]
    fig.update_yaxes(autorange="reversed", title=y_title)
    fig.update_xaxes(title=x_title)
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), margin=dict(l=10, r=10, t=36, b=10),
                      height=height or int(min(520, max(140, 90 + 3.2 * rows))))
    return fig


def grid_canvas(images: np.ndarray, cols: int, above: int = 0, below: int = 0):
    """28×28 images laid out in one array, separated by blank (NaN) pixels, with
    ``above``/``below`` blank rows per cell for captions. Returns the canvas, the
    number of columns used, the cell height and width, and each image's row and
    column in the grid."""
    imgs = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28)
    n = len(imgs)
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    ch, cw = 28 + max(above + below, 1), 29
    canvas = np.full((rows * ch - (below if below else 0), cols * cw - 1), np.nan, np.float32)
    r, c = np.divmod(np.arange(n), cols)
    for i in range(n):
        top = r[i] * ch + above
        canvas[top:top + 28, c[i] * cw:c[i] * cw + 28] = imgs[i]
    return canvas, cols, ch, cw, r, c


def grid_heatmap(canvas: np.ndarray, signed: bool = False, dark: bool = False) -> go.Heatmap:
    """The canvas as one heatmap: weights on a diverging scale centred at zero, or
    pixels in [0, 1] as dark ink on white (``dark``: white ink on black)."""
    if signed:
        lim = float(np.nanmax(np.abs(canvas))) if np.isfinite(canvas).any() else 1.0
        return go.Heatmap(z=canvas, colorscale=SIGNED, zmin=-(lim or 1.0), zmax=lim or 1.0, zmid=0,
                          showscale=False, hoverinfo="skip")
    return go.Heatmap(z=canvas, colorscale="gray" if dark else DIGITS, zmin=0, zmax=1, showscale=False,
                      hoverinfo="skip")


def digit_grid(images: np.ndarray, captions: list[str] | None = None, cols: int = 10,
               signed: bool = False, size: int = 80, title: str = "") -> go.Figure:
    """Small 28×28 images in a grid (one heatmap; captions sit in a blank band above each row)."""
    band = 9 if captions else 1
    canvas, cols, ch, cw, r, c = grid_canvas(images, cols, above=band)
    fig = go.Figure(grid_heatmap(canvas, signed))
    if captions:  # set in one layout update: adding them one by one costs ~3 ms each
        fig.update_layout(annotations=[
            dict(x=c[i] * cw + 13.5, y=r[i] * ch + band / 2, text=str(text), showarrow=False,
                 font=dict(size=11)) for i, text in enumerate(captions[:len(r)])])
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    rows = canvas.shape[0] // ch + (canvas.shape[0] % ch > 0)
    fig.update_layout(margin=dict(l=0, r=0, t=30 if title else 0, b=0),
                      height=int(rows * size * ch / 28 + (30 if title else 0)),
                      title=dict(text=title, x=0, font=dict(size=14)), plot_bgcolor="white")
    return fig


def bars(values, labels=None, title: str = "", highlight: int | None = None, y_title: str = "") -> go.Figure:
    values = np.asarray(values, dtype=float)
    labels = list(range(len(values))) if labels is None else list(labels)
    colours = ["#2f6fdf"] * len(values)
    if highlight is not None and 0 <= highlight < len(values):
        colours[highlight] = "#ff7f0e"
    fig = go.Figure(go.Bar(x=labels, y=values, marker_color=colours))
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), margin=dict(l=10, r=10, t=36, b=10),
                      height=260, yaxis_title=y_title)
    fig.update_xaxes(type="category")
    return fig


PROJECTOR_TEXT = dict(size=15, color="#222")   # presentation mode: axis text a hall can read


def for_projector(fig: go.Figure) -> go.Figure:
    """``fig`` with its axis titles, tick labels, legend, colour bars and notes at least 14 px and
    dark, for a projector (ui/present.py draws every chart through this when presenting)."""
    big = PROJECTOR_TEXT
    fig.update_xaxes(tickfont=big, title_font=big)
    fig.update_yaxes(tickfont=big, title_font=big)
    # a log axis labels 2 and 5 between the powers of ten at 3/4 of the size: label the powers only,
    # where there are at least two of them to label (on a narrower axis, only 2 and 5 say where it is)
    for a in [*fig.select_xaxes(), *fig.select_yaxes()]:
        if a.type == "log" and a.dtick is None and _decades(fig, a, a.plotly_name[0] + a.plotly_name[5:]) >= 2:
            a.update(dtick=1)
    fig.update_layout(font=big, legend_font=big, title_font=dict(size=18, color="#111"))
    fig.update_annotations(font_size=big["size"])      # their colours stay: some are white on dark cells
    fig.update_traces(colorbar=dict(tickfont=big), selector=lambda t: "colorbar" in t)
    return fig


def _decades(fig: go.Figure, axis, ref: str) -> float:
    """How many powers of ten the log axis ``axis`` (``ref``: "x", "y2", …) spans: its range's when
    set, else its traces' positive values'."""
    if axis.range is not None:
        return abs(axis.range[1] - axis.range[0])
    letter = ref[0]
    values = [np.asarray(getattr(t, letter), float).ravel() for t in fig.data
              if getattr(t, letter, None) is not None and (getattr(t, letter + "axis", None) or letter) == ref]
    v = np.concatenate(values) if values else np.array([])
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.log10(v.max() / v.min())) if v.size else 0.0
