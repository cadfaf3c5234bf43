"""The way out of a divergence, under its message on the stepper and on the training page:
go back to an earlier step (``Workspace.undo_points``: just before each step the stepper
keeps, and where the last run started), or start a fresh network from the settings.
Lowering the learning rate in the sidebar and training on is the third way; the message
says so."""
from __future__ import annotations

from typing import Callable

import streamlit as st

from core.engine.trainer import Point
from ui.text import count


def point_label(ws, point: Point) -> str:
    n = ws.trainer.global_step - point.global_step
    where = " (where the run started)" if point is ws.runner.started_from else ""
    return (f"the last {count(n, 'step')}: back to step {point.global_step:,}, epoch "
            f"{point.epoch + 1}{where}")


def way_out(ws, key: str, *, undo: Callable[[Point], None], fresh: Callable[[], None]) -> None:
    """Undo (with a choice of how far back) and a fresh network, as buttons calling ``undo(point)``
    and ``fresh()``. Disabled while a run is going on."""
    points = ws.undo_points()
    c = st.columns([2.4, 0.8, 1.4], vertical_alignment="bottom")
    if points:
        i = c[0].selectbox("Undo", range(len(points)), format_func=lambda i: point_label(ws, points[i]),
                           key=f"{key}_undo_to", disabled=ws.busy,
                           help="Goes back to the network, optimizer state, counters and history of that step. "
                                "Training on from there sees the same batches again.")
        c[1].button("Go back", icon=":material/undo:", on_click=undo, args=(points[min(i or 0, len(points) - 1)],),
                    key=f"{key}_undo", disabled=ws.busy, width="stretch")
    else:
        c[0].caption("No earlier step is kept to go back to.")
    c[2].button("Start a fresh network", icon=":material/restart_alt:", on_click=fresh, key=f"{key}_fresh",
                disabled=ws.busy, width="stretch",
                help=f"A new network from the settings (seed {ws.settings.seed}), with the learning rate set now.")
