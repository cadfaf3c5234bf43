"""The learning-rate lesson page and the "why" fold-outs, through Streamlit's AppTest."""
import re
from pathlib import Path

import numpy as np
import plotly.io as pio
import pytest
from streamlit.testing.v1 import AppTest

from core.teach.lr_lesson import LEARNING_RATES, OUTCOMES
from tests.test_inspect_pages import arr
from ui.state import session

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
SMALL = {"pool": "3000", "val": "500"}


def open_page(page: str, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({**SMALL, **query})
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def text(at) -> str:
    return " ".join(e.value for e in [*at.markdown, *at.caption, *at.info, *at.success, *at.warning])


def predict(at, answers: dict, best=None) -> None:
    serial = session(at.session_state).lr_lesson.serial
    for i, lr in enumerate(LEARNING_RATES):
        if lr in answers:
            at.radio(key=f"lr_predict_{serial}_{i}").set_value(answers[lr])
    if best is not None:
        at.radio(key=f"lr_best_{serial}").set_value(best)


def test_predict_then_see_what_happened_and_the_network_is_unchanged():
    at = open_page("pages/lr_lesson.py")
    ws = session(at.session_state).ws
    params = ws.net.params
    lesson = session(at.session_state).lr_lesson.lesson
    assert "Your network does not change" in text(at)
    assert not at.get("plotly_chart") and not at.dataframe          # nothing revealed before the prediction
    truth = {t.lr: t.outcome for t in lesson.trials}
    wrong = next(k for k in OUTCOMES if k != truth[10.0])
    predict(at, {0.01: truth[0.01], 0.1: truth[0.1], 10.0: wrong}, best=lesson.best)
    at.button(key="lr_reveal").click()
    run(at)
    assert "You predicted **2 of 3** outcomes right." in " ".join(s.value for s in [*at.success, *at.info])
    assert not [r for r in at.radio if r.key and r.key.startswith("lr_")]     # answered: now in the table
    table = at.dataframe[0].value
    assert list(table["η"]) == list(LEARNING_RATES)
    assert list(table["right?"]) == ["✓", "✓", "—", "✗"]
    np.testing.assert_allclose(table["loss after"], [t.loss_after for t in lesson.trials])
    assert {"‖ΔW1‖/‖W1‖", "‖ΔW2‖/‖W2‖", "‖ΔW3‖/‖W3‖"} <= set(table.columns)
    loss, ratio = [pio.from_json(c.proto.spec) for c in at.get("plotly_chart")]   # side by side; stacked on a phone
    assert "loss" in loss.layout.title.text and "ratio" in ratio.layout.title.text
    assert [tr.name for tr in ratio.data] == ["W1", "W2", "W3"]
    np.testing.assert_allclose(arr(ratio.data[0].y), [t.ratios[0] for t in lesson.trials])
    assert "each ×10 of η made the ratio ×10" in text(at)
    # the session's network is the one it was, and the stepper's next step is still this batch
    assert ws.net.params is params and ws.trainer.global_step == 0 and not ws.steps
    np.testing.assert_array_equal(ws.trainer.next_indices(), lesson.idx)
    # the step's derivation is there, typeset
    assert any("\\eta" in e.value for e in at.latex)
    # predicting again starts from empty answers
    at.button(key="lr_again").click()
    run(at)
    mine = [r for r in at.radio if r.key and r.key.startswith("lr_")]
    assert not at.dataframe and len(mine) == 5 and all(r.value is None and not r.disabled for r in mine)


def test_a_new_network_state_gives_a_new_lesson():
    at = open_page("pages/lr_lesson.py")
    state = session(at.session_state)
    first = state.lr_lesson.lesson
    state.ws.step()
    run(at)
    second = state.lr_lesson.lesson
    assert second is not first and second.global_step == 1 and second.params is state.ws.net.params


def test_adam_blows_up_as_a_result_and_the_page_says_why_the_ratio_is_larger():
    at = open_page("pages/lr_lesson.py", optimizer="adam", lr="0.001")
    lesson = session(at.session_state).lr_lesson.lesson
    assert lesson.trial(10.0).outcome == "blew_up"
    at.button(key="lr_reveal").click()
    run(at)
    words = text(at)
    assert "refused" in words and "Adam's usual η is 0.001" in words
    assert "blows up (refused)" in list(at.dataframe[0].value["what happened"])


def test_the_fold_outs_render_with_the_networks_names():
    at = open_page("pages/stepper.py", hidden="32", activation="tanh")
    at.button(key="stepper_step").click()
    run(at)
    titles = [e.proto.label for e in at.expander]
    assert any("dZ2 = (A2 − Y)/m" in t for t in titles), titles       # two layers: the output is layer 2
    latex = " ".join(e.value for e in at.latex)
    assert r"dZ_{2} = \frac{\partial L}{\partial Z_{2}} = \frac{1}{m} \bigl(A_{2} - Y\bigr)" in latex
    assert r"dA_{1} = dZ_{2}\, W_{2}^\top" in latex and r"dW_{1} = X^\top dZ_{1}" in latex
    assert r"\tanh'(z)" in latex and r"g'(z) = \begin{cases} 1 & z > 0" in latex   # tanh, and ReLU's kink
    assert "dZ1 = dA1 * (1 - A1 * A1)" in text(at)           # the engine's own line, in this layer's names
    assert "dZ3" not in latex


def test_the_fold_outs_of_the_seed_network():
    at = open_page("pages/stepper.py")
    at.button(key="stepper_step").click()
    run(at)
    latex = " ".join(e.value for e in at.latex)
    assert r"dZ_{3} = \frac{\partial L}{\partial Z_{3}} = \frac{1}{m} \bigl(A_{3} - Y\bigr) \qquad (64 \times 10)" in latex
    assert r"dW_{2} = A_{1}^\top dZ_{2} \qquad (64 \times 64)(64 \times 64)" in latex
    assert r"A_{3,ic}" in latex and "_{," not in latex and "}_{" not in latex   # no double subscripts
    assert "dZ2 = dA2 * (Z2 > 0)" in text(at)


def without_math(s: str) -> str:
    return re.sub(r"\$[^$]*\$", "", s)


def test_one_sample_shows_no_raw_latex():
    at = open_page("pages/stepper.py")
    at.button(key="stepper_step").click()
    run(at)
    at.segmented_control(key="stepper_view").set_value("One sample")
    run(at)
    shown = [e.value for e in [*at.markdown, *at.caption]]
    assert any("$A_{l-1}[i]^\\top\\, dZ_l[i]$" in s for s in shown)     # the formula, typeset
    for s in shown:
        assert "_{" not in without_math(s), s


@pytest.mark.parametrize("query", [{"optimizer": "momentum", "hidden": "16,16,16", "activation": "leaky_relu"},
                                   {"hidden": "8", "activation": "sigmoid", "batch_size": "500"}])
def test_other_optimizers_depths_and_activations(query):
    at = open_page("pages/lr_lesson.py", **query)
    lesson = session(at.session_state).lr_lesson.lesson
    L = len(session(at.session_state).ws.net.sizes) - 1
    at.button(key="lr_reveal").click()
    run(at)
    table = at.dataframe[0].value
    assert [c for c in table.columns if c.startswith("‖")] == [f"‖ΔW{l}‖/‖W{l}‖" for l in range(1, L + 1)]
    assert len(lesson.idx) == int(query.get("batch_size", 64))
    assert "Your network does not change" in text(at) and at.get("plotly_chart")


def test_with_augmentation_the_page_says_the_batch_is_drawn_as_the_network_sees_it():
    at = open_page("pages/lr_lesson.py", shift="2", rotate="10")
    assert "As the network sees them" in text(at) and "moved up to 2 px" in text(at)
    assert "As the network sees them" not in text(open_page("pages/lr_lesson.py"))
