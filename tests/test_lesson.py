"""The lesson "Your first step of backprop": questions made from a step's own numbers
(core/teach/lesson.py), where the student stands (core/lab/lesson.py), and the page (AppTest).

The right answers are computed here from the trace itself (and the loss after the update by a
second forward pass of the network the step left), never read from the questions."""
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.lab.lesson import Lesson
from core.lab.settings import Settings
from core.lab.stepper import Stepper
from core.lab.workspace import Workspace
from core.teach.lesson import (LOSS_CHANGES, MULTI, RIGHT, ROW_SIGNS, SIGNS, SKIPPED, WRONG, num, questions)
from ui import derivations
from ui.state import lesson_answer, session

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
SMALL = {"pool": "3000", "val": "500"}


def lab(mnist, **kw):
    ws = Workspace(replace(Settings(pool=3000, val=500), **kw), mnist["train"], mnist["test"])
    return ws, Stepper().follow(ws)


def by_key(trace):
    return {q.key: q for q in questions(trace)}


def entry(label: str) -> tuple[int, int]:
    """"dZ2[5, 17]" → (5, 17)."""
    i, j = label[label.index("[") + 1:-1].split(",")
    return int(i), int(j)


def right_answers(trace, qs, loss_after: float) -> dict:
    """Each question's right answer, from the trace's numbers (not from the question's own key)."""
    L = trace.n_layers
    h = L - 1
    y = np.asarray(trace["y"])
    out = {"shape": (np.shape(trace["Z1"])[0], np.shape(trace["Z1"])[1])}
    r = qs["predict"].sample
    out["predict"] = (str(int(np.asarray(trace[f"A{L}"])[r].argmax())),)
    dZ = np.asarray(trace[f"dZ{L}"])[r]
    t = int(y[r])
    assert dZ[t] <= 0 and (np.delete(dZ, t) >= 0).all()      # what the lesson teaches holds for this step
    out["sign"] = ("negative" if dZ[t] < 0 else "zero", ROW_SIGNS[1])   # 0: a probability of 1 in float32
    part = qs["zeros"].parts[0]
    out["zeros"] = (tuple(o for o in part.options if np.asarray(trace[f"dZ{h}"])[entry(o)] == 0),)
    before = trace.loss
    drop = (before - loss_after) / before
    out["loss"] = (LOSS_CHANGES[0] if loss_after >= before else LOSS_CHANGES[1] if drop < 0.01
                   else LOSS_CHANGES[2] if drop <= 0.1 else LOSS_CHANGES[3],)
    return out


def step_and_loss_after(ws):
    trace = ws.step()
    after = float(ws.net.forward_backward(trace["X"], trace["y"]).loss)    # the network holds the new parameters
    return trace, after


# --------------------------------------------------------------------------- the questions
@pytest.mark.parametrize("kw, names", [
    ({}, ("A3", "dZ3", "dZ2")),
    ({"activation": "sigmoid"}, ("A3", "dZ3", "dZ2")),
    ({"hidden": (32,)}, ("A2", "dZ2", "dZ1")),
    ({"hidden": (32, 16, 16), "activation": "tanh"}, ("A4", "dZ4", "dZ3")),
])
def test_right_answers_are_accepted_for_every_network_the_settings_allow(mnist, kw, names):
    ws, _ = lab(mnist, **kw)
    trace, after = step_and_loss_after(ws)
    qs = by_key(trace)
    assert list(qs) == ["shape", "predict", "sign", "zeros", "loss"]
    assert [qs["predict"].stop, qs["sign"].stop, qs["zeros"].stop] == list(names)
    assert qs["zeros"].formula == trace.spec(names[2]).latex          # the on-screen equation of that stop
    for key, answers in right_answers(trace, qs, after).items():
        fb = qs[key].check(answers)
        assert fb.status == RIGHT and fb.right, (key, answers, fb.verdict)
        assert fb.why == qs[key].why


def test_the_dZ_question_of_a_sigmoid_network_says_no_entry_is_zero(mnist):
    ws, _ = lab(mnist, activation="sigmoid")
    trace = ws.step()
    q = by_key(trace)["zeros"]
    assert q.parts[0].right == frozenset() and q.check(((),)).right
    assert "never 0" in q.why and "A_{2}\\,(1 - A_{2})" in q.prompt
    wrong = q.check(((q.parts[0].options[0],),))
    assert wrong.status == WRONG


def test_a_relu_network_is_asked_about_zeros_and_non_zeros(mnist):
    ws, _ = lab(mnist)
    trace = ws.step()
    q = by_key(trace)["zeros"]
    dZ2, Z2 = np.asarray(trace["dZ2"]), np.asarray(trace["Z2"])
    cells = [entry(o) for o in q.parts[0].options]
    assert len(cells) == 4 and 0 < len(q.parts[0].right) < 4          # both kinds, so the answer is not "all"
    for cell in cells:
        assert (dZ2[cell] == 0) == (Z2[cell] <= 0)                     # ReLU's derivative is 0 where Z ≤ 0
    share = (dZ2 == 0).mean()
    assert f"{share:.1%}" in q.why and "exactly those where ReLU's slope is 0" in q.why


def test_wrong_answers_are_rejected_with_a_reason_that_quotes_the_step(mnist):
    ws, _ = lab(mnist)
    trace, after = step_and_loss_after(ws)
    qs = by_key(trace)
    m, units = np.shape(trace["Z1"])

    fb = qs["shape"].check((m, 784))
    assert fb.status == WRONG and "784 is the number of pixels" in fb.verdict and f"({m} × {units})" in fb.verdict
    ws2, _ = lab(mnist, batch_size=32)
    fb = by_key(ws2.step())["shape"].check((64, 32))
    assert "swapped" in fb.verdict

    q = qs["predict"]
    r = q.sample
    A = np.asarray(trace["A3"])[r]
    wrong = next(c for c in range(10) if str(c) not in q.parts[0].right)
    fb = q.check((str(wrong),))
    assert fb.status == WRONG and f"digit {wrong}" in fb.verdict and f"digit {A.argmax()}" in fb.verdict
    logit = re.search(r"\$ is (\S+)\);", fb.verdict)[1].replace("−", "-")    # its logit, as the step has it
    assert float(logit) == pytest.approx(float(np.asarray(trace["Z3"])[r, wrong]), rel=1e-3)

    q = qs["sign"]
    t = int(trace["y"][r])
    fb = q.check(("positive", ROW_SIGNS[0]))
    dz = np.asarray(trace["dZ3"])[r]
    assert fb.status == WRONG and num(dz[t]) in fb.verdict and num(A[t]) in fb.verdict
    top = re.search(r"to (\S+), so they are", fb.verdict)[1].replace("−", "-")
    assert float(top) == pytest.approx(float(np.delete(dz, t).max()), rel=1e-3)

    q = qs["zeros"]
    nonzero = [o for o in q.parts[0].options if o not in q.parts[0].right]
    fb = q.check((tuple(nonzero),))                                    # every answer the wrong way round
    assert fb.status == WRONG
    for o in q.parts[0].options:
        assert o.replace("dZ2", "dZ_{2}") in fb.verdict and num(np.asarray(trace["Z2"])[entry(o)]) in fb.verdict

    q = qs["loss"]
    fb = q.check((LOSS_CHANGES[0],))                                   # one SGD step lowers the batch's loss
    assert after < trace.loss
    assert fb.status == WRONG and num(trace.loss) in fb.verdict and num(after) in fb.verdict


def test_incomplete_answers_are_not_checked(mnist):
    ws, _ = lab(mnist)
    qs = by_key(ws.step())
    assert qs["shape"].missing((64, None))
    with pytest.raises(ValueError):
        qs["shape"].check((64, None))
    assert qs["predict"].missing(("eleven",)) and qs["zeros"].missing((("dZ9[0, 0]",),))
    assert qs["zeros"].missing(((),)) == ""                             # "none of them" is an answer


def test_skipping_shows_the_answer_and_counts_as_skipped(mnist):
    ws, s = lab(mnist)
    lesson = Lesson()
    trace = lesson.trace(ws, s)
    qs = questions(trace)
    fb = lesson.skip(2, qs[2])
    assert fb.status == SKIPPED and fb.why == qs[2].why
    lesson.answer(0, qs[0], (64, 64))
    lesson.answer(1, qs[1], (next(iter(qs[1].parts[0].right)),))
    assert lesson.score() == {RIGHT: 2, WRONG: 0, SKIPPED: 1} and not lesson.finished(len(qs))
    assert lesson.answer(0, qs[0], (1, 1)).right                       # the first answer counts


def test_questions_are_the_same_for_a_trace_and_change_with_the_step(mnist):
    ws, _ = lab(mnist)
    first = ws.step()
    def text(qs):
        return [(q.prompt, q.why, q.parts, q.reveal.title, q.reveal.values.tobytes()) for q in qs]

    assert text(questions(first)) == text(questions(first))
    second = ws.step()
    a, b = by_key(first), by_key(second)
    for key in ("predict", "sign", "zeros", "loss"):
        assert a[key].why != b[key].why, key
    assert (a["predict"].sample, a["zeros"].parts[0].options) != (b["predict"].sample, b["zeros"].parts[0].options)


def test_the_sample_asked_about_is_one_the_network_gets_wrong(mnist):
    ws, _ = lab(mnist)
    trace = ws.step()
    r = by_key(trace)["predict"].sample
    assert np.asarray(trace["A3"])[r].argmax() != trace["y"][r]
    assert by_key(trace)["sign"].sample == r == by_key(trace)["zeros"].sample


# --------------------------------------------------------------------------- where the student stands
def test_the_lesson_takes_a_real_step_through_the_stepper(mnist):
    ws, s = lab(mnist)
    lesson = Lesson()
    trace = lesson.trace(ws, s)
    assert ws.trainer.global_step == 1 and lesson.step == 1 and s.shown == 1
    assert trace is ws.current and ws.net.params["W1"] is trace["W1_new"]   # the step that trained the network
    assert lesson.trace(ws, s) is trace and ws.trainer.global_step == 1    # asking again takes no step
    lesson.skip(0, questions(trace)[0])
    lesson.go(3)
    assert lesson.new_step(ws, s)
    assert lesson.step == 2 == ws.trainer.global_step and lesson.at == 0 and lesson.results == {}
    assert s.shown == 2 and [r.number for r in ws.steps] == [1, 2]


def test_the_lesson_adopts_the_latest_step_and_follows_the_network(mnist):
    ws, s = lab(mnist)
    s.take_step(ws, s.batch(ws, "next"))
    s.take_step(ws, s.batch(ws, "next"))
    lesson = Lesson()
    lesson.trace(ws, s)
    assert lesson.step == 2 and ws.trainer.global_step == 2                # a stepped network: no new step
    ws.undo(ws.undo_points()[0])                                         # step 2 undone
    lesson.trace(ws, s)
    assert lesson.step == 1 and "no longer kept" in lesson.note
    lesson.go(4)
    ws.fresh()                                                           # another network: start over
    lesson.follow(ws)
    assert lesson.step is None and lesson.at == 0


def test_a_link_opens_a_question_once(mnist):
    lesson = Lesson()
    lesson.read_link({"q": "3"}, 5)
    assert lesson.at == 2 and lesson.link_query() == {"q": "3"}
    lesson.read_link({"q": "5"}, 5)
    assert lesson.at == 2                                                # once per session
    odd = Lesson()
    odd.read_link({"q": "9"}, 5)
    assert odd.at == 0 and "question 9 is not there" in odd.note and "1 to 5" in odd.note
    bad = Lesson()
    bad.read_link({"q": "x"}, 5)
    assert bad.at == 0 and "not a whole number" in bad.note


def test_a_step_that_diverges_leaves_the_lesson_on_its_step(mnist):
    ws, s = lab(mnist, lr=100.0)
    lesson = Lesson()
    lesson.trace(ws, s)
    for _ in range(10):
        if not lesson.new_step(ws, s):
            break
    assert lesson.problem and "learning rate" in lesson.problem
    assert lesson.step == ws.trainer.global_step and lesson.record(ws) is not None


# --------------------------------------------------------------------------- the page
def open_lesson(**query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params.update({**SMALL, **query})
    at.run()
    at.switch_page("pages/lesson.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def lesson_of(at):
    return session(at.session_state).lesson


def trace_of(at):
    state = session(at.session_state)
    rec = state.lesson.record(state.ws)
    return state.ws.trace_of(rec)


def submit(at, label: str) -> AppTest:
    [b] = [b for b in at.button if b.label == label]
    b.click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def page_text(at) -> str:
    return " ".join(e.value for e in [*at.markdown, *at.caption, *at.success, *at.error, *at.info, *at.warning])


def test_the_page_asks_checks_and_moves_on():
    at = open_lesson()
    ws = session(at.session_state).ws
    assert ws.trainer.global_step == 1 and lesson_of(at).step == 1     # a real step of the session's network
    assert "Step 1 of your network" in page_text(at)
    assert at.query_params["q"] == "1" and at.get("progress")[0].proto.text.startswith("Question 1 of 5")
    assert r"Z_{1} = X\, W_{1} + b_{1}" in [e.value.strip("$\n") for e in at.latex]
    m, units = np.shape(trace_of(at)["Z1"])

    # a wrong answer: rejected, with the numbers
    at.number_input(key=lesson_answer(1, 0, 0)).set_value(m)
    at.number_input(key=lesson_answer(1, 0, 1)).set_value(784)
    submit(at, "Check my answer")
    assert at.error and "784 is the number of pixels" in at.error[0].value
    assert lesson_of(at).results[0].status == WRONG
    assert f"({m} × {units})" in page_text(at)
    assert at.get("plotly_chart")                                      # the stop's numbers, revealed

    # next: a right answer, computed from the trace
    submit(at, "Next question →")
    assert at.query_params["q"] == "2"
    trace = trace_of(at)
    r = questions(trace)[1].sample
    at.radio(key=lesson_answer(1, 1, 0)).set_value(str(int(np.asarray(trace["A3"])[r].argmax())))
    submit(at, "Check my answer")
    assert at.success and "Right" in at.success[0].value
    assert at.get("progress")[0].proto.text == "Question 2 of 5 · 2 answered · 1 right"

    # skip the rest: the score at the end
    for q in (3, 4, 5):
        submit(at, "Next question →")
        assert at.query_params["q"] == str(q)
        submit(at, "Skip")
        assert at.info and "Skipped" in at.info[-1].value
        # the reasons behind the revealed answer: the fold-outs of ui/derivations.py, in this network's names
        expected = {3: ["softmax_ce"], 4: ["activation", "chain_rule"], 5: ["chain_rule", "step"]}[q]
        shown = [e.label for e in at.expander]
        assert all(derivations.titles(trace.sizes)[name] in shown for name in expected), shown
    assert lesson_of(at).score() == {RIGHT: 1, WRONG: 1, SKIPPED: 3}
    assert any("Score: 1 of 5 right" in s.value for s in at.success)
    assert ws.trainer.global_step == 1                                 # answering trains nothing


def test_a_missing_answer_is_asked_for_not_counted():
    at = open_lesson()
    submit(at, "Check my answer")
    assert lesson_of(at).results == {}
    assert "Answer every part" in page_text(at)


def test_new_step_trains_the_next_batch_and_asks_again():
    at = open_lesson()
    before = questions(trace_of(at))
    submit(at, "Skip")
    submit(at, "New step")
    ws = session(at.session_state).ws
    assert ws.trainer.global_step == 2 and lesson_of(at).step == 2 and lesson_of(at).results == {}
    assert session(at.session_state).stepper.shown == 2                  # the stepper shows the lesson's step
    after = questions(trace_of(at))
    assert before[1].why != after[1].why
    assert "Step 2 of your network" in page_text(at) and at.query_params["q"] == "1"


def test_a_link_opens_its_question_and_presents():
    at = open_lesson(q="4", present="1")
    assert lesson_of(at).at == 3 and at.query_params["q"] == "4"
    assert session(at.session_state).ws.trainer.global_step == 1       # no step yet: the link took one
    assert any("Which entries of dZ2 are zero" in h.value for h in at.subheader)
    assert "One mini-batch of **your** network" not in page_text(at)    # presentation mode: no prose
    plain = open_lesson(q="4")
    assert "One mini-batch of **your** network" in page_text(plain)


def test_a_network_that_gets_the_batch_right_is_asked_about_a_sample_it_is_least_sure_of(mnist):
    from core.lab import checkpoint
    from core.lab.workspace import SHIPPED
    ck = checkpoint.load(Path(__file__).resolve().parent.parent / "data" / "pretrained.npz")
    ws, s = lab(mnist)
    settings = Settings.of_network(ck.net.config, ck.optimizer.hyper, ck.trainer_state, ck.split or {},
                                   ws.settings, len(mnist["train"]))
    ws.open_checkpoint(ck, settings, mnist["train"], mnist["test"], origin="the pretrained network", made=SHIPPED)
    trace, after = step_and_loss_after(ws)
    qs = by_key(trace)
    losses = np.asarray(trace["losses"])
    r = qs["predict"].sample
    A3, y = np.asarray(trace["A3"]), np.asarray(trace["y"])
    if (A3.argmax(1) == y).all():
        unsure = A3[np.arange(len(y)), y] < 1
        assert unsure[r] and losses[r] >= np.sort(losses[unsure])[-max(1, unsure.sum() // 4)]
    for key, answers in right_answers(trace, qs, after).items():
        assert qs[key].check(answers).right, key
    t = int(trace["y"][r])
    if np.asarray(trace["dZ3"])[r, t] == 0:
        assert "already certain" in qs["sign"].why and "raises" not in qs["sign"].why


def test_a_large_batch_reveals_its_first_samples_only(mnist):
    ws, _ = lab(mnist, batch_size=256, hidden=(16, 16))
    qs = by_key(ws.step())
    assert qs["shape"].reveal.values.shape == (128, 16) and "samples 0–127 of 256" in qs["shape"].reveal.title
    assert qs["zeros"].reveal.values.shape == (128, 16)


def test_a_certain_network_is_told_its_true_column_is_zero(mnist):
    from core.engine.network import MLP
    from core.engine.optim import make_optimizer
    net = MLP([784, 8, 10], seed=1)
    net.params["b2"] = np.where(np.arange(10) == 3, 200.0, 0.0).astype(np.float32)   # every image: "a 3", surely
    X = mnist["train"].X[:16] / np.float32(255)
    trace = net.step(X, np.full(16, 3), make_optimizer("sgd", lr=0.1))
    q = by_key(trace)["sign"]
    assert q.check(("zero", ROW_SIGNS[1])).right                          # A = 1 in float32: dZ = 0 exactly
    assert q.check(("zero", ROW_SIGNS[0])).right                          # the others are 0 too: both fit
    assert "already certain" in q.why and "raises" not in q.why
    assert not q.check(("negative", ROW_SIGNS[1])).right
