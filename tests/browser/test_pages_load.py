"""Every page loads in a real browser, settles, and shows what a user comes for."""
import pytest

from tests.browser.helpers import assert_no_errors, open_page

PAGES = {  # url path → text a user must see there
    "": "Backprop, step by step",
    "data": "The average image of each digit",
}


@pytest.mark.parametrize("path, text", PAGES.items())
def test_page_loads_without_errors(server, page, path, text):
    open_page(page, server, path)
    assert_no_errors(page)
    assert page.get_by_text(text).first.is_visible()


def test_data_page_draws_its_figures(server, page):
    open_page(page, server, "data")
    assert page.locator(".js-plotly-plot").count() >= 4
    assert page.get_by_text("41,000 training and 1,000 validation images").first.is_visible()


def test_a_deep_link_on_a_fresh_server_opens_the_page_inside_the_app(page):
    """A shared link like /data as the very first request must still get the app's
    navigation and settings sidebar (Streamlit's pages/-folder mode would skip them)."""
    from tests.browser.conftest import start_server
    proc, url = start_server()
    try:
        open_page(page, url, "data")
        assert_no_errors(page)
        assert page.get_by_text("The average image of each digit").first.is_visible()
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Step through backprop" in nav and "streamlit app" not in nav.lower()
        assert page.get_by_text("Settings").first.is_visible()
    finally:
        proc.terminate()
        proc.wait(10)
