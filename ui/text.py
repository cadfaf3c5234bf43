"""Showing text a user supplied (file names, column names inside error messages).

Streamlit renders markdown, and ``$…$`` as LaTeX, in st.error, st.caption and
friends; raw HTML is never rendered unless a page asks for it, and none does.
:func:`plain` escapes every markdown and LaTeX character, so a file named
``[click](http://…)`` or ``$\\href…$`` shows as those characters, not a link.
"""
from __future__ import annotations

import math
import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$^=:])")


def plain(text) -> str:
    return _SPECIAL.sub(r"\\\1", str(text))


def duration(seconds: float | None) -> str:
    """A time as a person reads it: "42 s", "2 min 05 s", "1 h 03 min"; "—" for none."""
    if seconds is None:
        return "—"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def count(n: int, word: str) -> str:
    """``n`` things, in the singular for one: count(1, "step") → "1 step", count(2000, "step") → "2,000 steps"."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(x: float) -> str:
    """A power of ten as a reader writes it: 1e-3 → "10⁻³"."""
    return "10" + str(round(math.log10(x))).translate(_SUPERSCRIPT)
