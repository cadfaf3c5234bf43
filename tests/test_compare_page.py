"""The Compare runs page (pages/compare.py) through AppTest: the empty state, the shipped networks
added, the table with the best highlighted, rename, remove and undo, reopen (asking first when the
current network would be lost), the CSVs, and a preset's run in one click."""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import ui.session
from core.lab.workspace import SEED, SHIPPED
from ui.state import session

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
SMALL = {"pool": "600", "val": "100", "batch_size": "50", "epochs": "2"}
needs_shipped = pytest.mark.skipif(not (ui.session.PRETRAINED.exists() and ui.session.IMPROVED.exists()),
                                   reason="the shipped networks are not in data/")


def open_compare(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    for k, v in {**SMALL, **(query or {})}.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("pages/compare.py")
    return at.run()


def text_of(at) -> str:
    return " ".join(e.value for kind in ("markdown", "caption", "info", "warning", "success", "error")
                    for e in getattr(at, kind))


def ws_of(at):
    return session(at.session_state).ws


def test_the_empty_page_says_what_to_do_and_offers_the_presets():
    at = open_compare()
    assert not at.exception
    assert any("No runs to compare yet" in i.value and "Add the shipped networks" in i.value for i in at.info)
    assert not at.get("plotly_chart") and not at.dataframe
    assert at.button(key="compare_preset_seed").label == "Train it (1,000 epochs)"
    assert at.button(key="compare_preset_seed-improved").label == "Train it (150 epochs)"


@needs_shipped
def test_the_shipped_networks_side_by_side_with_the_best_highlighted():
    at = open_compare()
    at.button(key="compare_shipped").click().run()
    assert not at.exception and not at.error
    ws = ws_of(at)
    assert [r.name for r in ws.runs] == ["the seed, shipped", "the seed, improved, shipped"]
    assert at.button(key="compare_shipped").disabled                 # both are there: nothing to add
    assert len(at.get("plotly_chart")) == 3                           # loss, validation accuracy, update ratio
    table = at.dataframe[0].value
    assert list(table["Run"]) == ["the seed, shipped", "the seed, improved, shipped"]
    # the settings that differ, and only those, by their short headings
    assert {"Shift (px)", "Rotate (°)", "Pool", "Epochs"} <= set(table.columns) and "η" not in table.columns
    assert list(table["Test acc"]) == [0.9729, 0.9843] and list(table["Epochs trained"]) == [1000, 150]
    assert ws.runs.best() == {"Best val acc": 2, "Final val acc": 2, "Test acc": 2}   # the improved one
    assert "Settings that differ between the runs: Shift (px), Rotate (°), Pool, Epochs" in text_of(at)
    # the CSV the download button serves is the table, read back
    csv = pd.read_csv(io.StringIO(ws.runs.table_csv()))
    assert list(csv["Run"]) == list(table["Run"]) and list(csv["Test acc"]) == [0.9729, 0.9843]
    curves = pd.read_csv(io.StringIO(ws.runs.curves_csv()))
    assert len(curves) == 1150 and set(curves["run"]) == set(table["Run"])
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download the table (.csv)", "Download the curves (.csv)"]


@needs_shipped
def test_rename_remove_and_undo():
    at = open_compare()
    at.button(key="compare_shipped").click().run()
    ws = ws_of(at)
    # a name that only differs in spaces is the same name: the page settles (it once reran for ever)
    at.text_input(key="compare_name_1_the seed, shipped").set_value("the  seed, shipped ").run(timeout=20)
    assert ws.runs.get(1).name == "the seed, shipped" and not at.exception
    at.text_input(key="compare_name_1_the seed, shipped").set_value("Seed, 1000 epochs").run()
    assert ws.runs.get(1).name == "Seed, 1000 epochs"
    assert list(at.dataframe[0].value["Run"]) == ["Seed, 1000 epochs", "the seed, improved, shipped"]
    at.button(key="compare_remove_1").click().run()
    assert [r.id for r in ws.runs] == [2] and any("Removed “Seed, 1000 epochs”" in i.value for i in at.info)
    assert list(at.dataframe[0].value["Run"]) == ["the seed, improved, shipped"]
    at.button(key="compare_undo").click().run()
    assert [r.id for r in ws.runs] == [1, 2] and not at.exception
    at.button(key="compare_remove_1").click().run()
    at.button(key="compare_remove_2").click().run()                   # the last one: the empty state and an undo
    assert any("No runs to compare yet" in i.value for i in at.info)
    at.button(key="compare_undo").click().run()
    assert [r.id for r in ws.runs] == [2] and len(at.dataframe) == 1      # the last one removed


@needs_shipped
def test_reopen_asks_before_replacing_work_and_keeping_it_first_does_not():
    at = open_compare()
    at.button(key="compare_shipped").click().run()
    ws = ws_of(at)
    ws.step()                                                           # the student's own step: work to lose
    at.run()
    at.button(key="compare_open_2").click().run()
    assert ws.trainer.global_step == 1
    assert any("Opening **the run “the seed, improved, shipped”** replaces the current one" in w.value
               for w in at.warning)
    at.button(key="compare_keep_run_2").click().run()
    assert ws.trainer.global_step == 1 and not at.warning
    at.button(key="compare_keep").click().run()                         # keep it as a run: nothing to lose now
    assert [r.name for r in ws.runs][-1].endswith("0 epochs") and ws.is_kept
    assert at.button(key="compare_keep").disabled
    at.button(key="compare_open_2").click().run()
    assert not at.warning and ws.trainer.epoch == 150 and ws.settings.shift == 2 and ws.made != SHIPPED
    assert any("is now your network" in s.value for s in at.success)
    assert at.button(key="compare_open_2").disabled                     # it is the current network
    at.button(key="compare_open_1").click().run()                       # the pretrained one, as shipped
    assert ws.made == SHIPPED and ws.trainer.epoch == 1000 and not at.warning
    at.button(key="compare_open_3").click().run()                       # back to the student's step
    assert ws.trainer.global_step == 1 and ws.made == SEED and not at.exception


def test_a_preset_starts_a_training_run_in_one_click():
    at = open_compare()
    at.button(key="compare_preset_seed-improved").click().run()
    ws = ws_of(at)
    try:
        assert ws.settings.shift == 2 and ws.settings.pool == 60_000 and ws.runner.target_epochs == 150
        assert ws.runner.status in ("queued", "running", "done") and not at.exception
        assert at.title[0].value == "Train 1000 epochs"                  # where a run shows its progress
    finally:
        ws.runner.stop()
        ws.runner.join(30)
    assert not ws.busy


@needs_shipped
def test_the_runs_survive_a_reload_and_a_link_that_replaces_the_network():
    """The runs are the session's: a reload reopens them with the lab, and a link whose settings make
    another network (the reopened one untrained, so it is replaced without asking) keeps them too."""
    from core.lab.store import Keeper
    from ui.session import lab_writer, live_labs
    from ui.state import STATE_KEY, Session

    first = open_compare()
    first.button(key="compare_shipped").click().run()
    token = session(first.session_state).lab.token
    assert lab_writer().flush(timeout=60)
    live_labs.clear()                                          # the server forgets its sessions: the store only
    again = AppTest.from_file(APP, default_timeout=180)
    again.session_state[STATE_KEY] = Session(lab=Keeper(token=token))
    for k, v in {**SMALL, "hidden": "32"}.items():             # a link to another network
        again.query_params[k] = v
    again.run()
    ws = ws_of(again)
    assert ws.net.sizes == [784, 32, 10] and not again.exception
    assert [r.name for r in ws.runs] == ["the seed, shipped", "the seed, improved, shipped"]


def test_an_untrained_network_is_not_offered_for_keeping():
    at = open_compare()
    assert at.button(key="compare_keep").disabled
    at.switch_page("pages/training.py").run()             # the training page's button agrees
    assert at.button(key="training_keep_run").disabled
    ws_of(at).step()
    at.run()
    assert not at.button(key="training_keep_run").disabled
    at.switch_page("pages/compare.py").run()
    assert not at.button(key="compare_keep").disabled
