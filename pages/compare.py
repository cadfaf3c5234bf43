"""Compare runs: the runs this session kept, side by side.

Their curves overlaid (loss, validation accuracy, update-to-weight ratio), a table of the settings
that differ and the results, each run renamed, removed (with undo) or reopened as the current
network, the comparison as CSV; the shipped networks in one click, and a preset's run in one click
(it trains in the background, as any run of the training page). The runs live in the workspace
(core/lab/runs.py) and are kept with the lab across reloads (core/lab/store.py).
"""
from __future__ import annotations

import streamlit as st

from core.lab.runs import RunsFull, clean_name
from core.lab.settings import FIELDS, PRESETS
from ui import compare_plots as cp
from ui.present import chart, prose, prose_caption
from ui.replace import confirm_replace, preset_choice, replace_network, run_choice
from ui.session import SHIPPED_RUNS, add_shipped_runs, workspace
from ui.state import session
from ui.text import duration

PERCENT = ("Best val acc", "Final val acc", "Test acc")
BEST = "background-color: #cfe3f3; font-weight: 700"    # pale Okabe–Ito blue: the best of a column


def keep_current(ws) -> None:
    try:
        run = ws.keep_run()
        session().runs_message = ("ok", f"Kept your network as the run “{run.name}”.")
    except (ValueError, RuntimeError) as err:       # full (RunsFull), kept already, or training
        session().runs_message = ("error", str(err))


def add_shipped(ws) -> None:
    problems = add_shipped_runs(ws)
    session().runs_message = ("error", " ".join(problems)) if problems else None


def messages(ws) -> None:
    state = session()
    if state.runs_message:
        kind, text = state.runs_message
        (st.success if kind == "ok" else st.error)(text)
        state.runs_message = None            # said once
    if ws.runs_note:
        st.warning(ws.runs_note)


def actions(ws) -> None:
    a, b, c = st.columns([1.3, 1.3, 2], vertical_alignment="center")
    untrained = ws.trainer.global_step == 0
    if a.button("Keep your network as a run", icon=":material/bookmark_add:",
                disabled=ws.busy or ws.is_kept or untrained, width="stretch", key="compare_keep",
                help="Pause the training run first." if ws.busy else "It is kept already." if ws.is_kept else
                "It has not trained yet." if untrained else "Adds your network, as it is now, to the comparison."):
        keep_current(ws)
        st.rerun()
    have = {r.shipped for r in ws.runs}
    if b.button("Add the shipped networks", icon=":material/library_add:", width="stretch", key="compare_shipped",
                disabled=set(SHIPPED_RUNS) <= have,
                help="The seed's 1000-epoch network and the improved one (150 epochs, augmented): their histories "
                     "come with them, nothing to train."):
        add_shipped(ws)
        st.rerun()
    c.caption(f"Your network: **{ws.origin}**, {ws.trainer.epoch:,} epochs"
              + (" (kept as a run)." if ws.is_kept else "."))


def empty_state() -> None:
    st.info("**No runs to compare yet.** Press *Add the shipped networks* to see the seed's network beside its "
            "improved version at once, without training anything. Or train a preset below (one click), or press "
            "*Keep your network as a run* after training on *Train 1000 epochs*: a training run that "
            "finishes is kept here by itself.", icon=":material/compare_arrows:")


def curves(runs: list) -> None:
    longest = max(r.epochs for r in runs)
    a, b = st.columns([1, 3], vertical_alignment="center")
    log_x = a.toggle("Logarithmic epoch axis", value=longest >= 200, key="compare_log_x",
                     help="Runs of 1000 epochs and of a few: a log axis shows the first epochs of each.")
    layers = max(r.curves["update_ratio"].shape[1] for r in runs)
    layer = b.segmented_control("Update ratio of layer", list(range(1, layers + 1)), default=1, required=True,
                                format_func=lambda l: f"W{l}", key="compare_layer")
    left, right = st.columns(2)
    chart(left, cp.loss_figure(runs, log_x=log_x), key="compare_loss")
    chart(right, cp.accuracy_figure(runs, log_x=log_x), key="compare_acc")
    chart(st, cp.ratio_figure(runs, layer, log_x=log_x), key="compare_ratio")
    prose_caption("Every line is one run, in the same colour in the three charts. The update-to-weight ratio "
                  "‖ΔW‖/‖W‖ says what fraction of a layer one step rewrites: near 10⁻³ the learning rate is sane.")


def table(ws) -> None:
    import pandas as pd
    runs = list(ws.runs)
    frame = pd.DataFrame(ws.runs.table())
    best = ws.runs.best()
    row_of = {r.id: i for i, r in enumerate(runs)}

    def mark(col):
        i = row_of.get(best.get(col.name), -1)
        return [BEST if j == i else "" for j in range(len(col))]

    # one format call: in pandas 3 a second one puts the columns it does not name back to the default
    shown = {c: (lambda v: "—" if pd.isna(v) else f"{v:.2%}") for c in PERCENT} | {"Time (s)": duration}
    styled = frame.style.apply(mark, subset=[c for c in PERCENT if c in best]).format(shown)
    st.dataframe(styled, hide_index=True, width="stretch", key="compare_table")
    diff = ws.runs.differences()
    prose_caption(("Settings that differ between the runs: " + ", ".join(FIELDS[n].heading for n in diff) + ". " if diff else
                   "The runs have the same settings. ")
                  + "The best accuracy of each column is highlighted. Test accuracy is on the 10,000 MNIST test "
                    "images, which no run trains or chooses anything on.")
    a, b = st.columns(2)
    a.download_button("Download the table (.csv)", data=ws.runs.table_csv(), file_name="runs.csv", mime="text/csv",
                      icon=":material/table:", on_click="ignore", key="compare_csv_table", width="stretch")
    b.download_button("Download the curves (.csv)", data=ws.runs.curves_csv(), file_name="runs-curves.csv",
                      mime="text/csv", icon=":material/show_chart:", on_click="ignore", key="compare_csv_curves",
                      width="stretch")


def manage(ws) -> None:
    """Each run: its name (type to rename), where it came from, Open and Remove."""
    for run in ws.runs:
        with st.container(border=True):
            a, b, c, d = st.columns([2.2, 3, 1, 1], vertical_alignment="bottom")
            name = a.text_input("Name", value=run.name, max_chars=60, key=f"compare_name_{run.id}_{run.name}")
            # only a real change reruns: "a name " is cleaned back to "a name", the same widget, the same text
            if name.strip() and clean_name(name) != run.name:
                ws.runs.rename(run.id, name)
                st.rerun()
            b.caption(f"From {run.origin} · {run.epochs:,} epochs, {run.steps:,} steps · "
                      f"{run.nbytes / 2**20:.1f} MB")
            current = ws.is_kept and ws.kept[0] == run.id
            if c.button("Open", icon=":material/open_in_new:", key=f"compare_open_{run.id}", width="stretch",
                        disabled=current, help="It is your network now." if current else
                        "Make it your network: every page shows it, and training carries on from it."):
                replace_network(ws, run_choice(run.id))
            if d.button("Remove", icon=":material/delete:", key=f"compare_remove_{run.id}", width="stretch"):
                ws.runs.remove(run.id)
                st.rerun()
            confirm_replace(ws, run_choice(run.id), key="compare")
    gone = ws.runs.removed
    if gone is not None:
        a, b = st.columns([3, 1], vertical_alignment="center")
        a.info(f"Removed “{gone.name}”.", icon=":material/delete:")
        if b.button("Undo", icon=":material/undo:", key="compare_undo", width="stretch"):
            try:
                ws.runs.undo_remove()
            except RunsFull as err:
                session().runs_message = ("error", str(err))
            st.rerun()
    st.caption(f"{len(ws.runs)} of at most {ws.runs.max_runs} runs kept, {ws.runs.nbytes / 2**20:.1f} MB of "
               f"{ws.runs.max_bytes / 2**20:.0f} MB.")


def presets(ws) -> None:
    cols = st.columns(len(PRESETS))
    for col, p in zip(cols, PRESETS.values()):
        with col.container(border=True):
            st.markdown(f"**{p.label.capitalize()}**")
            st.caption(p.about)
            if st.button(f"Train it ({p.settings.epochs:,} epochs)", icon=":material/play_arrow:", type="primary",
                         key=f"compare_preset_{p.name}", width="stretch",
                         help="A new network with these settings starts training at once; its progress is on "
                              "Train 1000 epochs, and it is kept here when it finishes."):
                replace_network(ws, preset_choice(p.name))
            confirm_replace(ws, preset_choice(p.name), key="compare")


# --------------------------------------------------------------------------- the page
ws = workspace()
st.title("Compare runs")
prose("Networks trained with different settings, side by side: which learns faster, which ends better, and "
      "whether its learning rate was sane. A run is a network kept as it was, with its history; open one to "
      "make it your network again.")
messages(ws)
actions(ws)
runs = list(ws.runs)
if not runs:
    empty_state()
else:
    curves(runs)
    st.subheader("Settings and results")
    table(ws)
    st.subheader("The runs")
    manage(ws)
if not runs and ws.runs.removed is not None:
    manage(ws)            # the undo of the last run removed
st.subheader("Start a run from a preset")
prose_caption("One click: a new network with the preset's settings trains in the background (Train 1000 epochs "
              "shows its progress); when it finishes it appears here.")
presets(ws)
