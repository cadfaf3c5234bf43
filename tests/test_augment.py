"""Data augmentation: small random shifts (whole pixels, zero fill) and rotations (bilinear, about the
centre) of each training batch's images, drawn from the seed and the step's number. The trace's X is
the augmented batch; evaluation never augments; a recomputed step, a resumed run, the training process
and a checkpoint all give the same images; the stepper shows them."""
import io
import json
from dataclasses import replace

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from core.engine.augment import Augmentation, augment, draw, to_u8, transform
from core.engine.network import MLP
from core.engine.optim import SGD
from core.engine.trainer import Trainer, augment_rng, evaluate, step_rng
from core.lab import checkpoint
from core.lab.checkpoint import CheckpointError
from core.lab.settings import FIELDS, Settings
from core.lab.workspace import Workspace
from core.teach.notebook import step_notebook
from tests.run_helpers import paused_and_resumed_is_the_whole_run, small_split

SMALL = Settings(pool=600, val=100, batch_size=50, epochs=2, shift=2, rotate=10.0)


def dot(r: int, c: int, m: int = 1) -> np.ndarray:
    img = np.zeros((m, 28, 28), np.float32)
    img[:, r, c] = 1.0
    return img.reshape(m, 784)


# --------------------------------------------------------------------------- the transformation
def test_a_shift_moves_every_pixel_by_whole_pixels_and_fills_with_zeros():
    X = np.random.default_rng(0).random((3, 784)).astype(np.float32)
    down = transform(X, np.array([[1, 0]] * 3), np.zeros(3)).reshape(3, 28, 28)
    img = X.reshape(3, 28, 28)
    np.testing.assert_array_equal(down[:, 1:], img[:, :-1])           # one pixel down, values exact
    assert (down[:, 0] == 0).all()                                     # what comes in is background
    left = transform(X, np.array([[0, -3]] * 3), np.zeros(3)).reshape(3, 28, 28)
    np.testing.assert_array_equal(left[:, :, :-3], img[:, :, 3:])
    assert (left[:, :, -3:] == 0).all()
    moved = transform(dot(5, 7), np.array([[1, 0]]), np.zeros(1)).reshape(28, 28)
    assert np.argwhere(moved).tolist() == [[6, 7]] and moved[6, 7] == 1.0


def test_no_rotation_and_no_shift_is_the_identity_bit_for_bit_in_either_dtype():
    for dtype in (np.float32, np.float64):
        X = np.random.default_rng(1).random((64, 784)).astype(dtype)
        out = transform(X, np.zeros((64, 2), int), np.zeros(64))
        assert out.dtype == dtype and np.array_equal(out, X)
        assert np.array_equal(transform(X, np.zeros((64, 2), int), -0.0 * np.ones(64)), X)


def test_a_quarter_turn_turns_the_image_anticlockwise_about_its_centre():
    # the top of a vertical bar ends on the left; a pattern symmetric under a quarter turn stays as it is
    up = transform(dot(0, 13), np.zeros((1, 2), int), np.array([90.0])).reshape(28, 28)
    assert np.argwhere(up > 0.5).tolist() == [[14, 0]] and up.max() == pytest.approx(1.0, abs=1e-5)
    ring = np.zeros((28, 28), np.float32)
    ring[8:20, 8:20] = 1.0
    ring[11:17, 11:17] = 0.0                       # a square ring about the centre (13.5, 13.5)
    turned = transform(ring.reshape(1, 784), np.zeros((1, 2), int), np.array([90.0])).reshape(28, 28)
    np.testing.assert_allclose(turned, ring, atol=1e-5)
    np.testing.assert_allclose(transform(ring.reshape(1, 784), np.zeros((1, 2), int), np.array([-90.0])),
                               ring.reshape(1, 784), atol=1e-5)
    # an arbitrary image turned a quarter: np.rot90 (anticlockwise as drawn), within interpolation
    X = np.random.default_rng(2).random((1, 784)).astype(np.float32)
    np.testing.assert_allclose(transform(X, np.zeros((1, 2), int), np.array([90.0])).reshape(28, 28),
                               np.rot90(X.reshape(28, 28)), atol=1e-5)


def test_a_small_rotation_interpolates_and_keeps_the_ink_inside_the_frame():
    X = np.zeros((1, 28, 28), np.float32)
    X[0, 10:18, 12:16] = 1.0                        # a thick bar in the middle: nothing reaches the edges
    out = transform(X.reshape(1, 784), np.zeros((1, 2), int), np.array([7.0]))
    assert 0 <= out.min() and out.max() <= 1 + 1e-6
    assert out.sum() == pytest.approx(X.sum(), rel=0.02)          # bilinear resampling keeps the ink
    assert ((out > 0) & (out < 1)).any()                          # and blends at the edges


def test_the_draws_stay_in_range_and_one_setting_never_changes_the_others_draws():
    rng = np.random.default_rng(0)
    shifts, angles = draw(rng, 500, 3, 12.0)
    assert shifts.min() == -3 and shifts.max() == 3 and np.abs(angles).max() <= 12.0
    assert np.abs(angles).max() > 11
    s2, a2 = draw(np.random.default_rng(0), 500, 3, 5.0)
    assert np.array_equal(s2, shifts) and np.allclose(a2, angles * 5 / 12)
    X = dot(14, 14, 4)
    out, aug = augment(X, np.random.default_rng(3), 2, 0.0)
    assert isinstance(aug, Augmentation) and aug.original is X and (aug.angles == 0).all()
    for i in range(4):                             # a pure shift: the dot moved by exactly the shift drawn
        assert np.argwhere(out[i].reshape(28, 28)).tolist() == [[14 + aug.shifts[i, 0], 14 + aug.shifts[i, 1]]]
    assert to_u8(out).dtype == np.uint8 and to_u8(out).max() == 255


def test_the_augmentation_benchmark_runs_and_reports_what_it_measured():
    """Its speed is measured by benchmarks/bench_augment.py (not a timed test: the machine may be busy)."""
    from benchmarks import bench_augment
    got = bench_augment.main(["--batch", "8", "--repeat", "1"])
    assert got["batch"] == 8 and all(v > 0 for k, v in got.items() if k.endswith("ms"))


# --------------------------------------------------------------------------- in the trainer
def test_the_trace_holds_the_augmented_batch_and_the_network_trained_on_it(mnist):
    ws = Workspace(SMALL, mnist["train"], mnist["test"])
    idx = ws.trainer.next_indices()
    trace = ws.step()
    original, _ = ws.split.images(idx, ws.net.dtype)
    assert trace.augment is not None and np.array_equal(trace.augment.original, original)
    assert trace["X"].dtype == original.dtype and not np.array_equal(trace["X"], original)
    expect = transform(original, *draw(augment_rng(SMALL.seed, 0), len(idx), 2, 10.0))
    assert np.array_equal(trace["X"], expect)
    # the step is the plain step on those images: same update
    plain = MLP([784, 64, 64, 10], seed=SMALL.seed).step(expect, trace["y"], SGD(0.1))
    assert all(np.array_equal(plain[k + "_new"], trace[k + "_new"]) for k in ws.net.params)
    # off: the seed's step, untouched images and no augmentation record
    off = Workspace(replace(SMALL, shift=0, rotate=0.0), mnist["train"], mnist["test"])
    t = off.step()
    assert t.augment is None and np.array_equal(t["X"], original)


def test_the_same_seed_gives_the_same_run_bit_for_bit_and_dropout_moves_no_image(mnist):
    def run(settings):
        ws = Workspace(settings, mnist["train"], mnist["test"])
        ws.trainer.run(1)
        return ws, ws.step()
    (a, ta), (b, tb) = run(SMALL), run(SMALL)
    assert all(np.array_equal(a.net.params[k], b.net.params[k]) for k in a.net.params)
    assert np.array_equal(ta["X"], tb["X"])
    _, td = run(replace(SMALL, dropout=0.5))
    assert np.array_equal(td["X"], ta["X"])                 # augmentation has its own stream
    assert not np.array_equal(augment_rng(0, 3).random(4), step_rng(0, 3).random(4))
    _, other = run(replace(SMALL, seed=1))
    assert not np.array_equal(other.augment.shifts, ta.augment.shifts)


def test_evaluation_uses_the_images_as_they_are(mnist):
    ws = Workspace(SMALL, mnist["train"], mnist["test"])
    ws.trainer.run(1)
    val = ws.split.val_idx
    X, y = mnist["train"].X[val], mnist["train"].y[val]
    plain = ws.net.forward(ws.split.images(val, ws.net.dtype)[0])
    first, second = evaluate(ws.net, X, y), evaluate(ws.net, X, y)
    assert np.array_equal(first["proba"], plain["A3"]) and np.array_equal(first["proba"], second["proba"])
    assert ws.history.rows["val_acc"][-1] == first["acc"]


def test_a_kept_step_recomputed_is_the_step_as_taken_and_undo_redraws_the_same(mnist):
    ws = Workspace(replace(SMALL, dropout=0.3), mnist["train"], mnist["test"])
    traces = [ws.step() for _ in range(3)]
    again = ws.trace_of(ws.steps[0])
    assert all(np.array_equal(traces[0][k], again[k]) for k in traces[0])
    assert np.array_equal(again.augment.shifts, traces[0].augment.shifts)
    assert not np.array_equal(traces[0]["X"], traces[1]["X"])
    ws.undo(ws.steps[-1].before)
    assert np.array_equal(ws.step()["X"], traces[-1]["X"])


def test_the_training_process_trains_exactly_as_here(mnist):
    """Start training's run (another process, paused and resumed) is the in-process run, bit for bit."""
    split = small_split(mnist)
    whole, tr = paused_and_resumed_is_the_whole_run(lambda: Trainer(MLP([784, 16, 16, 10], seed=0), SGD(0.1), split,
                                                                    batch_size=64, seed=0, shift=2, rotate=12.0))
    assert (tr.shift, tr.rotate) == (2, 12.0)
    plain = Trainer(MLP([784, 16, 16, 10], seed=0), SGD(0.1), split, batch_size=64, seed=0)
    plain.run(2)
    assert not np.array_equal(plain.net.params["W1"], whole.net.params["W1"])


def test_a_checkpoint_carries_augmentation_and_resuming_is_the_same_run(mnist):
    ws = Workspace(SMALL, mnist["train"], mnist["test"])
    for _ in range(13):
        ws.step()
    ck = checkpoint.load(checkpoint.to_bytes(ws.net, ws.optimizer, ws.trainer))
    assert (ck.trainer_state["shift"], ck.trainer_state["rotate"]) == (2, 10.0)
    s = Settings.of_network(ck.net.config, ck.optimizer.hyper, ck.trainer_state, ck.split)
    assert (s.shift, s.rotate) == (2, 10.0)
    again = checkpoint.restore_trainer(ck, ws.split)
    a, b = ws.trainer.train_step(), again.train_step()
    assert np.array_equal(a["X"], b["X"])
    assert all(np.array_equal(ws.net.params[k], again.net.params[k]) for k in ws.net.params)


def _with_trainer(data: bytes, change) -> bytes:
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    config = json.loads(str(arrays["config"]))
    change(config["trainer"])
    arrays["config"] = np.array(json.dumps(config))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_a_checkpoint_from_before_augmentation_loads_as_off_and_a_bad_value_is_refused(mnist):
    ws = Workspace(SMALL, mnist["train"], mnist["test"])
    ws.step()
    data = checkpoint.to_bytes(ws.net, ws.optimizer, ws.trainer)
    old = checkpoint.load(_with_trainer(data, lambda t: (t.pop("shift"), t.pop("rotate"))))
    assert (old.trainer_state["shift"], old.trainer_state["rotate"]) == (0, 0.0)
    assert checkpoint.restore_trainer(old, ws.split).augmented(np.ones((2, 784)), 0)[1] is None
    s = Settings.of_network(old.net.config, old.optimizer.hyper, old.trainer_state, old.split)
    assert (s.shift, s.rotate) == (0, 0.0)
    for key, bad in (("shift", 5), ("shift", -1), ("shift", 1.5), ("shift", "2"), ("rotate", 21.0),
                     ("rotate", -3), ("rotate", "ten"), ("rotate", True), ("rotate", None), ("rotate", 10**400)):
        with pytest.raises(CheckpointError, match="augmentation"):
            checkpoint.load(_with_trainer(data, lambda t: t.update({key: bad})))


def test_augmentation_is_a_setting_with_bounds_links_and_the_command_line():
    s, notes = Settings.from_query({"shift": "2", "rotate": "7.5"})
    assert not notes and (s.shift, s.rotate) == (2, 7.5) and s.to_query() == {"shift": "2", "rotate": "7.5"}
    s, notes = Settings.from_query({"shift": "9", "rotate": "45"})
    assert (s.shift, s.rotate) == (0, 0.0) and len(notes) == 2
    assert "must be 0 to 4" in notes[0] and "must be 0 to 20" in notes[1]
    assert {"shift", "rotate"} <= set(Settings().model_changes(Settings(shift=1, rotate=3.0)))
    assert FIELDS["shift"].problem(3) is None and Settings(rotate=25.0).problems()
    from core.train import parse_args, settings_of
    s = settings_of(parse_args(["--shift", "2", "--rotate", "10"]))
    assert (s.shift, s.rotate) == (2, 10.0)


def test_the_lr_lessons_trials_are_the_augmented_step(mnist):
    from core.teach import lr_lesson
    ws = Workspace(replace(SMALL, pool=3000, val=500, batch_size=64), mnist["train"], mnist["test"])
    ws.step()
    lesson = lr_lesson.run(ws.trainer, (0.1,), keep_params=True)
    trace = ws.step()
    assert lesson.trial(0.1).loss_before == trace.loss          # the loss of the images the step trains on
    assert all(np.array_equal(lesson.trial(0.1).params_after[k], trace[k + "_new"]) for k in ws.net.params)


def test_the_notebook_of_an_augmented_step_runs_on_the_images_the_network_saw(mnist):
    ws = Workspace(replace(SMALL, pool=3000, val=500, batch_size=8), mnist["train"], mnist["test"])
    ws.step()
    ws.step()
    rec = ws.steps[-1]
    trace = ws.trace_of(rec)
    nb = nbformat.reads(step_notebook(trace, rec.optimizer_before, number=rec.number).decode(), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("print(repr(X.tobytes().hex()))"))
    done = NotebookClient(nb, timeout=300, kernel_name="python3").execute()   # every assert_allclose passes
    printed = done.cells[-1].outputs[0]["text"].strip().strip("'")
    assert printed == trace["X"].tobytes().hex()                 # X as used, not the batch before augmentation


# --------------------------------------------------------------------------- in the stepper
def test_the_stepper_shows_the_batch_as_the_network_sees_it_and_checks_gradients_on_it():
    from tests.test_stepper_page import click, open_stepper, table, ws_of
    at = open_stepper(shift="2", rotate="10")
    ws = ws_of(at)
    assert (ws.trainer.shift, ws.trainer.rotate) == (2, 10.0)
    assert any("As the network will see them" in c.value for c in at.caption)
    click(at, "stepper_step")
    trace = ws_of(at).current
    assert trace.augment is not None
    assert any("Data augmentation" in e.label for e in at.expander)
    assert any("As the network saw them" in c.value for c in at.caption)
    assert any(f"Image 1: {trace.augment.describe(0)}" in c.value for c in at.caption)
    at.segmented_control(key="stepper_view").set_value("Gradient check").run()
    at.number_input(key="gc_n").set_value(6).run()
    click(at, "gc_run")
    shown = table(at, "relative error")
    smooth = shown[~shown["kink"]]
    assert len(smooth) >= 3 and (smooth["relative error"] < 1e-5).all()   # against the augmented batch's loss
    assert any("agrees" in s.value for s in at.success)


def test_the_stepper_says_what_augmentation_did_at_X(mnist):
    from ui.stepper_views import build_stops, stop_text
    on = Workspace(SMALL, mnist["train"], mnist["test"]).step()
    off = Workspace(replace(SMALL, shift=0, rotate=0.0), mnist["train"], mnist["test"]).step()
    said = stop_text(build_stops(on)[0], on)
    assert "Data augmentation" in said and f"image 1: {on.augment.describe(0)}" in said
    assert "augmentation" not in stop_text(build_stops(off)[0], off)



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_shift_without_a_turn_copies_pixels_bit_for_bit_as_the_resample_does(dtype):
    """The fast path for shifts alone (no turn) gives exactly what bilinear resampling gives."""
    from core.engine.augment import _resample, transform
    rng = np.random.default_rng(1)
    X = rng.random((200, 784)).astype(dtype)
    X[::7] = 0.0                                           # zeros (and their signs) survive too
    shifts = rng.integers(-4, 5, size=(200, 2))
    angles = np.zeros(200)
    fast, slow = transform(X, shifts, angles), _resample(X, shifts, angles, np.dtype(dtype))
    assert fast.dtype == slow.dtype == dtype
    assert fast.tobytes() == slow.tobytes()
    assert not np.shares_memory(fast, X)
