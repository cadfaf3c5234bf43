"""Divergence is never a dead end, and never a false alarm.

A step is judged by what it does to the network (``MLP.judge``): one that would make a
layer's weights more than ten times larger, or not finite, is refused and changes nothing,
so the network kept is the last healthy one and a smaller learning rate trains on from it.
The loss of one confidently wrong image (batch size 1 or 2) is no reason to stop. Undo
(``Workspace.undo_points`` / ``undo``) and a fresh network are the other ways out, offered
as buttons under the message on the stepper and on the training page."""
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.data.mnist import make_split
from core.engine.network import MAX_GROWTH, MLP, DivergenceError, to_float
from core.engine.optim import make_optimizer
from core.engine.trainer import Trainer, evaluate
from core.lab.run.controller import DIVERGED, DONE, IDLE
from core.lab.settings import Settings
from core.lab.stepper import DIVERGED as SHOWN_DIVERGED, Stepper
from core.lab.workspace import Workspace
from ui.state import session

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
SMALL = {"pool": 3000, "val": 500}      # 2,500 training images → 40 steps of 64 per epoch

EXPLOSIONS = {   # what students try → (settings, the step that would blow the weights up)
    "SGD, η 50": ({"lr": 50.0}, 2),
    "Adam, η 10": ({"optimizer": "adam", "lr": 10.0}, 1),
    "sigmoid, η 100": ({"activation": "sigmoid", "lr": 100.0}, 1),
}


def lab(mnist, **kw) -> Workspace:
    return Workspace(Settings(**{**SMALL, **kw}), mnist["train"], mnist["test"])


def step_until_refused(ws: Workspace, limit: int = 50) -> DivergenceError:
    for _ in range(limit):
        try:
            ws.step()
        except DivergenceError as err:
            return err
    raise AssertionError(f"no step was refused in {limit}")


def validation_loss(ws: Workspace) -> float:
    src, idx = ws.split.source, ws.split.val_idx
    return evaluate(ws.net, src.X[idx], src.y[idx])["loss"]


# --------------------------------------------------------------------------- the guard
@pytest.mark.parametrize("case", list(EXPLOSIONS))
def test_an_explosion_is_refused_at_the_step_that_would_cause_it_and_changes_nothing(mnist, case):
    settings, bad = EXPLOSIONS[case]
    ws = lab(mnist, **settings)
    tr = ws.trainer
    for _ in range(bad - 1):
        ws.step()
    params, opt_state, state = tr.net.params, tr.optimizer.state(), tr.state()
    with pytest.raises(DivergenceError) as caught:
        ws.step()
    err = caught.value
    assert err.after > MAX_GROWTH * err.before and not err.already_broken
    # nothing moved: parameters, optimizer state (Adam's counter too), counters, history
    assert tr.net.params is params and tr.state() == state and tr.history.n_steps == bad - 1
    now = tr.optimizer.state()
    assert now.keys() == opt_state.keys() and all(np.array_equal(now[k], opt_state[k]) for k in now)
    # the network kept is healthy: finite, and no worse on held-out images than a few times chance
    assert all(np.isfinite(p).all() for p in tr.net.params.values())
    assert validation_loss(ws) < 2 * np.log(10)
    assert ws.error.startswith(f"Training diverged at epoch 1, step {bad} (global step {bad}). This step would "
                               f"have made the weights of layer {err.layer} ")
    assert "ten times smaller" in ws.error


@pytest.mark.parametrize("case", list(EXPLOSIONS))
def test_the_same_explosion_is_caught_in_a_run_leaving_the_network_before_it(mnist, case):
    settings, bad = EXPLOSIONS[case]
    ws = lab(mnist, **settings)
    r = ws.trainer.run(2)
    assert r.reason == "diverged" and ws.trainer.global_step == bad - 1
    assert r.message.startswith(f"Training diverged at epoch 1, step {bad} (global step {bad}).")
    reference = lab(mnist, **settings)
    for _ in range(bad - 1):
        reference.step()
    for k, v in reference.net.params.items():
        np.testing.assert_array_equal(ws.net.params[k], v, err_msg=k)


@pytest.mark.parametrize("case, lower", [("SGD, η 50", 0.1), ("SGD, η 50", 0.001), ("Adam, η 10", 0.001),
                                         ("sigmoid, η 100", 0.1)])
def test_lowering_the_learning_rate_trains_on_from_the_kept_network(mnist, case, lower):
    settings, bad = EXPLOSIONS[case]
    ws = lab(mnist, **settings)
    step_until_refused(ws)
    ws.set_hyper(replace(ws.settings, lr=lower))
    trace = ws.step()                                   # the very step that was refused now trains
    assert ws.trainer.global_step == bad and np.isfinite(float(trace["loss"]))
    r = ws.trainer.run(1)
    assert r.reason == "done", r.message
    assert ws.trainer.epoch == 1 and np.isfinite(ws.history.step_loss).all()


def test_a_learning_rate_still_too_large_gets_past_the_step_and_says_so_anew(mnist):
    """η 50 → 5: the refused step trains; a later one that is still too large is refused with its own advice."""
    ws = lab(mnist, lr=50.0)
    step_until_refused(ws)
    ws.set_hyper(replace(ws.settings, lr=5.0))
    ws.step()
    assert ws.trainer.global_step == 2
    r = ws.trainer.run(1)
    if r.reason == "diverged":
        assert ws.trainer.global_step > 2 and "(0.5 instead of 5)" in r.message


def test_the_message_names_the_epoch_the_step_and_the_global_step(mnist):
    ws = lab(mnist)
    ws.trainer.run(1)                                   # 40 healthy steps at η 0.1
    ws.set_hyper(replace(ws.settings, optimizer="adam", lr=10.0))
    err = step_until_refused(ws)
    s = ws.trainer.step_in_epoch + 1
    assert err.advice == ws.error
    assert ws.error.startswith(f"Training diverged at epoch 2, step {s} (global step {40 + s}).")


def test_a_refused_step_keeps_the_momentum_it_had(mnist):
    ws = lab(mnist, optimizer="momentum", lr=0.05)
    ws.step()
    ws.step()
    ws.set_hyper(replace(ws.settings, lr=1e4))
    V = ws.optimizer.V
    with pytest.raises(DivergenceError):
        ws.step()
    assert ws.optimizer.V.keys() == V.keys() and all(ws.optimizer.V[k] is V[k] for k in V)


def test_a_network_broken_before_the_step_is_told_to_go_back_not_to_lower_the_rate(mnist):
    ws = lab(mnist)
    ws.trainer.net.params = dict(ws.net.params, W3=np.full_like(ws.net.params["W3"], np.inf))
    err = step_until_refused(ws, 1)
    assert err.already_broken
    assert "undo the last steps or start a fresh network" in ws.error and "ten times smaller" not in ws.error


# --------------------------------------------------------------------------- no false alarms
@pytest.mark.parametrize("batch, pool, seed, epochs", [(1, 4000, 1, 1), (2, 8000, 2, 2), (4096, 5000, 0, 2)])
def test_healthy_runs_at_the_seed_rate_are_never_stopped_whatever_the_batch_size(mnist, batch, pool, seed, epochs):
    """With one or two images a batch, one confidently wrong image can make the batch's loss 25 or 50: that is
    no divergence. Each run goes to its end and learns; then a batch of one image labelled as the digit the
    trained network thinks least likely (a loss the old cut-off at 10·ln 10 took for a blow-up) is trained on."""
    split = make_split(mnist["train"], pool=pool, val=500, seed=seed)
    tr = Trainer(MLP([784, 64, 64, 10], seed=seed), make_optimizer("sgd", lr=0.1), split, batch_size=batch,
                 seed=seed)
    r = tr.run(epochs)
    assert r.reason == "done", r.message
    assert tr.epoch == epochs and np.isfinite(tr.history.step_loss).all()
    if batch > 2:
        return                                                    # (4 steps: too few to be confident)
    assert tr.history.rows["val_acc"][-1] > 0.3                  # it learned (chance is 0.1)
    X = split.source.X[split.train_idx[:500]]
    v = tr.net.forward(to_float(X, tr.net.dtype))
    worst = np.argmin(v["A3"], axis=1)                            # each image's least likely digit
    losses = tr.net.sample_losses(v, worst)
    i = int(np.argmax(losses))
    assert losses[i] > 10 * np.log(10)
    tr.train_step(images=(X[i:i + 1], worst[i:i + 1]))            # no DivergenceError
    assert np.isfinite(tr.history.step_loss[-1]) and tr.history.step_loss[-1] > 10 * np.log(10)


# --------------------------------------------------------------------------- the ways out
def test_undo_goes_back_exactly_across_an_epoch_and_steps_on_the_same_way(mnist):
    ws = lab(mnist, pool=300, val=100, optimizer="momentum", lr=0.05)   # 200 images: 4 steps an epoch
    after = {}
    for _ in range(6):
        ws.step()
        after[ws.trainer.global_step] = ws.net.params
    row = ws.history.columns()
    assert len(ws.history) == 1 and 1 in ws.trainer.snapshots
    back = next(p for p in ws.undo_points() if p.global_step == 2)
    ws.undo(back)
    tr = ws.trainer
    assert (tr.epoch, tr.step_in_epoch, tr.global_step) == (0, 2, 2) and ws.net.params is after[2]
    assert len(ws.history) == 0 and ws.history.n_steps == 2 and sorted(tr.snapshots) == [0]
    assert [r.number for r in ws.steps] == [1, 2] and ws.current is None
    for n in range(3, 7):
        ws.step()
        for k, v in after[n].items():
            np.testing.assert_array_equal(ws.net.params[k], v, err_msg=f"{k} after step {n}")
    again = ws.history.columns()
    for k, v in row.items():
        np.testing.assert_array_equal(again[k], v, err_msg=k)


def test_undo_of_a_run_goes_back_to_where_it_started(mnist):
    ws = lab(mnist)
    ws.step()
    ws.step()
    start = ws.net.params
    ws.set_hyper(replace(ws.settings, lr=10.0))
    assert ws.runner.start(3)
    ws.runner.join(60)
    assert ws.runner.status == DIVERGED and ws.trainer.global_step > 2
    point = ws.undo_points()[0]
    assert point is ws.runner.started_from and point.global_step == 2
    assert [p.global_step for p in ws.undo_points()] == [2, 1, 0]
    ws.undo(point)
    assert ws.net.params is start and ws.trainer.global_step == 2 and ws.history.n_steps == 2
    assert ws.runner.status == IDLE and ws.runner.message == "" and ws.undo_points()[0].global_step == 1
    ws.set_hyper(replace(ws.settings, lr=0.1))
    assert ws.runner.start(1)
    ws.runner.join(60)
    assert ws.runner.status == DONE and ws.trainer.epoch == 1


def test_a_fresh_network_starts_over_with_the_settings_as_they_are_now(mnist):
    ws = lab(mnist, lr=50.0)
    step_until_refused(ws)
    ws.set_hyper(replace(ws.settings, lr=0.1))
    ws.fresh()
    seed = MLP([784, 64, 64, 10], seed=ws.settings.seed)
    assert ws.trainer.global_step == 0 and not ws.steps and ws.history.n_steps == 0 and ws.error == ""
    for k, v in seed.params.items():
        np.testing.assert_array_equal(ws.net.params[k], v)
    assert ws.optimizer.lr == 0.1 and ws.runner.status == IDLE
    ws.step()


def test_the_stepper_forgets_a_refused_step_once_the_network_has_gone_back(mnist):
    ws, s = lab(mnist, lr=50.0), Stepper()
    s.take_step(ws, s.batch(ws, "next"))
    s.take_step(ws, s.batch(ws, "random"))
    assert s.diverged is not None and s.shown == SHOWN_DIVERGED and s.shown_step(ws).record is None
    s.undo(ws, ws.undo_points()[0])
    assert s.diverged is None and ws.trainer.global_step == 0 and s.shown_step(ws) is None
    s.take_step(ws, s.batch(ws, "next"))
    assert s.take_step(ws, s.batch(ws, "random")) is False      # η is still 50
    ws.undo(ws.undo_points()[0])                              # the training page's undo: the stepper follows
    assert s.follow(ws).diverged is None
    s.take_step(ws, s.batch(ws, "next"))
    s.fresh(ws)
    assert s.diverged is None and ws.trainer.global_step == 0 and s.shown_step(ws) is None


# --------------------------------------------------------------------------- the pages
def open_page(page: str, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in {**SMALL, **query}.items():
        at.query_params[k] = str(v)
    at.run()
    at.switch_page(page)
    return rerun(at)


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click()
    return rerun(at)


def set_learning_rate(at: AppTest, lr: float) -> None:
    """As a student does: the sidebar's learning rate, then Apply settings."""
    [n for n in at.number_input if n.label == "Learning rate η"][0].set_value(lr)
    [b for b in at.button if b.label == "Apply settings"][0].click()
    rerun(at)


def poll(at: AppTest, done, timeout: float = 300.0) -> None:   # a state, with room for a busy machine
    """Rerun the page until ``done()``, then once more so what is on screen shows it."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        time.sleep(0.2)
        rerun(at)
        if done():
            rerun(at)
            return
    raise AssertionError("the page never got there")


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.main.error]


@pytest.mark.parametrize("lower", [5.0, 0.1, 0.001])
def test_stepper_page_a_lower_rate_steps_on_from_where_it_diverged(lower):
    at = open_page("pages/stepper.py", lr=50)
    ws = session(at.session_state).ws
    click(at, "stepper_step")
    click(at, "stepper_step")
    assert ws.trainer.global_step == 1
    assert any(e.startswith("Training diverged at epoch 1, step 2 (global step 2).") for e in errors(at)), errors(at)
    set_learning_rate(at, lower)
    assert ws.optimizer.lr == lower and session(at.session_state).ws is ws
    click(at, "stepper_step")
    assert ws.trainer.global_step == 2 and not errors(at), errors(at)
    assert session(at.session_state).stepper.diverged is None


def test_stepper_page_undo_and_fresh_network_buttons():
    at = open_page("pages/stepper.py", lr=50)
    ws = session(at.session_state).ws
    click(at, "stepper_step")
    first = ws.net.params
    click(at, "stepper_step")
    click(at, "stepper_undo")                            # the last 1 step: back to step 0
    assert ws.trainer.global_step == 0 and not errors(at) and ws.net.params is not first
    click(at, "stepper_step")
    click(at, "stepper_step")
    trainer = ws.trainer
    click(at, "stepper_fresh")
    assert ws.trainer is not trainer and ws.trainer.global_step == 0 and not errors(at)
    assert any("Press **Step**" in i.value for i in at.info)


@pytest.mark.parametrize("lower", [5.0, 0.1, 0.001])
def test_training_page_a_lower_rate_continues_from_where_it_diverged(lower):
    at = open_page("pages/training.py", lr=50, epochs=1)
    ws = session(at.session_state).ws
    click(at, "training_start")
    poll(at, lambda: not ws.busy)
    assert ws.runner.status == DIVERGED and ws.trainer.global_step == 1
    assert any("Training diverged at epoch 1, step 2 (global step 2)." in e for e in errors(at)), errors(at)
    set_learning_rate(at, lower)
    click(at, "training_start")                          # Continue training
    poll(at, lambda: not ws.busy)
    assert ws.trainer.global_step > 2
    if lower < 1:
        assert ws.runner.status == DONE and ws.trainer.epoch == 1 and not errors(at), errors(at)
    elif ws.runner.status == DIVERGED:                   # still too large: stopped later, with advice for 5
        assert any("(0.5 instead of 5)" in e for e in errors(at)), errors(at)


def test_training_page_undo_and_fresh_network_buttons():
    at = open_page("pages/training.py", lr=10, epochs=1)
    ws = session(at.session_state).ws
    start = ws.net.params
    click(at, "training_start")
    poll(at, lambda: not ws.busy)
    assert ws.runner.status == DIVERGED and ws.trainer.global_step > 0
    click(at, "training_undo")                           # where the run started
    assert ws.net.params is start and ws.trainer.global_step == 0 and ws.history.n_steps == 0
    assert not errors(at) and at.button(key="training_start").label == "Start training"
    click(at, "training_start")
    poll(at, lambda: not ws.busy)
    trainer = ws.trainer
    click(at, "training_fresh")
    assert ws.trainer is not trainer and ws.trainer.global_step == 0 and ws.runner.status == IDLE
    assert not errors(at)
