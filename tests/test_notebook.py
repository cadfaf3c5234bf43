"""The step as a notebook: it runs top to bottom in a fresh kernel, and a wrong recomputation fails.

Each kernel test executes one notebook (a few seconds); the registry checks below run the same
NumPy source in this process, so a new activation or optimizer whose notebook form disagrees
with what the engine does fails here without a kernel.
"""
from dataclasses import replace

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from core.engine.activations import ACTIVATIONS
from core.engine.network import MLP
from core.engine.optim import OPTIMIZERS, make_optimizer, snapshot
from core.lab.settings import Settings
from core.lab.workspace import Workspace
from core.teach.notebook import step_notebook

from tests.test_stepper_page import click, open_stepper, state


def stepped(mnist, steps=1, **kw) -> tuple[Workspace, object]:
    """The seed's network (784 → 64 → 64 → 10) after ``steps`` steps on small batches."""
    ws = Workspace(replace(Settings(pool=3000, val=500, batch_size=8), **kw), mnist["train"], mnist["test"])
    for _ in range(steps):
        ws.step()
    return ws, ws.steps[-1]


def notebook_of(ws, rec) -> nbformat.NotebookNode:
    data = step_notebook(ws.trace_of(rec), rec.optimizer_before, number=rec.number)
    nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    nbformat.validate(nb)
    return nb


def run(nb) -> nbformat.NotebookNode:
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    return nb


def code_with(nb, text: str) -> nbformat.NotebookNode:
    found = [c for c in nb.cells if c.cell_type == "code" and text in c.source]
    assert len(found) == 1, f"one code cell should hold {text!r}"
    return found[0]


def test_the_notebook_of_a_real_step_runs_top_to_bottom_and_agrees_with_the_app(mnist):
    ws, rec = stepped(mnist)
    nb = run(notebook_of(ws, rec))
    asserts = sum(c.source.count("np.testing.assert_allclose(") for c in nb.cells if c.cell_type == "code")
    trace = ws.trace_of(rec)
    assert asserts == len([n for n in trace if n not in ("X", "y", "W1", "b1", "W2", "b2", "W3", "b3")])
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert f"loss = {trace.loss:.4f}"[:12] in printed           # the loss it printed is the app's
    # the notation on screen: the cells compute under the names the page shows
    for line in ("Z1 = X @ W1 + b1", "A1 = np.maximum(Z1, 0)", "dZ3 = (A3 - Y) / m", "dW1 = X.T @ dZ1",
                 "dZ2 = dA2 * (Z2 > 0)", "ΔW1 = -lr * dW1", "W1_new = W1 + ΔW1"):
        code_with(nb, line)
    assert "allow_pickle=False" in nb.cells[1].source


def test_a_wrong_recomputation_fails_at_its_own_cell(mnist):
    ws, rec = stepped(mnist)
    nb = notebook_of(ws, rec)
    cell = code_with(nb, "dZ3 = (A3 - Y) / m")
    cell.source = cell.source.replace("dZ3 = (A3 - Y) / m", "dZ3 = (A3 + Y) / m")     # the sign a student might slip
    with pytest.raises(CellExecutionError) as err:
        run(nb)
    assert "AssertionError" in str(err.value) and "dZ3 = (A3 + Y) / m" in str(err.value)
    ran = [c for c in nb.cells if c.cell_type == "code" and c.get("execution_count")]
    assert ran[-1] is cell                      # the cells before it agreed; none after it ran


@pytest.mark.parametrize("optimizer, activation", [("momentum", "sigmoid"), ("adam", "tanh"), ("rmsprop", "relu")])
def test_a_stateful_optimizers_update_is_recomputed_from_the_embedded_state(mnist, optimizer, activation):
    # the second step, so the update starts from state the first one left (velocity, moments, t = 1)
    ws, rec = stepped(mnist, steps=2, optimizer=optimizer, activation=activation, lr=0.01, weight_decay=1e-3)
    assert rec.optimizer_before.state()                      # there is state to embed
    nb = notebook_of(ws, rec)
    update = code_with(nb, "ΔW1 =")
    assert "weight_decay * W1" in update.source and "(first step" not in update.source
    run(nb)


def test_a_float64_network_is_recomputed_in_float64_to_its_tolerance():
    net = MLP([784, 20, 10], activation="leaky_relu", init="he", seed=3, dtype=np.float64)
    rng = np.random.default_rng(3)
    X, y = rng.random((6, 784)), rng.integers(0, 10, 6)
    before = make_optimizer("sgd", lr=0.1)
    trace = net.step(X, y, snapshot(before))
    nb = nbformat.reads(step_notebook(trace, before).decode("utf-8"), as_version=4)
    assert "rtol=1e-10" in nb.cells[1].source and "A1 = np.where(Z1 > 0" in code_with(nb, "Z1 = X @ W1").source
    run(nb)


def test_the_notebook_leaves_out_the_update_when_it_has_no_optimizer(mnist):
    ws, rec = stepped(mnist)
    nb = nbformat.reads(step_notebook(ws.trace_of(rec)).decode("utf-8"), as_version=4)
    assert not any("ΔW1" in c.source for c in nb.cells if c.cell_type == "code")
    assert any("dW1 = X.T @ dZ1" in c.source for c in nb.cells)


# --------------------------------------------------------------------------- the records' NumPy forms
@pytest.mark.parametrize("key", sorted(ACTIVATIONS))
def test_every_activations_numpy_form_is_what_the_engine_computes(key):
    act = ACTIVATIONS[key]
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((5, 7)).astype(np.float32) * 3
    dA = rng.standard_normal((5, 7)).astype(np.float32)
    A = act.f(Z)
    mine = eval(act.f_numpy.format(Z="Z"), {"np": np, "Z": Z})
    np.testing.assert_allclose(mine, A, rtol=1e-6, atol=1e-7)
    dZ = eval(act.dz_numpy.format(dA="dA", Z="Z", A="A"), {"np": np, "dA": dA, "Z": Z, "A": A})
    np.testing.assert_allclose(dZ, act.backward(dA, Z, A), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("key", sorted(OPTIMIZERS))
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_every_optimizers_numpy_update_is_what_the_engine_computes(key, weight_decay):
    rng = np.random.default_rng(1)
    params = {"W1": rng.standard_normal((4, 3)).astype(np.float32), "b1": rng.standard_normal(3).astype(np.float32)}
    opt = make_optimizer(key, lr=0.05, weight_decay=weight_decay)
    for _ in range(3):          # the first step (no state) and later ones
        grads = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
        before = snapshot(opt)
        deltas = opt.update(params, grads)
        scope = {"np": np, **params, **{"d" + k: g for k, g in grads.items()},
                 **{k: v for k, v in before.hyper.items() if k != "optimizer"},
                 **{k: (int(v) if k in before.counters else v) for k, v in before.state().items()}}
        for _run in range(2):       # a student may run the cell again: it must give the same update
            exec(before.numpy_update(list(params)), scope)
            for k in params:
                np.testing.assert_allclose(scope["Δ" + k], deltas[k], rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- the page
def notebook_button(at):
    buttons = at.get("download_button")
    return buttons[0].proto if buttons else None


def test_the_stepper_offers_the_step_shown_as_a_notebook_but_not_a_diverged_one():
    at = open_stepper(lr="100")
    assert notebook_button(at) is None                        # no step yet, nothing to download
    click(at, "stepper_step")
    button = notebook_button(at)
    assert button.label == "Download this step as a notebook (.ipynb)" and not button.disabled
    click(at, "stepper_step")                                 # η = 100 blows the weights up on the second step
    assert state(at).diverged is not None
    assert notebook_button(at) is None                        # a refused step is not one the network took
