"""One typed state per browser session (ui/state.py), and no page reaching into raw keys."""
import ast
from pathlib import Path

import pytest

from ui.state import STATE_KEY, Session, session

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "pages").glob("*.py")) + sorted((ROOT / "ui").glob("*.py")) + [ROOT / "streamlit_app.py"]


def test_one_object_per_session_under_one_key():
    store = {}
    state = session(store)
    assert isinstance(state, Session) and list(store) == [STATE_KEY]
    state.stepper.stop = "Z1"
    assert session(store) is state and session(store).stepper.stop == "Z1"
    assert session({}) is not state and session({}).stepper.stop == "X"      # another session, its own state


def is_session_state(node) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "session_state"


def literal_keys(path: Path) -> list[str]:
    """``st.session_state["x"]``, ``.get("x")``, ``.pop("x")``, ``.setdefault("x")`` and ``"x" in st.session_state``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        key = None
        if isinstance(node, ast.Subscript) and is_session_state(node.value):
            key = node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                is_session_state(node.func.value) and node.args:
            key = node.args[0]
        elif isinstance(node, ast.Compare) and any(is_session_state(c) for c in node.comparators):
            key = node.left
        if isinstance(key, (ast.Constant, ast.JoinedStr)):
            found.append(f"line {node.lineno}: {ast.unparse(key)}")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_session_state_keys_are_never_spelled_out_in_place(path):
    """The app's own state is a field of ui.state.Session; a widget key read or set away from its
    widget is a constant of ui.state. A key spelled out where it is used is a key another page
    could reach into, or misspell."""
    assert literal_keys(path) == []
