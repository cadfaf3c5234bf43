"""A reload never loses the network: the browser keeps a token in a cookie, the server its lab.

One test, on servers of its own (a store folder of its own): train 2 epochs, reload, the
network is still there (the server's live lab); another browser gets a fresh network; a
new server on the same folder reopens the lab from the store (a restart).
"""
from __future__ import annotations

import re

from tests.browser.conftest import ARTIFACTS, start_server
from tests.browser.helpers import SIDEBAR, assert_no_errors, open_page, settle, shows, sidebar_text, wait_until

QUERY = "pool=600&val=100&batch_size=50&epochs=2"      # 10 steps per epoch: 2 epochs in a moment
COOKIE = "backprop_lab"


def epochs_and_steps(page) -> tuple[int, int]:
    # the sidebar's network line comes from its own fragment: wait for it to be drawn, then read it
    shows(page, "Your network:", SIDEBAR)
    m = re.search(r"· ([\d,]+) epochs?, ([\d,]+) steps?", sidebar_text(page))
    assert m, sidebar_text(page)
    return int(m[1].replace(",", "")), int(m[2].replace(",", ""))


def stop(proc) -> None:
    proc.terminate()
    proc.wait(15)


def test_a_reload_keeps_the_network_and_another_browser_gets_its_own(browser, tmp_path):
    env = {"BACKPROP_STATE_DIR": str(tmp_path / "labs")}
    ARTIFACTS.mkdir(exist_ok=True)
    proc, url = start_server(extra_env=env)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    other = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        open_page(page, url, "training", QUERY)
        assert epochs_and_steps(page) == (0, 0)
        page.get_by_role("button", name="Start training").first.click()
        page.get_by_text("Status: finished").first.wait_for(timeout=120_000)
        settle(page)
        wait_until(lambda: epochs_and_steps(page) == (2, 20), what="the sidebar to say 2 epochs")
        token = [c for c in ctx.cookies() if c["name"] == COOKIE]
        assert len(token) == 1 and len(token[0]["value"]) >= 32 and token[0]["sameSite"] == "Strict"
        assert token[0]["value"] not in page.url

        page.reload()
        settle(page)
        assert_no_errors(page)
        assert epochs_and_steps(page) == (2, 20)
        assert token[0]["value"] not in page.url

        stranger = other.new_page()                       # another user, the very same URL
        stranger.set_default_timeout(60_000)
        open_page(stranger, url, "training", QUERY)
        assert_no_errors(stranger)
        assert epochs_and_steps(stranger) == (0, 0)
        assert "Status: not started" in stranger.locator('[data-testid="stMain"]').inner_text()
        assert [c["value"] for c in other.cookies() if c["name"] == COOKIE] != [token[0]["value"]]

        # a restart: a new server on the same folder (cookies belong to the host, not the port)
        page.close()
        stop(proc)
        proc, url = start_server(extra_env=env)
        again = ctx.new_page()
        again.set_default_timeout(60_000)
        open_page(again, url, "training", QUERY)
        assert_no_errors(again)
        assert epochs_and_steps(again) == (2, 20)
        assert again.get_by_role("button", name="Continue training").first.is_enabled()
    finally:
        ctx.close()
        other.close()
        stop(proc)
