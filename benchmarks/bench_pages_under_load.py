"""Server time of a stepper rerun while two other sessions train.

The stepper page runs under AppTest in this process, as a server would run it,
while two other runs of the seed's network train:

* ``alone``: nothing else trains;
* ``threads``: two runs as threads of this process (how the app trained before
  runs had processes of their own: every page shared the interpreter with them);
* ``processes, nice 0``: two runs as the app makes them, but at normal priority;
* ``processes, nice 10``: what the app does (``core.lab.run.controller.NICE``).

No browser: only the server's share is timed. The other runs' steps per second
meanwhile say what the pages cost them.

    python -m benchmarks.bench_pages_under_load
"""
from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.conftest  # noqa: E402,F401  (AppTest as a running server sees it)
from streamlit.testing.v1 import AppTest  # noqa: E402

from core.data.mnist import load_mnist, make_split  # noqa: E402
from core.engine.network import MLP  # noqa: E402
from core.engine.optim import SGD  # noqa: E402
from core.lab.run.controller import NICE, RunController  # noqa: E402
from core.engine.trainer import Trainer  # noqa: E402

MODES = ("alone", "threads", "processes, nice 0", f"processes, nice {NICE}")


class ThreadRun:
    """A run as a thread of this process: the design this benchmark compares against."""

    def __init__(self, trainer: Trainer):
        self.trainer, self._stop = trainer, threading.Event()
        self._thread = threading.Thread(target=trainer.run, args=(1000,), kwargs={"should_stop": self._stop.is_set},
                                        daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(10)


def measure(mode: str, clicks: int = 10) -> dict:
    split = make_split(load_mnist()["train"], pool=12_000, val=1_000, seed=0)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/stepper.py")
    at.run()
    runs = []
    for seed in ((1, 2) if mode != "alone" else ()):
        tr = Trainer(MLP(seed=seed), SGD(0.1), split, seed=seed)
        if mode == "threads":
            runs.append(ThreadRun(tr))
        else:
            c = RunController(tr, orphan_after=1e9, nice=0 if mode.endswith("nice 0") else NICE)
            c.start(1000)
            runs.append(c)
    time.sleep(2)
    times = []
    t_all = time.perf_counter()
    steps0 = [c.trainer.global_step for c in runs]
    for _ in range(clicks):
        button = [b for b in at.button if b.key == "stepper_step"][0]
        t = time.perf_counter()
        button.click()
        at.run()
        times.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - t_all
    rates = [(c.trainer.global_step - s) / elapsed for c, s in zip(runs, steps0)]
    for c in runs:
        c.stop()
        if hasattr(c, "join"):
            c.join(10)
    return {"median": statistics.median(times), "max": max(times), "rates": rates}


def main() -> int:
    rows = [(mode, measure(mode)) for mode in MODES]
    lines = ["| two other sessions training | stepper rerun, server time (median) | worst | their steps/s meanwhile |",
             "|---|---:|---:|---|"]
    for mode, r in rows:
        lines.append(f"| {mode}{' (the app)' if mode.endswith(f'nice {NICE}') else ''} | {r['median']:.3f} s | "
                     f"{r['max']:.3f} s | {', '.join(f'{x:,.0f}' for x in r['rates']) or '—'} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
