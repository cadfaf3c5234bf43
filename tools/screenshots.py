"""Regenerate the README's screenshots from the real app.

    python tools/screenshots.py                 # every picture into docs/screenshots/
    python tools/screenshots.py stepper-update  # only some of them

Starts ``streamlit run streamlit_app.py`` on a free loopback port (the browser
tests' own ``start_server``), drives Debian's Chromium through Playwright in a
1400 px wide window, opens the shipped pretrained network where a trained network
is the point of the page, and saves one PNG per page: the whole page, or its top
part where the page goes on for screens. Takes about a minute.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402
from tests.browser.helpers import (assert_no_errors, click_button, go_to, open_page, open_pretrained,  # noqa: E402
                                   settle)

OUT = ROOT / "docs" / "screenshots"
WIDTH = 1400
MAX_HEIGHT = 2600        # longer pages are cut: the top of the page is what the README shows


def shoot(page, name: str, out: Path, *, height: int | None = None, top_of: str | None = None) -> Path:
    """Save the page as ``out/name.png``: 1400 px wide, as tall as its content (at most
    ``height`` or MAX_HEIGHT). With ``top_of`` (a text on the page) the picture starts a
    little above that text instead of at the top."""
    assert_no_errors(page)
    page.mouse.move(WIDTH - 5, 5)          # no hover effects (the sidebar's collapse arrow, tooltips)
    full = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    limit = height or MAX_HEIGHT
    offset = 0
    if top_of:
        offset = max(0, int(page.evaluate(
            """(text) => { const main = document.querySelector('[data-testid="stMain"]');
                const el = Array.from(main.querySelectorAll('h1, h2, h3, p, span'))
                                .find(e => e.textContent.trim().startsWith(text));
                return el ? el.getBoundingClientRect().top + main.scrollTop - 10 : 0; }""", top_of)))
    tall = min(full, offset + limit)
    page.set_viewport_size({"width": WIDTH, "height": int(tall)})
    time.sleep(0.8)                       # plotly redraws on resize
    settle(page)
    path = out / f"{name}.png"
    clip = {"x": 0, "y": offset, "width": WIDTH, "height": min(limit, tall - offset)}
    page.screenshot(path=str(path), clip=clip)
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    settle(page)
    print(f"{path}  {WIDTH}×{int(clip['height'])}", flush=True)
    return path


def jump_to_stop(page, key: str) -> None:
    """Click a name in the stepper's trace viewer's strip of stops (drawn in the browser: no rerun)."""
    page.locator(".tv-strip button", has_text=key).first.click()
    page.locator(f'.tv[data-stop="{key}"]').wait_for()


def draw_seven(page) -> None:
    canvas = page.locator(".st-key-digit_canvas canvas").last
    canvas.wait_for()
    box = canvas.bounding_box()
    x0, y0, w = box["x"], box["y"], box["width"]
    path = [(0.25, 0.22), (0.45, 0.2), (0.72, 0.2), (0.7, 0.3), (0.6, 0.48), (0.5, 0.66), (0.44, 0.82)]
    page.mouse.move(x0 + path[0][0] * w, y0 + path[0][1] * w)
    page.mouse.down()
    for (ax, ay), (bx, by) in zip(path, path[1:]):
        for t in np.linspace(0, 1, 8)[1:]:
            page.mouse.move(x0 + (ax + t * (bx - ax)) * w, y0 + (ay + t * (by - ay)) * w)
    page.mouse.up()
    page.get_by_text("It reads a").wait_for()
    settle(page)


def kaggle_csv(path: Path, n: int = 1000) -> Path:
    """A Kaggle-style test.csv: the first ``n`` official MNIST test images, no labels."""
    from core.data.mnist import load_mnist
    X = load_mnist()["test"].X[:n]
    header = ",".join(f"pixel{i}" for i in range(784))
    path.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in X.tolist()) + "\n")
    return path


# --------------------------------------------------------------------------- one function per picture set
def home_and_data(page, url, out):
    open_page(page, url)
    shoot(page, "home", out)
    open_page(page, url, "data")
    shoot(page, "data", out)


def stepper(page, url, out):
    """A fresh seed-0 network, its first mini-batch: what a student sees first."""
    open_page(page, url, "stepper")
    click_button(page, "Step: train on this mini-batch", until=lambda: page.locator('.tv[data-state="ready"]').count())
    page.locator(".tv-eqs .katex").first.wait_for()
    jump_to_stop(page, "A1")
    shoot(page, "stepper-forward", out, height=1500)
    jump_to_stop(page, "dZ2")
    shoot(page, "stepper-backward", out, height=1000)
    jump_to_stop(page, "ΔW1")
    shoot(page, "stepper-update", out, height=1000)


def lessons(page, url, out):
    """A fresh seed-0 network: the first lesson at its fourth question, skipped so the answer, the
    numbers and the fold-outs show; then the learning-rate lesson with its four steps taken."""
    open_page(page, url, "lesson", "q=4", expect_text="Question 4")
    click_button(page, "Skip", until="Skipped")
    shoot(page, "lesson", out, height=1700, top_of="Question 4")
    open_page(page, url, "lr_lesson", expect_text="Your prediction")
    click_button(page, "Take the four steps", until="What happened")
    shoot(page, "lr-lesson", out, height=1500, top_of="2 · Your prediction")


def trained_pages(page, url, out, tmp: Path):
    """The pretrained network on every page that is about a trained network."""
    open_pretrained(page, url)
    go_to(page, "Train 1000 epochs")
    shoot(page, "training", out, height=2000)
    go_to(page, "What it learned")
    shoot(page, "inspect", out, height=2200)
    go_to(page, "Where it fails")
    shoot(page, "evaluate", out, height=2200)
    go_to(page, "Draw a digit")
    draw_seven(page)
    shoot(page, "draw", out, height=1500)
    go_to(page, "Kaggle submission")
    page.locator('[data-testid="stMain"] input[type="file"]').set_input_files(kaggle_csv(tmp / "test.csv"))
    page.get_by_text("Predicted 1,000 images").wait_for()
    settle(page)
    shoot(page, "kaggle", out, height=1600)


def compare(page, url, out):
    """The shipped networks side by side: what a student sees without training anything."""
    open_page(page, url, "compare", expect_text="No runs to compare yet")
    click_button(page, "Add the shipped networks", until="Settings and results")
    page.locator(".st-key-compare_ratio .js-plotly-plot").wait_for()
    shoot(page, "compare", out, height=2400)


SETS = {"home": home_and_data, "data": home_and_data, "stepper-forward": stepper, "stepper-backward": stepper,
        "stepper-update": stepper, "lesson": lessons, "lr-lesson": lessons, "training": trained_pages, "inspect": trained_pages, "evaluate": trained_pages,
        "draw": trained_pages, "kaggle": trained_pages, "compare": compare}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help=f"pictures to make (default all): {', '.join(SETS)}")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    unknown = set(args.names) - set(SETS)
    if unknown:
        ap.error(f"unknown picture(s): {', '.join(sorted(unknown))}")
    wanted = []
    for name in args.names or SETS:
        if SETS[name] not in wanted:
            wanted.append(SETS[name])
    args.out.mkdir(parents=True, exist_ok=True)
    ARTIFACTS.mkdir(exist_ok=True)
    tmp = ARTIFACTS / "screenshots-tmp"
    tmp.mkdir(exist_ok=True)

    from playwright.sync_api import sync_playwright
    proc, url = start_server()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            for make in wanted:      # each set in a new session (a new browser context)
                ctx = browser.new_context(viewport={"width": WIDTH, "height": 1000}, device_scale_factor=1)
                page = ctx.new_page()
                page.set_default_timeout(60_000)
                if make is trained_pages:
                    make(page, url, args.out, tmp)
                else:
                    make(page, url, args.out)
                ctx.close()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
