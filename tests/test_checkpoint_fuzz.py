"""Property tests: whatever bytes arrive as a "checkpoint", the loader either
returns a valid checkpoint or raises its own CheckpointError, nothing else."""
import io

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from core.lab import checkpoint
from core.lab.checkpoint import CheckpointError
from core.data.mnist import load_mnist, make_split
from core.engine.network import MLP
from core.engine.optim import Adam
from core.engine.trainer import Trainer


def _valid_arrays():
    mnist = load_mnist()
    split = make_split(mnist["train"], pool=600, val=100, seed=0)
    t = Trainer(MLP([784, 8, 10], seed=0), Adam(0.01), split, batch_size=100, seed=0)
    t.run(1)
    with np.load(io.BytesIO(checkpoint.to_bytes(t.net, t.optimizer, t)), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


VALID = _valid_arrays()


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
