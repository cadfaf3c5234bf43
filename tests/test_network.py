"""The math of one step: backprop against finite differences, and the trace."""
import numpy as np
import pytest

from core.engine.gradcheck import check_gradients
from core.engine.network import ACTIVATIONS, PHASES, DivergenceError, MLP
from core.engine.optim import SGD, Adam, Momentum


def batch(m=16, n_in=784, k=10, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.random((m, n_in)).astype(dtype), rng.integers(0, k, m)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("sizes", [[784, 64, 64, 10], [30, 9, 10], [25, 12, 7, 5, 10]])
def test_backprop_matches_finite_differences_for_every_parameter(activation, sizes):
    net = MLP(sizes, activation=activation, init="he", seed=3, dtype=np.float64)
    X, y = batch(12, sizes[0], sizes[-1], seed=4)
    # several entries of every parameter, including every bias vector
    rng = np.random.default_rng(0)
    entries = [(name, tuple(int(rng.integers(s)) for s in p.shape))
               for name, p in net.params.items() for _ in range(6)]
    results = check_gradients(net, X, y, entries)
    assert {r.param for r in results} == set(net.params)
    assert sum(r.kink for r in results) <= 2          # a ReLU kink crossed by θ ± ε is rare
    smooth = [r for r in results if not r.kink]
    for r in smooth:
        # float64 rounds the loss to ~1e-16, so |numeric| carries ~1e-11 absolute error:
        # relative error is the measure for gradients above that floor
        assert r.rel_error <= 1e-6 or r.abs_error <= 1e-10, r
    for name in net.params:  # and every parameter has an entry well above the floor that agrees
        sizable = [r for r in smooth if r.param == name and abs(r.backprop) > 1e-5]
        assert sizable and all(r.rel_error <= 1e-6 for r in sizable), name


def test_gradcheck_catches_a_wrong_gradient():
    """The checker must be able to fail: corrupt backprop and see it."""
    net = MLP([20, 8, 10], init="he", seed=0, dtype=np.float64)
    X, y = batch(8, 20)
    original = MLP.forward_backward

    def broken(self, X, y, params=None, masks=None):
        trace = original(self, X, y, params, masks)
        trace.values["dW1"] = trace.values["dW1"] * 1.01
        return trace

    MLP.forward_backward = broken
    try:
        results = check_gradients(net, X, y, [("W1", (3, 2)), ("W1", (5, 1))])
    finally:
        MLP.forward_backward = original
    assert max(r.rel_error for r in results) > 1e-3


def test_trace_holds_every_quantity_in_order_with_shapes_and_equations():
    net = MLP([784, 64, 64, 10], seed=0)
    X, y = batch(64, dtype=np.float32)
    trace = net.step(X, y, SGD(0.1))
    names = list(trace)
    expected_order = ["X", "y", "W1", "b1", "Z1", "A1", "W2", "b2", "Z2", "A2", "W3", "b3", "Z3", "A3",
                      "losses", "loss", "Y", "dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2", "dA1", "dZ1",
                      "dW1", "db1", "ΔW1", "W1_new", "Δb1", "b1_new", "ΔW2", "W2_new", "Δb2", "b2_new",
                      "ΔW3", "W3_new", "Δb3", "b3_new"]
    assert names == expected_order
    phases = [r.phase for r in trace.records()]
    # phases come in the order forward, loss, backward, update
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == list(PHASES)
    shapes = {r.name: r.shape for r in trace.records()}
    assert shapes["X"] == (64, 784) and shapes["W1"] == (784, 64) and shapes["Z1"] == (64, 64)
    assert shapes["A3"] == (64, 10) and shapes["dW1"] == (784, 64) and shapes["db3"] == (10,)
    assert shapes["ΔW2"] == (64, 64) and shapes["losses"] == (64,)
    assert trace.spec("Z1").latex == r"Z_{1} = X\, W_{1} + b_{1}"
    assert trace.spec("Z1").inputs == ("X", "W1", "b1")
    assert trace.spec("dW1").latex == r"dW_{1} = X^\top dZ_{1}"
    assert r"\eta" in trace.spec("ΔW1").latex
    assert all(r.about for r in trace.records())


def test_trace_values_are_the_math_of_the_step():
    net = MLP([784, 64, 64, 10], seed=0, dtype=np.float64)
    X, y = batch(32)
    W = dict(net.params)
    t = net.step(X, y, SGD(0.1))
    relu = lambda z: np.maximum(z, 0)
    Z1 = X @ W["W1"] + W["b1"]
    np.testing.assert_allclose(t["Z1"], Z1)
    np.testing.assert_allclose(t["A1"], relu(Z1))
    Z3 = relu(relu(Z1) @ W["W2"] + W["b2"]) @ W["W3"] + W["b3"]
    P = np.exp(Z3) / np.exp(Z3).sum(1, keepdims=True)
    np.testing.assert_allclose(t["A3"], P)
    np.testing.assert_allclose(t["A3"].sum(1), 1)
    np.testing.assert_allclose(t["losses"], -np.log(P[np.arange(32), y]))
    assert t.loss == pytest.approx(-np.log(P[np.arange(32), y]).mean())
    np.testing.assert_allclose(t["dZ3"], (P - np.eye(10)[y]) / 32)
    np.testing.assert_allclose(t["dW1"], X.T @ t["dZ1"])
    np.testing.assert_allclose(t["dZ2"], t["dA2"] * (t["Z2"] > 0))
    for name in W:
        np.testing.assert_allclose(t["Δ" + name], -0.1 * t["d" + name])
        np.testing.assert_allclose(t[name + "_new"], W[name] + t["Δ" + name])
        assert net.params[name] is t[name + "_new"]


def test_recording_copies_nothing_and_leaves_the_before_state_intact():
    net = MLP(seed=0)
    X, y = batch(64, dtype=np.float32)
    before = net.params
    W1_copy = before["W1"].copy()
    t = net.step(X, y, SGD(0.1))
    assert t["W1"] is before["W1"]          # the parameters before, by reference
    assert t["X"] is X                      # the batch itself, not a copy
    np.testing.assert_array_equal(before["W1"], W1_copy)  # the update did not write into them
    t2 = net.step(X, y, SGD(0.1))
    assert t2["W1"] is t["W1_new"]          # consecutive steps share, not duplicate
    # one seed-size step: X, W1, dW1, ΔW1, W1_new of 784×64 float32 (1.0 MB) plus the small ones
    big = 5 * 784 * 64 * 4
    assert big < t.nbytes < big + 0.25e6


def test_forward_backward_does_not_update():
    net = MLP(seed=0, dtype=np.float64)
    X, y = batch(8)
    before = {k: v.copy() for k, v in net.params.items()}
    t = net.forward_backward(X, y)
    assert "ΔW1" not in t and "W1_new" not in t
    for k in before:
        np.testing.assert_array_equal(net.params[k], before[k])


def test_float32_is_the_default_and_stays_float32_through_a_step():
    net = MLP(seed=0)
    X, y = batch(8, dtype=np.float32)
    for opt in (SGD(0.1), Momentum(0.1), Adam(0.001)):
        t = net.step(X, y, opt)
        assert {t[k].dtype for k in t if k not in ("y", "loss")} == {np.dtype(np.float32)}, opt.name


def test_seed_initialisation_and_he():
    seed = MLP(seed=0, dtype=np.float64)
    assert seed.params["W1"].std() == pytest.approx(0.01, rel=0.02)
    assert not any(seed.params[f"b{l}"].any() for l in (1, 2, 3))
    he = MLP(init="he", seed=0, dtype=np.float64)
    assert he.params["W1"].std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)
    np.testing.assert_array_equal(MLP(seed=5).params["W2"], MLP(seed=5).params["W2"])
    assert not np.array_equal(MLP(seed=5).params["W2"], MLP(seed=6).params["W2"])


def test_a_non_finite_loss_raises_and_leaves_parameters_alone():
    net = MLP([20, 8, 10], seed=0, dtype=np.float64)
    X, y = batch(8, 20)
    net.params = dict(net.params, W2=np.full((8, 10), np.inf))
    net.params["W2"][:, 0] = -np.inf
    before = net.params
    with pytest.raises(DivergenceError) as err:
        net.step(X, y, SGD(0.1))
    assert net.params is before
    assert "loss" in err.value.trace


@pytest.mark.parametrize("bad", [dict(sizes=[784, 10]), dict(sizes=[784, 0, 10]), dict(sizes=[784, 600, 10]),
                                 dict(activation="swish"), dict(init="xavier"), dict(dtype=np.int32)])
def test_invalid_architectures_are_refused(bad):
    kw = {"sizes": [784, 64, 10], **bad}
    with pytest.raises(ValueError):
        MLP(kw.pop("sizes"), **kw)
