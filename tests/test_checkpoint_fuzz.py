"""Property tests: whatever bytes arrive as a "checkpoint", the loader either
returns a valid checkpoint or raises its own CheckpointError, nothing else.

The app writes compressed files (``np.savez_compressed`` through checkpoint.to_bytes), and
those are what a download damages: a changed byte anywhere (a member's local header, its
compressed data, the central directory, the end record) is refused or changes nothing, a
cut file says it is incomplete, and any JSON in the configuration is refused or usable."""
import io
import json
import struct
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from core.lab import checkpoint
from core.lab.checkpoint import CheckpointError
from core.lab.settings import Settings
from core.data.mnist import load_mnist, make_split
from core.engine.network import MLP, DivergenceError
from core.engine.optim import Adam
from core.engine.trainer import Trainer

SPLIT = make_split(load_mnist()["train"], pool=600, val=100, seed=0)


def _written() -> bytes:
    t = Trainer(MLP([784, 8, 10], seed=0), Adam(0.01), SPLIT, batch_size=100, seed=0)
    t.run(1)
    t.train_step()                          # and one step into the next epoch
    return checkpoint.to_bytes(t.net, t.optimizer, t)


WRITTEN = _written()                        # as the app writes it: compressed
with np.load(io.BytesIO(WRITTEN), allow_pickle=False) as _f:
    VALID = {k: _f[k] for k in _f.files}


def _pack(arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _load_or_refuse(data: bytes):
    try:
        ck = checkpoint.load(data)
    except CheckpointError as err:
        assert str(err)  # always says why
        return None
    # what loads is usable: every parameter finite with the configured shape
    for l in range(1, ck.net.n_layers + 1):
        assert ck.net.params[f"W{l}"].shape == (ck.net.sizes[l - 1], ck.net.sizes[l])
        assert np.isfinite(ck.net.params[f"W{l}"]).all()
    return ck


def test_the_valid_checkpoint_loads():
    assert _load_or_refuse(_pack(VALID)) is not None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_are_refused_cleanly(blob):
    _load_or_refuse(blob)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_valid_looking_files_with_one_thing_wrong_never_crash(data):
    arrays = dict(VALID)
    key = data.draw(st.sampled_from(sorted(arrays)))
    kind = data.draw(st.sampled_from(["drop", "shape", "dtype", "value", "text", "rename"]))
    a = arrays[key]
    if kind == "drop":
        del arrays[key]
    elif kind == "shape":
        arrays[key] = np.zeros(data.draw(st.lists(st.integers(0, 5), max_size=3)), a.dtype)
    elif kind == "dtype" and a.dtype.kind in "fiub":
        arrays[key] = a.astype(data.draw(st.sampled_from([np.int8, np.float16, np.float64, np.bool_, np.complex64])))
    elif kind == "value" and a.dtype.kind == "f" and a.size:
        a = a.copy()
        a.flat[data.draw(st.integers(0, a.size - 1))] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e30]))
        arrays[key] = a
    elif kind == "text":
        arrays[key] = np.array(data.draw(st.text(max_size=200)))
    elif kind == "rename":
        arrays[key + "x"] = arrays.pop(key)
    _load_or_refuse(_pack(arrays))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_truncated_or_flipped_bytes_never_crash(data):
    raw = bytearray(_pack(VALID))
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    else:
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= data.draw(st.integers(1, 255))
    _load_or_refuse(bytes(raw))


# --------------------------------------------------------------------------- the compressed format the app writes
def _contents(ck) -> dict:
    out = {f"param/{k}": v for k, v in ck.net.params.items()}
    out.update({f"opt/{k}": np.asarray(v) for k, v in ck.optimizer.state().items()})
    out.update({f"history/{k}": v for k, v in ck.history.to_arrays().items()})
    out.update({f"snapshot/{e}/{k}": v for e, p in ck.snapshots.items() for k, v in p.items()})
    out["config"] = np.array(json.dumps([ck.net.config, ck.optimizer.hyper, ck.trainer_state, ck.split],
                                        sort_keys=True))
    return out


ORIGINAL = _contents(checkpoint.load(WRITTEN))


def _refused_or_unchanged(data: bytes) -> str:
    """The loader's message, or "" when the file loaded exactly as written: a damaged file
    never loads as something else."""
    try:
        ck = checkpoint.load(data)
    except CheckpointError as err:
        assert str(err)
        return str(err)
    got = _contents(ck)
    assert got.keys() == ORIGINAL.keys()
    for k, v in ORIGINAL.items():
        assert got[k].dtype == v.dtype, k
        np.testing.assert_array_equal(got[k], v, err_msg=k)
    return ""


def _regions(data: bytes) -> dict[str, list[int]]:
    """The byte positions of each part of a zip."""
    infos = sorted(zipfile.ZipFile(io.BytesIO(data)).infolist(), key=lambda i: i.header_offset)
    local, packed = [], []
    for i in infos:
        name_len, extra_len = struct.unpack_from("<HH", data, i.header_offset + 26)
        start = i.header_offset + 30 + name_len + extra_len
        local += range(i.header_offset, start)
        packed += range(start, start + i.compress_size)
    end = data.rindex(b"PK\x05\x06")
    directory = struct.unpack_from("<L", data, end + 16)[0]
    return {"local headers": local, "compressed data": packed, "central directory": list(range(directory, end)),
            "end record": list(range(end, len(data)))}


REGIONS = _regions(WRITTEN)


def _flipped(positions, xor: int) -> bytes:
    raw = bytearray(WRITTEN)
    for i in positions:
        raw[i] ^= xor
    return bytes(raw)


def test_a_changed_byte_in_every_region_is_refused_or_changes_nothing():
    """Before: one single-byte change in 80 of a compressed download raised zlib.error."""
    said = {}
    for region, positions in REGIONS.items():
        for i in np.linspace(0, len(positions) - 1, min(len(positions), 60)).astype(int):
            for xor in (0x01, 0xFF):
                said.setdefault(region, []).append(_refused_or_unchanged(_flipped([positions[i]], xor)))
    # the checksums are read: nearly every change to the compressed data is caught, as damage
    data = said["compressed data"]
    assert sum("The file is damaged" in m for m in data) > 0.9 * len(data), set(data)
    assert all(any(said[r]) for r in REGIONS), "every region has bytes whose change is refused"


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(REGIONS)), st.data())
def test_changed_bytes_in_a_written_checkpoint_are_refused_or_change_nothing(region, data):
    positions = REGIONS[region]
    picked = data.draw(st.lists(st.integers(0, len(positions) - 1), min_size=1, max_size=4))
    _refused_or_unchanged(_flipped([positions[i] for i in picked], data.draw(st.integers(1, 255))))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(WRITTEN) - 1))
def test_a_cut_written_checkpoint_says_it_is_incomplete(cut):
    message = _refused_or_unchanged(WRITTEN[:cut])
    assert message, "a cut file never loads"
    if cut >= 64:       # past the first member's name: recognisably the start of a checkpoint
        assert message.startswith("The file is incomplete"), message


# --------------------------------------------------------------------------- the configuration's JSON
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=12)
    | st.sampled_from([10**4000, -1, 0, 2**31, 2**63 - 1, 2**64, 1e400, 0.5]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
PATHS = ["format", "net", "net/sizes", "net/sizes/0", "net/sizes/1", "net/seed", "net/activation", "net/dtype",
         "optimizer", "optimizer/optimizer", "optimizer/lr", "optimizer/beta2", "trainer", "trainer/epoch",
         "trainer/step_in_epoch", "trainer/global_step", "trainer/batch_size", "trainer/seed", "trainer/acc",
         "trainer/acc/0", "trainer/acc/2", "trainer/tel", "trainer/train_seconds", "split", "split/pool",
         "split/val", "snapshot_epochs", "snapshot_epochs/1", "meta"]


def _set(config, path: str, value):
    *parents, last = path.split("/")
    node = config
    for p in parents:
        node = node[int(p) if isinstance(node, list) else p]
    node[int(last) if isinstance(node, list) else last] = value


def _usable(data: bytes) -> None:
    """Refused, or usable as the app uses it: its settings read, a trainer made on the
    images, one more step taken (or the documented refusals of each)."""
    try:
        ck = checkpoint.load(data)
    except CheckpointError as err:
        assert str(err)
        return
    Settings.of_network(ck.net.config, ck.optimizer.hyper, ck.trainer_state, ck.split).problems()
    try:
        trainer = checkpoint.restore_trainer(ck, SPLIT)
    except ValueError:                      # a batch larger than these images, an epoch shorter
        return
    try:
        trainer.train_step()
    except DivergenceError:                 # a learning rate the settings would refuse
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), JSON)
def test_any_json_anywhere_in_the_configuration_is_refused_or_usable(path, value):
    config = json.loads(str(VALID["config"]))
    _set(config, path, value)
    _usable(_config_file(config))


def _config_file(config) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{**VALID, "config": np.array(json.dumps(config))})
    return buf.getvalue()


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_any_text_as_the_configuration_is_refused(text):
    buf = io.BytesIO()
    np.savez_compressed(buf, **{**VALID, "config": np.array(text)})
    _load_or_refuse(buf.getvalue())
