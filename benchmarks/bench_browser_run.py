"""The full 1000-epoch seed protocol in the browser, next to the command line.

1. runs ``python -m core.train`` (the seed's defaults) and reads its final JSON line;
2. starts the real app, opens the training page in headless Chromium, presses
   *Start training* with the default settings (the seed protocol) and watches the
   live page until the run reports *finished*, taking a screenshot mid-run and at
   the end (``docs/screenshots/training-full-mid.png`` and ``-done.png``);
3. writes both wall times, the per-epoch cost of each and the accuracies to
   ``benchmarks/BROWSER_RUN.md``.

    python -m benchmarks.bench_browser_run              # ≈ 6 minutes on 2 cores
    python -m benchmarks.bench_browser_run --epochs 20  # a short check

Run it on a quiet machine: the two runs are compared with each other.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402
from tests.browser.helpers import settle  # noqa: E402

SHOTS = ROOT / "docs" / "screenshots"


def run_cli(epochs: int) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "core.train", "--epochs", str(epochs), "--quiet"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    summary["wall"] = time.perf_counter() - t0
    return summary


def cpu_seconds(procs) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def chromium_processes(me: psutil.Process) -> list:
    return [c for c in me.children(recursive=True) if "chrom" in c.name().lower()]


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def run_browser(epochs: int) -> dict:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    proc, url = start_server()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            query = "" if epochs == 1000 else f"?epochs={epochs}"
            page.goto(f"{url}/training{query}")
            settle(page)
            server, me = psutil.Process(proc.pid), psutil.Process()
            cpu0 = (cpu_seconds([server]), cpu_seconds(chromium_processes(me)))
            page.get_by_role("button", name="Start training").click()
            t0 = time.perf_counter()
            mid_taken, epoch = False, 0
            while True:
                time.sleep(2)
                text = main_text(page)
                m = re.search(r"Epoch\s+([\d,]+)\s*/\s*([\d,]+)", text)
                if m:
                    epoch = int(m.group(1).replace(",", ""))
                if not mid_taken and epoch >= epochs // 2:
                    page.screenshot(path=str(SHOTS / "training-full-mid.png"), full_page=False)
                    mid_taken = True
                if "Status: finished" in text or "Status: diverged" in text or "Status: failed" in text:
                    break
                if time.perf_counter() - t0 > 3600:
                    raise TimeoutError("the browser run did not finish within an hour")
            wall = time.perf_counter() - t0
            cpu = (cpu_seconds([server]) - cpu0[0], cpu_seconds(chromium_processes(me)) - cpu0[1])
            settle(page)
            page.screenshot(path=str(SHOTS / "training-full-done.png"), full_page=False)
            text = main_text(page)
            acc = re.search(r"Validation accuracy\s*\n\s*([\d.]+)%", text)
            secs = re.search(r"Training time\s*\n\s*([^\n]+)", text)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    return {"wall": wall, "server_cpu": cpu[0], "browser_cpu": cpu[1],
            "val_acc": float(acc.group(1)) / 100 if acc else None,
            "status": "finished" if "Status: finished" in text else "not finished",
            "training_time_shown": secs.group(1).strip() if secs else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=1000)
    a = ap.parse_args(argv)
    cli = run_cli(a.epochs)
    print(f"command line: {cli['wall']:.1f} s, val {cli['val_acc']:.2%}, test {cli['test_acc']:.2%}", flush=True)
    web = run_browser(a.epochs)
    print(f"browser: {web['wall']:.1f} s, val {web['val_acc']}", flush=True)
    extra = web["wall"] / cli["seconds"] - 1
    text = "\n".join([
        f"# {a.epochs} epochs of the seed protocol: browser vs command line — {dt.date.today()}",
        "", f"`python -m benchmarks.bench_browser_run`, {os.cpu_count()} cores, one run each, one after the other.", "",
        "| | wall time | s/epoch | validation accuracy | test accuracy |", "|---|---:|---:|---:|---:|",
        f"| `python -m core.train` (its `seconds`: the training loop, no start-up) | {cli['seconds']:.1f} s | "
        f"{cli['seconds'] / a.epochs:.3f} | {cli['val_acc']:.2%} | "
        f"{cli['test_acc']:.2%} |",
        f"| training page in Chromium (click → \"finished\") | {web['wall']:.1f} s | {web['wall'] / a.epochs:.3f} | "
        f"{web['val_acc']:.2%} | (same network: see *Where it fails*) |" if web["val_acc"] is not None else
        f"| training page in Chromium | {web['wall']:.1f} s | {web['wall'] / a.epochs:.3f} | ? | |",
        "", f"The browser run took **{extra:+.1%}** time relative to the command line (target: at most +10%), "
            f"live curves redrawing every 3 s the whole time; the page reported *{web['status']}*, "
            f"training time shown {web['training_time_shown']}.",
        f"During the browser run the server process used {web['server_cpu']:.0f} CPU-seconds and Chromium, "
        f"rendering the page on the same 2-core machine, {web['browser_cpu']:.0f} CPU-seconds "
        f"({web['browser_cpu'] / web['wall']:.2f} of a core): on a deployed app the browser runs on the "
        f"student's computer, not on the server.",
        "Screenshots: `docs/screenshots/training-full-mid.png`, `docs/screenshots/training-full-done.png`.", ""])
    print(text)
    if a.epochs == 1000:
        (ROOT / "benchmarks" / "BROWSER_RUN.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
