"""The learning-rate lesson (core/teach/lr_lesson.py): four steps on copies, through the one engine."""
import math

import numpy as np
import pytest

from core.data.mnist import load_mnist
from core.engine.network import MLP
from core.engine.optim import make_optimizer
from core.engine.trainer import Trainer
from core.lab.settings import Settings
from core.lab.workspace import Workspace
from core.teach import lr_lesson
from core.teach.lr_lesson import LEARNING_RATES, OUTCOMES, Lesson, Trial, score


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def workspace(mnist, **settings) -> Workspace:
    return Workspace(Settings(pool=3000, val=500, **settings), mnist["train"], mnist["test"])


def test_the_network_the_trainer_and_the_optimizer_are_unchanged(mnist):
    ws = workspace(mnist, optimizer="momentum", lr=0.1)
    ws.step(), ws.step()
    tr = ws.trainer
    params = dict(tr.net.params)
    copies = {k: v.copy() for k, v in params.items()}
    opt_state = {k: v.copy() for k, v in tr.optimizer.state().items()}
    state, lr, n_steps = tr.state(), tr.optimizer.lr, tr.history.n_steps
    lesson = lr_lesson.run(tr)
    assert len(lesson.trials) == 4
    assert tr.net.params.keys() == params.keys() and all(tr.net.params[k] is params[k] for k in params)
    for k, v in copies.items():
        np.testing.assert_array_equal(tr.net.params[k], v)
    for k, v in opt_state.items():
        np.testing.assert_array_equal(tr.optimizer.state()[k], v)
    assert tr.state() == state and tr.optimizer.lr == lr and tr.history.n_steps == n_steps
    assert len(ws.steps) == 2 and lesson.global_step == 2 and (lesson.epoch, lesson.step_in_epoch) == (1, 3)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_step_at_the_networks_own_lr_is_bit_for_bit_the_step_ws_step_takes(mnist, optimizer):
    lr = 0.1 if optimizer == "sgd" else 0.01
    ws = workspace(mnist, optimizer=optimizer, lr=lr)
    ws.step()                                 # a step taken, so the optimizer has a state (Adam's moments)
    lesson = lr_lesson.run(ws.trainer, (0.01, lr) if lr != 0.01 else (lr,), keep_params=True)
    mine = lesson.trial(lr)
    np.testing.assert_array_equal(lesson.idx, ws.trainer.next_indices())
    trace = ws.step()
    assert mine.loss_before == trace.loss
    for k in ws.net.params:
        assert np.array_equal(mine.params_after[k], trace[k + "_new"]), k
        assert mine.params_after[k].dtype == trace[k + "_new"].dtype
    assert mine.ratios == tuple(trace.update_ratio(l) for l in (1, 2, 3))


def test_with_augmentation_the_lesson_holds_the_images_the_step_trains_on(mnist):
    ws = workspace(mnist, shift=2, rotate=10.0)
    ws.step()
    lesson = lr_lesson.run(ws.trainer)
    raw = ws.split.images(lesson.idx, ws.net.dtype)[0]
    trace = ws.step()                                   # the step the lesson tried at each η
    assert np.array_equal(lesson.X, trace["X"]) and not np.array_equal(lesson.X, raw)
    assert "2 px" in lesson.moved and "10°" in lesson.moved
    plain = lr_lesson.run(workspace(mnist).trainer)
    assert plain.moved == "" and np.array_equal(plain.X, workspace(mnist).split.images(plain.idx, np.float32)[0])


def test_the_update_ratio_grows_in_proportion_to_lr_for_sgd(mnist):
    lesson = lr_lesson.run(workspace(mnist).trainer)
    r = np.array([t.ratios for t in lesson.trials])
    assert r.shape == (4, 3)
    assert np.all(np.diff(r, axis=0) > 0)                      # larger η, larger ratio, in every layer
    np.testing.assert_allclose(r[1:] / r[:-1], 10, rtol=1e-4)  # η × 10 → ratio × 10
    assert lesson.proportional
    # and for plain SGD, ‖ΔW‖ = η‖dW‖: the step at η = 0.1 moves W1 by 0.1 of its gradient's size
    assert lesson.loss_before == pytest.approx(math.log(10), abs=0.01)     # an untrained network guesses


def test_adam_ratio_is_proportional_too_but_does_not_follow_the_gradients_size(mnist):
    sgd = lr_lesson.run(workspace(mnist).trainer, (0.01,))
    adam = lr_lesson.run(workspace(mnist, optimizer="adam", lr=0.001).trainer)
    assert adam.proportional            # what the page says: ΔW is proportional to η for every optimizer
    # … but at the same η Adam's first step moves W1 about η per weight, SGD's by η × a tiny gradient
    assert adam.trial(0.01).ratios[0] > 1000 * sgd.trial(0.01).ratios[0]
    assert adam.trial(10.0).outcome == "blew_up" and adam.trial(10.0).refused
    assert "Adam" in adam.optimizer_name and "η m̂" in adam.lr_note


def test_a_step_the_engine_refuses_is_a_result_not_a_crash(mnist):
    lesson = lr_lesson.run(workspace(mnist, activation="sigmoid").trainer)
    blown = lesson.trial(10.0)
    assert blown.outcome == "blew_up"
    assert "times larger" in blown.refused
    assert lr_lesson.run(workspace(mnist, activation="sigmoid").trainer, (10.0,), keep_params=True).trials[0].params_after is None
    assert all(math.isfinite(r) for r in blown.ratios)        # the refused update still has its ratio
    assert blown.loss_after > lesson.loss_before              # what the refused weights would have given
    assert "blows up" in lr_lesson.trial_text(blown) and "refused" in lr_lesson.trial_text(blown)
    assert lesson.best in (0.1, 1.0)


def test_outcomes_follow_the_loss():
    def trial(after, refused=""):
        return Trial(0.1, 2.0, after, (1e-3,), -0.1, refused)
    assert trial(1.99).outcome == "down_little"
    assert trial(2.0).outcome == "down_little"          # no change at all is not "up"
    assert "stayed at 2" in lr_lesson.trial_text(trial(2.0)) and "went downhill" not in lr_lesson.trial_text(trial(2.0))
    assert "(-0.5%)" in lr_lesson.trial_text(trial(1.99)) and "(+25.0%)" in lr_lesson.trial_text(trial(2.5))
    assert trial(1.7).outcome == "down_lot"
    assert trial(2.5).outcome == "up"
    assert trial(math.inf).outcome == "blew_up"
    assert trial(math.nan).outcome == "blew_up"
    assert trial(1.0, refused="the weights are blowing up").outcome == "blew_up"


def fake_lesson(*trials) -> Lesson:
    return Lesson(np.arange(3), np.zeros(3, int), 1, 1, 0, {}, "SGD", {"optimizer": "sgd", "lr": 0.1}, "", 2.0, trials)


def test_predictions_are_scored_against_what_happened():
    lesson = fake_lesson(Trial(0.01, 2.0, 1.99, (1e-4,), 0, ""), Trial(0.1, 2.0, 1.5, (1e-3,), 0, ""),
                         Trial(1.0, 2.0, 2.5, (1e-2,), 0, ""), Trial(10.0, 2.0, 9.0, (1e-1,), 0, "refused"))
    verdicts = score(lesson, {0.01: "down_little", 0.1: "down_little", 1.0: "up"})
    assert [v.actual for v in verdicts] == ["down_little", "down_lot", "up", "blew_up"]
    assert [v.right for v in verdicts] == [True, False, True, False]
    assert verdicts[3].predicted is None                 # skipped: not right
    assert lesson.best == 0.1
    assert lr_lesson.best_guess_right(lesson, 0.1) and not lr_lesson.best_guess_right(lesson, 10.0)
    assert not lr_lesson.best_guess_right(lesson, None)
    with pytest.raises(ValueError):
        score(lesson, {0.1: "goes sideways"})
    assert set(OUTCOMES) == {"down_little", "down_lot", "up", "blew_up"}


def test_every_depth_and_activation_the_settings_allow(mnist):
    for hidden, act in (((32,), "tanh"), ((16, 16, 16), "leaky_relu")):
        ws = workspace(mnist, hidden=hidden, activation=act, batch_size=8)
        lesson = lr_lesson.run(ws.trainer)
        assert all(len(t.ratios) == len(hidden) + 1 for t in lesson.trials)
        assert len(lesson.idx) == 8 and lesson.lrs == LEARNING_RATES


def test_the_first_order_prediction_is_close_for_a_small_step():
    rng = np.random.default_rng(0)
    X, y = rng.random((64, 20)), rng.integers(0, 10, 64)
    net = MLP([20, 16, 10], init="he", dtype=np.float64)

    class Split:       # the little a Trainer needs from a split (two batches: no epoch ends)
        n_train, train_idx = 64, np.arange(64)

        def images(self, idx, dtype):
            return X[idx].astype(dtype), y[idx]
    tr = Trainer(net, make_optimizer("sgd", 0.1), Split(), batch_size=32, snapshot_epochs=())
    lesson = lr_lesson.run(tr, (0.001, 0.01))
    small = lesson.trial(0.001)
    assert small.first_order < 0                           # −η‖dθ‖²: the gradient points uphill
    assert small.loss_after - small.loss_before == pytest.approx(small.first_order, rel=0.01)


def test_a_run_in_the_background_is_not_disturbed(mnist):
    from core.data.mnist import make_split
    from core.engine.optim import Momentum
    from core.lab.run.controller import DONE, RunController

    split = make_split(mnist["train"], pool=2200, val=200, seed=0, test=mnist["test"])   # 32 steps an epoch
    def trainer():
        return Trainer(MLP([784, 32, 32, 10]), Momentum(0.05), split, batch_size=64)
    whole = trainer()
    whole.run(2)
    tr = trainer()
    ctrl = RunController(tr)
    assert ctrl.start(2)
    lessons = []
    while True:                 # lessons taken while the run's reports land in the trainer
        lessons.append(lr_lesson.run(tr, (0.1, 10.0), lock=ctrl.between_reports()))
        if not ctrl.active:
            break
    ctrl.join(60)
    assert ctrl.status == DONE and tr.global_step == whole.global_step == 64
    for k in whole.net.params:  # the run trained exactly as it would have alone
        np.testing.assert_array_equal(tr.net.params[k], whole.net.params[k])
    np.testing.assert_array_equal(tr.history.step_loss, whole.history.step_loss)
    order = trainer()
    for lesson in lessons:      # each read the trainer at one step boundary: its batch is that position's
        e, s = lesson.epoch - 1, lesson.step_in_epoch - 1
        assert lesson.global_step == e * 32 + s
        np.testing.assert_array_equal(lesson.idx, order.epoch_order(e)[s * 64:(s + 1) * 64])


def test_a_network_at_the_start_is_told_why_no_step_went_up_and_a_trained_one_is_not(mnist):
    fresh = lr_lesson.run(workspace(mnist).trainer)
    assert all(t.outcome.startswith("down") for t in fresh.trials)    # the flat start: even η = 10 goes downhill
    note = lr_lesson.at_the_start(fresh)
    assert f"the batch's loss is {fresh.loss_before:.3f}" in note and "ln 10 = 2.303" in note
    ws = workspace(mnist)
    for _ in range(1000):                     # the seed network leaves the flat start after a few hundred steps
        ws.step()
    trained = lr_lesson.run(ws.trainer)
    assert trained.loss_before < 1.5
    assert lr_lesson.at_the_start(trained) == ""
    assert any(t.outcome in ("up", "blew_up") for t in trained.trials)   # what the note promises
