"""A phone (390×844 at 3×, touch, no mouse) in Chromium: the home page's network equation fits
the width, and the toolbars a touch screen shows all the time (plotly's modebar, a table's
toolbar) cover nothing (ui/phone.py). Screenshots go to /tmp/shots/phone_*.png to be looked at."""
from pathlib import Path

import pytest

from tests.browser.helpers import MAIN, assert_no_errors, open_page, settle, wait_for_count

SHOTS = Path("/tmp/shots")


@pytest.fixture
def phone(browser):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True,
                              has_touch=True)
    pg = ctx.new_page()
    pg.set_default_timeout(90_000)
    yield pg
    ctx.close()


# every element of the main area that reaches past its right or left edge (cut off, or to be scrolled to)
OVERFLOWING = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const box = main.getBoundingClientRect();
    return [...main.querySelectorAll('*')].filter((e) => {
        const r = e.getBoundingClientRect();
        return r.width > 0 && (r.right > box.right + 1 || r.left < box.left - 1)
            && !e.closest('.katex-mathml')   // KaTeX's copy for screen readers, drawn nowhere
            && !e.closest('svg');            // KaTeX's arrows are wide svgs cut to length
    }).map((e) => `${e.tagName}.${e.className.baseVal ?? e.className} ${Math.round(e.getBoundingClientRect().right)}px`);
}"""


def test_the_home_page_fits_a_phone(phone, server):
    page = phone
    SHOTS.mkdir(exist_ok=True)
    open_page(page, server, expect_text="The network")
    equation = page.locator(f"{MAIN} .katex").first
    equation.wait_for()
    assert "softmax" in equation.inner_text()
    assert page.evaluate(OVERFLOWING) == []                           # no part of it cut off
    box = equation.bounding_box()
    assert 0 <= box["x"] and box["x"] + box["width"] <= 390, box      # all of it on screen: it wraps
    assert box["height"] > 60, box                                    # … onto several lines, here
    widths = page.evaluate(f"() => {{ const m = document.querySelector('{MAIN}'); return [m.scrollWidth, m.clientWidth]; }}")
    assert widths[0] <= widths[1], widths
    assert_no_errors(page)
    page.screenshot(path=str(SHOTS / "phone_home.png"))


def intersect(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


# the charts with a modebar that are on the page (not in a folded expander)
SHOWN = """[data-testid="stPlotlyChart"]:has(.modebar):not(details:not([open]) *)"""
# per chart with a modebar: the modebar's box, the figure's (the first svg holds the axes and the
# plot, the last the title), and whether the modebar is what a finger at its middle would touch
CHARTS = """() => [...document.querySelectorAll('%s')]
    .map((c) => {
        const box = (e) => { const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; };
        const bar = c.querySelector('.modebar'), svgs = c.querySelectorAll('svg.main-svg'), title = c.querySelector('.gtitle');
        const b = box(bar);
        const hit = document.elementFromPoint(b.x + b.width / 2, b.y + b.height / 2);
        return {bar: b, plot: box(svgs[0]), title: title && title.textContent ? box(title) : null,
                reachable: !!hit && !!hit.closest('.modebar'), hit: hit && hit.outerHTML.slice(0, 200)};
    })""" % SHOWN


def test_chart_toolbars_on_a_phone_cover_no_title_and_no_text(phone, server):
    page = phone
    SHOTS.mkdir(exist_ok=True)
    open_page(page, server, "training", expect_text="Loss")
    wait_for_count(page, f"{MAIN} .modebar", 2)
    settle(page)
    charts = page.evaluate(CHARTS)
    assert len(charts) >= 2 and sum(c["title"] is not None for c in charts) >= 2, charts
    for i in range(len(charts)):
        page.locator(SHOWN).nth(i).locator(".modebar").scroll_into_view_if_needed()
        c = page.evaluate(CHARTS)[i]
        assert not intersect(c["bar"], c["plot"]), c          # above the figure, in a band of its own
        assert c["title"] is None or not intersect(c["bar"], c["title"]), c
        assert c["reachable"], c["hit"]                       # and still there to be tapped
    page.screenshot(path=str(SHOTS / "phone_training.png"))

    open_page(page, server, "data", expect_text="Pixel values")
    table = page.locator('[data-testid="stElementContainer"]:has([data-testid="stElementToolbar"])').first
    table.scroll_into_view_if_needed()
    bar = table.locator('[data-testid="stElementToolbar"]').bounding_box()
    above = table.evaluate("(e) => { const r = e.previousElementSibling.getBoundingClientRect(); return r.bottom; }")
    assert bar["y"] >= above, (bar, above)                    # the table's toolbar is below the text above it
    assert_no_errors(page)
    page.screenshot(path=str(SHOTS / "phone_data.png"))


def test_a_grid_of_captioned_neurons_scrolls_sideways_on_a_phone_rather_than_overlap(phone, server):
    """16 neurons a row: squeezed into 390 px their captions ran into each other; on a phone the
    grid keeps a readable width and scrolls sideways (ui.phone.wide)."""
    page = phone
    open_page(page, server, "inspect", expect_text="neurons of layer 1")
    wait_for_count(page, ".st-key-neuron_grid .annotation", 16)
    settle(page)
    boxes = page.evaluate("""() => [...document.querySelectorAll('.st-key-neuron_grid .annotation')].map((a) => {
        const r = a.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; })""")
    overlaps = [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if intersect(boxes[i], boxes[j])]
    assert len(boxes) == 64 and overlaps == [], overlaps[:5]
    widths = page.evaluate(f"() => {{ const m = document.querySelector('{MAIN}'); return [m.scrollWidth, m.clientWidth]; }}")
    assert widths[0] <= widths[1], widths
    assert_no_errors(page)
