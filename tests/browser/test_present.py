"""Presentation mode in Chromium at 1280×720 (1080p at 150%, a lecture hall's projector):
the toggle and the address agree, the sidebar is folded away and the pages' list is on top,
chart text is big and dark. Screenshots go to /tmp/shots/present_*.png to be looked at."""
from pathlib import Path

import pytest

from tests.browser.helpers import (MAIN, SIDEBAR, address, assert_no_errors, click_button, open_page, open_pretrained,
                                   settle, shows, wait_until)
from ui.session import PAGES

SHOTS = Path("/tmp/shots")


@pytest.fixture
def projector(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    pg = ctx.new_page()
    pg.set_default_timeout(90_000)
    yield pg
    ctx.close()


def top_link(page, title: str) -> None:
    """Follow the pages' list at the top (presentation mode puts it there, by short names), in the
    same session, to the page with this ``title``."""
    short = next(p.short for p in PAGES if p.title == title)
    page.locator("header").get_by_role("link", name=short, exact=True).click()
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
    assert "present=1" in address(page)
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


def test_every_page_is_one_click_away_on_the_projector(projector, server):
    """The bar at the top names every page by its short name, all on one line at 1280 px: none is
    folded into a menu a teacher has to hunt through in front of the room."""
    page = projector
    open_page(page, server, "", "present=1")
    header = page.locator("header")
    wait_until(lambda: header.get_by_role("link", name=PAGES[-1].short, exact=True).count(),
               what="the last page's link in the bar")
    for p in PAGES:
        link = header.get_by_role("link", name=p.short, exact=True)
        assert link.count() == 1 and link.is_visible(), p.short
        box = link.bounding_box()
        assert box["x"] + box["width"] <= 1280 and box["y"] < 80, (p.short, box)
    page.screenshot(path=str(SHOTS / "present_bar.png"))


def test_the_toggle_puts_present_in_the_address_and_takes_it_out(projector, server):
    """The sidebar's switch, in a fresh session: on → ``present=1`` in the address (it reaches
    the browser, and stays once the run is over), the sidebar folds away; off → out of the address.
    The address is the browser's own (``address``), not Playwright's cached ``page.url``."""
    from playwright.sync_api import expect
    page = projector
    open_page(page, server, "data")
    sidebar = page.locator(SIDEBAR)
    sidebar.get_by_text("Presentation mode").click()      # the label: the switch's input sits under it
    wait_until(lambda: "present=1" in address(page), what="present=1 in the address")
    settle(page)
    assert address(page).endswith("/data?present=1"), address(page)
    assert sidebar.get_attribute("data-collapsed") == "true"
    assert page.locator("header").get_by_role("link", name="Fails", exact=True).is_visible()   # the pages, now on top
    assert_no_errors(page)

    page.reload()                                   # the address alone opens presenting: a link to share
    settle(page)
    assert "present=1" in address(page) and sidebar.get_attribute("data-collapsed") == "true"

    page.locator('[data-testid="stExpandSidebarButton"]').click()
    switch = sidebar.get_by_role("switch", name="Presentation mode")
    expect(switch).to_be_checked()
    sidebar.get_by_text("Presentation mode").click()
    wait_until(lambda: "present" not in address(page), what="present out of the address")
    settle(page)
    assert address(page).endswith("/data"), address(page)
    expect(switch).not_to_be_checked()
    assert page.get_by_role("link", name="Where it fails").first.is_visible()     # back in the sidebar
    assert_no_errors(page)
