"""The stepper's trace viewer in Chromium against a real server: click → drawn, and what a step costs.

1. starts the trace viewer's demo app (``tests/browser/apps/trace_viewer_demo.py``: one step of
   the seed network in ``ui.trace_viewer``) and opens it in headless Chromium;
2. clicks *next stop* through the 22 stops, ``--rounds`` times (*Home* between rounds), each
   click a real mouse click; the viewer records, for each move, the time from the click event
   to the frame after the new stop was drawn (``data-drawn-ms``);
3. counts the websocket messages the page sent to the server meanwhile (the target: none);
4. clicks *Train one mini-batch* ``--trains`` times: from the click event to the frame after the
   new step's first stop was drawn (``data-trained-ms``; and to the moment the step's data reached
   the viewer, ``data-trained-arrived-ms``), the bytes the server sent for it (until the page's run
   is over) and the server's CPU-seconds for it;
5. with ``--page``, does the same on the app's stepper page (after *Step*), with the whole app
   around the viewer.

    python -m benchmarks.bench_stepper_browser              # 5 rounds: 105 clicks, 10 steps, ≈ 1 minute
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
from tests.browser.helpers import (caused_by_user, click_button, open_page, server_cpu_time,  # noqa: E402
                                   settle)

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
    click_button(page, "Step: train on this mini-batch", until=lambda: page.locator(".tv").count() > 0)


def summary_s(values: list[float], unit: str, scale: float = 1.0, fmt: str = ".2f") -> str:
    v = [x * scale for x in values]
    return f"median {statistics.median(v):{fmt}} {unit} · max {max(v):{fmt}} {unit}"


def bench_viewer(browser, rounds: int, trains: int, script: str, opener) -> tuple[list[float], int, dict]:
    import psutil
    proc, url = start_server(script=script)
    try:
        server = psutil.Process(proc.pid)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        sent: list = []
        received: list = []
        page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: received.append(len(payload))))
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
        messages = sum(caused_by_user(m) for m in sent[before:])

        train = page.get_by_role("button", name="Train one mini-batch", exact=True)
        facts["train_ms"], facts["arrived_ms"], facts["train_bytes"], facts["train_cpu"] = [], [], [], []
        for i in range(trains):
            settle(page)
            page.evaluate("() => 0")
            r0, c0 = sum(received), server_cpu_time(server)
            box = train.bounding_box()
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.locator(f'.tv[data-trained-count="{i + 1}"]').wait_for(timeout=120_000)
            facts["train_ms"].append(float(viewer.get_attribute("data-trained-ms")))
            facts["arrived_ms"].append(float(viewer.get_attribute("data-trained-arrived-ms")))
            page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=120_000)
            settle(page)
            page.evaluate("() => 0")
            facts["train_bytes"].append(sum(received) - r0)
            facts["train_cpu"].append(server_cpu_time(server) - c0)
        return times, messages, facts
    finally:
        stop_server(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="passes through the 22 stops")
    ap.add_argument("--trains", type=int, default=10, help="clicks on Train one mini-batch")
    ap.add_argument("--page", action="store_true", help="also on the app's stepper page")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        runs = [("trace viewer demo", DEMO, open_demo)] + ([("stepper page", "streamlit_app.py", open_stepper)]
                                                          if args.page else [])
        for name, script, opener in runs:
            times, messages, facts = bench_viewer(browser, args.rounds, args.trains, script, opener)
            print(f"{name}, next stop, click → drawn: {summary(times)}; websocket messages sent while moving: "
                  f"{messages} (and {facts['timer']} timed reruns of the sidebar's fragment); "
                  f"the step's first unpack {facts['unpack_ms']:.0f} ms", flush=True)
            if facts["train_ms"]:
                print(f"{name}, Train one mini-batch, click → the new step drawn: "
                      f"{summary_s(facts['train_ms'], 's', 1e-3)} ({len(facts['train_ms'])} steps; the step's "
                      f"data reached the viewer after {summary_s(facts['arrived_ms'], 's', 1e-3)}); "
                      f"sent to the browser per step: {summary_s(facts['train_bytes'], 'MB', 1e-6)}; "
                      f"server CPU per step: {summary_s(facts['train_cpu'], 's')}", flush=True)
        browser.close()


if __name__ == "__main__":
    main()
