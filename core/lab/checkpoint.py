"""Save and load a training state as ``.npz``: safe for files from anyone.

A checkpoint holds the network (configuration and parameters), the optimizer
(hyper-parameters and state), the trainer's counters, the history and the
time-travel snapshots. The configuration is one JSON string stored as a
unicode array, so the file holds numbers and text only.

Loading never unpickles (``allow_pickle=False``) and checks everything before
anything is built, and bounds what a file can make the server allocate before
allocating it:

1. the file's size, and the member count and directory size its end-of-central-
   directory record declares (read with :mod:`struct`, before :mod:`zipfile` lists
   the members);
2. each member's ``.npy`` header (shape and dtype), before its data;
3. the configuration, against what the app can make (784 inputs, 10 classes, the
   settings' limits, counters that agree with each other), which gives every
   array's exact shape (the history has one row per epoch, at most one loss per step);
4. the total the arrays declare, against :data:`MAX_CHECKPOINT_BYTES`, the size of
   the largest checkpoint the app can write;
5. the data, member by member (checksums included), and then the values (finite
   parameters, counts that are whole numbers, epochs 1, 2, 3, …).

Anything else raises :class:`CheckpointError` with a message a user can act on:
the loader raises nothing else.
"""
from __future__ import annotations

import io
import json
import math
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.engine.history import ARRAY_NAMES as HISTORY_ARRAYS, COLUMNS, STEP_LOSS_DTYPE, History, HistoryError, \
    check_layout
from core.engine.activations import ACTIVATIONS
from core.engine.network import DTYPES, INITS, MAX_HIDDEN_LAYERS, MAX_UNITS, MLP, N_CLASSES, N_PIXELS, RUN, \
    trained_names
from core.engine.optim import OPTIMIZERS, from_hyper
from core.engine.trainer import SNAPSHOT_EPOCHS, Trainer
from core.lab.settings import FIELDS, MAX_EPOCHS, MAX_IMAGES, MAX_STEPS, MNIST_IMAGES, Settings

FORMAT = "nn-stepper-checkpoint/1"

# What the app can make (core/lab/settings.py FIELDS): it bounds every file the loader accepts.
SNAPSHOTS = tuple(e for e in SNAPSHOT_EPOCHS if e <= MAX_EPOCHS)   # the epochs a trainer keeps a snapshot of
MAX_CONFIG_BYTES = 1 << 20                                   # the JSON configuration (a few KB when written)
_LARGEST_SIZES = [N_PIXELS] + [MAX_UNITS] * MAX_HIDDEN_LAYERS + [N_CLASSES]
_NPY_HEADER = 128                                            # bytes before an array's data in a .npy


def _largest() -> tuple[int, int]:
    """(members, bytes) of the largest checkpoint the app can write: the most hidden layers of
    the most units in float64 (``python -m core.train --dtype float64``), the optimizer that keeps the most
    state, a snapshot at every snapshot epoch, a history of MAX_EPOCHS rows and MAX_STEPS
    per-step losses, with batch norm (γ, β and the running μ, σ² of every hidden layer)."""
    sizes, L = _LARGEST_SIZES, len(_LARGEST_SIZES) - 1
    names = trained_names(L, batchnorm=True)
    every = len(names) + 2 * (L - 1)          # and the running μ, σ² of each hidden layer
    per_unit = np.dtype(np.float64).itemsize
    trained_bytes = (sum(a * b + b for a, b in zip(sizes, sizes[1:])) + 2 * sum(sizes[1:-1])) * per_unit   # W, b, γ, β
    net_bytes = trained_bytes + 2 * sum(sizes[1:-1]) * per_unit                                         # μ_run, σ²_run
    opt = max(OPTIMIZERS.values(), key=lambda o: len(o.state_keys))
    row = sum(c.dtype.itemsize * math.prod(c.cell_shape(L)) for c in COLUMNS)
    members = 1 + every * (1 + len(SNAPSHOTS)) + len(opt.state_names(names)) + len(HISTORY_ARRAYS)
    data = (net_bytes * (1 + len(SNAPSHOTS)) + trained_bytes * len(opt.state_keys) + 8 * len(opt.counters)
            + MAX_EPOCHS * row + MAX_STEPS * STEP_LOSS_DTYPE.itemsize + MAX_CONFIG_BYTES)
    return members, data + members * _NPY_HEADER


MAX_MEMBERS, MAX_CHECKPOINT_BYTES = _largest()   # 347 members; about 182 MB, unpacked


def max_file_bytes(max_bytes: int = MAX_CHECKPOINT_BYTES) -> int:
    """The largest file that can unpack to ``max_bytes``: deflate adds at most 0.1%, the zip
    a few hundred bytes per member. ``.streamlit/config.toml`` must let such a file through."""
    return max_bytes + max_bytes // 1000 + MAX_MEMBERS * 512


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
NOT_A_CHECKPOINT = "This is not a checkpoint: a checkpoint is a .npz file saved by this app."
_EOCD = struct.Struct("<4s4H2LH")   # end of central directory: signature, disks, entries, size, offset, comment
_EOCD_SIGNATURE, _ZIP64_LOCATOR, _LOCAL_HEADER = b"PK\x05\x06", b"PK\x06\x07", b"PK\x03\x04"
_ENTRY_BYTES = 46 + 64 + 64        # one directory entry: its fixed part, its name, its extra fields
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _mb(n: int) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale or unit == "MB":
            return f"{n / scale:,.1f} {unit}"


def _expect(cond: bool, message: str) -> None:
    if not cond:
        raise CheckpointError(message)


def _open(source, max_bytes: int):
    """``(file, size)``: a seekable binary file of at most :func:`max_file_bytes` bytes."""
    limit = max_file_bytes(max_bytes)
    if isinstance(source, (str, Path)):
        size = Path(source).stat().st_size
        fp = None if size > limit else open(source, "rb")
    else:
        data = source if isinstance(source, (bytes, bytearray, memoryview)) else source.read(limit + 1)
        size = memoryview(data).nbytes
        fp = None if size > limit else io.BytesIO(data)     # shares the bytes rather than copy them
    _expect(fp is not None, f"The file is {_mb(size)}; a checkpoint is at most {_mb(limit)}.")
    return fp, size


def _check_directory(fp, size: int) -> None:
    """Refuse, from the zip's end-of-central-directory record alone, a file that is no
    zip, is cut short, or lists more members (or a longer directory) than a checkpoint
    has: before :mod:`zipfile` reads the directory and builds an object per member."""
    tail_len = min(size, _EOCD.size + 0xFFFF)      # the record, and a comment of up to 64 KB
    fp.seek(size - tail_len)
    tail = fp.read(tail_len)
    at = len(tail) - _EOCD.size                     # where it is when there is no comment (as zipfile looks)
    if not (at >= 0 and tail.startswith(_EOCD_SIGNATURE, at) and tail.endswith(b"\0\0")):
        at = tail.rfind(_EOCD_SIGNATURE)
    if at < 0 or len(tail) - at < _EOCD.size:
        fp.seek(0)
        head = fp.read(30 + 256)                    # a local header: 30 bytes, then the member's name
        name_len = struct.unpack_from("<H", head, 26)[0] if len(head) >= 30 else 0
        if head.startswith(_LOCAL_HEADER) and head[30:30 + name_len].endswith(b".npy"):
            raise CheckpointError("The file is incomplete: it stops before the end of the checkpoint "
                                  "(a download cut short?). Download or save it again.")
        raise CheckpointError(NOT_A_CHECKPOINT)
    _, _, _, _, entries, directory_bytes, _, _ = _EOCD.unpack_from(tail, at)
    locator = size - tail_len + at - 20
    if locator >= 0:
        fp.seek(locator)
        zip64 = fp.read(4) == _ZIP64_LOCATOR       # its counts replace the record's: never in a checkpoint
        _expect(not zip64, f"The file is a ZIP64 archive (for over 65,535 members or 4 GB); a checkpoint "
                           f"has at most {MAX_MEMBERS} members.")
    _expect(entries <= MAX_MEMBERS, f"The file holds {entries:,} members; a checkpoint has at most {MAX_MEMBERS}.")
    _expect(directory_bytes <= MAX_MEMBERS * _ENTRY_BYTES,
            f"The file's list of members is {directory_bytes:,} bytes long; a checkpoint's is at most "
            f"{MAX_MEMBERS * _ENTRY_BYTES:,}.")
    fp.seek(0)


def _members(z: zipfile.ZipFile, max_bytes: int) -> dict[str, zipfile.ZipInfo]:
    infos = z.infolist()
    _expect(len(infos) <= MAX_MEMBERS, f"The file holds {len(infos):,} members; a checkpoint has at most "
                                       f"{MAX_MEMBERS}.")
    members = {}
    for info in infos:
        _expect(info.filename.endswith(".npy"),
                f"The file holds {info.filename!r}, which is not an array: not a checkpoint.")
        key = info.filename[:-4]
        _expect(key not in members, f"The file holds two members named {info.filename!r}.")
        members[key] = info
    total = sum(i.file_size for i in infos)
    _expect(total <= max_bytes, f"The file unpacks to {_mb(total)}; a checkpoint is at most {_mb(max_bytes)}.")
    return members


def _header(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    """A member's declared shape and dtype, from its .npy header: its data is not read."""
    with z.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in _HEADER_READERS:
            raise ValueError(f".npy format version {version[0]}.{version[1]}, which this app never writes")
        shape, _, dtype = _HEADER_READERS[version](f)
    return tuple(int(n) for n in shape), dtype


def _read(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with z.open(info) as f:
        a = np.lib.format.read_array(f, allow_pickle=False)
        if f.read(1):                               # reading to the end also checks the member's CRC
            raise ValueError("data after the array")
    return a


def _unpack(key: str, read, *args):
    """``read(*args)``, where any failure means the bytes of member ``key`` are damaged:
    zipfile, zlib and numpy's .npy reader meet anyone's bytes here, and fail in many ways."""
    try:
        return read(*args)
    except CheckpointError:
        raise
    except MemoryError:
        raise CheckpointError(f"The server ran out of memory unpacking {key!r}.") from None
    except Exception as err:
        reason = str(err).strip()[:120] or type(err).__name__
        where = f"its member {key!r}" if key else "its list of members"
        raise CheckpointError(f"The file is damaged: {where} cannot be unpacked ({reason}). "
                              f"Download or save it again.") from None


# -- the configuration: what the app can make -------------------------------------------------
def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def _whole(value, what: str, lo: int, hi: int) -> int:
    """``value`` as a whole number from ``lo`` to ``hi``; JSON has no other integers to give."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    _expect(type(value) is int, f"{what} is not a whole number: {_short(value)}.")
    shown = f"{value:,}" if abs(value) < 10**21 else f"a {len(str(abs(value))):,}-digit number"
    _expect(lo <= value <= hi, f"{what} is {shown}; it must be {lo:,} to {hi:,}.")
    return value


def _number(value, what: str) -> float:
    _expect(type(value) in (int, float), f"{what} is not a number: {_short(value)}.")
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    _expect(math.isfinite(x) and x >= 0, f"{what} is not a finite number, not negative: {_short(value)}.")
    return x


def _parse_config(c: np.ndarray) -> dict:
    try:
        config = json.loads(str(c))
    except RecursionError:
        raise CheckpointError("The configuration in the file is nested too deeply: it was not saved by this app.") \
            from None
    except json.JSONDecodeError:
        raise CheckpointError("The configuration in the file is not valid JSON.") from None
    except ValueError:              # an integer of more digits than Python converts
        raise CheckpointError("The configuration in the file holds a number too long to read.") from None
    _expect(isinstance(config, dict) and config.get("format") == FORMAT,
            f"Not a checkpoint of this app (format {_short(config.get('format')) if isinstance(config, dict) else '?'}).")
    for key in ("net", "optimizer", "trainer", "snapshot_epochs"):
        _expect(key in config, f"The configuration has no {key!r}.")
    return config


def _network(nc) -> MLP:
    _expect(isinstance(nc, dict), "The network configuration is not a record.")
    sizes = nc.get("sizes")
    _expect(isinstance(sizes, list) and all(type(s) is int for s in sizes),
            "The network's layer sizes are not a list of whole numbers.")
    problem = FIELDS["hidden"].problem(tuple(sizes[1:-1]))
    _expect(problem is None, f"The file's network does not fit the app: {problem}")
    _expect(sizes[0] == N_PIXELS, f"The file's network takes {sizes[0]:,} inputs; the app's images have "
                                  f"{N_PIXELS} pixels.")
    _expect(sizes[-1] == N_CLASSES, f"The file's network has {sizes[-1]:,} outputs; the app tells "
                                    f"{N_CLASSES} digits apart.")
    for key, known in (("activation", ACTIVATIONS), ("init", INITS), ("dtype", DTYPES)):
        _expect(isinstance(nc.get(key), str) and nc[key] in known,
                f"The network's {key} {_short(nc.get(key))} is not one of {', '.join(known)}.")
    seed = FIELDS["seed"]
    seed = _whole(nc.get("seed"), "The network's seed", int(seed.lo), int(seed.hi))
    dropout = nc.get("dropout", 0.0)     # a file from before dropout has none: p = 0
    _expect(type(dropout) in (int, float) and FIELDS["dropout"].problem(float(dropout)) is None,
            f"The network's dropout {_short(dropout)} is not a probability from 0 to {FIELDS['dropout'].hi:g}.")
    batchnorm = nc.get("batchnorm", False)    # a file from before batch norm has none: off
    _expect(type(batchnorm) is bool, f"The network's batch norm {_short(batchnorm)} is not true or false.")
    return MLP(sizes, activation=nc["activation"], init=nc["init"], seed=seed, dtype=np.dtype(nc["dtype"]),
               params={}, dropout=float(dropout), batchnorm=batchnorm)


DECAY_RATES = ("momentum", "beta1", "beta2", "rho")   # the optimizers' averaging constants (core.engine.optim)


def _optimizer(hyper):
    _expect(isinstance(hyper, dict) and isinstance(hyper.get("optimizer"), str) and hyper["optimizer"] in OPTIMIZERS,
            f"Unknown optimizer in the file: {_short(hyper)}.")
    try:
        optimizer = from_hyper(hyper)
    except (TypeError, ValueError, OverflowError) as err:
        raise CheckpointError(f"The optimizer settings are not usable: {err}") from None
    bad = [k for k, v in optimizer.hyper.items() if isinstance(v, float) and not math.isfinite(v)]
    _expect(not bad, f"The optimizer's {bad[0] if bad else ''} is not a finite number.")
    for k, v in optimizer.hyper.items():   # decay rates keep a fraction of the past; ε only keeps a division finite
        if k in DECAY_RATES:
            _expect(0.0 <= v < 1.0, f"The optimizer's {k} {_short(v)} is not a fraction from 0 up to (not including) 1.")
        elif k == "eps":
            _expect(0.0 < v <= 1.0, f"The optimizer's eps {_short(v)} is not a small positive number (at most 1).")
    return optimizer


def _split(split) -> tuple[dict, int]:
    """The split's record and its number of training images (the default split's when the
    file has none, as :meth:`Settings.of_network` assumes)."""
    split = split or {}
    _expect(isinstance(split, dict), "The file's split of the images is not a record.")
    if "pool" not in split and "val" not in split:
        return split, Settings().pool - Settings().val
    pool = _whole(split.get("pool"), "The split's image pool", int(FIELDS["pool"].lo), MAX_IMAGES)
    val = _whole(split.get("val"), "The split's validation set", 1, pool - 1)
    return split, pool - val


def _trainer_state(ts, n_train: int, net: MLP) -> dict:
    """The trainer's counters, each in range and consistent with the others: the epoch
    bounds the history, the step count the per-step losses and the optimizer's counters."""
    _expect(isinstance(ts, dict), "The trainer's state is not a record.")
    epoch = _whole(ts.get("epoch"), "The trainer's epoch", 0, MAX_EPOCHS)
    batch = _whole(ts.get("batch_size", Settings().batch_size), "The trainer's batch size", 1, MAX_IMAGES)
    seed = FIELDS["seed"]
    seed = _whole(ts.get("seed", net.seed), "The trainer's seed", int(seed.lo), int(seed.hi))
    per_epoch = math.ceil(n_train / batch)
    step = _whole(ts.get("step_in_epoch"), "The trainer's step in its epoch", 0, 2**63 - 1)
    _expect(step < per_epoch, f"The trainer stopped after step {step:,} of an epoch, but its epochs have "
                              f"{per_epoch:,} steps ({n_train:,} training images in batches of {batch:,}).")
    total = _whole(ts.get("global_step"), "The trainer's step count", 0, 2**63 - 1)
    _expect(total <= MAX_STEPS, f"The trainer has taken {total:,} steps; the app reads checkpoints of at most "
                                f"{MAX_STEPS:,} ({MAX_EPOCHS:,} epochs of all {MNIST_IMAGES:,} MNIST images "
                                f"in batches of {Settings().batch_size}).")
    most = step if epoch == 0 else step + epoch * (MAX_IMAGES - 1)
    _expect(epoch + step <= total <= most, f"The trainer's step count ({total:,}) does not agree with its "
                                           f"{epoch:,} finished epochs and {step:,} steps into the next.")
    acc = ts.get("acc", [0.0, 0, 0, 0])
    _expect(isinstance(acc, list) and len(acc) == 4, "The trainer's running totals are not 4 numbers.")
    loss_sum = _number(acc[0], "The trainer's running loss")
    correct, seen, sampled = (_whole(a, f"The trainer's running count of {what}", 0, 2**62)
                              for a, what in zip(acc[1:], ("right answers", "images", "sampled steps")))
    _expect(correct <= seen, "The trainer's running totals count more right answers than images.")
    tel = ts.get("tel")
    if tel is not None:
        try:
            tel_ok = np.asarray(tel, float).shape == (3, net.n_layers)
        except (TypeError, ValueError, OverflowError):
            tel_ok = False
        _expect(tel_ok, "The trainer's telemetry has the wrong shape.")
    shift = _whole(ts.get("shift", 0), "The trainer's augmentation shift (pixels)",   # a file from before: none
                   int(FIELDS["shift"].lo), int(FIELDS["shift"].hi))
    rotate = _number(ts.get("rotate", 0.0), "The trainer's augmentation rotation (degrees)")
    _expect(FIELDS["rotate"].problem(rotate) is None, f"The trainer's augmentation rotation is {rotate:g} degrees; "
                                                      f"it must be 0 to {FIELDS['rotate'].hi:g}.")
    return {"epoch": epoch, "step_in_epoch": step, "global_step": total, "batch_size": batch, "seed": seed,
            "shift": shift, "rotate": rotate,
            "train_seconds": _number(ts.get("train_seconds", 0.0), "The trainer's time"),
            "acc": [loss_sum, correct, seen, sampled], "tel": tel}


def _snapshot_epochs(epochs, epoch: int) -> list[int]:
    _expect(isinstance(epochs, list) and all(type(e) is int for e in epochs),
            "The list of snapshot epochs is not a list of epoch numbers.")
    _expect(len(set(epochs)) == len(epochs), "The list of snapshot epochs names an epoch twice.")
    bad = [e for e in epochs if e not in SNAPSHOTS or e > epoch]
    _expect(not bad, f"The file has a snapshot of epoch {bad[0] if bad else 0:,}; the app takes them at epochs "
                     f"{', '.join(map(str, SNAPSHOTS))} up to the trainer's epoch ({epoch:,}).")
    return epochs


# -- each member's header against the configuration ----------------------------------------------
def _check_float(name: str, declared: tuple, shape: tuple, dtype: np.dtype) -> None:
    have_shape, have = declared
    _expect(have.kind == "f", f"{name} holds {have} values; expected floating point numbers.")
    _expect(have == dtype, f"{name} is {have}; the network is {dtype}.")
    _expect(have_shape == tuple(shape), f"{name} has shape {have_shape}; the configuration says {tuple(shape)}.")


def _check_finite(name: str, a: np.ndarray) -> None:
    _expect(bool(np.isfinite(a).all()), f"{name} holds values that are not finite (NaN or infinity).")


def _check_param(what: str, a: np.ndarray, name: str | None = None) -> None:
    """Finite, and a running variance (``σ²1_run``) not negative: evaluation takes its square root."""
    _check_finite(what, a)
    _expect(not (name or what).startswith("σ²") or bool((a >= 0).all()),
            f"{what} holds negative variances.")


def load(source, *, max_bytes: int = MAX_CHECKPOINT_BYTES) -> Checkpoint:
    """Read and validate a checkpoint from a path, bytes or a binary file object.
    Raises :class:`CheckpointError`, and nothing else, when it is not one the app can use."""
    try:
        fp, size = _open(source, max_bytes)
    except OSError as err:
        raise CheckpointError(f"The file cannot be read: {err.strerror or err}.") from None
    with fp:
        _check_directory(fp, size)
        with _unpack("", zipfile.ZipFile, fp) as z:
            members = _members(z, max_bytes)
            declared = {k: _unpack(k, _header, z, info) for k, info in members.items()}
            return _load(z, members, declared, max_bytes)


def _load(z: zipfile.ZipFile, members: dict, declared: dict, max_bytes: int) -> Checkpoint:
    if any(dtype.hasobject for _, dtype in declared.values()):
        raise CheckpointError("The file holds a Python object (pickled data); checkpoints hold numbers "
                              "only, so it was refused without being opened.")
    sizes = {k: math.prod(shape) * dtype.itemsize for k, (shape, dtype) in declared.items()}
    biggest = max(sizes, key=sizes.get, default="")
    _expect(sizes.get(biggest, 0) <= max_bytes, f"The file's member {biggest!r} declares an array of "
                                                f"{_mb(sizes.get(biggest, 0))}; a checkpoint is at most {_mb(max_bytes)}.")
    _expect(sum(sizes.values()) <= max_bytes, f"The file's arrays declare {_mb(sum(sizes.values()))}; a checkpoint "
                                              f"is at most {_mb(max_bytes)}.")
    _expect("config" in declared, "The file has no 'config' entry: it was not saved by this app.")
    shape, dtype = declared["config"]
    _expect(dtype.kind == "U" and shape == (), "The 'config' entry is not text.")
    _expect(dtype.itemsize <= MAX_CONFIG_BYTES, f"The configuration is {dtype.itemsize:,} bytes long; the app "
                                                f"writes at most {MAX_CONFIG_BYTES:,}.")
    config = _parse_config(_unpack("config", _read, z, members["config"]))

    # the configuration: what the app can make
    net = _network(config["net"])
    dtype, L = net.dtype, net.n_layers
    shapes = {}     # every parameter: the trained ones, and batch norm's running statistics
    for l in range(1, L + 1):
        shapes[f"W{l}"] = (net.sizes[l - 1], net.sizes[l])
        shapes[f"b{l}"] = (net.sizes[l],)
        if net.batchnorm and l < L:
            for k in (f"γ{l}", f"β{l}", f"μ{l}{RUN}", f"σ²{l}{RUN}"):
                shapes[k] = (net.sizes[l],)
    optimizer = _optimizer(config["optimizer"])
    opt_keys = optimizer.state_names({k: shapes[k] for k in net.trained})
    split, n_train = _split(config.get("split"))
    ts = _trainer_state(config["trainer"], n_train, net)
    snap_epochs = _snapshot_epochs(config["snapshot_epochs"], ts["epoch"])

    # the exact set of members
    expected = {"config"} | {f"param/{k}" for k in shapes}
    expected |= {f"history/{k}" for k in HISTORY_ARRAYS}
    expected |= {f"snapshot/{e}/{k}" for e in snap_epochs for k in shapes}
    present = set(declared)
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
        raise CheckpointError(f"The optimizer state does not match {optimizer.key}: "
                              f"found {sorted(opt_found)}, expected {sorted(opt_keys)}.")

    # every member's header against the configuration, before any data is read
    for k, shape in shapes.items():
        _check_float(k, declared[f"param/{k}"], shape, dtype)
    for e in snap_epochs:
        for k, shape in shapes.items():
            _check_float(f"the epoch-{e} snapshot of {k}", declared[f"snapshot/{e}/{k}"], shape, dtype)
    for k in sorted(opt_found):
        shape, have = declared[f"opt/{k}"]
        if k in optimizer.counters:
            _expect(have.kind in "iu" and shape == (), f"The optimizer's counter {k} is not a count of steps.")
        else:
            _check_float(f"optimizer state {k}", declared[f"opt/{k}"], shapes[k.split("_", 1)[1]], dtype)
    try:
        n_epochs = check_layout({k: declared[f"history/{k}"] for k in HISTORY_ARRAYS}, L,
                                max_steps=ts["global_step"])
    except HistoryError as err:
        raise CheckpointError(str(err)) from None
    _expect(n_epochs == ts["epoch"], f"The trainer says epoch {ts['epoch']} but the history has {n_epochs} epochs.")

    # the data: what was declared, each member checked against its CRC
    arrays = {k: _unpack(k, _read, z, members[k]) for k in sorted(declared) if k != "config"}
    params = {}
    for k in shapes:
        _check_param(k, arrays[f"param/{k}"])
        params[k] = arrays[f"param/{k}"]
    net.params = params
    snapshots = {}
    for e in snap_epochs:
        for k in shapes:
            _check_param(f"the epoch-{e} snapshot of {k}", arrays[f"snapshot/{e}/{k}"], k)
        snapshots[e] = {k: arrays[f"snapshot/{e}/{k}"] for k in shapes}
    state = {}
    for k in opt_found:
        a = arrays[f"opt/{k}"]
        if k in optimizer.counters:
            count = int(a)
            _expect(0 <= count <= ts["global_step"], f"The optimizer's counter {k} is {count:,}, but the trainer "
                                                     f"has taken {ts['global_step']:,} steps.")
            state[k] = np.array(count, np.int64)
        else:
            _check_finite(f"optimizer state {k}", a)
            state[k] = a
    optimizer.load_state(state)
    try:
        history = History.from_arrays(L, {k: arrays[f"history/{k}"] for k in HISTORY_ARRAYS})
    except HistoryError as err:
        raise CheckpointError(str(err)) from None
    meta = config.get("meta")
    meta = {k: v for k, v in meta.items() if v is None or type(v) in (str, int, float, bool)} \
        if isinstance(meta, dict) else {}
    return Checkpoint(net, optimizer, ts, history, snapshots, split, meta)


def restore_trainer(ckpt: Checkpoint, split, **kw):
    """A :class:`Trainer` of its own that carries on exactly where the checkpoint stopped
    (the checkpoint itself is left as it is). Raises :class:`CheckpointError` when ``split``
    has shorter epochs than the one the checkpoint stopped in the middle of."""
    trainer = Trainer.from_state(ckpt.net.config, ckpt.net.params, ckpt.optimizer.hyper, ckpt.optimizer.state(),
                                 ckpt.trainer_state, split, history=ckpt.history, snapshots=ckpt.snapshots, **kw)
    _expect(trainer.step_in_epoch < trainer.steps_per_epoch,
            f"The checkpoint stopped after step {trainer.step_in_epoch:,} of an epoch, but here an epoch has "
            f"{trainer.steps_per_epoch:,} steps ({split.n_train:,} training images in batches of "
            f"{trainer.batch_size:,}): it cannot carry on from there on these images.")
    return trainer
