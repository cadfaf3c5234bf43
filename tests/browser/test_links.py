"""Shared links in a real browser: a fresh session (a new browser context) opens ``/stepper?…`` and
sees what came of the link, replayed or not, until it does something else; a teacher's link to a view
of the pretrained network opens that view; the address keeps naming the network from page to page."""
from __future__ import annotations

import pytest

from tests.browser.helpers import ROOT, assert_no_errors, click_button, go_to, main_text, open_page, wait_until

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


def query_of(page) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit
    return dict(parse_qsl(urlsplit(page.url).query))


@pytest.mark.skipif(not (ROOT / "data" / "pretrained.npz").exists(), reason="data/pretrained.npz is not made yet")
def test_a_teachers_link_to_a_confusion_cell_opens_its_images_presenting(server, page):
    """A fresh session opens the pretrained network's test-set 4s taken for 9s, in presentation mode:
    the gallery is filtered, the address still says so, and the page's own link is the same one."""
    link = "network=pretrained&set=test&true=4&pred=9&present=1"
    open_page(page, server, "evaluate", link, expect_text="mistakes with these filters")
    assert_no_errors(page)
    text = main_text(page)
    assert "Test: 10,000 images" in text and "4→9" in text
    assert page.locator('[data-testid="stSidebar"]').get_attribute("data-collapsed") == "true"   # presenting
    assert query_of(page) == dict(kv.split("=") for kv in link.split("&"))
    # it opens on the confusion matrix, not on the top of a long page: the section's header is near the
    # top of the window (below the pages' bar)
    wait_until(lambda: 0 <= page.evaluate("() => document.getElementById('confusion').getBoundingClientRect().top")
               < 150, what="the confusion matrix scrolled into view")
    page.get_by_text("Link to these images").click()
    page.locator('[data-testid="stCode"]').filter(has_text="/evaluate?").first.wait_for()
    assert f"/evaluate?{link}" in main_text(page)


def test_moving_to_another_page_keeps_the_network_in_the_address(server, page):
    """Streamlit empties the address when the page changes: the app puts the network back."""
    open_page(page, server, "stepper", f"{SMALL}&lr=0.05")
    go_to(page, "The data")
    assert_no_errors(page)
    wait_until(lambda: query_of(page) == {"pool": "3000", "val": "500", "lr": "0.05"}, what="the settings in the address")
