"""What a checkpoint file can make the server do is bounded by what the app can write.

* The largest checkpoint the settings allow (3 hidden layers of 512, Adam, a snapshot at
  every snapshot epoch up to 10,000, 10,000 history rows, the per-step losses) is written
  by the app's own writer and read back, and the server's upload limit lets it through.
* A file that declares more (arrays, epochs, steps, members) is refused before the memory
  or the time is spent: measured with tracemalloc, and by showing that zipfile never got
  to list the members of a zip with too many.
* A checkpoint the app cannot carry on from (another input size, another number of
  classes, counters out of range or inconsistent) is refused with a message, not loaded
  to crash a page later.
"""
from __future__ import annotations

import io
import json
import struct
import tomllib
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.data.mnist import make_split
from core.engine.history import COLUMNS, History
from core.engine.network import MLP
from core.engine.optim import SGD, Adam
from core.engine.trainer import Trainer
from core.lab import checkpoint
from core.lab.checkpoint import (MAX_CHECKPOINT_BYTES, MAX_CONFIG_BYTES, MAX_EPOCHS, MAX_MEMBERS, MAX_STEPS,
                                 SNAPSHOTS, CheckpointError)
from core.lab.settings import Settings
from dataclasses import replace
from core.lab.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def small(mnist):
    return make_split(mnist["train"], pool=3000, val=500, seed=0)      # 2,500 training images: 40 steps an epoch


def arrays_of(data: bytes) -> dict:
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def packed(arrays: dict) -> bytes:
    """As the app writes: compressed."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def with_config(arrays: dict, text=None, **changes) -> dict:
    """``arrays`` with config entries changed (``"trainer/seed": -1``), or the config's text replaced."""
    c = json.loads(str(arrays["config"]))
    for path, value in changes.items():
        node = c
        *parents, last = path.split("/")
        for p in parents:
            node = node[p]
        node[last] = value
    return {**arrays, "config": np.array(text(json.dumps(c)) if text else json.dumps(c))}


@pytest.fixture(scope="module")
def sgd_file(small) -> dict:
    t = Trainer(MLP([784, 16, 10], seed=0), SGD(0.1), small, batch_size=64, seed=0)
    t.run(1)
    return arrays_of(checkpoint.to_bytes(t.net, t.optimizer, t))


@pytest.fixture(scope="module")
def adam_file(small) -> dict:
    t = Trainer(MLP([784, 16, 10], seed=0), Adam(0.003), small, batch_size=64, seed=0)
    t.run(1)
    for _ in range(5):
        t.train_step()
    return arrays_of(checkpoint.to_bytes(t.net, t.optimizer, t))


def refused(data: bytes) -> str:
    with pytest.raises(CheckpointError) as err:
        checkpoint.load(data)
    return str(err.value)


# --------------------------------------------------------------------------- the largest checkpoint
def largest_trainer(mnist, dtype) -> Trainer:
    """The largest state the settings allow, built directly (not by training 10,000 epochs).
    Every array holds its own constant, so a mix-up between members would show."""
    split = make_split(mnist["train"], pool=60_000, val=1, seed=0)     # 938 steps an epoch in batches of 64
    net = MLP([784, 512, 512, 512, 10], seed=0, dtype=dtype, batchnorm=True)    # batch norm: the most members
    net.params = {k: np.full(v.shape, (i + 1) / 1000, dtype) for i, (k, v) in enumerate(net.params.items())}
    opt = Adam(0.001)
    opt.load_state({**{f"{s}_{k}": np.full(net.params[k].shape, j, dtype) for j, s in enumerate("MS")
                       for k in net.trained},
                    "t": MAX_STEPS})
    trainer = Trainer(net, opt, split, batch_size=64, seed=0)
    L = net.n_layers
    rows = {c.name: np.ones(c.shape(MAX_EPOCHS, L), c.dtype) for c in COLUMNS}
    rows["epoch"] = np.arange(1, MAX_EPOCHS + 1)
    rows["step_loss"] = (np.arange(MAX_STEPS) % 7).astype(np.float32)
    trainer.history = History.from_arrays(L, rows)
    trainer.snapshots = {e: {k: np.full(v.shape, e / 1e4, dtype) for k, v in net.params.items()} for e in SNAPSHOTS}
    trainer.epoch, trainer.global_step = MAX_EPOCHS, MAX_STEPS
    return trainer


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32 (the app)", "float64 (command line)"])
def test_the_largest_checkpoint_the_settings_allow_is_written_read_back_and_carried_on(mnist, dtype):
    """Before: 3×512 Adam trained to epoch 5000 made a 55 MB download that its upload refused."""
    assert not Settings(hidden=(512, 512, 512), optimizer="adam", batchnorm=True, epochs=MAX_EPOCHS).problems()
    tr = largest_trainer(mnist, dtype)
    data = checkpoint.to_bytes(tr.net, tr.optimizer, tr)
    unpacked = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(data)).infolist())
    assert unpacked <= MAX_CHECKPOINT_BYTES and len(data) <= checkpoint.max_file_bytes()
    if dtype == np.float64:     # the bound is this checkpoint (plus room for a long configuration), not a guess
        assert unpacked >= MAX_CHECKPOINT_BYTES - MAX_CONFIG_BYTES - 128 * MAX_MEMBERS
        assert len(zipfile.ZipFile(io.BytesIO(data)).infolist()) == MAX_MEMBERS

    ck = checkpoint.load(data)
    assert ck.trainer_state["epoch"] == len(ck.history) == MAX_EPOCHS
    assert ck.trainer_state["global_step"] == ck.history.n_steps == ck.optimizer.t == MAX_STEPS
    assert sorted(ck.snapshots) == list(SNAPSHOTS)
    for k, v in tr.net.params.items():
        np.testing.assert_array_equal(ck.net.params[k], v)
        np.testing.assert_array_equal(ck.snapshots[5000][k], tr.snapshots[5000][k])
        if k in tr.net.trained:     # batch norm's running statistics are not the optimizer's
            np.testing.assert_array_equal(ck.optimizer.S[k], tr.optimizer.S[k])
    np.testing.assert_array_equal(ck.history.step_loss, tr.history.step_loss)
    carried = checkpoint.restore_trainer(ck, tr.split)
    carried.train_step()
    assert carried.global_step == MAX_STEPS + 1


def test_the_server_lets_the_largest_checkpoint_through():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 2**20 >= checkpoint.max_file_bytes()   # Streamlit counts MiB


def test_one_past_each_bound_is_refused(sgd_file):
    assert Settings(epochs=MAX_EPOCHS + 1).problems() and Settings(hidden=(512,) * 4).problems()
    cases = [({"trainer/epoch": MAX_EPOCHS + 1}, "The trainer's epoch is 10,001; it must be 0 to 10,000."),
             ({"trainer/global_step": MAX_STEPS + 1}, "The trainer has taken 9,380,001 steps; the app reads "
                                                      "checkpoints of at most 9,380,000"),
             ({"snapshot_epochs": [0, 1, 3]}, "snapshot of epoch 3"),
             ({"net/sizes": [784, 513, 10]}, "Hidden layers: use 1 to 3 hidden layers of 1 to 512 units")]
    for change, says in cases:
        assert says in refused(packed(with_config(sgd_file, **change))), change


# --------------------------------------------------------------------------- what the settings allow, loads
def trained_as_far_as(settings: Settings, epochs: int, small) -> tuple[MLP, SGD, Trainer]:
    """A trainer at the end of epoch ``epochs`` of ``settings``' sizes, its history full (a row an
    epoch, a loss a step), built directly on a small split (the file records ``settings``' split)."""
    net = MLP([784, 1, 10], seed=0)
    tr = Trainer(net, SGD(0.1), small, batch_size=1, seed=0)
    steps = epochs * settings.steps_per_epoch
    rows = {c.name: np.ones(c.shape(epochs, net.n_layers), c.dtype) for c in COLUMNS}
    rows["epoch"] = np.arange(1, epochs + 1)
    rows["step_loss"] = np.zeros(steps, np.float32)
    tr.history = History.from_arrays(net.n_layers, rows)
    tr.batch_size, tr.epoch, tr.global_step = settings.batch_size, epochs, steps
    return net, tr.optimizer, tr


EXTREMES = [  # (settings, images there are): the most steps an epoch, the most epochs, sizes that do not divide
    (Settings(batch_size=1, pool=60_000, val=1), 60_000),                      # 59,999 steps an epoch
    (Settings(batch_size=1, pool=1_000_000, val=1, dataset="upload"), 1_000_000),   # 999,999: 9 epochs
    (Settings(batch_size=64, pool=60_000, val=1), 60_000),                     # 938: 10,000 epochs, MAX_STEPS
    (Settings(batch_size=7, pool=42_000, val=1_000), 60_000),                  # 5,858 (the last batch of 1)
    (Settings(batch_size=1, pool=2, val=1), 60_000),                           # 1 step an epoch
    (Settings(batch_size=4096, pool=60_000, val=1), 60_000),                   # 15
]


@pytest.mark.parametrize("settings, n_source", EXTREMES,
                         ids=[f"{s.steps_per_epoch} steps an epoch" for s, _ in EXTREMES])
def test_every_run_the_settings_accept_writes_a_checkpoint_that_loads(small, settings, n_source):
    """Before, Settings accepted 10,000 epochs in batches of 1 (410 million steps), a run the
    settings let start whose checkpoint the loader refuses: now the one validation bounds epochs
    × steps an epoch by MAX_STEPS, and what it accepts at its edge loads, back to the same settings."""
    most = next(e for e in range(MAX_EPOCHS, 0, -1) if not replace(settings, epochs=e).problems(n_source))
    assert most * settings.steps_per_epoch <= MAX_STEPS
    if most < MAX_EPOCHS:       # one more epoch is refused, with the numbers that make it too many
        says = replace(settings, epochs=most + 1).problems(n_source)
        assert says and f"must be 1 to {most:,} with these sizes" in says[0] and f"{MAX_STEPS:,} steps" in says[0]
        assert f"{settings.steps_per_epoch:,} steps an epoch" in says[0]
    net, opt, tr = trained_as_far_as(settings, most, small)
    ck = checkpoint.load(checkpoint.to_bytes(net, opt, tr, split={"pool": settings.pool, "val": settings.val}))
    assert ck.trainer_state["global_step"] == ck.history.n_steps == most * settings.steps_per_epoch
    back = Settings.of_network(ck.net.config, ck.optimizer.hyper, ck.trainer_state, ck.split, settings, n_source)
    assert (back.batch_size, back.pool, back.val, back.epochs) == (settings.batch_size, settings.pool, settings.val,
                                                                   min(settings.epochs, most))
    assert not replace(back, dataset=settings.dataset).problems(n_source)
    # and the loader's bound is the same one: an epoch more of such a run is a file it refuses
    net, opt, tr = trained_as_far_as(settings, most + 1, small)
    if (most + 1) * settings.steps_per_epoch > MAX_STEPS or most == MAX_EPOCHS:
        refused(checkpoint.to_bytes(net, opt, tr, split={"pool": settings.pool, "val": settings.val}))


# --------------------------------------------------------------------------- bounded before allocating
def declared(arrays: dict, key: str, shape: tuple, descr: str = "<f4") -> bytes:
    """A compressed file like ``arrays`` whose member ``key`` declares ``shape`` and holds no data."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in arrays.items():
            member = io.BytesIO()
            if k == key:
                np.lib.format.write_array_header_1_0(member, {"descr": descr, "fortran_order": False, "shape": shape})
            else:
                np.lib.format.write_array(member, v, allow_pickle=False)
            z.writestr(k + ".npy", member.getvalue())
    return buf.getvalue()


def many_members(n: int, *, says_entries: int | None = None, directory_bytes: int | None = None) -> bytes:
    """A zip of ``n`` empty members, written by hand (zipfile takes seconds for 60,000); its
    end record may say another count or directory size than the directory has."""
    local, central = [], []
    offset = 0
    for i in range(n):
        name = f"m{i:06d}.npy".encode()
        head = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
        central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0,
                                   0, 0, 0, offset) + name)
        local.append(head)
        offset += len(head)
    cd = b"".join(central)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, says_entries if says_entries is not None else n,
                      directory_bytes if directory_bytes is not None else len(cd), offset, 0)
    return b"".join(local) + cd + end


def peak_while_loading(data: bytes) -> tuple[str, int]:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        try:
            checkpoint.load(data)
            message = ""
        except CheckpointError as err:
            message = str(err)
        return message, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


BOUNDED = {  # case → (the file, what the message says). Before: the peak is in the comment.
    # 0.9 MB upload, 287 MiB peak, loaded (30 M float16 losses, as many steps)
    "30 M per-step losses": (lambda a: packed(with_config({**a, "history/step_loss": np.zeros(30_000_000, np.float16)},
                                                          **{"trainer/global_step": 30_000_000})),
                             "The trainer has taken 30,000,000 steps; the app reads checkpoints of at most 9,380,000"),
    "30 M per-step losses for 40 steps": (lambda a: packed({**a, "history/step_loss": np.zeros(30_000_000, np.float16)}),
                                          "The history holds 30,000,000 per-step losses, but only 40 steps were taken."),
    # 0.2 MB upload, 201 MiB peak, 145 MiB kept, 6 CPU-seconds, loaded
    "70,000 epochs of history": (lambda a: packed(with_config(
        {**a, **{f"history/{c.name}": np.zeros(c.shape(70_000, 2), c.dtype) for c in COLUMNS},
         "history/epoch": np.arange(1, 70_001)}, **{"trainer/epoch": 70_000, "trainer/global_step": 70_000 * 40})),
        "The trainer's epoch is 70,000; it must be 0 to 10,000."),
    # MemoryError: "Unable to allocate 3.64 TiB", shown as "the server ran out of memory"
    "a 10⁶ × 10⁶ array declared": (lambda a: declared(a, "param/W1", (10**6, 10**6)),
                                   "The file's member 'param/W1' declares an array of 4.0 TB; a checkpoint is at most"),
    "a 10⁹-long step loss declared": (lambda a: declared(a, "history/step_loss", (10**9,), "<f8"),
                                      "'history/step_loss' declares an array of 8.0 GB"),
    "an array of many small ones": (lambda a: declared(a, "param/b1", (2, 100_000_000), "|u1"),
                                    "'param/b1' declares an array of"),
    # 200,000 members (46 MB): 45 CPU-seconds, 285 MiB peak, then "no 'config' entry"
    "400 members more": (lambda a: packed({**a, **{f"extra/{i}": np.zeros(1) for i in range(400)}}),   # 30 + 400
                         f"The file holds 430 members; a checkpoint has at most {MAX_MEMBERS}."),
}


@pytest.mark.parametrize("case", list(BOUNDED))
def test_what_a_file_declares_is_refused_before_it_is_allocated(sgd_file, case):
    make, says = BOUNDED[case]
    data = make(sgd_file)
    message, peak = peak_while_loading(data)
    assert says in message, message
    assert peak < 2 * 2**20, f"{peak / 2**20:.1f} MiB allocated to refuse it"


@pytest.mark.parametrize("n, says_entries, directory_bytes, says", [
    (60_000, None, None, f"The file holds 60,000 members; a checkpoint has at most {MAX_MEMBERS}."),
    (60_000, 3, None, "The file's list of members is 3,420,000 bytes long; a checkpoint's is at most"),
    (200, 0xFFFF, None, "The file holds 65,535 members"),
])
def test_a_zip_of_too_many_members_is_refused_from_its_end_record_before_zipfile_lists_them(
        monkeypatch, n, says_entries, directory_bytes, says):
    """Before: a 46 MB zip of 200,000 members took 45 CPU-seconds and 285 MiB to refuse."""
    data = many_members(n, says_entries=says_entries, directory_bytes=directory_bytes)
    assert len(zipfile.ZipFile(io.BytesIO(data)).infolist()) == n     # a real zip zipfile would list
    listed = []
    real = zipfile.ZipFile
    monkeypatch.setattr(zipfile, "ZipFile", lambda *a, **kw: listed.append(1) or real(*a, **kw))
    message, peak = peak_while_loading(data)
    assert says in message, message
    assert not listed, "zipfile listed the members before the file was refused"
    assert peak < 2**20


def test_a_zip64_end_record_is_refused(sgd_file):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.npy", b"")
    data = buf.getvalue()
    end = data.rindex(b"PK\x05\x06")        # a ZIP64 locator just before the end record: its counts would rule
    data = data[:end] + struct.pack("<4sLQL", b"PK\x06\x07", 0, 0, 1) + data[end:]
    assert "ZIP64" in refused(data)


# --------------------------------------------------------------------------- checkpoints the app cannot use
def uint64_t(a):
    return {**a, "opt/t": np.array(2**64 - 1, np.uint64)}


UNUSABLE = {  # case → (the file from the SGD or Adam fixture, what the message says)
    "100 inputs": (lambda s, a: checkpoint.to_bytes(MLP([100, 8, 10], seed=0), SGD(0.1)),
                   "The file's network takes 100 inputs; the app's images have 784 pixels."),
    "5 classes": (lambda s, a: checkpoint.to_bytes(MLP([784, 8, 5], seed=0), SGD(0.1)),
                  "The file's network has 5 outputs; the app tells 10 digits apart."),
    "trainer seed -1": (lambda s, a: packed(with_config(s, **{"trainer/seed": -1})),
                        "The trainer's seed is -1; it must be 0 to 2,147,483,647."),
    "network seed -1": (lambda s, a: packed(with_config(s, **{"net/seed": -1})), "The network's seed is -1"),
    "step_in_epoch 10⁹": (lambda s, a: packed(with_config(s, **{"trainer/step_in_epoch": 10**9,
                                                                "trainer/global_step": 10**9 + 40})),
                          "The trainer stopped after step 1,000,000,000 of an epoch, but its epochs have 40 steps"),
    "step_in_epoch = steps per epoch": (lambda s, a: packed(with_config(s, **{"trainer/step_in_epoch": 40,
                                                                              "trainer/global_step": 80})),
                                        "stopped after step 40 of an epoch, but its epochs have 40 steps "
                                        "(2,500 training images in batches of 64)"),
    "global_step behind the epochs": (lambda s, a: packed(with_config(s, **{"trainer/global_step": 0})),
                                      "The trainer's step count (0) does not agree with its 1 finished epochs and 0 steps"),
    "Adam's t 2⁶³-1": (lambda s, a: packed({**a, "opt/t": np.array(2**63 - 1, np.int64)}),
                       "The optimizer's counter t is 9,223,372,036,854,775,807, but the trainer has taken 45 steps."),
    "Adam's t uint64 max": (lambda s, a: packed(uint64_t(a)), "The optimizer's counter t is 18,446,744,073,709,551,615"),
    "Adam's t negative": (lambda s, a: packed({**a, "opt/t": np.array(-1, np.int64)}), "counter t is -1"),
    "batch size 0": (lambda s, a: packed(with_config(s, **{"trainer/batch_size": 0})),
                     "The trainer's batch size is 0; it must be 1 to"),
    "a split of 1 image": (lambda s, a: packed(with_config(s, **{"split/pool": 1, "split/val": 0})),
                           "The split's image pool is 1; it must be 2 to"),
    # the JSON: each of these raised its own exception before
    "Infinity as the epoch": (lambda s, a: packed(with_config(s, text=lambda t: t.replace('"epoch": 1', '"epoch": Infinity'))),
                              "The trainer's epoch is not a whole number: inf."),
    "NaN as the learning rate": (lambda s, a: packed(with_config(s, **{"optimizer/lr": float("nan")})),
                                 "The learning rate must be a positive number, not nan."),
    "a 5,000-digit seed": (lambda s, a: packed(with_config(s, text=lambda t: t.replace('"seed": 0', '"seed": ' + "9" * 5000, 1))),
                           "The configuration in the file holds a number too long to read."),
    "a 4,000-digit epoch": (lambda s, a: packed(with_config(s, **{"trainer/epoch": 10**3999})),
                            "The trainer's epoch is a 4,000-digit number; it must be 0 to 10,000."),
    "infinite momentum": (lambda s, a: packed(with_config(s, text=lambda t: t.replace('"optimizer": "sgd"', '"optimizer": "momentum", "momentum": 1e400'))),
                          "The optimizer's momentum is not a finite number."),
    "momentum 1.5": (lambda s, a: packed(with_config(s, text=lambda t: t.replace('"optimizer": "sgd"', '"optimizer": "momentum", "momentum": 1.5'))),
                     "The optimizer's momentum 1.5 is not a fraction from 0 up to (not including) 1."),
    "Adam's β2 1e44": (lambda s, a: packed(with_config(a, **{"optimizer/beta2": 1.0873965158377491e+44})),   # found by the fuzz test
                       "The optimizer's beta2 1.0873965158377491e+44 is not a fraction"),
    "Adam's ε 0": (lambda s, a: packed(with_config(a, **{"optimizer/eps": 0.0})), "The optimizer's eps 0.0 is not a small positive"),
    "a 1e400 learning rate": (lambda s, a: packed(with_config(s, text=lambda t: t.replace('"lr": 0.1', '"lr": 1e400'))),
                              "The learning rate must be a positive number, not inf."),
    "nested 100,000 deep": (lambda s, a: packed(with_config(s, text=lambda t: t.replace('"meta": {}', '"meta": '
                                                                                        + "[" * 100_000 + "]" * 100_000))),
                            "The configuration in the file is nested too deeply"),
    "sizes as text": (lambda s, a: packed(with_config(s, **{"net/sizes": "784,16,10"})),
                      "The network's layer sizes are not a list of whole numbers."),
    "an activation that is a list": (lambda s, a: packed(with_config(s, **{"net/activation": ["relu"]})),
                                     "The network's activation ['relu'] is not one of"),
    "running totals that are text": (lambda s, a: packed(with_config(s, **{"trainer/acc": ["a", 1, 2, 3]})),
                                     "The trainer's running loss is not a number: 'a'."),
    "a configuration of 2 MB": (lambda s, a: packed({**s, "config": np.array(" " * 2**19)}),
                                "The configuration is 2,097,152 bytes long; the app writes at most 1,048,576."),
}


@pytest.mark.parametrize("case", list(UNUSABLE))
def test_a_checkpoint_the_app_cannot_use_is_refused_with_a_message(sgd_file, adam_file, case):
    make, says = UNUSABLE[case]
    message = refused(make(sgd_file, adam_file))
    assert says in message, message


def test_a_checkpoint_stopped_mid_epoch_is_not_carried_on_where_its_epochs_are_shorter(mnist, small, sgd_file):
    """The loader checks the step against the file's own split; opening it on other images
    (the app falls back to the default split when the file's does not fit) checks it again."""
    t = Trainer(MLP([784, 16, 10], seed=0), SGD(0.1), small, batch_size=64, seed=0)
    for _ in range(30):
        t.train_step()
    ck = checkpoint.load(checkpoint.to_bytes(t.net, t.optimizer, t))
    shorter = make_split(mnist["train"], pool=1000, val=500, seed=0)       # 8 steps an epoch
    with pytest.raises(CheckpointError, match="stopped after step 30 of an epoch, but here an epoch has 8 steps"):
        checkpoint.restore_trainer(ck, shorter)
    settings = Settings(hidden=(16,), pool=1000, val=500)
    ws = Workspace(settings, mnist["train"], mnist["test"])
    trainer = ws.trainer
    with pytest.raises(ValueError, match="cannot carry on"):
        ws.open_checkpoint(ck, settings, mnist["train"], mnist["test"], origin="a file")
    assert ws.trainer is trainer
    assert checkpoint.restore_trainer(ck, small).step_in_epoch == 30      # on its own images it carries on


def test_a_truncated_checkpoint_says_it_is_incomplete(sgd_file):
    data = packed(sgd_file)
    for cut in np.linspace(64, len(data) - 1, 60).astype(int):
        assert "The file is incomplete" in refused(data[:cut]), cut
    assert "not a checkpoint" in refused(data[:20])
