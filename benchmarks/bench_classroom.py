"""A classroom on one server: students each train one mini-batch every 5 s on the stepper page.

Starts the app (``streamlit run``) on a loopback port and, for each class size N given, opens N
real browser sessions in headless Chromium (one browser context each: its own Streamlit session,
network and history). Every student opens the stepper, takes the first step, then presses the
trace viewer's *Train one mini-batch* every ``--period`` seconds (each student starting at a random
moment of the period, as a class does), for ``--seconds`` seconds. For every press it records the
time from the click to the new step's label in the viewer (``.tv-step`` says the next step number),
and it reads the CPU time the server process used over the window.

It prints, per class size: presses, median and 95th percentile of click → drawn, the server's
CPU-seconds per press, and the Chromium processes' CPU share. The capacity of a server then
follows from the CPU per press: the app is one Python process whose sessions' script runs share
one interpreter lock, so count one core; with one press per student every P seconds it is
saturated at P / (CPU per press) students, and the table gives that figure at 70 % of the core
(beyond that, queueing makes the slow tail grow fast).

    python -m benchmarks.bench_classroom                    # classes of 1, 2, 4 and 6; ≈ 5 minutes
    python -m benchmarks.bench_classroom --sizes 1 8 --seconds 60

On one 2-core machine the browsers take CPU from the server, so the measured p95 at larger N is
pessimistic for a real classroom, where every student's browser runs on their own computer.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402

TRAIN = "Train one mini-batch"
FIRST_STEP = "Step: train on this mini-batch"
STEP_NUMBER = re.compile(r"step ([\d,]+)")
UTILISATION = 0.7


async def step_shown(page) -> int:
    text = await page.locator(".tv-step").first.inner_text()
    m = STEP_NUMBER.search(text)
    return int(m.group(1).replace(",", "")) if m else 0


async def wait_for_step(page, above: int, timeout: float = 120.0) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            n = await step_shown(page)
        except Exception:   # noqa: BLE001 — the viewer is being redrawn
            n = 0
        if n > above:
            return n
        await asyncio.sleep(0.02)
    raise TimeoutError(f"the viewer never showed a step after {above}")


async def student(browser, url: str, period: float, seconds: float, start: asyncio.Event,
                  ready: list, times: list[float], contexts: list) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    contexts.append(context)            # closed by one_class once the CPU has been read
    page = await context.new_page()
    await page.goto(f"{url}/stepper")
    button = page.get_by_role("button", name=FIRST_STEP).first
    await button.wait_for(timeout=180_000)
    await button.click()
    await page.locator('.tv[data-state="ready"]').wait_for(timeout=180_000)
    n = await wait_for_step(page, 0)
    ready.append(page)
    await start.wait()
    t_end = time.monotonic() + seconds
    await asyncio.sleep(random.uniform(0, period))
    train = page.get_by_role("button", name=TRAIN, exact=True)
    while time.monotonic() < t_end:
        t0 = time.monotonic()
        await train.click()
        n = await wait_for_step(page, n)
        times.append(time.monotonic() - t0)
        await asyncio.sleep(max(0.0, period - (time.monotonic() - t0)))


def chromium_cpu() -> float:
    total = 0.0
    for p in psutil.process_iter(["name", "cpu_times"]):
        if p.info["name"] and "chrom" in p.info["name"].lower() and p.info["cpu_times"]:
            total += p.info["cpu_times"].user + p.info["cpu_times"].system
    return total


async def one_class(browser, n: int, period: float, seconds: float) -> dict:
    proc, url = start_server()
    server = psutil.Process(proc.pid)
    try:
        start, ready, times, contexts = asyncio.Event(), [], [], []
        tasks = [asyncio.create_task(student(browser, url, period, seconds, start, ready, times, contexts))
                 for _ in range(n)]
        while len(ready) < n:           # every student has the page and a first step before the clock starts
            failed = [t for t in tasks if t.done() and t.exception()]
            if failed:
                raise failed[0].exception()
            await asyncio.sleep(0.2)
        cpu0, chrome0, t0 = sum(server.cpu_times()[:2]), chromium_cpu(), time.monotonic()
        start.set()
        await asyncio.gather(*tasks)
        wall = time.monotonic() - t0
        cpu = sum(server.cpu_times()[:2]) - cpu0
        chrome = chromium_cpu() - chrome0
        for c in contexts:
            await c.close()
    finally:
        proc.terminate()
        proc.wait(10)
    q = statistics.quantiles(times, n=20, method="inclusive") if len(times) >= 2 else times * 19
    per_press = cpu / max(len(times), 1)
    return {"n": n, "presses": len(times), "median": statistics.median(times), "p95": q[18],
            "max": max(times), "cpu_per_press": per_press, "server_share": cpu / wall,
            "chromium_share": chrome / wall,
            "capacity": period / per_press * UTILISATION if per_press else float("inf")}


async def main_async(args) -> None:
    from playwright.async_api import async_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        print(f"{os.cpu_count()} cores; each student presses *{TRAIN}* every {args.period:g} s for "
              f"{args.seconds:g} s")
        print("| students | presses | median click → drawn | p95 | max | server CPU per press | server CPU share "
              f"| Chromium CPU share | students at {UTILISATION:.0%} of one core (derived) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in args.sizes:
            r = await one_class(browser, n, args.period, args.seconds)
            print(f"| {r['n']} | {r['presses']} | {r['median'] * 1000:.0f} ms | {r['p95'] * 1000:.0f} ms | "
                  f"{r['max'] * 1000:.0f} ms | {r['cpu_per_press'] * 1000:.0f} ms | {r['server_share']:.2f} | "
                  f"{r['chromium_share']:.2f} | {r['capacity']:.0f} |", flush=True)
        await browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 6], help="class sizes to measure")
    ap.add_argument("--period", type=float, default=5.0, help="seconds between a student's presses")
    ap.add_argument("--seconds", type=float, default=40.0, help="how long each class trains")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
