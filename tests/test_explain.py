"""core.teach.explain: every cell of a step, rebuilt from the numbers that made it, equals the engine's."""
import math

import numpy as np
import pytest

from core.teach.explain import (explain, sample_gradient_norms, sample_gradient_shares, tex_name, tex_num)
from core.engine.network import MLP, DivergenceError
from core.engine.optim import make_optimizer, snapshot


def batch(m=16, n_in=784, seed=1):
    """Pixel-like inputs: most entries exactly 0, the rest in (0, 1]."""
    rng = np.random.default_rng(seed)
    X = rng.random((m, n_in)) * (rng.random((m, n_in)) < 0.3)
    y = rng.integers(0, 10, m)
    return X, y


def stepped(sizes=(784, 32, 16, 10), activation="relu", optimizer="sgd", steps=3, dtype=np.float64, **opt):
    """A network stepped a few times (so momentum/Adam have state), then the last step's
    trace and the optimizer as it was before that step."""
    net = MLP(sizes, activation=activation, init="he", seed=3, dtype=dtype)
    opt = make_optimizer(optimizer, **opt)
    for s in range(steps):
        X, y = batch(seed=s)
        before = snapshot(opt)
        trace = net.step(X, y, opt)
    return trace, before


def cells(a, rng, n=6):
    """A few random cells of ``a`` plus its first and last."""
    a = np.asarray(a)
    if a.ndim == 0:
        return [()]
    out = [tuple(0 for _ in a.shape), tuple(s - 1 for s in a.shape)]
    out += [tuple(int(rng.integers(s)) for s in a.shape) for _ in range(n)]
    return out


CASES = [
    dict(),
    dict(activation="leaky_relu"),
    dict(activation="sigmoid", optimizer="momentum", lr=0.05, momentum=0.9),
    dict(activation="tanh", optimizer="adam", lr=0.001),
    dict(optimizer="sgd", lr=0.1, weight_decay=1e-3),
    dict(optimizer="momentum", lr=0.1, weight_decay=1e-3, momentum=0.5),
    dict(sizes=(784, 20, 10)),
    dict(sizes=(784, 12, 8, 6, 10), optimizer="adam", lr=0.01, weight_decay=1e-4),
    dict(activation="sigmoid", optimizer="rmsprop", lr=0.001, weight_decay=1e-4),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "seed")
def test_total_equals_the_cell_for_every_quantity(case):
    trace, before = stepped(**case)
    rng = np.random.default_rng(0)
    kinds = set()
    for name in trace:
        for index in cells(trace[name], rng):
            ex = explain(trace, name, index, optimizer=before)
            value = float(np.asarray(trace[name])[index])
            assert ex.value == value
            assert abs(ex.total - value) <= 1e-9 * max(1.0, abs(value)), (name, index, ex.total, value)
            if ex.combine == "sum":
                assert abs(ex.sum_of_terms - ex.total) <= 1e-12 * max(1.0, abs(ex.total)), (name, index)
            sizes = [abs(t.value) for t in ex.terms]
            if name.startswith(("Z",)):      # the bias stays last, after the sorted products
                sizes = sizes[:-1]
            assert sizes == sorted(sizes, reverse=True), name
            kinds.add(ex.combine)
    assert {"sum", "input", "softmax"} <= kinds


def test_the_terms_are_the_products_the_equation_names():
    trace, _ = stepped()
    X, W1, b1, dZ1 = (np.asarray(trace[k]) for k in ("X", "W1", "b1", "dZ1"))
    ex = explain(trace, "Z1", (2, 5))
    assert len(ex.terms) == 784 + 1                      # one per pixel, and the bias
    assert ex.terms[-1].label == "b1[5]" and ex.terms[-1].value == b1[5]
    k = int(np.argmax(np.abs(X[2] * W1[:, 5])))
    assert ex.terms[0].label == f"X[2,{k}]·W1[{k},5]"
    assert ex.terms[0].factors == (X[2, k], W1[k, 5])
    g = explain(trace, "dW1", (300, 7))
    assert len(g.terms) == len(X)                        # one per sample of the batch
    assert math.isclose(g.sum_of_terms, float(X[:, 300] @ dZ1[:, 7]), rel_tol=1e-12, abs_tol=1e-15)
    top, n_rest, rest = ex.top(10)
    assert len(top) == 10 and n_rest == 775
    assert math.isclose(sum(t.value for t in top) + rest, ex.total, rel_tol=1e-12, abs_tol=1e-15)


def test_relu_gate_and_softmax_read_the_right_cells():
    trace, _ = stepped()
    Z1, dA1 = np.asarray(trace["Z1"]), np.asarray(trace["dA1"])
    off = tuple(int(i) for i in np.argwhere(Z1 <= 0)[0])
    on = tuple(int(i) for i in np.argwhere(Z1 > 0)[0])
    assert explain(trace, "dZ1", off).total == 0.0
    assert explain(trace, "dZ1", on).total == dA1[on]
    assert "silent" in explain(trace, "A1", off).note
    sm = explain(trace, "A3", (1, 4))
    denom = dict(sm.details)["Σ_k exp(…)  (denominator)"]
    assert math.isclose(sm.sum_of_terms, denom, rel_tol=1e-12)
    assert len(sm.terms) == 10


def test_float32_cells_agree_to_float32_rounding():
    trace, before = stepped(dtype=np.float32)
    for name, index in [("Z1", (3, 4)), ("dW1", (200, 1)), ("dA1", (0, 0)), ("A3", (2, 2)), ("loss", ())]:
        ex = explain(trace, name, index, optimizer=before)
        assert abs(ex.total - ex.value) <= 1e-5 * max(1.0, abs(ex.value)), name


def test_sgd_update_without_the_optimizer_uses_the_traces_learning_rate():
    trace, _ = stepped(lr=0.3)
    ex = explain(trace, "ΔW2", (1, 2))
    assert math.isclose(ex.total, -0.3 * float(trace["dW2"][1, 2]), rel_tol=1e-15)
    assert ex.error == 0.0
    adam, _ = stepped(optimizer="adam", lr=0.001)
    ex = explain(adam, "ΔW1", (0, 0))                    # Adam's state is not in the trace
    assert ex.combine == "optimizer" and "optimizer's rule" in ex.note


def test_momentum_update_needs_the_velocity_from_before_the_step():
    trace, before = stepped(optimizer="momentum", lr=0.1, momentum=0.9)
    index = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(before.V["W2"])), before.V["W2"].shape))
    right = explain(trace, "ΔW2", index, optimizer=before)
    assert abs(right.total - right.value) < 1e-12
    assert any("V_W2" in t.label for t in right.terms)
    wrong = explain(trace, "ΔW2", index, optimizer=make_optimizer("momentum", lr=0.1, momentum=0.9))
    assert abs(wrong.total - wrong.value) > 1e-6          # forgetting the velocity is caught


def test_bad_names_and_indices_are_refused():
    trace, _ = stepped()
    with pytest.raises(KeyError):
        explain(trace, "Z9", (0, 0))
    with pytest.raises(IndexError):
        explain(trace, "Z1", (16, 0))
    with pytest.raises(IndexError):
        explain(trace, "b1", (0, 0))


def test_a_diverged_partial_trace_can_still_be_explained():
    net = MLP((784, 16, 10), seed=0, dtype=np.float64)
    X, y = batch()
    with pytest.raises(DivergenceError) as err:
        net.step(X, y, make_optimizer("sgd", lr=1e4))      # an update that would blow the weights up
    partial = err.value.trace
    assert "ΔW2" in partial and "W2_new" not in partial       # refused: there is no W_new
    ex = explain(partial, "losses", (0,))
    assert abs(ex.total - float(partial["losses"][0])) <= 1e-9 * abs(ex.total)
    ex = explain(partial, "ΔW2", (3, 4))
    assert ex.total == pytest.approx(float(partial["ΔW2"][3, 4]), rel=1e-9)


def test_each_samples_share_of_the_gradient():
    trace, _ = stepped()
    X, dZ1, dW1 = (np.asarray(trace[k]) for k in ("X", "dZ1", "dW1"))
    norms = sample_gradient_norms(trace, 1)
    for i in (0, 5):
        assert math.isclose(norms[i], np.linalg.norm(np.outer(X[i], dZ1[i])), rel_tol=1e-12)
    shares = sample_gradient_shares(trace, 1)
    assert math.isclose(shares.sum(), 1.0, rel_tol=1e-9)
    i = 3
    assert math.isclose(shares[i], float(np.sum(np.outer(X[i], dZ1[i]) * dW1)) / float(np.sum(dW1 * dW1)),
                        rel_tol=1e-9)
    assert sample_gradient_norms(trace, 3).shape == (len(X),)


def test_names_and_numbers_in_latex():
    assert tex_name("Z1") == "Z_{1}" and tex_name("dW3") == "dW_{3}" and tex_name("ΔW1") == r"\Delta W_{1}"
    assert tex_name("W2_new") == r"W_{2}^{\mathrm{new}}"
    assert tex_num(1.5e-05) == r"1.5\times10^{-5}" and tex_num(0.25) == "0.25"
