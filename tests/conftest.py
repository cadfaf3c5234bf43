"""Shared test set-up: one BLAS thread, as the app and the command line use."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.engine.blas import set_blas_threads  # noqa: E402

set_blas_threads(1)


def _apptest_like_a_running_server() -> None:
    """Make each AppTest run see what a running server sees.

    Because the app keeps its pages in ``pages/``, a new Streamlit server starts in
    its older "pages directory" mode and leaves it for good once any session calls
    ``st.navigation`` (ui/session.py handles that first request; the ``fresh_server``
    test of tests/test_streamlit_compat.py and the browser test of a deep link check
    it). AppTest, though, puts the process back into that first state before every
    run, so each run after ``switch_page`` would start as a page run alone and
    reroute, losing the clicks it carried. There is no public AppTest switch for
    this (short of an entry point outside the folder that holds ``pages/``), so the
    tests set Streamlit's private flag, and fail here at once if it is gone.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if not hasattr(PagesManager, "uses_pages_directory"):
        raise RuntimeError("Streamlit no longer has PagesManager.uses_pages_directory: see tests/conftest.py "
                           "and docs/streamlit-notes.md")
    original = PagesManager.__init__
    if getattr(original, "streamlit_as_shipped", None):
        return

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    init.streamlit_as_shipped = original
    PagesManager.__init__ = init


_apptest_like_a_running_server()


@pytest.fixture
def fresh_server(monkeypatch):
    """AppTest as Streamlit ships it: every run starts like the first request to a new server."""
    from streamlit.runtime.pages_manager import PagesManager

    monkeypatch.setattr(PagesManager, "__init__", PagesManager.__init__.streamlit_as_shipped)


@pytest.fixture(autouse=True, scope="session")
def lab_store_folder(tmp_path_factory):
    """The app keeps labs (core/lab/store.py) in a folder of this test session's, never in the
    user's cache: AppTest runs and the browser tests' servers inherit the variable."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BACKPROP_STATE_DIR", str(tmp_path_factory.mktemp("labs")))
        yield


@pytest.fixture(scope="session")
def mnist():
    """The shipped MNIST as core loads it, once for the whole run (tests never write into it)."""
    from core.data.mnist import load_mnist
    data = load_mnist()
    for d in data.values():          # as the app shares it: read-only, so a test that wrote into it fails
        d.X.flags.writeable = False
        d.y.flags.writeable = False
    return data
