"""What one session may keep, in bytes, whatever its settings: measured by ``ws.memory()``
and by tracemalloc (every allocation Python and NumPy make, so nothing the workspace
forgets to count escapes). Issue 13: 3×512 with Adam at batch 4096 grew the server by
788 MiB in 50 steps; the stepper now keeps a bounded history and no trace larger than
TRACE_BYTES, and a past step still recomputes bit for bit."""
from __future__ import annotations

import gc
import hashlib
import tracemalloc
from dataclasses import replace

import numpy as np

from core.lab.settings import Settings
from core.lab.stepper import Batch, Stepper
from core.lab.workspace import STEP_BYTES, STEP_HISTORY, TRACE_BYTES, Workspace

LARGEST = dict(hidden=(512, 512, 512), optimizer="adam", lr=0.001, batch_size=4096)


def digests(trace) -> dict[str, str]:
    """Every array of a trace, by its bytes (a whole trace of the largest settings is 123 MB)."""
    return {k: hashlib.sha1(np.ascontiguousarray(v).tobytes()).hexdigest() + str(np.shape(v))
            for k, v in trace.items()}


def step_like_the_page(mnist, settings: Settings, steps: int = 50, *, digest_step: int | None = None):
    """A session's stepping as the stepper page does it (take a step, draw the step shown),
    under tracemalloc: what the session retains afterwards, the workspace, its stepper, and
    the digests of step ``digest_step``'s trace as it was computed."""
    warm = Workspace(replace(settings, hidden=(8,), pool=1000, val=100, batch_size=8), mnist["train"])
    Stepper().follow(warm).take_step(warm, Batch("next", warm.trainer.next_indices()))   # NumPy's lazy imports:
    del warm                                                         # the process's, once, not the session's
    gc.collect()
    tracemalloc.start()
    try:
        ws = Workspace(settings, mnist["train"], mnist["test"])
        s = Stepper().follow(ws)
        seen = None
        for _ in range(steps):
            if ws.trainer.global_step + 1 == digest_step:
                seen = digests(ws.step())          # the trace the step itself computed
            else:
                assert s.take_step(ws, s.batch(ws, "next"))
        s.shown_step(ws)                       # the page draws the latest step …
        s.show(ws.steps[0].number)
        s.shown_step(ws)                       # … and an earlier one, recomputed
        gc.collect()
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return retained, ws, s, seen


def test_the_default_session_with_50_steps_keeps_at_most_15_mb(mnist):
    retained, ws, s, _ = step_like_the_page(mnist, Settings())
    mem = ws.memory()
    assert len(ws.steps) == STEP_HISTORY == ws.step_capacity()           # all 50 kept at these sizes
    assert ws.current is not None                                          # and the latest trace whole
    assert mem["total"] <= 15e6, mem
    assert retained <= 15e6, retained


def test_the_largest_settings_with_50_steps_keep_at_most_100_mb_and_recompute_exactly(mnist):
    ws0 = Workspace(Settings(**LARGEST), mnist["train"], mnist["test"])
    cap = ws0.step_capacity()
    assert 1 < cap < STEP_HISTORY                      # 11 MB per step: the bytes bound the history
    del ws0
    retained, ws, s, seen = step_like_the_page(mnist, Settings(**LARGEST), digest_step=50 - cap + 1)
    mem = ws.memory()
    assert [r.number for r in ws.steps] == list(range(51 - cap, 51))
    assert mem["step_history"] <= STEP_BYTES and sum(r.nbytes for r in ws.steps) <= STEP_BYTES
    assert ws.current is None and mem["current_trace"] == mem["recomputed_trace"] == 0   # 123 MB: not kept
    assert mem["total"] <= 100e6, mem
    assert retained <= 100e6, retained
    print(f"largest settings, 50 steps: ws.memory() {mem['total'] / 1e6:.1f} MB, retained {retained / 1e6:.1f} MB")
    # the oldest step kept, recomputed now by the same engine, is the step as it was taken
    again = ws.trace_of(ws.steps[0])
    assert again.nbytes > TRACE_BYTES
    assert digests(again) == seen


def test_whole_traces_kept_never_exceed_their_budget(mnist):
    """3×512 at batch 256: one trace fits TRACE_BYTES, two do not; the latest one is kept and
    an earlier one, when shown, is recomputed on every call rather than kept beside it."""
    ws = Workspace(Settings(**dict(LARGEST, optimizer="sgd", lr=0.1, batch_size=256)), mnist["train"], mnist["test"])
    for _ in range(3):
        ws.step()
    latest = ws.current
    assert latest is not None and TRACE_BYTES / 2 < latest.nbytes <= TRACE_BYTES
    first = ws.trace_of(ws.steps[0])
    assert ws.trace_of(ws.steps[0]) is not first                     # not kept …
    assert ws.trace_of(ws.steps[-1]) is latest                       # … the latest is
    mem = ws.memory()
    assert mem["current_trace"] + mem["recomputed_trace"] <= TRACE_BYTES
    np.testing.assert_array_equal(ws.trace_of(ws.steps[0])["dW1"], first["dW1"])


def test_a_past_step_recomputes_bit_for_bit_with_every_optimizer(mnist):
    for optimizer in ("sgd", "momentum", "adam"):
        ws = Workspace(replace(Settings(pool=3000, val=500, hidden=(32, 16)), optimizer=optimizer,
                               lr=0.01 if optimizer == "adam" else 0.1), mnist["train"], mnist["test"])
        saved = [digests(ws.step()) for _ in range(8)]
        for rec in list(ws.steps)[:-1]:
            assert digests(ws.trace_of(rec)) == saved[rec.number - 1], (optimizer, rec.number)


def test_the_memory_benchmark_runs_end_to_end(tmp_path):
    """``python -m benchmarks.bench_memory --quick`` prints and writes its report (not a timed test)."""
    import subprocess
    import sys
    from pathlib import Path
    out = tmp_path / "MEMORY.md"
    run = subprocess.run([sys.executable, "-m", "benchmarks.bench_memory", "--quick", "--out", str(out)],
                         cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert text.strip() in run.stdout
    for part in ("## 1. The default stepper session", "## 2. The largest settings", "## 3. A link to step 300",
                 "**tracemalloc retained**", "the training process (nice 10)"):
        assert part in text, part
    assert "Replayed in the training process: True" in text and "the server's process: True" in text
