"""Training speed, side by side: ``python -m benchmarks.bench_train``.

Times, in one run, on the same images, batches and hyper-parameters (the seed
protocol: 41,000 training images, batch 64, SGD with learning rate 0.1):

  (a) our trainer exactly as the app's full run uses it (``Trainer.run`` →
      ``train_step`` with its telemetry, validation and history: what the app's
      training process runs; starting that process is timed by bench_browser_run);
  (b) our engine with recording reduced to the minimum: the same ``MLP.step``
      in a plain loop over the same batches;
  (c) the seed notebook's algorithm (``benchmarks/seed_reference.py``: float64,
      features-by-samples, a column-shuffled copy of the data every epoch);
  (d) PyTorch CPU eager (nn.Sequential + CrossEntropyLoss + optim.SGD, float32),
      when torch is installed.

The four are interleaved (a b c d, then b c d a, …) so that the noise of a shared
machine hits all alike; each keeps training its own copy of the same initial
network, so at the end they must agree on the validation loss.

Then: the floor of one step (its three largest matrix products alone), the
server time of one stepper-page rerun, the memory of a 1000-epoch history, and
the targets, PASS or MISS. Writes a Markdown report to ``benchmarks/RESULTS.md``
and prints it. ``--quick`` runs the whole thing on a tiny pool in seconds (for
tests; it writes nothing unless ``--out`` is given).
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import seed_reference as seed  # noqa: E402
from core.engine.blas import blas_info, set_blas_threads  # noqa: E402
from core.data.mnist import load_mnist, make_split, to_float  # noqa: E402
from core.engine.network import MLP  # noqa: E402
from core.engine.optim import SGD  # noqa: E402
from core.engine.history import History  # noqa: E402
from core.engine.trainer import SNAPSHOT_EPOCHS, Trainer, evaluate  # noqa: E402

SEED = 0
SEED_TRAIN = 41_000  # the seed protocol's training images (1,000 more are held out)
LR = 0.1
BATCH = 64
FULL_EPOCHS = 1000
TARGETS = {"vs_seed": 5.0, "vs_torch": 1.5, "recording": 0.05, "floor": 1.6, "cli_seconds": 150.0}


# --------------------------------------------------------------------------- the contenders
class Ours:
    """(a) with ``full=True``: the app's full run. (b) with ``full=False``: MLP.step in a loop."""

    def __init__(self, split, full: bool, threads: int = 1):
        self.split, self.full, self.threads = split, full, threads
        self.net = MLP(seed=SEED)
        self.opt = SGD(LR)
        self.trainer = Trainer(self.net, self.opt, split, batch_size=BATCH, seed=SEED)
        self.epochs_done = 0

    def epochs(self, n: int) -> None:
        set_blas_threads(self.threads)
        if self.full:
            result = self.trainer.run(self.trainer.epoch + n)
            if result.reason != "done":
                raise RuntimeError(f"the full run ended {result.reason}: {result.message}")
        else:
            net, opt, split, order_of = self.net, self.opt, self.split, self.trainer.epoch_order
            for e in range(self.epochs_done, self.epochs_done + n):
                order = order_of(e)  # the very batches the trainer visits in epoch e
                for s in range(0, split.n_train, BATCH):
                    X, y = split.images(order[s:s + BATCH], net.dtype)
                    net.step(X, y, opt)
        self.epochs_done += n

    def params(self) -> dict:
        return self.trainer.net.params


class SeedReference:
    """(c) The seed notebook's algorithm, same initial weights and batch order as ours."""

    def __init__(self, split, init: dict, order_of, threads: int = 1):
        self.split, self.order_of, self.threads = split, order_of, threads
        self.X, self.Y = seed.seed_layout(split.source.X[split.train_idx], split.source.y[split.train_idx])
        self.p = seed.from_rows_layout(init)
        # column j of X is source image train_idx[j]: where each source index sits
        self.position = np.full(len(split.source), -1, np.int64)
        self.position[split.train_idx] = np.arange(split.n_train)
        self.epochs_done = 0

    def epochs(self, n: int) -> None:
        set_blas_threads(self.threads)
        for e in range(self.epochs_done, self.epochs_done + n):
            perm = self.position[self.order_of(e)]
            self.p = seed.train_epoch(self.p, self.X, self.Y, LR, BATCH, perm=perm)
        self.epochs_done += n

    def params(self) -> dict:
        return seed.to_rows_layout(*self.p)

    def time_shuffle_copy(self, reps: int) -> dict:
        """The notebook's per-epoch ``X[:, perm]`` copy alone (seconds)."""
        times = []
        for e in range(reps):
            perm = self.position[self.order_of(e)]
            t0 = time.perf_counter()
            X_shuf = self.X[:, perm]
            times.append(time.perf_counter() - t0)
            del X_shuf
        return spread(times)


class Torch:
    """(d) PyTorch CPU eager, float32, the same initial weights and batches."""

    def __init__(self, split, init: dict, order_of, threads: int = 1):
        import torch
        self.torch, self.threads, self.order_of = torch, threads, order_of
        nn = torch.nn
        self.model = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                   nn.Linear(64, 10))
        with torch.no_grad():
            for l, layer in zip((1, 2, 3), self.model[::2]):
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(init[f"W{l}"].T)))
                layer.bias.copy_(torch.from_numpy(init[f"b{l}"]))
        self.loss_fn = nn.CrossEntropyLoss()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        # the usual PyTorch set-up: the training set as one float32 tensor in memory
        # (the same values our engine computes per batch)
        self.X = torch.from_numpy(to_float(split.source.X[split.train_idx]))
        self.y = torch.from_numpy(split.source.y[split.train_idx].astype(np.int64))
        self.position = np.full(len(split.source), -1, np.int64)
        self.position[split.train_idx] = np.arange(split.n_train)
        self.n = split.n_train
        self.epochs_done = 0

    def epochs(self, n: int) -> None:
        torch = self.torch
        torch.set_num_threads(self.threads)
        model, loss_fn, opt = self.model, self.loss_fn, self.opt
        for e in range(self.epochs_done, self.epochs_done + n):
            perm = torch.from_numpy(self.position[self.order_of(e)])
            for s in range(0, self.n, BATCH):
                idx = perm[s:s + BATCH]
                xb, yb = self.X[idx], self.y[idx]
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
        self.epochs_done += n

    def params(self) -> dict:
        out = {}
        for l, layer in zip((1, 2, 3), self.model[::2]):
            out[f"W{l}"] = layer.weight.detach().numpy().T.copy()
            out[f"b{l}"] = layer.bias.detach().numpy().copy()
        return out


# --------------------------------------------------------------------------- measurements
def spread(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def settle(threads: int, pause: float = 0.3) -> None:
    """Back to the main thread setting, and a pause so that worker threads that spin
    after a multi-threaded run (OpenBLAS, OpenMP) have gone to sleep."""
    set_blas_threads(threads)
    torch = sys.modules.get("torch")  # only if a contender imported it
    if torch is not None:
        torch.set_num_threads(threads)
    time.sleep(pause)


def time_epochs(contenders: dict, epochs: int, reps: int, log) -> tuple[dict, dict]:
    """Seconds per epoch of each contender, ``reps`` times, in a rotating order:
    wall-clock time, and the CPU time of the whole process (all its threads) over
    the same stretch, which other programs on the machine disturb much less."""
    names = list(contenders)
    wall, cpu = {k: [] for k in names}, {k: [] for k in names}
    for r in range(reps):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            c0, t0 = time.process_time(), time.perf_counter()
            contenders[k].epochs(epochs)
            t1, c1 = time.perf_counter(), time.process_time()
            wall[k].append((t1 - t0) / epochs)
            cpu[k].append((c1 - c0) / epochs)
        log(f"  rep {r + 1}/{reps}: " + "  ".join(f"{k} {wall[k][-1]:.3f}" for k in names) + " s/epoch")
    return wall, cpu


def time_floor(split, blocks: int, block: int) -> dict:
    """The three largest products of one step alone, and MLP.step alone, interleaved.

    X @ W1 (64×784 · 784×64) and Xᵀ @ dZ1 (784×64 · 64×64) are the two big ones;
    the next largest are the three 64×64 · 64×64 products, of which A1 @ W2 is timed.
    MLP.step runs on ``block`` different pre-gathered batches, as in training.
    """
    net = MLP(seed=SEED)
    opt = SGD(LR)
    order = Trainer(net, opt, split, batch_size=BATCH, seed=SEED).epoch_order(0)
    n_batches = min(block, split.n_train // BATCH)
    batches = [split.images(order[i * BATCH:(i + 1) * BATCH], net.dtype) for i in range(n_batches)]
    t = net.step(*batches[0], opt)  # real operands, from a real step
    X, W1, dZ1, A1, W2 = t["X"], t["W1"], t["dZ1"], t["A1"], t["W2"]
    prods = {"X @ W1": lambda: X @ W1, "X.T @ dZ1": lambda: X.T @ dZ1, "A1 @ W2": lambda: A1 @ W2}
    res = {k: [] for k in [*prods, "floor", "step"]}
    for _ in range(blocks):
        floor_block = 0.0
        for k, f in prods.items():
            t0 = time.perf_counter()
            for _ in range(block):
                f()
            dt_ = (time.perf_counter() - t0) / block
            res[k].append(dt_)
            floor_block += dt_
        res["floor"].append(floor_block)
        t0 = time.perf_counter()
        for i in range(block):
            net.step(*batches[i % n_batches], opt)
        res["step"].append((time.perf_counter() - t0) / block)
    return {k: spread(v) for k, v in res.items()}


def time_stepper_page(reps: int, log) -> dict:
    """Server time of one rerun of the stepper page after pressing its step button."""
    try:
        from streamlit.testing.v1 import AppTest
    except ImportError as err:
        return {"skipped": f"streamlit is not importable ({err})"}
    page = ROOT / "pages" / "stepper.py"
    if not page.exists():
        return {"skipped": "pages/stepper.py does not exist yet"}
    import tests.conftest  # noqa: F401  (AppTest as a running server sees it, or presses are lost)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    at.switch_page("pages/stepper.py")
    at.run()
    if at.exception:
        return {"skipped": f"the stepper page raised: {at.exception[0].message}"}
    button = None
    for pattern in (r"^\W*step\b", r"\bmini-batch\b", r"\bstep\b"):  # "Step", else the likeliest
        button = next((b for b in at.button if re.search(pattern, str(b.label), re.I)), None)
        if button is not None:
            break
    if button is None:
        return {"skipped": "the stepper page has no step button yet (another developer is building it)"}
    key, label = button.key, str(button.label)
    times, plain = [], []
    for _ in range(reps + 1):  # the first press is a warm-up
        b = next((b for b in at.button if (key and b.key == key) or str(b.label) == label), None)
        if b is None:
            return {"skipped": f"the step button {label!r} disappeared after a press"}
        t0 = time.perf_counter()
        b.click().run()
        times.append(time.perf_counter() - t0)
        if at.exception:
            return {"skipped": f"pressing {label!r} raised: {at.exception[0].message}"}
        t0 = time.perf_counter()
        at.run()
        plain.append(time.perf_counter() - t0)
    from ui.state import STATE_KEY
    ws = at.session_state[STATE_KEY].ws if STATE_KEY in at.session_state else None
    log(f"  stepper page: {len(times)} presses of {label!r}")
    return {"button": label, "press": spread(times[1:]), "rerun": spread(plain[1:]), "first_run": first,
            "presses": len(times), "steps_taken": None if ws is None else ws.trainer.global_step}


def history_memory(split, steps_per_epoch: int, epochs: int = FULL_EPOCHS) -> dict:
    """Bytes of a finished ``epochs``-epoch run's telemetry, built through the real
    append path: real epoch rows (from a short real run) appended ``epochs`` times
    as fresh arrays, every step's loss added one by one, and the snapshots the
    trainer keeps. Measured with tracemalloc (NumPy reports its buffers to it)."""
    small = make_split(split.source, pool=600, val=100, seed=SEED)
    tr = Trainer(MLP(seed=SEED), SGD(LR), small, batch_size=BATCH, seed=SEED)
    tr.run(1)
    row = {k: v[-1] for k, v in tr.history.rows.items()}
    params = tr.net.params
    n_steps = epochs * steps_per_epoch

    def fresh(v):
        return v.copy() if isinstance(v, np.ndarray) else type(v)(v)

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    h = History(3)
    h.reserve_steps(n_steps)  # as Trainer.run does before its first step
    loss = np.float32(0.5)
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            h.add_step_loss(float(loss))
        h.append({k: fresh(v) for k, v in row.items()})
    after_history = tracemalloc.get_traced_memory()[0]
    snaps = {e: {k: v.copy() for k, v in params.items()} for e in SNAPSHOT_EPOCHS if e <= epochs}
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    snap_bytes = sum(a.nbytes for p in snaps.values() for a in p.values())
    return {"epochs": epochs, "steps": h.n_steps, "history_traced": after_history - base,
            "history_nbytes": h.nbytes, "step_loss_bytes": h.step_loss.nbytes,
            "snapshots": len(snaps), "snapshot_bytes": snap_bytes,
            "total_traced": current - base, "peak_traced": peak - base}


def time_cli(train_size: int, full: bool, log) -> dict:
    """Wall time of ``python -m core.train``: a 1-epoch run (start-up, data, one
    epoch, the test evaluation) from which the 1000-epoch time is extrapolated,
    or the real 1000-epoch run with ``full``."""
    epochs = FULL_EPOCHS if full else 1
    cmd = [sys.executable, "-m", "core.train", "--epochs", str(epochs), "--quiet",
           "--train-size", str(train_size), "--threads", "1"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        return {"skipped": f"`{' '.join(cmd[1:])}` failed: {out.stderr.strip()[-300:]}"}
    log(f"  CLI: {' '.join(cmd[2:])} took {wall:.2f} s")
    return {"epochs": epochs, "wall": wall, "cmd": "python " + " ".join(cmd[1:])}


# --------------------------------------------------------------------------- the machine
def machine() -> dict:
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            model = m.group(1).strip() if m else model
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": model, "cores": os.cpu_count(), "usable_cores": usable, "load": load,
            "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform(), "coretype": os.environ.get("OPENBLAS_CORETYPE", "(not set)")}


# --------------------------------------------------------------------------- the report
def fmt_s(x: float) -> str:
    return f"{x:.3f}" if x >= 0.1 else f"{x:.4f}"


def fmt_us(x: float) -> str:
    return f"{x * 1e6:.1f}"


def fmt_bytes(n: float) -> str:
    return f"{n:,.0f} B ({n / 2**20:.2f} MiB)"


def report(r: dict) -> str:
    m, a = r["machine"], r["args"]
    L = []
    add = L.append
    add("# Training-speed benchmark")
    add("")
    add(f"Run {r['date']} with `{r['command']}`" + (" — **quick mode: a tiny pool, not the seed protocol**"
                                                   if a.quick else "") + ".")
    add("")
    add(f"- Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable); {m['platform']}")
    load0, load1 = r["load_start"], m["load"]
    if load0 and load1:
        add(f"- Load average (1 min) at start / end: {load0[0]:.2f} / {load1[0]:.2f} "
            f"(other processes share these cores: read the spreads)")
    add(f"- Python {m['python']}, NumPy {m['numpy']}, "
        + (f"PyTorch {r['torch_version']}" if r.get("torch_version") else f"PyTorch: {r['torch_note']}"))
    add(f"- BLAS: " + "; ".join(f"{b['internal_api']} {b['version']} ({b['architecture']} kernel)"
                                for b in r["blas"]) + f"; OPENBLAS_CORETYPE={m['coretype']}")
    add(f"- Threads: **{a.threads} BLAS thread{'s' if a.threads != 1 else ''}** for our engine and the seed reference "
        f"(core/engine/blas.py)" + (f", `torch.set_num_threads({a.threads})` for PyTorch" if "d" in r["times"] else "")
        + ("; rows marked *2 threads* use two." if r["two"] else "."))
    add(f"- Protocol: {r['n_train']:,} training images, batch {BATCH}, SGD lr {LR}, "
        f"{r['steps_per_epoch']} steps per epoch; {a.epochs} epoch(s) per timing, {a.reps} timings each, "
        f"interleaved in rotating order. Seconds per epoch: median and min–max over the timings.")
    add("")
    times, cpu = r["times"], r["cpu"]
    med = {k: statistics.median(v) for k, v in times.items()}
    add("| implementation | s/epoch, wall (median) | min–max | CPU s/epoch (median) | steps/s | "
        "× faster than (c) seed | × faster than (d) PyTorch | val loss after training |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|")
    for k, label in r["labels"].items():
        if k not in times:
            continue
        s = spread(times[k])
        vs_c = f"{med['c'] / s['median']:.2f}" if "c" in med else "–"
        vs_d = f"{med['d'] / s['median']:.2f}" if "d" in med else "–"
        vl = r["val_loss"].get(k)
        add(f"| {label} | {fmt_s(s['median'])} | {fmt_s(s['min'])}–{fmt_s(s['max'])} | "
            f"{fmt_s(statistics.median(cpu[k]))} | {r['steps_per_epoch'] / s['median']:,.0f} | {vs_c} | {vs_d} | "
            + (f"{vl:.5f}" if vl is not None else "–") + " |")
    add("")
    if r.get("torch_note"):
        add(f"(d) PyTorch: {r['torch_note']}")
        add("")
    sc = r["seed_copy"]
    add(f"Of (c)'s epoch, the shuffle copy `X[:, perm]` of the {r['n_train']:,}-column float64 matrix "
        f"alone takes {sc['median']:.3f} s (median of {sc['n']}; {sc['min']:.3f}–{sc['max']:.3f}); "
        f"the rest is its {r['steps_per_epoch']} float64 steps.")
    add("")
    add(f"All contenders start from the same weights and see the same batches in the same order; the "
        f"last column is each one's mean loss on the {r['n_val']:,} validation images after "
        f"{r['epochs_trained']} epochs. (a) and (b) trained **{'identical' if r['a_equals_b'] else 'DIFFERENT'}** "
        f"parameters (bit for bit): the minimal loop is the same step. (c) is float64 and (d) another "
        f"library, so they agree only to rounding.")
    add("")

    f = r["floor"]
    add("## One step against its floor")
    add("")
    add("The three largest matrix products of one step, each timed alone in a loop on the operands of a "
        "real step, interleaved with blocks of `MLP.step` on pre-gathered batches (µs; median, min–max "
        f"over {f['step']['n']} blocks):")
    add("")
    add("| quantity | µs (median) | min–max |")
    add("|---|---:|---:|")
    for k, label in (("X @ W1", "X @ W1 (64×784 · 784×64)"), ("X.T @ dZ1", "Xᵀ @ dZ1 (784×64 · 64×64)"),
                     ("A1 @ W2", "A1 @ W2 (64×64 · 64×64), the next largest"),
                     ("floor", "**floor**: the three together"), ("step", "**`MLP.step`** (forward, loss, backward, update, trace)")):
        s = f[k]
        add(f"| {label} | {fmt_us(s['median'])} | {fmt_us(s['min'])}–{fmt_us(s['max'])} |")
    b_step = statistics.median(times["b"]) / r["steps_per_epoch"]
    a_step = statistics.median(times["a"]) / r["steps_per_epoch"]
    add(f"| (b) per step, batch gathering included (epoch / {r['steps_per_epoch']}) | {fmt_us(b_step)} | |")
    add(f"| (a) per step, everything included | {fmt_us(a_step)} | |")
    add("")
    add(f"`MLP.step` = **{f['step']['median'] / f['floor']['median']:.2f}×** its floor (median / median; "
        f"min / min: {f['step']['min'] / f['floor']['min']:.2f}×). Per step of (b), gathering included: "
        f"{b_step / f['floor']['median']:.2f}×.")
    add("")

    add("## Stepper page")
    add("")
    sp = r["stepper"]
    if "skipped" in sp:
        add(f"Not measured: {sp['skipped']}.")
    else:
        add(f"Server time of one rerun of `pages/stepper.py` under `streamlit.testing.v1.AppTest` "
            f"(no browser, no network):")
        add("")
        add("| what | s (median) | min–max |")
        add("|---|---:|---:|")
        add(f"| press **{sp['button']}** (one training step + redraw) | {sp['press']['median']:.3f} | "
            f"{sp['press']['min']:.3f}–{sp['press']['max']:.3f} |")
        add(f"| plain rerun of the page | {sp['rerun']['median']:.3f} | {sp['rerun']['min']:.3f}–{sp['rerun']['max']:.3f} |")
        add(f"| first run of the app (imports, data, start page) | {sp['first_run']:.3f} | |")
        add("")
        ok = sp["steps_taken"] == sp["presses"]
        add(f"The first press is a warm-up and not counted. After {sp['presses']} presses the session's "
            f"network had taken {sp['steps_taken']} training steps"
            + ("." if ok else ": **the presses did not all train, so these are not step timings**."))
    add("")

    mem = r["memory"]
    add(f"## Memory of a {mem['epochs']}-epoch run's telemetry")
    add("")
    add(f"`core.engine.history.History` with {mem['epochs']:,} epoch rows and {mem['steps']:,} step losses, "
        f"built through its real append path, plus the {mem['snapshots']} parameter snapshots the trainer keeps "
        f"(measured with tracemalloc):")
    add("")
    add("| part | bytes |")
    add("|---|---:|")
    add(f"| History, as allocated (arrays + Python objects) | {fmt_bytes(mem['history_traced'])} |")
    add(f"| … of which array payload (`History.nbytes`) | {fmt_bytes(mem['history_nbytes'])} |")
    add(f"| … of which the step losses (float32) | {fmt_bytes(mem['step_loss_bytes'])} |")
    add(f"| snapshots ({mem['snapshots']} × the parameters) | {fmt_bytes(mem['snapshot_bytes'])} |")
    add(f"| **total** | {fmt_bytes(mem['total_traced'])} |")
    add(f"| peak while building | {fmt_bytes(mem['peak_traced'])} |")
    add("")

    add("## Targets")
    add("")
    add("| target | measured | |")
    add("|---|---:|---|")
    for name, measured, ok in r["targets"]:
        add(f"| {name} | {measured} | {'PASS' if ok else 'MISS' if ok is not None else 'not measured'} |")
    add("")
    for n in r["notes"]:
        add(f"- {n}")
    if r["notes"]:
        add("")
    return "\n".join(L)


def ratio_text(num: list[float], den: list[float], cpu_num=None, cpu_den=None) -> tuple[float, str]:
    """num/den of medians (what the target is judged on), with the ratio of the
    fastest timings and of the CPU times beside it, to show how much noise moved it."""
    x = statistics.median(num) / statistics.median(den)
    text = f"{x:.2f}× (fastest: {min(num) / min(den):.2f}×"
    if cpu_num is not None:
        text += f"; CPU time: {statistics.median(cpu_num) / statistics.median(cpu_den):.2f}×"
    return x, text + ")"


def targets(r: dict) -> list:
    """(what, measured, PASS True / MISS False / None when not measured)."""
    t, c, out = r["times"], r["cpu"], []
    if "c" in t:
        x, text = ratio_text(t["c"], t["a"], c["c"], c["a"])
        out.append((f"(a) ours ≥ {TARGETS['vs_seed']:g}× the seed reference (c) per epoch", text,
                    x >= TARGETS["vs_seed"]))
    if "d" in t:
        x, text = ratio_text(t["d"], t["a"], c["d"], c["a"])
        out.append((f"(a) ours ≥ {TARGETS['vs_torch']:g}× PyTorch CPU eager (d) per epoch", text,
                    x >= TARGETS["vs_torch"]))
    else:
        out.append((f"(a) ours ≥ {TARGETS['vs_torch']:g}× PyTorch CPU eager (d)", r["torch_note"], None))
    x = statistics.median(t["a"]) / statistics.median(t["b"]) - 1
    fast = min(t["a"]) / min(t["b"]) - 1
    cpu_x = statistics.median(c["a"]) / statistics.median(c["b"]) - 1
    out.append((f"full recording (a) costs ≤ {TARGETS['recording']:.0%} over minimal (b)",
                f"{x:+.1%} (fastest: {fast:+.1%}; CPU time: {cpu_x:+.1%})", x <= TARGETS["recording"]))
    f = r["floor"]
    x = f["step"]["median"] / f["floor"]["median"]
    out.append((f"`MLP.step` ≤ {TARGETS['floor']:g}× its three largest products",
                f"{x:.2f}× (fastest blocks: {f['step']['min'] / f['floor']['min']:.2f}×)", x <= TARGETS["floor"]))
    cli, what = r["cli"], f"{FULL_EPOCHS} epochs of the seed protocol on the CLI ≤ {TARGETS['cli_seconds']:g} s"
    if "skipped" in cli:
        out.append((what, cli["skipped"], None))
    elif cli["epochs"] == FULL_EPOCHS:
        out.append((what, f"{cli['wall']:.1f} s (`{cli['cmd']}`)", cli["wall"] <= TARGETS["cli_seconds"]))
    else:
        est = cli["wall"] + (FULL_EPOCHS - 1) * statistics.median(t["a"])
        out.append((what, f"≈ {est:.0f} s, estimated: a 1-epoch CLI run ({cli['wall']:.1f} s) + "
                          f"{FULL_EPOCHS - 1} × (a)'s median epoch", est <= TARGETS["cli_seconds"]))
    return out


# --------------------------------------------------------------------------- main
def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_train", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per timing")
    ap.add_argument("--reps", type=int, default=7, help="timings per contender (interleaved)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS / torch threads of the main rows")
    ap.add_argument("--two-threads", action=argparse.BooleanOptionalAction, default=True,
                    help="also time (b) and (d) with 2 threads")
    ap.add_argument("--torch", action=argparse.BooleanOptionalAction, default=True, help="time PyTorch (d)")
    ap.add_argument("--app", action=argparse.BooleanOptionalAction, default=None,
                    help="time the stepper page (default: on, off with --quick)")
    ap.add_argument("--cli-full", action="store_true",
                    help="run the real 1000-epoch CLI (about 2–3 minutes) instead of extrapolating")
    ap.add_argument("--train-size", type=int, default=SEED_TRAIN)
    ap.add_argument("--val-size", type=int, default=1_000)
    ap.add_argument("--quick", action="store_true",
                    help="a tiny pool (2,000 images), 1 epoch × 2 timings, no app: checks that it all runs")
    ap.add_argument("--out", help="Markdown report (default benchmarks/RESULTS.md; none with --quick)")
    a = ap.parse_args(argv)
    if a.quick:
        a.train_size, a.val_size, a.epochs, a.reps = 2_000, 200, 1, 2
        a.two_threads = False
    a.two_threads = a.two_threads and a.threads != 2
    if a.app is None:
        a.app = not a.quick
    if a.out is None and not a.quick:
        a.out = str(ROOT / "benchmarks" / "RESULTS.md")
    return a


def run(argv=None, log=None) -> dict:
    a = parse_args(argv)
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    set_blas_threads(a.threads)
    mnist = load_mnist()
    split = make_split(mnist["train"], pool=a.train_size + a.val_size, val=a.val_size, seed=SEED)
    init = MLP(seed=SEED).params
    r: dict = {"args": a, "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
               "command": " ".join(["python -m benchmarks.bench_train", *(sys.argv[1:] if argv is None else argv)]),
               "load_start": load_start, "n_train": split.n_train, "n_val": split.n_val, "notes": [],
               "two": a.two_threads}
    a_full = Ours(split, full=True, threads=a.threads)
    r["steps_per_epoch"] = a_full.trainer.steps_per_epoch
    # the batch order of every epoch, as the trainer draws it (its own instance, so the
    # others asking for it never touch (a)'s cache)
    order_of = Trainer(MLP(seed=SEED), SGD(LR), split, batch_size=BATCH, seed=SEED).epoch_order
    contenders = {"a": a_full, "b": Ours(split, full=False, threads=a.threads),
                  "c": SeedReference(split, init, order_of, a.threads)}
    labels = {"a": "(a) ours, full recording (RunController → Trainer.run)",
              "b": "(b) ours, minimal recording (MLP.step in a loop)",
              "c": "(c) seed reference (float64, (784, m), shuffle copy)",
              "d": f"(d) PyTorch CPU eager, float32, {a.threads} thread" + ("s" if a.threads != 1 else "")}
    r["torch_note"] = ""
    if a.torch:
        try:
            import torch
            r["torch_version"] = torch.__version__
            contenders["d"] = Torch(split, init, order_of, a.threads)
        except ImportError:
            r["torch_note"] = "not installed, row skipped (the app does not need it)"
    else:
        r["torch_note"] = "skipped (--no-torch)"
    extra = {}
    if a.two_threads:
        extra["b2"] = Ours(split, full=False, threads=2)
        labels["b2"] = "(b) ours, minimal recording, *2 threads*"
        if "d" in contenders:
            extra["d2"] = Torch(split, init, order_of, 2)
            labels["d2"] = "(d) PyTorch CPU eager, *2 threads*"
    r["labels"] = labels

    # one untimed epoch each first: first-touch page faults, lazy initialisation
    log(f"warming up {', '.join([*contenders, *extra])}: one epoch each, untimed")
    for c in [*contenders.values(), *extra.values()]:
        c.epochs(1)
        settle(a.threads, pause=0.3 if c.threads != a.threads else 0.0)
    log(f"timing {', '.join(contenders)}: {a.reps} × {a.epochs} epoch(s) of {split.n_train:,} images")
    r["times"], r["cpu"] = time_epochs(contenders, a.epochs, a.reps, log)
    if extra:
        # timed apart: idle BLAS/OpenMP workers spin for a while after a 2-thread run
        # and would slow whichever 1-thread contender came next
        log(f"timing {', '.join(extra)} (2 threads) apart from the others")
        times2, cpu2 = time_epochs(extra, a.epochs, a.reps, log)
        r["times"].update(times2)
        r["cpu"].update(cpu2)
        contenders.update(extra)
        settle(a.threads)
    r["epochs_trained"] = 1 + a.epochs * a.reps
    val_X, val_y = split.source.X[split.val_idx], split.source.y[split.val_idx]
    r["val_loss"] = {}
    for k, c in contenders.items():
        p = c.params()
        dtype = np.float64 if k == "c" else np.float32
        net = MLP(seed=SEED, dtype=dtype, params={n: np.asarray(v, dtype) for n, v in p.items()})
        r["val_loss"][k] = evaluate(net, val_X, val_y)["loss"]
    pa, pb = contenders["a"].params(), contenders["b"].params()
    r["a_equals_b"] = all(np.array_equal(pa[k], pb[k]) for k in pa)

    r["seed_copy"] = contenders["c"].time_shuffle_copy(3)
    log("timing one step against its floor")
    r["floor"] = time_floor(split, blocks=5 if a.quick else 15, block=20 if a.quick else 64)
    if a.app:
        log("timing the stepper page")
        r["stepper"] = time_stepper_page(reps=5, log=log)
    else:
        r["stepper"] = {"skipped": "--no-app" + (" (the default with --quick)" if a.quick else "")}
    set_blas_threads(a.threads)
    log("measuring a 1000-epoch history")
    r["memory"] = history_memory(split, math.ceil(SEED_TRAIN / BATCH))
    r["cli"] = time_cli(a.train_size, a.cli_full, log)
    r["blas"] = blas_info()
    r["machine"] = machine()
    r["targets"] = targets(r)
    if a.quick:
        r["notes"].append("Quick mode: the pool is tiny, so per-epoch times are dominated by fixed costs; "
                          "the targets are only meaningful for the full protocol.")
    return r


def main(argv=None) -> int:
    r = run(argv)
    text = report(r)
    print(text)
    a = r["args"]
    if a.out:
        Path(a.out).write_text(text + "\n", encoding="utf-8")
        print(f"\nwritten to {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
