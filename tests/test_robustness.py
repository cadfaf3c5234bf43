"""Robustness, end to end in AppTest: bad files through the real upload widgets,
settings out of range, training that explodes, an abandoned run, and two users
training at once.

Every upload goes through ``st.file_uploader`` (AppTest drives it in Streamlit
1.67) and so through ui/uploads.py and the engine's loaders. For each file the
test asserts the message on screen (what is wrong, where, and that nothing
changed) and that the session's network, history, settings and earlier upload
are exactly what they were.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import struct
import subprocess
import sys
import time
import tomllib
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import ui.uploads
from core.data import kaggle_csv as csv_data
from core.lab import checkpoint
from core.lab.run.controller import DIVERGED, DONE, PAUSED
from core.engine.history import History
from core.engine.trainer import Trainer
from core.lab.settings import Settings
from core.lab.workspace import Workspace
from ui.text import plain
from ui.state import session

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
SMALL = {"pool": "3000", "val": "500"}          # 2,500 training images → 40 steps per epoch
HEAD = ["label"] + [f"pixel{i}" for i in range(784)]


# --------------------------------------------------------------------------- helpers
def open_app(query: dict | None = None, page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in {**SMALL, **(query or {})}.items():
        at.query_params[k] = str(v)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click()
    return rerun(at)


def unplain(markdown: str) -> str:
    """The text a reader sees for markdown made by ui.text.plain (backslash escapes removed)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def poll(at: AppTest, done, timeout: float = 300.0) -> None:   # a state, with room for a busy machine
    """Rerun the page (as its live fragment does) until ``done()``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        time.sleep(0.2)
        rerun(at)
        if done():
            return
    raise AssertionError("the page never got there")


def state_of(at: AppTest) -> dict:
    ws = session(at.session_state).ws
    return {"ws": ws, "trainer": ws.trainer, "params": ws.net.params,
            "values": {k: v.copy() for k, v in ws.net.params.items()}, "global_step": ws.trainer.global_step,
            "epochs": len(ws.history), "step_losses": len(ws.history.step_loss), "settings": ws.settings,
            "upload": session(at.session_state).upload.digits}


def assert_unchanged(at: AppTest, before: dict) -> None:
    ws = session(at.session_state).ws
    assert ws is before["ws"] and ws.trainer is before["trainer"], "the workspace was replaced"
    assert ws.net.params is before["params"], "the parameters were replaced"
    for k, v in before["values"].items():
        np.testing.assert_array_equal(ws.net.params[k], v, err_msg=f"{k} was written into")
    assert ws.trainer.global_step == before["global_step"]
    assert len(ws.history) == before["epochs"] and len(ws.history.step_loss) == before["step_losses"]
    assert ws.settings == before["settings"]
    now = session(at.session_state).upload.digits
    assert now is before["upload"], "the earlier upload was replaced"


def csv_bytes(X, y=None, head=HEAD, sep=",", nl="\n") -> bytes:
    rows = [[int(a), *map(int, b)] for a, b in zip(y, X)] if y is not None else [list(map(int, b)) for b in X]
    return csv_text(rows, head if y is not None else head[1:], sep, nl)


def csv_text(rows, head=HEAD, sep=",", nl="\n") -> bytes:
    return (nl.join([sep.join(head)] + [sep.join(map(str, r)) for r in rows]) + nl).encode()


def rows_of(mnist, n=5):
    X, y = mnist["train"].X[:n], mnist["train"].y[:n]
    return [[int(a), *map(int, b)] for a, b in zip(y, X)]


def with_cell(rows, i, j, value):
    rows = [list(r) for r in rows]
    rows[i][j] = value
    return rows


# --------------------------------------------------------------------------- the sidebar's train.csv
@pytest.fixture(scope="module")
def sidebar(mnist):
    """One session: a network that has taken 3 steps, and an earlier good upload."""
    at = open_app()
    ws = session(at.session_state).ws
    for _ in range(3):
        ws.step()
    X, y = mnist["train"].X[100:120], mnist["train"].y[100:120]
    train_uploader(at).set_value(("first.csv", csv_bytes(X, y), "text/csv"))
    rerun(at)
    assert np.array_equal(session(at.session_state).upload.digits.X, X)
    return at


def train_uploader(at: AppTest):
    return next(u for u in at.sidebar.file_uploader if u.label == "Kaggle train.csv (optional)")


def kaggle_uploader(at: AppTest):
    return next(u for u in at.main.file_uploader if u.label.startswith("Kaggle test.csv"))


def upload_train_csv(at: AppTest, name: str, data: bytes) -> AppTest:
    train_uploader(at).set_value((name, data, "text/csv"))
    return rerun(at)


BAD_CSV = {  # case → (file name, its bytes, what the message must say)
    "empty file": ("empty.csv", lambda m: b"", ["The file is empty."]),
    "header only": ("head.csv", lambda m: csv_text([]), ["a header but no data rows"]),
    "783 columns": ("short.csv", lambda m: csv_text([r[:-2] for r in rows_of(m)], HEAD[:-2]),
                    ["Expected 784 pixel columns", "found 782", "from 'pixel782' on are missing"]),
    "786 columns": ("long.csv", lambda m: csv_text([r + [0] for r in rows_of(m)], HEAD + ["pixel784"]),
                    ["found 785", "column 786 ('pixel784')"]),
    "label column missing": ("test.csv", lambda m: csv_text([r[1:] for r in rows_of(m)], HEAD[1:]),
                             ["no label column", "first column is 'pixel0'"]),
    "label column misnamed": ("digit.csv", lambda m: csv_text(rows_of(m), ["digit"] + HEAD[1:]),
                              ["first column is named 'digit'", "'label'"]),
    "label 10": ("l10.csv", lambda m: csv_text(with_cell(rows_of(m), 2, 0, 10)),
                 ["Row 3, column label: 10 is not a digit 0–9."]),
    "label -1": ("lneg.csv", lambda m: csv_text(with_cell(rows_of(m), 2, 0, -1)),
                 ["Row 3, column label: -1 is not a digit 0–9."]),
    "label 3.5": ("lfrac.csv", lambda m: csv_text(with_cell(rows_of(m), 2, 0, 3.5)),
                  ["Row 3, column label: 3.5 is not a digit 0–9."]),
    "pixel -1": ("pneg.csv", lambda m: csv_text(with_cell(rows_of(m), 3, 6, -1)),
                 ["Row 4, column pixel5: -1 is outside 0–255."]),
    "pixel 256": ("p256.csv", lambda m: csv_text(with_cell(rows_of(m), 3, 6, 256)),
                  ["Row 4, column pixel5: 256 is outside 0–255."]),
    "pixel NaN": ("pnan.csv", lambda m: csv_text(with_cell(rows_of(m), 3, 6, "NaN")),
                  ["Row 4, column pixel5: the value is missing."]),
    "pixel text": ("ptext.csv", lambda m: csv_text(with_cell(rows_of(m), 3, 6, "abc")),
                   ["Row 4, column pixel5: 'abc' is not a number."]),
    "ragged row": ("ragged.csv", lambda m: csv_text([r if i != 3 else r[:-2] for i, r in enumerate(rows_of(m))]),
                   ["Row 4 has 783 fields; the header has 785", "too short"]),
    "binary renamed .csv": ("photo.csv", lambda m: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
                            ["not a text CSV file", "PNG image"]),
    "random bytes": ("noise.csv", lambda m: np.random.default_rng(0).integers(0, 256, 3000, np.uint8).tobytes(),
                     ["not a text CSV file", "NUL byte at byte"]),
    "markup in a column name": ("cols.csv", lambda m: csv_text(rows_of(m), HEAD[:3] + ["**$x_{2}$ [a](http://b)**"] + HEAD[4:]),
                                ["Column 4 is named '**$x_{2}$ [a](http://b)**'; expected 'pixel2'."]),
    "one row": ("one.csv", lambda m: csv_text(rows_of(m, 1)),
                ["A data set to train on needs at least 2 labelled images", "this file has 1."]),
    "UTF-16 without a BOM": ("utf16.csv", lambda m: csv_text(rows_of(m)).decode().encode("utf-16-le"),
                             ["saved as UTF-16 text", "Save it again as 'CSV UTF-8'."]),
    "markup in the file name": ("[click](http://example.com) **now** $x$.csv", lambda m: b"",
                                ["[click](http://example.com) **now** $x$.csv was not loaded"]),
}


@pytest.mark.parametrize("case", list(BAD_CSV))
def test_a_bad_train_csv_says_what_and_where_and_changes_nothing(sidebar, mnist, case):
    name, make, says = BAD_CSV[case]
    before = state_of(sidebar)
    upload_train_csv(sidebar, name, make(mnist))
    errors = [e.value for e in sidebar.sidebar.error]
    assert len(errors) == 1, errors
    shown = unplain(errors[0])
    assert shown.startswith(f"{name} was not loaded. "), shown
    for words in says:
        assert words in shown, (words, shown)
    assert "Your network, its history and the settings are unchanged." in shown
    assert "The images of first.csv are still the upload." in shown
    for raw in ("$", "[", "]", "(", "*", "{", "_"):      # every markup character arrives escaped
        assert all(m.start() > 0 and errors[0][m.start() - 1] == "\\" for m in re.finditer(re.escape(raw), errors[0]))
    assert_unchanged(sidebar, before)
    assert train_uploader(sidebar).value.name == name    # the refused file stays in view beside its message
    train_uploader(sidebar).set_value(None)          # emptied: the message goes with the file
    rerun(sidebar)
    assert not sidebar.sidebar.error
    assert_unchanged(sidebar, before)


def test_the_upload_bound_of_the_loader_and_of_the_server(sidebar, mnist, monkeypatch):
    """Streamlit refuses files over maxUploadSize in the browser; the loader has its own bound
    (also on what a gzip file unpacks to). Both are tested here with a small bound."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 2**20 <= csv_data.MAX_CSV_BYTES
    good = csv_bytes(mnist["train"].X[:20], mnist["train"].y[:20])
    monkeypatch.setattr(csv_data, "MAX_CSV_BYTES", 20_000)
    for name, data, says in (("big.csv", good, "which is more than the limit of 19.5 KB"),
                             ("bomb.csv.gz", gzip.compress(csv_text([[0] * 785] * 200)),
                              "Decompressed, the file is larger than the limit of 19.5 KB")):
        before = state_of(sidebar)
        upload_train_csv(sidebar, name, data)
        shown = unplain(sidebar.sidebar.error[0].value)
        assert shown.startswith(f"{name} was not loaded.") and says in shown, shown
        assert_unchanged(sidebar, before)


GOOD_CSV = {  # case → (file name, how the file is written, the note the caption must give)
    "semicolons": ("semi.csv", lambda b: b.replace(b",", b";"), "semicolon-separated"),
    "UTF-8 BOM": ("bom.csv", lambda b: b"\xef\xbb\xbf" + b, "UTF-8 BOM removed"),
    "Windows line endings": ("crlf.csv", lambda b: b.replace(b"\n", b"\r\n"), ""),
    "gzip": ("train.csv.gz", gzip.compress, "gzip-compressed; decompressed"),
}


@pytest.mark.parametrize("case", list(GOOD_CSV))
def test_an_odd_but_valid_train_csv_is_accepted_with_a_note_and_replaces_no_network(sidebar, mnist, case):
    name, write, note = GOOD_CSV[case]
    X, y = mnist["train"].X[200:207], mnist["train"].y[200:207]
    before = state_of(sidebar)
    upload_train_csv(sidebar, name, write(csv_bytes(X, y)))
    assert not sidebar.sidebar.error, [e.value for e in sidebar.sidebar.error]
    up = session(sidebar.session_state).upload.digits
    np.testing.assert_array_equal(up.X, X)
    np.testing.assert_array_equal(up.y, y)
    captions = [unplain(c.value) for c in sidebar.sidebar.caption]
    assert any(c.startswith(f"Loaded 7 labelled images from {name}. {note}") for c in captions), captions
    before["upload"] = up                 # the upload is new; the network, history and settings are not
    assert_unchanged(sidebar, before)
    assert session(sidebar.session_state).ws.settings.dataset == "mnist"
    # the uploader goes on showing the file in use; reruns do not read it again
    assert train_uploader(sidebar).value.name == name
    rerun(sidebar)
    assert session(sidebar.session_state).upload.digits is up


def test_training_on_an_upload_asks_first_and_its_name_is_shown_literally(mnist):
    at = open_app({"pool": 600, "val": 100})
    ws = session(at.session_state).ws
    ws.step()
    X, y = mnist["train"].X[:600], mnist["train"].y[:600]
    name = "my_[data](x).csv"
    upload_train_csv(at, name, csv_bytes(X, y))
    assert session(at.session_state).ws is ws
    [r for r in at.radio if r.label == "Images"][0].set_value("upload")
    [b for b in at.button if b.label == "Apply settings"][0].click()
    rerun(at)
    assert session(at.session_state).ws is ws                       # a trained network is not thrown away unasked
    assert any("means a new network" in w.value for w in at.warning)
    [b for b in at.button if b.label.startswith("Discard it")][0].click()
    rerun(at)
    new = session(at.session_state).ws
    assert new is not ws and new.settings.dataset == "upload" and new.split.n_train == 500
    assert new.split.source.X is session(at.session_state).upload.digits.X
    at.switch_page("pages/data.py")
    rerun(at)
    split_text = next(m.value for m in at.markdown if m.value.startswith("**The split.**"))
    assert plain(name) in split_text and name not in split_text      # the file name is text, not a link


# --------------------------------------------------------------------------- the Kaggle page's test.csv
def test_a_bad_test_csv_on_the_kaggle_page_keeps_the_earlier_predictions(mnist):
    at = open_app(page="pages/kaggle.py")
    X = mnist["test"].X[:30]
    kaggle_uploader(at).set_value(("test.csv", csv_bytes(X), "text/csv"))
    rerun(at)
    csv = session(at.session_state).kaggle.csv
    np.testing.assert_array_equal(csv.X, X)
    submission = session(at.session_state).kaggle.submission
    before = state_of(at)
    for name, data, says in (
            ("test2.csv", csv_text([[0] * 784, [0] * 300 + ["x"] + [0] * 483], HEAD[1:]),
             "Row 2, column pixel300: 'x' is not a number."),
            ("test3.csv", csv_text([[0] * 783], HEAD[1:-1]), "Expected 784 pixel columns"),
            ("*bold*.csv", b"PK\x03\x04zip", "it looks like a ZIP archive")):
        kaggle_uploader(at).set_value((name, data, "text/csv"))
        rerun(at)
        shown = unplain(at.main.error[0].value)
        assert shown.startswith(f"{name} was not loaded. ") and says in shown, shown
        assert "The predictions below are still those for test.csv." in shown
        kaggle = session(at.session_state).kaggle
        assert kaggle.csv is csv and kaggle.submission == submission
        assert_unchanged(at, before)
    assert r"\*bold\*\.csv" in at.main.error[0].value


# --------------------------------------------------------------------------- checkpoints on the training page
def saved_arrays(trainer) -> dict:
    with np.load(io.BytesIO(checkpoint.to_bytes(trainer.net, trainer.optimizer, trainer)), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def packed(arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


class _Boom:
    """Unpickling this would create a file: the proof that nothing was unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def _config(arrays, **changes) -> np.ndarray:
    c = json.loads(str(arrays["config"]))
    for path, value in changes.items():
        node = c
        *parents, last = path.split("/")
        for p in parents:
            node = node[p]
        node[last] = value
    return np.array(json.dumps(c))


BAD_CHECKPOINTS = {  # case → (damage to a valid file's arrays, what the message must say)
    "pickle inside": (lambda a, tmp: a.update({"param/W1": np.array([_Boom(tmp / "executed")], dtype=object)}),
                      "holds a Python object (pickled data)"),
    "missing key": (lambda a, tmp: a.pop("param/b2"), "lacks 'param/b2'"),
    "extra key": (lambda a, tmp: a.update({"param/W4": np.zeros((10, 10), np.float32)}),
                  "unexpected entry 'param/W4'"),
    "wrong shape": (lambda a, tmp: a.update({"param/W2": np.zeros((64, 63), np.float32)}),
                    "W2 has shape (64, 63); the configuration says (64, 64)."),
    "wrong dtype": (lambda a, tmp: a.update({"param/W1": a["param/W1"].astype(np.int32)}),
                    "W1 holds int32 values"),
    "NaN": (lambda a, tmp: a["param/W3"].__setitem__((0, 0), np.nan),
            "W3 holds values that are not finite (NaN or infinity)."),
    "config mismatch": (lambda a, tmp: a.update({"config": _config(a, **{"net/sizes": [784, 64, 32, 10]})}),
                        "W2 has shape (64, 64); the configuration says (64, 32)."),
    "batch larger than its training set": (lambda a, tmp: a.update({"config": _config(a, **{"trainer/batch_size": 4000})}),
                                           "The batch size must be 1 to 2,500 (the training set), not 4000."),
    "not a zip": (lambda a, tmp: a.clear(), "not a checkpoint"),
    # loaded before, then crashed a page later
    "100 inputs": (lambda a, tmp: _resized(a, "W1", 0, 100, **{"net/sizes": [100, 64, 64, 10]}),
                   "The file's network takes 100 inputs; the app's images have 784 pixels."),
    "5 classes": (lambda a, tmp: _resized(a, "W3", 1, 5, **{"net/sizes": [784, 64, 64, 5]}) or _resized(a, "b3", 0, 5),
                  "The file's network has 5 outputs; the app tells 10 digits apart."),
    "trainer seed -1": (lambda a, tmp: a.update({"config": _config(a, **{"trainer/seed": -1})}),
                        "The trainer's seed is -1; it must be 0 to 2,147,483,647."),
    "step_in_epoch 10^9": (lambda a, tmp: a.update({"config": _config(a, **{"trainer/step_in_epoch": 10**9,
                                                                            "trainer/global_step": 10**9 + 40})}),
                           "The trainer stopped after step 1,000,000,000 of an epoch, but its epochs have 40 steps"),
    # settings out of the sidebar's range (what a link's ?lr=1e-7 … did to every page), in a file
    "learning rate 1e-7": (lambda a, tmp: a.update({"config": _config(a, **{"optimizer/lr": 1e-7})}),
                           "Learning rate η must be 1e-06 to 100, not 1e-07."),
    "momentum 0.9995": (lambda a, tmp: a.update({"config": _config(a, **{"optimizer/optimizer": "momentum",
                                                                         "optimizer/momentum": 0.9995})}),
                        "Momentum μ must be 0 to 0.999, not 0.9995."),
    "network seed 3,000,000,000": (lambda a, tmp: a.update({"config": _config(a, **{"net/seed": 3_000_000_000})}),
                                   "The network's seed is 3,000,000,000; it must be 0 to 2,147,483,647."),
}


def _resized(arrays, name, axis, n, **config):
    """Keep the first ``n`` rows (axis 0) or columns (axis 1) of ``name`` and its snapshots."""
    for k in [k for k in arrays if k.split("/")[-1] == name]:
        arrays[k] = arrays[k][:n] if axis == 0 else arrays[k][:, :n]
    if config:
        arrays["config"] = _config(arrays, **config)


def compressed(arrays) -> bytes:
    """As the app writes a checkpoint (np.savez_compressed)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _changed_byte(data: bytes, member: str) -> bytes:
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    at = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
    return data[:at] + bytes([data[at] ^ 0x55]) + data[at + 1:]


BAD_CHECKPOINT_FILES = {  # case → (the file made from a valid one's arrays, what the message must say)
    "a changed byte in a compressed file": (lambda a: _changed_byte(compressed(a), "param/W1.npy"),
                                            "The file is damaged: its member 'param/W1' cannot be unpacked"),
    "a cut compressed file": (lambda a: compressed(a)[:-5000], "The file is incomplete"),
}


@pytest.fixture(scope="module")
def training(mnist):
    """A training-page session whose network has trained one epoch, and a valid checkpoint of another."""
    at = open_app({"epochs": 1}, page="pages/training.py")
    ws = session(at.session_state).ws
    ws.trainer.run(1)
    rerun(at)
    other = Workspace(Settings(pool=3000, val=500, seed=7), mnist["train"], mnist["test"])
    other.trainer.run(1)
    return at, saved_arrays(other.trainer)


@pytest.mark.parametrize("case", list(BAD_CHECKPOINTS) + list(BAD_CHECKPOINT_FILES))
def test_a_bad_checkpoint_is_refused_with_the_reason_and_changes_nothing(training, case, tmp_path):
    at, valid = training
    if case in BAD_CHECKPOINT_FILES:
        make, says = BAD_CHECKPOINT_FILES[case]
        data = make(valid)
    else:
        damage, says = BAD_CHECKPOINTS[case]
        arrays = dict(valid)
        arrays = {k: (v.copy() if v.dtype.kind == "f" else v) for k, v in arrays.items()}
        damage(arrays, tmp_path)
        data = packed(arrays) if arrays else b"PK\x03\x04 not really a zip"
    before = state_of(at)
    name = f"net_{case.replace(' ', '_')}.npz"
    at.file_uploader(key="training_upload").set_value((name, data, "application/octet-stream"))
    rerun(at)
    errors = [unplain(e.value) for e in at.main.error]
    assert any(e.startswith(f"{name} was not loaded.") and says in e
               and e.endswith("Your network, its history and the settings are unchanged.") for e in errors), errors
    assert not at.main.success
    assert_unchanged(at, before)
    assert not (tmp_path / "executed").exists(), "the pickle was run"


def test_a_valid_checkpoint_through_the_same_path_is_adopted(training):
    """The control: the harness above can tell a refusal from an acceptance."""
    at, valid = training
    before = state_of(at)
    at.file_uploader(key="training_upload").set_value(("good.npz", packed(valid), "application/octet-stream"))
    rerun(at)
    assert any(s.value.startswith("Loaded good\\.npz: 1 epochs") for s in at.main.success)
    ws = session(at.session_state).ws
    assert ws is before["ws"] and ws.trainer is not before["trainer"] and ws.net.seed == 7
    np.testing.assert_array_equal(ws.net.params["W1"], valid["param/W1"])


# --------------------------------------------------------------------------- settings out of range
def test_the_sidebar_widgets_cannot_go_out_of_range():
    at = open_app()
    bounds = {n.label: (n.min, n.max) for n in at.sidebar.number_input}
    assert bounds["Learning rate η"][0] > 0
    assert bounds["units 1"][0] == 1 and bounds["units 2"][0] == 1
    assert bounds["Batch size m"][0] == 1 and bounds["Epochs"][0] == 1
    assert bounds["Image pool (train + validation)"][0] == 2   # its maximum depends on the images: checked on apply
    assert bounds["Held out for validation"][0] == 1


def test_a_pool_larger_than_the_images_is_refused_in_the_sidebar():
    at = open_app()
    ws = session(at.session_state).ws
    ws.step()
    before = state_of(at)
    [n for n in at.number_input if n.label == "Image pool (train + validation)"][0].set_value(70_000)
    [b for b in at.button if b.label == "Apply settings"][0].click()
    rerun(at)
    assert [e.value for e in at.sidebar.error] == [
        "Image pool (train + validation) must be 2 to 60,000 (the images there are), not 70,000."]
    assert_unchanged(at, before)


def test_a_batch_larger_than_the_training_set_is_refused_in_the_sidebar():
    at = open_app()
    ws = session(at.session_state).ws
    ws.step()
    before = state_of(at)
    [n for n in at.number_input if n.label == "Batch size m"][0].set_value(4096)
    [b for b in at.button if b.label == "Apply settings"][0].click()
    rerun(at)
    assert [e.value for e in at.sidebar.error] == ["Batch size m must be 1 to 2,500 (the training set), not 4,096."]
    assert_unchanged(at, before)


@pytest.mark.parametrize("query, says", [
    ({"lr": "0"}, "Ignored lr from the link: Learning rate η must be 1e-06 to 100, not 0."),
    ({"lr": "-0.5"}, "Ignored lr from the link: Learning rate η must be 1e-06 to 100, not -0.5."),
    ({"batch_size": "5000"}, "Ignored batch_size from the link: Batch size m must be 1 to 4,096, not 5,000."),
    ({"hidden": "0"}, "Ignored hidden from the link: Hidden layers: use 1 to 3 hidden layers of 1 to 512 units, "
                      "not (0,)."),
    ({"hidden": "64,0"}, "Ignored hidden from the link: Hidden layers: use 1 to 3 hidden layers of 1 to 512 units, "
                         "not (64, 0)."),
])
def test_settings_from_a_link_that_are_out_of_range_are_refused_on_screen(query, says):
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in {**SMALL, **query}.items():
        at.query_params[k] = v
    rerun(at)
    captions = [unplain(c.value) for c in at.sidebar.caption]
    assert says in captions, captions
    # only the bad value falls back to its default; the rest of the link is kept
    name = next(iter(query))
    assert getattr(session(at.session_state).ws.settings, name) == getattr(Settings(), name)
    assert session(at.session_state).ws.settings == Settings.from_query(SMALL)[0]


# --------------------------------------------------------------------------- training that explodes
def reference_after(settings: Settings, mnist, steps: int) -> dict:
    """What the engine's parameters are after ``steps`` steps of these settings."""
    ws = Workspace(settings, mnist["train"], mnist["test"])
    for _ in range(steps):
        ws.trainer.train_step()
    return ws.net.params


EXPLODING = {  # settings → the first step that would make some layer's weights more than 10 times larger
    "Adam, learning rate 1": ({"optimizer": "adam", "lr": "1"}, 1),
    "SGD, learning rate 10, He init": ({"lr": "10", "init": "he"}, 2),
    "SGD, learning rate 10, the seed's init": ({"lr": "10"}, 8),
}


@pytest.mark.parametrize("case", list(EXPLODING))
def test_an_exploding_run_stops_at_the_first_bad_step_with_the_last_good_parameters(mnist, case):
    query, bad_step = EXPLODING[case]
    at = open_app({**query, "epochs": 3}, page="pages/training.py")
    ws = session(at.session_state).ws
    click(at, "training_start")
    poll(at, lambda: not ws.busy)
    rerun(at)
    assert ws.runner.status == DIVERGED
    errors = [e.value for e in at.main.error]
    assert any(e.startswith("**The run diverged.** Training diverged at epoch 1, step "
                            f"{bad_step} (global step {bad_step}). This step would have made the weights of layer")
               and "Try a learning rate ten times smaller" in e for e in errors), errors
    assert ws.trainer.global_step == bad_step - 1
    assert len(ws.history.step_loss) == bad_step - 1 and np.isfinite(ws.history.step_loss).all()
    good = reference_after(ws.settings, mnist, bad_step - 1)
    for k, v in good.items():
        np.testing.assert_array_equal(ws.net.params[k], v, err_msg=k)
    assert not at.button(key="training_start").disabled        # lower η in the sidebar, then continue


def test_a_network_whose_relus_all_died_gets_a_warning_on_the_training_page():
    """A layer none of whose units fires passes no gradient: the page names it."""
    at = open_app({"epochs": 1}, page="pages/training.py")
    ws = session(at.session_state).ws
    click(at, "training_start")
    poll(at, lambda: not ws.busy)
    ws.history.rows["dead_frac"][-1] = np.array([0.3, 1.0, np.nan])   # as after a too-large step
    rerun(at)
    assert any("Every unit of hidden layer A2 is dead" in w.value for w in at.warning)


@pytest.mark.parametrize("case", list(EXPLODING))
def test_an_exploding_step_on_the_stepper_is_refused_with_the_message(mnist, case):
    query, bad_step = EXPLODING[case]
    at = open_app(query, page="pages/stepper.py")
    ws = session(at.session_state).ws
    for k in range(bad_step):
        params = ws.net.params
        click(at, "stepper_step")
    assert ws.net.params is params and ws.trainer.global_step == bad_step - 1
    errors = [e.value for e in at.main.error]
    assert any(e.startswith(f"Training diverged at epoch 1, step {bad_step} (global step {bad_step}). This step "
                            "would have made the weights of layer")
               and "That step was not applied" in e and "Try a learning rate ten times smaller" in e
               for e in errors), errors
    for k, v in reference_after(ws.settings, mnist, bad_step - 1).items():
        np.testing.assert_array_equal(ws.net.params[k], v, err_msg=k)


# --------------------------------------------------------------------------- runs and sessions
def test_a_run_nobody_watches_pauses_and_the_page_says_so_when_it_comes_back(monkeypatch):
    monkeypatch.setenv("BACKPROP_ORPHAN_AFTER", "1")
    at = open_app({"epochs": 10_000}, page="pages/training.py")   # far longer than the test
    ws = session(at.session_state).ws
    assert ws.runner.orphan_after == 1
    click(at, "training_start")
    deadline = time.monotonic() + 120   # a state, with room for a busy machine
    while ws.trainer.global_step == 0 and time.monotonic() < deadline:   # a tab watches until the run moves
        ws.runner.heartbeat()
        time.sleep(0.1)
    while ws.busy and time.monotonic() < deadline:      # then nobody reruns the page: no heartbeats
        time.sleep(0.1)
    assert not ws.busy and ws.runner.status == PAUSED
    steps = ws.trainer.global_step
    assert 0 < steps < 10_000 * 40
    ws.runner.join(30)      # its thread has ended (a state): no report can move the network after the pause
    assert not ws.runner._thread.is_alive() and ws.trainer.global_step == steps
    rerun(at)
    assert any(i.value == "Paused because no browser tab was watching this run. Press *Resume* to carry on."
               for i in at.main.info)
    assert not at.button(key="training_resume").disabled


def reference_run(settings: Settings, mnist, epochs: int) -> Trainer:
    ws = Workspace(settings, mnist["train"], mnist["test"])
    ws.trainer.run(epochs)
    return ws.trainer


def test_two_sessions_training_at_once_keep_their_own_models_histories_and_progress(mnist):
    a = open_app({"epochs": 60, "seed": 0}, page="pages/training.py")
    b = open_app({"epochs": 80, "seed": 1, "lr": "0.05"}, page="pages/training.py")
    wa, wb = session(a.session_state).ws, session(b.session_state).ws
    click(a, "training_start")
    click(b, "training_start")
    assert wa.busy and wb.busy
    seen = {"a": set(), "b": set()}
    deadline = time.monotonic() + 60
    while (wa.busy or wb.busy) and time.monotonic() < deadline:
        for key, at in (("a", a), ("b", b)):
            rerun(at)
            for p in at.main.get("progress"):
                seen[key].add(p.proto.text.split(" · ")[0])
        time.sleep(0.2)
    rerun(a), rerun(b)
    assert wa.runner.status == DONE and wb.runner.status == DONE
    assert seen["a"] and all(t.endswith(" of 60") for t in seen["a"]), seen      # each sees its own run only
    assert seen["b"] and all(t.endswith(" of 80") for t in seen["b"]), seen
    for ws, epochs in ((wa, 60), (wb, 80)):
        ref = reference_run(ws.settings, mnist, epochs)
        assert len(ws.history) == epochs
        for k in History.SCALARS + History.LAYERED + History.HISTS:
            if k != "seconds":
                np.testing.assert_array_equal(ws.history.column(k), ref.history.column(k), err_msg=k)
        np.testing.assert_array_equal(ws.history.step_loss, ref.history.step_loss)
        for k in ws.net.params:
            np.testing.assert_array_equal(ws.net.params[k], ref.net.params[k], err_msg=k)
    assert a.metric[0].value == "60" and b.metric[0].value == "80"
    assert wa.net.params["W1"] is not wb.net.params["W1"]


# --------------------------------------------------------------------------- a file just under the limit
BIG_ROWS = 52_000      # of real MNIST images: ~90 MB of CSV, like Kaggle's 73 MB train.csv with 42,000


@pytest.fixture(scope="module")
def big_csv(mnist, tmp_path_factory):
    table = np.array([str(i).encode() for i in range(256)], dtype=object)
    X, y = mnist["train"].X[:BIG_ROWS], mnist["train"].y[:BIG_ROWS]
    lines = [(",".join(HEAD) + "\n").encode()]
    lines += [b",".join(table[np.concatenate(([y[i]], X[i]))]) + b"\n" for i in range(BIG_ROWS)]
    path = tmp_path_factory.mktemp("big") / "train.csv"
    path.write_bytes(b"".join(lines))
    return path


MEASURE = """
import json, re, sys, time
import psutil

def high_water():   # VmHWM: this process's own peak (ru_maxrss would include the parent's, from before exec)
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec
from streamlit.proto.Common_pb2 import FileURLs
import ui.uploads
data = open(sys.argv[1], "rb").read()
up = UploadedFile(UploadedFileRec("f", "train.csv", "text/csv", data), FileURLs())
before = psutil.Process().memory_info().rss
t0 = time.perf_counter()
got = ui.uploads.read_csv(up, require_labels=True)
seconds = time.perf_counter() - t0
peak = high_water()
print(json.dumps({"ok": got.ok, "rows": len(got.value.X), "seconds": seconds, "extra": peak - before}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from Linux's /proc")
def test_a_90_mb_train_csv_loads_within_bounded_memory_and_time(big_csv, mnist):
    size = big_csv.stat().st_size
    assert 85e6 < size < 100 * 2**20          # just under the server's 100 MB upload limit
    result_bytes = BIG_ROWS * 785
    bound = 3 * result_bytes + 150 * 2**20
    # 1. in this process, traced: what the loader allocates beyond the upload's bytes
    from streamlit.proto.Common_pb2 import FileURLs
    from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec
    up = UploadedFile(UploadedFileRec("f", "train.csv", "text/csv", big_csv.read_bytes()), FileURLs())
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        got = ui.uploads.read_csv(up, require_labels=True)
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.ok, got.problem
    np.testing.assert_array_equal(got.value.X, mnist["train"].X[:BIG_ROWS])
    np.testing.assert_array_equal(got.value.y, mnist["train"].y[:BIG_ROWS])
    del got, up
    assert peak < bound, (peak, bound)
    assert seconds < 20, seconds
    # 2. in a fresh process, the resident memory it really took (tracemalloc misses the C parser's buffers)
    out = subprocess.run([sys.executable, "-c", MEASURE, str(big_csv)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["ok"] and m["rows"] == BIG_ROWS
    assert m["extra"] < bound, (m, bound)
    print(f"\n{size / 2**20:.0f} MiB CSV: {seconds:.1f} s traced, peak traced {peak / 2**20:.0f} MiB; "
          f"fresh process {m['seconds']:.1f} s, peak RSS above the upload {m['extra'] / 2**20:.0f} MiB "
          f"(bound {bound / 2**20:.0f} MiB, result {result_bytes / 2**20:.0f} MiB)")
