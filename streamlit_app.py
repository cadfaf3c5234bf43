"""Entry point: ``streamlit run streamlit_app.py``.

Page config, the navigation over ``pages/``, and the sidebar every page
shares: the network and data settings, and the state of a training run.
"""
from __future__ import annotations

from dataclasses import replace

import streamlit as st

from core.data.mnist import digits_from_csv
from core.engine.network import ACTIVATIONS, INITS
from core.engine.optim import OPTIMIZERS
from core.lab.workspace import Settings
from ui import uploads
from ui.session import configure_process, navigation, new_workspace, workspace
from ui.text import plain

configure_process()
st.set_page_config(page_title="Backprop, step by step", page_icon=":material/neurology:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Start here", icon=":material/home:", default=True),
    st.Page("pages/data.py", title="The data", icon=":material/image:"),
    st.Page("pages/stepper.py", title="Step through backprop", icon=":material/footprint:"),
    st.Page("pages/training.py", title="Train 1000 epochs", icon=":material/model_training:"),
    st.Page("pages/inspect.py", title="What it learned", icon=":material/search_insights:"),
    st.Page("pages/evaluate.py", title="Where it fails", icon=":material/rule:"),
    st.Page("pages/draw.py", title="Draw a digit", icon=":material/draw:"),
    st.Page("pages/kaggle.py", title="Kaggle submission", icon=":material/upload_file:"),
]

ACT_NAMES = {"relu": "ReLU", "leaky_relu": "leaky ReLU", "sigmoid": "sigmoid", "tanh": "tanh"}
INIT_NAMES = {"seed": "seed: 0.01·N(0,1)", "he": "He: N(0, 2/fan_in)"}
OPT_NAMES = {"sgd": "SGD (the seed's)", "momentum": "SGD + momentum", "adam": "Adam"}


def upload_box(ws) -> None:
    up = st.file_uploader("Kaggle train.csv (optional)", type=["csv", "gz"], key=uploads.uploader_key("train_csv"),
                          help="Kaggle's Digit Recognizer train.csv: label,pixel0,…,pixel783. "
                               "It replaces the shipped MNIST when you choose it under Data above and apply.")
    if up is None:
        st.session_state.pop("upload_error", None)   # the file is gone, and so is what was wrong with it
    if not uploads.is_new(up, "upload"):
        return
    got = uploads.read_csv(up, require_labels=True)
    if not got.ok:   # whatever was loaded before stays, and stays in use
        kept = st.session_state.get("upload")
        st.session_state["upload_error"] = got.error(
            uploads.UNCHANGED + (f" The images of {plain(kept.name)} are still the upload." if kept else ""))
        return
    st.session_state.pop("upload_error", None)
    st.session_state["upload"] = digits_from_csv(got.value, up.name)
    st.session_state["upload_notes"] = list(got.notes)
    uploads.done(up, "train_csv")   # the images are kept: free the file, show an empty uploader
    st.rerun()   # the settings form above was drawn before the upload: redraw it with the choice enabled


def settings_form(ws) -> Settings | None:
    s = ws.settings
    with st.form("settings"):
        st.markdown("**Network**")
        n_hidden = st.select_slider("Hidden layers", options=[1, 2, 3], value=len(s.hidden))
        cols = st.columns(n_hidden)
        hidden = tuple(int(c.number_input(f"units {i + 1}", 1, 512, int(s.hidden[i]) if i < len(s.hidden) else 64,
                                          key=f"h{i}_{n_hidden}"))
                       for i, c in enumerate(cols))
        activation = st.selectbox("Activation", list(ACTIVATIONS), index=list(ACTIVATIONS).index(s.activation),
                                  format_func=ACT_NAMES.get)
        init = st.selectbox("Initialisation", INITS, index=INITS.index(s.init), format_func=INIT_NAMES.get)
        st.markdown("**Training**")
        optimizer = st.selectbox("Optimizer", list(OPTIMIZERS), index=list(OPTIMIZERS).index(s.optimizer),
                                 format_func=OPT_NAMES.get)
        lr = st.number_input("Learning rate η", min_value=1e-6, max_value=100.0, value=float(s.lr), format="%g",
                             step=0.01)
        momentum = s.momentum
        if optimizer == "momentum":
            momentum = st.number_input("Momentum μ", 0.0, 0.999, float(s.momentum), format="%g")
        weight_decay = st.number_input("L2 weight decay λ", 0.0, 1.0, float(s.weight_decay), format="%g",
                                       step=1e-4)
        batch_size = int(st.number_input("Batch size m", 1, 4096, int(s.batch_size)))
        epochs = int(st.number_input("Epochs", 1, 10_000, int(s.epochs)))
        seed = int(st.number_input("Seed", 0, 2**31 - 1, int(s.seed)))
        st.markdown("**Data**")
        have_upload = "upload" in st.session_state
        dataset = st.radio("Images", ["mnist", "upload"], index=int(s.dataset == "upload" and have_upload),
                           format_func=lambda d: "Shipped MNIST" if d == "mnist" else "My uploaded train.csv",
                           disabled=not have_upload, horizontal=True)
        # no maximum that depends on the images chosen above: inside a form that choice only
        # counts on submit, and a widget whose limits change is reset by Streamlit
        # (apply_settings checks the sizes against the images and says what is wrong)
        pool = int(st.number_input("Image pool (train + validation)", 2, None, int(s.pool),
                                   help="The seed uses the first 42,000 images; 5,000 is good for quick demos. "
                                        "At most 60,000 for MNIST, or the rows of your upload."))
        val = int(st.number_input("Held out for validation", 1, None, int(s.val)))
        applied = st.form_submit_button("Apply settings", type="primary", use_container_width=True)
    if not applied:
        return None
    return Settings(hidden=hidden, activation=activation, init=init, optimizer=optimizer, lr=float(lr),
                    momentum=float(momentum), weight_decay=float(weight_decay), batch_size=batch_size, seed=seed,
                    pool=pool, val=val, epochs=epochs, dataset=dataset)


def apply_settings(ws, new: Settings) -> None:
    n_source = len(st.session_state["upload"]) if new.dataset == "upload" and "upload" in st.session_state \
        else 60_000
    if (new.pool, new.val) == (ws.settings.pool, ws.settings.val) and new.pool > n_source:
        # sizes left as they were, for images that hold fewer: use all of them, a tenth to validate
        new = replace(new, pool=n_source, val=min(new.val, max(1, n_source // 10)))
    problems = new.problems(n_source)
    if problems:
        st.session_state["settings_error"] = " ".join(problems)
        return
    st.session_state.pop("settings_error", None)
    changed = new.model_changes(ws.settings)
    if changed and ws.trainer.global_step > 0:
        st.session_state["pending_settings"] = new     # ask before throwing away a trained network
    elif changed:
        st.session_state["ws"] = new_workspace(new)
    elif ws.busy and (new.optimizer, new.lr, new.momentum, new.weight_decay) != (
            ws.settings.optimizer, ws.settings.lr, ws.settings.momentum, ws.settings.weight_decay):
        st.session_state["settings_error"] = "Pause the training run before changing the optimizer."
        return
    else:
        ws.set_hyper(new)
    st.query_params.update(new.to_query())


def confirm_pending(ws) -> None:
    new = st.session_state.get("pending_settings")
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
        st.session_state["ws"] = new_workspace(new)
        del st.session_state["pending_settings"]
        st.rerun()
    if b.button("Keep the current network", use_container_width=True):
        del st.session_state["pending_settings"]
        st.rerun()


@st.fragment(run_every="5s")
def run_status() -> None:
    """Tells the run a tab is still watching, and shows where it is from every page."""
    ws = workspace()
    st.caption(f"Your network: **{ws.origin}** · {' → '.join(map(str, ws.net.sizes))} · "
               f"{ws.trainer.epoch} epoch{'' if ws.trainer.epoch == 1 else 's'}, "
               f"{ws.trainer.global_step:,} step{'' if ws.trainer.global_step == 1 else 's'}")
    if not ws.busy and ws.runner.status in ("idle",):
        return
    ws.runner.heartbeat()
    p = ws.runner.progress()
    if ws.busy:
        st.progress(p["fraction"], text=f"Training: epoch {p['epoch']}/{p['target']}")
    else:
        st.caption(f"Last run: {p['status']} at epoch {p['epoch']}")


def sidebar() -> None:
    ws = workspace()
    with st.sidebar:
        run_status()
        with st.expander("Settings", expanded=False):
            new = settings_form(ws)
            if new is not None:
                apply_settings(ws, new)
            upload_box(ws)
        for key in ("settings_error", "upload_error"):
            if st.session_state.get(key):
                st.error(st.session_state[key])
        if "upload" in st.session_state:   # say so even when the file needed no notes
            up = st.session_state["upload"]
            hint = "" if workspace().settings.dataset == "upload" else \
                " To train on it, choose *My uploaded train.csv* under Data in the settings and apply."
            st.caption(f"Loaded {len(up):,} labelled images from {plain(up.name)}. "
                       + plain(" ".join(st.session_state.get("upload_notes", []))) + hint)
        for note in st.session_state.get("link_notes", []):
            st.caption(plain(note))


def main() -> None:
    page = navigation(PAGES)
    sidebar()
    confirm_pending(workspace())
    page.run()


main()
