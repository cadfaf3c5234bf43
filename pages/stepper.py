"""Step through backprop: one mini-batch, phase by phase, every number on screen.

Which step is shown (the latest, a past one recomputed, one that diverged) and the
stop it opens on are the session's :class:`core.lab.stepper.Stepper`, which also
chooses the batch, takes the step and replays a shared link; the network, its
trainer and the history of steps are the session's Workspace. "Step" (and the
viewer's *Train one mini-batch*) is one call of ``ws.step`` — the same
``Trainer.train_step`` the 1000-epoch run makes. The step itself is drawn by the
trace viewer (``ui.trace_viewer``), which gets its whole trace once and moves between
its stops in the browser; this page lays out the rest.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from core.engine.augment import describe_settings, to_u8
from core.data.mnist import to_float
from core.teach.explain import explain
from core.teach.notebook import MAX_BYTES as NOTEBOOK_BYTES, embedded_bytes, step_notebook
from core.engine.gradcheck import AGREES, check_gradients, random_entries
from core.lab.stepper import BATCH_CHOICES, DIVERGED, link_path, max_replay_steps
from core.lab.workspace import STEP_BYTES, STEP_HISTORY, TRACE_BYTES
from ui import derivations, present, recovery, stepper_views as views, trace_viewer
from ui.links import keep_view, put as put_in_address
from ui.present import prose, prose_caption
from ui.session import workspace
from ui.state import STEPPER_CHOSEN, STEPPER_DRAWN_LABEL, STEPPER_HOW, STEPPER_SHOWN, session, zoom_target
from ui.text import count, plain

HOW = dict(zip(BATCH_CHOICES, ("the trainer's next mini-batch", "a random mini-batch", "images I choose",
                               "the digit I drew")))

ws = workspace()
S = session().stepper.follow(ws)


# --------------------------------------------------------------------------- the batch and the step
def chosen_batch(ws):
    """The batch the widgets above describe."""
    return S.batch(ws, st.session_state.get(STEPPER_HOW, "next"), chosen=st.session_state.get(STEPPER_CHOSEN, ""),
                   drawn=session().drawn_digit, drawn_label=st.session_state.get(STEPPER_DRAWN_LABEL, 0))


def take_step() -> None:
    ws = workspace()                   # the session's, even if it changed since this button was drawn
    S.follow(ws).take_step(ws, chosen_batch(ws))


def undo_to(point) -> None:
    ws = workspace()
    S.follow(ws).undo(ws, point)


def start_fresh() -> None:
    S.fresh(workspace())


def on_shown() -> None:
    S.show(st.session_state.get(STEPPER_SHOWN))


@st.fragment(run_every=0.5)
def replay_progress() -> None:
    """A link's replay in the training process: how far it is (the whole page reruns when it ends)."""
    ws = workspace()
    ws.runner.heartbeat()
    n, done = S.replaying, ws.trainer.global_step
    st.progress(min(done / max(n, 1), 1.0), text=f"Replaying the link: step {done:,} of {n:,}, in the training "
                f"process (the last step is taken here, so that its every number is on screen)…")
    if not ws.busy:
        st.rerun()


def kept_steps(ws) -> str:
    cap = ws.step_capacity()
    why = "" if cap == STEP_HISTORY else (f" at these sizes: each keeps its parameters and optimizer state, and "
                                          f"the history holds at most {STEP_BYTES / 2**20:.0f} MB")
    return f"{count(len(ws.steps), 'past step')} kept (at most {cap}{why})"


# --------------------------------------------------------------------------- what is on screen
def zoom_on_click(key: str, shapes: dict):
    """A click on an output's cell moves the zoom there (see views.add_click_layer)."""
    def for_chart(name: str, chart: str):
        def clicked():
            event = st.session_state.get(chart)
            points = event["selection"]["points"] if event else []
            if not points:
                return
            st.session_state[zoom_target(key)] = name
            for axis, v in enumerate((points[0]["y"], points[0]["x"])):
                st.session_state[views.index_key(key, name, shapes[name], axis)] = int(v)
        return clicked
    return for_chart


def block(trace, rows, key: str, rec, L: int, main: str | None = None) -> None:
    """Figures of ``rows`` (inputs beside outputs), their statistics, and the zoom into one number
    (starting on ``main``)."""
    outputs = [n for row in rows for n in row]
    figs = st.container()
    table = st.container()
    zoom = st.container(border=True)
    with zoom:
        st.markdown("**Zoom into one number** — how it was computed from the numbers that made it")
        c1, c2 = st.columns([1, 3])
        target = outputs[0] if len(outputs) == 1 else c1.selectbox(
            "quantity", outputs, index=outputs.index(main) if main in outputs else 0, key=zoom_target(key))
        with c2:
            index = views.index_inputs(target, trace[target], L, key)
    with figs:
        for r, row in enumerate(rows):
            views.render_row(trace, row, L, key=f"{key}_{r}", highlight={target: index} if index else None,
                             on_click=zoom_on_click(key, {n: np.shape(trace[n]) for n in outputs}))
    with table:
        names = []
        for row in rows:
            names += [n for n in views.row_inputs(trace, row) + list(row) if n not in names]
        roles = {n: "output" if n in outputs else "input" for n in names}
        st.dataframe(views.stats_frame(trace, names, roles), hide_index=True, key=f"{key}_stats",
                     column_config={c: st.column_config.NumberColumn(format="%.4g")
                                    for c in ("min", "max", "mean", "std")} |
                                   {"fraction of zeros": st.column_config.NumberColumn(format="percent")})
    with zoom:
        ex = explain(trace, target, index, optimizer=rec.optimizer_before if rec is not None else None)
        pic = views.picture_of(target, trace[target], index)
        views.render_explanation(ex, picture=pic and (views.picture_figure(pic[0], pic[1], grey=target == "X"),
                                                      pic[2]), key=key)


# --------------------------------------------------------------------------- the page
st.title("Step through backprop")
prose("One mini-batch through the network, one phase at a time: the **forward pass** layer by layer, "
      "the **loss**, the **backward pass** layer by layer, and the **update**. Every matrix is on screen "
      "with its equation, and any single number can be taken apart. *Step* trains your network for real: "
      "it is the same `train_step` the 1000-epoch run makes, one call.")
replay = S.read_link(ws, st.query_params.to_dict())   # once per session: a shared link's step and stop
if (replay and not S.start_replay(ws, replay)) or (S.replaying and S.finish_replay(ws)):
    st.rerun()                      # so the sidebar, drawn before this page, shows the replayed network
if S.replaying:
    replay_progress()
    st.stop()
if S.link_note:
    st.info(S.link_note)
tr = ws.trainer
st.caption(f"Your network: {plain(ws.origin)}, {' → '.join(map(str, ws.net.sizes))}, {ws.optimizer.name} "
           f"with η = {getattr(ws.optimizer, 'lr', float('nan')):g}; "
           f"{count(tr.global_step, 'step')} taken "
           f"(epoch {tr.epoch + 1}, batch {tr.step_in_epoch + 1} of {tr.steps_per_epoch} comes next). "
           "Stepping continues from wherever the network is.")
if ws.busy:
    st.warning("A training run is going on in the background, on this same network. Stepping is disabled so "
               "the two do not fight over it: pause the run on the training page, then step on from where it "
               "stopped. You can still look at the steps shown here.")
    st.page_link("pages/training.py", label="Go to the training page", icon=":material/model_training:")

how_now = st.session_state.get(STEPPER_HOW, "next")
with st.expander(f"**1 · Choose the next mini-batch** — now: {HOW.get(how_now, HOW['next'])}",
                 expanded=not ws.steps and not S.diverged):
    c1, c2 = st.columns([1, 2])
    hows = [h for h in HOW if h != "drawn" or session().drawn_digit is not None]
    if st.session_state.get(STEPPER_HOW) not in hows:
        st.session_state[STEPPER_HOW] = "next"
    how = c1.radio("Train on", hows, format_func=HOW.get, key=STEPPER_HOW)
    if how == "drawn":
        c1.number_input("It is a", 0, 9, key=STEPPER_DRAWN_LABEL,
                        help="The true digit: the loss and every gradient are measured against it.")
    if how == "random":
        c1.button("Draw another", on_click=S.draw_again)
    if how == "chosen":
        c1.text_input("Training-set positions", "0-15", key=STEPPER_CHOSEN,
                      help=f"Positions 0 to {ws.split.n_train - 1:,} in the training set, like 0, 5, 10-20.")
    batch = chosen_batch(ws)
    problem = batch.problem
    c1.button("Step: train on this mini-batch", type="primary", on_click=take_step,
              disabled=ws.busy or bool(problem), key="stepper_step", width="stretch")
    c1.caption("One call of `ws.step`: forward, loss, backward and update, exactly as in training. The viewer's "
               "**Train one mini-batch** does the same.")
    with c2:
        if problem:
            st.error(problem)
        else:
            X, y = batch.pictures(ws.split.source)
            where = (f"epoch {tr.epoch + 1}, batch {tr.step_in_epoch + 1} of {tr.steps_per_epoch} of the "
                     "shuffled training set" if how == "next" else "your drawn digit" if how == "drawn"
                     else f"{len(y)} images")
            st.caption(f"The next step trains on {where}" + (" (first 64 shown)" if len(y) > 64 else "") +
                       ". Labels above the images.")
            st.image(views.batch_picture(X[:64], y[:64]), width="stretch", output_format="PNG")
            if moved := describe_settings(tr.shift, tr.rotate):    # data augmentation: what the step will train on
                seen = tr.augmented(to_float(X, ws.net.dtype), tr.global_step)[0]
                st.caption(f"**As the network will see them**: data augmentation has each image {moved}, drawn "
                           "afresh for every step from the seed and the step's number.")
                st.image(views.batch_picture(to_u8(seen[:64]), y[:64]), width="stretch", output_format="PNG")
    if how != "next":
        prose_caption("A random or chosen batch still counts as this position's step of the epoch; a shared link "
                      "can only replay the trainer's own batches.")
if S.problem:
    st.error(S.problem)

on_screen = S.shown_step(ws)
if on_screen is None:
    keep_view("stepper", step=None, stop=None)      # no step on screen (a new network): none in the address
    st.info("Press **Step** to send the first mini-batch through the network.")
    st.stop()
trace, rec, shown, number = on_screen.trace, on_screen.record, on_screen.label, on_screen.number
start = S.opening_stop([s.key for s in views.build_stops(trace)])
L = len(ws.net.sizes) - 1

# ---- 2 · the step, in the browser: every stop, its equation and heatmaps, without a server round trip
options = S.step_choices(ws)
st.session_state[STEPPER_SHOWN] = S.shown
latest = ws.steps[-1].number if ws.steps else None
c1, c2 = st.columns([3, 1.3], vertical_alignment="bottom")
c1.subheader("2 · Step through it")
c2.selectbox("Step shown", options, key=STEPPER_SHOWN, on_change=on_shown, help=kept_steps(ws) + ".",
             format_func=lambda n: f"step {S.diverged.number:,}: diverged, not applied" if n == DIVERGED
             else f"step {n:,}" + (" (latest)" if n == latest else " (recomputed)"))

if shown == DIVERGED:
    label = f"step {number:,}: diverged, not applied"
    st.error(S.diverged.message)
    st.caption("The viewer shows what that step computed before it was refused (up to the update it would have "
               "made). It was not applied: the network is as it was before it. Lower the learning rate in the "
               "sidebar's settings and train again, or go back some steps, or start over:")
    recovery.way_out(ws, "stepper", undo=undo_to, fresh=start_fresh)
elif rec is ws.steps[-1] and tr.global_step != rec.number:
    label = f"step {number:,} (the network is at step {tr.global_step:,})"
    st.info(f"This is the last step you took here, step {number:,}. The network has trained on since (it is at "
            f"step {tr.global_step:,}): **Train one mini-batch** steps on from there.")
elif rec is not ws.steps[-1]:
    label = f"step {number:,} (recomputed; the network is at step {tr.global_step:,})"
    st.info(f"You are looking at step {number:,}, recomputed from the parameters, optimizer state and batch it "
            f"had (a past step keeps only what recomputes it; {kept_steps(ws)}). The network itself is at step "
            f"{tr.global_step:,}.")
else:
    label = f"step {number:,} (latest)"
if how != "next":
    label += f" · trains on {HOW[how]}"
trace_viewer.show(trace, key="stepper_viewer", step_label=label, start=start, on_train=take_step,
                  present=present.on(), optimizer=rec.optimizer_before if rec is not None else None,
                  can_train=not ws.busy and not problem, reveal=shown != DIVERGED,
                  train_help="A training run is going on: pause it on the training page to step." if ws.busy
                  else problem)

if trace.augment is not None:     # data augmentation: the batch as it came, and as the step trained on it (X)
    with st.expander(f"Data augmentation: this step's `X` is its batch {describe_settings(tr.shift, tr.rotate)}"):
        m = len(trace["y"])
        a, b = st.columns(2)
        a.caption("The batch from the data set" + (" (first 64)" if m > 64 else ""))
        a.image(views.batch_picture(to_u8(trace.augment.original[:64]), trace["y"][:64], cols=8),
                width="stretch", output_format="PNG")
        b.caption("As the network saw them: `X`")
        b.image(views.batch_picture(to_u8(trace["X"][:64]), trace["y"][:64], cols=8),
                width="stretch", output_format="PNG")
        prose_caption("Image 1: " + trace.augment.describe(0) + ". Every quantity of the step is computed from `X`; "
                      "evaluation (validation, test, What it learned) uses the images as they are.")

derivations.fold_outs(trace.sizes, trace.activation, names=("softmax_ce", "chain_rule", "activation")
                      + (("batchnorm",) if trace.batchnorm else ()),
                     m=trace["X"].shape[0], batchnorm=trace.batchnorm)   # "why these formulas?", in its names
with st.expander("Link to this step", icon=":material/link:"):
    st.code(link_path(ws.settings, number, start, {present.PARAM: "1"} if present.on() else None), language=None)
    st.caption(f"Opening it in a new session rebuilds the network from its seed and replays the steps up to this "
               f"one (the trainer's own batches, at most {max_replay_steps(ws):,} steps at these sizes), then "
               f"opens it on stop {start}, where this step was opened: moving between stops happens in your "
               "browser and does not change the link. To open another stop, change `stop=` (to `dW2`, `ΔW1`, "
               "… any name in the viewer's strip). Add it to this app's address.")
    for note in S.link_caveats(ws, number):
        st.warning(plain(note))      # the network's origin may name a file
if shown != DIVERGED:
    optimizer_before, origin = rec.optimizer_before, plain(ws.origin)
    too_big = embedded_bytes(trace, optimizer_before) > NOTEBOOK_BYTES
    # a callable: the notebook is built only when the button is pressed, not on every rerun
    st.download_button("Download this step as a notebook (.ipynb)", icon=":material/download:",
                       data=lambda: step_notebook(trace, optimizer_before, number=number, network=origin),
                       file_name=f"backprop-step-{number}.ipynb", mime="application/x-ipynb+json",
                       on_click="ignore", key="stepper_notebook", disabled=too_big,
                       help=f"This step's arrays are more than the {NOTEBOOK_BYTES / 2**20:.0f} MB a notebook "
                            "holds: use a smaller batch or network." if too_big else
                            "The batch and the parameters before the step, then every quantity of the step "
                            "recomputed with plain NumPy in the names on screen, each checked against the "
                            "number the app recorded. It runs top to bottom with only NumPy.")
want = S.link_query(ws, on_screen)
put_in_address(want)

# ---- 3 · more ways to look
st.subheader("3 · Look closer")
VIEWS = ["One sample", "All quantities", "Gradient check", "History and memory"]
view = st.segmented_control("View", VIEWS, default=None, key="stepper_view", label_visibility="collapsed")
if view is None:    # nothing drawn by default: each step then redraws only the viewer above, quickly
    prose_caption("**One sample** follows one image of the batch through every layer · **All quantities** shows "
                  "any matrix of the step with its statistics · **Gradient check** compares backprop with finite "
                  "differences · **History and memory** lists the steps kept and what they cost.")

if view == "One sample":
    m = trace["X"].shape[0]
    losses = np.asarray(trace["losses"])
    i = st.selectbox("Sample of the batch", range(m), index=int(np.nanargmax(losses)), key="stepper_sample",
                     format_func=lambda i: f"{i}: a {int(trace['y'][i])}, loss {losses[i]:.3f}",
                     help="Starts on the sample with the largest loss: the one the network got most wrong.")
    views.render_sample(trace, i, np.asarray(trace["X"][i]))

elif view == "All quantities":
    names = list(trace)
    name = st.selectbox("Quantity", names, index=names.index(start) if start in names else 0, key="stepper_browse",
                        format_func=lambda n: f"{n}  ({views.PHASE_TITLES[trace.spec(n).phase].lower()})")
    spec = trace.spec(name)
    st.latex(spec.latex)
    st.caption(spec.about)
    block(trace, ((name,),), "browse", rec, L)

elif view == "Gradient check":
    prose("Backprop's gradients against **finite differences**: nudge one weight by ±ε, run the forward "
          "pass again, and see how the loss moved, `(L(θ+ε) − L(θ−ε)) / 2ε`. The check runs on a float64 copy "
          "of the network *as it was before this step*, on the same batch." + (
              f" Entries where the nudge moves some unit across {ws.net.act.label}'s kink at 0 are flagged "
              "and not compared: the loss has no slope there." if ws.net.act.kink else ""))
    if rec is None:
        st.info("This step diverged and was not applied: check the gradients of a step that was.")
    else:
        c1, c2, c3 = st.columns(3)
        n = c1.number_input("Random entries", 1, 60, 12, key="gc_n")
        seed = c2.number_input("Seed of the draw", 0, 10**6, 0, key="gc_seed")
        mine = c3.checkbox("Add one entry of my choice", key="gc_mine")
        net = ws.net.with_params(rec.params_before)
        entries = random_entries(net, int(n), int(seed))
        if mine:
            c1, c2 = st.columns([1, 3])
            param = c1.selectbox("Parameter", list(net.params), key="gc_param")
            with c2:
                entries.insert(0, (param, views.index_inputs(param, net.params[param], L, "gc")))
        if st.button("Run the gradient check", type="primary", key="gc_run"):
            X, y = trace["X"], trace["y"]      # the images the step trained on (augmented, when it is on)
            with st.spinner("Nudging weights…"):
                S.gradcheck = (rec, check_gradients(net, X, y, entries, masks=trace.masks))   # dropout's, held
        if S.gradcheck and S.gradcheck[0] is rec:
            results = S.gradcheck[1]
            ok, verdict = views.gradcheck_verdict(results)
            (st.success if ok else st.warning)(verdict)
            st.dataframe(views.gradcheck_frame(results, trace), hide_index=True, key="gc_table",
                         column_config={c: st.column_config.NumberColumn(format="%.6e")
                                        for c in ("backprop", "numeric", "in the trace (float32)")} |
                                       {"relative error": st.column_config.NumberColumn(format="%.1e")})
            prose_caption("relative error = |backprop − numeric| / (|backprop| + |numeric|). Around 1e-7 or below: "
                          f"backprop is right (the verdict above asks for less than {AGREES:g}). The last column is the float32 gradient the step itself used.")

elif view == "History and memory":
    rows = [{"step": r.number, "epoch": r.epoch, "batch of the epoch": r.step_in_epoch, "batch chosen as": r.how,
             "loss": float(ws.history.step_loss[r.number - 1]) if r.number <= ws.history.n_steps else np.nan}
            for r in reversed(ws.steps)]
    st.markdown(f"The last steps you took: {kept_steps(ws)}. Pick one in **Step shown** above to see its trace "
                "again: the same engine recomputes it from the parameters, optimizer state and batch it had, so it "
                "is exactly what that step computed.")
    st.dataframe(rows, hide_index=True, key="history_table")
    mem = ws.memory()
    mb = lambda b: f"{b / 2**20:.2f} MB"
    c = st.columns(4)
    c[0].metric("This step's trace", mb(trace.nbytes), help="Every array of the step, shared arrays counted once.")
    c[1].metric("Step history", mb(mem["step_history"]), help="Parameters before each step (by reference, so "
                "consecutive steps share arrays), optimizer snapshots and batch indices.")
    c[2].metric("Parameters and snapshots", mb(mem["params_and_snapshots"]))
    c[3].metric("Your session in all", mb(mem["total"]))
    held = (f"the latest trace is kept whole ({mb(mem['current_trace'])})" if ws.current is not None else
            f"this trace is larger than the {TRACE_BYTES / 2**20:.0f} MB of whole traces a session keeps, so it is "
            "recomputed each time the page is drawn")
    prose_caption(f"Between clicks {held}; older steps keep what it takes to recompute them: at most {STEP_HISTORY} "
                  f"steps and {STEP_BYTES / 2**20:.0f} MB, with the parameters ({mb(ws.net.n_params * ws.net.dtype.itemsize)}) "
                  "and optimizer state each had, whatever the batch size.")
