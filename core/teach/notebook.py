"""One step of backprop as a Jupyter notebook a student can run, read and edit.

:func:`step_notebook` writes an ``.ipynb`` (nbformat v4) that embeds the step's batch, the
parameters before it and the optimizer's state, recomputes every quantity of the step with
plain NumPy in the notation on screen (``Z1 = X @ W1 + b1``, ``dZ3 = (A3 - Y) / m``,
``ΔW1 = -lr * dW1`` …), and checks each against the value the app recorded with
``np.testing.assert_allclose``. It runs top to bottom in a fresh kernel with only NumPy.

Arrays travel as base64 of ``np.save`` bytes, read back with ``allow_pickle=False``. The
NumPy source of an activation and of an optimizer's update comes from their own records
(``Activation.f_numpy``, ``optimizer.numpy_update``); the words and LaTeX from the trace's specs.
"""
from __future__ import annotations

import base64
import io

import nbformat
import numpy as np
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from core.engine.network import BN_EPS, BN_MOMENTUM, RUN, Trace

MAX_BYTES = 32 * 2**20   # arrays a notebook embeds at most (about 4/3 as many bytes of notebook)

# How close a recomputation must come to the app's value, per dtype: relative, and absolute as a
# share of the largest entry (sums of hundreds of float32 products differ in their last bits with
# the order BLAS adds them in).
TOLERANCES = {"float32": (1e-4, 1e-5), "float64": (1e-10, 1e-12)}


def _b64(a) -> str:
    buf = io.BytesIO()
    np.save(buf, np.asarray(a), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def embedded_bytes(trace: Trace, optimizer=None) -> int:
    """Bytes of the arrays :func:`step_notebook` would embed (compare with ``MAX_BYTES``)."""
    state = optimizer.state().values() if optimizer is not None else ()
    return sum(np.asarray(v).nbytes for v in trace.values.values()) + sum(np.asarray(v).nbytes for v in state)


def _md(trace: Trace, *names: str) -> str:
    """Each quantity's equation and the app's line about it."""
    return "\n\n".join(f"$${trace.spec(n).latex}$$\n{trace.spec(n).about}" for n in names)


def py(name: str) -> str:
    """The Python name of a quantity: its own, but ``var1`` for ``σ²1`` (a name cannot hold ²)."""
    return name.replace("σ²", "var")


def _check(*names: str) -> str:
    return "\n".join(f'np.testing.assert_allclose({py(n)}, app["{n}"], **tol(app["{n}"]))' for n in names)


def step_notebook(trace: Trace, optimizer=None, *, number: int | None = None, network: str = "") -> bytes:
    """The notebook of one step, as the bytes of an ``.ipynb`` file.

    ``trace`` is the step's (``MLP.step``: it holds the batch ``X, y``, the parameters before
    the step and every quantity computed); ``optimizer`` the optimizer *as it was before the
    step* (``StepRecord.optimizer_before``), whose state the update starts from. Without it (or
    for a trace with no update), the notebook stops after the backward pass. ``number`` is the
    step's number in training, ``network`` a line saying which network it is.
    """
    L = trace.n_layers
    act = trace.activation
    if not (act.f_numpy and act.dz_numpy):
        raise ValueError(f"The activation {act.label} has no NumPy form to write in a notebook.")
    names = list(trace.trained)      # W1, b1 (γ1, β1 with batch norm), W2, …
    bn = trace.batchnorm
    updates = optimizer is not None and all("Δ" + p in trace for p in names)
    running = [f"{s}{l}{RUN}" for l in range(1, L) for s in ("μ", "σ²")] if bn and updates else []
    dtype = np.asarray(trace["X"]).dtype.name
    rtol, atol = TOLERANCES.get(dtype, TOLERANCES["float32"])
    masks = list(trace.masks)       # dropout's, drawn at random by the step: data here, like the batch
    which = f"step {number:,}" if number is not None else "one step"
    arrow = " → ".join(map(str, trace.sizes))
    cells = []
    md = lambda s: cells.append(new_markdown_cell(s))
    code = lambda s: cells.append(new_code_cell(s))

    md(f"# Backprop, step by step: {which}\n\n"
       f"The network {arrow} ({act.label} hidden layers, softmax output) "
       f"took this step on a mini-batch of {len(trace['y'])} images"
       + (f" with {optimizer.name}." if updates else ".") +
       " This notebook holds the batch and the parameters before the step, recomputes every quantity "
       "of the step with plain NumPy, and checks each one against the number the app recorded.\n\n"
       f"The names are the ones on screen: samples are rows, `X` is (m, {trace.sizes[0]}); `Z1 = X @ W1 + b1`, "
       f"`A1` its activation, … `A{L}` the softmax; `dQ` is ∂L/∂Q, the derivative of the mean loss with "
       "respect to `Q` (`dZ1`, `dW1`, …); `ΔW1` is the change the update makes to `W1`.\n\n"
       "Run it top to bottom (it needs only NumPy), then edit a cell and run it again: if your "
       "recomputation is wrong, the `assert_allclose` below it fails."
       + (f"\n\n*The network:* {network}." if network else ""))

    code("import base64, io\n"
         "import numpy as np\n\n"
         "def unpack(text):\n"
         '    """An array from base64 of np.save bytes (never unpickled)."""\n'
         "    return np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)\n\n"
         f"def tol(recorded, rtol={rtol!r}, atol={atol!r}):\n"
         f'    """How close is close enough for {dtype}: relative, and absolute as a share of the largest entry."""\n'
         "    return {'rtol': rtol, 'atol': atol * max(float(np.abs(recorded).max(initial=0)), 1e-30)}")

    md("## The data\n\nThe mini-batch `X` (pixels scaled to [0, 1]) and its labels `y`, the parameters "
       "`W1, b1, …` as they were before the step"
       + (" and the optimizer's settings and state" if updates else "")
       + (f"; dropout's masks `{', '.join(masks)}` (p = {trace.dropout:g}), drawn at random by the step, so taken "
          "as it drew them" if masks else "")
       + ("; batch norm's running statistics before the step (`μ1_run`, `var1_run` for σ²1_run, …)" if running else "") +
       ". The second half, `app`, is what the app recorded for every quantity of the step: what each cell "
       "below is checked against. (The cell is folded: long lines of base64, nothing to read.)")
    inputs = ["X", "y", *names, *masks, *running]
    lines = [f'{py(n)} = unpack("{_b64(trace[n])}")' for n in inputs]
    if updates:
        lines += [f"{k} = {v!r}" for k, v in optimizer.hyper.items() if k != "optimizer"]
        for k, v in optimizer.state().items():
            lines.append(f"{k} = {int(v)}" if k in optimizer.counters else f'{k} = unpack("{_b64(v)}")')
    lines.append("app = {")
    checked = [n for n in trace if n not in inputs and (updates or trace.spec(n).phase != "update")]
    lines += [f'    "{n}": unpack("{_b64(trace[n])}"),' for n in checked]
    lines.append("}")
    lines.append(f"m = X.shape[0]\nprint('X', X.shape, X.dtype, '· y', y.shape, '· m =', m)")
    if bn:
        lines.append(f"bn_eps = {BN_EPS!r}   # batch norm's ε\nbn_momentum = {BN_MOMENTUM!r}   # of its running statistics")
    cells.append(new_code_cell("\n".join(lines), metadata={"jupyter": {"source_hidden": True}}))   # folded

    md("## Forward pass\n\nEach layer: a weighted sum of the layer below, `Z = A_prev @ W + b`, then "
       f"the activation ({act.label}); the last layer's is the softmax.")
    if bn:
        md("**Batch norm** on every hidden layer: `Z` is normalised over the batch, with the batch's mean `μ` "
           "and variance `σ²` (`var` in Python, whose names cannot hold ²), then scaled and shifted by `γ`, `β`; "
           "the activation is applied to `N`.")
    for l in range(1, L + 1):
        prev = "X" if l == 1 else f"A{l-1}"
        if l < L and bn:
            M = f"M{l}" in masks
            md(_md(trace, f"Z{l}", f"μ{l}", f"σ²{l}", f"Ẑ{l}", f"N{l}", *([f"M{l}"] if M else []), f"A{l}")
               + (f"\n\n`F{l}` is the activation before dropout, kept for the backward pass." if M else ""))
            f = act.f_numpy.format(Z=f"N{l}")
            code(f"Z{l} = {prev} @ W{l} + b{l}\n"
                 f"μ{l} = Z{l}.mean(axis=0)\n"
                 f"var{l} = Z{l}.var(axis=0)          # σ²{l}: divided by m\n"
                 f"Ẑ{l} = (Z{l} - μ{l}) / np.sqrt(var{l} + bn_eps)\n"
                 f"N{l} = γ{l} * Ẑ{l} + β{l}\n"
                 + (f"F{l} = {f}\nA{l} = F{l} * M{l}\n" if M else f"A{l} = {f}\n")
                 + _check(f"Z{l}", f"μ{l}", f"σ²{l}", f"Ẑ{l}", f"N{l}", f"A{l}"))
        elif l < L and f"M{l}" in masks:
            md(_md(trace, f"Z{l}", f"M{l}", f"A{l}") + f"\n\n`F{l}` is the activation before dropout, kept for the "
               "backward pass.")
            code(f"Z{l} = {prev} @ W{l} + b{l}\nF{l} = {act.f_numpy.format(Z=f'Z{l}')}\nA{l} = F{l} * M{l}\n"
                 + _check(f"Z{l}", f"A{l}"))
        elif l < L:
            md(_md(trace, f"Z{l}", f"A{l}"))
            code(f"Z{l} = {prev} @ W{l} + b{l}\nA{l} = {act.f_numpy.format(Z=f'Z{l}')}\n" + _check(f"Z{l}", f"A{l}"))
        else:
            md(_md(trace, f"Z{l}", f"A{l}") + "\n\nThe row maximum is subtracted before `exp`, so it cannot "
               "overflow; the probabilities are the same.")
            code(f"Z{l} = {prev} @ W{l} + b{l}\n"
                 f"E = np.exp(Z{l} - Z{l}.max(axis=1, keepdims=True))\n"
                 f"A{l} = E / E.sum(axis=1, keepdims=True)\n" + _check(f"Z{l}", f"A{l}"))

    md("## Loss\n\n" + _md(trace, "losses", "loss") + f"\n\n`-log A{L}[i, y_i]` is computed as "
       f"`log Σ_k e^Z{L}[i, k] − Z{L}[i, y_i]` (what the app does), so a tiny probability gives a large "
       "loss rather than `log 0`.")
    code(f"rows = np.arange(m)\n"
         f"Zmax = Z{L}.max(axis=1)\n"
         f"losses = Zmax + np.log(np.exp(Z{L} - Zmax[:, None]).sum(axis=1)) - Z{L}[rows, y]\n"
         f"loss = losses.sum() / m\n"
         f"print('loss =', loss)\n" + _check("losses", "loss"))

    md("## Backward pass\n\n" + _md(trace, "Y", f"dZ{L}"))
    code(f"Y = np.eye({trace.sizes[-1]}, dtype=X.dtype)[y]\n"
         f"dZ{L} = (A{L} - Y) / m\n" + _check("Y", f"dZ{L}"))
    for l in range(L, 0, -1):
        prev = "X" if l == 1 else f"A{l-1}"
        md(_md(trace, f"dW{l}", f"db{l}"))
        if bn and l < L:    # the engine stores 0: the column sums of dZ are 0 up to rounding
            code(f"dW{l} = {prev}.T @ dZ{l}\n"
                 f"db{l} = np.zeros_like(b{l})     # Σ_i dZ{l}[i] = 0: batch norm subtracts the mean, b{l} changes nothing\n"
                 f"np.testing.assert_allclose(dZ{l}.sum(axis=0), 0, atol=1e-4 * np.abs(dZ{l}).sum(axis=0).max())\n"
                 + _check(f"dW{l}", f"db{l}"))
        else:
            code(f"dW{l} = {prev}.T @ dZ{l}\ndb{l} = dZ{l}.sum(axis=0)\n" + _check(f"dW{l}", f"db{l}"))
        if l > 1:
            k = l - 1
            z = f"N{k}" if bn else f"Z{k}"      # what the activation was applied to
            dz = (act.dz_numpy.format(dA=f"(dA{k} * M{k})", Z=z, A=f"F{k}") if f"M{k}" in masks else
                  act.dz_numpy.format(dA=f"dA{k}", Z=z, A=f"A{k}"))
            if bn:
                md(_md(trace, f"dA{k}", f"dN{k}", f"dγ{k}", f"dβ{k}", f"dẐ{k}", f"dZ{k}"))
                code(f"dA{k} = dZ{l} @ W{l}.T\ndN{k} = {dz}\n"
                     f"dγ{k} = (dN{k} * Ẑ{k}).sum(axis=0)\n"
                     f"dβ{k} = dN{k}.sum(axis=0)\n"
                     f"dẐ{k} = dN{k} * γ{k}\n"
                     f"dZ{k} = (m * dẐ{k} - dẐ{k}.sum(axis=0) - Ẑ{k} * (dẐ{k} * Ẑ{k}).sum(axis=0)) "
                     f"/ (m * np.sqrt(var{k} + bn_eps))\n"
                     + _check(f"dA{k}", f"dN{k}", f"dγ{k}", f"dβ{k}", f"dẐ{k}", f"dZ{k}"))
            else:
                md(_md(trace, f"dA{k}", f"dZ{k}"))
                code(f"dA{k} = dZ{l} @ W{l}.T\ndZ{k} = {dz}\n" + _check(f"dA{k}", f"dZ{k}"))

    if updates:
        md(f"## Update ({optimizer.name})\n\n$${trace.spec('ΔW1').latex}$$\n{trace.spec('ΔW1').about} The same "
           "rule for every parameter, `b1`, `W2`, … (weight decay, if any, only on the weights); "
           "in the code, η is `lr` and λ is `weight_decay`.\n\n"
           "The optimizer decides the change `ΔW`; the network then becomes `W + ΔW`, "
           "what the next mini-batch will see.")
        code(optimizer.numpy_update(names) + "\n" + _check(*("Δ" + p for p in names)))
        code("\n".join(f"{p}_new = {p} + Δ{p}" for p in names) + "\n" + _check(*(p + "_new" for p in names)))
        if running:
            md("Batch norm's running statistics are not trained: each step averages its batch's in. "
               + _md(trace, *(n + "_new" for n in running)))
            code("\n".join(f"{py(n)}_new = bn_momentum * {py(n)} + (1 - bn_momentum) * {py(n.removesuffix(RUN))}"
                           for n in running) + "\n" + _check(*(n + "_new" for n in running)))
    md("Every cell above agreed with the app: this is the step it took."
       + ("" if updates else " (This step's update is not in the notebook.)"))

    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    nbformat.validate(nb)
    return nbformat.writes(nb).encode("utf-8")
