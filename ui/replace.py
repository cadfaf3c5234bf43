"""Putting another network in place of the session's: a fresh one from the settings, the
pretrained one, a kept run (Compare runs) or a new one trained from a preset. Wherever its button
is (the home page, the training page, Compare runs), the same question comes first when the
network there would be lost (``Workspace.would_lose_work``), as the sidebar asks before settings
that need a new network (streamlit_app.confirm_pending).

What replaces it is named by a short string: ``"new"``, ``"pretrained"``, ``"run:<id>"`` (a run of
``ws.runs``) or ``"preset:<name>"`` (core.lab.settings.PRESETS: a new network that starts training
at once, shown on the training page)."""
from __future__ import annotations

import streamlit as st

from core.lab.settings import PRESETS
from ui.session import new_workspace, open_pretrained, reopen_run
from ui.state import session
from ui.text import count

REPLACEMENTS = {"new": ("a new network", "Discard it and build a new network"),
                "pretrained": ("the pretrained network", "Discard it and open the pretrained network")}


def run_choice(run_id: int) -> str:
    return f"run:{run_id}"


def preset_choice(name: str) -> str:
    return f"preset:{name}"


def _words(ws, what: str) -> tuple[str, str]:
    """(what it is, the button that says yes) for ``what``."""
    kind, _, arg = what.partition(":")
    if kind == "run":
        return f"the run “{ws.runs.get(int(arg)).name}”", "Discard it and open the run"
    if kind == "preset":
        return (f"a new network trained with the preset “{PRESETS[arg].label}”",
                "Discard it and train the preset")
    return REPLACEMENTS[what]


def replace_network(ws, what: str) -> None:
    """Put ``what`` (see the module's docstring) in place of this session's network: at once when
    nothing would be lost, else once the user confirms (:func:`confirm_replace`, under the button)."""
    if ws.would_lose_work:
        session().pending_network = what
        return
    _replace(ws, what)
    st.rerun()


def _replace(ws, what: str) -> None:
    if ws.busy:
        ws.runner.stop()
        ws.runner.join(5)
    kind, _, arg = what.partition(":")
    state = session()
    if what == "new":
        state.ws = new_workspace(ws.settings)
    elif what == "pretrained":
        open_pretrained(ws)
    elif kind == "run":
        try:
            run = ws.runs.get(int(arg))
            reopen_run(ws, run)
            state.runs_message = ("ok", f"The run “{run.name}” is now your network: every page shows it, and "
                                        f"*Continue training* (Train 1000 epochs) trains it further.")
        except (KeyError, ValueError) as err:     # gone meanwhile, damaged, or not for these images
            state.runs_message = ("error", f"The run could not be opened: {err} Your network is as it was.")
    elif kind == "preset":
        preset = PRESETS[arg]
        state.ws = new_workspace(preset.settings)
        state.ws.runner.start(preset.settings.epochs)
        st.switch_page("pages/training.py")      # where a run shows its progress


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
    try:
        name, yes = _words(ws, what)
    except KeyError:            # a run removed meanwhile: nothing to ask about
        return False
    steps, epochs = ws.trainer.global_step, ws.trainer.epoch
    st.warning(f"{why}Opening **{name}** replaces the current one, which has trained {count(steps, 'step')} "
               f"({count(epochs, 'epoch')}). Keep it as a run (Compare runs) or download its checkpoint first "
               f"(training page, *Save and load*) if you want to keep it.")
    a, b = st.columns(2)
    what = what.replace(":", "_")
    if a.button(yes, type="primary", width="stretch", key=f"{key}_confirm_{what}"):
        return True
    if b.button("Keep the current network", width="stretch", key=f"{key}_keep_{what}"):
        return False
    return None
