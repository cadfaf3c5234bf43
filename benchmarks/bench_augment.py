"""Data augmentation (core/engine/augment.py): time to shift and rotate one mini-batch.

``python -m benchmarks.bench_augment [--batch 64] [--repeat 7]``

Times ``augment`` on random float32 images (the trainer's dtype) for a shift of 2 px with and
without a rotation of 10°, and a step of the seed network (784-64-64-10, batch 64) for scale,
each the best of ``--repeat`` rounds of 50 calls. Reports milliseconds per call; no target is
asserted: the machine may be busy.
"""
from __future__ import annotations

import argparse
import json
import timeit

import numpy as np

from core.engine.augment import augment
from core.engine.network import MLP


def best_ms(fn, repeat: int, number: int = 50) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1000


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    X = np.random.default_rng(0).random((args.batch, 784)).astype(np.float32)
    y = np.arange(args.batch) % 10
    rng = np.random.default_rng(0)
    net = MLP()
    out = {
        "batch": args.batch,
        "shift 2 px, ms": best_ms(lambda: augment(X, rng, 2, 0.0), args.repeat),
        "shift 2 px + rotate 10°, ms": best_ms(lambda: augment(X, rng, 2, 10.0), args.repeat),
        "one training step of the seed network, ms": best_ms(lambda: net.forward_backward(X, y), args.repeat),
    }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
