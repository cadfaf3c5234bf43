"""This browser's lab token: a random secret in a cookie, so a reload finds the lab again.

The token (:func:`core.lab.store.new_token`, 192 random bits) is made by the server on a
browser's first visit and written into a first-party cookie by a tiny component
(``ui/components/lab_cookie.js``: ``SameSite=Strict``, 7 days, renewed on every visit).
Every later connection of that browser sends it, and the server reads it with
``st.context.cookies``. It never goes into the address bar, so a shared link shares
settings, never a lab; the server keeps only its hash (core/lab/store.py).

Why a cookie written by a components-v2 component: it is the simplest pair of public
calls that does it. Reading needs no round trip (the cookie comes with the connection,
so the first run of a reloaded page already knows its lab; ``localStorage`` would need
the component to send the value back and the page to run twice). Writing takes a few
lines of JavaScript from a file in the repository, mounted with
``st.components.v2.component``, which passes the token as data (no code is assembled
from strings, unlike ``st.html(..., unsafe_allow_javascript=True)``), with no build
step and nothing fetched from the internet.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.lab.store import MAX_AGE, new_token, valid_token
from ui.state import session

COOKIE = "backprop_lab"
_write_cookie = st.components.v2.component(
    "backprop_lab_cookie", js=(Path(__file__).parent / "components" / "lab_cookie.js").read_text())


def token() -> str:
    """This session's token: the one its browser sent, else a new one (made once per session)."""
    keeper = session().lab
    if not keeper.token:
        try:
            sent = st.context.cookies.get(COOKIE)
        except Exception:       # no browser behind this session (bare mode): a new lab
            sent = None
        keeper.token = sent if valid_token(sent) else new_token()
    return keeper.token


def keep_in_browser() -> None:
    """Write (or renew) the cookie: call on every run, anywhere on the page (it draws nothing)."""
    _write_cookie(data={"name": COOKIE, "token": token(), "maxAge": int(MAX_AGE)}, key="backprop_lab_cookie",
                  height=0)
