"""The training process: ``python -m core.lab.run.worker``, started by :class:`core.lab.run.controller.RunController`.

Why a process and not a thread of the web server: every page of every session
is drawn by the server's Python interpreter, and a thread that trains shares
that interpreter's lock (the GIL) with them. Each redraw of the live curves
then stopped the run for as long as it took (a 1000-epoch run in the browser
took 14% longer than on the command line), and two sessions training at once
shared one core between them and every page. A process of its own has its own
interpreter: it trains at the command line's speed on a core of its own, and
the pages never wait for it.

It is the same engine: this process builds the same :class:`~core.engine.trainer.Trainer`
from the exact state the session had (parameters, optimizer state, position in
the epoch, the images of the split) and calls ``Trainer.run``, which calls
``MLP.step`` as the stepper does. Resuming is exact, so the result is bit for bit
the run an uninterrupted ``Trainer.run`` in the server would have made.

The conversation, over the child's stdin and stdout, in frames of an 8-byte
length and a message of :func:`pack`: one JSON header and named arrays of
numbers (nothing is ever pickled):

* parent → child: one *start* frame (the state to train from, the target), then
  single command bytes: ``p`` (end the run between two steps, the parent says
  whether that is a pause or a stop). When stdin closes (the server went away)
  the child stops too.
* child → parent: a *progress* frame as soon as it is ready, then about every
  ``FLUSH_EVERY`` seconds, and an *end* frame (the parent ends a process that has
  sent nothing for much longer: see the controller's watchdog). Each carries a complete, consistent state at a step boundary:
  parameters, optimizer state, counters, and what the history gained since the
  last frame (new epoch rows, per-step losses, snapshots). The parent applies
  each one whole, so whatever happens to this process, the session is left at
  the last state it received, never at half a step.
"""
from __future__ import annotations

import json
import os
import signal
import struct
import sys
import threading
import time
import traceback

import numpy as np

FLUSH_EVERY = 0.25          # seconds between progress frames while training
MAX_FRAME = 1 << 30         # a start frame holds at most 60,000 images (47 MB); anything near 1 GB is garbage
PAUSE = b"p"


# --------------------------------------------------------------------------- frames
def pack(header: dict, arrays: dict[str, np.ndarray] | None = None) -> bytes:
    """One message: a JSON header and named numeric arrays.

    Layout: a 4-byte length, a JSON object ``{"header": …, "arrays": [[name, dtype,
    shape], …]}``, then each array's bytes in that order. Not ``.npz``: NumPy reads a
    ``.npy`` header with ``ast.literal_eval``, and CPython 3.11's AST is not safe to
    use from two threads at once (gh-106905: Streamlit compiles page scripts in its
    threads while this process's reports are read in another), which raised
    ``SystemError: AST constructor recursion depth mismatch`` in the tests.
    """
    arrays = {k: np.asarray(v, order="C") for k, v in (arrays or {}).items()}   # (ascontiguousarray makes 0-d arrays 1-d)
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{k}: only numbers cross to the training process, not {a.dtype}")
    meta = json.dumps({"header": header, "arrays": [[k, a.dtype.str, list(a.shape)] for k, a in arrays.items()]})
    meta_bytes = meta.encode()
    return b"".join([struct.pack("<I", len(meta_bytes)), meta_bytes, *(a.tobytes() for a in arrays.values())])


def unpack(payload) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and arrays of :func:`pack`. The arrays are views into ``payload``
    (writable when it is a ``bytearray``, as :func:`read_frame` returns)."""
    (n,) = struct.unpack_from("<I", payload)
    meta = json.loads(bytes(payload[4:4 + n]))
    offset, arrays = 4 + n, {}
    for name, dt, shape in meta["arrays"]:
        dtype = np.dtype(dt)
        if dtype.kind not in "biuf":
            raise ValueError(f"{name}: {dt} is not a numeric type")
        count = int(np.prod(shape, dtype=np.int64))
        arrays[name] = np.frombuffer(payload, dtype, count, offset).reshape(tuple(shape))
        offset += count * dtype.itemsize
    if offset != len(payload):
        raise ValueError("the frame's arrays do not add up to its length")
    return meta["header"], arrays


def write_frame(stream, payload: bytes) -> None:
    stream.write(struct.pack("<Q", len(payload)))
    stream.write(payload)
    stream.flush()


def read_exact(stream, n: int) -> bytearray | None:
    buf, got = bytearray(n), 0
    view = memoryview(buf)
    while got < n:
        k = stream.readinto(view[got:])
        if not k:
            return None
        got += k
    return buf


def read_frame(stream) -> bytearray | None:
    """The next frame's payload, or None at the end of the stream."""
    head = read_exact(stream, 8)
    if head is None:
        return None
    (n,) = struct.unpack("<Q", head)
    if n > MAX_FRAME:
        raise ValueError(f"a frame of {n:,} bytes: the other side is not speaking this protocol")
    return read_exact(stream, n)


# --------------------------------------------------------------------------- state as arrays
def state_arrays(trainer) -> dict[str, np.ndarray]:
    """The parameters and the optimizer's state, by name."""
    out = {f"param/{k}": v for k, v in trainer.net.params.items()}
    out.update({f"opt/{k}": np.asarray(v) for k, v in trainer.optimizer.state().items()})
    return out


def params_from(arrays: dict, prefix: str = "param/") -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def owned(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Copies that own their memory, allocated (and so aligned) as NumPy allocates every
    array a step makes. The arrays of a frame are views at whatever offset the frame's
    header left them; a network resumed from those would differ from an uninterrupted
    one in where its first step's operands sit in memory, which a BLAS kernel may see."""
    return {k: np.array(v, copy=True, order="C") for k, v in arrays.items()}


# --------------------------------------------------------------------------- the child
class _Outbox:
    """What this run has sent so far, so each frame carries only what is new."""

    def __init__(self, trainer, stream):
        self.trainer, self.stream = trainer, stream
        self.rows_sent = 0
        self.steps_sent = 0
        self.snaps_sent: set[int] = set(trainer.snapshots)

    def send(self, kind: str, **extra) -> None:
        tr, h = self.trainer, self.trainer.history
        n_rows = len(h)
        arrays = state_arrays(tr)
        # the new epochs' rows, column by column, as the history's schema types them
        arrays.update({f"row/{k}": v for k, v in h.columns(self.rows_sent, n_rows).items()})
        arrays["step_loss"] = h.step_loss[self.steps_sent:]
        new_snaps = sorted(set(tr.snapshots) - self.snaps_sent)
        for e in new_snaps:
            arrays.update({f"snap/{e}/{k}": v for k, v in tr.snapshots[e].items()})
        header = {"kind": kind, "state": tr.state(), "snapshots": new_snaps, **extra}
        write_frame(self.stream, pack(header, arrays))
        self.rows_sent, self.steps_sent = n_rows, h.n_steps
        self.snaps_sent.update(new_snaps)


def build_trainer(header: dict, arrays: dict):
    """The trainer a start frame describes: the session's, exactly where it was."""
    from core.data.mnist import Digits, Split
    from core.engine.trainer import Trainer

    n_train = int(header["n_train"])
    X, y = arrays["X"], arrays["y"]
    # the start frame holds the training images first, then the validation images, in the session's order
    split = Split(Digits(X, y, "training process"), np.arange(n_train), np.arange(n_train, len(y)),
                  seed=int(header["state"]["seed"]))
    return Trainer.from_state(header["net"], owned(params_from(arrays)), header["optimizer"],
                              owned(params_from(arrays, "opt/")),
                              header["state"], split, snapshot_epochs=header["snapshot_epochs"],
                              telemetry_every=int(header["telemetry_every"]))


def serve(stdin, stdout) -> int:
    """Read a start frame, train, report; returns the exit code."""
    payload = read_frame(stdin)
    if payload is None:
        return 2
    try:
        return train(stdin, stdout, *unpack(payload))
    except Exception as err:  # a bug: say so; the parent keeps the last complete state it received
        write_frame(stdout, pack({"kind": "failed", "message": f"{err!r}\n{traceback.format_exc(limit=4)}"}))
        return 1


def train(stdin, stdout, header: dict, arrays: dict) -> int:
    from core.engine.blas import set_blas_threads
    set_blas_threads(1)     # as the server and the command line: see core/engine/blas.py
    if header.get("nice") and hasattr(os, "nice"):   # (not on Windows)
        try:
            os.nice(int(header["nice"]))   # pages (the server's process) come first when cores are short
        except OSError:
            pass
    trainer = build_trainer(header, arrays)
    del arrays
    out = _Outbox(trainer, stdout)
    asked = threading.Event()

    def listen() -> None:          # blocks in read (no CPU) until the parent says something or goes away
        while True:
            b = stdin.read(1)
            if not b or b == PAUSE:
                asked.set()
            if not b:
                return

    threading.Thread(target=listen, name="commands", daemon=True).start()
    pause_at = header.get("pause_at")
    next_flush = time.monotonic()       # a first report at once: the parent then knows it is alive

    def should_stop() -> bool:
        nonlocal next_flush
        now = time.monotonic()
        if now >= next_flush:
            out.send("progress")
            next_flush = now + FLUSH_EVERY
        return asked.is_set() or (pause_at is not None and trainer.global_step >= pause_at)

    result = trainer.run(int(header["epochs"]), should_stop=should_stop)
    out.send("end", reason=result.reason, message=result.message)
    return 0


def main() -> int:
    # unbuffered input: the thread that waits for commands blocks in a plain read, which
    # neither holds a lock at exit nor reads ahead past the start frame
    stdin, stdout = sys.stdin.buffer.raw, sys.stdout.buffer
    sys.stdout = sys.stderr     # the frames own stdout: a stray print must not corrupt them
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C stops the server; its closing our input stops us
    try:
        return serve(stdin, stdout)
    except BrokenPipeError:     # the server went away while we were reporting
        return 0


if __name__ == "__main__":
    sys.exit(main())
