"""Editing a trained network (core/teach/surgery.py): the edits act on a copy, through the
engine's forward pass, and silencing means the same thing for every activation."""
import numpy as np
import pytest

from core.engine.activations import ACTIVATIONS
from core.engine.metrics import activations
from core.engine.network import MLP
from core.teach.surgery import MAX_WEIGHT, SetWeight, Silence, apply, check, compare, outcome, silenced, sizes_of

SIZES = (784, 12, 9, 10)


def network(activation="relu", dtype=np.float64, seed=3):
    net = MLP(SIZES, activation=activation, init="he", seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    # biases that are not zero, so "silence" cannot pass by leaving f(b) = f(0) in place
    net.params = {k: (v + 0.3 * rng.standard_normal(v.shape)).astype(dtype) if k.startswith("b") else v
                  for k, v in net.params.items()}
    return net


def images(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 784), dtype=np.uint8), rng.integers(0, 10, n)


def read_only(params):
    out = {k: v.copy() for k, v in params.items()}
    for v in out.values():
        v.setflags(write=False)
    return out


def hand_forward(net, X_u8, params, zero=None):
    """The forward pass written out, with ``A{l}[:, j] = 0`` forced for ``zero = (l, j)``."""
    A = X_u8.astype(np.float64) / 255
    L = net.n_layers
    for l in range(1, L + 1):
        Z = A @ params[f"W{l}"].astype(np.float64) + params[f"b{l}"]
        if l < L:
            A = net.act.f(Z)
            if zero is not None and zero[0] == l:
                A = A.copy()
                A[:, zero[1]] = 0
        else:
            E = np.exp(Z - Z.max(axis=1, keepdims=True))
            A = E / E.sum(axis=1, keepdims=True)
    return A


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("layer", [1, 2])
def test_silencing_is_the_neuron_output_set_to_zero_for_every_activation(activation, layer):
    net = network(activation)
    X, _ = images()
    j = 4
    edited = apply(net.params, [Silence(layer, j)])
    got = activations(net, X, edited)["A3"]
    np.testing.assert_allclose(got, hand_forward(net, X, net.params, zero=(layer, j)), rtol=1e-10, atol=1e-13)
    # and it did change something: the neuron mattered
    assert not np.allclose(got, activations(net, X, net.params)["A3"])


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_silencing_every_unit_of_a_layer_gives_constant_predictions(activation):
    net = network(activation)
    X, _ = images()
    for layer in (1, 2):
        edits = [Silence(layer, j) for j in range(SIZES[layer])]
        A3 = activations(net, X, apply(net.params, edits))["A3"]
        # nothing of the image reaches the layer above: every image gets the same probabilities
        np.testing.assert_allclose(A3, np.broadcast_to(A3[0], A3.shape), rtol=1e-12, atol=1e-15)
        assert len(set(A3.argmax(1))) == 1


def test_silencing_a_unit_with_no_outgoing_weights_changes_nothing():
    net = network()
    p = dict(net.params)
    W2 = p["W2"].copy()
    W2[5, :] = 0
    p["W2"] = W2
    X, _ = images()
    before = activations(net, X, p)["A3"]
    after = activations(net, X, apply(p, [Silence(1, 5)]))["A3"]
    assert np.array_equal(before, after)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_setting_a_weight_to_its_own_value_changes_nothing_bit_for_bit(dtype):
    net = network(dtype=dtype)
    X, _ = images()
    p = net.params
    edits = [SetWeight(1, 300, 7, float(p["W1"][300, 7])), SetWeight(3, 8, 2, float(p["W3"][8, 2]))]
    edited = apply(p, edits)
    for k in p:
        assert edited[k].dtype == p[k].dtype and np.array_equal(edited[k], p[k])
    assert np.array_equal(activations(net, X, edited)["A3"], activations(net, X, p)["A3"])


def test_apply_never_writes_into_the_parameters():
    net = network()
    p = read_only(net.params)            # the pretrained network's arrays are read-only: a write raises
    keep = {k: v.copy() for k, v in p.items()}
    edits = [Silence(1, 0), Silence(2, 3), SetWeight(1, 10, 2, 5.0), SetWeight(2, 0, 0, -1.5)]
    edited = apply(p, edits)
    for k in p:
        assert np.array_equal(p[k], keep[k])
    assert edited is not p
    assert edited["W2"] is not p["W2"] and edited["W3"] is not p["W3"] and edited["W1"] is not p["W1"]
    assert edited["b1"] is p["b1"]      # untouched arrays are shared, not copied
    assert edited["W1"][10, 2] == 5.0 and edited["W2"][0, 0] == -1.5
    assert not edited["W2"][0, 1:].any() and not edited["W3"][3].any()   # W2[0, 0] was set after
    assert apply(p, []) == p            # no edit: the same arrays


def test_edits_apply_in_order():
    p = network().params
    both = apply(p, [Silence(1, 2), SetWeight(2, 2, 4, 0.7)])
    assert both["W2"][2, 4] == 0.7 and not np.delete(both["W2"][2], 4).any()
    assert not apply(p, [SetWeight(2, 2, 4, 0.7), Silence(1, 2)])["W2"][2].any()


@pytest.mark.parametrize("edit, words", [
    (Silence(0, 1), "hidden neurons"), (Silence(3, 1), "hidden neurons"), (Silence(1, 12), "0 to 11"),
    (Silence(2, -1), "0 to 8"), (SetWeight(4, 0, 0, 1.0), "W1 to W3"), (SetWeight(1, 784, 0, 1.0), "784×12"),
    (SetWeight(3, 0, 10, 1.0), "9×10"), (SetWeight(1, 0, 0, float("nan")), "between"),
    (SetWeight(1, 0, 0, float("inf")), "between"), (SetWeight(1, 0, 0, 2 * MAX_WEIGHT), "between"),
])
def test_edits_that_do_not_fit_the_network_are_refused(edit, words):
    p = read_only(network().params)
    with pytest.raises(ValueError, match=words):
        check(edit, SIZES)
    with pytest.raises(ValueError, match=words):
        apply(p, [Silence(1, 0), edit])
    with pytest.raises(TypeError):
        check("W1[0, 0] = 1", SIZES)


def test_one_set_weight_matches_a_forward_pass_by_hand():
    net = network()
    X, _ = images(5)
    W2 = net.params["W2"].copy()
    W2[3, 6] = 2.5
    by_hand = hand_forward(net, X, {**net.params, "W2": W2})
    np.testing.assert_allclose(activations(net, X, apply(net.params, [SetWeight(2, 3, 6, 2.5)]))["A3"], by_hand,
                               rtol=1e-10, atol=1e-13)


def test_compare_scores_before_and_after():
    net = network()
    X, y = images(60)
    y = activations(net, X)["A3"].argmax(1)        # labels it gets all right before
    y[:6] = (y[:6] + 1) % 10                        # and six it gets wrong
    edits = [Silence(2, j) for j in range(SIZES[2])]
    before, after = compare(net, net.params, edits, X, y)
    assert before.accuracy == pytest.approx(54 / 60)
    np.testing.assert_array_equal(before.proba, activations(net, X)["A3"])
    # all images get one answer: recall 1 for that digit (if present), 0 for the others
    d = int(after.pred[0])
    assert (after.pred == d).all()
    assert after.accuracy == pytest.approx((y == d).mean())
    present = np.bincount(y, minlength=10) > 0
    assert np.isnan(after.recall[~present]).all()
    assert after.recall[d] == (1.0 if present[d] else after.recall[d])
    assert (after.recall[present & (np.arange(10) != d)] == 0).all()
    assert outcome(net, net.params, X, y).accuracy == before.accuracy


def test_silenced_lists_a_layers_silenced_neurons_and_sizes_are_read_from_the_shapes():
    edits = [Silence(1, 5), SetWeight(2, 1, 1, 0.0), Silence(2, 1), Silence(1, 2), Silence(1, 5)]
    assert silenced(edits, 1) == [2, 5] and silenced(edits, 2) == [1]
    assert sizes_of(network().params) == list(SIZES)
