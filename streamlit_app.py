"""Entry point: ``streamlit run streamlit_app.py``.

Page config, the navigation over ``pages/``, and the sidebar every page
shares: the network and data settings, and the state of a training run.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st

from core.data.mnist import digits_from_csv
from core.engine.augment import describe_settings
from core.engine.optim import OPTIMIZERS
from core.lab.run.controller import IDLE, QUEUED, run_summary
from core.engine.network import MAX_HIDDEN_LAYERS
from core.lab.settings import FIELDS, MNIST_IMAGES, Settings
from ui import phone, present, uploads
from ui.links import keep_network
from ui.replace import confirm_link
from ui.session import configure_process, keep_lab, navigation, new_workspace, workspace
from ui.state import session
from ui.text import count, plain
from ui.token import keep_in_browser

configure_process()

# a file of the app's own: a Material icon as the tab's icon is fetched from Google's servers, which a
# machine offline cannot reach
ICON = str(Path(__file__).resolve().parent / "static" / "icon.png")


def upload_box(ws) -> None:
    up = st.file_uploader("Kaggle train.csv (optional)", type=["csv", "gz"], key="train_csv",
                          help="Kaggle's Digit Recognizer train.csv: label,pixel0,…,pixel783. "
                               "It replaces the shipped MNIST when you choose it under Data above and apply.")
    state = session().upload
    if up is None:
        state.error = ""   # the file is gone, and so is what was wrong with it
    if not uploads.is_new(up, "upload"):
        return
    got = uploads.read_csv(up, require_labels=True)
    if not got.ok:   # whatever was loaded before stays, and stays in use
        kept = state.digits
        state.error = got.error(
            uploads.UNCHANGED + (f" The images of {plain(kept.name)} are still the upload." if kept else ""))
        return
    state.error = ""
    state.digits = digits_from_csv(got.value, up.name)
    state.notes = list(got.notes)
    st.rerun()   # the settings form above was drawn before the upload: redraw it with the choice enabled


def number(name: str, value, **kw):
    """A number input whose label, limits and help come from the one table of settings."""
    f, cast = FIELDS[name], type(getattr(Settings(), name))
    return cast(st.number_input(f.label, cast(f.lo), cast(f.hi), cast(value), help=f.help or None, **kw))


def choice(name: str, value: str) -> str:
    """A select box over the choices the table of settings gives, named as their registry names them."""
    f = FIELDS[name]
    return st.selectbox(f.label, f.choices, index=f.choices.index(value), format_func=f.choice_label,
                        help=f.help or None)


def switch(name: str, value: bool) -> bool:
    """A checkbox whose label and help come from the one table of settings."""
    f = FIELDS[name]
    return bool(st.checkbox(f.label, value=bool(value), help=f.help or None))


def settings_form(ws) -> Settings | None:
    s = ws.settings
    # Widgets keep what was typed into them: a form keyed by the network's settings and by each *Keep the
    # current network* shows the network in use again, not the settings that were kept away from it.
    tag = f"{session().settings_form}_{hash(s)}"
    with st.form(f"settings_{tag}"):
        st.markdown("**Network**")
        n_hidden = st.select_slider(FIELDS["hidden"].label, options=list(range(1, MAX_HIDDEN_LAYERS + 1)),
                                    value=len(s.hidden), help=FIELDS["hidden"].help)
        cols = st.columns(n_hidden)
        lo, hi = int(FIELDS["hidden"].lo), int(FIELDS["hidden"].hi)
        units = s.hidden + (Settings().hidden[-1],) * n_hidden    # a layer added gets the seed's width
        hidden = tuple(int(c.number_input(f"units {i + 1}", lo, hi, int(units[i]), key=f"h{i}_{n_hidden}_{tag}"))
                       for i, c in enumerate(cols))
        activation = choice("activation", s.activation)
        init = choice("init", s.init)
        dropout = number("dropout", s.dropout, format="%g", step=0.1)
        batchnorm = switch("batchnorm", s.batchnorm)
        st.markdown("**Training**")
        optimizer = choice("optimizer", s.optimizer)
        lr = number("lr", s.lr, format="%g", step=0.01)
        momentum = number("momentum", s.momentum, format="%g") if "momentum" in OPTIMIZERS[optimizer].settings \
            else s.momentum
        weight_decay = number("weight_decay", s.weight_decay, format="%g", step=1e-4)
        batch_size = number("batch_size", s.batch_size)
        epochs = number("epochs", s.epochs)
        seed = number("seed", s.seed)
        st.markdown("**Data**")
        shift, rotate = number("shift", s.shift), number("rotate", s.rotate, format="%g", step=1.0)
        have_upload = session().upload.digits is not None
        dataset = st.radio(FIELDS["dataset"].label, FIELDS["dataset"].choices,
                           index=int(s.dataset == "upload" and have_upload), format_func=FIELDS["dataset"].choice_label,
                           disabled=not have_upload, horizontal=True)
        # the limits do not depend on the images chosen above: inside a form that choice only
        # counts on submit, and a widget whose limits change is reset by Streamlit
        # (apply_settings checks the sizes against the images and says what is wrong)
        pool = number("pool", s.pool)
        val = number("val", s.val)
        applied = st.form_submit_button("Apply settings", type="primary", use_container_width=True)
    if not applied:
        return None
    return Settings(hidden=hidden, activation=activation, init=init, optimizer=optimizer, lr=lr,
                    momentum=momentum, weight_decay=weight_decay, dropout=dropout, batchnorm=batchnorm,
                    shift=shift, rotate=rotate,
                    batch_size=batch_size, seed=seed,
                    pool=pool, val=val, epochs=epochs, dataset=dataset)


def apply_settings(ws, new: Settings) -> None:
    state = session()
    up = state.upload.digits
    n_source = len(up) if new.dataset == "upload" and up is not None else MNIST_IMAGES
    if (new.pool, new.val) == (ws.settings.pool, ws.settings.val) and new.pool > n_source:
        # sizes left as they were, for images that hold fewer: use all of them, a tenth to validate
        new = replace(new, pool=n_source, val=min(new.val, max(1, n_source // 10)))
    new, state.settings_note = new.with_usual_lr(ws.settings)   # another optimizer, η left as it was
    problems = new.problems(n_source)
    if problems:
        state.settings_error = " ".join(problems)
        return
    state.settings_error = ""
    changed = new.model_changes(ws.settings)
    if changed and ws.would_lose_work:
        state.pending_settings = new     # ask before throwing away a trained network
    elif changed:
        state.ws = new_workspace(new)
    elif ws.busy and (new.optimizer, new.lr, new.momentum, new.weight_decay) != (
            ws.settings.optimizer, ws.settings.lr, ws.settings.momentum, ws.settings.weight_decay):
        state.settings_error = "Pause the training run before changing the optimizer."
        return
    else:
        ws.set_hyper(new)
    # the address follows the network in use (ui.links.keep_network), not what waits for a yes


def confirm_pending(ws) -> None:
    state = session()
    new = state.pending_settings
    if new is None:
        return
    changed = ", ".join(new.model_changes(ws.settings))
    st.warning(f"Changing **{changed}** means a new network. The current one has trained "
               f"{ws.trainer.global_step:,} steps ({ws.trainer.epoch} epochs). Download its checkpoint on the "
               f"training page first if you want to keep it.")
    a, b = st.columns(2)
    if a.button("Discard it and build the new network", type="primary", use_container_width=True):
        if ws.busy:
            ws.runner.stop()
            ws.runner.join(5)
        state.ws = new_workspace(new)
        state.pending_settings = None
        st.rerun()
    if b.button("Keep the current network", use_container_width=True):
        state.pending_settings = None
        state.settings_form += 1        # the form shows this network's settings again
        st.rerun()


@st.fragment(run_every="5s")
def run_status() -> None:
    """Tells the run a tab is still watching, and shows where it is from every page: in the
    training page's words, from one reading of the run (``progress()``)."""
    ws = workspace()
    p = ws.runner.progress()
    keep_lab()      # a run's epochs, its end or pause are kept even when nothing else reruns
    s = ws.settings
    extras = ([f"dropout {s.dropout:g}"] if s.dropout else []) + (["batch norm"] if s.batchnorm else []) + \
        ([f"augmented: {describe_settings(s.shift, s.rotate)}"] if s.shift or s.rotate else [])
    st.caption(f"Your network: **{ws.origin}** · {' → '.join(map(str, ws.net.sizes))} · "
               f"{ws.optimizer.name}, η = {ws.optimizer.lr:g}" + "".join(f" · {e}" for e in extras) + " · "
               f"{p['epoch']} epoch{'' if p['epoch'] == 1 else 's'}, "
               f"{count(p['global_step'], 'step')}")
    if p["status"] == IDLE:
        return
    ws.runner.heartbeat()
    if p["status"] == QUEUED:
        st.caption(f"Training: {run_summary(p)} (at most {p['max_runs']} runs at once on this server)")
    elif p["active"]:
        st.progress(p["fraction"], text=f"Training: {run_summary(p)}")
    else:
        st.caption(f"Last run: {p['status']} at {run_summary(p)}")


def sidebar() -> None:
    ws = workspace()
    with st.sidebar:
        present.toggle()
        run_status()
        with st.expander("Settings", expanded=False):
            new = settings_form(ws)
            if new is not None:
                apply_settings(ws, new)
            upload_box(ws)
        state = session()
        for error in (state.settings_error, state.upload.error):
            if error:
                st.error(error)
        if state.settings_note and not state.settings_error:
            st.info(state.settings_note)
        up = state.upload.digits
        if up is not None:   # say so even when the file needed no notes
            hint = "" if workspace().settings.dataset == "upload" else \
                " To train on it, choose *My uploaded train.csv* under Data in the settings and apply."
            st.caption(f"Loaded {len(up):,} labelled images from {plain(up.name)}. "
                       + plain(" ".join(state.upload.notes)) + hint)
        for note in state.link_notes:
            st.caption(plain(note))


def main() -> None:
    presenting = present.start()
    st.set_page_config(page_title="Backprop, step by step", page_icon=ICON, layout="wide",
                       initial_sidebar_state="collapsed" if presenting else "auto")
    page = navigation(top=presenting)   # the sidebar is folded away: the pages' list goes on top
    present.apply()
    phone.apply()
    try:
        sidebar()
        with st.sidebar:
            keep_in_browser()
        confirm_pending(workspace())
        confirm_link(workspace())
        keep_network(workspace())      # the address names the network in use, now that it is settled
        page.run()
    finally:
        keep_lab()      # whatever the run changed (even one ended by st.rerun) is written off the page's path


main()
