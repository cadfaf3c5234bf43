"""The history's one schema: what is written is read back, with the same dtypes and shapes,
whether the history is empty, mid-epoch or long."""
import io

import numpy as np
import pytest

from core.data.mnist import make_split
from core.engine.history import ARRAY_NAMES, COLUMNS, HIST_BINS, History, HistoryError, validate
from core.engine.network import MLP
from core.engine.optim import SGD, Adam, Momentum
from core.engine.trainer import Trainer
from core.lab import checkpoint
from core.lab.checkpoint import CheckpointError
from core.lab.settings import Settings
from core.lab.workspace import Workspace


@pytest.fixture(scope="module")
def small(mnist):
    return make_split(mnist["train"], pool=700, val=100, seed=0)


def trainer(split, opt=None):
    return Trainer(MLP([784, 16, 12, 10], seed=0), opt or SGD(0.1), split, batch_size=64, seed=0)


def assert_same_arrays(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def through_a_file(net, optimizer, tr=None):
    return checkpoint.load(checkpoint.to_bytes(net, optimizer, tr))


def test_an_empty_history_has_the_dtypes_and_shapes_of_a_long_one(small):
    t = trainer(small)
    t.run(2)
    long, none = t.history.to_arrays(), History(3).to_arrays()
    assert none.keys() == long.keys() == set(ARRAY_NAMES)
    for k in long:
        assert none[k].dtype == long[k].dtype and none[k].shape[1:] == long[k].shape[1:], k
    assert none["hist_W"].shape == (0, 3, HIST_BINS) and none["hist_W"].dtype.kind == "i"
    assert long["epoch"].dtype.kind == "i"


def test_an_empty_history_round_trips_through_a_checkpoint(small):
    t = trainer(small)
    ck = through_a_file(t.net, t.optimizer, t)       # refused before: "History 'hist_W' has the wrong shape"
    assert len(ck.history) == 0 and ck.history.n_steps == 0
    assert_same_arrays(ck.history.to_arrays(), t.history.to_arrays())


def test_a_workspace_that_stepped_but_finished_no_epoch_saves_a_checkpoint_that_loads_and_carries_on(mnist):
    settings = Settings(pool=1100, val=100, hidden=(16,), optimizer="momentum")
    ws = Workspace(settings, mnist["train"], mnist["test"])
    for _ in range(3):
        ws.step()
    ck = through_a_file(ws.net, ws.optimizer, ws.trainer)
    assert ck.trainer_state["global_step"] == 3 and len(ck.history) == 0
    np.testing.assert_array_equal(ck.history.step_loss, ws.history.step_loss)
    other = Workspace(settings, mnist["train"], mnist["test"])
    other.open_checkpoint(ck, settings, mnist["train"], mnist["test"], origin="a file")
    a, b = ws.step(), other.step()
    np.testing.assert_array_equal(a["W1_new"], b["W1_new"])        # the same fourth step
    assert_same_arrays(ws.history.to_arrays(), other.history.to_arrays())


@pytest.mark.parametrize("opt", [SGD(0.1), Momentum(0.1), Adam(0.001)], ids=["sgd", "momentum", "adam"])
def test_a_checkpoint_saved_without_a_trainer_loads(opt, tmp_path):
    net = MLP([784, 8, 10], seed=3)
    path = tmp_path / "net.npz"
    checkpoint.save(path, net, opt)
    ck = checkpoint.load(path)
    for k, v in net.params.items():
        np.testing.assert_array_equal(ck.net.params[k], v)
    assert ck.trainer_state["epoch"] == 0 and ck.snapshots == {}
    assert_same_arrays(ck.history.to_arrays(), History(2).to_arrays())


def test_a_history_with_rows_round_trips_exactly(small):
    t = trainer(small, Adam(0.003))
    t.run(2)
    for _ in range(3):                                 # and a few steps into the third epoch
        t.train_step()
    ck = through_a_file(t.net, t.optimizer, t)
    assert len(ck.history) == 2 and ck.history.n_steps == t.global_step
    assert_same_arrays(ck.history.to_arrays(), t.history.to_arrays())
    assert_same_arrays(History.from_arrays(3, t.history.to_arrays()).to_arrays(), t.history.to_arrays())
    assert ck.history.frame().equals(t.history.frame())


def test_a_few_columns_read_alone_are_those_of_the_whole_history_and_nbytes_counts_every_cell(small):
    t = trainer(small)
    t.run(2)
    t.train_step()
    h = t.history
    some = h.columns(names=("epoch", "val_acc", "update_ratio"))
    assert list(some) == ["epoch", "val_acc", "update_ratio"]
    assert_same_arrays(some, {k: v for k, v in h.columns().items() if k in some})
    walked = h._step_loss.nbytes + sum(np.asarray(v).nbytes for vals in h.rows.values() for v in vals)
    assert h.nbytes == walked > 0


def test_files_from_before_the_schema_with_float_epochs_still_load(small):
    """The shipped pretrained network stored its epochs as float64."""
    t = trainer(small)
    t.run(1)
    with np.load(io.BytesIO(checkpoint.to_bytes(t.net, t.optimizer, t)), allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["history/epoch"] = arrays["history/epoch"].astype(np.float64)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    ck = checkpoint.load(buf.getvalue())
    assert ck.history.column("epoch").dtype == np.int64
    np.testing.assert_array_equal(ck.history.column("epoch"), [1])


def arrays_of_one_epoch(small) -> dict:
    t = trainer(small)
    t.run(1)
    return t.history.to_arrays()


@pytest.mark.parametrize("damage, says", [
    (lambda a: a.update(hist_W=a["hist_W"].astype(np.float64) + 0.5), "'hist_W' holds float64 values that are not counts"),
    (lambda a: a.update(hist_dW=-a["hist_dW"]), "'hist_dW' holds int32 values that are not counts"),
    (lambda a: a.update(range_W=a["range_W"][:, :2]), r"'range_W' has the wrong shape: \(1, 2, 2\)"),
    (lambda a: a.update(epoch=np.array([2])), "epochs are not 1, 2, 3"),
    (lambda a: a.update(val_acc=np.array(["high"])), "'val_acc' holds <U4 values that are not numbers"),
    (lambda a: a.pop("dead_frac"), "no 'dead_frac' column"),
    (lambda a: a.update(step_loss=np.zeros((2, 2), np.float32)), "per-step losses are not a list"),
])
def test_arrays_that_break_the_schema_are_refused_with_the_column_and_why(small, damage, says):
    arrays = arrays_of_one_epoch(small)
    damage(arrays)
    with pytest.raises(HistoryError, match=says):
        validate(arrays, 3)
    # and through the checkpoint loader, as its own clear error
    t = trainer(small)
    t.run(1)
    with np.load(io.BytesIO(checkpoint.to_bytes(t.net, t.optimizer, t)), allow_pickle=False) as f:
        saved = {k: f[k] for k in f.files}
    for k in ARRAY_NAMES:
        saved.pop(f"history/{k}")
    saved.update({f"history/{k}": v for k, v in arrays.items()})
    buf = io.BytesIO()
    np.savez(buf, **saved)
    with pytest.raises(CheckpointError, match=says if "no 'dead_frac'" not in says else "lacks 'history/dead_frac'"):
        checkpoint.load(buf.getvalue())


def test_a_row_is_kept_in_its_columns_type_and_shape_or_refused():
    h = History(2)
    row = {c.name: (np.zeros(c.cell_shape(2)) if c.cell else 1) for c in COLUMNS}
    h.append(row)
    assert isinstance(h.rows["epoch"][0], int) and isinstance(h.rows["train_loss"][0], float)
    assert h.rows["hist_W"][0].dtype == np.int32 and not h.rows["hist_W"][0].flags.writeable
    assert row["weight_norm"] is not h.rows["weight_norm"][0]      # a copy: never a view into what it came from
    with pytest.raises(ValueError, match="shape"):
        h.append({**row, "epoch": 2, "hist_W": np.zeros((2, 7))})
    with pytest.raises(KeyError):
        h.append({k: v for k, v in row.items() if k != "lr"})
    assert len(h) == 1 and {len(v) for v in h.rows.values()} == {1}


def test_a_copy_of_a_history_grows_on_its_own(small):
    t = trainer(small)
    t.run(1)
    before = t.history.to_arrays()
    mine = t.history.copy()
    mine.add_step_loss(1.0)
    mine.append({k: v[-1] for k, v in t.history.rows.items()} | {"epoch": 2})
    assert_same_arrays(t.history.to_arrays(), before)
    assert len(mine) == 2 and mine.n_steps == t.history.n_steps + 1
