"""The address bar: it names the network in use and the view on screen, and a link opens both.

* :func:`keep_network` (the entry point, every run): the address's network part is the network in
  use (``core.lab.links.network_query``) — it changes when the network changes, never before.
* :func:`read_view` (a page, before its widgets): once per session, the page's view parameters from
  the address, checked by ``core.lab.links.read``, with a note for each value it cannot show.
* :func:`keep_view` (a page, after its widgets): the view on screen into the address; :func:`put`,
  the one writer of the address's parameters (only what differs is touched).
* :func:`link_box`: "Link to this view", the path a teacher copies.
* :func:`scroll_to` (a page, on the run that read a link): the linked section brought into view.
"""
from __future__ import annotations

import json

import streamlit as st

from core.lab import links
from ui import present
from ui.state import session
from ui.text import plain


def put(params: dict[str, str | None]) -> None:
    """Put ``params`` in the address (None: take it out), touching only what differs."""
    qp = st.query_params
    for name, value in params.items():
        if value is None:
            if name in qp:
                del qp[name]
        elif qp.get(name) != value:
            qp[name] = value


def keep_network(ws) -> None:
    """The address names ``ws``'s network: its settings, or ``network=pretrained``. (Moving to another
    page empties the address in the browser; this puts the network back.)"""
    want = links.network_query(ws)
    put({n: want.get(n) for n in links.network_params()})


def read_view(page: str, allowed: dict | None = None) -> dict:
    """The view the address asks ``page`` for (name → value), the first time this session shows
    ``page`` with its network settled (not while the sidebar asks whether to replace it). What
    cannot be shown is said here, on this run only: the next one is the student's own doing."""
    state = session()
    if page in state.views_read or _waiting(page):
        return {}
    state.views_read.add(page)
    values, notes = links.read(page, st.query_params.to_dict(), allowed)
    if notes:     # one box, however many: a projector has little room
        st.info("\n".join(f"- {plain(note)}" for note in notes), icon=":material/link_off:")
    return values


# Finds the section, scrolls it to the top, and keeps it there for a few seconds while the charts
# above it are drawn (each one pushes it down), unless the reader scrolls or presses a key first.
_SCROLL = """<script>(() => {
  const id = %s; let tries = 0, held = 0, mine = true;
  const stop = () => { mine = false; };
  ["wheel", "touchstart", "keydown", "mousedown"].forEach(e => window.addEventListener(e, stop, {once: true}));
  const t = setInterval(() => {
    const el = document.getElementById(id);
    if (!mine || (!el && ++tries > 150) || (el && ++held > 40)) { clearInterval(t); return; }
    if (el && Math.abs(el.getBoundingClientRect().top - 64) > 4) el.scrollIntoView({block: "start"});
  }, 100);
})();</script>"""


def scroll_to(anchor: str) -> None:
    """Bring the section whose header has ``anchor`` into view, once: a link to a neuron, an image or
    a confusion cell opens on it rather than on the top of a long page. (Streamlit takes a
    ``#anchor`` out of the address when the app changes the address, so the link cannot carry it.)"""
    st.html(_SCROLL % json.dumps(anchor), unsafe_allow_javascript=True)


def keep_view(page: str, **values) -> None:
    """``values`` (name → value, None: not shown) are on screen: put them in the address (unless the
    page's link waits to be read: the address keeps the link's view until then)."""
    params = links.query(page, **values)
    if not _waiting(page):
        put({n: params.get(n) for n in values})


def _waiting(page: str) -> bool:
    """Whether ``page``'s link waits for the sidebar's question (replace the network?) to be answered."""
    state = session()
    return page not in state.views_read and bool(state.link_network or state.pending_settings)


def path(ws, page: str, **values) -> str:
    """The link to ``page`` showing ``values`` of ``ws``'s network (presenting, when this session is)."""
    extra = {present.PARAM: "1"} if present.on() else {}
    return links.path(page, links.network_query(ws) | links.query(page, **values) | extra)


def link_box(ws, page: str, what: str, **values) -> None:
    """"Link to this view": the path of ``values`` on ``page``, and why it might not show the same."""
    with st.expander(f"Link to {what}", icon=":material/link:"):
        st.code(path(ws, page, **values), language=None)
        st.caption("Add it to this app's address to open this view in a new session"
                   + (", in presentation mode." if present.on() else " (add &present=1 for presentation mode)."))
        for note in links.caveats(ws):
            st.warning(plain(note))
