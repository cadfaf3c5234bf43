"""Lesson: your first step of backprop. One mini-batch of the student's own network, stop by stop:
before a stop shows its numbers, a question about them, checked against the step itself.

The step is a real training step of the session's network, taken through the stepper
(``Lesson.new_step`` → ``Stepper.take_step`` → ``ws.step``) and kept in the same history, so the
stepper shows the same numbers. The questions, the checking and the feedback are
``core.teach.lesson``; where the student stands is ``core.lab.lesson.Lesson``. ``?q=3`` opens
question 3 of the current step.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.teach.lesson import MULTI, NUMBER, RIGHT, SKIPPED, WRONG, num, questions
from ui import derivations, figures
from ui.links import put as put_in_address
from ui.present import chart, prose, prose_caption
from ui.session import workspace
from ui.state import LESSON_AT, lesson_answer, session
from ui.stepper_views import batch_picture
from ui.text import count, plain

MARKS = {RIGHT: "✓", WRONG: "✗", SKIPPED: "–"}
# the fold-outs (ui/derivations.py) that say why a question's answer is what it is
WHY = {"sign": ("softmax_ce",), "zeros": ("activation", "chain_rule"), "loss": ("chain_rule", "step")}
NO_BAR = {"displayModeBar": False}


# --------------------------------------------------------------------------- callbacks
def lesson_now():
    """The session's workspace, stepper and lesson, as they are when a button is pressed."""
    ws = workspace()
    state = session()
    return ws, state.stepper.follow(ws), state.lesson.follow(ws)


def new_step() -> None:
    ws, stepper, lesson = lesson_now()
    lesson.new_step(ws, stepper)


def answer(step: int, i: int) -> None:
    ws, stepper, lesson = lesson_now()
    if lesson.step != step:             # the form was drawn for a step the lesson has left
        return
    q = questions(lesson.trace(ws, stepper))[i]
    answers = []
    for k, part in enumerate(q.parts):
        value = st.session_state.get(lesson_answer(step, i, k))
        answers.append(tuple(value or ()) if part.kind == MULTI else value)
    missing = q.missing(answers)
    if missing:
        lesson.note = missing
        return
    lesson.answer(i, q, answers)


def skip(step: int, i: int) -> None:
    ws, stepper, lesson = lesson_now()
    if lesson.step == step:
        lesson.skip(i, questions(lesson.trace(ws, stepper))[i])


def go(i: int) -> None:
    session().lesson.go(i)


def on_strip() -> None:
    i = st.session_state.get(LESSON_AT)
    if i is not None:
        session().lesson.go(int(i))


# --------------------------------------------------------------------------- drawing
def sample_picture(trace, r: int) -> np.ndarray:
    X = np.clip(np.rint(np.asarray(trace["X"][r], np.float64) * 255), 0, 255).astype(np.uint8)
    return batch_picture(X[None, :], [int(trace["y"][r])], cols=1, scale=5)


def given_table(given) -> None:
    frame = pd.DataFrame([[num(v, ".3g") for v in row] for row in given.values], index=list(given.rows),
                         columns=list(given.columns))
    st.table(frame)


def parts_form(step: int, i: int, q) -> None:
    with st.form(f"lesson_form_{step}_{i}", border=True):
        numbers = [k for k, p in enumerate(q.parts) if p.kind == NUMBER]
        cols = iter(st.columns(len(numbers))) if numbers else None
        for k, part in enumerate(q.parts):
            key = lesson_answer(step, i, k)
            if part.kind == NUMBER:
                next(cols).number_input(part.label, min_value=0, step=1, value=None, key=key,
                                        placeholder="a whole number")
            elif part.kind == MULTI:
                st.multiselect(part.label, part.options, key=key, placeholder="none of them")
            else:
                st.radio(part.label, part.options, index=None, key=key, horizontal=True)
        a, b, _ = st.columns([1.3, 1, 3])
        a.form_submit_button("Check my answer", type="primary", on_click=answer, args=(step, i), width="stretch")
        b.form_submit_button("Skip", on_click=skip, args=(step, i), width="stretch")


def feedback(result) -> None:
    if result.status == RIGHT:
        st.success(f"**Right.** {result.verdict}", icon=":material/check:")
    elif result.status == WRONG:
        st.error(f"**Not quite.** {result.verdict}", icon=":material/close:")
    else:
        st.info(f"**{result.verdict}**", icon=":material/skip_next:")
    st.markdown(f"**Why**\n\n{result.why}")


def reveal(q, key: str) -> None:
    rv = q.reveal
    if rv.kind == "loss":
        before, after = (float(v) for v in rv.values)
        c1, c2, _ = st.columns([1, 1, 1])
        c1.metric(rv.labels[0], num(before))
        # an ASCII sign: Streamlit reads it for the arrow (a "−" would point up)
        c2.metric(rv.labels[1], num(after), delta=f"{after - before:+.3g}", delta_color="inverse")
        return
    if rv.kind == "bars":
        fig = figures.bars(rv.values, rv.labels, rv.title, rv.highlight, y_title=rv.axes[1])
        fig.update_xaxes(title=rv.axes[0])
    else:
        fig = figures.heatmap(rv.values, rv.title, x_title=rv.axes[0], y_title=rv.axes[1], height=340)
    chart(st, fig, key=key, config=NO_BAR)


# --------------------------------------------------------------------------- the page
st.title("Lesson: your first step")
prose("One mini-batch of **your** network, stop by stop: forward, loss, backward, update. Before a stop shows its "
      "numbers you are asked about them, and your answer is checked against the step itself. The step is real: "
      "it trained your network, and the stepper shows the same numbers.")

ws, S, lesson = lesson_now()
at_step = ws.trainer.global_step
trace = lesson.trace(ws, S)
if ws.trainer.global_step != at_step:
    st.rerun()                      # the lesson took its first step: so the sidebar, drawn before, shows it
if trace is None:
    st.error(lesson.problem or "No step could be taken.")
    if ws.busy:
        st.page_link("pages/training.py", label="Pause the run on the training page", icon=":material/model_training:")
    st.stop()
qs = questions(trace)
n = len(qs)
lesson.read_link(st.query_params.to_dict(), n)
i = lesson.place(n)
q = qs[i]
step = lesson.step
rec = lesson.record(ws)
tr = ws.trainer
m = len(trace["y"])

c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
later = f" Your network has trained on since: it is at step {tr.global_step:,}." if tr.global_step != step else ""
c1.caption(f"Step {step:,} of your network ({plain(ws.origin)}, {' → '.join(map(str, trace.sizes))}, "
           f"{trace.activation.label}): epoch {rec.epoch}, batch {rec.step_in_epoch} of {tr.steps_per_epoch}, "
           f"{count(m, 'image')}.{later}")
c2.button("New step", icon=":material/refresh:", on_click=new_step, disabled=ws.busy, key="lesson_new_step",
          width="stretch", help="A training run is going on: pause it on the training page first." if ws.busy
          else "Train your network on its next mini-batch, and ask about that step.")
if lesson.problem:
    st.error(lesson.problem)
    st.page_link("pages/stepper.py", label="Undo or start fresh on the stepper", icon=":material/footprint:")
if lesson.note:
    st.info(lesson.note)

score = lesson.score()
done = len(lesson.results)
st.progress(done / n, text=f"Question {i + 1} of {n} · {done} answered · {score[RIGHT]} right")
st.session_state[LESSON_AT] = i
st.segmented_control("Question", list(range(n)), key=LESSON_AT, on_change=on_strip, label_visibility="collapsed",
                     format_func=lambda k: f"{k + 1} {MARKS.get(getattr(lesson.results.get(k), 'status', ''), '')}"
                     .strip())

st.subheader(f"Question {i + 1} · {q.title}")
st.latex(q.formula)
if q.sample is not None:
    pic, text = st.columns([1, 5])
    pic.image(sample_picture(trace, q.sample), caption=f"sample {q.sample}", width=140)
else:
    text = st.container()
text.markdown(q.prompt)
if q.given is not None:
    given_table(q.given)

result = lesson.results.get(i)
if result is None:
    parts_form(step, i, q)
else:
    feedback(result)
    reveal(q, key=f"lesson_reveal_{step}_{i}")
    why = WHY.get(q.key, ())
    if why:   # the reasons behind the numbers just revealed, derived in this network's names
        derivations.fold_outs(trace.sizes, trace.activation, names=why, m=m, batchnorm=trace.batchnorm)

prev, nxt, _ = st.columns([1, 1.3, 3])
prev.button("← Previous", on_click=go, args=(i - 1,), disabled=i == 0, key="lesson_prev", width="stretch")
if i < n - 1:
    nxt.button("Next question →", on_click=go, args=(i + 1,), disabled=result is None, key="lesson_next",
               type="primary" if result is not None else "secondary", width="stretch",
               help=None if result is not None else "Answer or skip this question first.")

if lesson.finished(n):
    st.success(f"**Score: {score[RIGHT]} of {n} right** ({score[WRONG]} wrong, {score[SKIPPED]} skipped). "
               "**New step** trains your network on its next mini-batch and asks again, with that step's numbers.",
               icon=":material/school:")
    a, b, _ = st.columns([1, 1.5, 2.5])
    a.button("New step", icon=":material/refresh:", on_click=new_step, disabled=ws.busy, key="lesson_new_step_end",
             type="primary", width="stretch")
    b.page_link("pages/stepper.py", label="See every number of this step", icon=":material/footprint:")
else:
    prose_caption("You may skip any question: its answer is shown, and it counts as not answered right.")

want = lesson.link_query()
put_in_address(want)
