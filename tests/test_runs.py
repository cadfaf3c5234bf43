"""Runs kept side by side (core/lab/runs.py, Workspace.keep_run/reopen, the store's runs table).

A session keeps at most MAX_RUNS runs and MAX_BYTES of them and says so when full, never dropping
one; the settings that differ are read from FIELDS; a run reopens as the network it was; renaming,
removing and undoing work; the store reads back the runs it writes and leaves out a bad one alone."""
from __future__ import annotations

import io
import json
import sqlite3
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from core.lab import checkpoint
from core.lab.runs import CURVES, MAX_NAME, Run, Runs, RunsFull, check_curves, describe
from core.lab.settings import FIELDS, PRESETS, Field, Settings
from core.lab.store import LabCopy, LabStore, key_of, new_token
from core.lab.workspace import FILE, SEED, Workspace

SMALL = Settings(pool=600, val=100, batch_size=50, epochs=2)          # 10 steps per epoch


def trained(mnist, steps=20, **kw) -> Workspace:
    ws = Workspace(replace(SMALL, **kw), mnist["train"], mnist["test"])
    for _ in range(steps):
        ws.step()
    return ws


def fake_run(i: int, nbytes: int = 1000, settings: Settings = SMALL, name: str | None = None) -> Run:
    curves = {k: np.zeros((0, 3) if k == "update_ratio" else 0) for k in CURVES}
    return Run(i, name or f"run {i}", settings, b"x" * nbytes, curves, None, 0.0, "a test")


# --------------------------------------------------------------------------- bounds
def test_at_most_max_runs_and_the_full_collection_says_what_to_do():
    runs = Runs(max_runs=3)
    for i in range(1, 4):
        runs.add(fake_run(i))
    with pytest.raises(RunsFull, match="remove one"):
        runs.add(fake_run(4))
    assert [r.id for r in runs] == [1, 2, 3]           # nothing was dropped to make room


def test_at_most_max_bytes_and_the_message_gives_the_sizes():
    runs = Runs(max_bytes=3 * 2**20)
    runs.add(fake_run(1, 2 * 2**20))
    with pytest.raises(RunsFull, match=r"takes 1\.5 MB .* 2\.0 MB, over the 3 MB"):
        runs.add(fake_run(2, int(1.5 * 2**20)))
    runs.add(fake_run(3, 2**19))                        # a smaller one still fits
    assert [r.id for r in runs] == [1, 3] and runs.nbytes <= 3 * 2**20


def test_names_are_one_line_short_and_unique():
    runs = Runs()
    a = runs.add(fake_run(1, name="  the\nseed  "))
    b = runs.add(fake_run(2, name="the seed"))
    c = runs.add(fake_run(3, name="x" * 200))
    assert (a.name, b.name) == ("the seed", "the seed (2)") and len(c.name) == MAX_NAME
    assert runs.rename(2, "the seed").name == "the seed (2)"     # still taken by run 1
    assert runs.rename(1, "").name == "a run"


# --------------------------------------------------------------------------- differences
def test_differences_read_fields_in_order_and_a_new_field_shows_up(monkeypatch):
    runs = Runs()
    runs.add(fake_run(1, settings=SMALL))
    runs.add(fake_run(2, settings=replace(SMALL, lr=0.05, hidden=(32,))))
    runs.add(fake_run(3, settings=SMALL))
    assert runs.differences() == ["hidden", "lr"]
    row = runs.table()[1]
    assert row["Hidden"] == "32" and row["η"] == "0.05" and FIELDS["lr"].heading == "η"
    # a setting added to FIELDS (as batchnorm will be) is compared without a change here
    monkeypatch.setitem(FIELDS, "extra", Field("extra", "An extra setting", 0, 1))
    monkeypatch.setattr(Settings, "extra", 0, raising=False)
    a, b = replace(SMALL), replace(SMALL)
    object.__setattr__(b, "extra", 1)
    two = Runs([fake_run(1, settings=a), fake_run(2, settings=b)])
    assert two.differences() == ["extra"] and two.table()[1]["An extra setting"] == "1"


def test_a_run_is_named_after_its_preset_or_what_differs_from_the_seed():
    assert describe(PRESETS["seed-improved"].settings) == PRESETS["seed-improved"].label
    assert describe(replace(Settings(), epochs=3)) == PRESETS["seed"].label
    assert describe(replace(Settings(), lr=0.05, optimizer="adam")) == "Optimizer adam, η 0.05"
    assert describe(replace(Settings(), batchnorm=True)) == "Batch norm on"      # words, not the link's "1"
    two = Runs([fake_run(1, settings=SMALL), fake_run(2, settings=replace(SMALL, batchnorm=True))])
    assert [r["Batch norm"] for r in two.table()] == ["off", "on"]


# --------------------------------------------------------------------------- keep, reopen, rename, remove, undo
def test_keep_then_reopen_gives_the_network_back_as_it_was(mnist):
    ws = trained(mnist, steps=23, lr=0.05)
    params, history = ws.net.params, ws.history.to_arrays()
    run = ws.keep_run()
    assert run.name == "η 0.05, Batch 50, Pool 600 …, 2 epochs" and run.steps == 23 and run.epochs == 2
    assert run.test_acc is not None and 0.1 < run.test_acc < 1 and run.made == SEED
    assert run.best_val_acc == max(ws.history.columns()["val_acc"])
    assert not ws.would_lose_work                      # it is kept: replacing it loses nothing
    for _ in range(5):
        ws.step()
    assert ws.would_lose_work and ws.trainer.global_step == 28
    ws.reopen(run.id, mnist["train"], mnist["test"])
    assert ws.trainer.global_step == 23 and ws.settings == run.settings and ws.made == SEED
    assert all(np.array_equal(ws.net.params[k], params[k]) for k in params)
    assert all(np.array_equal(ws.history.to_arrays()[k], history[k], equal_nan=True) for k in history)
    assert not ws.would_lose_work and run.name in ws.origin
    ws.step()                                          # trains on from where the run was; the run stays as kept
    assert ws.would_lose_work and ws.runs.get(run.id).steps == 23


def test_remove_and_undo_and_the_current_network_is_no_longer_kept(mnist):
    ws = trained(mnist, steps=3)
    a = ws.keep_run("a")
    ws.step()
    b = ws.keep_run("b")
    ws.runs.remove(a.id)
    assert [r.name for r in ws.runs] == ["b"] and ws.runs.removed.name == "a"
    ws.runs.undo_remove()
    assert [r.name for r in ws.runs] == ["a", "b"] and ws.runs.removed is None
    ws.runs.remove(b.id)
    assert ws.would_lose_work                          # the network kept as b is no longer kept
    ws.runs.rename(a.id, "first")
    assert ws.runs.get(a.id).name == "first"


def test_a_finished_run_is_kept_once_and_a_full_collection_says_so(mnist):
    from core.lab.run.controller import DONE
    ws = trained(mnist, steps=3)
    assert ws.keep_finished_run() is None              # no run has finished
    ws.runner.started_from, ws.runner.status = ws.trainer.point(), DONE   # as a finished run leaves it
    run = ws.keep_finished_run()
    assert run is not None and len(ws.runs) == 1
    assert ws.keep_finished_run() is None and len(ws.runs) == 1
    ws.runs.max_runs = 1
    ws.step()                                           # another run finished on another network: no room
    assert ws.keep_finished_run() is None and "not kept" in ws.runs_note and len(ws.runs) == 1


def test_keeping_refuses_during_a_run(mnist):
    ws = trained(mnist, steps=1)
    ws.runner.status = "running"
    with pytest.raises(RuntimeError, match="pause it"):
        ws.keep_run()


def test_csv_of_the_table_and_of_the_curves_read_back(mnist):
    ws = trained(mnist, steps=25)
    ws.keep_run("seed-ish")
    other = trained(mnist, steps=12, hidden=(16, 16, 16))
    ws.runs.add(replace(other.keep_run("deeper"), id=ws.runs.new_id()))
    table = pd.read_csv(io.StringIO(ws.runs.table_csv()))
    assert list(table["Run"]) == ["seed-ish", "deeper"] and list(table["Hidden"]) == ["64,64", "16,16,16"]
    assert list(table["Epochs trained"]) == [2, 1]
    assert table["Test acc"].between(0, 1).all()
    curves = pd.read_csv(io.StringIO(ws.runs.curves_csv()))
    assert list(curves.columns[-4:]) == [f"update_ratio_{l}" for l in range(1, 5)]
    seed = curves[curves["run"] == "seed-ish"]
    assert list(seed["epoch"]) == [1, 2] and seed["update_ratio_4"].isna().all()   # 3 layers, not 4
    assert np.allclose(seed["val_acc"], ws.runs.get(1).curves["val_acc"])


def test_curves_are_checked_against_the_history_schema(mnist):
    ws = trained(mnist, steps=10)
    good = ws.keep_run().curves
    assert check_curves(good, 3)["epoch"].tolist() == [1]
    with pytest.raises(ValueError):
        check_curves({**good, "epoch": np.array([2])}, 3)
    with pytest.raises(ValueError):
        check_curves({**good, "update_ratio": np.zeros((1, 2))}, 3)
    with pytest.raises(ValueError):
        check_curves({k: v for k, v in good.items() if k != "val_acc"}, 3)


# --------------------------------------------------------------------------- the store
def test_runs_survive_the_store_and_are_written_once(mnist, tmp_path):
    ws = trained(mnist, steps=12)
    ws.keep_run("first")
    ws.step()
    ws.keep_run("second")
    ws.runs.rename(1, "renamed")
    key = key_of(new_token())
    store = LabStore(tmp_path)
    store.save(key, LabCopy.of(ws))
    back = LabStore(tmp_path).load(key)
    assert not back.notes
    got = back.workspace(mnist["train"], mnist["test"])
    assert [(r.id, r.name, r.steps, r.made) for r in got.runs] == [(1, "renamed", 12, SEED), (2, "second", 13, SEED)]
    for a, b in zip(ws.runs, got.runs):
        assert a.blob == b.blob and a.settings == b.settings and a.test_acc == b.test_acc
        assert all(np.array_equal(a.curves[k], b.curves[k], equal_nan=True) for k in CURVES)
    assert got.runs.new_id() == 3                       # ids are never reused
    got.reopen(2, mnist["train"], mnist["test"])
    assert got.trainer.global_step == 13

    ws.runs.remove(1)                                   # removed: its row goes; the other is not rewritten
    with sqlite3.connect(store.path) as db:
        # INSERT OR REPLACE is a delete and an insert: guard the insert (an UPDATE trigger never fires)
        db.execute("CREATE TRIGGER no_rewrite BEFORE INSERT ON runs BEGIN SELECT RAISE(ABORT, 'rewritten'); END")
    store.save(key, LabCopy.of(ws))
    with sqlite3.connect(store.path) as db:
        assert [i for (i,) in db.execute("SELECT id FROM runs WHERE key = ?", (key,))] == [2]
    assert [r.name for r in store.load(key).runs] == ["second"]
    with sqlite3.connect(store.path) as db:
        db.execute("DROP TRIGGER no_rewrite")
    store.forget(key)
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_a_bad_run_row_is_left_out_with_a_note_and_the_lab_opens(mnist, tmp_path):
    ws = trained(mnist, steps=12)
    for name in ("good", "damaged", "bad record", "bad settings"):
        ws.keep_run(name)
        ws.step()
    key = key_of(new_token())
    store = LabStore(tmp_path)
    store.save(key, LabCopy.of(ws))
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE runs SET blob = ? WHERE key = ? AND id = 2", (b"PK\x03\x04 not a zip", key))
        (text,) = db.execute("SELECT record FROM labs WHERE key = ?", (key,)).fetchone()
        record = json.loads(text)
        record["runs"][2]["made_at"] = 10**9                       # after the run's last step
        record["runs"][3]["settings"]["lr"] = -1.0
        db.execute("UPDATE labs SET record = ? WHERE key = ?", (json.dumps(record), key))
    back = store.load(key)
    assert [r.name for r in back.runs] == ["good"]
    assert len(back.notes) == 3 and "“damaged” could not be reopened: its network is damaged" in back.notes[0]
    assert "not one the app writes" in back.notes[1] and "Learning rate" in back.notes[2]
    assert back.workspace(mnist["train"], mnist["test"]).trainer.global_step == 16   # the lab itself opens


def test_a_lab_kept_before_runs_existed_opens_with_none(mnist, tmp_path):
    ws = trained(mnist, steps=3)
    key = key_of(new_token())
    store = LabStore(tmp_path)
    store.save(key, LabCopy.of(ws))
    with sqlite3.connect(store.path) as db:
        (text,) = db.execute("SELECT record FROM labs WHERE key = ?", (key,)).fetchone()
        record = {k: v for k, v in json.loads(text).items() if k not in ("runs", "next_run")}
        db.execute("UPDATE labs SET record = ? WHERE key = ?", (json.dumps(record), key))
    back = store.load(key)
    assert len(back.runs) == 0 and not back.notes


def test_a_run_blob_is_a_checkpoint_never_unpickled(mnist):
    ws = trained(mnist, steps=3)
    run = ws.keep_run()
    ck = checkpoint.load(io.BytesIO(run.blob))
    assert ck.trainer_state["global_step"] == 3 and ck.meta["test_acc"] == run.test_acc
    with pytest.raises(checkpoint.CheckpointError):
        replace(run, blob=b"\x80\x04pickle").checkpoint()


def test_the_same_network_is_not_kept_twice(mnist):
    ws = trained(mnist, steps=2)
    run = ws.keep_run()
    with pytest.raises(ValueError, match=f"kept already, as the run “{run.name}”"):
        ws.keep_run()
    ws.step()
    assert ws.keep_run().steps == 3 and len(ws.runs) == 2


def test_a_new_lab_under_the_same_key_keeps_its_own_run_not_the_old_row(mnist, tmp_path):
    """A lab that could not be reopened starts again under the browser's key with run ids from 1: its
    run 1 is written over the old row 1, and a row that is not the record's network is never opened."""
    store, key = LabStore(tmp_path), key_of(new_token())
    old = trained(mnist, steps=12)
    old.keep_run("old")
    store.save(key, LabCopy.of(old))
    new = trained(mnist, steps=3)
    new.keep_run("new")
    assert [r.id for r in new.runs] == [1] and new.runs.get(1).blob != old.runs.get(1).blob
    store.save(key, LabCopy.of(new))
    back = store.load(key)
    assert not back.notes and [r.blob for r in back.runs] == [new.runs.get(1).blob]
    with sqlite3.connect(store.path) as db:          # a row that is not the network its record names
        db.execute("UPDATE runs SET blob = ? WHERE key = ? AND id = 1", (old.runs.get(1).blob, key))
    back = store.load(key)
    assert not list(back.runs) and any("not the one that was kept" in n for n in back.notes)


def test_a_store_whose_runs_table_predates_the_digest_is_upgraded_and_its_runs_open(mnist, tmp_path):
    """A folder written before run rows carried a digest: the store adds the column, the old runs
    (records without a digest) open, and the next save writes their digest."""
    ws = trained(mnist, steps=3)
    ws.keep_run("old")
    key = key_of(new_token())
    store = LabStore(tmp_path)
    store.save(key, LabCopy.of(ws))
    with sqlite3.connect(store.path) as db:           # as the store was: no digest, records without one
        db.execute("ALTER TABLE runs DROP COLUMN digest")
        (text,) = db.execute("SELECT record FROM labs WHERE key = ?", (key,)).fetchone()
        record = json.loads(text)
        del record["runs"][0]["digest"]
        db.execute("UPDATE labs SET record = ? WHERE key = ?", (json.dumps(record), key))
    again = LabStore(tmp_path)
    back = again.load(key)
    assert not back.notes and [r.name for r in back.runs] == ["old"]
    again.save(key, LabCopy.of(ws))
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT digest FROM runs WHERE key = ?", (key,)).fetchone()[0] == ws.runs.get(1).digest
