"""The data: sample images, images per class, the average digit, pixel values, the split."""
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ui.figures import bars, digit_grid
from ui.text import plain
from ui.session import workspace
from ui.state import session
from ui.present import chart

ws = workspace()
split = ws.split
src = split.source
st.title("The data")
st.markdown(f"**The split.** {plain(split.describe())}")   # the source may be a file name
st.markdown(
    "Each image is 28 × 28 grey levels, 0 (background) to 255 (ink), flattened row by row into one row of "
    "784 numbers and divided by 255, so a mini-batch of *m* images is a matrix `X` of shape (m, 784).")


def summarise(split):
    """Images per class, the average image of each digit and the pixel histogram of the training set."""
    X, y = split.source.X[split.train_idx], split.source.y[split.train_idx]
    counts = np.bincount(y, minlength=10)
    means = np.stack([X[y == d].mean(axis=0) / 255 if counts[d] else np.zeros(784) for d in range(10)])
    # in chunks: bincount widens its input to int64, 8 bytes per pixel (260 MB for 41,000 images at once)
    hist = sum(np.bincount(X[i:i + 4096].ravel(), minlength=256) for i in range(0, len(X), 4096))
    return counts, means, hist


@st.cache_data(show_spinner=False, max_entries=8)
def mnist_summary(_split, key):
    """The shipped MNIST's summary, shared by every session (cached per split)."""
    return summarise(_split)


if ws.settings.dataset == "mnist":
    counts, means, hist = mnist_summary(split, (len(src), split.seed, split.n_train, split.n_val))
else:  # a user's own upload: summarised for this session only, never in the shared cache
    state = session()
    if state.data_summary is None or state.data_summary[0] is not split:
        state.data_summary = (split, summarise(split))
    counts, means, hist = state.data_summary[1]

st.subheader("Sample images")
seed = st.columns([1, 3])[0].number_input("Show other samples (seed)", 0, 10_000, 0)
pick = np.random.default_rng(seed).choice(split.train_idx, 30, replace=False)
chart(st, digit_grid(src.X[pick] / 255, [str(int(src.y[i])) for i in pick], cols=10), key="samples")

c1, c2 = st.columns(2)
with c1:
    st.subheader("Images per digit")
    chart(st, bars(counts, list(range(10)), y_title="training images"), key="counts")
    st.caption(f"Fewest: digit {int(counts.argmin())} ({counts.min():,}); most: digit {int(counts.argmax())} "
               f"({counts.max():,}). Close to balanced, so accuracy is a fair summary.")
with c2:
    st.subheader("The average image of each digit")
    chart(st, digit_grid(means, [str(d) for d in range(10)], cols=5, size=90), key="means")
    st.caption("Pixel by pixel mean of every training image of that digit: where ink usually is.")

st.subheader("Pixel values")
fig = go.Figure(go.Bar(x=np.arange(256), y=hist, marker_color="#2f6fdf"))
fig.update_yaxes(type="log", title="pixels (log scale)")
fig.update_xaxes(title="grey level 0–255")
fig.update_layout(height=280, margin=dict(l=10, r=10, t=10, b=10))
chart(st, fig, key="pixels")
zero = hist[0] / hist.sum()
st.caption(f"{zero:.0%} of all pixels are exactly 0 (background) and most ink pixels are near 255: "
           "the inputs are close to black and white.")
st.dataframe(pd.DataFrame({"set": ["training", "validation", "test"],
                           "images": [split.n_train, split.n_val, len(split.test) if split.test is not None else 0],
                           "used for": ["the gradient steps", "accuracy after every epoch (never trained on)",
                                        "the final, comparable score (kept apart)"]}), hide_index=True)
