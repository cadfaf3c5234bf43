"""One record per activation, optimizer and initialisation: what the engine, the explanations,
the checkpoint and the pages read. A new record works everywhere without any other code change."""
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.engine.activations import ACTIVATIONS, RELU, Activation
from core.engine.gradcheck import check_gradients
from core.engine.network import INITS, MLP, DivergenceError
from core.engine.optim import OPTIMIZERS, from_hyper, make_optimizer, snapshot
from core.engine.trainer import divergence_message
from core.teach.explain import explain
from ui.state import session
from ui.stepper_views import build_stops, stop_text


def batch(m=12, n_in=30, k=10, seed=1):
    rng = np.random.default_rng(seed)
    return rng.random((m, n_in)) * (rng.random((m, n_in)) < 0.5), rng.integers(0, k, m)


# A test-only activation: smooth everywhere, written through A for its slope (σ(Z) = 1 − e^{−A}).
SOFTPLUS = Activation(
    key="softplus", label="softplus",
    f=lambda Z: np.logaddexp(Z.dtype.type(0), Z),
    backward=lambda dA, Z, A: dA * -np.expm1(-A),
    latex=r"A_{{{l}}} = \log(1 + e^{{Z_{{{l}}}}})",
    grad_latex=r"dZ_{{{l}}} = dA_{{{l}}} \odot (1 - e^{{-A_{{{l}}}}})",
    cell_latex=r"\log(1 + e^{{{z}}})",
    slope_latex=r"(1 - e^{{-{a}}})",
    a_about="Softplus is a smooth ReLU: log(1 + e^Z), always positive.",
    dz_about="the gradient flowing back, scaled by softplus's slope σ(Z)",
    dz_look="*Look at:* nothing is exactly 0 here; where `A{l}` is near 0 the gradient is small.",
    a_note=lambda z: "Softplus of this one entry.",
    dz_note=lambda z, a: "The gradient times softplus's slope here.",
)


@pytest.fixture
def softplus(monkeypatch):
    monkeypatch.setitem(ACTIVATIONS, "softplus", SOFTPLUS)
    return SOFTPLUS


def test_a_new_activation_works_through_the_engine_gradcheck_explain_and_the_stepper_text(softplus):
    net = MLP([30, 9, 7, 10], activation="softplus", init="he", seed=2, dtype=np.float64)
    X, y = batch()
    trace = net.forward_backward(X, y)
    assert trace.activation is softplus
    np.testing.assert_allclose(trace["A1"], np.log1p(np.exp(trace["Z1"])))
    np.testing.assert_allclose(trace["dZ2"], trace["dA2"] / (1 + np.exp(-trace["Z2"])))
    assert trace.spec("A1").latex == r"A_{1} = \log(1 + e^{Z_{1}})"
    assert trace.spec("dZ1").about == "∂L/∂Z1: the gradient flowing back, scaled by softplus's slope σ(Z)."

    rng = np.random.default_rng(0)
    entries = [(k, tuple(int(rng.integers(s)) for s in p.shape)) for k, p in net.params.items() for _ in range(4)]
    results = check_gradients(net, X, y, entries)
    assert not any(r.kink for r in results)          # smooth: every entry is compared
    assert all(r.rel_error <= 1e-6 or r.abs_error <= 1e-10 for r in results)

    stepped = net.step(X, y, make_optimizer("sgd", lr=0.1))
    for name in ("A1", "A2", "dZ1", "dZ2"):
        for index in [(0, 0), (3, 4), (11, 6)]:
            ex = explain(stepped, name, index)
            assert abs(ex.total - ex.value) <= 1e-12 * max(1.0, abs(ex.value)), (name, index)
    assert explain(stepped, "A1", (3, 4)).rule.startswith(r"A_{1}[3, 4] = \log(1 + e^{Z_{1}[3, 4]})")
    texts = {s.key: stop_text(s, stepped) for s in build_stops(stepped)}
    assert softplus.a_about in texts["A1"] and "nothing is exactly 0" in texts["dZ1"]


def test_a_broken_derivative_in_a_record_is_caught_by_gradcheck(softplus, monkeypatch):
    """The gradcheck test above can fail: a record whose backward is off is caught."""
    monkeypatch.setitem(ACTIVATIONS, "softplus", replace(softplus, backward=lambda dA, Z, A: dA * 0.9))
    net = MLP([30, 9, 10], activation="softplus", init="he", seed=2, dtype=np.float64)
    X, y = batch()
    assert max(r.rel_error for r in check_gradients(net, X, y, [("W1", (1, 2)), ("b1", (4,))])) > 1e-3


def test_the_settings_menus_read_the_registries(softplus):
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "streamlit_app.py"), default_timeout=120)
    at.query_params.update({"pool": "3000", "val": "500"})
    at.run()
    menus = {w.label: w for w in at.selectbox}
    assert menus["Activation"].options == [a.label for a in ACTIVATIONS.values()]   # softplus included
    assert menus["Initialisation"].options == [i.label for i in INITS.values()]
    assert menus["Optimizer"].options == [o.label for o in OPTIMIZERS.values()]
    menus["Activation"].set_value("softplus")
    [b for b in at.button if b.label == "Apply settings"][0].click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert session(at.session_state).ws.net.act is softplus


@pytest.mark.parametrize("act", list(ACTIVATIONS.values()), ids=lambda a: a.key)
def test_each_records_backward_is_the_derivative_of_its_f(act):
    Z = np.linspace(-4, 4, 81) + 0.0125              # no sample exactly at a kink
    A = act.f(Z)
    h = 1e-6
    slope = (act.f(Z + h) - act.f(Z - h)) / (2 * h)
    np.testing.assert_allclose(act.backward(np.ones_like(Z), Z, A), slope, rtol=1e-6, atol=1e-9)
    z = np.asarray(-0.7)                               # and it works on one 0-d cell, as explain uses it
    assert float(act.f(z)) == pytest.approx(float(act.f(np.array([-0.7]))[0]), rel=1e-15)


@pytest.mark.parametrize("act", list(ACTIVATIONS.values()), ids=lambda a: a.key)
def test_each_activation_gets_its_own_wording_in_the_trace(act):
    trace = MLP([20, 6, 5, 10], activation=act.key, seed=0).forward_backward(*batch(n_in=20))
    assert trace.spec("dZ1").about == f"∂L/∂Z1: {act.dz_about}."
    assert trace.spec("A2").latex == act.latex.format(l=2) and trace.spec("dZ2").latex == act.grad_latex.format(l=2)
    assert act.label in trace.spec("A1").about


def test_the_sigmoid_networks_dZ_is_not_described_with_relus_words():
    trace = MLP([20, 6, 10], activation="sigmoid", seed=0).forward_backward(*batch(n_in=20))
    about = trace.spec("dZ1").about
    assert RELU.dz_about not in about and "only where the unit was active" not in about
    assert "A(1 − A)" in about
    relu = MLP([20, 6, 10], activation="relu", seed=0).forward_backward(*batch(n_in=20))
    assert "only where the unit was active" in relu.spec("dZ1").about


def test_the_trace_knows_the_network_and_optimizer_it_came_from():
    net = MLP([30, 9, 7, 10], activation="tanh", seed=0, dtype=np.float64)
    X, y = batch()
    t = net.forward_backward(X, y)
    assert t.sizes == (30, 9, 7, 10) and t.n_layers == 3 and t.activation is ACTIVATIONS["tanh"]
    assert t.hyper is None
    opt = make_optimizer("momentum", lr=0.05, momentum=0.8, weight_decay=1e-3)
    s = net.step(X, y, opt)
    assert s.hyper == opt.hyper and s.hyper["lr"] == 0.05
    far_too_large = make_optimizer("momentum", lr=1e5, momentum=0.8)
    with pytest.raises(DivergenceError) as err:
        net.step(X, y, far_too_large)
    assert err.value.trace.sizes == (30, 9, 7, 10) and err.value.trace.hyper == far_too_large.hyper


@pytest.mark.parametrize("init", list(INITS.values()), ids=lambda i: i.key)
def test_each_initialisation_draws_weights_at_its_scale(init):
    net = MLP([400, 300, 10], init=init.key, seed=0, dtype=np.float64)
    assert net.params["W1"].std() == pytest.approx(init.scale(400), rel=0.02)
    assert net.params["W2"].std() == pytest.approx(init.scale(300), rel=0.1)
    assert init.label.startswith(init.name)


# --------------------------------------------------------------------------- optimizers
def test_every_optimizer_writes_and_explains_its_own_update():
    """A new optimizer that inherited its parent's LaTeX or explanation would show a rule it does not follow."""
    assert all(cls.key == key and cls.label for key, cls in OPTIMIZERS.items())
    for cls in OPTIMIZERS.values():
        assert {"update", "latex", "explain_update"} <= set(vars(cls)), cls.key
        opt = cls()
        assert set(opt.hyper) == {"optimizer", *cls.settings, *cls.constants}
        assert from_hyper(opt.hyper).hyper == opt.hyper


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
@pytest.mark.parametrize("key", sorted(OPTIMIZERS))
def test_the_explained_update_equals_the_traces_for_every_optimizer(key, weight_decay):
    net = MLP([30, 9, 7, 10], init="he", seed=3, dtype=np.float64)
    opt = make_optimizer(key, lr=0.01, weight_decay=weight_decay)
    for s in range(3):                                  # a few steps, so stateful optimizers have state
        before = snapshot(opt)
        trace = net.step(*batch(seed=s), opt)
    rng = np.random.default_rng(1)
    for p in ("W1", "b1", "W3", "b3"):
        a = trace["Δ" + p]
        for index in [tuple(int(rng.integers(n)) for n in a.shape) for _ in range(4)]:
            ex = explain(trace, "Δ" + p, index, optimizer=before)
            assert ex.value == float(a[index])
            assert abs(ex.total - ex.value) <= 1e-12 * max(1e-3, abs(ex.value)), (p, index, ex.total, ex.value)
            if p.startswith("W") and weight_decay:
                assert r"\lambda" in ex.rule
    stateless = not (type(opt).state_keys or type(opt).counters)
    alone = explain(trace, "ΔW1", (0, 0))               # without the optimizer from before the step
    assert (alone.combine != "optimizer") == stateless
    if stateless:                                       # SGD, with weight decay too, is rebuilt from trace.hyper
        assert math.isclose(alone.total, alone.value, rel_tol=1e-12, abs_tol=1e-18)


@pytest.mark.parametrize("key", sorted(OPTIMIZERS))
def test_an_optimizers_declared_state_names_are_what_it_saves_and_loads(key):
    net = MLP([20, 6, 10], seed=0, dtype=np.float64)
    opt = make_optimizer(key, lr=0.01)
    net.step(*batch(n_in=20), opt)
    state = opt.state()
    assert set(state) == opt.state_names(net.params)
    again = make_optimizer(key, lr=0.01)
    again.load_state(state)
    assert again.state().keys() == state.keys()
    assert all(np.array_equal(again.state()[k], state[k]) for k in state)
    with pytest.raises(ValueError):
        again.load_state({**state, "Q_W1": state.get("V_W1", np.zeros(1))})


def test_divergence_tips_come_from_the_records():
    err = DivergenceError("The loss is not a finite number: the weights are blowing up.")
    adam = divergence_message(err, 1, 1, make_optimizer("adam", lr=0.01), MLP([20, 6, 10]))
    assert OPTIMIZERS["adam"].divergence_tip in adam
    sgd = divergence_message(err, 1, 1, make_optimizer("sgd", lr=2.0), MLP([20, 6, 10]))
    assert "He initialisation" in sgd and "Adam" not in sgd
    for act in ACTIVATIONS.values():     # He is suggested only where the record says it suits
        text = divergence_message(err, 1, 1, make_optimizer("sgd", lr=2.0), MLP([20, 6, 10], activation=act.key))
        assert ("He initialisation" in text) == (act.suited_init == "he")
    assert "He initialisation" not in divergence_message(err, 1, 1, make_optimizer("sgd", lr=2.0),
                                                         MLP([20, 6, 10], init="he"))
