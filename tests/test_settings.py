"""The one table of settings: the same validation for links, checkpoints, the sidebar and the command line."""
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import pytest

from core.engine.network import MAX_HIDDEN_LAYERS, MAX_UNITS, MLP, N_CLASSES, N_PIXELS
from core.lab import checkpoint
from core.lab.settings import FIELDS, MAX_STEPS, MNIST_IMAGES, Settings, most_epochs

ROOT = Path(__file__).resolve().parent.parent


def small_settings(**kw):
    return replace(Settings(pool=3000, val=500, hidden=(32, 16)), **kw)


def within_the_widgets(s: Settings) -> bool:
    """What the sidebar's widgets can show: every number inside its field's limits, every choice offered."""
    for name, f in FIELDS.items():
        v = getattr(s, name)
        if f.choices:
            if v not in f.choices:
                return False
        elif name == "hidden":
            if not (1 <= len(v) <= MAX_HIDDEN_LAYERS and all(f.lo <= h <= f.hi for h in v)):
                return False
        elif not f.lo <= v <= f.hi:
            return False
    return True


def test_every_setting_is_declared_once_in_the_table():
    assert tuple(FIELDS) == tuple(f.name for f in fields(Settings))


def test_defaults_are_the_seed_protocol():
    s = Settings()
    assert (s.hidden, s.activation, s.init, s.optimizer, s.lr, s.batch_size, s.epochs, s.pool, s.val) == \
        ((64, 64), "relu", "seed", "sgd", 0.1, 64, 1000, 42_000, 1_000)
    assert s.problems() == [] and within_the_widgets(s)


def test_settings_round_trip_through_the_url():
    s = small_settings(lr=0.05, optimizer="adam", seed=7, activation="tanh")
    q = s.to_query()
    assert q["hidden"] == "32,16" and q["lr"] == "0.05" and "batch_size" not in q  # defaults stay out
    back, notes = Settings.from_query(q)
    assert back == s and notes == []


@pytest.mark.parametrize("query, note", [
    ({"lr": "abc"}, "Ignored lr='abc'"),
    ({"lr": "-1"}, "Learning rate η must be"),
    ({"hidden": "0,64"}, "hidden layers"),
    ({"batch_size": "999999"}, "Batch size m must be"),
    ({"dataset": "../../etc/passwd"}, "Ignored dataset"),
])
def test_bad_links_fall_back_with_a_note(query, note):
    s, notes = Settings.from_query(query)
    assert not s.problems()
    assert any(note in n for n in notes), notes


@pytest.mark.parametrize("query", [
    {"batch_size": "5000"}, {"seed": "3000000000"}, {"seed": "-1"}, {"lr": "1e-7"}, {"lr": "nan"},
    {"lr": "inf"}, {"optimizer": "momentum", "momentum": "0.9995"}, {"epochs": "0"}, {"pool": "70000"},
    {"val": "0"}, {"hidden": "64,64,64,64"}, {"weight_decay": "2"},
])
def test_a_link_never_carries_a_value_the_sidebar_cannot_show(query):
    """These values crashed every page: the sidebar's widgets refuse a value outside their limits."""
    s, notes = Settings.from_query(query)
    assert within_the_widgets(s) and s.problems() == []
    assert notes, "the value was dropped without a word"
    # the rest of the link is kept: only the bad value falls back to its default
    kept, _ = Settings.from_query({**query, "activation": "tanh"})
    assert kept.activation == "tanh"


def test_the_message_for_a_value_out_of_range_is_the_same_everywhere():
    link = Settings.from_query({"batch_size": "5000"})[1]
    direct = replace(Settings(), batch_size=5000).problems()
    assert direct == ["Batch size m must be 1 to 4,096, not 5,000."]
    assert any(direct[0] in n for n in link)
    proc = subprocess.run([sys.executable, "-m", "core.train", "--batch-size", "5000", "--epochs", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and direct[0] in proc.stderr


def test_sizes_are_checked_against_the_images_there_are():
    s = Settings(pool=5000, val=500, batch_size=4096)
    assert s.problems(60_000) == []
    assert s.problems(3000) == ["Image pool (train + validation) must be 2 to 3,000 (the images there are), "
                                "not 5,000."]
    assert replace(s, batch_size=4501).problems() == [
        "Batch size m must be 1 to 4,096, not 4,501."]
    assert Settings(pool=1000, val=1000).problems() == [
        "Held out for validation must be 1 to 999 (fewer than the pool), not 1,000."]
    assert Settings(pool=1000, val=990, batch_size=64).problems() == [
        "Batch size m must be 1 to 10 (the training set), not 64."]


def test_epochs_are_bounded_by_the_steps_a_network_keeps_and_a_link_trains_fewer():
    """Before, 1,000 epochs in batches of 1 passed (41 million steps, past the 9,380,000 a
    checkpoint holds): a run the sidebar, a link or the command line started wrote a file the
    app refused. The bound is the checkpoint loader's MAX_STEPS, read from one place."""
    assert checkpoint.MAX_STEPS == MAX_STEPS == 9_380_000
    one = Settings(batch_size=1)                                  # 41,000 steps an epoch: 228 epochs
    assert one.steps_per_epoch == 41_000 and most_epochs(41_000) == 228
    assert one.problems() == [
        "Epochs must be 1 to 228 with these sizes, not 1,000: 41,000 training images in batches of 1 make "
        "41,000 steps an epoch, and a network takes at most 9,380,000 steps (its checkpoint keeps the loss of "
        "every one)."]
    assert replace(one, epochs=228).problems() == [] and Settings(epochs=10_000).problems() == []
    link, notes = Settings.from_query({"batch_size": "1", "lr": "0.05"})
    assert (link.batch_size, link.epochs, link.lr) == (1, 228, 0.05)
    assert notes[-1] == "The link's epochs were lowered to 228."
    proc = subprocess.run([sys.executable, "-m", "core.train", "--batch-size", "1", "--epochs", "229"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Epochs must be 1 to 228 with these sizes" in proc.stderr
    # a saved network in batches of 1 opens with as many epochs to train to as its sizes allow
    net = {"sizes": [784, 16, 10], "activation": "relu", "init": "seed", "seed": 0, "dtype": "float32"}
    s = Settings.of_network(net, {"optimizer": "sgd", "lr": 0.1}, {"batch_size": 1}, {"pool": 42000, "val": 1000})
    assert s.epochs == 228 and s.problems() == []


def test_model_changes_name_what_needs_a_new_network():
    s = Settings()
    assert s.model_changes(replace(s, lr=0.01, optimizer="adam")) == []
    assert s.model_changes(replace(s, hidden=(32,), seed=1)) == ["hidden", "seed"]


def test_settings_of_a_saved_network():
    net = {"sizes": [784, 128, 10], "activation": "tanh", "init": "he", "seed": 5, "dtype": "float32"}
    s = Settings.of_network(net, {"optimizer": "adam", "lr": 0.001, "weight_decay": 0.0},
                            {"batch_size": 5000}, {"pool": 42000, "val": 1000})
    assert (s.hidden, s.activation, s.init, s.seed, s.optimizer, s.lr) == ((128,), "tanh", "he", 5, "adam", 0.001)
    assert s.problems() == ["Batch size m must be 1 to 4,096, not 5,000."]


@pytest.mark.parametrize("page", ["pages/home.py", "pages/stepper.py", "pages/training.py", "pages/inspect.py"])
def test_pages_open_from_a_link_with_values_out_of_range(page):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    for k, v in {"batch_size": "5000", "seed": "-1", "lr": "1e-7", "optimizer": "momentum",
                 "momentum": "0.9995"}.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(c.value for c in at.caption)
    assert "Batch size m must be 1 to 4,096" in shown and "Momentum μ must be 0 to 0" in shown


def test_the_settings_offer_exactly_the_networks_the_engine_builds_on_the_shipped_images(mnist):
    largest = (MAX_UNITS,) * MAX_HIDDEN_LAYERS
    assert not Settings(hidden=largest).problems()
    MLP([N_PIXELS, *largest, N_CLASSES])
    for too_big in ((MAX_UNITS,) * (MAX_HIDDEN_LAYERS + 1), (MAX_UNITS + 1,)):
        assert Settings(hidden=too_big).problems()
        with pytest.raises(ValueError):
            MLP([N_PIXELS, *too_big, N_CLASSES])
    assert mnist["train"].X.shape == (MNIST_IMAGES, N_PIXELS) and set(mnist["train"].y) == set(range(N_CLASSES))
