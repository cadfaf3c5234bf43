"""Many users on one server: resident memory per session, and latency under load.

Starts the real app (``streamlit run``) on a loopback port and drives real
browser sessions with headless Chromium (Playwright):

1. memory: the server's resident set size (RSS) with 1, 4 and 8 sessions, each
   holding the pretrained network with its 1000-epoch history (each session
   opens it on the home page, as a teacher would);
2. latency: with two sessions training in the background, how long a stepper
   rerun takes in a third session (click "Step", wait for the page to settle).

    python -m benchmarks.bench_sessions            # writes benchmarks/SESSIONS.md
    python -m benchmarks.bench_sessions --quick    # 1 and 2 sessions only

All traffic stays on 127.0.0.1; the script stops its server and browser itself.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402
from tests.browser.helpers import settle  # noqa: E402


def rss_mb(pid: int) -> float:
    p = psutil.Process(pid)
    return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)]) / 2**20


def open_session(browser, url: str, pretrained: bool = True):
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    settle(page)
    if pretrained:
        page.get_by_role("button", name="Open the pretrained network").click()
        settle(page)
        page.get_by_text("the pretrained network").first.wait_for()
    return ctx, page


def measure_memory(browser, url: str, pid: int, counts: list[int]) -> list[tuple[int, float]]:
    rows, sessions = [], []
    time.sleep(1)
    rows.append((0, rss_mb(pid)))
    for n in counts:
        while len(sessions) < n:
            sessions.append(open_session(browser, url))
        time.sleep(2)
        rows.append((n, rss_mb(pid)))
        print(f"{n} sessions: {rows[-1][1]:.0f} MB", flush=True)
    for ctx, _ in sessions:
        ctx.close()
    return rows


def measure_latency(browser, url: str, reps: int = 8) -> dict:
    """Two background runs, and a third session stepping: seconds per stepper rerun."""
    trainers = []
    for _ in range(2):
        ctx, page = open_session(browser, url, pretrained=False)
        page.goto(url + "/training?pool=12000&val=1000&epochs=200")
        settle(page)
        page.get_by_role("button", name="Start training").first.click()
        trainers.append((ctx, page))
    time.sleep(3)
    ctx, page = open_session(browser, url, pretrained=False)
    page.goto(url + "/stepper")
    settle(page)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        page.get_by_role("button", name="Step").first.click()
        settle(page, quiet=0.3)
        times.append(time.perf_counter() - t0 - 0.3)
    for c, p in trainers:
        c.close()
    ctx.close()
    return {"median": statistics.median(times), "max": max(times), "n": len(times)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-latency", action="store_true")
    a = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    proc, url = start_server()
    counts = [1, 2] if a.quick else [1, 4, 8]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            mem = measure_memory(browser, url, proc.pid, counts)
            lat = None if a.no_latency else measure_latency(browser, url)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)

    first = mem[1][1]
    lines = [f"# Sessions on one server — {dt.date.today()}",
             "", f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
             "`python -m benchmarks.bench_sessions`.", "",
             "| sessions (each with the pretrained network + 1000-epoch history) | server RSS (MB) | each session after the first adds (MB) |",
             "|---|---|---|"]
    for n, mb in mem:
        per = f"{(mb - first) / (n - 1):.1f}" if n > 1 else "—"
        lines.append(f"| {n} | {mb:.0f} | {per} |")
    lines += ["", "The first session also loads what every session shares (the MNIST images, the pretrained "
                  "network, the libraries); later sessions add only their own network, history and step history."]
    if lat:
        lines += ["", f"With two sessions training in the background, a stepper rerun (\"Step\" clicked until the "
                      f"page settles) in a third session took **{lat['median']:.2f} s** median, "
                      f"{lat['max']:.2f} s at worst, over {lat['n']} clicks."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not a.quick:
        (ROOT / "benchmarks" / "SESSIONS.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
