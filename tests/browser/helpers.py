"""What every browser test does: open a page, let Streamlit settle, look for errors."""
from __future__ import annotations

import functools
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

APP = '[data-testid="stApp"]'
RUNNING = '[data-testid="stStatusWidget"]'
EXCEPTION = '[data-testid="stException"]'
ERROR_TOAST = '[data-testid="stToast"]'


def settle(page, timeout: float = 60.0, quiet: float = 0.8) -> None:
    """Wait until the script has finished running (no 'Running…' widget for ``quiet`` s)."""
    page.wait_for_selector(APP, timeout=timeout * 1000)
    # the script has drawn something in the main area (the first paint is empty)
    page.wait_for_selector('[data-testid="stMain"] [data-testid="stElementContainer"]', timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    calm_since = None
    while time.monotonic() < deadline:
        busy = page.locator(RUNNING).count() > 0 and page.locator(RUNNING).first.is_visible()
        skeleton = page.locator('[data-testid="stSkeleton"]').count() > 0
        if busy or skeleton:
            calm_since = None
        elif calm_since is None:
            calm_since = time.monotonic()
        elif time.monotonic() - calm_since >= quiet:
            return
        time.sleep(0.1)
    raise TimeoutError("the page did not settle")


def open_page(page, url: str, path: str = "", query: str = "") -> None:
    page.goto(f"{url}/{path}{('?' + query) if query else ''}")
    settle(page)


def assert_no_errors(page) -> None:
    exc = page.locator(EXCEPTION)
    assert exc.count() == 0, "Streamlit exception on the page: " + exc.first.inner_text()[:2000]
    toasts = [t.inner_text() for t in page.locator(ERROR_TOAST).all()]
    assert not any("error" in t.lower() for t in toasts), toasts


def click_button(page, label: str) -> None:
    page.get_by_role("button", name=label).first.click()
    settle(page)


# --------------------------------------------------------------------------- moving around in one session
NAV_TITLES = {"Start here": "Backprop, step by step"}   # link text → the page's title, where they differ


def go_to(page, link: str) -> None:
    """Follow the sidebar's navigation link to a page, in the same session (a fresh
    ``page.goto`` would start a new session and lose this one's network)."""
    page.locator('[data-testid="stSidebarNav"]').get_by_text(link, exact=True).click()
    title = NAV_TITLES.get(link, link)
    page.wait_for_selector(f'[data-testid="stMain"] h1:has-text("{title}")', timeout=60_000)
    settle(page)


def open_pretrained(page, url: str) -> None:
    """Home page → "Open the pretrained network": this session now holds the shipped network."""
    open_page(page, url)
    click_button(page, "Open the pretrained network (1000 epochs, seed protocol)")
    page.wait_for_selector('[data-testid="stSidebar"] :text("the pretrained network")')


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
