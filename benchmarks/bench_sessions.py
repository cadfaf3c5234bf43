"""Many users on one server: resident memory per session, and latency under load.

Starts the real app (``streamlit run``) on a loopback port and drives real
browser sessions with headless Chromium (Playwright); every browser context is
one user, with its own Streamlit session and Workspace:

1. memory: the server's resident set size (RSS) with 1, 4 and 8 sessions, each
   holding the pretrained network with its 1000-epoch history (each session
   presses *Open the pretrained network* on the home page, as a teacher would
   tell a class to);
2. latency: how long a stepper rerun takes in a session (click *Step*, until
   the new step's caption is on screen and the page has finished redrawing):
   first with nothing else going on, then with two other sessions training in
   the background (their steps per second are reported too);
3. an upload: one session uploads a Kaggle-sized train.csv (~90 MB) in the
   sidebar; the server's RSS before and after;
4. an abandoned run: a session starts training and its browser context is
   closed; the server's CPU use is sampled until the run pauses itself
   (``BACKPROP_ORPHAN_AFTER`` seconds after the last heartbeat, set short here).

    python -m benchmarks.bench_sessions            # ≈ 3 minutes; writes benchmarks/SESSIONS.md
    python -m benchmarks.bench_sessions --quick    # 1 and 2 sessions, 3 clicks: checks that it all runs

All traffic stays on 127.0.0.1; the script stops its server and browser itself.
Run it on a quiet machine: the latency is wall-clock time on shared cores.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402
from tests.browser.helpers import cpu_use, settle  # noqa: E402

MAIN = '[data-testid="stMain"]'
SIDEBAR = '[data-testid="stSidebar"]'
PROGRESS = f'{MAIN} [data-testid="stProgress"]'
STEP_BUTTON = "Step: train on this mini-batch"
TRAIN_QUERY = "pool=12000&val=1000"        # 172 steps per epoch, 1000 epochs: runs that last the benchmark
ORPHAN_AFTER = 10                          # seconds; production is 90 (core/lab/run/controller.py)

# the page has finished redrawing: the new step's caption is there, nothing is stale, no "Running…"
DRAWN = """(pattern) => {
    const main = document.querySelector('[data-testid="stMain"]');
    if (!main || !new RegExp(pattern).test(main.innerText)) return false;
    if (document.querySelector('[data-stale="true"]')) return false;
    const s = document.querySelector('[data-testid="stStatusWidget"]');
    return !s || s.offsetParent === null;
}"""


def rss_mb(pid: int) -> float:
    p = psutil.Process(pid)
    return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)]) / 2**20


def new_user(browser):
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(120_000)
    return ctx, page


def open_session(browser, url: str, pretrained: bool = True):
    ctx, page = new_user(browser)
    page.goto(url)
    settle(page)
    if pretrained:
        page.get_by_role("button", name="Open the pretrained network").first.click()
        page.locator(SIDEBAR).get_by_text("the pretrained network").first.wait_for()
        settle(page)
    return ctx, page


def measure_memory(browser, url: str, pid: int, counts: list[int]) -> list[tuple[int, float]]:
    rows, sessions = [], []
    time.sleep(2)
    rows.append((0, rss_mb(pid)))
    print(f"0 sessions: {rows[-1][1]:.0f} MB", flush=True)
    for n in counts:
        while len(sessions) < n:
            sessions.append(open_session(browser, url))
        time.sleep(3)
        rows.append((n, rss_mb(pid)))
        print(f"{n} sessions: {rows[-1][1]:.0f} MB", flush=True)
    for ctx, _ in sessions:
        ctx.close()
    return rows


def kaggle_sized_csv(folder: Path, rows: int = 52_000) -> Path:
    """A valid train.csv of the first ``rows`` MNIST images: ~90 MB, like Kaggle's 73 MB file of 42,000."""
    import numpy as np

    from core.data.mnist import load_mnist
    m = load_mnist()["train"]
    table = np.array([str(i).encode() for i in range(256)], dtype=object)
    head = ("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n").encode()
    lines = [head] + [b",".join(table[np.concatenate(([m.y[i]], m.X[i]))]) + b"\n" for i in range(rows)]
    path = folder / "train.csv"
    path.write_bytes(b"".join(lines))
    return path


def measure_upload(browser, url: str, pid: int, folder: Path) -> dict:
    """One session uploads a Kaggle-sized train.csv in the sidebar: what it costs the server."""
    path = kaggle_sized_csv(folder)
    ctx, page = new_user(browser)
    page.goto(url)
    settle(page)
    time.sleep(2)
    before = rss_mb(pid)
    side = page.locator(SIDEBAR)
    side.get_by_text("Settings", exact=True).click()
    t0 = time.perf_counter()
    side.locator('input[type="file"]').set_input_files(path)
    side.get_by_text("Loaded 52,000 labelled images").wait_for()
    seconds = time.perf_counter() - t0
    settle(page)
    time.sleep(3)
    out = {"mb": path.stat().st_size / 2**20, "seconds": seconds, "added": rss_mb(pid) - before}
    ctx.close()
    print(f"upload of a {out['mb']:.0f} MB train.csv: {seconds:.1f} s, server RSS +{out['added']:.0f} MB", flush=True)
    return out


def steps_done(page) -> int:
    text = page.locator(PROGRESS).first.inner_text()
    return int(re.search(r"· ([\d,]+) of [\d,]+ steps", text).group(1).replace(",", ""))


def step_clicks(page, reps: int) -> list[float]:
    """Seconds from a click on *Step* until the page shows that step, fully redrawn."""
    times = []
    for k in range(1, reps + 2):
        t0 = time.perf_counter()
        page.get_by_role("button", name=STEP_BUTTON, exact=True).click()
        pattern = rf"(^|\D){k} steps? taken"
        page.wait_for_function(DRAWN, arg=pattern, polling=20, timeout=120_000)
        if k > 1:                      # the first step also draws the step views for the first time
            times.append(time.perf_counter() - t0)
    return times


def measure_latency(browser, url: str, reps: int) -> dict:
    out = {}
    ctx, page = new_user(browser)
    page.goto(url + "/stepper")
    settle(page)
    out["idle"] = step_clicks(page, reps)
    ctx.close()
    print("stepper, nothing else running: " + ", ".join(f"{t:.2f}" for t in out["idle"]), flush=True)

    trainers = []
    for _ in range(2):
        c, p = new_user(browser)
        p.goto(url + "/training?" + TRAIN_QUERY)
        settle(p)
        p.get_by_role("button", name="Start training").first.click()
        p.locator(PROGRESS).first.wait_for()
        trainers.append((c, p))
    time.sleep(3)
    ctx, page = new_user(browser)
    page.goto(url + "/stepper")
    settle(page)
    before = [(steps_done(p), time.monotonic()) for _, p in trainers]
    out["loaded"] = step_clicks(page, reps)
    after = [(steps_done(p), time.monotonic()) for _, p in trainers]
    out["train_rates"] = [(s1 - s0) / (t1 - t0) for (s0, t0), (s1, t1) in zip(before, after)]
    print("stepper, two runs training: " + ", ".join(f"{t:.2f}" for t in out["loaded"])
          + f"; the runs' steps/s meanwhile: {', '.join(f'{r:.0f}' for r in out['train_rates'])}", flush=True)
    for c, p in trainers:
        p.get_by_role("button", name="Stop").first.click()
        c.close()
    ctx.close()
    return out


def measure_abandoned_run(browser, url: str, pid: int) -> dict:
    """Close a training tab mid-run and watch the server's CPU until the run has paused itself."""
    ctx, page = new_user(browser)
    page.goto(url + "/training?" + TRAIN_QUERY)
    settle(page)
    page.get_by_role("button", name="Start training").first.click()
    page.locator(PROGRESS).first.wait_for()
    busy = cpu_use(psutil.Process(pid), 3.0)
    ctx.close()
    closed = time.monotonic()
    trace = []
    while time.monotonic() - closed < ORPHAN_AFTER + 30:
        c = cpu_use(psutil.Process(pid), 1.0)
        trace.append((time.monotonic() - closed, c))
        if c < 0.05 and len(trace) >= 3 and all(x < 0.05 for _, x in trace[-2:]):
            break
    quiet_at = next((t for t, c in trace if c < 0.05), None)
    print(f"abandoned run: {busy:.2f} cores while watched; after closing: "
          + ", ".join(f"{t:.0f}s {c:.2f}" for t, c in trace), flush=True)
    return {"busy": busy, "trace": trace, "quiet_at": quiet_at}


def report(mem, upload, lat, orphan, load) -> str:
    first = mem[1][1]
    lines = [f"# Sessions on one server — {dt.date.today()}",
             "", f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
                 f"`python -m benchmarks.bench_sessions`; load average {load[0]:.1f} at the start, "
                 f"{load[1]:.1f} at the end (other work on the same cores inflates the times).", "",
             "## Memory", "",
             "| sessions (each with the pretrained network + its 1000-epoch history) | server RSS (MB) | "
             "each session after the first adds (MB) |",
             "|---|---|---|"]
    for n, mb in mem:
        per = f"{(mb - first) / (n - 1):.1f}" if n > 1 else "—"
        lines.append(f"| {n} | {mb:.0f} | {per} |")
    lines += ["", "Row 0 is the server before any browser connected. The first session also loads what every "
                  "session shares (the MNIST images, the pretrained network, the libraries); later sessions add "
                  "only their own copy of the history, the network's parameters (shared read-only until it "
                  "trains) and Streamlit's own per-session state. Streamlit may drop a closed tab's session, and "
                  "what it holds, once `server.disconnectedSessionTTL` (120 s) has passed."]
    if upload:
        lines += ["", f"A session that uploads a Kaggle-sized train.csv ({upload['mb']:.0f} MB, 52,000 images) in "
                      f"the sidebar waited {upload['seconds']:.1f} s (upload and parse) and added "
                      f"**{upload['added']:.0f} MB** to the server's RSS: the parsed images are "
                      f"{52_000 * 785 / 2**20:.0f} MB (uint8), the rest is what the allocator keeps from parsing. "
                      "The uploaded file itself is released once parsed (ui/uploads.py), otherwise Streamlit "
                      "would hold its bytes as long as the uploader shows it."]
    if lat:
        def stats(xs):
            return f"**{statistics.median(xs):.2f} s** median, {max(xs):.2f} s at worst"
        lines += ["", "## Stepper latency", "",
                  f"One click on *Step* (a real training step on the default 64-image batch, then the page "
                  f"redrawn: the step's caption on screen, no stale element, no *Running…*), {len(lat['idle'])} "
                  "clicks after a first one:", "",
                  "| what else the server does | stepper rerun |", "|---|---|",
                  f"| nothing | {stats(lat['idle'])} |",
                  f"| two other sessions train (seed network, {TRAIN_QUERY.replace('&', ', ')}) | "
                  f"{stats(lat['loaded'])} |", "",
                  "Meanwhile the two runs trained at "
                  + " and ".join(f"{r:,.0f}" for r in lat["train_rates"]) + " steps per second.", "",
                  "Each run trains in a process of its own at nice 10 (core/lab/run/controller.py), so the stepper's script "
                  "has the server's interpreter to itself and the scheduler gives it a core before the runs; "
                  "what remains is the two cores shared with the runs and with Chromium drawing the pages on "
                  "the same machine."]
    if orphan:
        trace = ", ".join(f"{t:.0f} s: {c:.2f}" for t, c in orphan["trace"])
        lines += ["", "## A run whose tab is closed", "",
                  f"A session trains ({orphan['busy']:.2f} cores of server CPU, its training process included, "
                  f"while its tab watches); then its "
                  f"browser context is closed. This server ran with `BACKPROP_ORPHAN_AFTER={ORPHAN_AFTER}` "
                  "(production: 90 s). Server CPU in cores, per second after closing: " + trace + ".", "",
                  (f"The run paused itself and the server was idle {orphan['quiet_at']:.0f} s after the tab closed."
                   if orphan["quiet_at"] is not None else "**The server did not become idle.**"), "",
                  "What happens to a running training when its session ends: every page's sidebar fragment "
                  "sends the run a heartbeat every 5 s (the training page's live panel every 3 s). Closing the "
                  "tab stops them; the run trains on until 90 s have passed without one (a tab that reconnects "
                  "meanwhile finds it still running), then pauses between two steps, keeping its network, "
                  "history and position, and stops using the CPU. Streamlit keeps a disconnected session "
                  "for 120 s, so a tab that reconnects within that time finds the run paused, with a message, "
                  "and can resume it; after that the session and its run are dropped and their memory is freed. "
                  "`tests/browser/test_isolation.py` checks this with an 8 s orphan time."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 and 2 sessions, 3 clicks; writes nothing")
    ap.add_argument("--reps", type=int, default=10, help="stepper clicks per condition (after a first one)")
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="where to write the report (default: SESSIONS.md)")
    a = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    counts = [1, 2] if a.quick else [1, 4, 8]
    reps = 3 if a.quick else a.reps
    load0 = os.getloadavg()[0]
    proc, url = start_server(extra_env={"BACKPROP_ORPHAN_AFTER": str(ORPHAN_AFTER)})
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            mem = measure_memory(browser, url, proc.pid, counts)
            with tempfile.TemporaryDirectory() as folder:
                upload = None if a.quick else measure_upload(browser, url, proc.pid, Path(folder))
            lat = None if a.no_latency else measure_latency(browser, url, reps)
            orphan = measure_abandoned_run(browser, url, proc.pid)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)

    text = report(mem, upload, lat, orphan, (load0, os.getloadavg()[0]))
    print(text)
    out = a.out or (None if a.quick else ROOT / "benchmarks" / "SESSIONS.md")
    if out is not None:
        out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
