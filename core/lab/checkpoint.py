"""Save and load a training state as ``.npz``: safe for files from anyone.

A checkpoint holds the network (configuration and parameters), the optimizer
(hyper-parameters and state), the trainer's counters, the history and the
time-travel snapshots. The configuration is one JSON string stored as a
unicode array, so the file holds numbers and text only.

Loading never unpickles (``allow_pickle=False``) and checks everything before
anything is built: the zip's members and their sizes, the exact set of keys,
every shape and dtype against the configuration, and that every value is
finite. Anything else raises :class:`CheckpointError` with a message a user can
act on.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.engine.network import ACTIVATIONS, INITS, MLP
from core.engine.optim import OPTIMIZERS, from_hyper
from core.engine.trainer import Trainer
from core.engine.history import ARRAY_NAMES as HISTORY_ARRAYS, History, HistoryError

FORMAT = "nn-stepper-checkpoint/1"
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024  # uncompressed; a full 1000-epoch run is ~10 MB


MAX_COUNT = 10**12     # steps: far beyond any run (1000 epochs of the seed are 641,000 steps)


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message says why."""


@dataclass
class Checkpoint:
    net: MLP
    optimizer: object
    trainer_state: dict
    history: History
    snapshots: dict[int, dict]
    split: dict
    meta: dict


# --------------------------------------------------------------------------- save
def to_arrays(net: MLP, optimizer, trainer=None, *, split: dict | None = None, meta: dict | None = None) -> dict:
    history = trainer.history if trainer is not None else History(net.n_layers)
    snapshots = trainer.snapshots if trainer is not None else {}
    state = trainer.state() if trainer is not None else {"epoch": 0, "step_in_epoch": 0, "global_step": 0}
    config = {"format": FORMAT, "net": net.config, "optimizer": optimizer.hyper, "trainer": state,
              "split": split if split is not None else (dict(trainer.split.info) if trainer is not None else {}),
              "snapshot_epochs": sorted(int(e) for e in snapshots), "meta": meta or {}}
    arrays = {"config": np.array(json.dumps(config))}
    arrays.update({f"param/{k}": v for k, v in net.params.items()})
    arrays.update({f"opt/{k}": np.asarray(v) for k, v in optimizer.state().items()})
    arrays.update({f"history/{k}": v for k, v in history.to_arrays().items()})
    for e, params in snapshots.items():
        arrays.update({f"snapshot/{int(e)}/{k}": v for k, v in params.items()})
    return arrays


def save(target, net: MLP, optimizer, trainer=None, **kw) -> None:
    """Write a compressed ``.npz`` to a path or a binary file object."""
    np.savez_compressed(target, **to_arrays(net, optimizer, trainer, **kw))


def to_bytes(net: MLP, optimizer, trainer=None, **kw) -> bytes:
    buf = io.BytesIO()
    save(buf, net, optimizer, trainer, **kw)
    return buf.getvalue()


# --------------------------------------------------------------------------- load
def _read_npz(source, max_bytes: int) -> dict[str, np.ndarray]:
    if isinstance(source, (str, Path)):
        raw = Path(source).read_bytes()
    elif isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
    else:
        raw = source.read()
    if len(raw) > max_bytes:
        raise CheckpointError(f"The file is {len(raw) / 1e6:.1f} MB; a checkpoint is at most {max_bytes / 1e6:.0f} MB.")
    buf = io.BytesIO(raw)
    try:
        with zipfile.ZipFile(buf) as z:
            infos = z.infolist()
            total = sum(i.file_size for i in infos)
            if total > max_bytes:
                raise CheckpointError(f"The file unpacks to {total / 1e6:.0f} MB; a checkpoint is at most "
                                      f"{max_bytes / 1e6:.0f} MB.")
            bad = [i.filename for i in infos if not i.filename.endswith(".npy")]
            if bad:
                raise CheckpointError(f"The file holds {bad[0]!r}, which is not an array: not a checkpoint.")
    except zipfile.BadZipFile:
        raise CheckpointError("This is not a checkpoint: a checkpoint is a .npz file saved by this app.") from None
    buf.seek(0)
    arrays = {}
    try:
        with np.load(buf, allow_pickle=False) as f:
            for k in f.files:
                arrays[k] = f[k]
    except ValueError as err:
        if "pickle" in str(err).lower() or "object" in str(err).lower():
            raise CheckpointError("The file holds a Python object (pickled data); checkpoints hold numbers "
                                  "only, so it was refused without being opened.") from None
        raise CheckpointError(f"An array in the file cannot be read: {err}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"The file is damaged: {err}") from None
    return arrays


def _expect(cond: bool, message: str) -> None:
    if not cond:
        raise CheckpointError(message)


def _check_float(name: str, a: np.ndarray, shape: tuple, dtype: np.dtype | None = None) -> None:
    _expect(a.dtype.kind == "f", f"{name} holds {a.dtype} values; expected floating point numbers.")
    if dtype is not None:
        _expect(a.dtype == dtype, f"{name} is {a.dtype}; the network is {dtype}.")
    _expect(a.shape == tuple(shape), f"{name} has shape {a.shape}; the configuration says {tuple(shape)}.")
    _expect(bool(np.isfinite(a).all()), f"{name} holds values that are not finite (NaN or infinity).")


def _parse_config(arrays: dict) -> dict:
    _expect("config" in arrays, "The file has no 'config' entry: it was not saved by this app.")
    c = arrays["config"]
    _expect(c.dtype.kind == "U" and c.ndim == 0, "The 'config' entry is not text.")
    try:
        config = json.loads(str(c))
    except json.JSONDecodeError:
        raise CheckpointError("The configuration in the file is not valid JSON.") from None
    _expect(isinstance(config, dict) and config.get("format") == FORMAT,
            f"Not a checkpoint of this app (format {config.get('format') if isinstance(config, dict) else '?'!r}).")
    for key in ("net", "optimizer", "trainer", "snapshot_epochs"):
        _expect(key in config, f"The configuration has no {key!r}.")
    return config


def load(source, *, max_bytes: int = MAX_CHECKPOINT_BYTES) -> Checkpoint:
    """Read and validate a checkpoint from a path, bytes or a binary file object."""
    arrays = _read_npz(source, max_bytes)
    config = _parse_config(arrays)
    nc = config["net"]
    try:
        sizes = [int(s) for s in nc["sizes"]]
        _expect(nc["activation"] in ACTIVATIONS, f"Unknown activation {nc['activation']!r}.")
        _expect(nc["init"] in INITS, f"Unknown initialisation {nc['init']!r}.")
        _expect(nc["dtype"] in ("float32", "float64"), f"Unsupported dtype {nc['dtype']!r}.")
        dtype = np.dtype(nc["dtype"])
        net = MLP(sizes, activation=nc["activation"], init=nc["init"], seed=int(nc["seed"]), dtype=dtype,
                  params={})
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"The network configuration is not usable: {err}") from None
    L = net.n_layers
    shapes = {}
    for l in range(1, L + 1):
        shapes[f"W{l}"] = (sizes[l - 1], sizes[l])
        shapes[f"b{l}"] = (sizes[l],)

    # optimizer
    hyper = config["optimizer"]
    _expect(isinstance(hyper, dict) and hyper.get("optimizer") in OPTIMIZERS,
            f"Unknown optimizer in the file: {hyper!r}.")
    try:
        optimizer = from_hyper(hyper)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"The optimizer settings are not usable: {err}") from None
    opt_keys = optimizer.state_names(shapes)

    # the exact set of keys
    snap_epochs = config["snapshot_epochs"]
    _expect(isinstance(snap_epochs, list) and all(isinstance(e, int) and e >= 0 for e in snap_epochs),
            "The list of snapshot epochs is not a list of epoch numbers.")
    expected = {"config"} | {f"param/{k}" for k in shapes}
    expected |= {f"history/{k}" for k in HISTORY_ARRAYS}
    expected |= {f"snapshot/{e}/{k}" for e in snap_epochs for k in shapes}
    present = set(arrays)
    opt_present = {k for k in present if k.startswith("opt/")}
    missing = sorted(expected - present)
    extra = sorted(present - expected - opt_present)
    if missing:
        more = f" and {len(missing) - 1} more entries" if len(missing) > 1 else ""
        raise CheckpointError(f"The file lacks {missing[0]!r}{more}: it is not a complete checkpoint.")
    if extra:
        raise CheckpointError(f"The file holds an unexpected entry {extra[0]!r}.")
    opt_found = {k[4:] for k in opt_present}
    # a fresh optimizer has no per-parameter state yet (Adam: only its counter t = 0)
    if opt_found not in (set(), opt_keys, set(optimizer.counters) & opt_keys):
        raise CheckpointError(f"The optimizer state does not match {hyper['optimizer']}: "
                              f"found {sorted(opt_found)}, expected {sorted(opt_keys)}.")

    # parameters and snapshots
    params = {}
    for k, shape in shapes.items():
        a = arrays[f"param/{k}"]
        _check_float(k, a, shape, dtype)
        params[k] = a
    net.params = params
    snapshots = {}
    for e in snap_epochs:
        snap = {}
        for k, shape in shapes.items():
            a = arrays[f"snapshot/{e}/{k}"]
            _check_float(f"the epoch-{e} snapshot of {k}", a, shape, dtype)
            snap[k] = a
        snapshots[e] = snap
    state = {}
    for k in opt_found:
        a = arrays[f"opt/{k}"]
        if k in optimizer.counters:
            _expect(a.dtype.kind in "iu" and a.ndim == 0 and 0 <= int(a) <= MAX_COUNT,
                    f"The optimizer's counter {k} is not a count of steps.")
            state[k] = a
        else:
            _check_float(f"optimizer state {k}", a, shapes[k.split("_", 1)[1]], dtype)
            state[k] = a
    optimizer.load_state(state)

    # history: checked against its schema
    try:
        history = History.from_arrays(L, {k: arrays[f"history/{k}"] for k in HISTORY_ARRAYS})
    except HistoryError as err:
        raise CheckpointError(str(err)) from None
    n_ep = len(history)

    ts = config["trainer"]
    try:
        _expect(isinstance(ts, dict), "The trainer's state is not a record.")
        for key in ("epoch", "step_in_epoch", "global_step"):
            _expect(int(ts[key]) >= 0, f"The trainer's {key} is negative.")
        _expect(1 <= int(ts.get("batch_size", 64)) <= 1_000_000, "The batch size in the file is not usable.")
        int(ts.get("seed", 0))
        acc = ts.get("acc", [0, 0, 0, 0])
        _expect(isinstance(acc, list) and len(acc) == 4 and all(np.isfinite(float(a)) for a in acc),
                "The trainer's running totals are not numbers.")
        tel = ts.get("tel")
        _expect(tel is None or np.asarray(tel, float).shape == (3, L), "The trainer's telemetry has the wrong shape.")
    except (KeyError, TypeError, ValueError):
        raise CheckpointError("The trainer's counters are missing or not numbers.") from None
    _expect(int(ts["epoch"]) == n_ep, f"The trainer says epoch {ts['epoch']} but the history has {n_ep} epochs.")
    return Checkpoint(net, optimizer, ts, history, snapshots, config.get("split") or {}, config.get("meta") or {})


def restore_trainer(ckpt: Checkpoint, split, **kw):
    """A :class:`Trainer` of its own that carries on exactly where the checkpoint stopped
    (the checkpoint itself is left as it is)."""
    return Trainer.from_state(ckpt.net.config, ckpt.net.params, ckpt.optimizer.hyper, ckpt.optimizer.state(),
                              ckpt.trainer_state, split, history=ckpt.history, snapshots=ckpt.snapshots, **kw)
