"""What one session costs the server: the stepper's memory, and the CPU of a shared link's replay.

    python -m benchmarks.bench_memory            # writes benchmarks/MEMORY.md (about a minute)
    python -m benchmarks.bench_memory --quick    # fewer steps, a small pool: checks that it all runs

Three measurements (printed, and written as a Markdown report):

1. The default stepper session (784 → 64 → 64 → 10, SGD, batch 64) after 50 steps, stepped as
   the stepper page does it (``Stepper.take_step``, then the step shown drawn): ``ws.memory()``
   and tracemalloc (every allocation Python and NumPy make), retained and peak.
2. The same with the largest settings the app offers: 3×512, Adam, batch 4096.
3. A link to step 2,000 of the default network (the most a link replays): CPU-seconds of this
   process (the server's, which draws pages) and of the training process it starts, and the
   same replay made the old way, all 2,000 steps in this process.

Not timed tests: the figures depend on the machine; the byte bounds are asserted by
tests/test_memory_bounds.py.
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

from core.data.mnist import load_mnist
from core.engine.blas import set_blas_threads
from core.lab.settings import Settings
from core.lab.stepper import MAX_REPLAY, Batch, Stepper
from core.lab.workspace import STEP_BYTES, STEP_HISTORY, TRACE_BYTES, Workspace

OUT = Path(__file__).resolve().parent / "MEMORY.md"
MB = 1e6
LARGEST = dict(hidden=(512, 512, 512), optimizer="adam", lr=0.001, batch_size=4096)


def step_session(mnist, settings: Settings, steps: int) -> dict:
    """``steps`` steps as the stepper page takes and draws them, under tracemalloc."""
    warm = Workspace(replace(settings, hidden=(8,), pool=1000, val=100, batch_size=8), mnist["train"])
    Stepper().follow(warm).take_step(warm, Batch("next", warm.trainer.next_indices()))   # NumPy's lazy imports:
    del warm                                                         # the process's, once, not the session's
    gc.collect()
    tracemalloc.start()
    try:
        ws = Workspace(settings, mnist["train"], mnist["test"])
        s = Stepper().follow(ws)
        t0 = time.process_time()
        for _ in range(steps):
            s.take_step(ws, s.batch(ws, "next"))
            s.shown_step(ws)                   # the page draws the step it took
        cpu = time.process_time() - t0
        s.show(ws.steps[0].number)
        s.shown_step(ws)                       # and an earlier one, recomputed
        gc.collect()
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    mem = ws.memory()
    return {"settings": settings, "steps": steps, "kept": len(ws.steps), "capacity": ws.step_capacity(),
            "mem": mem, "retained": retained, "peak": peak, "cpu_per_step": cpu / steps,
            "trace_bytes": ws.trace_of(ws.steps[-1]).nbytes, "held": ws.current is not None,
            "params": ws.net.n_params}


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def replay_link(mnist, settings: Settings, n: int) -> dict:
    """A fresh session opening ``/stepper?step=n``: the page's process and the training process."""
    ws = Workspace(settings, mnist["train"], mnist["test"])
    s = Stepper().follow(ws)
    gc.collect()
    tracemalloc.start()
    cpu0, child0, wall0 = time.process_time(), children_cpu(), time.perf_counter()
    try:
        steps = s.read_link(ws, {"step": str(n)})
        assert steps == n, s.link_note
        in_child = s.start_replay(ws, steps)
        while not s.finish_replay(ws):
            ws.runner.join(1.0)                # what the page's progress fragment waits for
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out = {"n": n, "in_child": in_child, "page_cpu": time.process_time() - cpu0,
           "child_cpu": children_cpu() - child0, "wall": time.perf_counter() - wall0, "peak": peak,
           "note": s.link_note, "global_step": ws.trainer.global_step, "params": ws.net.params}
    # the old way: every step in the page's process
    old = Workspace(settings, mnist["train"], mnist["test"])
    t = Stepper().follow(old)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    t.replay(old, n)
    out.update(old_cpu=time.process_time() - cpu0, old_wall=time.perf_counter() - wall0,
               same=all((old.net.params[k] == v).all() for k, v in out.pop("params").items()))
    return out


def refused_link(mnist, settings: Settings, n: int) -> dict:
    """Issue 13's link (step 2,000 of 3×512 at batch 4096, once 335 CPU-seconds in the server)."""
    ws = Workspace(settings, mnist["train"], mnist["test"])
    s = Stepper().follow(ws)
    cpu0 = time.process_time()
    steps = s.read_link(ws, {"step": str(n)})
    return {"n": n, "steps": steps, "cpu": time.process_time() - cpu0, "note": s.link_note}


def memory_rows(r: dict) -> list[str]:
    m = r["mem"]
    return [
        f"| steps taken / kept (capacity) | {r['steps']} / {r['kept']} ({r['capacity']}) |",
        f"| parameters | {r['params']:,} |",
        f"| one step's whole trace | {r['trace_bytes'] / MB:.1f} MB ({'kept' if r['held'] else 'not kept: recomputed when drawn'}) |",
        f"| `ws.memory()` params and snapshots | {m['params_and_snapshots'] / MB:.1f} MB |",
        f"| `ws.memory()` step history | {m['step_history'] / MB:.1f} MB |",
        f"| `ws.memory()` current / recomputed trace | {m['current_trace'] / MB:.1f} / {m['recomputed_trace'] / MB:.1f} MB |",
        f"| `ws.memory()` history | {m['history'] / MB:.2f} MB |",
        f"| **`ws.memory()` total** | **{m['total'] / MB:.1f} MB** |",
        f"| **tracemalloc retained** (workspace, stepper, all) | **{r['retained'] / MB:.1f} MB** |",
        f"| tracemalloc peak (during a step and its drawing) | {r['peak'] / MB:.1f} MB |",
        f"| CPU per step, taken and drawn | {r['cpu_per_step'] * 1e3:.1f} ms |",
    ]


def report(default: dict, largest: dict, link: dict, refused: dict, quick: bool) -> str:
    lines = [
        "# Memory of a session, CPU of a link (`python -m benchmarks.bench_memory`)",
        "",
        f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, one BLAS thread." + (" **--quick: not the real figures.**" if quick else ""),
        "",
        f"The stepper keeps at most {STEP_HISTORY} past steps and {STEP_BYTES / 2**20:.0f} MiB of them (each: the "
        f"parameters, optimizer state and batch that recompute it exactly), and whole traces only while they fit "
        f"{TRACE_BYTES / 2**20:.0f} MiB. MB below are 10^6 bytes. Bounds asserted by tests/test_memory_bounds.py: "
        "the default session ≤ 15 MB, the largest settings ≤ 100 MB.",
        "",
        "## 1. The default stepper session (784 → 64 → 64 → 10, SGD, batch 64)",
        "",
        "| | |", "|---|---:|", *memory_rows(default),
        "",
        "## 2. The largest settings: 3×512, Adam, batch 4096",
        "",
        "| | |", "|---|---:|", *memory_rows(largest),
        "",
        "Before this change (commit 14912b9, the same 50 steps): `ws.memory()` 694 MB (50 steps of parameters "
        "and Adam moments, 542 MB, and the latest trace, 129 MB), 687 MB traced; issue 13 measured the server "
        "growing by 788 MiB.",
        "",
        f"## 3. A link to step {link['n']:,} of the default network (the most a link replays: {MAX_REPLAY:,} steps)",
        "",
        "| | CPU-seconds | wall seconds |", "|---|---:|---:|",
        f"| the server's process (page, reading the run's reports, the last step) | **{link['page_cpu']:.2f}** | "
        f"{link['wall']:.1f} |",
        f"| the training process (nice 10) | {link['child_cpu']:.2f} | |",
        f"| before: all {link['n']:,} steps in the server's process | **{link['old_cpu']:.2f}** | {link['old_wall']:.1f} |",
        "",
        f"Replayed in the training process: {link['in_child']}; note: \"{link['note']}\"; the same parameters as "
        f"the replay made in the server's process: {link['same']}. tracemalloc peak in the server's process "
        f"during the replay: {link['peak'] / MB:.1f} MB (the start frame: the split's images, copied once to "
        "send them).",
        "",
        f"Issue 13's link, step {refused['n']:,} of 3×512 with Adam at batch 4096 (once 335 CPU-seconds in the "
        f"server): {refused['steps']} steps replayed, {refused['cpu']:.3f} CPU-seconds; the page says "
        f"\"{refused['note']}\"",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and a small pool, to check the script runs")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    set_blas_threads(1)
    mnist = load_mnist()
    small = dict(pool=6000, val=500) if args.quick else {}
    steps = 6 if args.quick else 50
    default = step_session(mnist, replace(Settings(), **small), steps)
    largest = step_session(mnist, replace(Settings(**LARGEST), **small), steps)
    link = replay_link(mnist, replace(Settings(), **small), 300 if args.quick else MAX_REPLAY)
    refused = refused_link(mnist, replace(Settings(**LARGEST), **small), 2000)
    text = report(default, largest, link, refused, args.quick)
    print(text)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
