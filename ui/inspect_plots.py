"""Figures for the pages that look inside a trained network: arrays in, ``go.Figure`` out.

Images in a grid are one heatmap (:func:`ui.figures.digit_grid`) with a layer of
invisible markers on top, one per image: they carry the hover text and make an
image clickable (``st.plotly_chart(on_select=...)`` reports the marker's
``customdata``, the image's number). Heatmap cells themselves cannot be
selected in plotly, which is why the confusion matrix gets the same layer.
"""
from __future__ import annotations


import numpy as np
import plotly.graph_objects as go

from ui.colours import AFTER, BEFORE, NEGATIVE, POSITIVE, RIGHT_SCALE, WRONG_SCALE, plotly_scale, scale_colour, text_on
from ui.figures import DIGIT_COLOURS, grid_canvas, grid_heatmap

PICK = "rgba(255,176,0,0.45)"   # a picked image / cell


def _pick_layer(x, y, hover, customdata, size: int) -> go.Scatter:
    return go.Scatter(x=x, y=y, mode="markers", customdata=customdata, hovertext=hover,
                      hoverinfo="text" if hover is not None else "skip",
                      marker=dict(symbol="square", size=size, color="rgba(0,0,0,0)"),
                      selected=dict(marker=dict(color=PICK)), unselected=dict(marker=dict(opacity=1)),
                      showlegend=False)


def image_grid(images: np.ndarray, captions: list[str] | None = None, hover: list[str] | None = None,
               ids=None, cols: int = 10, signed: bool = False, scale_each: bool = False,
               size: int = 80, title: str = "", dark: bool = False) -> go.Figure:
    """28×28 images in a grid, a caption under each, hover text and a clickable
    marker per image.

    ``signed`` draws weights with a diverging scale centred at zero; with
    ``scale_each`` every image is divided by its own largest |value|, so a
    neuron with small weights is as visible as one with large weights.
    ``ids`` (default 0, 1, …) is what a click on image ``i`` reports.
    ``size`` is the height in pixels of one row. Digits are dark ink on white,
    as on the other pages, or with ``dark`` white ink on black (MNIST's 255 = ink).
    """
    imgs = np.asarray(images, np.float32).reshape(-1, 28, 28)
    n = len(imgs)
    if n == 0:
        fig = go.Figure()
        fig.update_layout(height=60, margin=dict(l=0, r=0, t=0, b=0),
                          xaxis=dict(visible=False), yaxis=dict(visible=False))
        return fig
    if scale_each:
        lim = np.abs(imgs).reshape(n, -1).max(axis=1)
        imgs = imgs / np.where(lim > 0, lim, 1)[:, None, None]
    gap = 8 if captions else 1            # room for a caption under each image
    canvas, cols, py, px, r, c = grid_canvas(imgs, cols, below=gap)
    rows = -(-n // cols)
    fig = go.Figure(grid_heatmap(canvas, signed, dark))
    if captions:  # one update with all of them: add_annotation one by one is ~4 ms each
        fig.update_layout(annotations=[dict(x=c[i] * px + 13.5, y=r[i] * py + 28, text=text, showarrow=False,
                                            font=dict(size=12, color="#333"), yanchor="top")
                                       for i, text in enumerate(captions[:n])])
    ids = list(range(n)) if ids is None else [int(i) for i in ids]
    fig.add_trace(_pick_layer(c * px + 13.5, r * py + 13.5, hover, ids, max(10, int(size * 0.5))))
    fig.update_xaxes(visible=False, constrain="domain", range=[-0.5, cols * px - 1.5])
    fig.update_yaxes(visible=False, autorange=False, range=[rows * py - 0.5, -0.5], scaleanchor="x")
    fig.update_layout(margin=dict(l=0, r=0, t=30 if title else 0, b=0),
                      height=int(rows * size * py / 29 + (30 if title else 0)),
                      title=dict(text=title, x=0, font=dict(size=14)), plot_bgcolor="white",
                      clickmode="event+select", dragmode=False, hovermode="closest")
    return fig


def weight_image(w: np.ndarray, title: str = "", height: int = 330) -> go.Figure:
    """One neuron's 784 input weights as a 28×28 picture, blue < 0 < red, white at zero."""
    z = np.asarray(w, np.float32).reshape(28, 28)
    lim = float(np.max(np.abs(z))) or 1.0
    fig = go.Figure(go.Heatmap(z=z, colorscale="RdBu_r", zmin=-lim, zmax=lim, zmid=0,
                               hovertemplate="pixel (%{y}, %{x}): weight %{z:.4f}<extra></extra>",
                               colorbar=dict(thickness=10)))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), height=height,
                      margin=dict(l=0, r=0, t=34, b=0), plot_bgcolor="white")
    return fig


def vector_strip(v: np.ndarray, title: str = "", name: str = "", signed: bool | None = None,
                 height: int = 120) -> go.Figure:
    """One row of numbers (a layer for one image) as a strip of coloured cells;
    signed values on a diverging scale centred at zero."""
    z = np.asarray(v, np.float32).reshape(1, -1)
    signed = bool(z.min() < 0) if signed is None else signed
    kw = dict(zmin=-(float(np.abs(z).max()) or 1.0), zmax=float(np.abs(z).max()) or 1.0, zmid=0) if signed else {}
    fig = go.Figure(go.Heatmap(z=z, colorscale="RdBu_r" if signed else "Viridis", xgap=1,
                               hovertemplate=name + "[%{x}] = %{z:.4g}<extra></extra>",
                               colorbar=dict(thickness=8, len=1.2), **kw))
    fig.update_yaxes(visible=False)
    fig.update_xaxes(showgrid=False, zeroline=False)
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=13)), height=height,
                      margin=dict(l=4, r=4, t=28, b=22), plot_bgcolor="white")
    return fig


def class_boxes(per_class: list[np.ndarray], title: str = "", y_title: str = "") -> go.Figure:
    """One box per digit: how a unit's activation is distributed over the images of that digit."""
    fig = go.Figure()
    for c, v in enumerate(per_class):
        fig.add_trace(go.Box(y=np.asarray(v, float), name=str(c), marker_color=DIGIT_COLOURS[c % 10],
                             boxpoints=False, showlegend=False))
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), height=300,
                      margin=dict(l=10, r=10, t=36, b=10), yaxis_title=y_title, xaxis_title="true digit")
    fig.update_xaxes(type="category")
    return fig


def layer_bars(values: np.ndarray, title: str = "", name: str = "A", highlight: int | None = None,
               height: int = 220) -> go.Figure:
    """One activation vector as bars, unit ``j`` labelled ``name[j]``."""
    v = np.asarray(values, float).ravel()
    colours = np.where(v >= 0, "#2f6fdf", "#d62728").astype(object)
    if highlight is not None and 0 <= highlight < len(v):
        colours[highlight] = "#ff7f0e"
    fig = go.Figure(go.Bar(x=np.arange(len(v)), y=v, marker_color=list(colours),
                           hovertemplate=name + "[%{x}] = %{y:.4g}<extra></extra>"))
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), height=height,
                      margin=dict(l=10, r=10, t=36, b=10), bargap=0.1)
    fig.update_xaxes(title=f"unit j of {name}")
    return fig


def probability_bars(p: np.ndarray, true: int | None = None, title: str = "") -> go.Figure:
    """The ten probabilities; the prediction in orange, the true digit outlined."""
    p = np.asarray(p, float)
    pred = int(np.argmax(p))
    colours = ["#ff7f0e" if c == pred else "#2f6fdf" for c in range(len(p))]
    lines = [3 if c == true else 0 for c in range(len(p))]
    fig = go.Figure(go.Bar(x=[str(c) for c in range(len(p))], y=p, marker_color=colours,
                           marker_line=dict(width=lines, color="#111"), text=[f"{q:.0%}" if q >= 0.01 else ""
                                                                              for q in p],
                           textposition="outside", cliponaxis=False,
                           hovertemplate="A3[%{x}] = %{y:.4f}<extra></extra>"))
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), height=250,
                      margin=dict(l=10, r=10, t=40, b=10), yaxis=dict(range=[0, 1.08], title="probability"))
    fig.update_xaxes(type="category", title="digit")
    return fig


def before_after_bars(before: np.ndarray, after: np.ndarray, title: str = "", y_title: str = "",
                      x_title: str = "digit", true: int | None = None, height: int = 260) -> go.Figure:
    """One value per digit for the network as it is and as edited, side by side (grouped bars);
    "after" is hatched, so the two differ by more than their colour. The true digit, if given,
    is outlined. Values are fractions in [0, 1] (recall, probabilities)."""
    b, a = np.asarray(before, float), np.asarray(after, float)
    x = [str(c) for c in range(len(b))]
    lines = [3 if c == true else 0 for c in range(len(b))]
    fig = go.Figure()
    for name, v, colour, shape in (("before", b, BEFORE, ""), ("after the edits", a, AFTER, "/")):
        fig.add_trace(go.Bar(x=x, y=v, name=name, marker=dict(color=colour, pattern=dict(shape=shape),
                                                               line=dict(width=lines, color="#111")),
                             hovertemplate=f"{x_title} %{{x}} {name}: %{{y:.1%}}<extra></extra>"))
    fig.update_layout(title=dict(text=title, x=0, y=1, yref="container", yanchor="top", pad=dict(t=6),
                                 font=dict(size=14)), height=height, barmode="group",
                      margin=dict(l=10, r=10, t=58, b=10), yaxis=dict(range=[0, 1.05], title=y_title,
                                                                    tickformat=".0%"),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0))
    fig.update_xaxes(type="category", title=x_title)
    return fig


def contributions(terms: np.ndarray, k: int = 8, name: str = "A2", weight: str = "W3", c: int = 0,
                  title: str = "") -> go.Figure:
    """The ``k`` largest positive and ``k`` most negative terms ``name[j]·weight[j, c]``
    of one logit, as horizontal bars."""
    t = np.asarray(terms, float)
    order = np.argsort(t, kind="stable")
    neg = [j for j in order[:k] if t[j] < 0]
    pos = [j for j in order[::-1][:k] if t[j] > 0]
    js = neg[::-1] + pos[::-1]  # most negative at the bottom, largest at the top
    labels = [f"{name}[{j}]·{weight}[{j},{c}]" for j in js]
    fig = go.Figure(go.Bar(y=labels, x=t[js], orientation="h",
                           marker_color=[POSITIVE if t[j] > 0 else NEGATIVE for j in js],
                           hovertemplate="%{y} = %{x:.4f}<extra></extra>"))
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), height=max(220, 26 * len(js) + 70),
                      margin=dict(l=10, r=10, t=36, b=10), xaxis_title="contribution to the logit")
    fig.update_yaxes(type="category")
    return fig


def pca_scatter(coords: np.ndarray, y: np.ndarray, pred: np.ndarray | None = None, ids=None,
                title: str = "", explained: np.ndarray | None = None, height: int = 360,
                show_legend: bool = True, marker_size: int = 5) -> go.Figure:
    """2-D projection, one colour per true digit (one trace each, so the legend can
    hide a digit); misclassified images drawn as crosses. Each digit's name is written
    in a tag of its colour where its images are densest (the median of its points), so
    colour is not the only way to tell the classes apart. Hover and selection
    report the image's number (``customdata[0]``)."""
    coords = np.asarray(coords, float)
    y = np.asarray(y)
    ids = np.arange(len(y)) if ids is None else np.asarray(ids)
    pred = y if pred is None else np.asarray(pred)
    fig = go.Figure()
    tags = []
    for c in range(10):
        m = y == c
        if not m.any():
            continue
        # annotations, not a text trace: a lasso must select images only
        cx, cy = np.median(coords[m, 0]), np.median(coords[m, 1])
        tags.append(dict(x=float(cx), y=float(cy), text=f"<b>{c}</b>", showarrow=False, bgcolor=DIGIT_COLOURS[c],
                         font=dict(size=12, color=text_on(DIGIT_COLOURS[c])), bordercolor="#ffffff", borderwidth=1,
                         borderpad=1))
        wrong = pred[m] != c
        fig.add_trace(go.Scatter(
            x=coords[m, 0], y=coords[m, 1], mode="markers", name=str(c),
            marker=dict(color=DIGIT_COLOURS[c], size=marker_size,
                        symbol=np.where(wrong, "x", "circle").tolist(), opacity=0.75),
            customdata=np.stack([ids[m], y[m], pred[m]], axis=1).tolist(),  # lists: read back as lists
            hovertemplate="image %{customdata[0]}<br>label %{customdata[1]} · predicted %{customdata[2]}"
                          "<extra></extra>"))
    xt, yt = ("PC1", "PC2") if explained is None else \
        (f"PC1 ({explained[0]:.0%} of variance)", f"PC2 ({explained[1]:.0%})" if len(explained) > 1 else "")
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), height=height,
                      margin=dict(l=10, r=10, t=36, b=10), showlegend=show_legend,
                      legend=dict(title="digit", itemsizing="constant"), clickmode="event+select",
                      dragmode="lasso", annotations=tags)
    fig.update_xaxes(title=xt, zeroline=False, showticklabels=False)
    fig.update_yaxes(title=yt, zeroline=False, showticklabels=False)
    return fig


def confusion_figure(cm: np.ndarray, normalised: bool = False, pick: tuple[int, int] | None = None,
                     title: str = "") -> go.Figure:
    """The confusion matrix, true digit down, predicted across, the number in every
    cell. Off-diagonal cells are what to look at, so the colour scale is clipped to
    them and the diagonal gets its own scale: right in blue, wrong in orange (not green and red,
    which many colour-blind readers see as one colour). Each cell can be clicked."""
    cm = np.asarray(cm)
    k = cm.shape[0]
    counts = cm.astype(float)
    totals = counts.sum(axis=1, keepdims=True)
    frac = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    z = frac if normalised else counts
    diag = np.eye(k, dtype=bool)
    off = np.where(diag, np.nan, z)
    on = np.where(diag, z, np.nan)
    off_max = float(np.nanmax(off)) if np.isfinite(off).any() and np.nanmax(off) > 0 else 1.0
    text = [[("" if counts[t, p] == 0 else f"{frac[t, p]:.0%}" if frac[t, p] >= 0.005 else "<1%") if normalised
             else f"{int(counts[t, p])}" for p in range(k)] for t in range(k)]
    hover = [[f"true {t}, predicted {p}: {int(counts[t, p])} images ({frac[t, p]:.1%} of the {t}s)"
              for p in range(k)] for t in range(k)]
    on_max = float(np.nanmax(on)) if np.isfinite(on).any() and np.nanmax(on) > 0 else 1.0
    fig = go.Figure()
    fig.add_trace(go.Heatmap(z=on, x=list(range(k)), y=list(range(k)), colorscale=plotly_scale(RIGHT_SCALE),
                             showscale=False, zmin=0, zmax=on_max, hoverinfo="skip"))
    fig.add_trace(go.Heatmap(z=off, x=list(range(k)), y=list(range(k)), colorscale=plotly_scale(WRONG_SCALE), zmin=0,
                             zmax=off_max, hoverinfo="skip",
                             colorbar=dict(title="errors" if not normalised else "share", thickness=10,
                                           tickformat=".1%" if normalised else "")))
    tt, pp = np.divmod(np.arange(k * k), k)
    # annotations, not trace text: a selection must not fade the numbers. Each number is black or
    # white, whichever reads on the colour its cell is painted (a pale diagonal wants black).
    cell = [[scale_colour(RIGHT_SCALE, z[t, p] / on_max) if diag[t, p] else scale_colour(WRONG_SCALE, z[t, p] / off_max)
             for p in range(k)] for t in range(k)]
    fig.update_layout(annotations=[dict(x=int(p), y=int(t), text=text[t][p], showarrow=False,
                                        font=dict(size=12, color=text_on(cell[t][p]))) for t, p in zip(tt, pp)])
    fig.add_trace(go.Scatter(
        x=pp, y=tt, mode="markers", hovertext=[hover[t][p] for t, p in zip(tt, pp)], hoverinfo="text",
        customdata=np.stack([tt, pp], axis=1).tolist(),
        marker=dict(symbol="square", size=30, color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(color="rgba(0,0,0,0)")), unselected=dict(marker=dict(opacity=1)),
        showlegend=False))
    if pick is not None:
        t, p = pick
        fig.add_shape(type="rect", x0=p - 0.5, x1=p + 0.5, y0=t - 0.5, y1=t + 0.5,
                      line=dict(color="#000000", width=4))   # amber would vanish on the orange errors
    fig.update_xaxes(title="predicted digit", tickmode="array", tickvals=list(range(k)), side="top",
                     constrain="domain", showgrid=False, zeroline=False)
    fig.update_yaxes(title="true digit", tickmode="array", tickvals=list(range(k)), autorange="reversed",
                     scaleanchor="x", showgrid=False, zeroline=False)
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), height=480,
                      margin=dict(l=10, r=10, t=60, b=10), plot_bgcolor="white",
                      clickmode="event+select", dragmode=False)
    return fig


def prediction_counts(pred: np.ndarray, title: str = "") -> go.Figure:
    counts = np.bincount(np.asarray(pred, np.int64), minlength=10)
    fig = go.Figure(go.Bar(x=[str(c) for c in range(10)], y=counts, marker_color=DIGIT_COLOURS,
                           hovertemplate="predicted %{x}: %{y} images<extra></extra>"))
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), height=240,
                      margin=dict(l=10, r=10, t=36, b=10), yaxis_title="images")
    fig.update_xaxes(type="category", title="predicted digit")
    return fig
