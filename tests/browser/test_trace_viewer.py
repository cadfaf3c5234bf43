"""The trace viewer in a real browser, on its demo app (tests/browser/apps/trace_viewer_demo.py):
moving through the 22 stops of the seed network's first step sends nothing to the server, the
hovered number is the engine's, a clicked cell is explained by core's explain(), and a stop's
title, equations and heatmaps fit on a 1280×720 and a 1400×1000 screen."""
from __future__ import annotations

import functools
import subprocess
import time

import numpy as np
import pytest

from tests.browser.conftest import ARTIFACTS, start_server
from tests.browser.helpers import engine_mnist

DEMO = "tests/browser/apps/trace_viewer_demo.py"
KEYS = ["X", "Z1", "A1", "Z2", "A2", "Z3", "A3", "losses", "dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2",
        "dA1", "dZ1", "dW1", "db1", "ΔW1", "ΔW2", "ΔW3"]
VIEWER = ".tv"


@pytest.fixture(scope="module")
def demo():
    ARTIFACTS.mkdir(exist_ok=True)
    proc, url = start_server(script=DEMO)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@functools.cache
def seed_step():
    """What the demo shows: the seed network's first step, and the optimizer before it."""
    from core.lab.settings import Settings
    from core.lab.workspace import Workspace
    m = engine_mnist()
    ws = Workspace(Settings(), m["train"], m["test"])
    trace = ws.step()
    return trace, ws.steps[-1].optimizer_before


def wait_until(page, condition, timeout: float = 30, what: str = "the condition"):
    """Poll ``condition``; waiting through the page lets Playwright deliver its events meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        page.wait_for_timeout(50)
    raise AssertionError(f"timed out waiting for {what}")


def open_viewer(page, url: str, frames: list | None = None, received: list | None = None) -> None:
    if frames is not None:
        page.on("websocket", lambda ws: ws.on("framesent", lambda payload: frames.append(payload)))
    if received is not None:
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: received.append(len(payload))))
    page.goto(url)
    page.wait_for_selector(f'{VIEWER}[data-state="ready"]', timeout=60_000)


def stop_key(page) -> str:
    return page.locator(VIEWER).get_attribute("data-stop")


def counter(page) -> str:
    return page.locator(".tv-count").inner_text()


def frame_text(payload) -> str:
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)


def test_keys_move_through_all_22_stops_without_a_message_to_the_server(demo, page):
    frames: list = []
    open_viewer(page, demo, frames)
    assert counter(page) == "Stop 1 of 22" and stop_key(page) == "X"
    # the server has answered everything the page asked while loading: the status widget is gone
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
    before = len(frames)
    for i, key in enumerate(KEYS[1:], start=2):
        page.keyboard.press("ArrowRight")
        assert counter(page) == f"Stop {i} of 22" and stop_key(page) == key
        assert page.locator(".tv-fig canvas").count() >= 1
    page.keyboard.press("ArrowRight")                      # past the end: stays
    assert counter(page) == "Stop 22 of 22"
    page.keyboard.press("Home")
    assert stop_key(page) == "X"
    page.keyboard.press("End")
    assert stop_key(page) == "ΔW3"
    page.get_by_role("button", name="previous stop", exact=True).click()
    assert stop_key(page) == "ΔW2"
    page.get_by_role("button", name="next stop", exact=True).click()
    assert stop_key(page) == "ΔW3" and page.get_by_role("button", name="next stop", exact=True).is_disabled()
    page.keyboard.press("?")                               # the keys, listed
    assert page.locator(".tv-help").is_visible() and "next stop" in page.locator(".tv-help").inner_text()
    page.keyboard.press("?")
    assert not page.locator(".tv-help").is_visible()
    page.locator(".tv-strip button", has_text="dZ1").click()
    assert stop_key(page) == "dZ1" and counter(page) == "Stop 17 of 22"
    # The first message sent since must be the one a clicked cell sends: websocket frames keep
    # their order, so a message the moves had caused (however late) would come before it.
    page.locator('.tv-fig[data-name="dZ1"] .tv-cv canvas').scroll_into_view_if_needed()
    box = page.locator('.tv-fig[data-name="dZ1"] .tv-cv canvas').bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_until(page, lambda: len(frames) > before, what="the cell's message")
    assert '"cell"' in frame_text(frames[before]), frame_text(frames[before])[:300]


def test_the_hovered_cell_shows_the_engine_s_float32(demo, page):
    trace, _ = seed_step()
    open_viewer(page, demo)
    page.keyboard.press("ArrowRight")
    readout = page.locator(".tv-readout")
    for name, (fx, fy) in (("Z1", (0.31, 0.77)), ("W1", (0.5, 0.2)), ("X", (0.52, 0.4)), ("b1", (0.9, 0.5))):
        page.locator(f'.tv-fig[data-name="{name}"] .tv-cv canvas').scroll_into_view_if_needed()
        box = page.locator(f'.tv-fig[data-name="{name}"] .tv-cv canvas').bounding_box()
        page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        wait_until(page, lambda: readout.get_attribute("data-name") == name, what=f"the readout of {name}")
        index = tuple(int(i) for i in readout.get_attribute("data-index").split(","))
        shown = readout.get_attribute("data-value")
        stored = np.asarray(trace[name])[index]
        assert np.float32(float(shown)).tobytes() == stored.tobytes(), (name, index, shown, stored)
        assert f"{name}[{', '.join(map(str, index))}] = {shown}" in readout.inner_text()
    assert readout.get_attribute("data-index") != "0"


def test_a_clicked_cell_is_explained_by_core(demo, page):
    from core.teach.explain import explain
    trace, optimizer = seed_step()
    received: list = []
    open_viewer(page, demo, received=received)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
    loaded = sum(received)
    assert loaded > 500_000                                # the step came whole
    page.keyboard.press("End")                             # ΔW3: an update, which needs the optimizer
    page.locator('.tv-fig[data-name="ΔW3"] .tv-cv canvas').scroll_into_view_if_needed()
    box = page.locator('.tv-fig[data-name="ΔW3"] .tv-cv canvas').bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.6)
    panel = page.locator(".tv-explain")
    wait_until(page, lambda: panel.get_attribute("data-total"), timeout=60, what="the explanation")
    index = [int(i) for i in panel.get_attribute("data-index").split(",")]
    assert panel.get_attribute("data-name") == "ΔW3" and index != [0, 0]
    ex = explain(trace, "ΔW3", index, optimizer=optimizer)
    assert float(panel.get_attribute("data-value")) == ex.value
    assert float(panel.get_attribute("data-total")) == ex.total
    text = panel.inner_text()
    assert f"How ΔW3[{index[0]}, {index[1]}] was computed" in text
    assert f"{ex.value:.10g}" in text and ex.top(12)[0][0].label in text
    assert panel.locator(".katex").count() >= 2           # the rule, typeset by the vendored KaTeX
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
    assert sum(received) - loaded < 50_000                # the answer came, not the step again
    # the same stop, moved away from and back to: the explanation is still there, no new request
    page.keyboard.press("Home")
    page.keyboard.press("End")
    assert panel.get_attribute("data-total") == repr(ex.total) or float(panel.get_attribute("data-total")) == ex.total


@pytest.mark.parametrize("size", [(1280, 720), (1400, 1000)], ids=["1280x720", "1400x1000"])
def test_every_stop_fits_on_screen_with_its_title_equations_and_heatmaps(demo, browser, size):
    w, h = size
    ctx = browser.new_context(viewport={"width": w, "height": h})
    page = ctx.new_page()
    try:
        open_viewer(page, demo)
        page.wait_for_selector(".tv-eqs .katex", timeout=30_000)
        for i, key in enumerate(KEYS):
            if i:
                page.keyboard.press("ArrowRight")
            assert stop_key(page) == key
            boxes = {"toolbar": page.locator(".tv-bar").bounding_box(),
                     "title": page.locator(".tv-title").bounding_box(),
                     "equations": page.locator(".tv-eqs").bounding_box(),
                     **{f"heatmap {n}": page.locator(f'.tv-fig[data-name="{n}"] .tv-cv').bounding_box()
                        for n in page.locator(".tv-fig").evaluate_all("fs => fs.map(f => f.dataset.name)")}}
            for what, b in boxes.items():
                assert b and b["y"] >= 0 and b["y"] + b["height"] <= h and b["x"] + b["width"] <= w, \
                    (key, what, b)
            if key in ("Z1", "losses", "ΔW1"):
                page.screenshot(path=str(ARTIFACTS / f"trace_viewer_{w}x{h}_{key}.png"))
        assert page.locator(".tv-eqs .katex").count() >= 1
    finally:
        ctx.close()


def test_train_one_mini_batch_takes_the_next_step(demo, page):
    open_viewer(page, demo)
    first = page.locator(VIEWER).get_attribute("data-view")
    page.keyboard.press("End")
    train = page.get_by_role("button", name="Train one mini-batch", exact=True)
    assert train.is_enabled()
    train.click()
    wait_until(page, lambda: page.locator(VIEWER).get_attribute("data-view") not in (None, first), timeout=60,
               what="the next step's trace")
    page.wait_for_selector(f'{VIEWER}[data-state="ready"]')
    assert page.locator(".tv-step").inner_text() == "step 2 (latest)"
    assert counter(page) == "Stop 1 of 22"               # a new step opens on its first stop
    page.keyboard.press("n")                               # the key does the same
    wait_until(page, lambda: page.locator(".tv-step").inner_text() == "step 3 (latest)", timeout=60, what="step 3")
