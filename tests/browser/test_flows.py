"""What a user does, end to end in a real browser: step one mini-batch through every
phase, train in the background (pause, resume, stop), upload CSVs, download a
checkpoint and a Kaggle submission. Numbers on screen and in downloaded files are
compared with what ``core`` computes for the same seed and data."""
from __future__ import annotations

import csv
import io
import re
import warnings

import numpy as np
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (MAIN, SIDEBAR, TIMEOUT, assert_no_errors, caused_by_user, chart_traces,
                                   click_button, engine_mnist, engine_pretrained, go_to, metric, open_page,
                                   open_pretrained, progress_values, record_sent, settle, shows, sidebar_text,
                                   wait_until)

SMALL = "pool=3000&val=500"        # 2,500 training images: 40 steps per epoch


def small_workspace(epochs: int):
    from core.lab.settings import Settings
    from core.lab.workspace import Workspace
    m = engine_mnist()
    return Workspace(Settings(pool=3000, val=500, epochs=epochs), m["train"], m["test"])


def csv_text(X: np.ndarray, y: np.ndarray | None = None) -> str:
    header = (["label"] if y is not None else []) + [f"pixel{i}" for i in range(784)]
    rows = X.tolist() if y is None else [[int(a), *r] for a, r in zip(y, X.tolist())]
    return "\n".join([",".join(header), *(",".join(map(str, r)) for r in rows)]) + "\n"


def press_during_run(page, label: str, status: str) -> None:
    """Click a run control while the live panel redraws every few seconds; wait for the status.
    Under heavy load Streamlit has (rarely) dropped such a click when it coincided with a
    fragment's timed rerun: then click once more, as a user would, and say so. The button must
    be enabled both times: the page enables it from the run's status."""
    for attempt in range(2):
        try:
            click_button(page, label, until=f"Status: {status}", timeout=30 if attempt == 0 else TIMEOUT)
            return
        except AssertionError:
            if attempt or not page.get_by_role("button", name=label).first.is_enabled():
                raise
            warnings.warn(f"the click on {label!r} was lost once (status stayed: not {status}); clicked again")


# --------------------------------------------------------------------------- the stepper
def test_step_one_mini_batch_through_every_phase(server, page):
    """Step, then → through every stop in the trace viewer: "Stop k of 22" and the stop follow
    at once, each stop draws its heatmaps, nothing goes to the server meanwhile, and the update
    shows the engine's ratio ‖ΔW1‖/‖W1‖. *Train one mini-batch* then trains the session's network
    (the sidebar counts it) and opens the new step on its first stop."""
    from core.lab.settings import Settings
    from core.lab.workspace import Workspace
    m = engine_mnist()
    trace = Workspace(Settings(), m["train"], m["test"]).step()       # seed 0, the trainer's first batch
    keys = ["X", "Z1", "A1", "Z2", "A2", "Z3", "A3", "losses", "dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2",
            "dA1", "dZ1", "dW1", "db1", "ΔW1", "ΔW2", "ΔW3"]
    sent = record_sent(page)
    viewer, count = page.locator(".tv"), page.locator(".tv-count")

    open_page(page, server, "stepper", expect_text="Step: train on this mini-batch")
    click_button(page, "Step: train on this mini-batch",
                 until=lambda: viewer.count() and viewer.get_attribute("data-state") == "ready")
    assert_no_errors(page)
    assert "0 epochs, 1 step" in sidebar_text(page)            # the step trained the session's network
    page.evaluate("() => 0")                                   # let Playwright deliver the frames so far
    before = len(sent)
    for i, key in enumerate(keys):
        expect(count).to_have_text(f"Stop {i + 1} of {len(keys)}")
        assert viewer.get_attribute("data-stop") == key
        assert page.locator(".tv-fig .tv-cv canvas").count() >= 1
        if key == "ΔW1":
            break
        page.keyboard.press("ArrowRight")
    expect(page.locator(".tv-title")).to_contain_text("Update · layer 1")
    W1, dW1 = np.asarray(trace["W1"], np.float64), np.asarray(trace["ΔW1"], np.float64)
    fact = lambda name: page.locator(f'.tv-fact[data-fact="{name}"] b').inner_text()
    assert fact("ratio") == f"{np.linalg.norm(dW1) / np.linalg.norm(W1):.2e}"
    assert float(fact("loss-after")) < float(fact("loss-before")) == pytest.approx(float(trace.loss), rel=1e-3)
    page.evaluate("() => 0")
    assert [m for m in sent[before:] if caused_by_user(m)] == [], "moving between stops sent a message"

    click_button(page, "Train one mini-batch", until=lambda: "0 epochs, 2 steps" in sidebar_text(page))
    expect(page.locator(".tv-step")).to_have_text("step 2 (latest)")
    expect(count).to_have_text(f"Stop 1 of {len(keys)}")        # a new step opens on its first stop
    assert_no_errors(page)

    # the past step, recomputed by the engine from what the step kept: the same numbers as before
    page.locator('[data-testid="stSelectbox"]', has_text="Step shown").locator("input").click()
    page.get_by_role("option", name="step 1 (recomputed)").click()
    expect(page.locator(".tv-step")).to_contain_text("step 1 (recomputed")
    page.locator(".tv-strip button", has_text=re.compile(r"^ΔW1$")).click()   # (the keys go to the select box)
    expect(count).to_have_text(f"Stop 20 of {len(keys)}")
    assert fact("ratio") == f"{np.linalg.norm(dW1) / np.linalg.norm(W1):.2e}"
    assert float(fact("loss-before")) == pytest.approx(float(trace.loss), rel=1e-3)
    assert_no_errors(page)


def test_download_the_step_as_a_notebook(server, page, tmp_path):
    """The notebook is built when the button is pressed (a callable, not on every rerun): it is
    the step on screen, the engine's first step of seed 0, with its batch and recorded numbers."""
    import nbformat
    from core.lab.settings import Settings
    from core.lab.workspace import Workspace
    m = engine_mnist()
    trace = Workspace(Settings(pool=3000, val=500), m["train"], m["test"]).step()
    open_page(page, server, "stepper", SMALL, expect_text="Step: train on this mini-batch")
    click_button(page, "Step: train on this mini-batch",
                 until=lambda: page.get_by_role("button", name="Download this step as a notebook (.ipynb)").count())
    with page.expect_download() as download:
        page.get_by_role("button", name="Download this step as a notebook (.ipynb)").click()
    assert download.value.suggested_filename == "backprop-step-1.ipynb"
    path = tmp_path / "step.ipynb"
    download.value.save_as(path)
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    scope: dict = {}
    for cell in [c for c in nb.cells if c.cell_type == "code"][:2]:      # the helpers and the data
        exec(cell.source, scope)
    np.testing.assert_array_equal(scope["X"], trace["X"])
    np.testing.assert_array_equal(scope["W1"], trace["W1"])
    np.testing.assert_array_equal(scope["app"]["ΔW1"], trace["ΔW1"])
    assert_no_errors(page)


# --------------------------------------------------------------------------- training
def test_a_training_run_moves_pauses_resumes_and_equals_the_engines(server, page, tmp_path):
    from core.lab import checkpoint
    # 10,000 epochs (400,000 steps, minutes even on a fast machine): the run cannot end before Stop
    open_page(page, server, "training", f"{SMALL}&epochs=10000",
              expect_text="2,500 training images in mini-batches of 64 → 40 steps per epoch")
    assert chart_traces(page, "training_loss") == []
    click_button(page, "Start training", until="Status: running")

    def epochs_drawn() -> int:
        traces = {t["name"]: t["n"] for t in chart_traces(page, "training_loss")}
        return traces.get("validation") or 0

    wait_until(lambda: epochs_drawn() >= 2 and progress_values(page), what="the first epochs")
    n1, p1 = epochs_drawn(), progress_values(page)[0]
    wait_until(lambda: epochs_drawn() > n1 + 2 and progress_values(page)[0] > p1,
               what="the loss curve to grow and the progress bar to move")
    shows(page, "Training: epoch", SIDEBAR)                     # every page sees the run

    press_during_run(page, "Pause", "paused")
    paused_at = epochs_drawn()
    assert metric(page, "Epoch").startswith(f"{paused_at:,} / 10,000")
    steps = re.search(r"· [\d,]+ epochs?, ([\d,]+) steps?", sidebar_text(page)).group(1)
    # "paused" is written once the training process has ended: nothing can move any more. Redraw
    # the whole page (the log-axis toggle) and see the same epoch and step in the panel and the sidebar.
    toggle = page.get_by_role("switch", name="Logarithmic epoch axis")
    page.get_by_text("Logarithmic epoch axis").click()
    expect(toggle).to_be_checked()
    settle(page)
    assert epochs_drawn() == paused_at and metric(page, "Epoch").startswith(f"{paused_at:,} / 10,000")
    assert f"{paused_at} epochs, {steps} steps" in sidebar_text(page)
    assert f"Last run: paused at epoch {paused_at:,} of 10,000" in sidebar_text(page)

    click_button(page, "Resume", until="Status: running")
    # while a run goes on, the curves are thinned to at most LIVE_POINTS epochs: count on the panel
    def epoch_shown() -> int:
        return int(metric(page, "Epoch").split()[0].replace(",", ""))
    wait_until(lambda: epoch_shown() > paused_at + 2, what="the resumed run to carry on")
    press_during_run(page, "Stop", "stopped")
    assert_no_errors(page)
    epoch = epoch_shown()
    assert epoch == epochs_drawn() > paused_at

    ws = small_workspace(10_000)                                  # the same run, uninterrupted, in core
    ws.trainer.run(epoch)
    h = ws.history
    assert metric(page, "Validation accuracy") == f"{h.column('val_acc')[-1]:.2%}"
    loss = h.column("train_loss")[-1]
    assert metric(page, "Training loss (epoch)") == (f"{loss:.4f}" if loss >= 1e-3 else f"{loss:.2e}")

    # the network itself: stopped mid-epoch, paused and resumed on the way, it is the
    # uninterrupted run's network at the same step, to the bit
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the checkpoint (.npz)").click()
    download.value.save_as(tmp_path / "stopped.npz")
    ck = checkpoint.load(tmp_path / "stopped.npz")
    assert ck.trainer_state["epoch"] == epoch
    for _ in range(ck.trainer_state["global_step"] - ws.trainer.global_step):
        ws.trainer.train_step()
    for name, value in ws.net.params.items():
        np.testing.assert_array_equal(ck.net.params[name], value, err_msg=name)


def test_download_the_checkpoint_and_load_it(server, page, tmp_path):
    """Train 3 epochs in the browser, download the checkpoint: it loads with core and
    holds exactly the network core trains with the same settings."""
    from core.lab import checkpoint
    open_page(page, server, "training", f"{SMALL}&epochs=3", expect_text="Start training")
    click_button(page, "Start training", until="Status: finished")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the checkpoint (.npz)").click()
    assert download.value.suggested_filename == "mlp-epoch-3.npz"
    path = tmp_path / "checkpoint.npz"
    download.value.save_as(path)

    ck = checkpoint.load(path)
    assert ck.trainer_state["epoch"] == 3 and ck.trainer_state["global_step"] == 120
    ws = small_workspace(3)
    ws.trainer.run(3)
    for name, value in ws.net.params.items():
        np.testing.assert_array_equal(ck.net.params[name], value, err_msg=name)
    np.testing.assert_array_equal(ck.history.column("val_acc"), ws.history.column("val_acc"))
    assert metric(page, "Validation accuracy") == f"{ck.history.column('val_acc')[-1]:.2%}"


# --------------------------------------------------------------------------- uploads
def test_upload_an_invalid_then_a_valid_train_csv_in_the_sidebar(server, page, tmp_path):
    from core.data.kaggle_csv import DataError, load_csv
    rng = np.random.default_rng(0)
    y, X = rng.integers(0, 10, 150), rng.integers(0, 256, (150, 784))
    good = csv_text(X, y)
    lines = good.splitlines(keepends=True)
    lines[5] = lines[5].replace(",", ",x,", 1)                    # row 5 gets one field too many
    bad = "".join(lines)
    (tmp_path / "train_bad.csv").write_text(bad)
    (tmp_path / "train_ok.csv").write_text(good)
    try:
        load_csv(bad.encode(), require_labels=True)
        raise AssertionError("core accepted the broken file")
    except DataError as err:
        problem = str(err)

    open_page(page, server, "data")
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Settings", exact=True).click()
    upload = sidebar.locator('input[type="file"]')

    upload.set_input_files(tmp_path / "train_bad.csv")
    error = sidebar.locator('[data-testid="stAlertContentError"]')
    error.wait_for()
    settle(page)
    message = error.inner_text()
    assert "train_bad.csv was not loaded." in message and problem in message, message
    assert "a new network (seed 0)" in sidebar_text(page)         # nothing changed
    assert_no_errors(page)

    upload.set_input_files(tmp_path / "train_ok.csv")
    sidebar.get_by_text("Loaded 150 labelled images from train_ok.csv.").wait_for()
    settle(page)
    expect(sidebar.locator('[data-testid="stAlertContentError"]')).to_have_count(0)
    choice = sidebar.get_by_role("radio", name="My uploaded train.csv")
    expect(choice).to_be_enabled()

    choice.check(force=True)                                      # train on it: 150 images, 15 held out
    sidebar.get_by_role("spinbutton", name="Image pool (train + validation)").fill("150")
    sidebar.get_by_role("spinbutton", name="Held out for validation").fill("15")
    sidebar.get_by_role("button", name="Apply settings").click()
    shows(page, "135 training and 15 validation images from train_ok.csv", MAIN)   # (the sidebar said
    settle(page)                                                  # "from train_ok.csv" already)
    assert_no_errors(page)


def test_kaggle_submission_predicts_like_the_engine(server, page, tmp_path):
    """Upload a small test.csv (the first 100 MNIST test images, no labels) and download
    submission.csv: ImageId from 1, the pretrained network's predictions, row for row."""
    from core.engine.trainer import evaluate
    ck, split = engine_pretrained()
    X = split.test.X[:100]
    (tmp_path / "test.csv").write_text(csv_text(X))
    want = evaluate(ck.net, X, None)["pred"]

    open_pretrained(page, server)
    go_to(page, "Kaggle submission")
    page.locator('[data-testid="stMain"] input[type="file"]').set_input_files(tmp_path / "test.csv")
    page.get_by_text("Predicted 100 images with the network at epoch 1000.").wait_for()
    settle(page)
    assert_no_errors(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download submission.csv").click()
    assert download.value.suggested_filename == "submission.csv"
    path = tmp_path / "submission.csv"
    download.value.save_as(path)
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0] == ["ImageId", "Label"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 101))
    assert [int(r[1]) for r in rows[1:]] == want.tolist()
    assert (want == split.test.y[:100]).mean() > 0.9             # and they are good predictions
