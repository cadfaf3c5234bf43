"""The training page in AppTest: a real background run started, watched, paused,
resumed and finished from the page; the numbers on screen are the history's;
checkpoints go out and come back in; bad files change nothing; the pretrained
network opens (and its absence is handled); divergence and dead ReLUs are told;
every button, the status and the sidebar follow one reading of the run; a trained
network is only replaced (pretrained, New network) once the user confirms; a second
run waits for a free slot and says so; a frozen training process ends in a clear state."""
import base64
import io
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

import ui.session
from ui import training_plots as tp
from core.lab import checkpoint
from core.data.mnist import load_mnist, make_split
from core.engine.network import MLP
from core.engine.optim import SGD
from core.lab.run.controller import DIVERGED, DONE, PAUSED, QUEUED, RUNNING, STALLED, STOPPED
from core.engine.history import History
from core.engine.trainer import SNAPSHOT_EPOCHS, Trainer
from ui.state import session

ROOT = Path(__file__).resolve().parent.parent
PAGE = "pages/training.py"
SMALL = dict(pool=3000, val=500)      # 2,500 training images → 40 steps per epoch


def open_page(**query) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = str(v)
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Train 1000 epochs"
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click()
    at.run()
    assert not at.exception, at.exception
    return at


def poll(at: AppTest, done, timeout: float = 300.0) -> None:   # a state, with room for a busy machine
    """Rerun the page (as the live fragment does every second) until ``done()``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        time.sleep(0.25)
        at.run()
        assert not at.exception, at.exception
        if done():
            return
    raise AssertionError("the page never got there")


def figure(at: AppTest, key: str) -> dict:
    for el in at.get("plotly_chart"):
        if el.proto.id.endswith(f"-{key}"):
            return json.loads(el.proto.spec)
    raise AssertionError(f"no chart {key}")


def values(a) -> np.ndarray:
    if isinstance(a, dict):       # plotly sends numpy arrays base64-encoded
        return np.frombuffer(base64.b64decode(a["bdata"]), dtype=np.dtype(a["dtype"]))
    return np.asarray(a, dtype=float)


def trace(fig: dict, name: str) -> dict:
    return next(t for t in fig["data"] if t.get("name") == name)


def until(at: AppTest):
    return next(n for n in at.number_input if n.label == "Train until epoch")


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def reference_trainer(epochs: int, seed: int = 0) -> Trainer:
    m = load_mnist()
    split = make_split(m["train"], seed=seed, test=m["test"], **SMALL)
    t = Trainer(MLP(seed=seed), SGD(0.1), split, batch_size=64, seed=seed)
    t.run(epochs)
    return t


def assert_same_run(a: Trainer, b: Trainer) -> None:
    assert len(a.history) == len(b.history)
    for k in History.SCALARS + History.LAYERED + History.HISTS:
        if k != "seconds":
            np.testing.assert_array_equal(a.history.column(k), b.history.column(k), err_msg=k)
    np.testing.assert_array_equal(a.history.step_loss, b.history.step_loss)
    for k in a.net.params:
        np.testing.assert_array_equal(a.net.params[k], b.net.params[k], err_msg=k)


def test_a_run_from_the_page_pauses_resumes_finishes_and_shows_the_engines_numbers():
    at = open_page(epochs=300, **SMALL)   # 40 steps per epoch: 12,000 steps, a few seconds
    ws = session(at.session_state).ws
    assert not at.button(key="training_start").disabled and at.button(key="training_pause").disabled
    assert at.button(key="training_start").label == "Start training"

    click(at, "training_start")
    assert ws.busy and ws.runner.status == RUNNING
    assert at.button(key="training_start").disabled and not at.button(key="training_pause").disabled
    assert at.button(key="training_resume").disabled
    assert all(b.disabled for b in at.get("download_button")) and at.file_uploader(key="training_upload").disabled
    worker = ws.runner._thread
    poll(at, lambda: len(ws.history) >= 2)
    at.run()                             # the report came in between two redraws: draw it
    assert ws.runner._thread is worker, "a rerun started another run"
    assert at.get("progress") and at.get("progress")[0].proto.text.startswith("Epoch ")
    assert len(values(trace(figure(at, "training_loss"), "per step (smoothed)")["y"])) > 0

    click(at, "training_pause")
    assert ws.runner.status == PAUSED and not ws.busy
    steps = ws.trainer.global_step
    assert 0 < steps < 300 * 40
    time.sleep(0.3)
    at.run()
    assert ws.trainer.global_step == steps, "a paused run trained on"
    assert not at.button(key="training_resume").disabled and at.button(key="training_pause").disabled
    # on screen: the history's numbers, not recomputed ones
    h = ws.history
    assert metric(at, "Epoch") == f"{ws.trainer.epoch} / 300"
    assert metric(at, "Validation accuracy") == f"{h.rows['val_acc'][-1]:.2%}"
    assert metric(at, "Training loss (epoch)") == f"{h.rows['train_loss'][-1]:.4f}"
    acc = figure(at, "training_acc")
    np.testing.assert_array_equal(values(trace(acc, "validation")["y"]), np.asarray(h.rows["val_acc"]) * 100)
    np.testing.assert_array_equal(values(trace(acc, "training")["x"]), h.rows["epoch"])
    assert any(abs(s.get("y0", 0) - 97.7) < 1e-9 for s in acc["layout"].get("shapes", [])), "seed line missing"
    step_x = values(trace(figure(at, "training_loss"), "per step (smoothed)")["x"])
    # every step's loss, averaged in buckets when there are more than 2,000 (how many depends on when it paused)
    assert len(step_x) == len(tp.downsample(ws.history.step_loss)[0])
    assert len(step_x) <= 2000
    ratio = figure(at, "training_ratio")
    np.testing.assert_allclose(values(trace(ratio, "W1")["y"]), h.column("update_ratio")[:, 0])

    click(at, "training_resume")
    assert ws.runner.status == RUNNING
    poll(at, lambda: ws.runner.status == DONE and not ws.busy)
    at.run()
    assert ws.trainer.epoch == 300 and len(ws.history) == 300
    assert at.button(key="training_start").label == "Continue training"
    assert until(at).value == 400        # another stretch of the same length, at most 100 epochs
    assert any(c.value.startswith("Status: **finished**") for c in at.caption)
    assert_same_run(ws.trainer, reference_trainer(300))   # paused and resumed = uninterrupted

    ws.history.rows["dead_frac"][-1] = np.array([1.0, 0.25, np.nan])
    at.run()
    assert any("hidden layer A1 is dead" in w.value for w in at.warning)


def test_the_snapshot_caption_names_every_epoch_a_snapshot_is_kept_at():
    at = open_page()
    words = next(c.value for c in at.caption if c.value.startswith("The parameters are kept at epochs"))
    kept = [int(e) for e in words.split("epochs ", 1)[1].split(" (", 1)[0].replace(" and", ",").split(", ")]
    assert kept == sorted(e for e in SNAPSHOT_EPOCHS if e <= checkpoint.MAX_EPOCHS)
    assert 10_000 in kept       # the training page trains that far


def test_checkpoint_and_history_download_then_upload_restores_and_bad_files_change_nothing(monkeypatch):
    made = {}
    add = MediaFileManager.add_deferred

    def capture(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        made[file_name] = data_callable
        return add(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", capture)
    at = open_page(epochs=3, **SMALL)
    ws = session(at.session_state).ws
    click(at, "training_start")
    poll(at, lambda: ws.runner.status == DONE and not ws.busy)
    at.run()

    data = made["mlp-epoch-3.npz"]()
    ck = checkpoint.load(data)
    assert ck.trainer_state["epoch"] == 3 and len(ck.history) == 3
    for k in ws.net.params:
        np.testing.assert_array_equal(ck.net.params[k], ws.net.params[k])
    csv = pd.read_csv(io.StringIO(made["history-epoch-3.csv"]()))
    np.testing.assert_allclose(csv["val_acc"], ws.history.rows["val_acc"])
    assert list(csv["epoch"]) == [1, 2, 3]

    # train on, then load the epoch-3 file back: the network, history and position return
    until(at).set_value(5)
    click(at, "training_start")
    poll(at, lambda: ws.runner.status == DONE and not ws.busy)
    at.run()
    assert ws.trainer.epoch == 5
    at.file_uploader(key="training_upload").upload("mlp-epoch-3.npz", data)
    at.run()
    assert not at.exception, at.exception
    assert ws.trainer.epoch == 3 and len(ws.history) == 3 and ws.trainer.global_step == 120
    for k in ws.net.params:
        np.testing.assert_array_equal(ck.net.params[k], ws.net.params[k])
    assert any("Loaded" in s.value for s in at.success)
    assert "uploaded checkpoint" in ws.origin

    # a file that is not a checkpoint: the error, and nothing else changes
    trainer, params, settings = ws.trainer, ws.net.params, ws.settings
    at.file_uploader(key="training_upload").set_value(("my_*net*.npz", b"PK not really a zip", "application/zip"))
    at.run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    # the file name is the user's text: shown literally (markdown escaped), never formatted
    assert any("not a checkpoint" in e and e.startswith(r"my\_\*net\*\.npz was not loaded") for e in errors), errors
    assert ws.trainer is trainer and ws.net.params is params and ws.settings == settings
    # … and a damaged real one
    at.file_uploader(key="training_upload").set_value(("cut.npz", data[: len(data) // 2], "application/zip"))
    at.run()
    assert any(e.value.startswith(r"cut\.npz was not loaded") for e in at.error), \
        [e.value for e in at.error]
    assert ws.trainer is trainer and ws.net.params is params


@pytest.mark.skipif(not ui.session.PRETRAINED.exists(), reason="data/pretrained.npz is not made yet")
def test_the_pretrained_network_opens_with_its_history_against_the_seeds_accuracy():
    at = open_page(epochs=3, **SMALL)
    ws = session(at.session_state).ws
    shipped = checkpoint.load(ui.session.PRETRAINED)
    pre = figure(at, "training_acc_pretrained")
    np.testing.assert_array_equal(values(trace(pre, "validation")["y"]), shipped.history.column("val_acc") * 100)
    click(at, "training_open_pretrained")
    assert ws.trainer.epoch == len(ws.history) == len(shipped.history)
    assert ws.settings.pool == 42_000 and ws.trainer.steps_per_epoch == 641
    acc = figure(at, "training_acc")
    np.testing.assert_array_equal(values(trace(acc, "validation")["y"]), shipped.history.column("val_acc") * 100)
    assert any(abs(s.get("y0", 0) - 97.7) < 1e-9 for s in acc["layout"]["shapes"])
    assert at.button(key="training_start").label == "Continue training"
    assert until(at).value == ws.trainer.epoch + 3


def test_without_the_pretrained_file_the_page_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(ui.session, "PRETRAINED", tmp_path / "missing.npz")
    ui.session.pretrained.clear()
    try:
        at = open_page(epochs=3, **SMALL)
        assert any("not on this server yet" in i.value for i in at.info)
        assert not [b for b in at.button if b.key == "training_open_pretrained"]
    finally:
        monkeypatch.undo()
        ui.session.pretrained.clear()


def test_a_diverging_run_says_what_happened_and_keeps_finite_parameters():
    at = open_page(epochs=5, lr=100, **SMALL)
    ws = session(at.session_state).ws
    click(at, "training_start")
    poll(at, lambda: not ws.busy)
    at.run()
    assert ws.runner.status == DIVERGED
    errors = [e.value for e in at.error]
    assert any("The run diverged" in e and "Try a learning rate ten times smaller" in e for e in errors), errors
    assert all(np.isfinite(p).all() for p in ws.net.params.values())
    assert not at.button(key="training_start").disabled     # lower η and continue


# --------------------------------------------------------------------------- the figures' arithmetic
def test_the_per_step_curve_is_bucket_means_of_at_most_2000_points():
    from ui.training_plots import downsample
    loss = np.random.default_rng(0).random(641_000).astype(np.float32)
    x, y = downsample(loss)
    assert len(x) == len(y) <= 2000
    size = -(-641_000 // 2000)                      # 321 steps per bucket, the last one shorter
    np.testing.assert_allclose(y[:-1], loss[: size * (len(y) - 1)].astype(float).reshape(-1, size).mean(1))
    assert y[-1] == pytest.approx(loss[size * (len(y) - 1):].astype(float).mean())
    assert x[0] == (size + 1) / 2 and x[-1] <= 641_000
    x, y = downsample(loss[:50])                    # few steps: every step is drawn
    np.testing.assert_array_equal(y, loss[:50].astype(float))
    np.testing.assert_array_equal(x, np.arange(1, 51))


def test_rebinning_moves_every_count_to_where_it_belongs():
    from ui.training_plots import quantiles, rebin
    rng = np.random.default_rng(1)
    values = [rng.normal(0, s, 5000) for s in (0.1, 0.5)]
    hist = np.stack([np.histogram(v, bins=40, range=(v.min(), v.max()))[0] for v in values])
    ranges = np.array([[v.min(), v.max()] for v in values])
    edges = np.linspace(-3, 3, 61)                  # covers both: nothing is lost
    common = rebin(hist, ranges, edges)
    np.testing.assert_allclose(common.sum(1), 5000)
    centres = (edges[:-1] + edges[1:]) / 2
    for e, v in enumerate(values):
        assert np.sqrt((common[e] * centres ** 2).sum() / 5000) == pytest.approx(v.std(), rel=0.05)
        np.testing.assert_allclose(quantiles(hist[e:e + 1], ranges[e:e + 1], (0.05, 0.5, 0.95))[0],
                                   np.quantile(v, [0.05, 0.5, 0.95]), atol=(v.max() - v.min()) / 40)  # a bin
    # onto its own edges a histogram stays what it was
    own = np.linspace(*ranges[0], 41)
    np.testing.assert_allclose(rebin(hist[:1], ranges[:1], own)[0], hist[0], atol=1e-9)


def test_a_row_half_appended_by_the_worker_is_not_drawn():
    from ui.training_plots import read_history
    t = reference_trainer(2)
    h = t.history
    h.rows["epoch"].append(3)                       # the worker has written the first key of row 3 only
    h.rows["train_loss"].append(0.5)
    cols = read_history(h)
    assert {len(v) for k, v in cols.items() if k != "step_loss"} == {2}
    np.testing.assert_array_equal(cols["val_acc"], h.rows["val_acc"])
    assert cols["hist_W"].shape == (2, 3, 40)


def test_thin_spreads_at_most_k_epochs_along_the_axis_and_keeps_the_ends():
    from ui.training_plots import thin
    epochs = np.arange(1, 1001)
    for log_x in (False, True):
        pick = thin(epochs, 400, log_x)
        assert len(pick) <= 402 and pick[0] == 0 and pick[-1] == 999
        assert np.all(np.diff(pick) > 0)
    lin, log = thin(epochs, 100, False), thin(epochs, 100, True)
    assert np.all(np.diff(lin) >= 9)                          # evenly: every 10th epoch
    assert set(range(10)) <= set(log) and np.diff(log)[-1] > 10   # log axis: every early epoch, few late ones
    np.testing.assert_array_equal(thin(epochs[:50], 400), np.arange(50))


def test_while_a_run_goes_on_the_live_curves_are_light_and_the_full_detail_comes_back_after():
    """Each redraw of the live curves costs the browser (and so the run, on a shared
    machine): at most LIVE_POINTS points a line while training, static pictures."""
    from ui.training_plots import LIVE_POINTS, MAX_POINTS
    at = open_page(epochs=2000, pool=1100, val=100)   # 16 steps per epoch, 32,000 steps
    ws = session(at.session_state).ws
    click(at, "training_start")
    poll(at, lambda: ws.trainer.global_step > 3 * MAX_POINTS and len(ws.history) > LIVE_POINTS)
    at.run()
    assert ws.busy
    loss, acc = figure(at, "training_loss"), figure(at, "training_acc")
    assert len(values(trace(loss, "per step (smoothed)")["y"])) <= LIVE_POINTS
    assert len(values(trace(acc, "validation")["y"])) <= LIVE_POINTS + 2
    charts = [el for el in at.get("plotly_chart") if el.proto.id.endswith(("-training_loss", "-training_acc"))]
    assert all(json.loads(c.proto.config).get("staticPlot") for c in charts)
    click(at, "training_pause")
    assert not ws.busy
    loss = figure(at, "training_loss")
    n = ws.trainer.global_step
    assert len(values(trace(loss, "per step (smoothed)")["y"])) == -(-n // -(-n // MAX_POINTS))   # 2,000 buckets at most
    assert len(values(trace(figure(at, "training_acc"), "validation")["y"])) == len(ws.history)


# --------------------------------------------------------------------------- the page agrees with itself
def sidebar_captions(at: AppTest) -> list[str]:
    return [c.value for c in at.sidebar.caption]


def progress_text(at: AppTest) -> str:
    return at.main.get("progress")[0].proto.text


def test_while_paused_the_target_buttons_panel_and_sidebar_all_say_the_same():
    at = open_page(**SMALL)                      # the settings say 1000 epochs …
    ws = session(at.session_state).ws
    until(at).set_value(600)                     # … this run goes to 600 (24,000 steps)
    click(at, "training_start")
    poll(at, lambda: len(ws.history) >= 2)
    click(at, "training_pause")
    assert ws.runner.status == PAUSED
    e = ws.trainer.epoch
    assert 2 <= e < 600
    # the run's target, not the settings' 1000; Resume is the one way on (Continue would start another run)
    assert until(at).value == 600 and until(at).disabled
    assert at.button(key="training_start").disabled and not at.button(key="training_resume").disabled
    assert at.button(key="training_pause").disabled and not at.button(key="training_stop").disabled
    assert any(c.value.startswith("Status: **paused**") for c in at.caption)
    # the panel and the sidebar, from the same reading, in the same words
    assert progress_text(at).startswith(f"Epoch {e:,} of 600 · ")
    assert metric(at, "Epoch") == f"{e} / 600"
    assert f"Last run: paused at epoch {e:,} of 600" in sidebar_captions(at)
    assert any(f"· {e} epochs, {ws.trainer.global_step:,} steps" in c for c in sidebar_captions(at))
    time.sleep(0.3)
    at.run()                                     # and it stays so
    assert until(at).value == 600 and ws.trainer.epoch == e

    click(at, "training_stop")                   # stopped: Continue goes on to the same target, or another
    assert ws.runner.status == STOPPED
    assert until(at).value == 600 and not until(at).disabled
    assert not at.button(key="training_start").disabled and at.button(key="training_resume").disabled
    assert at.button(key="training_start").label == "Continue training"
    assert f"Last run: stopped at epoch {e:,} of 600" in sidebar_captions(at)


def test_every_run_control_follows_the_runs_status():
    """One reading of the run decides every button: no status in which Stop (or anything) is
    wrongly disabled, whatever the thread behind it is doing."""
    at = open_page(**SMALL)
    r = session(at.session_state).ws.runner
    want = {  # status → (start, pause, resume, stop) enabled
        "idle": (True, False, False, False), "queued": (False, True, False, True),
        "running": (False, True, False, True), "pausing": (False, False, False, True),
        "paused": (False, False, True, True), "stopped": (True, False, False, False),
        "done": (True, False, False, False), "diverged": (True, False, False, False),
        "failed": (True, False, False, False), "stalled": (True, False, False, False)}
    try:
        for status, enabled in want.items():
            r.status = status                    # what the page reads; no process behind it
            at.run()
            assert not at.exception, at.exception
            shown = tuple(not at.button(key=f"training_{k}").disabled for k in ("start", "pause", "resume", "stop"))
            assert shown == enabled, (status, shown)
            downloads = [b.disabled for b in at.get("download_button")]
            assert downloads == [status in ("queued", "running", "pausing")] * 2, status
    finally:
        r.status = "idle"


def test_a_run_trains_to_no_more_epochs_than_the_settings_allow_at_its_sizes():
    """Before, *Train until epoch* went to 10,000 whatever the batch size: in batches of 1 that
    is 600 million steps, a checkpoint the app then refused (it holds at most MAX_STEPS)."""
    at = open_page(batch_size=1, pool=60_000, val=1, epochs=100)      # 59,999 steps an epoch
    until = [n for n in at.number_input if n.label == "Train until epoch"][0]
    assert until.max == 156 and until.value == 100
    assert "At most 156 at these sizes" in until.help


@pytest.mark.skipif(not ui.session.PRETRAINED.exists(), reason="data/pretrained.npz is not made yet")
def test_opening_the_pretrained_network_over_a_trained_one_asks_first_and_says_not_running():
    at = open_page(epochs=1, **SMALL)
    ws = session(at.session_state).ws
    click(at, "training_start")
    poll(at, lambda: ws.runner.status == DONE)
    at.run()
    trainer = ws.trainer
    assert ws.is_kept and [r.steps for r in ws.runs] == [40]     # a finished run is kept for comparison …
    assert any("kept as the run" in m.value for m in at.success)
    ws.runs.remove(ws.kept[0])                                   # … and without it, its work would be lost

    click(at, "training_open_pretrained")        # asks, changes nothing yet
    assert ws.trainer is trainer and ws.trainer.epoch == 1
    assert any("replaces the current one, which has trained 40 steps" in w.value for w in at.warning)
    click(at, "training_keep_pretrained")
    assert ws.trainer is trainer and not [w for w in at.warning if "replaces the current one" in w.value]

    click(at, "training_open_pretrained")
    click(at, "training_confirm_pretrained")
    assert ws.trainer is not trainer and ws.trainer.epoch == 1000 and "pretrained" in ws.origin
    assert any(c.value.startswith("Status: **not running**") for c in at.caption), [c.value for c in at.caption]
    assert not [w for w in at.warning if "replaces the current one" in w.value]


def test_new_network_builds_a_fresh_one_with_the_settings_asking_first_when_it_has_trained():
    at = open_page(epochs=1, seed=3, **SMALL)
    state = session(at.session_state)
    untrained = state.ws
    click(at, "training_new_network")           # nothing trained: no question
    assert state.ws is not untrained and state.ws.trainer.global_step == 0 and not at.warning

    ws = state.ws
    click(at, "training_start")
    poll(at, lambda: ws.runner.status == DONE)
    at.run()
    ws.runs.remove(ws.kept[0])                  # the run was kept for comparison: without it, work would be lost
    click(at, "training_new_network")
    assert state.ws is ws and any("replaces the current one, which has trained 40 steps" in w.value
                                  for w in at.warning)
    click(at, "training_keep_new")
    assert state.ws is ws and ws.trainer.epoch == 1
    click(at, "training_new_network")
    click(at, "training_confirm_new")
    fresh = state.ws
    assert fresh is not ws and fresh.trainer.global_step == 0 and fresh.settings == ws.settings
    assert any(c.value.startswith("Status: **not started**") for c in at.caption)
    assert at.button(key="training_start").label == "Start training"
    first = MLP([784, 64, 64, 10], seed=3).params       # the same seed's initial weights again
    for k in first:
        np.testing.assert_array_equal(fresh.net.params[k], first[k], err_msg=k)


def test_with_one_slot_a_second_session_waits_in_the_queue_and_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("BACKPROP_MAX_RUNS", "1")
    monkeypatch.setenv("BACKPROP_RUN_DIR", str(tmp_path))
    a, b = open_page(**SMALL), open_page(**SMALL)
    wa, wb = session(a.session_state).ws, session(b.session_state).ws
    click(a, "training_start")
    click(b, "training_start")
    assert wa.runner.status == RUNNING and wb.runner.status == QUEUED
    poll(b, lambda: wb.runner.queue_position == 1)
    b.run()
    assert any("Waiting for a free training slot: place 1 in the queue." in i.value for i in b.info)
    assert any(c.value.startswith("Status: **waiting for a free slot**") for c in b.caption)
    assert "Training: waiting for a free slot, place 1 in the queue (at most 1 runs at once on this server)" \
        in sidebar_captions(b)
    assert not b.button(key="training_pause").disabled and not b.button(key="training_stop").disabled
    assert b.button(key="training_start").disabled and wb.trainer.global_step == 0

    click(a, "training_pause")                   # A's slot goes to B
    poll(b, lambda: wb.runner.status == RUNNING and wb.trainer.global_step > 0)
    b.run()
    assert not [i for i in b.info if "Waiting for a free training slot" in i.value]
    assert progress_text(b).startswith("Epoch ")
    click(b, "training_pause")
    assert wb.runner.status == PAUSED


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGSTOP: Linux")
def test_a_frozen_training_process_does_not_wedge_the_page():
    at = open_page(**SMALL)
    ws = session(at.session_state).ws
    click(at, "training_start")
    poll(at, lambda: ws.trainer.global_step > 0)
    os.kill(ws.runner.pid, signal.SIGSTOP)
    ws.runner.stall_after = 2.0
    click(at, "training_pause")                  # the Pause it cannot hear …
    poll(at, lambda: ws.runner.status == STALLED)   # … ends in a clear state, not "pausing…" for ever
    at.run()
    steps = ws.trainer.global_step
    assert any(w.value == f"The training process stopped answering at step {steps:,}; the network keeps that "
                          f"step. Start again to carry on." for w in at.warning)
    assert any(c.value.startswith("Status: **stopped answering**") for c in at.caption)
    assert not any(b.disabled for b in at.get("download_button"))        # save it …
    assert not at.button(key="training_start").disabled                  # … or start again
    click(at, "training_start")
    poll(at, lambda: ws.trainer.global_step > steps)
    click(at, "training_stop")
    assert ws.runner.status == STOPPED


def test_a_finished_run_kept_as_a_run_is_replaced_without_asking_and_its_runs_stay():
    at = open_page(epochs=1, **SMALL)
    state = session(at.session_state)
    ws = state.ws
    click(at, "training_start")
    poll(at, lambda: ws.runner.status == DONE)
    at.run()
    assert ws.is_kept and not ws.would_lose_work
    click(at, "training_new_network")           # nothing lost: the run is kept, so no question
    assert state.ws is not ws and not at.warning and [r.steps for r in state.ws.runs] == [40]
