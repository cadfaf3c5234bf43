"""The architecture, checked: imports flow one way, engine ← data ← teach ← lab ← ui ← pages.

A module may import from its own layer and the layers before it, never from a later one;
``core`` never imports streamlit or plotly. Read from the source (``ast``), so a lazy import
inside a function counts as much as one at the top.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["core.engine", "core.data", "core.teach", "core.lab", "core.train", "ui", "pages", "streamlit_app"]
UI_LIBRARIES = ("streamlit", "plotly", "st_canvas", "streamlit_drawable_canvas")


def layer_of(module: str) -> int | None:
    for rank, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return rank
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # ``from core import checkpoint`` imports the module core.checkpoint
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


SOURCES = sorted(p for folder in ("core", "ui", "pages") for p in (ROOT / folder).rglob("*.py")) + \
    [ROOT / "streamlit_app.py"]


def test_every_source_file_belongs_to_a_layer():
    assert len(SOURCES) > 20
    assert [p for p in SOURCES if layer_of(module_name(p)) is None and module_name(p) != "core"] == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_flow_one_way(path):
    me = module_name(path)
    rank = layer_of(me)
    wrong = []
    for line, name in imports(path):
        other = layer_of(name)
        if other is not None and rank is not None and other > rank:
            wrong.append(f"line {line}: {me} ({LAYERS[rank]}) imports {name} ({LAYERS[other]})")
        if me.startswith("core") and name.split(".")[0] in UI_LIBRARIES:
            wrong.append(f"line {line}: the engine imports {name}")
    assert wrong == []


def test_the_check_itself_catches_a_wrong_import(tmp_path):
    bad = ROOT / "core" / "engine" / "_layer_probe.py"
    bad.write_text("from ui.session import workspace\nimport streamlit\n")
    try:
        with pytest.raises(AssertionError):
            test_imports_flow_one_way(bad)
    finally:
        bad.unlink()
