"""Putting another network in place of the session's: a fresh one from the settings, or the
pretrained one. Wherever its button is (the home page, the training page), the same question
comes first when the network there would be lost (``Workspace.would_lose_work``), as the
sidebar asks before settings that need a new network (streamlit_app.confirm_pending)."""
from __future__ import annotations

import streamlit as st

from ui.session import new_workspace, open_pretrained
from ui.state import session
from ui.text import count

REPLACEMENTS = {"new": ("a new network", "Discard it and build a new network"),
                "pretrained": ("the pretrained network", "Discard it and open the pretrained network")}


def replace_network(ws, what: str) -> None:
    """Put ``what`` ("new": the current settings, untrained; "pretrained": the shipped one) in
    place of this session's network: at once when nothing would be lost, else once the user
    confirms (:func:`confirm_replace`, under the button)."""
    if ws.would_lose_work:
        session().pending_network = what
        return
    _replace(ws, what)
    st.rerun()


def _replace(ws, what: str) -> None:
    if ws.busy:
        ws.runner.stop()
        ws.runner.join(5)
    if what == "new":
        session().ws = new_workspace(ws.settings)
    else:
        open_pretrained(ws)


def confirm_replace(ws, what: str, key: str) -> None:
    """The question :func:`replace_network` asked, where its button is (``key``: that page's)."""
    state = session()
    if state.pending_network != what:
        return
    if (answer := _ask(ws, what, key, "")) is not None:
        state.pending_network = None
        if answer:
            _replace(ws, what)
        st.rerun()


def confirm_link(ws) -> None:
    """The same question for a link's ``?network=`` (``Session.link_network``), above any page."""
    state = session()
    what = state.link_network
    if what is None:
        return
    if (answer := _ask(ws, what, "link", "The link you opened asks for it. ")) is not None:
        state.link_network = None
        if answer:
            _replace(ws, what)
        st.rerun()


def _ask(ws, what: str, key: str, why: str) -> bool | None:
    """Whether to replace ``ws``'s network with ``what``: True, False (keep it), or None (not answered yet)."""
    name, yes = REPLACEMENTS[what]
    steps, epochs = ws.trainer.global_step, ws.trainer.epoch
    st.warning(f"{why}Opening **{name}** replaces the current one, which has trained {count(steps, 'step')} "
               f"({count(epochs, 'epoch')}). Download its checkpoint first (training page, *Save and load*) "
               f"if you want to keep it.")
    a, b = st.columns(2)
    if a.button(yes, type="primary", width="stretch", key=f"{key}_confirm_{what}"):
        return True
    if b.button("Keep the current network", width="stretch", key=f"{key}_keep_{what}"):
        return False
    return None
