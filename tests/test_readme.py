"""The README tells a newcomer the truth about what a server can be told."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = ["streamlit_app.py", "core", "ui", "pages"]


def variables_the_code_reads() -> set[str]:
    files = [p for c in CODE for p in ([ROOT / c] if c.endswith(".py") else (ROOT / c).rglob("*.py"))]
    return {v for p in files for v in re.findall(r"\bBACKPROP_[A-Z_]+\b", p.read_text(encoding="utf-8"))}


def test_the_readme_lists_every_environment_variable_the_app_reads():
    """Before, the README said "No secrets, no environment variables" while the app read five."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "no environment variables." not in readme.lower()
    table = readme.split("### Settings for a server", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `(BACKPROP_[A-Z_]+)` \|", table, flags=re.M))
    read = variables_the_code_reads()
    assert {"BACKPROP_MAX_RUNS", "BACKPROP_STATE_DIR"} <= read
    assert rows == read, f"in the code, not the table: {read - rows}; in the table, not the code: {rows - read}"
