"""Kaggle submission: predict every image of Kaggle's test.csv, download submission.csv."""
import numpy as np
import streamlit as st

from core.engine.metrics import submission_csv
from core.engine.trainer import evaluate
from ui import present, uploads
from ui.inspect_plots import image_grid, prediction_counts
from ui.text import plain
from ui.session import offer_pretrained, snapshot_choice, workspace
from ui.state import session
from ui.present import chart

ws = workspace()
memo = session().memo
kaggle = session().kaggle
net = ws.net

st.title("Kaggle submission")
st.markdown("Kaggle's *Digit Recognizer* competition gives a `test.csv` of 28,000 unlabelled images "
            "(`pixel0,…,pixel783`, one row per image). Upload it: the network predicts every row and you "
            "download `submission.csv` (`ImageId,Label`, ImageId counted from 1) to submit.")
offer_pretrained(ws, "This network has not been trained yet: its submission would score about 10%.", key="kaggle_pretrained")
at_epoch, params = snapshot_choice(ws, key="kaggle_snapshot")

up = st.file_uploader("Kaggle test.csv (a train.csv with labels works too)", type=["csv", "gz"],
                      key="kaggle_upload")
if uploads.is_new(up, "kaggle"):
    with st.spinner(f"Reading {up.size / 1e6:.1f} MB…"):
        got = uploads.read_csv(up, require_labels=None)
    if got.ok:
        kaggle.error, kaggle.csv, kaggle.name = "", got.value, up.name
    else:   # the predictions of an earlier file, if any, stay on screen
        kept = (kaggle.name or "the earlier file") if kaggle.csv is not None else None
        kaggle.error = got.error(
            f"The predictions below are still those for {plain(kept)}." if kept else "")
elif up is None:
    kaggle.error = ""

if kaggle.error:
    st.error(kaggle.error)   # escaped by uploads: the file's text never becomes markup
csv = kaggle.csv
if csv is None:
    st.stop()

name = kaggle.name or "the upload"
result = memo.get("kaggle", (csv, params), lambda: evaluate(net, csv.X, csv.y, params))
pred = result["pred"]
submission = submission_csv(pred)
kaggle.submission = submission   # exactly the bytes the button serves

st.success(f"Predicted {len(pred):,} images with the network at epoch {at_epoch}.")
st.text(f"File: {name}" + ("" if not csv.notes else "  ·  " + "; ".join(csv.notes)))
if csv.y is not None:
    st.metric("Accuracy on this labelled file", f"{result['acc']:.2%}",
              help="The file has a label column, so the predictions can be scored.")
d1, d2 = st.columns([1, 2])
d1.download_button("Download submission.csv", submission, file_name="submission.csv", mime="text/csv",
                   type="primary", on_click="ignore", key="kaggle_download", icon=":material/download:")
size = len(submission)
d1.caption(f"{len(pred):,} rows plus the header, "
           + (f"{size:,} bytes." if size < 10_000 else f"{size / 1e3:,.0f} kB."))   # not "0 kB" for a few rows
d2.code("\n".join(submission.decode().splitlines()[:5]) + "\n…", language="text")

left, right = st.columns([2, 1])
with left:
    n = min(30, len(pred))
    conf = result["proba"][np.arange(n), pred[:n]]
    caps = [f"#{i + 1}: {pred[i]}" for i in range(n)]
    if csv.y is not None:
        caps = [c + ("" if pred[i] == csv.y[i] else f" (is {csv.y[i]})") for i, c in enumerate(caps)]
    chart(st, image_grid(csv.X[:n] / 255, caps, [f"ImageId {i + 1}: {pred[i]} ({conf[i]:.1%})"
                                                 for i in range(n)], **present.grid(10, 88),
                         title=f"The first {n} images and their predicted labels"),
          key="kaggle_grid", config={"displayModeBar": False})
with right:
    chart(st, prediction_counts(pred, "How many of each digit it predicts"), key="kaggle_counts",
          config={"displayModeBar": False})
    unsure = np.argsort(result["proba"].max(axis=1))[:5]
    st.caption("Least sure: " + ", ".join(f"ImageId {i + 1} ({result['proba'][i].max():.0%})" for i in unsure))
