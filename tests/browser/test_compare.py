"""Compare runs in a real browser: the shipped networks side by side (their curves, the table, a
rename, the CSV as downloaded, remove and undo, reopen), and a training run that finishes is kept
there by itself and is still there after a reload."""
from __future__ import annotations

import csv
import io

from tests.browser.conftest import ARTIFACTS
from tests.browser.helpers import (MAIN, assert_no_errors, chart_traces, click_button, go_to, main_text, open_page,
                                   settle, shows, sidebar_text, wait_until)

SMALL = "pool=3000&val=500"        # 2,500 training images: 40 steps per epoch
SEED, IMPROVED = "the seed, shipped", "the seed, improved, shipped"


def table_text(page) -> str:
    """The table's cells, as the data grid's accessible copy holds them (the grid itself is a canvas,
    and the copy is filled after it is drawn: wait on it with wait_until)."""
    table = page.locator(f'{MAIN} [data-testid="stDataFrame"]')
    return table.first.text_content() if table.count() else ""


def test_the_shipped_networks_compared_renamed_downloaded_removed_and_reopened(server, page, tmp_path):
    open_page(page, server, "compare", expect_text="No runs to compare yet")
    click_button(page, "Add the shipped networks", until="Settings and results")
    assert_no_errors(page)
    for key in ("compare_loss", "compare_acc", "compare_ratio"):     # one line per run, named after it
        traces = wait_until(lambda: chart_traces(page, key), what=f"the chart {key}")
        assert {SEED, IMPROVED} <= {t["name"] for t in traces}, traces
    acc = {t["name"]: t["n"] for t in chart_traces(page, "compare_acc")}
    assert acc[SEED] > 100 and acc[IMPROVED] == 150                  # the seed's 1000 epochs, thinned
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)

    name = page.get_by_label("Name").first                            # rename the first run
    name.fill("Seed, 1000 epochs")
    name.press("Enter")
    wait_until(lambda: "Seed, 1000 epochs" in table_text(page), what="the new name in the table")
    settle(page)

    with page.expect_download() as download:
        page.get_by_role("button", name="Download the table (.csv)").click()
    assert download.value.suggested_filename == "runs.csv"
    download.value.save_as(tmp_path / "runs.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "runs.csv").read_text())))
    assert [r["Run"] for r in rows] == ["Seed, 1000 epochs", IMPROVED]
    assert [r["Test acc"] for r in rows] == ["0.9729", "0.9843"] and [r["Epochs trained"] for r in rows] == ["1000", "150"]
    assert [r["Shift (px)"] for r in rows] == ["0", "2"]

    page.get_by_role("button", name="Remove").nth(1).click()
    shows(page, f"Removed “{IMPROVED}”")
    wait_until(lambda: IMPROVED not in table_text(page), what="the table without the run removed")
    click_button(page, "Undo", until=lambda: IMPROVED in table_text(page))

    page.get_by_role("button", name="Open").nth(1).click()            # nothing trained here: no question
    shows(page, "is now your network")
    settle(page)
    wait_until(lambda: f"the run “{IMPROVED}”" in sidebar_text(page), what="the sidebar naming the run")
    assert "784 → 64 → 64 → 10" in sidebar_text(page) and "150 epochs" in sidebar_text(page)
    assert_no_errors(page)


def test_a_finished_training_run_is_kept_and_survives_a_reload(server, page):
    open_page(page, server, "training", f"{SMALL}&epochs=2", expect_text="Start training")
    click_button(page, "Start training", until="Status: finished")
    go_to(page, "Compare runs")
    wait_until(lambda: "2 epochs" in table_text(page), what="the finished run in the table")
    assert_no_errors(page)
    page.reload()                                   # the same browser: its lab, runs included
    settle(page)
    wait_until(lambda: "2 epochs" in table_text(page), what="the finished run in the table after a reload")
    assert "No runs to compare yet" not in main_text(page)
