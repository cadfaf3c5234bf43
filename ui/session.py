"""The glue between Streamlit and the engine: shared data, one workspace per session.

Data that is the same for everyone (the MNIST arrays, the pretrained network)
is loaded once per server with ``st.cache_resource`` and marked read-only;
each browser session gets its own :class:`~core.lab.workspace.Workspace` in
``st.session_state``. A browser's workspace outlives its session: :func:`keep_lab`
hands it to the store's writer whenever it changed, and :func:`workspace` reopens it
after a reload (core/lab/store.py, ui/token.py).
"""
from __future__ import annotations

import io
import logging
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import streamlit as st

from core.lab import checkpoint, links
from core.engine.blas import set_blas_threads
from core.data.mnist import Digits, load_mnist
from core.lab.settings import FIELDS, Settings
from core.lab.runs import Run, Runs, RunsFull, run_of_checkpoint
from core.lab.store import LabStore, LiveLabs, Writer, folder_setting, key_of, max_bytes_setting
from core.lab.workspace import FILE, SHIPPED, Workspace
from ui.state import session, snapshot_key
from ui.text import count
from ui.token import token

ROOT = Path(__file__).resolve().parent.parent
PRETRAINED = ROOT / "data" / "pretrained.npz"
IMPROVED = ROOT / "data" / "improved.npz"
PRETRAINED_ORIGIN = "the pretrained network (seed protocol, 1000 epochs)"
# the networks the app ships, as runs to compare: name → (file, the run's name, where it came from, made)
SHIPPED_RUNS = {
    "pretrained": (PRETRAINED, "the seed, shipped", PRETRAINED_ORIGIN, SHIPPED),
    "improved": (IMPROVED, "the seed, improved, shipped",
                 "the improved network (preset seed-improved, 150 epochs)", FILE),
}
SEED_VAL_ACC = 0.977      # the seed notebook's final validation accuracy
SEED_FIRST_EPOCH = 0.799  # … and after its first epoch


@st.cache_resource(show_spinner="Loading MNIST…")
def mnist() -> dict[str, Digits]:
    data = load_mnist()
    for d in data.values():  # shared by every session: nobody may write into them
        d.X.flags.writeable = False
        d.y.flags.writeable = False
    return data


@st.cache_resource(show_spinner="Loading the pretrained network…")
def pretrained() -> checkpoint.Checkpoint | None:
    if not PRETRAINED.exists():
        return None
    ck = checkpoint.load(PRETRAINED)
    # shared by every session: each one that opens it makes its own trainer (see Workspace.open_checkpoint),
    # and nobody may write into these arrays (the history's rows are read-only already)
    for p in [ck.net.params, ck.optimizer.state(), *ck.snapshots.values()]:
        for a in p.values():
            a.flags.writeable = False
    return ck


@st.cache_resource
def configure_process() -> None:
    """Once per server process, not per rerun: one BLAS thread (see core/engine/blas.py:
    many small products, several sessions, 2 cores)."""
    set_blas_threads(1)


def source_for(settings: Settings) -> tuple[Settings, Digits, Digits | None, str]:
    """The images a workspace with these settings trains on (their test set, their name), and
    the settings with the data really used: an upload that is gone means MNIST."""
    up = session().upload.digits
    if settings.dataset == "upload" and up is not None:
        return settings, up, None, up.name
    m = mnist()
    return replace(settings, dataset="mnist"), m["train"], m["test"], "MNIST"


def new_workspace(settings: Settings, runs: Runs | None = None) -> Workspace:
    """A new network with ``settings`` for this session. The session's kept runs go with it (``runs``,
    or the current workspace's): they are the session's, whatever network is current."""
    settings, source, test, label = source_for(settings)
    if runs is None and session().ws is not None:
        runs = session().ws.runs
    return Workspace(settings, source, test, source_label=label, runs=runs)


class PageEntry(NamedTuple):
    """One page of the app: its file, its title (the sidebar's list, the tab), its icon, and the
    short name the presentation mode's bar at the top shows (every page fits on one line of it)."""
    path: str
    title: str
    icon: str
    short: str


PAGES = (  # the app's pages, in the order of the navigation; the first is the home page
    PageEntry("pages/home.py", "Start here", ":material/home:", "Start"),
    PageEntry("pages/data.py", "The data", ":material/image:", "Data"),
    PageEntry("pages/stepper.py", "Step through backprop", ":material/footprint:", "Backprop"),
    PageEntry("pages/lesson.py", "Lesson: your first step", ":material/school:", "First step"),
    PageEntry("pages/lr_lesson.py", "Lesson: the learning rate", ":material/speed:", "Learning rate"),
    PageEntry("pages/training.py", "Train 1000 epochs", ":material/model_training:", "Train"),
    PageEntry("pages/compare.py", "Compare runs", ":material/compare_arrows:", "Compare"),
    PageEntry("pages/inspect.py", "What it learned", ":material/search_insights:", "Learned"),
    PageEntry("pages/evaluate.py", "Where it fails", ":material/rule:", "Fails"),
    PageEntry("pages/draw.py", "Draw a digit", ":material/draw:", "Draw"),
    PageEntry("pages/kaggle.py", "Kaggle submission", ":material/upload_file:", "Kaggle"),
)


def _pages(icons: bool = True, short: bool = False) -> list[st.Page]:
    """The pages for ``st.navigation``: ``short`` names for the presentation mode's bar; without
    ``icons`` for a navigation that is never drawn (a page's ``:material/…:`` icon becomes the tab's
    icon, fetched from fonts.gstatic.com, when that page runs before the entry point's page config:
    the app works offline)."""
    return [st.Page(ROOT / p.path, title=p.short if short else p.title, icon=p.icon if icons else None,
                    default=i == 0) for i, p in enumerate(PAGES)]


def navigation(top: bool = False) -> st.Page:
    """``st.navigation`` over :data:`PAGES`, for the entry point (``top``: as a bar above the page
    rather than in the sidebar): it also notes, for :func:`_ensure_navigation`, that this
    session's pages run inside it."""
    page = st.navigation(_pages(short=top), position="top" if top else "sidebar")
    session().navigated = True
    return page


def _ensure_navigation() -> None:
    """Run every page through streamlit_app.py's ``st.navigation``.

    Because this project keeps its pages in ``pages/``, Streamlit starts in its
    older "pages directory" mode and, until some session has called
    ``st.navigation``, serves a deep link such as ``/stepper`` by running
    ``pages/stepper.py`` alone (no settings sidebar, no page config). A page
    that finds itself run that way calls ``st.navigation`` (documented: once any
    session has, the app ignores the ``pages/`` directory, for all sessions)
    and reruns, so the entry point handles the same URL. It lists the entry
    point's own pages: with any other list the URL may name no page of it (the
    first page listed gets the address ``/``), and Streamlit says "Page not
    found". Only once per session: a page started as the app itself
    (``streamlit run pages/x.py``) never gets the entry point, and then runs
    alone rather than rerunning forever.
    """
    state = session()
    if state.navigated or state.rerouted:
        return
    state.rerouted = True
    st.navigation(_pages(icons=False), position="hidden")
    st.rerun()


def workspace() -> Workspace:
    """This session's workspace: on first use, this browser's lab as it was (:func:`reopen_lab`),
    else a new one made from the URL's settings; then the URL's ``network=pretrained``, if any."""
    _ensure_navigation()
    state = session()
    if state.ws is None:
        state.ws, note, salvaged = reopen_lab()
        if state.ws is None:
            settings, notes = Settings.from_query(st.query_params.to_dict())
            state.link_notes = notes + [note] * bool(note)
            state.ws = new_workspace(settings, runs=salvaged)
        _network_link(state.ws)
    return state.ws


def _network_link(ws: Workspace) -> None:
    """The URL's ``network=pretrained``: the shipped network in place of ``ws``'s at once when that
    loses nothing, else once the user says so (``ui.replace.confirm_link``, above the page)."""
    state, query = session(), st.query_params.to_dict()
    if links.NETWORK not in query:
        return
    want, note = links.PARAMS[links.NETWORK].read(query[links.NETWORK])
    if note or pretrained() is None:
        state.link_notes.append(note or "The link asks for the pretrained network, which this server does not have.")
    elif ws.would_lose_work or ws.busy:
        state.link_network = want
    elif not (ws.made == SHIPPED and ws.trainer.global_step == ws.made_at):   # not already the one shipped
        open_pretrained(ws)


# --------------------------------------------------------------------------- labs kept across reloads
@st.cache_resource
def live_labs() -> LiveLabs:
    """The workspaces sessions of this server hold, by the hash of their browser's token
    (see LiveLabs: a lock-protected index, weak except while a run trains)."""
    return LiveLabs()


@st.cache_resource(show_spinner=False)
def lab_writer() -> Writer | None:
    """The store of labs (``BACKPROP_STATE_DIR``) and its writer thread; None when keeping
    is off or the folder cannot be used (the app then keeps labs only while the server runs).
    Shared by every session like ``live_labs``: a service with a lock-protected queue of
    copies, each filed and read back under its own browser's key, never a place for data."""
    folder = folder_setting()
    if folder is None:
        return None
    try:
        return Writer(LabStore(folder, max_bytes=max_bytes_setting()), live=live_labs())
    except (OSError, sqlite3.Error) as err:
        logging.getLogger(__name__).warning("Labs are not kept across restarts: %s cannot be used (%s).",
                                            folder, err)
        return None


def reopen_lab() -> tuple[Workspace | None, str, Runs | None]:
    """This browser's lab, found by its token: the workspace this server still holds (a run
    may be training in it), else the one in the store. Returns (workspace or None, a note
    for the sidebar when a kept lab could not be reopened, and then the runs kept with it that
    could still be read, for the new network)."""
    state = session()
    key = key_of(token())
    ws, note, salvaged = live_labs().find(key), "", None
    writer = lab_writer()
    if ws is None and writer is not None:
        try:
            saved = writer.load(key)
            if saved is not None:
                m = mnist()
                source, test = (saved.images, None) if saved.images is not None else (m["train"], m["test"])
                ws = saved.workspace(source, test)
                note = " ".join(saved.notes)
        except Exception as err:    # StoreError, or anything else: the app goes on with a new network
            logging.getLogger(__name__).warning("A kept lab could not be reopened: %r", err)
            salvaged = getattr(err, "runs", None)
            note = (f"Your network from last time could not be reopened ({err}), so this is a new one"
                    + (f"; your kept runs ({count(len(salvaged), 'run')}) are still on Compare runs." if salvaged else "."))
    if ws is None:
        return None, note, salvaged
    state.lab.adopt(ws)
    if ws.settings.dataset == "upload" and state.upload.digits is None:
        state.upload.digits = ws.split.source
    return _against_link(ws), note, None


def _against_link(ws: Workspace) -> Workspace:
    """A reopened lab and a URL that asks for other settings (a link someone shared): a network
    whose replacing loses nothing is replaced; a trained one stays, and the sidebar asks first."""
    state, query = session(), st.query_params.to_dict()
    if links.NETWORK in query or not any(name in query for name in FIELDS):   # the link's network is another
        return ws
    link, notes = Settings.from_query(query)
    if not link.model_changes(ws.settings):
        other = [f.label for n, f in FIELDS.items() if n in query and getattr(link, n) != getattr(ws.settings, n)]
        if other:
            state.link_notes = [f"Your network from last time was reopened with its own settings; the link's "
                                f"{', '.join(other)} were not applied (change them under Settings)."]
        return ws
    if not ws.would_lose_work and not ws.busy:
        state.link_notes = notes
        return new_workspace(link, runs=ws.runs)     # the reopened lab's runs stay
    state.pending_settings = link
    return ws


def keep_lab() -> None:
    """After a run of the script: note this session's workspace among the server's live labs
    and, when it changed, hand a copy to the writer (which writes it off the page's path)."""
    state = session()
    ws = state.ws
    if ws is None:
        return
    ws.keep_finished_run()      # a training run that finished is kept for comparison (once)
    if not state.lab.token:
        return
    try:
        key = state.lab.key
        live_labs().hold(key, ws)
        writer = lab_writer()
        if writer is not None:
            copy = state.lab.changed(ws)
            if copy is not None:
                writer.submit(key, copy)
    except Exception:   # keeping must never break the page: the session still holds its lab
        logging.getLogger(__name__).exception("Could not hand this session's lab to the store")


def open_pretrained(ws: Workspace) -> bool:
    """Make the shipped 1000-epoch network this session's own (see :func:`adopt_checkpoint`)."""
    ck = pretrained()
    if ck is None:
        return False
    return adopt_checkpoint(ws, ck, PRETRAINED_ORIGIN, made=SHIPPED)


def adopt_checkpoint(ws: Workspace, ck: checkpoint.Checkpoint, origin: str, *, made: str = FILE) -> bool:
    """Carry on from ``ck`` in this session's workspace, on MNIST. ``ck`` may be the
    cached pretrained network every session shares: the workspace makes its own
    trainer and leaves ``ck`` as it is. Raises ValueError (and changes nothing) when
    the checkpoint does not fit."""
    m = mnist()
    settings = Settings.of_network(ck.net.config, ck.optimizer.hyper, ck.trainer_state, ck.split or {},
                                   ws.settings, len(m["train"]))
    ws.open_checkpoint(ck, settings, m["train"], m["test"], origin=origin, made=made)
    return True


def snapshot_choice(ws: Workspace, key: str = "snapshot") -> tuple[int, dict]:
    """A select box over "now" and the time-travel snapshots; returns (the epoch, its params).

    Keyed by the trainer, so opening another network starts again at "now"; the
    options' text never changes while one trainer lives (a label that changed
    under a kept selection would show stale text), so the epoch goes in a caption.
    """
    tr = ws.trainer
    options = ["now"] + sorted(tr.snapshots)
    choice = st.selectbox("Network at", options, key=snapshot_key(key, tr),
                          format_func=lambda e: "now (the network as it is)" if e == "now" else f"epoch {e}")
    if choice == "now" or choice not in tr.snapshots:
        st.caption(f"Now: epoch {tr.epoch}" + (f", step {tr.step_in_epoch} of the next" if tr.step_in_epoch else ""))
        return tr.epoch, ws.net.params
    return choice, tr.snapshots[choice]


def offer_pretrained(ws: Workspace, why: str, key: str) -> None:
    """On pages that need a trained network: say so, and offer the shipped one."""
    if ws.trainer.global_step:
        return
    st.info(why)
    if pretrained() is not None and st.button("Open the pretrained network (1000 epochs)", disabled=ws.busy,
                                              key=key):
        open_pretrained(ws)
        st.rerun()



# --------------------------------------------------------------------------- runs kept side by side
@st.cache_resource(show_spinner=False)
def shipped_network(name: str) -> tuple[checkpoint.Checkpoint, bytes] | None:
    """A shipped network (SHIPPED_RUNS) read and checked once per server, and its file's bytes,
    which every session's run of it shares (bytes never change). None when the file is not there."""
    path = SHIPPED_RUNS[name][0]
    if not path.exists():
        return None
    blob = path.read_bytes()
    ck = checkpoint.load(io.BytesIO(blob))
    for p in [ck.net.params, ck.optimizer.state(), *ck.snapshots.values()]:
        for a in p.values():
            a.flags.writeable = False
    return ck, blob


def add_shipped_runs(ws: Workspace) -> list[str]:
    """Add the networks the app ships to ``ws``'s runs (those not there already, as shipped);
    returns what could not be added, in words."""
    problems, have = [], {r.shipped for r in ws.runs}
    n_source = len(mnist()["train"])
    for name, (path, title, origin, made) in SHIPPED_RUNS.items():
        if name in have:
            continue
        got = shipped_network(name)
        if got is None:
            problems.append(f"{path.name} is not on this server.")
            continue
        ck, blob = got
        settings = Settings.of_network(ck.net.config, ck.optimizer.hyper, ck.trainer_state, ck.split or {},
                                       replace(Settings(), epochs=max(1, ck.trainer_state["epoch"])), n_source)
        step = ck.trainer_state["global_step"]
        run = run_of_checkpoint(ck, blob, settings, id=ws.runs.new_id(), name=title, origin=origin, made=made,
                                made_at=step, shipped=name)
        try:
            ws.runs.add(run)
        except RunsFull as err:
            problems.append(str(err))
            break
    return problems


def reopen_run(ws: Workspace, run: Run) -> None:
    """Make ``run`` this session's network, on the images its settings name (MNIST when an upload
    it trained on is gone). Raises ValueError and changes nothing when it does not fit them."""
    settings, source, test, label = source_for(run.settings)
    if settings.dataset != run.settings.dataset:
        raise ValueError("This run trained on an uploaded train.csv: upload it again (sidebar, Settings) to reopen it.")
    ws.reopen(run.id, source, test, source_label=label)
