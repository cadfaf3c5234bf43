"""The lesson in Chromium: a question answered in the browser is checked against the step the
session's network took, and the feedback, the reveal and the address follow."""
from core.lab.settings import Settings
from tests.browser.helpers import MAIN, assert_no_errors, click_button, main_text, open_page, settle, shows


def answer_shape(page, rows: int, cols: int) -> None:
    boxes = page.locator(f'{MAIN} [data-testid="stNumberInput"] input')
    boxes.nth(0).fill(str(rows))
    boxes.nth(1).fill(str(cols))


def test_a_question_answered_in_the_browser_gets_its_feedback(server, page):
    open_page(page, server, "lesson", expect_text="Question 1 · The shape of Z1")
    assert_no_errors(page)
    shows(page, "Step 1 of your network")                 # a real step of this session's network
    m, units = Settings().batch_size, Settings().hidden[0]

    answer_shape(page, m, 784)                            # wrong: 784 is summed over
    click_button(page, "Check my answer", until="784 is the number of pixels")
    assert f"({m} × {units})" in main_text(page)
    page.wait_for_selector(f'{MAIN} .js-plotly-plot')     # the stop's numbers, revealed
    assert "q=1" in page.url
    assert "1 answered · 0 right" in main_text(page)

    click_button(page, "Next question →", until="Question 2 ·")
    assert "q=2" in page.url
    click_button(page, "Skip", until="Skipped: here is the answer.")
    assert "2 answered · 0 right" in main_text(page)
    assert_no_errors(page)


def test_a_link_opens_its_question_presenting(server, page):
    open_page(page, server, "lesson", query="q=5&present=1", expect_text="Question 5 · What the update does to the loss")
    settle(page)
    assert "One mini-batch of your network" not in main_text(page)     # presentation mode: no prose
    click_button(page, "Skip", until="After the update the batch's loss is")
    assert "q=5" in page.url and "present=1" in page.url
    assert_no_errors(page)
