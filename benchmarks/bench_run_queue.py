"""Six students press *Start training* at the same moment: how many runs train at once, and
what the others are shown while they wait.

Six sessions (six :class:`~core.lab.workspace.Workspace`\\ s, as six browser sessions of one
server hold them; their runs are real training processes) start a run within a few
milliseconds of each other. Every 50 ms the script samples each session's run as the
training page and the sidebar read it (``runner.progress()`` and ``run_summary``, the very
words on screen), and the server's live training processes. It reports the most runs
that trained at once (by status and by processes alive), each session's queue
positions in the order it was shown them, when each started and finished, and checks
that runs started in the order they asked (first come, first served).

    python -m benchmarks.bench_run_queue [--sessions 6] [--epochs 40] [--max-runs K]

``--max-runs`` sets ``BACKPROP_MAX_RUNS`` (the default: the number of cores). Writes
``benchmarks/QUEUE.md``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.engine.blas import set_blas_threads  # noqa: E402

set_blas_threads(1)

import psutil  # noqa: E402

from core.data.mnist import load_mnist  # noqa: E402
from core.lab.run.controller import ACTIVE, QUEUED, RUNNING, run_summary  # noqa: E402
from core.lab.settings import Settings  # noqa: E402
from core.lab.workspace import Workspace  # noqa: E402


def training_processes() -> int:
    n = 0
    for c in psutil.Process().children():
        try:
            if "core.lab.run.worker" in " ".join(c.cmdline()) and c.status() != psutil.STATUS_ZOMBIE:
                n += 1
        except psutil.Error:
            pass
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=40, help="each run's length (3,000 images: 40 steps an epoch)")
    ap.add_argument("--max-runs", type=int, default=None, help="BACKPROP_MAX_RUNS (default: the number of cores)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "QUEUE.md"))
    args = ap.parse_args()
    if args.max_runs is not None:
        os.environ["BACKPROP_MAX_RUNS"] = str(args.max_runs)
    os.environ["BACKPROP_RUN_DIR"] = tempfile.mkdtemp(prefix="bench-run-queue-")   # this benchmark's own slots

    m = load_mnist()
    base = Settings(pool=3000, val=500, epochs=args.epochs)
    sessions = [Workspace(replace(base, seed=i), m["train"], m["test"]) for i in range(args.sessions)]
    k = sessions[0].runner.slots.limit

    shown: list[list[str]] = [[] for _ in sessions]        # the distinct texts each session was shown, in order
    started_at: list[float | None] = [None] * len(sessions)
    ended_at: list[float | None] = [None] * len(sessions)
    most_running = most_processes = 0

    t0 = time.monotonic()
    for ws in sessions:                                    # "at once": one after the other, a few ms apart
        assert ws.runner.start(args.epochs)
    asked = time.monotonic() - t0
    while True:
        now = time.monotonic() - t0
        running = 0
        for i, ws in enumerate(sessions):
            ws.runner.heartbeat()                          # a tab is watching each of them
            p = ws.runner.progress()
            text = f"queued: {run_summary(p)}" if p["status"] == QUEUED else p["status"]
            if not shown[i] or shown[i][-1] != text:
                shown[i].append(text)
            if p["status"] == RUNNING:
                running += 1
                if started_at[i] is None:
                    started_at[i] = now
            if p["status"] not in ACTIVE and ended_at[i] is None:
                ended_at[i] = now
        most_running = max(most_running, running)
        most_processes = max(most_processes, training_processes())
        if all(e is not None for e in ended_at):
            break
        time.sleep(0.05)
    total = time.monotonic() - t0

    order = sorted(range(len(sessions)), key=lambda i: started_at[i] if started_at[i] is not None else 1e9)
    lines = [
        "# Six students start a run at once (`python -m benchmarks.bench_run_queue`)",
        "",
        f"{len(sessions)} sessions, each a {args.epochs}-epoch run of 40 steps an epoch, started within "
        f"{asked * 1000:.0f} ms; K = {k} (`BACKPROP_MAX_RUNS`, default the {os.cpu_count()} cores); "
        f"sampled every 50 ms; {total:.1f} s in all.",
        "",
        f"- most runs training at once: **{most_running}** by status, **{most_processes}** training processes alive",
        f"- start order: {', '.join(f'session {i}' for i in order)} "
        f"({'first come, first served' if order == sorted(order) else 'NOT in the order they asked'})",
        "",
        "| session | shown, in order | started (s) | ended (s) | final status |",
        "|---:|---|---:|---:|---|",
    ]
    for i, ws in enumerate(sessions):
        lines.append(f"| {i} | {' → '.join(shown[i])} | {started_at[i] or 0:.2f} | {ended_at[i]:.2f} | "
                     f"{ws.runner.status} |")
    report = "\n".join(lines) + "\n"
    print(report)
    Path(args.out).write_text(report)


if __name__ == "__main__":
    main()
