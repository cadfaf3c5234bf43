"""What every browser test does: open a page, wait for Streamlit to finish its run, look for errors.

Every wait here is for a state, never for a stretch of time: an action is followed by a wait
for its effect on the page (a text, an element, a condition polled with a generous deadline),
then by :func:`settle`, which waits for the app's own script-run state
(``data-test-script-state`` on the app's root) to be ``notRunning`` with nothing left stale.
The run state alone cannot tell that a run has *started*: a short run (a fragment's timed
rerun) can go by without the page ever showing "running", and a click's run may not have
begun yet when the call returns. Hence the effect first, then the settle. Nothing sleeps and
then asserts.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

APP = '[data-testid="stApp"]'
MAIN = '[data-testid="stMain"]'
SIDEBAR = '[data-testid="stSidebar"]'
EXCEPTION = '[data-testid="stException"]'
ERROR_TOAST = '[data-testid="stToast"]'
TIMEOUT = 90.0          # seconds: a deadline for states that normally come within one or two

# the script has finished its run: the app says so, nothing is a skeleton or left stale from the run before
_SETTLED = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
        && !document.querySelector('[data-testid="stSkeleton"]')
        && !document.querySelector('[data-testid="stElementContainer"][data-stale="true"]');
}"""


def settle(page, timeout: float = TIMEOUT) -> None:
    """Wait until the script has drawn the page and is not running (see ``_SETTLED``)."""
    page.wait_for_selector(APP, timeout=timeout * 1000)
    # the script has drawn something in the main area (the first paint is empty)
    page.wait_for_selector(f'{MAIN} [data-testid="stElementContainer"]', timeout=timeout * 1000)
    page.wait_for_function(_SETTLED, timeout=timeout * 1000)


def shows(page, text: str, where: str = APP, timeout: float = TIMEOUT) -> None:
    """Wait until ``text`` is part of the text of ``where``."""
    wait_until(lambda: text in page.locator(where).first.inner_text(), timeout=timeout, what=repr(text))


def open_page(page, url: str, path: str = "", query: str = "", expect_text: str | None = None) -> None:
    page.goto(f"{url}/{path}{('?' + query) if query else ''}")
    settle(page)
    if expect_text:
        shows(page, expect_text)
        settle(page)


def assert_no_errors(page) -> None:
    """No exception and no error toast on the page, once the script has finished its run."""
    page.wait_for_function(_SETTLED, timeout=TIMEOUT * 1000)
    exc = page.locator(EXCEPTION)
    assert exc.count() == 0, "Streamlit exception on the page: " + exc.first.inner_text()[:2000]
    toasts = [t.inner_text() for t in page.locator(ERROR_TOAST).all()]
    assert not any("error" in t.lower() for t in toasts), toasts


def click_button(page, label: str, until, timeout: float = TIMEOUT) -> None:
    """Click the button once it is enabled, wait for the click's effect, then for the run to end.

    ``until``: a text the page shows once the click has had its effect, or a function that
    returns true then."""
    from playwright.sync_api import expect
    button = page.get_by_role("button", name=label).first
    expect(button).to_be_enabled(timeout=timeout * 1000)
    button.click()
    if isinstance(until, str):
        shows(page, until, timeout=timeout)
    else:
        wait_until(until, timeout=timeout, what=f"the effect of {label!r}")
    settle(page, timeout)


def wait_for_count(page, selector: str, at_least: int, timeout: float = TIMEOUT) -> int:
    """Wait until ``selector`` matches at least ``at_least`` elements (charts draw after the run ends)."""
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length >= n", arg=[selector, at_least],
                           timeout=timeout * 1000)
    return page.locator(selector).count()


def wait_until(condition, timeout: float = TIMEOUT, every: float = 0.25, what: str = "the condition"):
    """Poll ``condition()`` until it is true (returns its value); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


# --------------------------------------------------------------------------- moving around in one session
NAV_TITLES = {"Start here": "Backprop, step by step"}   # link text → the page's title, where they differ


def go_to(page, link: str) -> None:
    """Follow the sidebar's navigation link to a page, in the same session (a fresh
    ``page.goto`` would start a new session and lose this one's network)."""
    page.locator('[data-testid="stSidebarNav"]').get_by_text(link, exact=True).click()
    title = NAV_TITLES.get(link, link)
    page.wait_for_selector(f'{MAIN} h1:has-text("{title}")', timeout=TIMEOUT * 1000)
    settle(page)


def open_pretrained(page, url: str) -> None:
    """Home page → "Open the pretrained network": this session now holds the shipped network."""
    open_page(page, url, expect_text="Open the pretrained network (1000 epochs, seed protocol)")
    click_button(page, "Open the pretrained network (1000 epochs, seed protocol)",
                 until=lambda: "the pretrained network" in sidebar_text(page))


def address(page) -> str:
    """The browser's address as it is now (``location.href``). Not ``page.url``: Playwright's
    sync API keeps that from the navigation events it has handled, and it handles them only
    while a Playwright call runs, so ``page.url`` read between ``time.sleep``s (as
    :func:`wait_until` polls) still says what the address was before a click: Streamlit changes
    the address with ``history.pushState`` after the click has returned."""
    return page.evaluate("() => location.href")


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def sidebar_text(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def metric(page, label: str) -> str:
    """The value shown by the ``st.metric`` with this label."""
    box = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=label)).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def chart_traces(page, key: str) -> list[dict]:
    """What plotly drew in the chart with Streamlit key ``key``: per trace its name,
    its number of points and (for heatmaps) its z values, as the browser holds them."""
    return page.evaluate("""(key) => {
        const el = document.querySelector(`.st-key-${key} .js-plotly-plot`);
        if (!el || !el._fullData) return [];
        return el._fullData.map(t => ({name: t.name, type: t.type, n: t._length ?? null,
            z: t.type === 'heatmap' && t.z ? Array.from(t.z, r => Array.from(r)) : null}));
    }""", key)


def progress_values(page) -> list[int]:
    """Every progress bar's value (0–100), the main area's first, then the sidebar's."""
    return page.evaluate("""() => ['stMain', 'stSidebar'].flatMap(id => Array.from(
        document.querySelectorAll(`[data-testid="${id}"] [data-testid="stProgress"] [role="progressbar"]`),
        e => Number(e.getAttribute('aria-valuenow'))))""")


# --------------------------------------------------------------------------- what the page sends
def record_sent(page) -> list:
    """Every websocket message the page sends from now on (call before it opens the app)."""
    sent: list = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
    return sent


def caused_by_user(payload) -> bool:
    """A message the page sent that is not the app's own timer: the sidebar's ``run_status``
    fragment (``st.fragment(run_every="5s")``) asks for a rerun every 5 s whatever the user does."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    msg = BackMsg()
    msg.ParseFromString(payload if isinstance(payload, bytes) else payload.encode())
    return not (msg.WhichOneof("type") == "rerun_script" and msg.rerun_script.is_auto_rerun)


# --------------------------------------------------------------------------- the engine's own numbers
@functools.cache
def engine_mnist():
    """The shipped MNIST, as core loads it (to compute what the page should show)."""
    from core.data.mnist import load_mnist
    return load_mnist()


@functools.cache
def engine_pretrained():
    """The shipped pretrained network and the split it was trained on, as core loads them."""
    from core.lab import checkpoint
    from core.data.mnist import make_split
    ck = checkpoint.load(ROOT / "data" / "pretrained.npz")
    m = engine_mnist()
    s = ck.split
    split = make_split(m["train"], pool=int(s["pool"]), val=int(s["val"]), seed=int(s["seed"]), test=m["test"])
    return ck, split


def cpu_seconds(procs) -> float:
    """User + system CPU-seconds of psutil processes (those that are gone count 0)."""
    import psutil

    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def server_cpu_time(proc) -> float:
    """CPU-seconds of a server process and of the training processes it started
    (running ones, and those that have ended and been reaped). ``proc``: a psutil.Process."""
    t = proc.cpu_times()
    return t.children_user + t.children_system + cpu_seconds([proc, *proc.children(recursive=True)])


def cpu_use(proc, seconds: float) -> float:
    """Cores the server and its training processes use over the next ``seconds`` (1.0 = one core flat out)."""
    t0, w0 = server_cpu_time(proc), time.monotonic()
    time.sleep(seconds)
    # a training process that has just ended may be in neither count for a moment (gone from
    # the children, its time not yet in the parent's): the difference can then be negative
    return max(0.0, server_cpu_time(proc) - t0) / (time.monotonic() - w0)
