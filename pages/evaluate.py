"""Where it fails: accuracy, the confusion matrix, per-class precision and recall,
a gallery of mistakes, and the curves of the run the network came from."""
import numpy as np
import pandas as pd
import streamlit as st

from core.engine.metrics import confusion_matrix, mistakes, precision_recall, top_k
from core.engine.network import N_CLASSES
from core.engine.trainer import evaluate
from ui import phone, present, training_plots as tp
from ui.inspect_plots import confusion_figure, image_grid, probability_bars
from ui.links import keep_view, link_box, read_view, scroll_to
from ui.session import SEED_VAL_ACC, offer_pretrained, snapshot_choice, workspace
from ui.state import EVAL_SET, MIS_PRED, MIS_TRUE, session, snapshot_key
from ui.present import chart, prose, prose_caption

PAGE = "evaluate"      # this page's address, /evaluate
SNAPSHOT = "eval_snapshot"
CONFUSION_ANCHOR = "confusion"     # the section a link to a cell opens on

ws = workspace()
state = session()
memo = state.memo
net, split = ws.net, ws.split

st.title("Where it fails")
prose("Run every held-out image through the network and count what it gets wrong: which digits it "
      "confuses with which, how sure it was when it was wrong, and how the run got here.")
offer_pretrained(ws, "This network has not been trained yet, so it guesses: expect about 10% accuracy.", key="eval_pretrained")

sets = {"validation": (split.source, split.val_idx)}
if split.test is not None:
    sets["test"] = (split.test, None)

# a link's view (once per session): a snapshot, the images looked at, a cell of the confusion matrix
link = read_view(PAGE, {"epoch": sorted(ws.trainer.snapshots), "set": tuple(sets), "true": range(N_CLASSES),
                        "pred": range(N_CLASSES)})
if "epoch" in link:
    st.session_state[snapshot_key(SNAPSHOT, ws.trainer)] = link["epoch"]
for name, key in (("set", EVAL_SET), ("true", MIS_TRUE), ("pred", MIS_PRED)):
    if name in link:
        st.session_state[key] = link[name]
if "true" in link or "pred" in link:        # open on the cell and its images, not on the top of the page
    scroll_to(CONFUSION_ANCHOR)
at_epoch, params = snapshot_choice(ws, key=SNAPSHOT)
epoch_shown = None if params is ws.net.params else at_epoch     # a snapshot, or the network now


def images_of(name: str):
    source, idx = sets[name]
    return (source.X, source.y) if idx is None else (source.X[idx], source.y[idx])


def result_of(name: str) -> dict:
    def compute():
        X, y = images_of(name)
        return evaluate(net, X, y, params)
    return memo.get(f"evaluate:{name}", (split, params), compute)


results = {name: result_of(name) for name in sets}
cols = st.columns(4)
for col, name in zip(cols[:2], results):
    r = results[name]
    col.metric(f"{name.capitalize()} accuracy", f"{r['acc']:.2%}",
               help=f"{len(r['pred']):,} {name} images, network at epoch {at_epoch}")
for col, name in zip(cols[2:], results):
    col.metric(f"{name.capitalize()} loss", f"{results[name]['loss']:.4f}", help="mean cross-entropy")
if "test" not in results:
    st.caption("This split has no labelled test set (an uploaded train.csv): validation only.")

which = st.radio("Look at", list(sets), horizontal=True, key=EVAL_SET,
                 format_func=lambda s: f"{s} images ({len(results[s]['pred']):,})")
X, y = images_of(which)
r = results[which]
pred, proba = r["pred"], r["proba"]
cm = confusion_matrix(y, pred)

# --------------------------------------------------------------------------- confusion matrix
st.subheader("Which digits it confuses", anchor=CONFUSION_ANCHOR)
left, right = st.columns([3, 2])
with left:
    normalised = st.toggle("Row-normalised (share of each true digit)", key="cm_norm")
    pick = (st.session_state.get(MIS_TRUE), st.session_state.get(MIS_PRED))
    st.markdown(f"**{which.capitalize()}: {int(cm.sum()):,} images, {int(cm.sum() - np.trace(cm)):,} wrong** "
                f"(network at epoch {at_epoch})")
    fig = confusion_figure(cm, normalised, pick=pick if None not in pick else None)
    event = chart(st, fig, key="cm_chart", on_select="rerun", selection_mode="points",
                  config={"displayModeBar": False})
    prose_caption("Rows: the true digit; columns: what the network said. The diagonal (blue) is right, "
                  "everything else (orange) is a mistake. Click a cell to see its images below.")
with right:
    pr = precision_recall(cm)
    table = pd.DataFrame({"digit": np.arange(10), "images": pr["support"], "precision": pr["precision"],
                          "recall": pr["recall"], "F1": pr["f1"]})
    st.dataframe(table, hide_index=True, key="pr_table",
                 column_config={k: st.column_config.NumberColumn(k, format="percent")
                                for k in ("precision", "recall", "F1")})
    worst = int(np.nanargmin(pr["recall"])) if np.isfinite(pr["recall"]).any() else None
    st.markdown("**Precision** of digit *d*: of the images it *called* d, the share that are d.  \n"
                "**Recall** of *d*: of the images that *are* d, the share it found."
                + (f"  \nLowest recall: **{worst}** ({pr['recall'][worst]:.1%})." if worst is not None else ""))

# a click on a cell sets the gallery's filters, once per new click
points = event.selection.points if event is not None else []
clicked = None
for p in points:   # cells are points at x = predicted, y = true
    if p.get("x") is not None and p.get("y") is not None:
        clicked = (int(p["y"]), int(p["x"]))
if clicked is not None and clicked != state.confusion_click:
    state.confusion_click = clicked
    st.session_state[MIS_TRUE], st.session_state[MIS_PRED] = clicked
    st.rerun()
if clicked is None:
    state.confusion_click = None

# --------------------------------------------------------------------------- mistakes
st.subheader("Its mistakes")
DIGIT_OPTIONS = [None] + list(range(10))
fa, fb, fc, fd = st.columns([1, 1, 1.4, 1.4])
true_c = fa.selectbox("True digit", DIGIT_OPTIONS, key=MIS_TRUE, format_func=lambda d: "any" if d is None else str(d))
pred_c = fb.selectbox("Predicted", DIGIT_OPTIONS, key=MIS_PRED, format_func=lambda d: "any" if d is None else str(d))
order = fc.radio("Order", ["most confident first", "least confident first"], key="mis_order", horizontal=True)
n_show = fd.select_slider("Show", [12, 24, 48, 96], value=24, key="mis_n")
wrong = mistakes(y, pred, proba, true_class=true_c, pred_class=pred_c,
                 most_confident_first=order.startswith("most"))
view = dict(epoch=epoch_shown, set=None if which == "validation" else which, true=true_c, pred=pred_c)
keep_view(PAGE, **view)
if true_c is not None and true_c == pred_c:
    st.info("That is the diagonal: those images are right, not mistakes. Pick two different digits.")
elif len(wrong) == 0:
    st.success("No mistakes with these filters.")
else:
    shown = wrong[:n_show]
    k_idx, k_p = top_k(proba[shown], 3)
    captions = [f"{y[i]}→{pred[i]} {proba[i, pred[i]]:.0%}" for i in shown]
    hover = [f"{which} image {i}: true {y[i]}<br>" + "<br>".join(f"{c}: {p:.1%}" for c, p in zip(kc, kp))
             for i, kc, kp in zip(shown, k_idx, k_p)]
    st.caption(f"{len(wrong):,} mistakes with these filters, showing {len(shown)}. Caption: true → predicted, "
               f"with the probability it gave its wrong answer. Hover for the top 3; click one to look closer.")
    gallery = chart(phone.wide(st, "mis_grid"),
                    image_grid(X[shown] / 255, captions, hover, ids=shown, **present.grid(12, 92)), key="mis_grid",
                    on_select="rerun", selection_mode="points", config={"displayModeBar": False})
    table = pd.DataFrame({"image": shown, "true": y[shown].astype(int), "predicted": pred[shown],
                          "probability": proba[shown, pred[shown]],
                          "top 3": [", ".join(f"{c} ({p:.0%})" for c, p in zip(kc, kp))
                                    for kc, kp in zip(k_idx, k_p)]})
    chosen = [int(p["customdata"]) for p in (gallery.selection.points if gallery is not None else [])
              if p.get("customdata") is not None]
    if chosen:
        i = chosen[-1]
        a, b = st.columns([1, 3])
        chart(a, image_grid(X[i:i + 1] / 255, size=200), key="mis_one", config={"displayModeBar": False})
        chart(b, probability_bars(proba[i], true=int(y[i]),
                                  title=f"{which} image {i}: the true {y[i]} outlined, "
                                        f"the prediction {pred[i]} in orange"),
              key="mis_one_p", config={"displayModeBar": False})
    with st.expander("The same mistakes as a table"):
        st.dataframe(table, hide_index=True, key="mis_table",
                     column_config={"probability": st.column_config.NumberColumn(format="percent")})
link_box(ws, PAGE, "these images" if true_c is not None or pred_c is not None else "this view", **view)

# --------------------------------------------------------------------------- curves
st.subheader("How the run got here")
h = ws.history
if len(h) == 0:
    st.info("No epoch finished yet: the curves appear after the first epoch of training.")
else:
    mark = None if at_epoch == ws.trainer.epoch else at_epoch
    c = tp.read_history(h, tp.CURVE_COLUMNS)
    log_x = len(h) > 50
    a, b = st.columns(2)
    chart(a, tp.loss_figure(c["epoch"], c["train_loss"], c["val_loss"], c["step_loss"],
                            ws.trainer.steps_per_epoch, log_x=log_x, mark_epoch=mark), key="eval_loss")
    chart(b, tp.accuracy_figure(c["epoch"], c["train_acc"], c["val_acc"], reference=SEED_VAL_ACC,
                                reference_label=f"seed notebook {SEED_VAL_ACC:.1%}", log_x=log_x,
                                mark_epoch=mark), key="eval_acc")
    prose_caption(f"Training loss and accuracy are averaged over each epoch's mini-batches while the weights "
                  f"were changing; validation is measured at the end of the epoch. The dashed line is the seed "
                  f"notebook's final {SEED_VAL_ACC:.1%}." + (" The dotted line is the snapshot you picked."
                                                             if mark is not None else ""))
    val_loss = h.column("val_loss")
    best = int(np.nanargmin(val_loss)) if np.isfinite(val_loss).any() else None
    if best is not None and val_loss[-1] > 1.2 * val_loss[best]:
        ep = h.column("epoch").astype(int)
        st.markdown(f"The validation loss was lowest at epoch **{ep[best]}** ({val_loss[best]:.3f}) and is "
                    f"{val_loss[-1]:.3f} now, while the training loss kept falling: the network grows ever "
                    f"more sure of its answers on the images it trains on, and its few wrong answers on new "
                    f"images become confidently wrong. Accuracy hardly moves: that is over-fitting, seen "
                    f"in the loss first.")
