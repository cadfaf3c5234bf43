"""A shared stepper link in a real browser: a fresh session (a new browser context) opens
``/stepper?…`` and sees what came of the link, replayed or not, until it does something else."""
from __future__ import annotations

import pytest

from tests.browser.helpers import assert_no_errors, click_button, main_text, open_page

SMALL = "pool=3000&val=500"


@pytest.mark.parametrize("query, says", [
    ("step=three", "The link's step number was not a number; nothing was replayed."),
    ("hidden=512,512,512&batch_size=2048&step=2000", "nothing was replayed"),
])
def test_a_link_that_replays_nothing_says_why_in_a_fresh_session(server, page, query, says):
    open_page(page, server, "stepper", f"{SMALL}&{query}")
    assert_no_errors(page)
    assert says in main_text(page)
    assert "0 steps taken" in main_text(page)


def test_the_note_of_a_replayed_link_goes_once_the_student_steps(server, page):
    open_page(page, server, "stepper", f"{SMALL}&step=2&stop=Z1")
    assert_no_errors(page)
    page.get_by_text("Replayed 2 steps from the link.").wait_for()
    assert "2 steps taken" in main_text(page)
    click_button(page, "Train one mini-batch", until=lambda: "Replayed" not in main_text(page))
    assert "3 steps taken" in main_text(page)
    assert "Replayed 2 steps from the link." not in main_text(page)


def test_a_long_link_replays_in_the_training_process_while_the_page_shows_progress(server, page):
    """300 steps: the training process replays 299 while the page polls its progress, then the
    page takes step 300 itself and the trace viewer opens it on the link's stop, without a click."""
    page.goto(f"{server}/stepper?{SMALL}&step=300&stop=dW1")
    page.get_by_text("Replayed 300 steps from the link.").wait_for(timeout=120_000)
    assert_no_errors(page)
    text = main_text(page)
    assert "300 steps taken" in text and "Replaying the link" not in text
    viewer = page.locator('.tv[data-state="ready"]')
    viewer.wait_for()
    assert viewer.get_attribute("data-stop") == "dW1"
    assert page.locator(".tv-count").inner_text() == "Stop 18 of 22" and page.locator(".tv-title").is_visible()
    assert page.locator(".tv-step").inner_text() == "step 300 (latest)"
