"""Presentation mode in Chromium at 1280×720 (1080p at 150%, a lecture hall's projector):
the toggle and the address agree, the sidebar is folded away and the pages' list is on top,
chart text is big and dark. Screenshots go to /tmp/shots/present_*.png to be looked at."""
from pathlib import Path

import pytest

from tests.browser.helpers import (MAIN, assert_no_errors, click_button, open_page, open_pretrained, settle, shows,
                                   wait_until)

SHOTS = Path("/tmp/shots")


@pytest.fixture
def projector(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    pg = ctx.new_page()
    pg.set_default_timeout(90_000)
    yield pg
    ctx.close()


def top_link(page, title: str) -> None:
    """Follow the pages' list at the top (presentation mode puts it there), in the same session."""
    page.get_by_role("link", name=title).first.click()
    page.wait_for_selector(f'{MAIN} h1:has-text("{title}")', timeout=90_000)
    settle(page)


def tick_font_sizes(page) -> list[float]:
    """The font sizes plotly drew the axes' tick labels with, over every chart on screen."""
    return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot .xtick text, .js-plotly-plot .ytick text')]
        .map((t) => parseFloat(getComputedStyle(t).fontSize))""")


def test_presentation_mode_on_the_training_page_and_the_stepper(projector, server):
    page = projector
    SHOTS.mkdir(exist_ok=True)
    open_pretrained(page, server)
    open_page(page, server, "", "present=1")       # a new session, the same lab (the browser's cookie)
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.get_attribute("data-collapsed") == "true"     # folded away; its arrow opens it

    top_link(page, "Train 1000 epochs")
    assert "present=1" in page.url
    shows(page, "Validation accuracy")
    assert "The step you inspected on the stepper" not in page.locator(MAIN).inner_text()   # prose is gone
    sizes = wait_until(lambda: len(tick_font_sizes(page)) > 10 and tick_font_sizes(page), what="charts with tick labels")
    assert min(sizes) >= 14, sizes
    caption = page.evaluate("""() => { const c = document.querySelector('[data-testid="stMain"] [data-testid="stCaptionContainer"]');
        return [getComputedStyle(c.querySelector('p')).color, getComputedStyle(c).opacity]; }""")
    assert caption == ["rgb(51, 51, 51)", "1"], caption     # #333 at full opacity, not the theme's pale grey
    assert_no_errors(page)
    page.screenshot(path=str(SHOTS / "present_training.png"))
    page.screenshot(path=str(SHOTS / "present_training_full.png"), full_page=True)

    top_link(page, "Step through backprop")
    viewer = page.locator(".tv")
    click_button(page, "Step: train on this mini-batch",
                 until=lambda: viewer.count() and viewer.get_attribute("data-state") == "ready")
    assert "tv-present" in viewer.get_attribute("class")
    assert_no_errors(page)
    viewer.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "present_stepper.png"))
    page.screenshot(path=str(SHOTS / "present_stepper_full.png"), full_page=True)
