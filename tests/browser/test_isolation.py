"""Many users on one server, in real browsers: one session's training run is its own,
and a run whose tab is closed ends its training process and stops using the CPU.

Each browser context is a separate user (its own cookies, its own websocket, so its
own Streamlit session and Workspace).
"""
from __future__ import annotations

import re
import time

import psutil
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import start_server
from tests.browser.helpers import TIMEOUT, assert_no_errors, cpu_use, open_page, settle, shows, wait_until

MAIN = '[data-testid="stMain"]'
SIDEBAR = '[data-testid="stSidebar"]'
PROGRESS = f'{MAIN} [data-testid="stProgress"]'
ORPHAN_AFTER = 8          # seconds without a heartbeat before a run pauses itself (90 s in production;
                          # the training page sends one every 3 s, the sidebar every 5 s)


def new_user(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT * 1000)
    return ctx, page


def start_training(page) -> None:
    """Press *Start training* and wait for the run's progress bar."""
    button = page.get_by_role("button", name="Start training").first
    expect(button).to_be_enabled()
    button.click()
    page.locator(PROGRESS).first.wait_for()


def training_processes(server: psutil.Process) -> list:
    """The server's training processes (``python -m core.lab.run.worker``) alive now."""
    out = []
    for c in server.children(recursive=True):
        try:
            if "core.lab.run.worker" in " ".join(c.cmdline()) and c.status() != psutil.STATUS_ZOMBIE:
                out.append(c)
        except psutil.Error:
            pass
    return out


def epoch_shown(page) -> int:
    text = page.locator(PROGRESS).first.inner_text()
    return int(re.match(r"Epoch ([\d,]+) of", text).group(1).replace(",", ""))


def text(page, where: str = MAIN) -> str:
    return page.locator(where).inner_text()


def test_a_run_in_one_session_shows_only_there(server, browser):
    query = "pool=3000&val=500&epochs=5000"       # 40 steps per epoch: a run that lasts minutes
    ctx_a, a = new_user(browser)
    ctx_b, b = new_user(browser)
    try:
        open_page(a, server, "training", query, expect_text="Start training")
        start_training(a)
        first = epoch_shown(a)

        open_page(b, server, "training", query, expect_text="Status: not started")   # another user, while A trains
        assert_no_errors(b)
        main_b = text(b)
        assert "Status: not started" in main_b and "Not trained yet: press Start training." in main_b
        assert b.locator(PROGRESS).count() == 0 and b.locator(f"{SIDEBAR} [data-testid='stProgress']").count() == 0
        assert "a new network (seed 0) · 784 → 64 → 64 → 10 · SGD, η = 0.1 · 0 epochs, 0 steps" in text(b, SIDEBAR)
        expect(b.get_by_role("button", name="Start training").first).to_be_enabled()

        wait_until(lambda: epoch_shown(a) > first, what="A's run to go on, as A sees it")
        assert "Status: running" in text(a)

        b.get_by_text("Logarithmic epoch axis").click()   # B reruns its page: still nothing of A's
        expect(b.get_by_role("switch", name="Logarithmic epoch axis")).to_be_checked()
        settle(b)
        assert "Status: not started" in text(b) and b.locator(PROGRESS).count() == 0
        assert "0 epochs, 0 steps" in text(b, SIDEBAR)

        stop = a.get_by_role("button", name="Stop").first
        expect(stop).to_be_enabled()
        stop.click()
        shows(a, "Status: stopped")
        settle(a)
        assert_no_errors(a)
        steps = int(re.search(r"· ([\d,]+) epochs?, ([\d,]+) steps?", text(a, SIDEBAR)).group(2).replace(",", ""))
        assert steps > first * 40
        assert "0 epochs, 0 steps" in text(b, SIDEBAR)
    finally:
        ctx_a.close()
        ctx_b.close()


@pytest.fixture(scope="module")
def impatient_server():
    """A server of its own whose runs pause after ORPHAN_AFTER s without a watching tab,
    so that nobody else's run shares its CPU count."""
    proc, url = start_server(extra_env={"BACKPROP_ORPHAN_AFTER": str(ORPHAN_AFTER)})
    yield proc, url
    proc.terminate()
    proc.wait(10)


def test_closing_the_tab_mid_run_pauses_the_run_and_frees_the_cpu(impatient_server, browser):
    proc, url = impatient_server
    server = psutil.Process(proc.pid)
    ctx, page = new_user(browser)
    try:
        open_page(page, url, "training", "pool=12000&val=1000", expect_text="Start training")   # 172 steps an epoch
        start_training(page)
        shows(page, "Status: running")
        trainers = wait_until(lambda: training_processes(server), what="the training process")
        first = epoch_shown(page)
        wait_until(lambda: epoch_shown(page) > first, what="the run to train")
    finally:
        ctx.close()
    closed = time.monotonic()
    # no more heartbeats: the run trains on until ORPHAN_AFTER s have passed, then pauses itself,
    # which ends its training process
    assert all(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in trainers), \
        "the run stopped at once, not after the orphan time"
    # (ended and reaped: a zombie's CPU time moves to the server's children's only once reaped)
    wait_until(lambda: not any(psutil.pid_exists(p.pid) for p in trainers), timeout=ORPHAN_AFTER + TIMEOUT,
               every=0.1, what="the training process to end after the tab was closed")
    ended = time.monotonic() - closed
    assert ended >= ORPHAN_AFTER - 4, ended       # the last heartbeat came at most ~3 s before closing
    assert not training_processes(server)
    # and nothing else computes for it: the server and what it started use no CPU (a measurement of
    # the CPU time this server's processes spend, which other load on the machine cannot raise)
    assert cpu_use(server, 3.0) < 0.05
