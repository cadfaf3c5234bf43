"""The inspection pages in AppTest, on a briefly trained network with an unusual
shape (48 and 32 hidden units), so nothing can pass by assuming the seed's 64:
what the pages show must be what the engine computes."""
import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from core.engine.metrics import activations, confusion_matrix
from core.data.kaggle_csv import load_csv
from core.data.mnist import load_mnist
from core.engine.trainer import evaluate
from core.teach.surgery import SetWeight, Silence, compare
from core.lab.settings import Settings
from core.lab.workspace import Workspace
from ui.state import session

ROOT = Path(__file__).resolve().parent.parent
HIDDEN = (48, 32)


@pytest.fixture(scope="module")
def trained():
    m = load_mnist()
    ws = Workspace(Settings(hidden=HIDDEN, pool=3000, val=500, init="he"), m["train"], m["test"])
    ws.trainer.run(6)           # ~90% on validation, with snapshots at epochs 0, 1, 2, 5
    return ws


def open_page(ws, page: str, kaggle_csv=None, **widgets) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.run()
    state = session(at.session_state)
    state.ws, state.kaggle.csv = ws, kaggle_csv
    for k, v in widgets.items():
        at.session_state[k] = v
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def chart(at: AppTest, key: str) -> dict:
    """The plotly figure (as JSON) of the chart with this key."""
    for el in at.get("plotly_chart"):
        if el.proto.id.endswith("-" + key):
            return json.loads(el.proto.spec)
    raise AssertionError(f"no chart {key!r}; have {[el.proto.id.split('-')[-1] for el in at.get('plotly_chart')]}")


def arr(x) -> np.ndarray:
    """A figure's array: a list, or plotly's typed-array form {"dtype", "bdata"[, "shape"]}."""
    if isinstance(x, dict) and "bdata" in x:
        a = np.frombuffer(base64.b64decode(x["bdata"]), np.dtype(x["dtype"]))
        return a.reshape([int(n) for n in str(x["shape"]).split(",")]) if "shape" in x else a
    return np.asarray(x)


def validation(ws):
    s = ws.split
    return s.source.X[s.val_idx], s.source.y[s.val_idx]


# --------------------------------------------------------------------------- What it learned
def test_neuron_grid_shows_every_first_layer_neuron(trained):
    at = open_page(trained, "pages/inspect.py")
    fig = chart(at, "neuron_grid")
    ids = fig["data"][-1]["customdata"]           # one clickable marker per neuron picture
    assert sorted(ids) == list(range(HIDDEN[0]))
    assert len(fig["layout"]["annotations"]) == HIDDEN[0]
    # the captions' firing rates are the engine's
    X, _ = validation(trained)
    rates = (activations(trained.net, X)["Z1"] > 0).mean(0)
    for j, ann in zip(ids, fig["layout"]["annotations"]):
        text = ann["text"]
        assert text.startswith(f"{j}")
        assert ("dead" in text) == (rates[j] == 0)
        if rates[j] > 0:
            assert text.endswith(f"{rates[j]:.0%}")


def test_with_batch_norm_a_neuron_fires_when_N1_is_positive_not_Z1():
    m = load_mnist()
    ws = Workspace(Settings(hidden=HIDDEN, pool=3000, val=500, batchnorm=True), m["train"], m["test"])
    ws.trainer.run(1)
    at = open_page(ws, "pages/inspect.py")
    fig = chart(at, "neuron_grid")
    X, _ = validation(ws)
    v = activations(ws.net, X)
    rates = (v["N1"] > 0).mean(0)
    assert not np.array_equal(rates, (v["Z1"] > 0).mean(0))     # the two differ: the test can tell them apart
    ids = fig["data"][-1]["customdata"]
    for j, ann in zip(ids, fig["layout"]["annotations"]):
        assert ("dead" in ann["text"]) == (rates[j] == 0)
        if rates[j] > 0:
            assert ann["text"].endswith(f"{rates[j]:.0%}")
    assert "fires (N1 > 0)" in json.dumps(fig)


def test_neuron_order_by_weight_norm(trained):
    at = open_page(trained, "pages/inspect.py")
    at.radio(key="neuron_order").set_value("norm").run()
    ids = chart(at, "neuron_grid")["data"][-1]["customdata"]
    norms = np.linalg.norm(trained.net.params["W1"], axis=0)
    assert list(ids) == list(np.argsort(-norms, kind="stable"))


def test_one_image_shows_the_engines_prediction_and_logit(trained):
    X, y = validation(trained)
    i = 7
    at = open_page(trained, "pages/inspect.py", probe_index=i)
    v = activations(trained.net, X[i:i + 1])
    pred = int(v["A3"][0].argmax())
    said = [m.value for m in at.markdown if m.value.startswith("Validation image")][0]
    assert f"a **{y[i]}**" in said and f"The network says **{pred}**" in said
    total = float(re.findall(r"= (-?[\d.]+)$", at.latex[1].value.strip("$\n"))[0])
    assert total == pytest.approx(float(v["Z3"][0, pred]), abs=2e-3)
    probs = arr(chart(at, "probe_proba")["data"][0]["y"])
    np.testing.assert_allclose(probs, v["A3"][0], atol=1e-6)


def metric(at: AppTest, label: str):
    return next(m for m in at.metric if m.label == label)


def test_edit_the_network_silences_neurons_on_a_copy_and_undoes(trained):
    X, y = validation(trained)
    i = 11
    params = trained.net.params
    keep = {k: v.copy() for k, v in params.items()}
    at = open_page(trained, "pages/inspect.py", probe_index=i)
    before = compare(trained.net, params, [], X, y)[0]
    assert metric(at, "Validation accuracy after the edits").value == f"{before.accuracy:.1%}"
    assert metric(at, "Before").value == f"{before.accuracy:.1%}"

    # silence three neurons of A2 (the layer has 32: a 48 would be refused)
    at.selectbox(key="edit_layer").set_value(2).run()
    at.multiselect(key="edit_units").set_value([0, 5, 31]).run()
    at.button(key="edit_silence_btn").click().run()
    assert not at.exception, [e.message for e in at.exception]
    edits = (Silence(2, 0), Silence(2, 5), Silence(2, 31))
    assert session(at.session_state).network_edits.edits == edits
    was, after = compare(trained.net, params, edits, X, y)
    assert after.accuracy != was.accuracy           # these neurons matter to the trained network
    m = metric(at, "Validation accuracy after the edits")
    assert m.value == f"{after.accuracy:.1%}"
    assert m.delta == f"{(after.accuracy - was.accuracy) * 100:+.1f} points"
    recall = chart(at, "edit_recall")["data"]
    np.testing.assert_allclose(arr(recall[0]["y"]).astype(float), was.recall, equal_nan=True)
    np.testing.assert_allclose(arr(recall[1]["y"]).astype(float), after.recall, equal_nan=True)
    proba = chart(at, "edit_proba")["data"]           # the image picked in "One image through the network"
    np.testing.assert_allclose(arr(proba[0]["y"]), was.proba[i], atol=1e-6)
    np.testing.assert_allclose(arr(proba[1]["y"]), after.proba[i], atol=1e-6)
    assert at.multiselect(key="edit_units").value == []
    assert 0 not in at.multiselect(key="edit_units").options and "1" in at.multiselect(key="edit_units").options

    # then a weight, shown with its value, and undo it
    at.radio(key="edit_what").set_value("weight").run()
    at.selectbox(key="edit_w_layer").set_value(3).run()
    at.number_input(key="edit_w_i").set_value(7).run()
    at.number_input(key="edit_w_j").set_value(4).run()
    assert any(f"`W3[7, 4]` is **{float(params['W3'][7, 4]):+.4f}**" in md.value for md in at.markdown)
    at.number_input(key="edit_w_value").set_value(-40.0).run()
    at.button(key="edit_weight_btn").click().run()
    edits2 = edits + (SetWeight(3, 7, 4, -40.0),)
    assert session(at.session_state).network_edits.edits == edits2
    assert metric(at, "Validation accuracy after the edits").value == \
        f"{compare(trained.net, params, edits2, X, y)[1].accuracy:.1%}"
    at.button(key="edit_undo").click().run()
    assert session(at.session_state).network_edits.edits == edits
    assert metric(at, "Validation accuracy after the edits").value == f"{after.accuracy:.1%}"

    at.button(key="edit_undo_all").click().run()
    assert session(at.session_state).network_edits.edits == ()
    m = metric(at, "Validation accuracy after the edits")
    assert m.value == f"{before.accuracy:.1%}" and not m.delta
    np.testing.assert_array_equal(arr(chart(at, "edit_proba")["data"][1]["y"]), arr(chart(at, "edit_proba")["data"][0]["y"]))
    # the session's network was never touched
    assert trained.net.params is params
    for k in keep:
        assert np.array_equal(params[k], keep[k])


def test_the_open_neuron_can_be_added_and_edits_are_forgotten_with_another_network(trained):
    at = open_page(trained, "pages/inspect.py", neuron=1)
    at.button(key="edit_add_open").click().run()        # the neuron open in the grid above
    assert at.multiselect(key="edit_units").value == [1]
    at.button(key="edit_silence_btn").click().run()
    assert session(at.session_state).network_edits.edits == (Silence(1, 1),)
    m = load_mnist()
    other = Workspace(Settings(hidden=(20,), pool=1500, val=300), m["train"], m["test"])
    session(at.session_state).ws = other
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert session(at.session_state).network_edits.edits == ()
    assert metric(at, "Validation accuracy after the edits").delta == ""


def test_pca_pictures_cover_the_validation_images(trained):
    at = open_page(trained, "pages/inspect.py")
    _, y = validation(trained)
    for name in ("X", "A1", "A2"):
        fig = chart(at, f"pca_{name}")
        ids = sorted(int(cd[0]) for trace in fig["data"] for cd in trace["customdata"])
        assert ids == list(range(len(y)))
        for trace in fig["data"]:   # each trace is one true digit
            assert {int(cd[1]) for cd in trace["customdata"]} == {int(trace["name"])}


# --------------------------------------------------------------------------- Where it fails
def confusion_counts(fig) -> np.ndarray:
    cm = np.zeros((10, 10), int)
    for ann in fig["layout"]["annotations"]:
        cm[int(ann["y"]), int(ann["x"])] = int(ann["text"])
    return cm


def test_confusion_matrix_is_the_engines_and_sums_to_the_images(trained):
    at = open_page(trained, "pages/evaluate.py")
    X, y = validation(trained)
    cm = confusion_counts(chart(at, "cm_chart"))
    assert cm.sum() == len(y)
    np.testing.assert_array_equal(cm, confusion_matrix(y, evaluate(trained.net, X, y)["pred"]))
    at.radio(key="eval_set").set_value("test").run()
    cm = confusion_counts(chart(at, "cm_chart"))
    assert cm.sum() == len(trained.split.test) == 10_000


def test_accuracy_follows_the_chosen_snapshot(trained):
    at = open_page(trained, "pages/evaluate.py")
    X, y = validation(trained)
    box = [s for s in at.selectbox if s.label == "Network at"][0]
    box.set_value(1).run()
    want = evaluate(trained.net, X, y, trained.trainer.snapshots[1])["acc"]
    assert at.metric[0].value == f"{want:.2%}"
    cm = confusion_counts(chart(at, "cm_chart"))
    np.testing.assert_array_equal(cm, confusion_matrix(y, evaluate(trained.net, X, y,
                                                                    trained.trainer.snapshots[1])["pred"]))
    for key in ("eval_loss", "eval_acc"):      # the curves mark the snapshot's epoch
        assert any(s.get("line", {}).get("dash") == "dot" and s["x0"] == 1 for s in chart(at, key)["layout"]["shapes"])


def mistakes_table(at) -> pd.DataFrame:
    for df in at.dataframe:
        if "predicted" in df.value.columns:
            return df.value
    raise AssertionError("no mistakes table")


def test_mistakes_gallery_holds_only_misclassified_images(trained):
    at = open_page(trained, "pages/evaluate.py")
    at.select_slider(key="mis_n").set_value(96).run()
    X, y = validation(trained)
    r = evaluate(trained.net, X, y)
    table = mistakes_table(at)
    assert len(table) == min(96, int((r["pred"] != y).sum())) > 0
    idx = table["image"].to_numpy()
    np.testing.assert_array_equal(table["true"], y[idx])
    np.testing.assert_array_equal(table["predicted"], r["pred"][idx])
    assert (table["true"] != table["predicted"]).all()
    assert (np.diff(table["probability"]) <= 1e-7).all()          # most confident first
    assert chart(at, "mis_grid")["data"][-1]["customdata"] == idx.tolist()
    # filtering by a true digit keeps only that digit's mistakes
    worst = int(np.bincount(y[r["pred"] != y], minlength=10).argmax())
    at.selectbox(key="mis_true").set_value(worst).run()
    table = mistakes_table(at)
    assert (table["true"] == worst).all() and (table["predicted"] != worst).all()
    assert len(table) == min(96, int(((r["pred"] != y) & (y == worst)).sum()))


def test_curves_show_the_runs_history_and_the_seed_line(trained):
    at = open_page(trained, "pages/evaluate.py")
    fig = chart(at, "eval_acc")     # the training page's figures, in percent
    val = next(t for t in fig["data"] if t["name"] == "validation")["y"]
    np.testing.assert_allclose(arr(val), trained.history.column("val_acc") * 100)
    assert any(s.get("line", {}).get("dash") == "dash" and s["y0"] == 97.7 for s in fig["layout"]["shapes"])
    loss = next(t for t in chart(at, "eval_loss")["data"] if t["name"] == "validation")["y"]
    np.testing.assert_allclose(arr(loss), trained.history.column("val_loss"))


# --------------------------------------------------------------------------- Kaggle
def kaggle_csv(X, y=None) -> bytes:
    cols = ([] if y is None else ["label"]) + [f"pixel{i}" for i in range(784)]
    rows = X if y is None else np.column_stack([y, X])
    return (",".join(cols) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n").encode()


@pytest.fixture
def downloads(monkeypatch):
    """What the page's download buttons would serve."""
    got = {}
    add = MediaFileManager.add

    def capture(self, data, mimetype, coordinates, file_name=None, **kw):
        got[file_name] = data
        return add(self, data, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add", capture)
    return got


def test_submission_csv_for_an_unlabelled_test_file(trained, downloads):
    X = load_mnist()["test"].X[:123]
    at = open_page(trained, "pages/kaggle.py", kaggle_csv=load_csv(kaggle_csv(X), require_labels=None))
    data = downloads["submission.csv"]
    assert data == session(at.session_state).kaggle.submission
    sub = pd.read_csv(io.BytesIO(data))
    assert list(sub.columns) == ["ImageId", "Label"]
    assert len(sub) == 123 and sub["ImageId"].tolist() == list(range(1, 124))
    assert sub["Label"].between(0, 9).all()
    np.testing.assert_array_equal(sub["Label"], evaluate(trained.net, X, None)["pred"])
    assert not at.metric            # no labels, no accuracy
    assert any(c.value == f"123 rows plus the header, {len(data):,} bytes." for c in at.caption)   # not "1 kB"


def test_a_labelled_file_is_predicted_and_scored(trained, downloads):
    m = load_mnist()["test"]
    X, y = m.X[200:260], m.y[200:260]
    at = open_page(trained, "pages/kaggle.py", kaggle_csv=load_csv(kaggle_csv(X, y), require_labels=None))
    assert at.metric[0].value == f"{evaluate(trained.net, X, y)['acc']:.2%}"
    assert len(pd.read_csv(io.BytesIO(downloads["submission.csv"]))) == 60


def test_kaggle_page_without_a_file_waits_for_one(trained):
    at = open_page(trained, "pages/kaggle.py")
    assert session(at.session_state).kaggle.submission is None
    assert not at.get("download_button")


# --------------------------------------------------------------------------- Draw
def test_draw_page_asks_for_a_digit(trained):
    at = open_page(trained, "pages/draw.py")
    assert any("Draw a digit" in i.value for i in at.info)
    assert session(at.session_state).drawn_digit is None


@pytest.fixture(scope="module")
def trained_bn():
    m = load_mnist()
    ws = Workspace(Settings(hidden=HIDDEN, pool=3000, val=500, batchnorm=True), m["train"], m["test"])
    ws.trainer.run(1)
    return ws


@pytest.mark.parametrize("network", ["trained", "trained_bn"])
def test_a_drawn_digit_goes_through_the_network(network, request, monkeypatch):
    """The canvas is replaced by one that returns a big MNIST 3 drawn in white on a
    transparent 280×280 RGBA picture, as the real canvas does. With batch norm, N1 (normalised by
    the running statistics) is shown between Z1 and A1."""
    trained = request.getfixturevalue(network)
    import sys
    import types

    from core.data.preprocess import gray_from_rgba, mnist_style, resize_area

    digit = load_mnist()["test"].X[18].reshape(28, 28)
    rgba = np.zeros((280, 280, 4), np.uint8)
    big = resize_area(digit.astype(float), 180, 180)
    rgba[40:220, 60:240, :3] = 255
    rgba[40:220, 60:240, 3] = big.round().clip(0, 255).astype(np.uint8)

    class Drawn:
        image_data = rgba

    fake = types.ModuleType("streamlit_drawable_canvas")
    fake.st_canvas = lambda **kw: Drawn()
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", fake)
    at = open_page(trained, "pages/draw.py")
    img = mnist_style(gray_from_rgba(rgba))
    np.testing.assert_array_equal(session(at.session_state).drawn_digit, img)
    v = activations(trained.net, img[None])
    pred = int(v["A3"][0].argmax())
    assert any(m.value == f"### It reads a **{pred}**" for m in at.markdown)
    np.testing.assert_allclose(arr(chart(at, "draw_proba")["data"][0]["y"]), v["A3"][0], atol=1e-6)
    np.testing.assert_allclose(arr(chart(at, "draw_Z1")["data"][0]["z"]).ravel(), v["Z1"][0], atol=1e-5)
    keys = [el.proto.id.split("-")[-1] for el in at.get("plotly_chart")]
    assert ("draw_N1" in keys) == trained.net.batchnorm and "draw_A1" in keys
    if trained.net.batchnorm:
        np.testing.assert_allclose(arr(chart(at, "draw_N1")["data"][0]["z"]).ravel(), v["N1"][0], atol=1e-5)
        assert not np.allclose(v["N1"][0], v["Z1"][0])


# --------------------------------------------------------------------------- any architecture
@pytest.mark.parametrize("hidden, activation", [((20,), "sigmoid"), ((24, 16, 12), "leaky_relu")])
def test_pages_work_for_other_architectures(hidden, activation):
    m = load_mnist()
    ws = Workspace(Settings(hidden=hidden, activation=activation, init="he", pool=1500, val=300),
                   m["train"], m["test"])
    ws.trainer.run(1)
    at = open_page(ws, "pages/inspect.py", probe_index=299)
    assert sorted(chart(at, "neuron_grid")["data"][-1]["customdata"]) == list(range(hidden[0]))
    for name in ["X"] + [f"A{l}" for l in range(1, len(hidden) + 1)]:
        chart(at, f"pca_{name}")
    at.selectbox(key="edit_layer").set_value(len(hidden)).run()     # the last hidden layer, silenced whole
    at.multiselect(key="edit_units").set_value(list(range(hidden[-1]))).run()
    at.button(key="edit_silence_btn").click().run()
    assert not at.exception, [e.message for e in at.exception]
    p1 = arr(chart(at, "edit_proba")["data"][1]["y"])
    assert len(set(np.round(arr(chart(at, "edit_recall")["data"][1]["y"]).astype(float), 6)) - {np.nan}) <= 2
    X, y = validation(ws)
    after = compare(ws.net, ws.net.params, [Silence(len(hidden), j) for j in range(hidden[-1])], X, y)[1]
    np.testing.assert_allclose(after.proba, np.broadcast_to(after.proba[0], after.proba.shape), atol=1e-6)
    np.testing.assert_allclose(p1, after.proba[299], atol=1e-6)
    at = open_page(ws, "pages/evaluate.py")
    assert confusion_counts(chart(at, "cm_chart")).sum() == 300
