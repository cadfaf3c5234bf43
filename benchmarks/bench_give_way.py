"""Server time of a stepper rerun while two other sessions train, with and without
the runs giving way to pages (core.runner.Foreground).

All sessions of a Streamlit server are threads of one Python process, so this
runs the stepper page under AppTest in the same process as two real background
runs (RunController threads): no browser, so only the server's share is timed.

    python -m benchmarks.bench_give_way
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.conftest  # noqa: E402,F401  (AppTest as a running server sees it)
from streamlit.testing.v1 import AppTest  # noqa: E402

from core.data import load_mnist, make_split  # noqa: E402
from core.network import MLP  # noqa: E402
from core.optim import SGD  # noqa: E402
from core.runner import RunController  # noqa: E402
from core.trainer import Trainer  # noqa: E402


def measure(mode: str, clicks: int = 8) -> dict:
    split = make_split(load_mnist()["train"], pool=12_000, val=1_000, seed=0)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/stepper.py")
    at.run()
    fg = at.session_state["ws"].foreground if mode == "give way" else None
    runs = []
    if mode != "alone":
        for seed in (1, 2):
            c = RunController(Trainer(MLP(seed=seed), SGD(0.1), split, seed=seed), orphan_after=1e9, foreground=fg)
            c.start(1000)
            runs.append(c)
    time.sleep(1)
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
        c.join(10)
    return {"median": statistics.median(times), "max": max(times), "rates": rates}


def main() -> int:
    rows = [(mode, measure(mode)) for mode in ("alone", "no give way", "give way")]
    lines = ["| two other sessions training | stepper rerun, server time (median) | worst | their steps/s meanwhile |",
             "|---|---:|---:|---|"]
    names = {"alone": "no", "no give way": "yes, runs do not give way", "give way": "yes, runs give way (the app)"}
    for mode, r in rows:
        lines.append(f"| {names[mode]} | {r['median']:.3f} s | {r['max']:.3f} s | "
                     f"{', '.join(f'{x:,.0f}' for x in r['rates']) or '—'} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
