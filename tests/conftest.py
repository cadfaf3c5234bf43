"""Shared test set-up: one BLAS thread, as the app and the command line use."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.engine.blas import set_blas_threads  # noqa: E402

set_blas_threads(1)


def _apptest_like_a_running_server() -> None:
    """AppTest resets Streamlit's process-wide "pages/ folder" flag before every
    run, so each test run would go through the folder mode that a real server
    leaves for good on its first run (ui/session.py handles that first run; the
    browser test of a deep link checks it). In that mode clicks are lost between
    runs. Make each AppTest run see what a running server sees."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__
    if getattr(original, "_like_server", False):
        return

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    init._like_server = True
    PagesManager.__init__ = init


_apptest_like_a_running_server()
