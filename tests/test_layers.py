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


def imports(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(source, filename)):
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


def wrong_imports(me: str, source: str) -> list[str]:
    """The imports of module ``me`` (its ``source``) that run against the layers."""
    rank = layer_of(me)
    wrong = []
    for line, name in imports(source, me):
        other = layer_of(name)
        if other is not None and rank is not None and other > rank:
            wrong.append(f"line {line}: {me} ({LAYERS[rank]}) imports {name} ({LAYERS[other]})")
        if me.startswith("core") and name.split(".")[0] in UI_LIBRARIES:
            wrong.append(f"line {line}: the engine imports {name}")
    return wrong


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_flow_one_way(path):
    assert wrong_imports(module_name(path), path.read_text()) == []


def test_the_check_itself_catches_a_wrong_import():
    # checked from text: no probe file in core/engine/ that a test running alongside could see
    wrong = wrong_imports("core.engine._layer_probe", "from ui.session import workspace\nimport streamlit\n")
    assert len(wrong) == 2 and "imports ui.session.workspace" in wrong[0] and "streamlit" in wrong[1]
