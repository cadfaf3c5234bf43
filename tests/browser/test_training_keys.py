"""The training page's key (pages/training.py RUN_KEY), pressed in Chromium: it starts a run,
pauses it, resumes it, like a video's play/pause, and the button it presses shows it."""
from __future__ import annotations

import warnings

from tests.browser.helpers import assert_no_errors, click_button, open_page, settle, shows, wait_until

SMALL = "pool=3000&val=500&epochs=10000"   # 40 steps per epoch, 400,000 steps: no run ends before Stop


def badge(page, label: str) -> str:
    """The shortcut Streamlit draws on a button ("" when it has none)."""
    kbd = page.get_by_role("button", name=label).first.locator("kbd")
    return kbd.inner_text() if kbd.count() else ""


def press_for(page, status: str, timeout: float = 30) -> None:
    """Press the run's key, wait for the status it leads to, then for the page's run to end.
    As with a click during a run (test_flows.press_during_run): if Streamlit dropped the key
    press because it came with the live panel's timed rerun, press once more and say so."""
    for attempt in range(2):
        page.keyboard.press("s")
        try:
            shows(page, f"Status: {status}", timeout=timeout if attempt == 0 else 90)
            settle(page)
            return
        except AssertionError:
            if attempt:
                raise
            warnings.warn(f"the key press for {status!r} was lost once; pressed again")


def test_the_run_key_starts_pauses_and_resumes_a_run(server, page):
    open_page(page, server, "training", SMALL, expect_text="Status: not started")
    assert badge(page, "Start training") == "S"           # on the one button the key presses now
    assert badge(page, "Pause") == badge(page, "Resume") == ""
    assert "Key S starts, pauses and resumes the run." in page.locator('[data-testid="stMain"]').inner_text()

    press_for(page, "running")
    assert badge(page, "Pause") == "S" and badge(page, "Continue training") == ""
    press_for(page, "paused")
    assert badge(page, "Resume") == "S"
    press_for(page, "running")
    assert_no_errors(page)
    click_button(page, "Stop", until="Status: stopped")   # the run ends with the test
    # the status and the buttons may arrive in different deltas of the rerun: wait for the badge's state
    wait_until(lambda: badge(page, "Continue training") == "S", what="the S badge on Continue training")
