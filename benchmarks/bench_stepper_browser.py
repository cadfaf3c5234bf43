"""Moving between the stops of a step, in Chromium against a real server: click → drawn.

1. starts the trace viewer's demo app (``tests/browser/apps/trace_viewer_demo.py``: one step of
   the seed network in ``ui.trace_viewer``) and opens it in headless Chromium;
2. clicks *next stop* through the 22 stops, ``--rounds`` times (*Home* between rounds), each
   click a real mouse click; the viewer records, for each move, the time from the click event
   to the frame after the new stop was drawn (``data-drawn-ms``);
3. counts the websocket messages the page sent to the server meanwhile (the target: none);
4. with ``--old``, does the same with the *next* button of the stepper page as it is on
   ``streamlit_app.py`` before the viewer (a server round trip per click), timed from the click
   to the text "Stop k of 22." on screen.

    python -m benchmarks.bench_stepper_browser              # 5 rounds: 105 clicks, ≈ 1 minute
    python -m benchmarks.bench_stepper_browser --old        # and the page's server round trip

Prints a table; timings depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402
from tests.browser.helpers import click_button, open_page  # noqa: E402

DEMO = "tests/browser/apps/trace_viewer_demo.py"
STOPS = 22


def summary(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=10)
    return (f"median {statistics.median(ms):7.1f} ms · p90 {q[-1]:7.1f} ms · max {max(ms):7.1f} ms · "
            f"{len(ms)} clicks")


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def bench_viewer(browser, rounds: int) -> tuple[list[float], int, dict]:
    proc, url = start_server(script=DEMO)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        sent: list = []
        page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
        page.goto(url)
        page.wait_for_selector('.tv[data-state="ready"]', timeout=60_000)
        page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
        viewer = page.locator(".tv")
        facts = {"unpack_ms": float(viewer.get_attribute("data-unpack-ms"))}
        before = len(sent)
        button = page.get_by_role("button", name="next stop", exact=True)
        box = button.bounding_box()
        keys = page.locator(".tv-strip button").all_inner_texts()
        times = []
        for _ in range(rounds):
            page.keyboard.press("Home")
            for k in keys[1:]:
                page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
                page.locator(f'.tv[data-drawn-stop="{k}"]').wait_for()     # (Playwright's CSS enters the shadow root)
                times.append(float(viewer.get_attribute("data-drawn-ms")))
                page.evaluate("() => 0")          # let Playwright deliver the websocket events so far
        page.screenshot(path=str(ARTIFACTS / "bench_stepper_viewer.png"))
        return times, len(sent) - before, facts
    finally:
        stop_server(proc)


def bench_old_page(browser, rounds: int) -> list[float]:
    proc, url = start_server()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        open_page(page, url, "stepper")
        click_button(page, "Step: train on this mini-batch")
        times = []
        for _ in range(rounds):
            page.locator('[data-testid="stButtonGroup"] button', has_text="X").first.click()
            page.get_by_text("Stop 1 of 22.").wait_for()
            for i in range(2, STOPS + 1):
                t0 = time.perf_counter()
                page.get_by_role("button", name="next", exact=True).click()
                page.get_by_text(f"Stop {i} of {STOPS}.").wait_for(timeout=60_000)
                times.append(1000 * (time.perf_counter() - t0))
        return times
    finally:
        stop_server(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="passes through the 22 stops")
    ap.add_argument("--old", action="store_true", help="also time the stepper page's server round trip")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        times, messages, facts = bench_viewer(browser, args.rounds)
        print(f"trace viewer, next stop, click → drawn: {summary(times)}; "
              f"websocket messages sent while moving: {messages}; first unpack of the step {facts['unpack_ms']:.0f} ms")
        if args.old:
            old = bench_old_page(browser, max(1, args.rounds // 5))
            print(f"stepper page before the viewer, next, click → 'Stop k of 22.': {summary(old)}")
        browser.close()


if __name__ == "__main__":
    main()
