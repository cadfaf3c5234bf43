"""What each of the seed's improvements costs per training step: ``python -m benchmarks.bench_improvements``.

The seed network (784-64-64-10 ReLU, batches of 64, MNIST) trained by the app's own trainer
(``Trainer.train_step``, what a full run repeats), once as the seed and once with each change
alone: dropout p = 0.1, RMSprop, Adam, batch normalization, data augmentation (2 px, 10°). The
six take turns, ``--rounds`` times ``--steps`` steps each, in a rotating order so that a busy
machine slows all alike; each reports its best round in milliseconds per step and its ratio to the
seed's. BLAS runs on one thread, as in the app's training process. No target is asserted.
"""
from __future__ import annotations

import argparse
import json
import time

from core.data.mnist import load_mnist
from core.engine.blas import set_blas_threads
from core.lab.settings import Settings
from core.lab.workspace import Workspace

CHANGES = {   # each improvement alone, as the experiments of benchmarks/EXPERIMENTS.md run it
    "seed": {},
    "dropout 0.1": {"dropout": 0.1},
    "RMSprop": {"optimizer": "rmsprop", "lr": 0.001},
    "Adam": {"optimizer": "adam", "lr": 0.001},
    "batch norm": {"batchnorm": True},
    "augmentation": {"shift": 2, "rotate": 10.0},
}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200, help="steps per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pool", type=int, default=12_800, help="MNIST images the trainers draw batches from")
    args = ap.parse_args(argv)
    set_blas_threads(1)
    m = load_mnist()
    trainers = {name: Workspace(Settings(pool=args.pool, val=min(1000, args.pool // 2), **change),
                                m["train"], m["test"]).trainer for name, change in CHANGES.items()}
    for tr in trainers.values():
        tr.train_step()                          # first-call costs out of the way
    best = {name: float("inf") for name in trainers}
    names = list(trainers)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            tr = trainers[name]
            t0 = time.perf_counter()
            for _ in range(args.steps):
                tr.train_step()
            best[name] = min(best[name], (time.perf_counter() - t0) / args.steps * 1000)
    out = {name: {"ms per step": round(ms, 3), "× the seed": round(ms / best["seed"], 2)} for name, ms in best.items()}
    print(json.dumps({"steps per round": args.steps, "rounds": args.rounds, "batch": 64, "results": out}, indent=1, ensure_ascii=False))
    return out


if __name__ == "__main__":
    main()
