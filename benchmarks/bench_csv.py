"""Kaggle CSV loader: time and peak memory on a 42,000-row train.csv.

``python -m benchmarks.bench_csv [--old PATH]``

Writes the first 42,000 training images of ``data/mnist.npz`` as a Kaggle
train.csv (label,pixel0,…,pixel783; ~73 MB like Kaggle's), then loads it from
its bytes with ``core.data.kaggle_csv.load_csv`` in fresh processes:

* wall and CPU time (best of 3 loads),
* peak RSS above the process's RSS with the file's bytes already read (VmHWM),
* peak of Python-traced allocations (tracemalloc, a separate load: it slows).

``--old PATH`` also measures another version of the module (e.g. the one before
the pandas rewrite: ``git show 25abb67:core/data/kaggle_csv.py > old.py``),
interleaved with the current one so that a busy machine hits both alike.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ROWS = 42_000

CHILD = r"""
import importlib.util, json, re, resource, sys, time, tracemalloc
spec = importlib.util.spec_from_file_location("kaggle_csv_under_test", sys.argv[1])
mod = importlib.util.module_from_spec(spec); sys.modules[spec.name] = mod; spec.loader.exec_module(mod)
import numpy as np, pandas  # imported before measuring: the app has them loaded already
data = open(sys.argv[2], "rb").read()

def rss():
    return int(re.search(r"VmRSS:\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

def hwm():
    return int(re.search(r"VmHWM:\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

before = rss()
wall, cpu = [], []
for _ in range(3):
    t0, c0 = time.perf_counter(), time.process_time()
    got = mod.load_csv(data, require_labels=True)
    wall.append(time.perf_counter() - t0); cpu.append(time.process_time() - c0)
    assert got.X.shape == (%d, 784)
    del got
peak_rss = hwm() - before
tracemalloc.start()
got = mod.load_csv(data, require_labels=True)
traced = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"wall": min(wall), "cpu": min(cpu), "rss": peak_rss, "traced": traced}))
""" % ROWS


def write_csv(path: Path) -> None:
    with np.load(ROOT / "data" / "mnist.npz", allow_pickle=False) as d:
        X, y = d["x_train"][:ROWS], d["y_train"][:ROWS]
    table = np.array([str(i).encode() for i in range(256)], dtype=object)
    head = ",".join(["label"] + [f"pixel{i}" for i in range(784)]) + "\n"
    with open(path, "wb") as fh:
        fh.write(head.encode())
        for i in range(ROWS):
            fh.write(b",".join(table[np.concatenate(([y[i]], X[i]))]) + b"\n")


def measure(module: Path, csv: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(module), str(csv)], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{module}: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, help="another kaggle_csv.py to compare with")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    versions = {"current": ROOT / "core" / "data" / "kaggle_csv.py"}
    if a.old:
        versions = {"old": a.old, **versions}
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "train.csv"
        write_csv(csv)
        print(f"{ROWS:,} rows, {csv.stat().st_size / 2**20:.1f} MiB", flush=True)
        best: dict[str, dict] = {}
        for r in range(a.rounds):
            names = list(versions) if r % 2 == 0 else list(reversed(versions))
            for name in names:
                m = measure(versions[name], csv)
                b = best.setdefault(name, m)
                for k in m:
                    b[k] = min(b[k], m[k])
        for name, m in best.items():
            print(f"{name:8s} wall {m['wall']:.2f} s  cpu {m['cpu']:.2f} s  "
                  f"peak RSS +{m['rss'] / 2**20:.0f} MiB  peak traced {m['traced'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
