"""Where the app meets Streamlit's behaviour rather than its API: a deep link on a
fresh server (the ``pages/`` folder trap, handled with public calls), the test
set-up that makes AppTest behave like a running server, and that the app itself
imports nothing private from Streamlit. These fail when a Streamlit upgrade changes them;
docs/streamlit-notes.md says what to do then."""
from __future__ import annotations

import ast
from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui.state import session

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")


def test_a_deep_link_on_a_fresh_server_runs_the_page_inside_the_entry_point(fresh_server):
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/data.py")      # the first request of the session is /data
    at.run()
    assert not at.exception
    # Streamlit ran pages/data.py alone first (if this fails, Streamlit no longer has its pages-folder
    # mode: drop ui.session._ensure_navigation and the patch in tests/conftest.py) …
    assert session(at.session_state).rerouted
    # … and the page rerouted to the entry point: its sidebar, navigation and the page itself
    assert session(at.session_state).navigated
    assert any(b.label == "Apply settings" for b in at.button), "no settings sidebar: the page ran alone"
    assert any(s.value == "The average image of each digit" for s in at.subheader)


def test_a_page_started_as_the_app_itself_runs_alone_instead_of_rerunning_forever():
    at = AppTest.from_file(str(ROOT / "pages" / "data.py"), default_timeout=120).run()
    assert not at.exception
    assert any(s.value == "The average image of each digit" for s in at.subheader)
    assert not any(b.label == "Apply settings" for b in at.button)


def test_under_the_test_set_up_a_click_on_a_page_reaches_the_app():
    """What tests/conftest.py's patch is for: without it AppTest would start every run
    after switch_page as a page run alone, and this click would be lost."""
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/data.py").run()
    assert any(b.label == "Apply settings" for b in at.button), \
        "the page ran without the entry point: tests/conftest.py's patch no longer takes effect"
    [w for w in at.number_input if w.label == "Learning rate η"][0].set_value(0.05)
    [b for b in at.button if b.label == "Apply settings"][0].click()
    at.run()
    assert not at.exception
    assert not session(at.session_state).rerouted, "a run started without the entry point"
    assert session(at.session_state).ws.optimizer.lr == 0.05


def test_the_app_imports_no_private_streamlit_module():
    public = {"streamlit", "streamlit.components.v1", "streamlit.column_config"}
    files = [ROOT / "streamlit_app.py", *ROOT.glob("pages/*.py"), *ROOT.glob("ui/*.py"), *ROOT.glob("core/**/*.py")]
    assert len(files) > 10
    found = []
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{f.relative_to(ROOT)}: {n}" for n in names
                      if n.split(".")[0] == "streamlit" and n not in public]
    assert not found, found
