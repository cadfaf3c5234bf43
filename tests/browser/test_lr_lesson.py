"""The learning-rate lesson and the "why" fold-outs in Chromium at 1280×720: the formulas are
typeset by Streamlit's own KaTeX (no KaTeX error, nothing fetched from the internet), in
normal and presentation mode. Screenshots go to /tmp/shots/lr_*.png to be looked at."""
from pathlib import Path

import pytest

from tests.browser.helpers import MAIN, assert_no_errors, click_button, open_page, settle, shows, wait_until

SHOTS = Path("/tmp/shots")
LOCAL = ("http://127.0.0.1", "http://localhost", "data:", "blob:")
# Everything must be local, the tab's icon included (a ":material/…:" page_icon would be fetched as an
# SVG from fonts.gstatic.com: the app's is static/icon.png).


@pytest.fixture
def projector(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    pg = ctx.new_page()
    pg.set_default_timeout(90_000)
    outside = []
    pg.on("request", lambda r: outside.append(r.url) if not r.url.startswith(LOCAL) else None)
    pg.outside = outside
    yield pg
    ctx.close()


def typeset(page) -> tuple[int, int]:
    """(formulas KaTeX drew in the main area, KaTeX errors)."""
    return page.evaluate("""() => { const m = document.querySelector('[data-testid="stMain"]');
        return [m.querySelectorAll('.katex').length, m.querySelectorAll('.katex-error').length]; }""")


def open_fold_out(page, title_start: str) -> None:
    page.locator('[data-testid="stExpander"] summary').filter(has_text=title_start).first.click()
    wait_until(lambda: page.locator('[data-testid="stExpander"] details[open]').filter(
        has_text=title_start).count(), what=f"the fold-out {title_start!r} open")
    settle(page)


@pytest.mark.parametrize("present", [False, True])
def test_the_lesson_predict_reveal_and_its_formulas(projector, server, present):
    page = projector
    SHOTS.mkdir(exist_ok=True)
    tag = "_present" if present else ""
    open_page(page, server, "lr_lesson", "pool=3000&val=500" + ("&present=1" if present else ""),
              expect_text="Your prediction")
    assert "Your network does not change" in page.locator(MAIN).inner_text()
    page.locator('[data-testid="stRadio"]').filter(has_text="η = 10").filter(
        has_text="blows up").get_by_text("blows up", exact=True).click()
    settle(page)
    click_button(page, "Take the four steps", until="What happened")
    shows(page, "You predicted")
    assert_no_errors(page)
    page.get_by_role("button", name="Predict again").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"lr_lesson{tag}.png"))
    open_fold_out(page, "Why a small step")
    count, errors = wait_until(lambda: typeset(page)[0] >= 5 and typeset(page), what="typeset formulas")
    assert errors == 0
    page.get_by_text("Put SGD's step").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"lr_fold_out{tag}.png"))
    assert not page.outside, page.outside


def test_the_steppers_fold_outs_are_typeset_offline(projector, server):
    page = projector
    open_page(page, server, "stepper", "pool=3000&val=500&hidden=32&activation=sigmoid")
    click_button(page, "Step: train on this mini-batch", until="Why dZ2 = (A2 − Y)/m")
    for title in ("Why dZ2", "Why dA1", "Why the slope"):
        open_fold_out(page, title)
    count, errors = wait_until(lambda: typeset(page)[0] >= 30 and typeset(page), what="typeset formulas")
    assert errors == 0
    text = page.locator(MAIN).inner_text()
    assert "dZ1 = dA1 * A1 * (1 - A1)" in text and "sigmoid" in text      # the network's own activation
    assert_no_errors(page)
    page.get_by_text("Why dZ2").first.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "lr_stepper_fold_outs.png"))
    assert not page.outside, page.outside
