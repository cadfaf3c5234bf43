"""Lesson: the learning rate. The network's next step, taken four times from the same place on the
same mini-batch at η = 0.01, 0.1, 1 and 10: the student predicts, then sees the loss and the
update-to-weight ratio of each. The steps are taken on copies (core/teach/lr_lesson.py), through
the same ``Trainer.train_step`` as every step of the app; the session's network does not change.
"""
from __future__ import annotations

import math

import streamlit as st

from core.engine.augment import to_u8
from core.teach import lr_lesson
from core.teach.lr_lesson import OUTCOMES
from ui import derivations, lr_lesson_plots as plots
from ui.present import chart, prose, prose_caption
from ui.session import workspace
from ui.state import session
from ui.stepper_views import batch_picture
from ui.text import count, plain

ws = workspace()
S = session().lr_lesson


def stale(lesson, ws) -> bool:
    """The lesson was taken from another network, or another place, or another optimizer."""
    return lesson.params is not ws.net.params or lesson.hyper != ws.optimizer.hyper


def take_lesson() -> None:
    with st.spinner("Taking the four steps on copies of your network…"):
        S.lesson = lr_lesson.run(ws.trainer, lock=ws.runner.between_reports())
    S.revealed, S.serial = False, S.serial + 1


def predict_key(i: int) -> str:
    return f"lr_predict_{S.serial}_{i}"


def best_key() -> str:
    return f"lr_best_{S.serial}"


def reveal() -> None:
    """Keep the predictions as they were when the steps were asked for: from now on they are shown, not asked."""
    S.predictions = {lr: st.session_state.get(predict_key(i)) for i, lr in enumerate(S.lesson.lrs)}
    S.best_guess = st.session_state.get(best_key())
    S.revealed = True


def try_again() -> None:
    S.revealed, S.serial = False, S.serial + 1


def lr_text(lr: float) -> str:
    return f"η = {lr:g}"


# --------------------------------------------------------------------------- the page
st.title("Lesson: the learning rate")
prose("The learning rate η says how far one step goes against the gradient. Here your network's next step is "
      "taken four times, from the same parameters on the same mini-batch, at η = 0.01, 0.1, 1 and 10. Say first "
      "what you expect each one to do to the batch's loss; then see what it did, and how much it changed the "
      "weights (the update-to-weight ratio ‖ΔW‖/‖W‖, which is around 10⁻³ when η is sane).")

lesson = S.lesson
if lesson is None or (stale(lesson, ws) and not ws.busy):
    take_lesson()
    lesson = S.lesson
tr = ws.trainer
st.info(f"**Your network does not change.** The four steps are taken on copies of it (its parameters and its "
        f"optimizer's state, with η replaced), through the same `train_step` the stepper and a training run use. "
        f"Your network stays at step {lesson.global_step:,}, and its next step is still this mini-batch, at its own "
        f"η = {lesson.optimizer_lr:g}.", icon=":material/content_copy:")
st.caption(f"Your network: {plain(ws.origin)}, {' → '.join(map(str, ws.net.sizes))}, {ws.net.act.label}, "
           f"{lesson.optimizer_name} with η = {lesson.optimizer_lr:g}; {count(lesson.global_step, 'step')} taken.")
if ws.busy:
    st.warning(f"A training run is going on in the background. The lesson took your network as it was at step "
               f"{lesson.global_step:,}, between two of the run's reports, and leaves the run alone; the run has "
               f"moved on since.")
    st.button("Take the lesson again from where the run is now", on_click=take_lesson, key="lr_retake")
elif stale(lesson, ws):       # cannot happen when idle (it is retaken above), kept for clarity
    st.button("Take the lesson again", on_click=take_lesson, key="lr_retake")

# ---- 1 · the batch
st.subheader("1 · The mini-batch")
c1, c2 = st.columns([2, 1], vertical_alignment="center")
with c1:
    # the images every trial's step trains on: with data augmentation, as moved and turned for this step
    images = to_u8(lesson.X[:64]) if lesson.moved else ws.split.source.X[lesson.idx[:64]]
    st.image(batch_picture(images, lesson.labels[:64]), width="stretch", output_format="PNG")
    st.caption(f"The trainer's next mini-batch: epoch {lesson.epoch}, batch {lesson.step_in_epoch} "
               f"({count(len(lesson.idx), 'image')}" + (", the first 64 shown" if len(lesson.idx) > 64 else "") +
               "). Labels above the images." +
               (f" **As the network sees them**: data augmentation has each image {lesson.moved}, the same for "
                "every η." if lesson.moved else ""))
with c2:
    st.metric("Its loss now", f"{lesson.loss_before:.4g}",
              help="The mean cross-entropy of this batch under your network as it is: the number each step tries "
                   "to make smaller.")
    prose_caption("Every step below starts from this loss and from the same weights.")

# ---- 2 · predict
st.subheader("2 · Your prediction")
prose("For each learning rate: after one step on this batch, what happens to the batch's loss? A drop of "
      f"{lr_lesson.BIG_DROP:.0%} or more counts as *a lot*. *Blows up* means the engine refuses the step because "
      "it would make some layer's weights more than 10 times larger.")
done = S.revealed
if done:        # answered: the answers now stand in the table, beside what happened (a disabled radio is pale)
    st.caption("Your answers are in the table below, next to what happened. *Predict again* asks afresh.")
else:
    keys = list(OUTCOMES)
    for i, (col, lr) in enumerate(zip(st.columns(len(lesson.lrs)), lesson.lrs)):
        col.radio(lr_text(lr), keys, index=None, format_func=lambda k: OUTCOMES[k].label, key=predict_key(i))
    st.radio("Which η lowers this batch's loss the most?", list(lesson.lrs), index=None, horizontal=True,
             format_func=lr_text, key=best_key())
if not done:
    st.button("Take the four steps", type="primary", on_click=reveal, key="lr_reveal",
              help="Predictions are optional: leave some out, and they are just not scored.")
    st.stop()

# ---- 3 · what happened
st.subheader("3 · What happened")
verdicts = lr_lesson.score(lesson, S.predictions)
best_guess = S.best_guess
answered = [v for v in verdicts if v.predicted is not None]
right = sum(v.right for v in answered)
best = lesson.best
parts = []
if answered:
    parts.append(f"You predicted **{right} of {len(answered)}** outcome{'s' if len(answered) != 1 else ''} right.")
if best is None:
    parts.append("No step lowered this batch's loss.")
elif best_guess is not None:
    parts.append(("Right: " if lr_lesson.best_guess_right(lesson, best_guess) else f"You said η = {best_guess:g}; ")
                 + f"η = {best:g} lowered the loss most.")
else:
    parts.append(f"η = {best:g} lowered the loss most.")
(st.success if answered and right == len(answered) else st.info)(" ".join(parts))
start_note = lr_lesson.at_the_start(lesson)
if start_note:
    st.warning(start_note, icon=":material/hourglass_top:")
    st.page_link("pages/training.py", label="Train it on the training page, then come back",
                 icon=":material/model_training:")
c1, c2 = st.columns([1, 4])
c1.button("Predict again", on_click=try_again, key="lr_again", help="Hide the results and start the predictions over.")

left, right = st.columns(2)     # side by side on a wide screen, one above the other on a phone
chart(left, plots.loss_figure(lesson), key="lr_loss_figure", config={"displayModeBar": False})
chart(right, plots.ratio_figure(lesson), key="lr_ratio_figure", config={"displayModeBar": False})
ratio_cols = {c: st.column_config.NumberColumn(format="%.2e") for c in plots.lesson_table(lesson).columns
              if c.startswith("‖")}
st.dataframe(plots.lesson_table(lesson, verdicts), hide_index=True, key="lr_table",
             column_config={"η": st.column_config.NumberColumn(format="%g"),
                            "loss after": st.column_config.NumberColumn(format="%.5g"),
                            "change": st.column_config.NumberColumn(format="percent"),
                            "first-order prediction": st.column_config.NumberColumn(
                                format="%+.3g", help="Σ dW·ΔW over all parameters: the change of the loss if it "
                                                     "were a straight line around the starting point.")} | ratio_cols)

st.markdown("**What each step did**")
for t in lesson.trials:
    st.markdown("- " + lr_lesson.trial_text(t))

st.markdown("**Why the ratio grows with η**")
per_lr = lesson.ratio_per_lr()
st.markdown(lesson.lr_note + (
    f" Measured here: ‖ΔW1‖/‖W1‖ divided by η is {per_lr[0, 0]:.3g} at every η, so each ×10 of η made the ratio "
    "×10." if lesson.proportional else " Measured here, the ratio did not grow exactly in proportion to η."))
straight = lr_lesson.first_order_text(lesson)
if straight:
    prose("**A straight line predicts small steps.** Near the start, the loss is close to its tangent plane: a "
          "step ΔW changes it by about Σ dW·ΔW (the fold-out below derives it). " + straight + ". For small η "
          "the two agree; as η grows, the curvature the straight line ignores takes over.")
derivations.fold_outs(ws.net.sizes, ws.net.act, names=("step",), m=len(lesson.idx))
st.page_link("pages/stepper.py", label=f"Take the step for real, at your network's own η = {lesson.optimizer_lr:g}, on "
             "the stepper: it is the same batch", icon=":material/footprint:")
prose_caption("This lesson looks at one step only. Whether a learning rate trains well shows over many: the "
              "training page's update-to-weight ratio per layer, epoch after epoch.")
