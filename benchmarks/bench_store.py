"""What keeping labs (core/lab/store.py) costs: a Step press with the store on and off, and
the writer's work per step. Prints a table; not a timed test.

1. Server time of one *Step* press on the stepper page under AppTest, with the store on
   and off, in alternating blocks of presses in one process (the load of a shared machine
   drifts; blocks compare like with like). Presses come 0.3 s apart, a quick student's
   pace, so the writer writes the last step while the next one is pressed. Also the time
   of ``keep_lab`` itself, the store's only work on the page's path.
2. The writer's time per step (wall and its thread's CPU) for a stepper lab of the seed's
   sizes and for the pretrained network (1000 epochs of history), and their size.

    python -m benchmarks.bench_store [--blocks 12] [--presses 10]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def quartiles(ts: list[float]) -> str:
    t = sorted(ts)
    return (f"{statistics.median(t) * 1000:.1f} ms (quartiles {t[len(t) // 4] * 1000:.1f}–"
            f"{t[3 * len(t) // 4] * 1000:.1f}, n={len(t)})")


def stepper_presses(blocks: int, per: int, folder: str) -> dict:
    import tests.conftest  # noqa: F401  (AppTest as a running server sees it)
    from streamlit.testing.v1 import AppTest

    import ui.session as us

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/stepper.py")
    at.run()
    label = next(str(b.label) for b in at.button if str(b.label).startswith("Step: train"))
    presses = {"off": [], "on": []}
    keep = {"off": [], "on": []}
    real_keep = us.keep_lab
    mode = "off"

    def timed_keep():       # the script imports keep_lab from ui.session on every run: this one
        t0 = time.perf_counter()
        real_keep()
        keep[mode].append(time.perf_counter() - t0)

    us.keep_lab = timed_keep
    try:
        for block in range(blocks):
            mode = "on" if block % 2 else "off"
            os.environ["BACKPROP_STATE_DIR"] = folder if mode == "on" else "off"
            us.lab_writer.clear()
            for i in range(per + 1):          # the first press of a block is a warm-up
                button = next(b for b in at.button if str(b.label) == label)
                t0 = time.perf_counter()
                button.click().run()
                if i:
                    presses[mode].append(time.perf_counter() - t0)
                assert not at.exception, at.exception
                time.sleep(0.3)
    finally:
        us.keep_lab = real_keep
    return {"presses": presses, "keep": keep, "steps": us.session(at.session_state).ws.trainer.global_step}


def writer_cost() -> list[tuple[str, float, float, float]]:
    from core.data.mnist import load_mnist
    from core.lab import checkpoint
    from core.lab.settings import Settings
    from core.lab.store import LabCopy, LabStore, key_of, new_token
    from core.lab.workspace import Workspace

    m = load_mnist()
    ck = checkpoint.load(ROOT / "data" / "pretrained.npz")
    settings = Settings.of_network(ck.net.config, ck.optimizer.hyper, ck.trainer_state, ck.split, Settings(),
                                   len(m["train"]))
    pretrained = Workspace(settings, m["train"], m["test"])
    pretrained.open_checkpoint(ck, settings, m["train"], m["test"], origin="the pretrained network")
    out = []
    for name, ws, steps, skip in (("seed sizes, stepper (50 steps kept)", Workspace(Settings(), m["train"], m["test"]), 60, 50),
                                  ("pretrained, 1000 epochs of history", pretrained, 10, 3)):
        store, key = LabStore(tempfile.mkdtemp()), key_of(new_token())
        wall, cpu = [], []
        for _ in range(steps):
            ws.step()
            copy = LabCopy.of(ws)
            t0, c0 = time.perf_counter(), time.thread_time()
            store.save(key, copy)
            cpu.append(time.thread_time() - c0)
            wall.append(time.perf_counter() - t0)
        out.append((name, statistics.median(wall[skip:]), statistics.median(cpu[skip:]), store.total_bytes()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--presses", type=int, default=10)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as folder:
        r = stepper_presses(args.blocks, args.presses, folder)
    print(f"Step press, store off: {quartiles(r['presses']['off'])}")
    print(f"Step press, store on:  {quartiles(r['presses']['on'])}")
    print(f"keep_lab on the page's path, store on: {quartiles(r['keep']['on'])}")
    print(f"({r['steps']} steps taken)")
    for name, wall, cpu, size in writer_cost():
        print(f"writer, {name}: {wall * 1000:.1f} ms a step ({cpu * 1000:.1f} ms CPU), lab {size / 1e6:.1f} MB")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
