"""What every browser test does: open a page, let Streamlit settle, look for errors."""
from __future__ import annotations

import time

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
