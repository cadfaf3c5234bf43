"""Every page loads in a real browser, settles, and shows what a user comes for.

Where a page shows a number the engine computes, the test computes it too, with
``core`` on the same data and the same seed, and compares the two.
"""
import math
import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (assert_no_errors, chart_traces, click_button, engine_mnist, engine_pretrained,
                                   go_to, main_text, metric, open_page, open_pretrained, settle, shows,
                                   wait_for_count, wait_until)
from ui import session as ui_pages

PAGES = {  # url path → text a user must see there, in a new session (a new, untrained network)
    "": "Backprop, step by step",
    "data": "The average image of each digit",
    "stepper": "to send the first mini-batch through the network",
    "lesson": "Question 1 · The shape of Z1",
    "lr_lesson": "Which η lowers this batch's loss the most?",
    "training": "Not trained yet: press",
    "inspect": "The 64 neurons of layer 1",
    "evaluate": "Which digits it confuses",
    "draw": "Draw a digit on the canvas",
    "kaggle": "Kaggle test.csv (a train.csv with labels works too)",
    "compare": "No runs to compare yet",
}
NAV = [p.title for p in ui_pages.PAGES]    # every page, by its title, in the sidebar's list


def test_every_page_of_the_navigation_is_loaded_here():
    assert {Path(p.path).stem for p in ui_pages.PAGES} == {path or "home" for path in PAGES}


@pytest.mark.parametrize("path, text", PAGES.items())
def test_page_loads_without_errors(server, page, path, text):
    outside = []     # the app works offline: nothing is fetched from another host, not even the tab's icon
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
        ("http://127.0.0.1", "http://localhost", "data:", "blob:")) else None)
    open_page(page, server, path, expect_text=text)
    assert_no_errors(page)
    assert not outside, outside
    expect(page.get_by_text(text).first).to_be_visible()
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert all(title in nav for title in NAV), nav


def test_home_page_quotes_what_the_pretrained_network_really_scores(server, page):
    from core.engine.trainer import evaluate
    ck, split = engine_pretrained()
    val = evaluate(ck.net, split.source.X[split.val_idx], split.source.y[split.val_idx])
    test = evaluate(ck.net, split.test.X, split.test.y)
    open_page(page, server, expect_text="Our engine, same protocol")
    text = main_text(page)
    assert f"Our engine, same protocol: {val['acc']:.1%} validation accuracy after 1000 epochs" in text
    assert f"{test['acc']:.2%} on the 10,000 official MNIST test images" in text


def test_data_page_draws_its_figures_from_the_split(server, page):
    from core.data.mnist import make_split
    split = make_split(engine_mnist()["train"])          # the default: first 42,000, 1,000 held out, seed 0
    counts = np.bincount(split.source.y[split.train_idx], minlength=10)
    open_page(page, server, "data", expect_text="training and 1,000 validation images")
    wait_for_count(page, ".js-plotly-plot", 4)
    text = main_text(page)
    assert "41,000 training and 1,000 validation images" in text
    assert (f"Fewest: digit {counts.argmin()} ({counts.min():,}); most: digit {counts.argmax()} "
            f"({counts.max():,})") in text
    bars = wait_until(lambda: chart_traces(page, "counts"), what="the bar chart of counts")
    assert bars[0]["n"] == 10


def test_stepper_shows_the_engines_first_step(server, page):
    """Seed 0, the default settings: the loss on screen is the one core computes for the same batch."""
    from core.lab.settings import Settings
    from core.lab.workspace import Workspace
    m = engine_mnist()
    trace = Workspace(Settings(), m["train"], m["test"]).step()
    losses = np.asarray(trace["losses"])
    worst = int(np.nanargmax(losses))

    open_page(page, server, "stepper", expect_text="Step: train on this mini-batch")
    click_button(page, "Step: train on this mini-batch", until="1 step taken (epoch 1, batch 2 of 641 comes next)")
    assert_no_errors(page)
    page.locator('[data-testid="stButtonGroup"] button', has_text="One sample").click()   # a view below the viewer
    wait_for_count(page, ".js-plotly-plot", 3)                    # one sample's charts
    text = main_text(page)                                        # "One sample" starts on the worst sample
    assert f"losses[{worst}] = −log {math.exp(-losses[worst]):.3f} = {losses[worst]:.4f}" in text
    page.locator(".tv-strip button", has_text="losses").click()       # the trace viewer's strip of stops
    loss = page.locator('.tv-fact[data-fact="loss"] b')
    expect(loss).to_have_text(f"{float(trace['loss']):.4g}")


def test_training_page_counts_the_steps_of_the_seed_protocol(server, page):
    from core.lab.settings import Settings
    from core.lab.workspace import Workspace
    m = engine_mnist()
    spe = Workspace(Settings(), m["train"], m["test"]).trainer.steps_per_epoch
    open_page(page, server, "training", expect_text="41,000 training images")
    assert_no_errors(page)
    assert (f"41,000 training images in mini-batches of 64 → {spe:,} steps per epoch, so 1,000 epochs are "
            f"{1000 * spe:,} steps") in main_text(page)
    expect(page.get_by_role("button", name="Start training")).to_be_enabled()


def test_inspect_page_shows_the_pretrained_neurons_firing_rates(server, page):
    from core.data.mnist import to_float
    ck, split = engine_pretrained()
    Z1 = ck.net.forward(to_float(split.source.X[split.val_idx], ck.net.dtype))["Z1"]
    rates = (Z1 > 0).mean(axis=0)
    W1, b1 = ck.net.params["W1"], ck.net.params["b1"]

    open_pretrained(page, server)
    go_to(page, "What it learned")
    assert_no_errors(page)
    captions = wait_until(lambda: page.evaluate("""() => {
        const el = document.querySelector('.st-key-neuron_grid .js-plotly-plot');
        return el ? (el.layout.annotations || []).map(a => a.text) : []; }"""), what="the grid of neurons")
    want = [f"{j}" + (" dead" if rates[j] == 0 else f" · {rates[j]:.0%}") for j in range(64)]
    assert captions == want
    text = main_text(page)
    j = 0                                               # the neuron opened first (order: by number)
    assert f"Neuron {j}: ‖W1[:, {j}]‖ = {np.linalg.norm(W1[:, j].astype(np.float64)):.3f}, " \
           f"b1[{j}] = {float(b1[j]):+.4f}" in text
    wait_for_count(page, ".js-plotly-plot", 6)


def test_evaluate_page_scores_the_pretrained_network_like_the_engine(server, page):
    from core.engine.trainer import evaluate
    ck, split = engine_pretrained()
    val = evaluate(ck.net, split.source.X[split.val_idx], split.source.y[split.val_idx])
    test = evaluate(ck.net, split.test.X, split.test.y)

    open_pretrained(page, server)
    go_to(page, "Where it fails")
    assert_no_errors(page)
    assert metric(page, "Validation accuracy") == f"{val['acc']:.2%}"
    assert metric(page, "Test accuracy") == f"{test['acc']:.2%}"
    assert metric(page, "Validation loss") == f"{val['loss']:.4f}"
    wrong = int((val["pred"] != split.source.y[split.val_idx]).sum())
    assert f"Validation: 1,000 images, {wrong} wrong" in main_text(page)


def test_draw_page_reads_a_drawn_digit_as_the_engine_does(server, page):
    """Draw a stroke on the canvas; the 28×28 image the page shows, run through the
    pretrained network by core, gives the digit and probability on screen."""
    from core.engine.trainer import evaluate
    ck, _ = engine_pretrained()
    open_pretrained(page, server)
    go_to(page, "Draw a digit")
    canvas = page.locator(".st-key-digit_canvas canvas").last
    canvas.wait_for()
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + 40
    page.mouse.move(x, y)
    page.mouse.down()
    for k in range(1, 21):                      # a vertical stroke with a little slant: a 1
        page.mouse.move(x - k, y + k * 10)
    page.mouse.up()
    page.get_by_text("It reads a").wait_for()
    settle(page)
    assert_no_errors(page)
    z = wait_until(lambda: chart_traces(page, "draw_mnist"), what="the 28×28 picture")[0]["z"]
    img = np.rint(np.asarray(z, dtype=np.float64)[:28, :28] * 255).astype(np.uint8).reshape(1, 784)
    assert img.sum() > 0
    proba = evaluate(ck.net, img, None)["proba"][0]
    pred = int(proba.argmax())
    text = main_text(page)
    assert f"It reads a {pred}" in text and f"with probability {proba[pred]:.1%}" in text
    assert re.search(r"It reads a 1\b", text), "a vertical stroke should read as a 1"


def test_a_deep_link_on_a_fresh_server_opens_the_page_inside_the_app(page):
    """A shared link like /data as the very first request must still get the app's
    navigation and settings sidebar (Streamlit's pages/-folder mode would skip them)."""
    from tests.browser.conftest import start_server
    proc, url = start_server()
    try:
        open_page(page, url, "data", expect_text="The average image of each digit")
        assert_no_errors(page)
        # /data was the first page of the list the page gave st.navigation, so it had the address /
        expect(page.get_by_text("Page not found")).to_have_count(0)
        expect(page.get_by_text("The average image of each digit").first).to_be_visible()
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Step through backprop" in nav and "streamlit app" not in nav.lower()
        expect(page.get_by_text("Settings").first).to_be_visible()
    finally:
        proc.terminate()
        proc.wait(10)
