"""Links to a view: every parameter of the address beyond the settings, declared once.

A link is ``/page?<the network>&<the view>``. The network is either the settings that differ from
the defaults (``Settings.to_query``, validated by ``Settings.from_query``) or ``network=pretrained``,
the shipped network. The view is what a page shows: the stepper's step and stop, a snapshot epoch,
a neuron, one image, a confusion-matrix cell, the lesson's question. :data:`PARAMS` says, for each, which pages read it
and how it is checked (:meth:`Param.read`, the one validation: a value a page cannot show gives a
note, never an error); :func:`query` builds a view's parameters and :func:`path` the text a teacher
copies. Presentation mode's ``present=1`` is ui/present.py's.

Plain Python, no Streamlit: ui/links.py reads and writes the address with these.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from core.lab.settings import FIELDS
from core.lab.workspace import FILE, SEED, SHIPPED, Workspace

NETWORK = "network"         # ?network=pretrained: the shipped network instead of settings
PRETRAINED = "pretrained"
QUESTION = "q"              # ?q=3: the lesson's third question


@dataclass(frozen=True)
class Param:
    """One parameter of a link: the pages that read it, how a note names it, what it may be."""

    name: str
    pages: tuple[str, ...]          # the pages' addresses ("inspect" for /inspect); () = every page
    what: str                       # a note's name for it: "neuron", "snapshot epoch"
    words: tuple[str, ...] = ()     # a word among these; without: a whole number (or any text: ``text``)
    text: bool = False              # any text (the page checks it against what it has)

    def read(self, raw, allowed=None) -> tuple[object, str]:
        """(the value, "") or (None, a note saying why the link's value is not used). ``allowed``:
        what the page can show now (a range or a collection of numbers or words), or None."""
        raw = str(raw)
        shown = raw if len(raw) <= 20 else raw[:20] + "…"
        if self.text:
            return raw, ""
        if self.words:
            options = tuple(allowed) if allowed is not None else self.words
            if raw in options:
                return raw, ""
            return None, f"The link's {self.what} {shown!r} is not one of: {', '.join(options) or 'none'}."
        try:
            value = int(raw)
        except ValueError:
            return None, f"The link's {self.what} {shown!r} is not a whole number."
        if allowed is not None and value not in allowed:
            return None, f"The link's {self.what} {value:,} is not there: there are {_describe(allowed)}."
        if value < 0:
            return None, f"The link's {self.what} {value:,} is negative."
        return value, ""


def _describe(allowed) -> str:
    if isinstance(allowed, range):
        return "none" if len(allowed) == 0 else f"{allowed.start:,} to {allowed.stop - 1:,}"
    values = sorted(allowed)
    return "none" if not values else ", ".join(f"{v:,}" for v in values)


PARAMS: dict[str, Param] = {p.name: p for p in (
    Param(NETWORK, (), "network", words=(PRETRAINED,)),
    Param("step", ("stepper",), "step number"),
    Param("stop", ("stepper",), "stop", text=True),
    Param("epoch", ("inspect", "evaluate"), "snapshot epoch"),
    Param("neuron", ("inspect",), "layer-1 neuron"),
    Param("image", ("inspect",), "validation image"),
    Param("set", ("evaluate",), "image set", words=("validation", "test")),
    Param("true", ("evaluate",), "true digit"),
    Param("pred", ("evaluate",), "predicted digit"),
    Param(QUESTION, ("lesson",), "question"),
)}


def of_page(page: str) -> list[str]:
    """The view parameters ``page`` reads (not the network's), in the order links write them."""
    return [n for n, p in PARAMS.items() if page in p.pages]


def read(page: str, query, allowed: dict | None = None) -> tuple[dict, list[str]]:
    """The view parameters of ``page`` in ``query`` (the address), each checked against what the
    page can show (``allowed``: name → a range or collection). Returns (name → value, notes):
    a value that cannot be used is left out and a note says why."""
    allowed = allowed or {}
    values, notes = {}, []
    for name in of_page(page):
        if name not in query:
            continue
        value, note = PARAMS[name].read(query[name], allowed.get(name))
        if note:
            notes.append(note)
        else:
            values[name] = value
    return values, notes


def query(page: str, **values) -> dict[str, str]:
    """The address's view parameters for ``values`` on ``page`` (None: not in the link). A name
    ``page`` does not read is a mistake in the code, so it raises KeyError."""
    mine = of_page(page)
    unknown = set(values) - set(mine)
    if unknown:
        raise KeyError(f"{page} has no link parameter {', '.join(sorted(unknown))}")
    return {n: str(values[n]) for n in mine if values.get(n) is not None}


def network_query(ws: Workspace) -> dict[str, str]:
    """The address's part that names the network in use: ``network=pretrained`` for the shipped
    one, else its settings (those that differ from the defaults)."""
    if ws.made == SHIPPED:
        return {NETWORK: PRETRAINED}
    return ws.settings.to_query()


def network_params() -> tuple[str, ...]:
    """Every parameter :func:`network_query` may write (so the address drops those it no longer has)."""
    return (NETWORK, *FIELDS)


def path(page: str, params: dict[str, str]) -> str:
    """``/page?k=v&…``, readable: commas of ``hidden=64,64`` and the Δ of ``stop=ΔW1`` stay as they are."""
    text = "&".join(f"{k}={quote(str(v), safe=',')}" for k, v in params.items()).replace("%CE%94", "Δ")
    return f"/{page}" + (f"?{text}" if text else "")


def caveats(ws: Workspace) -> list[str]:
    """Why a link to a view of ``ws``'s network would show another network in a new session."""
    steps = ws.trainer.global_step
    if ws.settings.dataset == "upload":
        return ["This network trains on your uploaded CSV, which a link cannot carry: opened elsewhere, the link "
                "makes a new, untrained network on the shipped MNIST."]
    if ws.made == SHIPPED and steps != ws.made_at:
        return [f"This network is the pretrained one trained on ({steps - ws.made_at:,} more steps): a link opens "
                "the pretrained network as shipped."]
    if ws.made == SEED and steps:
        return ["A link carries this network's settings, not its training: opened elsewhere, it makes a new, "
                "untrained network with them. For a view of a trained network, open the pretrained one "
                "(Start here) and link to that."]
    if ws.made == FILE:
        return [f"This network is {ws.origin}, which a link cannot carry: opened elsewhere, the link makes a new, "
                "untrained network with its settings."]
    return []
