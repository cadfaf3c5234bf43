"""Moving between the stops of a step, in Chromium against a real server: click → drawn.

1. starts the trace viewer's demo app (``tests/browser/apps/trace_viewer_demo.py``: one step of
   the seed network in ``ui.trace_viewer``) and opens it in headless Chromium;
2. clicks *next stop* through the 22 stops, ``--rounds`` times (*Home* between rounds), each
   click a real mouse click; the viewer records, for each move, the time from the click event
   to the frame after the new stop was drawn (``data-drawn-ms``);
3. counts the websocket messages the page sent to the server meanwhile (the target: none);
4. with ``--page``, does the same on the app's stepper page (after *Step*), with the whole app
   around the viewer.

    python -m benchmarks.bench_stepper_browser              # 5 rounds: 105 clicks, ≈ 1 minute
    python -m benchmarks.bench_stepper_browser --page       # and on the stepper page

Prints a table; timings depend on the machine and on what else runs on it. (Before the viewer,
the page's *next* was a server round trip: median 0.66 s on a quiet machine, 1.1 s with the
machine loaded, measured by this script's earlier ``--old`` mode at commit 7087ed5.)
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402
from tests.browser.helpers import caused_by_user, click_button, open_page  # noqa: E402

DEMO = "tests/browser/apps/trace_viewer_demo.py"


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


def open_demo(page, url: str) -> None:
    page.goto(url)


def open_stepper(page, url: str) -> None:
    open_page(page, url, "stepper")
    click_button(page, "Step: train on this mini-batch")


def bench_viewer(browser, rounds: int, script: str, opener) -> tuple[list[float], int, dict]:
    proc, url = start_server(script=script)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        sent: list = []
        page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
        opener(page, url)
        page.wait_for_selector('.tv[data-state="ready"]', timeout=60_000)
        page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
        viewer = page.locator(".tv")
        viewer.scroll_into_view_if_needed()
        facts = {"unpack_ms": float(viewer.get_attribute("data-unpack-ms"))}
        page.evaluate("() => 0")                  # let Playwright deliver the websocket events so far
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
        page.evaluate("() => 0")
        facts["timer"] = sum(not caused_by_user(m) for m in sent[before:])
        return times, sum(caused_by_user(m) for m in sent[before:]), facts
    finally:
        stop_server(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="passes through the 22 stops")
    ap.add_argument("--page", action="store_true", help="also on the app's stepper page")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        runs = [("trace viewer demo", DEMO, open_demo)] + ([("stepper page", "streamlit_app.py", open_stepper)]
                                                          if args.page else [])
        for name, script, opener in runs:
            times, messages, facts = bench_viewer(browser, args.rounds, script, opener)
            print(f"{name}, next stop, click → drawn: {summary(times)}; websocket messages sent while moving: "
                  f"{messages} (and {facts['timer']} timed reruns of the sidebar's fragment); "
                  f"the step's first unpack {facts['unpack_ms']:.0f} ms")
        browser.close()


if __name__ == "__main__":
    main()
