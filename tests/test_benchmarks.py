"""The training benchmark: its seed reference is the same math as our engine, and the
script runs end to end (``--quick``, a tiny pool, a few seconds). Not a timed test."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bench_train
from benchmarks import seed_reference as seed
from core.data.mnist import make_split, to_float
from core.engine.network import MLP
from core.engine.optim import SGD
from core.engine.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent


def real_batch(mnist, m=24, start=100):
    X_u8, y = mnist["train"].X[start:start + m], mnist["train"].y[start:start + m]
    return X_u8, y


def test_seed_reference_forward_and_backward_equal_the_engine_in_float64(mnist):
    """Same parameters, same batch: every quantity of the notebook's layout (features by
    samples) is the transpose of ours (samples by rows)."""
    net = MLP(init="he", seed=3, dtype=np.float64)  # He: plenty of active and inactive ReLUs
    X_u8, y = real_batch(mnist)
    X = to_float(X_u8, np.float64)
    t = net.forward_backward(X, y)

    Xs, Ys = seed.seed_layout(X_u8, y)
    np.testing.assert_array_equal(Xs, X.T)  # the same pixels, /255 in float64
    W1, b1, W2, b2, W3, b3 = seed.from_rows_layout(net.params)
    Z1, A1, Z2, A2, Z3, A3 = seed.forward_prop(W1, b1, W2, b2, W3, b3, Xs)
    for name, ref in zip(("Z1", "A1", "Z2", "A2", "Z3", "A3"), (Z1, A1, Z2, A2, Z3, A3)):
        np.testing.assert_allclose(ref, t[name].T, rtol=1e-10, atol=1e-13, err_msg=name)
    assert 0.1 < (t["Z1"] > 0).mean() < 0.9  # the ReLU masks are not trivial
    grads = seed.backward_prop(Z1, A1, Z2, A2, Z3, A3, W2, W3, Xs, Ys)
    for name, ref in zip(("dW1", "db1", "dW2", "db2", "dW3", "db3"), grads):
        ours = t[name]
        np.testing.assert_allclose(ref, ours.T if ours.ndim == 2 else ours[:, None],
                                   rtol=1e-9, atol=1e-13, err_msg=name)
    assert np.abs(t["db1"]).max() > 1e-4      # per-unit bias gradients, not one scalar
    assert seed.mean_loss((W1, b1, W2, b2, W3, b3), Xs, Ys) == pytest.approx(t.loss, rel=1e-12)


def test_seed_reference_update_is_plain_sgd(mnist):
    net = MLP(seed=0, dtype=np.float64)
    X_u8, y = real_batch(mnist, m=64)
    p = seed.from_rows_layout(net.params)
    Xs, Ys = seed.seed_layout(X_u8, y)
    forward = seed.forward_prop(*p, Xs)
    new = seed.update_params(*p, *seed.backward_prop(*forward, p[2], p[4], Xs, Ys), 0.1)
    net.step(to_float(X_u8, np.float64), y, SGD(0.1))
    for name, ref in seed.to_rows_layout(*new).items():
        np.testing.assert_allclose(ref, net.params[name], rtol=1e-10, atol=1e-13, err_msg=name)


def test_seed_reference_epoch_visits_the_trainers_batches(mnist):
    """One epoch of the notebook's shuffle-copy-and-slice loop, fed the trainer's order
    through the benchmark's own glue, ends on the trainer's parameters (float64), last
    partial batch included (300 = 4 × 64 + 44)."""
    split = make_split(mnist["train"], pool=330, val=30, seed=0)
    net = MLP(seed=0, dtype=np.float64)
    ref = bench_train.SeedReference(split, net.params, Trainer(MLP(seed=0), SGD(0.1), split).epoch_order)
    trainer = Trainer(net, SGD(0.1), split, batch_size=64, seed=0)
    trainer.run(2)
    ref.epochs(2)
    assert trainer.global_step == 2 * 5
    for name, theirs in ref.params().items():
        np.testing.assert_allclose(theirs, trainer.net.params[name], rtol=1e-9, atol=1e-12, err_msg=name)
    # and a different order gives different parameters: the comparison can fail
    other = bench_train.SeedReference(split, MLP(seed=0, dtype=np.float64).params,
                                      Trainer(MLP(seed=0), SGD(0.1), split, seed=1).epoch_order)
    other.epochs(2)
    assert not np.allclose(other.params()["W1"], trainer.net.params["W1"], rtol=1e-9, atol=1e-12)


def test_targets_pass_or_miss_on_the_medians():
    def result(a, b, c, d, step, floor, cli):
        return {"times": {"a": a, "b": b, "c": c, "d": d}, "cpu": {"a": a, "b": b, "c": c, "d": d},
                "floor": {"step": {"median": step, "min": step}, "floor": {"median": floor, "min": floor}},
                "cli": {"epochs": 1, "wall": cli}, "torch_note": ""}

    good = bench_train.targets(result([0.1, 0.1, 0.5], [0.098] * 3, [0.6] * 3, [0.2] * 3, 150, 100, 1.0))
    assert [ok for *_, ok in good] == [True, True, True, True, True]
    bad = bench_train.targets(result([0.2, 0.2, 0.1], [0.1] * 3, [0.6] * 3, [0.2] * 3, 170, 100, 1.0))
    # medians: a 0.2 → seed 3×, torch 1×, recording +100%, step 1.7×, CLI ≈ 201 s
    assert [ok for *_, ok in bad] == [False, False, False, False, False]


def test_quick_benchmark_runs_end_to_end(tmp_path):
    out = tmp_path / "RESULTS.md"
    run = subprocess.run([sys.executable, "-m", "benchmarks.bench_train", "--quick", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert text.strip() in run.stdout          # printed and written
    for row in ("| (a) ours, full recording", "| (b) ours, minimal recording", "| (c) seed reference"):
        assert row in text
    try:
        import torch  # noqa: F401
        has_torch = True
    except ImportError:
        has_torch = False
    if has_torch:
        assert "| (d) PyTorch CPU eager, float32, 1 thread" in text and "torch.set_num_threads(1)" in text
    else:
        assert "not installed, row skipped" in text
    assert "trained **identical** parameters" in text  # (b) really is the step (a) makes
    assert "1 BLAS thread**" in text and "- BLAS: " in text
    assert "641,000 step losses" in text and f"{641_000 * 4:,} B" in text
    targets = text.split("## Targets")[1]
    assert targets.count("| PASS |") + targets.count("| MISS |") == (5 if has_torch else 4)


def test_the_improvements_benchmark_times_every_change_with_the_apps_trainer():
    """Its figures are in benchmarks/README.md; here only that it runs and reports each change."""
    from benchmarks import bench_improvements
    got = bench_improvements.main(["--steps", "2", "--rounds", "1", "--pool", "600"])
    assert set(got) == set(bench_improvements.CHANGES)
    assert all(r["ms per step"] > 0 for r in got.values()) and got["seed"]["× the seed"] == 1.0
