"""Presentation mode, for a projector in a lecture hall: one switch, read here and nowhere else.

On (the sidebar's toggle, or ``?present=1`` in the address): the sidebar starts collapsed and the
pages' list moves to the top, the pages' explanatory prose is left out, text is larger, and every
chart's axis text is big and dark (``ui.figures.for_projector``). Pages say which text is prose
with :func:`prose`, draw charts with :func:`chart` and size galleries of digits with :func:`grid`; nothing else in the app asks whether the
mode is on.
"""
from __future__ import annotations

import streamlit as st

from ui.figures import for_projector
from ui.state import session

PARAM = "present"          # the address's ?present=1
TOGGLE = "present_toggle"  # the sidebar toggle's widget key

# Bigger text for the room; the sidebar stays reachable (its arrow) to switch the mode off.
CSS = """<style>
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMain"] [data-testid="stMarkdownContainer"] li { font-size: 1.2rem; }
[data-testid="stMain"] [data-testid="stCaptionContainer"],
[data-testid="stMain"] [data-testid="stCaptionContainer"] * { font-size: 1.05rem; color: #333; opacity: 1; }
[data-testid="stMain"] label p { font-size: 1.05rem; }
[data-testid="stMainBlockContainer"] { padding-top: 3.5rem; padding-left: 2rem; padding-right: 2rem; }
[data-testid="stMain"] [data-testid="stMetricValue"] p { font-size: 2.2rem; }
[data-testid="stMain"] h1 { font-size: 2.2rem; padding-top: 0; }
[data-testid="stMain"] button kbd { font-size: 1rem; opacity: 1; color: inherit; }
</style>"""


def on() -> bool:
    """Whether this session presents. The address is read on the first call of a session;
    after that the session's field is the truth and the address follows it (:func:`start`)."""
    state = session()
    if state.present is None:
        state.present = st.query_params.get(PARAM) == "1"
    return state.present


def _toggled() -> None:
    session().present = bool(st.session_state.get(TOGGLE))


def start() -> bool:
    """For the entry point, before anything is drawn: read the mode and make the address agree
    with it. Returns whether it is on."""
    present = on()
    if present and st.query_params.get(PARAM) != "1":
        st.query_params[PARAM] = "1"
    elif not present and PARAM in st.query_params:
        del st.query_params[PARAM]
    return present


def toggle() -> None:
    """The sidebar's switch. Its state is the session's field (set before the widget is drawn,
    so an address that turned the mode on shows the toggle on)."""
    st.session_state[TOGGLE] = on()
    st.toggle("Presentation mode", key=TOGGLE, on_change=_toggled,
              help="For a projector: no sidebar, no long explanations, large text and chart labels. "
                   "The address gets ?present=1, so the same view opens presenting.")


def apply() -> None:
    """The CSS of presentation mode, when it is on (a style block takes no room on the page)."""
    if on():
        st.html(CSS)


def prose(text: str) -> None:
    """A paragraph that explains (Markdown): shown, except to a lecture hall, where the teacher
    says it."""
    if not on():
        st.markdown(text)


def prose_caption(text: str) -> None:
    """:func:`prose` in a caption's small print."""
    if not on():
        st.caption(text)


def grid(cols: int, size: int) -> dict[str, int]:
    """A full-width gallery of digits' ``cols`` and ``size`` (row height in px), as keywords for
    ``image_grid``: two thirds of the columns at 1.6 times the size when presenting, so the back
    row sees each digit."""
    return dict(cols=max(1, round(cols * 2 / 3)), size=int(size * 1.6)) if on() else dict(cols=cols, size=size)


def chart(where, fig, **kw):
    """``where.plotly_chart(fig, **kw)`` (``where``: ``st`` or a column), with the figure's text
    made big and dark for a projector when presenting. Returns the chart's selection event."""
    return where.plotly_chart(for_projector(fig) if on() else fig, **kw)
