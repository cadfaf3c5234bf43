"""Phones and tablets: what the page needs when there is no mouse or little width.

Without a mouse there is no hover, so the toolbars that a desktop shows only under the pointer
(plotly's modebar on a chart, Streamlit's toolbar on a table) are there all the time, drawn over
the chart's title and the text above the table. Here each of them gets a band of its own.
The entry point applies it on every page. A grid of captioned pictures too wide for a phone
(16 neurons a row) is drawn in :func:`wide`, which a phone scrolls sideways instead of squeezing
the captions into each other.
"""
from __future__ import annotations

import streamlit as st

# "hover: none": a touch screen of any width; 640 px: Streamlit's own breakpoint for a phone.
CSS = """<style>
@media (hover: none), (max-width: 640px) {
  /* plotly's modebar (zoom, pan, download, full screen) above the chart, not on its title */
  [data-testid="stElementContainer"]:has(.modebar) { margin-top: 30px; overflow: visible; }
  [data-testid="stElementContainer"]:has(.modebar) .js-plotly-plot { overflow: visible !important; }
  [data-testid="stElementContainer"] .modebar-container { top: -30px !important; }
  /* a table's toolbar (search, download, full screen) in the flow, not over the text above it */
  [data-testid="stElementContainer"]:has([data-testid="stElementToolbar"]) { margin-top: 44px; }
}
@media (max-width: 640px) {
  [class*="st-key-wide_"] { overflow-x: auto; }
  [class*="st-key-wide_"] [data-testid="stElementContainer"] { min-width: 760px; }
}
</style>"""


def apply() -> None:
    """The CSS, once per page run (a style block takes no room on the page)."""
    st.html(CSS)


def wide(where, key: str):
    """A container (in ``where``: ``st`` or a column) for one chart that needs some 760 px to be read:
    on a phone it keeps that width and scrolls sideways."""
    return where.container(key=f"wide_{key}")
