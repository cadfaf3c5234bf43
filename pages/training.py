"""Train 1000 epochs: the full run in a training process of its own, live curves, per-layer
telemetry, time-travel snapshots, checkpoints and the pretrained network.

The run belongs to this session's workspace (``ws.runner``) and trains in a
process of its own; this page only starts, pauses and stops it and draws its
history. Every button and status line of a run of this page comes from one
reading of the run (``run``, its ``progress()``). The live panel is a fragment
that redraws every few seconds from the history alone and never touches the
network; when it finds the run in another status than the page was drawn with,
it redraws the whole page. While a run goes on, every curve
keeps at most ``tp.LIVE_POINTS`` points and only the telemetry view chosen is
drawn: the browser's work competes for the machine's cores with the run.
"""
from __future__ import annotations

import streamlit as st

from core.lab import checkpoint
from core.lab.settings import MAX_STEPS, most_epochs
from core.lab.run.controller import (DIVERGED, DONE, FAILED, IDLE, PAUSED, PAUSING, QUEUED, RUNNING, STALLED,
                                    STOPPED, queue_place, run_summary)
from core.engine.history import HEALTHY_RATIO, TYPICAL_RATIO
from core.engine.trainer import dead_layers
from ui import recovery, training_plots as tp, uploads
from ui.replace import confirm_replace, replace_network
from ui.session import SEED_VAL_ACC, adopt_checkpoint, pretrained, workspace
from ui.state import session
from ui.text import count, duration, plain, power_of_ten
from ui.present import chart, prose, prose_caption

RUN_KEY = "S"           # one key, like a video's play/pause: it presses whichever of Start / Pause / Resume
                        # the run is waiting for. Not Space (it scrolls, and presses a focused button too),
                        # not C or R (Streamlit's own), none of the stepper viewer's (← → Home End n ?)
LIVE_EVERY = 3.0        # seconds between redraws of the live panel while a run goes on (each redraw
                        # makes the browser repaint two charts)
TELEMETRY_EVERY = 15.0  # … and of the heavier telemetry figures
STATUS_WORDS = {IDLE: "not started", QUEUED: "waiting for a free slot", RUNNING: "running", PAUSING: "pausing…",
                PAUSED: "paused", DONE: "finished", STOPPED: "stopped", DIVERGED: "diverged", FAILED: "failed",
                STALLED: "stopped answering"}


# --------------------------------------------------------------------------- small helpers
def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def loss_text(v: float) -> str:
    """A loss to four decimals, or in scientific notation once it is below 0.001
    (the seed's run ends near 1e-5, which four decimals would show as 0.0000)."""
    return f"{v:.4f}" if not 0 < abs(v) < 1e-3 else f"{v:.2e}"


def status_words(run: dict, trained_steps: int) -> str:
    if run["status"] == IDLE and trained_steps:
        return "not running"        # a network trained elsewhere (a checkpoint, the pretrained one, the stepper)
    return STATUS_WORDS.get(run["status"], run["status"])


def default_target(ws, run: dict) -> int:
    """The target of the run that has not got there (paused, stopped, …), else the settings'
    epoch count, or — when the network has already got there — another stretch of the same
    length (at most 100 epochs)."""
    done, want = ws.trainer.epoch, ws.settings.epochs
    if run["target"] > done:
        return run["target"]
    if done < want:
        return want
    return min(done + min(want, 100), most_epochs(ws.trainer.steps_per_epoch))


# --------------------------------------------------------------------------- actions
def load_checkpoint_file(ws, uploaded) -> bool:
    """Adopt an uploaded checkpoint; True when it was. A rejected file changes nothing
    and says why. Each upload is handled once (the uploader keeps its file across reruns)."""
    if not uploads.is_new(uploaded, "training_ckpt"):
        return False
    if ws.busy:
        session().checkpoint_result = (
            "error", "Pause or stop the training run before loading a checkpoint: nothing was loaded.")
        return False
    got = uploads.read_checkpoint(uploaded)
    if got.ok:
        try:
            ck = got.value
            adopt_checkpoint(ws, ck, f"an uploaded checkpoint (epoch {ck.trainer_state['epoch']})")
        except ValueError as err:   # a valid file whose trainer cannot be rebuilt here (adopts nothing)
            got = uploads.Upload(got.name, problem=str(err))
    if not got.ok:
        session().checkpoint_result = ("error", got.error())
        return False
    session().checkpoint_result = (
        "ok", f"Loaded {plain(got.name)}: {ws.trainer.epoch} epochs, {ws.trainer.global_step:,} steps, "
              f"{len(ws.trainer.snapshots)} snapshots. Press *Continue training* to train it further.")
    return True


def checkpoint_bytes(ws):
    """A callable for the download button: the checkpoint is only written when clicked."""
    net, optimizer, trainer = ws.net, ws.optimizer, ws.trainer
    return lambda: checkpoint.to_bytes(net, optimizer, trainer)


def history_csv(ws):
    history = ws.history
    return lambda: history.frame().to_csv(index=False)


# --------------------------------------------------------------------------- sections
def controls(ws, run: dict) -> None:
    """The run's buttons, each enabled by the one reading ``run`` of this page run."""
    r, tr = ws.runner, ws.trainer
    status, active = run["status"], run["active"]
    paused = status == PAUSED          # Resume carries on to the run's target; another target: Stop first
    cols = st.columns([1.4, 1.5, 1, 1, 1, 1.3], vertical_alignment="bottom")
    most = most_epochs(tr.steps_per_epoch)     # what a run trains to, its checkpoint still loads
    at_max = tr.epoch >= most
    target = cols[0].number_input(
        "Train until epoch", min_value=min(tr.epoch + 1, most), max_value=max(most, tr.epoch),
        value=min(max(default_target(ws, run), tr.epoch + 1), most), step=1,
        disabled=active or paused or at_max,
        key=f"training_until_{id(tr)}_{tr.epoch}_{ws.settings.epochs}_{run['target']}_{paused or active}",
        help=f"Counts the epochs already trained: a network at epoch 1000 trained until 1100 gets 100 more. "
             f"At most {most:,} at these sizes.")
    label = "Start training" if tr.global_step == 0 else "Continue training"
    can_start, can_pause = not (active or paused or at_max), status in (QUEUED, RUNNING)
    if cols[1].button(label, type="secondary" if paused else "primary", icon=":material/play_arrow:",
                      disabled=not can_start, width="stretch", key="training_start",
                      shortcut=RUN_KEY if can_start else None):
        if r.start(int(target)):
            st.rerun()
    if cols[2].button("Pause", icon=":material/pause:", disabled=not can_pause,
                      width="stretch", key="training_pause", shortcut=RUN_KEY if can_pause else None):
        r.pause()
        r.join(5)
        st.rerun()
    if cols[3].button("Resume", icon=":material/resume:", disabled=not paused,
                      type="primary" if paused else "secondary", width="stretch", key="training_resume",
                      shortcut=RUN_KEY if paused else None,
                      help=f"Carries on to epoch {run['target']} from the exact step where it paused."):
        r.resume()
        st.rerun()
    if cols[4].button("Stop", icon=":material/stop:", disabled=not (active or paused),
                      width="stretch", key="training_stop",
                      help="Ends the run. The network and its history stay; you can continue training later."):
        r.stop()
        r.join(5)
        st.rerun()
    if cols[5].button("New network", icon=":material/restart_alt:", disabled=active, width="stretch",
                      key="training_new_network",
                      help="A fresh, untrained network with the settings in the sidebar (asks first when the "
                           "current one has trained)."):
        replace_network(ws, "new")
    s = ws.settings
    spe = tr.steps_per_epoch
    st.caption(
        f"Status: **{status_words(run, tr.global_step)}** · {ws.split.n_train:,} training images in "
        f"mini-batches of {tr.batch_size} → {spe:,} steps per epoch, so {s.epochs:,} epochs are "
        f"{s.epochs * spe:,} steps · optimizer {ws.optimizer.name}, η = {s.lr:g}. "
        f"Change the settings in the sidebar (pause first to change the optimizer). "
        f"Key **{RUN_KEY}** starts, pauses and resumes the run."
        + (f" This network has trained the most epochs the app keeps at these sizes ({most:,}, at most "
           f"{MAX_STEPS:,} steps): a new network trains again." if at_max else ""))
    if status == QUEUED:
        st.info(f"**Waiting for a free training slot: {queue_place(run)}.** This server "
                f"trains at most {run['max_runs']} network{'s' if run['max_runs'] != 1 else ''} at once; yours "
                f"starts by itself when one of them ends. Pause or Stop leaves the queue.",
                icon=":material/hourglass_top:")
    elif status == STALLED:
        st.warning(run["message"], icon=":material/warning:")
    confirm_replace(ws, "new", key="training")


def messages(ws) -> None:
    r = ws.runner
    if r.status == DONE:
        ws.keep_finished_run()              # once: a run that finished is kept for comparison
    if r.status == DONE and ws.is_kept:
        st.success("The run finished. Its network is kept as the run "
                   f"“{plain(ws.runs.get(ws.kept[0]).name)}” to compare with others.", icon=":material/bookmark:")
        st.page_link("pages/compare.py", label="Compare runs", icon=":material/compare_arrows:")
    if ws.runs_note:
        st.warning(ws.runs_note)
    if r.status == DIVERGED:
        st.error(f"**The run diverged.** {r.message}  \nEverything up to the step before it is kept: lower the "
                 f"learning rate in the sidebar, then press *Continue training*; or go back some steps, or start "
                 f"over:", icon=":material/warning:")
        recovery.way_out(ws, "training", undo=lambda point: workspace().undo(point),
                         fresh=lambda: workspace().fresh())
    elif r.status == FAILED:
        st.error("The run stopped on an error in the program (not in your settings). The network keeps "
                 "the parameters of its last completed step.")
        st.code(r.message, language=None)
    elif r.status == PAUSED and r.message:
        st.info(r.message + " Press *Resume* to carry on.")
    dead = dead_layers(ws.history) if ws.net.act.dies else []
    if dead:
        layers = " and ".join(f"A{l}" for l in dead)
        st.warning(
            f"**Every unit of hidden layer {layers} is dead.** For each validation image its Z is ≤ 0, so "
            f"ReLU outputs 0 and its derivative relu′(Z) is 0: dZ = dA ⊙ relu′(Z) is zero, no gradient reaches "
            f"the layers below, and they stop learning for good. This usually follows a step that was too "
            f"large (the biases were pushed far negative). Try a smaller learning rate, He initialisation or "
            f"leaky ReLU (sidebar), or go back to an earlier snapshot.")


def progress_block(ws, p: dict, h: dict) -> None:
    """The run's progress and its latest numbers, all from ``p`` (one reading of the run) and
    ``h`` (one reading of the history)."""
    if p["target"] > 0:
        summary = run_summary(p)
        text = (f"{summary[0].upper()}{summary[1:]} · step {p['step_in_epoch']:,}/{p['steps_per_epoch']:,} "
                f"of this epoch · {p['global_step']:,} of {p['total_steps']:,} steps")
        st.progress(p["fraction"], text=text)
    elif p["global_step"]:
        st.caption(f"Trained {count(p['global_step'], 'step')} so far ({p['epoch']} complete epochs), outside a run.")
    else:
        st.caption("Not trained yet: press *Start training*.")
    n = len(h["epoch"])
    c = st.columns(5)
    short = p["target"] and p["epoch"] < p["target"]     # "1,000 / 1,000" would not fit its column
    c[0].metric("Epoch", f"{p['epoch']:,}" + (f" / {p['target']:,}" if short else ""),
                help=f"Of {p['target']:,} in this run." if p["target"] else None)
    if n:
        prev = h["val_acc"][-2] if n > 1 else None
        c[1].metric("Validation accuracy", f"{h['val_acc'][-1]:.2%}",
                    delta=None if prev is None else f"{(h['val_acc'][-1] - prev) * 100:+.2f} pp")
        prev = h["train_loss"][-2] if n > 1 else None
        c[2].metric("Training loss (epoch)", loss_text(h['train_loss'][-1]),
                    delta=None if prev is None else f"{h['train_loss'][-1] - prev:+.2g}", delta_color="inverse")
    else:
        c[1].metric("Validation accuracy", "—")
        c[2].metric("Training loss (epoch)", "—" if not len(h["step_loss"]) else f"{h['step_loss'][-1]:.4f}")
    if p["status"] == RUNNING:
        c[3].metric("Steps per second", f"{p['steps_per_second']:,.0f}" if p["steps_per_second"] else "…")
        c[4].metric("Time left", duration(p["eta"]), help=f"Running for {duration(p['elapsed'])} in this stretch.")
    else:
        secs = h["seconds"][-1] if n else p["train_seconds"]
        c[3].metric("Training time", duration(max(secs, p["train_seconds"])))
        c[4].metric("Steps", f"{p['global_step']:,}")


def curves(h: dict, steps_per_epoch: int, log_x: bool, key: str = "", live: bool = False) -> None:
    """The loss and accuracy curves. ``live`` (a run is going on): at most
    ``tp.LIVE_POINTS`` points a line, drawn as static pictures (no hover layer to
    build on each redraw; pause the run to explore the curves)."""
    points = tp.LIVE_POINTS if live else tp.MAX_POINTS
    config = {"staticPlot": True} if live else None
    a, b = st.columns(2)
    chart(a, tp.loss_figure(h["epoch"], h["train_loss"], h["val_loss"], h["step_loss"], steps_per_epoch,
                            log_x=log_x, max_points=points), key=f"training_loss{key}", config=config)
    chart(b, tp.accuracy_figure(h["epoch"], h["train_acc"], h["val_acc"], reference=SEED_VAL_ACC,
                                reference_label=f"seed notebook {SEED_VAL_ACC:.1%}", log_x=log_x,
                                max_points=points),
          key=f"training_acc{key}", config=config)


TELEMETRY_VIEWS = ("Update / weight ratio", "Norms", "Dead ReLUs", "Distributions")


def telemetry(ws, h: dict, log_x: bool, points: int = tp.MAX_POINTS) -> None:
    epochs = h["epoch"]
    every = ws.trainer.telemetry_every
    view = st.segmented_control("Show", TELEMETRY_VIEWS, default=TELEMETRY_VIEWS[0], required=True,
                                key="training_telemetry_view", label_visibility="collapsed")
    if view == "Update / weight ratio":
        chart(st, tp.update_ratio_figure(epochs, h["update_ratio"], log_x=log_x, max_points=points),
              key="training_ratio")
        prose(
            "Each step moves a layer by **ΔW = −η·dW**. The ratio **‖ΔW‖ / ‖W‖** says what fraction of the "
            f"layer one step rewrites. Around **{power_of_ten(TYPICAL_RATIO)}** (Karpathy's rule of thumb) the "
            f"learning rate is sane; far below {power_of_ten(HEALTHY_RATIO[0])} the layer hardly moves (η too "
            f"small, or its gradient vanished); far above {power_of_ten(HEALTHY_RATIO[1])} each step "
            "overwrites much of what it learned and training turns unstable (η too large). "
            f"Measured on every {every}th step and averaged over the epoch.")
    elif view == "Norms":
        chart(st, tp.norms_figure(epochs, h["weight_norm"], h["grad_norm"], h["update_norm"], log_x=log_x,
                                  max_points=points), key="training_norms")
        prose_caption("Frobenius norms per layer, averaged over the sampled steps of each epoch. The gradient norm "
                      "‖dW‖ shrinks as the training loss falls; ‖ΔW‖ = η·‖dW‖ for plain SGD.")
    elif view == "Dead ReLUs":
        chart(st, tp.dead_figure(epochs, h["dead_frac"], log_x=log_x, max_points=points),
              key="training_dead")
        prose_caption("A hidden unit is dead when its Z is never positive on any validation image: it outputs 0, "
                      "passes no gradient back, and its weights stop changing. A few are normal; a whole layer "
                      "is fatal.")
    else:
        L = h["hist_W"].shape[1] if h["hist_W"].ndim == 3 else ws.net.n_layers
        layer = st.radio("Layer", list(range(1, L + 1)), format_func=lambda l: f"W{l} / dW{l}",
                         horizontal=True, key="training_dist_layer")
        i = min(layer, L) - 1
        a, b = st.columns(2)
        for col, name, hist, rng in ((a, "W", "hist_W", "range_W"), (b, "dW", "hist_dW", "range_dW")):
            chart(col, tp.distribution_figure(epochs, h[hist][:, i] if len(epochs) else h[hist],
                                              h[rng][:, i] if len(epochs) else h[rng], name=f"{name}{layer}",
                                              log_x=log_x, max_epochs=min(points, tp.MAX_HEATMAP_EPOCHS)),
                  key=f"training_dist_{name}")
        prose_caption("Like TensorBoard's histograms: each column is one epoch, the colour the share of the layer's "
                      "values at that height (log scale), the white lines the median and the 5% / 95% quantiles. "
                      "The weights are those after the epoch's last step; the gradient dW is that step's.")


def snapshots_section(ws, h: dict) -> None:
    snaps = sorted(ws.trainer.snapshots)
    by_epoch = {int(e): i for i, e in enumerate(h["epoch"])}
    rows = [{"epoch": e,
             "validation accuracy": f"{h['val_acc'][by_epoch[e]]:.2%}" if e in by_epoch else "",
             "training loss": loss_text(h['train_loss'][by_epoch[e]]) if e in by_epoch else "",
             "note": "the initial weights" if e == 0 else ""} for e in snaps]
    st.dataframe(rows, hide_index=True, width="content",
                 column_config={"note": st.column_config.TextColumn(width="medium")})
    kept = checkpoint.SNAPSHOTS
    st.caption(f"The parameters are kept at epochs {', '.join(map(str, kept[:-1]))} and {kept[-1]} (references, "
               "not copies: updates never overwrite an array). Choose one with *Network at* on these pages:")
    c = st.columns(2)
    c[0].page_link("pages/inspect.py", label="What it learned", icon=":material/search_insights:")
    c[1].page_link("pages/evaluate.py", label="Where it fails", icon=":material/rule:")


def save_load_section(ws, run: dict) -> None:
    tr, busy = ws.trainer, run["active"]
    name = f"mlp-epoch-{tr.epoch}" + (f"-step-{tr.global_step}" if tr.step_in_epoch else "")
    a, b = st.columns(2)
    with a:
        st.download_button("Download the checkpoint (.npz)", data=checkpoint_bytes(ws), file_name=f"{name}.npz",
                           mime="application/octet-stream", icon=":material/download:", disabled=busy,
                           on_click="ignore", key="training_download_ckpt",
                           help="Network, optimizer state, position in the run, history and snapshots: "
                                "load it here later and training carries on exactly.")
        st.download_button("Download the history (.csv)", data=history_csv(ws),
                           file_name=f"history-epoch-{tr.epoch}.csv", mime="text/csv", icon=":material/table:",
                           disabled=busy, on_click="ignore", key="training_download_csv")
        if busy:
            st.caption("Pause the run to download: a file written mid-step would not be consistent.")
        untrained = tr.global_step == 0
        if st.button("Keep as a run (Compare runs)", icon=":material/bookmark_add:",
                     disabled=busy or ws.is_kept or untrained, key="training_keep_run",
                     help="It is kept already." if ws.is_kept else "It has not trained yet." if untrained else
                     "Keeps the network as it is now, with its history, to compare with others and reopen later."):
            try:
                st.success(f"Kept as the run “{plain(ws.keep_run().name)}”.")
            except (ValueError, RuntimeError) as err:     # full (RunsFull), or kept already
                st.error(str(err))
    with b:
        up = st.file_uploader("Load a checkpoint", type=["npz"], disabled=busy, key="training_upload",
                              help="A .npz saved by this app. It is checked entry by entry and never unpickled.")
        prose_caption("Loading a checkpoint replaces this session's network, its history and settings (download the "
                      "current one first to keep it). A file that is refused changes nothing.")
        if load_checkpoint_file(ws, up):
            st.rerun()      # the sidebar shows the loaded network's settings too
        result = session().checkpoint_result
        if result and up is not None:
            (st.success if result[0] == "ok" else st.error)(result[1])


def pretrained_section(ws, run: dict, log_x: bool) -> None:
    try:
        ck = pretrained()
    except checkpoint.CheckpointError as err:
        st.error(f"The shipped pretrained network cannot be read: {err}")
        return
    if ck is None:
        st.info("The pretrained network (data/pretrained.npz) is not on this server yet. It is made with "
                "`python -m core.train --out data/pretrained.npz`; until then, train your own here.")
        return
    h = tp.read_history(ck.history)
    if len(h["epoch"]):
        test = ck.meta.get("test_acc")
        st.markdown(
            f"The seed's network trained for **{int(h['epoch'][-1]):,} epochs** with the seed's protocol by this "
            f"engine: **{h['val_acc'][-1]:.2%}** validation accuracy (the seed notebook: {SEED_VAL_ACC:.1%})"
            + (f", **{test:.2%}** on the 10,000 MNIST test images." if test else "."))
        spe = max(int(ck.trainer_state.get("global_step", 0)) // max(len(h["epoch"]), 1), 1)
        curves(h, spe, True, key="_pretrained")
        prose_caption("Epochs on a logarithmic axis: nearly everything happens in the first 50.")
    if st.button("Open the pretrained network here", icon=":material/folder_open:", disabled=run["active"],
                 key="training_open_pretrained",
                 help="Replaces this session's network (asks first when it has trained)."):
        replace_network(ws, "pretrained")
    confirm_replace(ws, "pretrained", key="training")


def footer(ws) -> None:
    m = ws.memory()
    stepped = (f", the stepper's last {len(ws.steps)} steps {mb(m['step_history'] + m['current_trace'])}"
               if ws.steps else "")
    prose_caption(
        f"Memory: this session holds **{mb(m['total'])}** — history {mb(m['history'])}, parameters and "
        f"{len(ws.trainer.snapshots)} snapshots {mb(m['params_and_snapshots'])}{stepped}. A whole 1000-epoch "
        f"run of the seed's network stays under 50 MB (checked by the tests). The images are shared by all "
        f"sessions.")
    prose_caption(
        f"Where the run lives: in a process of its own on the server, started for this browser session from "
        f"exactly the network it has, with the same engine; it reports back four times a second. It keeps "
        f"training while you look at other pages (the sidebar shows its progress). Every page tells it every "
        f"5 s that a tab is still watching; after {ws.runner.orphan_after:.0f} s without that (tab closed, "
        f"computer asleep) it pauses itself, keeping everything. A reload, or coming back in this browser within "
        f"7 days, reopens this network where it is (the server keeps it under a random token this browser holds "
        f"in a cookie); download the checkpoint to keep it longer or take it elsewhere. This server trains at "
        f"most {ws.runner.slots.limit} networks at once (one per core); a run started while all are busy waits "
        f"its turn.")


# --------------------------------------------------------------------------- the page
ws = workspace()
run = ws.runner.progress()      # the run as this page run draws it: every button and status line reads this
running = run["active"]

st.title("Train 1000 epochs")
prose(
    "The step you inspected on the stepper, repeated: every epoch shuffles the training images, cuts them into "
    "mini-batches and runs **forward → loss → backward → update** on each with the very same `train_step`. "
    "The run goes on in the background; you can leave this page and come back.")

controls(ws, run)
messages(ws)
log_x = st.toggle("Logarithmic epoch axis", key="training_log_x", value=ws.trainer.epoch >= 200,
                  help="Most of the change happens in the first epochs; a log axis spreads them out.")


@st.fragment(run_every=LIVE_EVERY if running else None)
def live_panel() -> None:
    ws = workspace()
    ws.runner.heartbeat()
    p = ws.runner.progress()
    if p["status"] != run["status"]:    # queued → running, running → paused, …: redraw the buttons too
        st.rerun()
    h = tp.read_history(ws.history, tp.CURVE_COLUMNS)   # redrawn every few seconds: not the histograms
    progress_block(ws, p, h)
    curves(h, ws.trainer.steps_per_epoch, log_x, live=p["active"])


@st.fragment(run_every=TELEMETRY_EVERY if running else None)
def telemetry_panel() -> None:
    ws = workspace()
    h = tp.read_history(ws.history)
    st.subheader("Inside the layers, epoch by epoch")
    telemetry(ws, h, log_x, points=tp.LIVE_POINTS if ws.busy else tp.MAX_POINTS)
    st.subheader("Time travel: snapshots")
    snapshots_section(ws, h)


@st.fragment(run_every=TELEMETRY_EVERY if running else None)
def footer_panel() -> None:
    footer(workspace())


live_panel()
telemetry_panel()

st.subheader("Save and load")
save_load_section(ws, run)

with st.expander("The pretrained network: 1000 epochs, already trained", expanded=False):
    pretrained_section(ws, run, log_x)

footer_panel()
