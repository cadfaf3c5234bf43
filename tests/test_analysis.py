"""core/engine/metrics.py: the numbers the inspection pages show."""
import io

import numpy as np
import pandas as pd
import pytest

from core.engine.metrics import (Memo, activations, by_class, confusion_matrix, extremes, firing_rate,
                           logit_contributions, mistakes, neuron_order, pca, precision_recall, row_normalise,
                           submission_csv, top_k)
from core.engine.network import MLP


def test_confusion_matrix_sums_to_n_and_matches_a_naive_loop():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 500)
    pred = np.where(rng.random(500) < 0.7, y, rng.integers(0, 10, 500))
    cm = confusion_matrix(y, pred)
    naive = np.zeros((10, 10), int)
    for t, p in zip(y, pred):
        naive[t, p] += 1
    np.testing.assert_array_equal(cm, naive)
    assert cm.sum() == len(y)
    assert np.trace(cm) == int((y == pred).sum())


def test_confusion_matrix_refuses_mismatched_lengths():
    with pytest.raises(ValueError):
        confusion_matrix([1, 2, 3], [1, 2])


def test_precision_and_recall_on_a_hand_made_example():
    # three classes: true 0 0 0 1 1 2, predicted 0 0 1 1 2 2
    y = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 2, 2])
    cm = confusion_matrix(y, pred, n_classes=3)
    np.testing.assert_array_equal(cm, [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    pr = precision_recall(cm)
    np.testing.assert_allclose(pr["precision"], [2 / 2, 1 / 2, 1 / 2])
    np.testing.assert_allclose(pr["recall"], [2 / 3, 1 / 2, 1 / 1])
    np.testing.assert_allclose(pr["f1"], [0.8, 0.5, 2 / 3])
    np.testing.assert_array_equal(pr["support"], [3, 2, 1])


def test_precision_is_undefined_not_zero_for_a_class_never_predicted():
    cm = confusion_matrix([0, 1, 2], [0, 0, 0], n_classes=3)
    pr = precision_recall(cm)
    assert np.isnan(pr["precision"][1]) and np.isnan(pr["precision"][2])
    assert pr["recall"][1] == 0


def test_row_normalise_gives_shares_and_keeps_empty_rows_zero():
    cm = np.array([[3, 1, 0], [0, 0, 0], [1, 1, 2]])
    r = row_normalise(cm)
    np.testing.assert_allclose(r.sum(axis=1), [1, 0, 1])
    np.testing.assert_allclose(r[0], [0.75, 0.25, 0])


def test_top_k_and_mistakes_most_confident_first():
    proba = np.array([[0.1, 0.8, 0.1],    # 0: true 0, says 1 at 0.8  (mistake)
                      [0.7, 0.2, 0.1],    # 1: true 0, says 0          (right)
                      [0.3, 0.3, 0.4],    # 2: true 1, says 2 at 0.4  (mistake)
                      [0.05, 0.0, 0.95]])  # 3: true 0, says 2 at 0.95 (mistake)
    y = np.array([0, 0, 1, 0])
    pred = proba.argmax(1)
    np.testing.assert_array_equal(mistakes(y, pred, proba), [3, 0, 2])
    np.testing.assert_array_equal(mistakes(y, pred, proba, most_confident_first=False), [2, 0, 3])
    np.testing.assert_array_equal(mistakes(y, pred, proba, true_class=0), [3, 0])
    np.testing.assert_array_equal(mistakes(y, pred, proba, pred_class=2), [3, 2])
    np.testing.assert_array_equal(mistakes(y, pred, proba, true_class=1, pred_class=1), [])
    idx, p = top_k(proba, 2)
    np.testing.assert_array_equal(idx[:, 0], pred)
    np.testing.assert_allclose(p[3], [0.95, 0.05])
    assert (np.diff(p, axis=1) <= 0).all()


def test_pca_finds_a_known_direction():
    rng = np.random.default_rng(1)
    d = np.array([3.0, 4.0, 0.0, 0.0]) / 5
    e = np.array([0.0, 0.0, 1.0, 1.0]) / np.sqrt(2)
    t, s = rng.normal(0, 5, 2000), rng.normal(0, 1, 2000)
    X = 7 + np.outer(t, d) + np.outer(s, e) + rng.normal(0, 0.05, (2000, 4))
    fit = pca(X, 2)
    # the first axis is d (up to sign, fixed so its largest loading is positive), the second is e
    np.testing.assert_allclose(fit.components[0], d, atol=0.01)
    np.testing.assert_allclose(fit.components[1], e, atol=0.02)
    np.testing.assert_allclose(fit.components @ fit.components.T, np.eye(2), atol=1e-10)
    assert fit.explained[0] > 0.9 and fit.explained.sum() > 0.99
    np.testing.assert_allclose(fit.coords.var(axis=0), fit.variance, rtol=1e-9)
    np.testing.assert_allclose(fit.transform(X), fit.coords, atol=1e-9)
    # the coordinates are what they should be: the projection of the centred data
    np.testing.assert_allclose(fit.coords[:, 0], (X - X.mean(0)) @ fit.components[0], atol=1e-9)


def test_pca_sign_does_not_depend_on_row_order():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 5)) * [5, 3, 1, 1, 1]
    a, b = pca(X), pca(X[::-1])
    np.testing.assert_allclose(a.components, b.components, atol=1e-9)


def test_pca_of_one_column_still_gives_two_coordinates():
    fit = pca(np.arange(10.0)[:, None])
    assert fit.coords.shape == (10, 2)
    assert (fit.coords[:, 1] == 0).all()


def small_net(seed=0):
    net = MLP([784, 16, 12, 10], init="he", seed=seed)
    rng = np.random.default_rng(seed)
    net.params = {k: v + 0.1 * rng.standard_normal(v.shape).astype(v.dtype) for k, v in net.params.items()}
    return net


def test_logit_contributions_add_up_to_the_logit_the_network_computed():
    net = small_net()
    X = np.random.default_rng(3).integers(0, 256, (5, 784), dtype=np.uint8)
    v = activations(net, X)
    for i in range(5):
        for c in (0, 7):
            terms = logit_contributions(v["A2"][i], net.params["W3"], c)
            assert terms.shape == (12,)
            assert terms.sum() + net.params["b3"][c] == pytest.approx(float(v["Z3"][i, c]), rel=1e-4, abs=1e-4)


def test_activations_are_the_networks_own_forward_pass():
    net = small_net(1)
    X = np.random.default_rng(4).integers(0, 256, (7, 784), dtype=np.uint8)
    v = activations(net, X)
    ref = net.forward(X.astype(np.float32) / 255)
    for k in ("Z1", "A1", "Z2", "A2", "Z3", "A3"):
        np.testing.assert_allclose(v[k], ref[k], rtol=1e-6, atol=1e-6)
    assert "X" not in v and "X" in activations(net, X, keep_input=True)


def test_firing_rate_order_extremes_and_by_class():
    Z = np.array([[1.0, -1, 0], [2, -1, 0], [-1, -1, 3], [1, -2, 0]])
    np.testing.assert_allclose(firing_rate(Z), [0.75, 0, 0.25])
    W = np.array([[3.0, 0, 1], [4, 1, 0]])  # column norms 5, 1, 1
    np.testing.assert_array_equal(neuron_order(W, by="norm"), [0, 1, 2])
    np.testing.assert_array_equal(neuron_order(W, firing_rate(Z), by="firing"), [0, 2, 1])
    np.testing.assert_array_equal(neuron_order(W), [0, 1, 2])
    with pytest.raises(ValueError):
        neuron_order(W, by="firing")
    top, bottom = extremes(np.array([0.5, -2, 3, 1]), 2)
    np.testing.assert_array_equal(top, [2, 3])
    np.testing.assert_array_equal(bottom, [1, 0])
    groups = by_class(np.array([1.0, 2, 3, 4]), np.array([1, 0, 1, 3]), 4)
    assert [g.tolist() for g in groups] == [[2.0], [1.0, 3.0], [], [4.0]]


def test_submission_csv_is_kaggles_format():
    data = submission_csv(np.array([3, 0, 9, 1]))
    df = pd.read_csv(io.BytesIO(data))
    assert list(df.columns) == ["ImageId", "Label"]
    assert df["ImageId"].tolist() == [1, 2, 3, 4]
    assert df["Label"].tolist() == [3, 0, 9, 1]
    with pytest.raises(ValueError):
        submission_csv(np.array([1, 10]))


def test_memo_recomputes_only_for_other_objects():
    memo, calls = Memo(size=2), []
    p1, p2 = {"W1": np.zeros(2)}, {"W1": np.zeros(2)}  # equal values, different objects

    def f(tag):
        calls.append(tag)
        return tag

    assert memo.get("a", (p1,), lambda: f(1)) == 1
    assert memo.get("a", (p1,), lambda: f(2)) == 1      # same object: remembered
    assert memo.get("a", (p2,), lambda: f(3)) == 3      # another object: computed again
    memo.get("b", (p1,), lambda: f(4))
    memo.get("a", (p2,), lambda: f(5))                   # a hit makes "a" the most recent
    memo.get("c", (p1,), lambda: f(6))                   # full: "b", the least recent, goes
    assert len(memo) == 2
    memo.get("b", (p1,), lambda: f(7))
    assert calls == [1, 3, 4, 6, 7]
