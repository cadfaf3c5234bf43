"""Labs kept across reloads and restarts (core/lab/store.py, ui/token.py, ui/session.py).

The store reads back whatever it writes, one token never opens another's lab, labs expire
and the oldest go first past the size limit, writes happen in the writer's thread, and
the app reopens a browser's lab (from the store, or the live workspace while a run trains)."""
from __future__ import annotations

import gc
import hashlib
import io
import json
import sqlite3
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.data.mnist import Digits, load_mnist
from core.lab import checkpoint
from core.lab.settings import Settings
from core.lab.store import (MAX_AGE, Keeper, LabCopy, LabStore, LiveLabs, StoreError, Writer, key_of, new_token,
                            valid_token)
from core.lab.workspace import FILE, SEED, SHIPPED, Workspace
from ui.state import STATE_KEY, Session, session

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
SMALL = Settings(pool=600, val=100, batch_size=50, epochs=2)          # 10 steps per epoch
SMALL_QUERY = {"pool": "600", "val": "100", "batch_size": "50", "epochs": "2"}


def lab(mnist, settings=SMALL, steps=13) -> Workspace:
    """A workspace with an epoch and a bit behind it, momentum in its optimizer, and steps
    of every kind (the next batch, chosen images, a drawn digit)."""
    ws = Workspace(replace(settings, optimizer="momentum"), mnist["train"], mnist["test"])
    for _ in range(steps):
        ws.step()
    ws.step(ws.split.train_idx[[3, 1, 4, 1, 5]], "chosen")
    ws.step(how="drawn", images=(mnist["test"].X[:1], mnist["test"].y[:1]))
    ws.error = "the last words"
    return ws


def arrays_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)


class Clock:
    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


# --------------------------------------------------------------------------- the store
def test_what_is_written_is_read_back_by_a_new_store_on_the_same_folder(mnist, tmp_path):
    ws = lab(mnist)
    key = key_of(new_token())
    LabStore(tmp_path).save(key, LabCopy.of(ws))
    saved = LabStore(tmp_path).load(key)          # a restart: another store object, the same file
    back = saved.workspace(mnist["train"], mnist["test"])

    assert back is not ws and back.settings == ws.settings and back.origin == ws.origin
    assert back.source_label == ws.source_label and back.error == "the last words"
    tr, tb = ws.trainer, back.trainer
    assert tb.state() == tr.state() and tb.epoch == 1 and tb.step_in_epoch == 5
    assert arrays_equal(tb.net.params, tr.net.params) and tb.net.config == tr.net.config
    assert tb.optimizer.hyper == tr.optimizer.hyper and arrays_equal(tb.optimizer.state(), tr.optimizer.state())
    assert arrays_equal(tb.history.to_arrays(), tr.history.to_arrays()) and len(tb.history) == 1
    assert tb.snapshots.keys() == tr.snapshots.keys() == {0, 1}
    assert all(arrays_equal(tb.snapshots[e], tr.snapshots[e]) for e in tr.snapshots)
    assert [(r.number, r.epoch, r.step_in_epoch, r.how) for r in back.steps] == \
        [(r.number, r.epoch, r.step_in_epoch, r.how) for r in ws.steps]
    for a, b in zip(ws.steps, back.steps):
        assert np.array_equal(a.idx, b.idx) and arrays_equal(a.params_before, b.params_before)
        assert arrays_equal(a.optimizer_before.state(), b.optimizer_before.state())
        assert (a.images is None) == (b.images is None)
    assert np.array_equal(back.steps[-1].images[0], mnist["test"].X[:1])
    # the latest step's trace is recomputed by the same engine, number for number
    recomputed = back.trace_of(back.steps[-1])
    assert all(np.array_equal(v, recomputed.values[k]) for k, v in ws.current.values.items()
               if isinstance(v, np.ndarray))
    # and training on from the reopened lab is training on from the original
    ws.step(), back.step()
    assert arrays_equal(ws.net.params, back.net.params)


def test_how_the_network_was_made_is_kept_and_a_lab_kept_without_it_counts_as_a_file(mnist, tmp_path):
    store, key = LabStore(tmp_path), key_of(new_token())
    fresh = Workspace(SMALL, mnist["train"], mnist["test"])
    store.save(key, LabCopy.of(fresh))
    back = store.load(key).workspace(mnist["train"], mnist["test"])
    assert (back.made, back.made_at) == (SEED, 0) and back.fresh_from_seed
    ws = lab(mnist)
    ck = checkpoint.load(checkpoint.to_bytes(ws.net, ws.optimizer, ws.trainer))
    ws.open_checkpoint(ck, ws.settings, mnist["train"], mnist["test"], origin="shipped", made=SHIPPED)
    made_at = ws.trainer.global_step
    ws.step()
    store.save(key, LabCopy.of(ws))
    back = store.load(key).workspace(mnist["train"], mnist["test"])
    assert (back.made, back.made_at) == (SHIPPED, made_at) and back.would_lose_work
    # a lab kept before the record said how it was made: a file, opened where it is now
    with sqlite3.connect(store.path) as db:
        record = json.loads(db.execute("SELECT record FROM labs WHERE key = ?", (key,)).fetchone()[0])
        del record["made"], record["made_at"]
        db.execute("UPDATE labs SET record = ? WHERE key = ?", (json.dumps(record), key))
    back = store.load(key).workspace(mnist["train"], mnist["test"])
    assert (back.made, back.made_at) == (FILE, ws.trainer.global_step) and back.would_lose_work
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE labs SET record = ? WHERE key = ?", (json.dumps({**record, "made": "magic", "made_at": 0}), key))
    with pytest.raises(StoreError, match="how the network was made"):
        store.load(key)


def test_a_lab_kept_before_a_setting_existed_opens_with_its_default_and_an_unknown_one_is_refused(mnist, tmp_path):
    """Batch norm came after labs were kept: such a lab's settings lack it and open with it off."""
    store, key = LabStore(tmp_path), key_of(new_token())
    ws = lab(mnist)
    ws.step()
    store.save(key, LabCopy.of(ws))
    with sqlite3.connect(store.path) as db:
        record = json.loads(db.execute("SELECT record FROM labs WHERE key = ?", (key,)).fetchone()[0])
        del record["settings"]["batchnorm"]
        db.execute("UPDATE labs SET record = ? WHERE key = ?", (json.dumps(record), key))
    back = store.load(key).workspace(mnist["train"], mnist["test"])
    assert back.settings == ws.settings and back.settings.batchnorm is False
    with sqlite3.connect(store.path) as db:
        record["settings"]["magic"] = 1
        db.execute("UPDATE labs SET record = ? WHERE key = ?", (json.dumps(record), key))
    with pytest.raises(StoreError, match="not this app's settings"):
        store.load(key)


def test_only_the_last_steps_are_kept_and_another_trainer_replaces_them(mnist, tmp_path):
    store, key = LabStore(tmp_path), key_of(new_token())
    ws = lab(mnist, steps=60)                                   # the workspace keeps the last 50
    store.save(key, LabCopy.of(ws))
    assert [r.number for r in store.load(key).steps] == [r.number for r in ws.steps] == list(range(13, 63))
    # another network, whose steps carry the same numbers: its own steps come back, not the old ones
    other = lab(mnist, replace(SMALL, hidden=(32,)), steps=3)
    store.save(key, LabCopy.of(other))
    back = store.load(key)
    assert [r.number for r in back.steps] == [1, 2, 3, 4, 5]
    assert all(arrays_equal(a.params_before, b.params_before) for a, b in zip(other.steps, back.steps))
    with sqlite3.connect(tmp_path / LabStore.FILE) as db:
        assert db.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 5


def test_each_step_is_written_once(mnist, tmp_path, monkeypatch):
    from core.lab import store as store_module
    encoded = []
    real = store_module._encode_step
    monkeypatch.setattr(store_module, "_encode_step", lambda net, r: encoded.append(r.number) or real(net, r))
    store, key = LabStore(tmp_path), key_of(new_token())
    ws = lab(mnist, steps=3)
    store.save(key, LabCopy.of(ws))
    ws.step()
    store.save(key, LabCopy.of(ws))
    assert encoded == [1, 2, 3, 4, 5, 6]


def test_an_upload_is_kept_with_the_network_that_trains_on_it(mnist, tmp_path):
    up = Digits(mnist["train"].X[:700].copy(), mnist["train"].y[:700].copy(), "my train.csv")
    ws = Workspace(replace(SMALL, dataset="upload"), up, None, source_label=up.name)
    ws.step()
    store, key = LabStore(tmp_path), key_of(new_token())
    store.save(key, LabCopy.of(ws))
    ws.step()
    store.save(key, LabCopy.of(ws, images=False))        # later copies leave the images as they are
    saved = store.load(key)
    assert saved.images is not None and saved.images.name == "my train.csv"
    assert np.array_equal(saved.images.X, up.X) and np.array_equal(saved.images.y, up.y)
    back = saved.workspace(saved.images)
    assert back.trainer.global_step == 2 and np.array_equal(back.split.train_idx, ws.split.train_idx)
    # back on MNIST: the images are not kept any more
    store.save(key, LabCopy.of(lab(mnist, steps=1)))
    assert store.load(key).images is None
    with sqlite3.connect(tmp_path / LabStore.FILE) as db:
        assert db.execute("SELECT images FROM labs").fetchone()[0] is None


def test_another_token_sees_nothing_and_no_token_is_stored(mnist, tmp_path):
    mine, theirs = new_token(), new_token()
    store = LabStore(tmp_path)
    store.save(key_of(mine), LabCopy.of(lab(mnist, steps=1)))
    assert store.load(key_of(theirs)) is None
    assert store.keys() == [hashlib.sha256(mine.encode()).hexdigest()]
    written = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert mine.encode() not in written and store.load(key_of(mine)) is not None


def test_tokens_are_random_urlsafe_and_at_least_128_bits():
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100 and all(valid_token(t) and len(t) >= 32 for t in tokens)   # 32 × 6 bits = 192
    for bad in ("", "short", "x" * 31, "a" * 40 + "/", None, "a b" * 20):
        assert not valid_token(bad)
    with pytest.raises(ValueError):
        key_of("not a token")


def test_labs_expire_seven_days_after_their_last_use(mnist, tmp_path):
    clock = Clock()
    store, key, other = LabStore(tmp_path, clock=clock), key_of(new_token()), key_of(new_token())
    store.save(key, LabCopy.of(lab(mnist, steps=1)))
    clock.t += MAX_AGE - 3600
    assert store.load(key) is not None                # opened: its seven days start again
    clock.t += MAX_AGE - 3600
    assert store.load(key) is not None
    clock.t += MAX_AGE + 1
    assert store.load(key) is None
    store.save(other, LabCopy.of(lab(mnist, steps=1)))    # the next write clears it out
    assert store.keys() == [other]


def test_past_the_size_limit_the_least_recently_used_go_first(mnist, tmp_path):
    clock = Clock()
    probe = LabStore(tmp_path / "probe")
    probe.save("k", LabCopy.of(lab(mnist, steps=2)))
    one = probe.total_bytes()
    store = LabStore(tmp_path / "labs", max_bytes=int(2.5 * one), clock=clock)
    a, b, c = (key_of(new_token()) for _ in range(3))
    for key in (a, b):
        clock.t += 10
        store.save(key, LabCopy.of(lab(mnist, steps=2)))
    clock.t += 10
    assert store.load(a) is not None                  # a was used after b
    clock.t += 10
    store.save(c, LabCopy.of(lab(mnist, steps=2)))
    assert sorted(store.keys()) == sorted([a, c]) and store.total_bytes() <= 2.5 * one
    small = LabStore(tmp_path / "small", max_bytes=one // 2)
    small.save(a, LabCopy.of(lab(mnist, steps=2)))    # larger than the whole limit: not kept
    assert small.keys() == []


def test_a_damaged_lab_says_so_and_is_never_unpickled(mnist, tmp_path):
    store, key = LabStore(tmp_path), key_of(new_token())
    store.save(key, LabCopy.of(lab(mnist, steps=2)))
    buf = io.BytesIO()
    np.save(buf, np.array([object()], dtype=object), allow_pickle=True)   # an object array: pickled
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as z:
        z.writestr("config.npy", buf.getvalue())
    with sqlite3.connect(tmp_path / LabStore.FILE) as db:
        db.execute("UPDATE steps SET blob = ? WHERE number = 1", (npz.getvalue(),))
    with pytest.raises(StoreError, match="pickled"):
        store.load(key)
    with sqlite3.connect(tmp_path / LabStore.FILE) as db:
        db.execute("UPDATE labs SET checkpoint = ?", (b"not a zip",))
    with pytest.raises(StoreError, match="damaged"):
        store.load(key)


# --------------------------------------------------------------------------- the writer and the live labs
class SlowStore:
    """Stands in for LabStore: each save waits for ``go``; records what was saved, and where."""

    def __init__(self):
        self.go = threading.Event()
        self.saved: list[tuple[str, LabCopy, str]] = []

    def save(self, key, copy):
        self.go.wait(30)
        self.saved.append((key, copy, threading.current_thread().name))


def test_the_writer_writes_in_its_own_thread_and_only_the_newest_copy(mnist):
    store = SlowStore()
    writer = Writer(store)
    ws = lab(mnist, steps=1)
    copies = []
    t0 = time.perf_counter()
    for _ in range(4):
        ws.step()
        copies.append(LabCopy.of(ws))
        writer.submit("k", copies[-1])
    submitted = time.perf_counter() - t0
    assert submitted < 5                          # nothing waited for the (blocked) store
    store.go.set()
    assert writer.flush(timeout=30)
    assert {name for _, _, name in store.saved} == {"lab-store-writer"}
    assert store.saved[-1][1] is copies[-1] and len(store.saved) <= 2   # the first, perhaps; then the newest
    writer.close()


def test_the_writer_writes_a_run_that_ended_with_nobody_watching(mnist, tmp_path):
    store, live = LabStore(tmp_path), LiveLabs()
    writer = Writer(store, live=live, sweep_every=0.2)
    key = key_of(new_token())
    ws = Workspace(SMALL, mnist["train"], mnist["test"])
    assert ws.runner.start(2)
    live.hold(key, ws)
    writer.submit(key, LabCopy.of(ws))            # the session's last copy: before the run
    del ws                                        # the tab is gone; the run goes on
    deadline = time.monotonic() + 120
    while True:
        saved = store.load(key) if store.keys() else None
        if saved is not None and saved.checkpoint.trainer_state["epoch"] == 2:
            break
        assert time.monotonic() < deadline, "the finished run was not written"
        time.sleep(0.2)
    assert saved.checkpoint.trainer_state["global_step"] == 20
    writer.close()


class FakeWorkspace:
    busy = False


def test_live_labs_hold_weakly_but_keep_a_training_run():
    live = LiveLabs()
    held, training = FakeWorkspace(), FakeWorkspace()
    training.busy = True
    live.hold("a", held)
    live.hold("b", training)
    assert live.find("a") is held and live.find("b") is training and live.find("c") is None
    del held, training
    gc.collect()
    assert live.find("a") is None                 # no session holds it: gone
    ws = live.find("b")
    assert ws is not None and live.finished() == []   # its run trains on, held by the server
    ws.busy = False
    assert live.finished() == [("b", ws)] and live.finished() == []
    del ws
    gc.collect()
    assert live.find("b") is None and len(live) == 0
    # another workspace replaces one that trained: the old one is let go
    old, new = FakeWorkspace(), FakeWorkspace()
    old.busy = True
    live.hold("k", old)
    live.hold("k", new)
    assert live.find("k") is new and live.finished() == []


def test_a_session_hands_over_only_what_changed(mnist):
    keeper = Keeper(token=new_token())
    ws = Workspace(SMALL, mnist["train"], mnist["test"])
    assert keeper.changed(ws) is not None and keeper.changed(ws) is None
    ws.step()
    copy = keeper.changed(ws)
    assert copy is not None and copy.trainer.global_step == 1 and copy.trainer is not ws.trainer
    assert keeper.changed(ws) is None
    ws.set_hyper(replace(ws.settings, lr=0.05))
    assert keeper.changed(ws).settings.lr == 0.05
    keeper.adopt(ws)                               # reopened as it is: nothing to write
    assert keeper.changed(ws) is None


def test_while_a_run_trains_a_copy_is_taken_at_most_every_minute_and_reads_back_whole(mnist, tmp_path):
    keeper, store = Keeper(token=new_token()), LabStore(tmp_path)
    ws = Workspace(replace(SMALL, epochs=5000), mnist["train"], mnist["test"])
    assert ws.runner.start(5000)
    try:
        first = keeper.changed(ws, now=1000.0)
        assert first is not None
        deadline = time.monotonic() + 120
        while ws.trainer.epoch < first.trainer.epoch + 2:       # the run moves on: the fingerprint changes
            assert time.monotonic() < deadline and ws.busy, "the run did not train"
            time.sleep(0.1)
        assert keeper.changed(ws, now=1030.0) is None            # but not a minute later yet
        later = keeper.changed(ws, now=1061.0)
        assert later is not None and later.trainer.epoch > first.trainer.epoch
        store.save(keeper.key, later)                            # taken between two reports: whole
        ck = store.load(keeper.key).checkpoint
        assert ck.trainer_state["epoch"] == len(ck.history) == later.trainer.epoch
        assert ck.history.n_steps == ck.trainer_state["global_step"]
    finally:
        ws.runner.stop()
        ws.runner.join(30)


# --------------------------------------------------------------------------- the app
def app(token: str | None = None, query: dict | None = None, page: str | None = None) -> AppTest:
    """A new browser session; ``token``: its browser sent this lab's cookie (AppTest cannot send
    cookies, so the session starts with the token the cookie would have given it)."""
    at = AppTest.from_file(APP, default_timeout=120)
    if token is not None:
        at.session_state[STATE_KEY] = Session(lab=Keeper(token=token))
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    assert not at.exception, at.exception
    return at


def written():
    """Everything handed to the app's writer is in the store; the server forgets its live labs
    (as when the sessions that held them are gone, or the server restarted)."""
    from ui.session import lab_writer, live_labs
    assert lab_writer().flush(timeout=60)
    live_labs.clear()


def sidebar_says(at) -> str:
    return " ".join(c.value for c in at.sidebar.caption)


def test_a_reload_reopens_the_lab_and_another_browser_gets_a_fresh_one():
    first = app(query=SMALL_QUERY, page="pages/stepper.py")
    for _ in range(3):
        [b for b in first.button if str(b.label).startswith("Step: train")][0].click().run()
    ws, token = session(first.session_state).ws, session(first.session_state).lab.token
    assert ws.trainer.global_step == 3 and valid_token(token)
    assert all(token not in str(v) for v in first.query_params.values())     # never in the address bar
    written()

    again = app(token, query=SMALL_QUERY)
    back = session(again.session_state).ws
    assert back is not ws and back.trainer.global_step == 3 and len(back.steps) == 3
    assert back.settings == ws.settings and arrays_equal(back.net.params, ws.net.params)
    assert "0 epochs, 3 steps" in sidebar_says(again)

    stranger = app(query=SMALL_QUERY)
    assert session(stranger.session_state).ws.trainer.global_step == 0
    assert session(stranger.session_state).lab.token != token
    assert "0 epochs, 0 steps" in sidebar_says(stranger)


def test_a_reload_reattaches_to_the_run_still_training():
    first = app(query={**SMALL_QUERY, "epochs": "3000"}, page="pages/training.py")
    [b for b in first.button if b.label == "Start training"][0].click().run()
    ws, token = session(first.session_state).ws, session(first.session_state).lab.token
    try:
        assert ws.busy
        again = app(token, query={**SMALL_QUERY, "epochs": "3000"})
        assert session(again.session_state).ws is ws and ws.busy      # the very workspace, run and all
    finally:
        ws.runner.stop()
        ws.runner.join(30)


def test_a_link_with_another_network_asks_before_replacing_a_trained_lab():
    first = app(query=SMALL_QUERY)
    session(first.session_state).ws.step()
    first.run()
    token = session(first.session_state).lab.token
    written()
    at = app(token, query={**SMALL_QUERY, "hidden": "32"})
    ws = session(at.session_state).ws
    assert ws.trainer.global_step == 1 and ws.net.sizes == [784, 64, 64, 10]
    assert any("means a new network" in w.value for w in at.warning)
    # only the learning rate differs: the lab keeps its own, and the sidebar says so
    at = app(token, query={**SMALL_QUERY, "lr": "0.5"})
    ws = session(at.session_state).ws
    assert ws.trainer.global_step == 1 and ws.settings.lr == 0.1 and not at.warning
    assert "the link's Learning rate η were not applied" in sidebar_says(at)


def test_a_lab_that_cannot_be_reopened_says_so_and_a_new_network_starts():
    first = app(query=SMALL_QUERY)
    session(first.session_state).ws.step()
    first.run()
    token = session(first.session_state).lab.token
    written()
    from ui.session import lab_writer
    with sqlite3.connect(lab_writer().store.path) as db:
        db.execute("UPDATE labs SET checkpoint = ? WHERE key = ?", (b"garbage", key_of(token)))
    at = app(token, query=SMALL_QUERY)
    assert session(at.session_state).ws.trainer.global_step == 0
    assert "could not be reopened" in sidebar_says(at)


def test_the_runs_kept_beside_a_lab_that_cannot_be_reopened_are_not_lost_with_it():
    first = app(query=SMALL_QUERY)
    ws = session(first.session_state).ws
    ws.step(), ws.step()
    ws.keep_run("kept before")
    first.run()
    token = session(first.session_state).lab.token
    written()
    from ui.session import lab_writer
    with sqlite3.connect(lab_writer().store.path) as db:
        db.execute("UPDATE labs SET checkpoint = ? WHERE key = ?", (b"garbage", key_of(token)))
    at = app(token, query=SMALL_QUERY)
    new = session(at.session_state).ws
    assert new.trainer.global_step == 0 and "could not be reopened" in sidebar_says(at)
    assert [r.name for r in new.runs] == ["kept before"] and new.runs.get(1).steps == 2
    assert "your kept runs \\(1 run\\) are still on Compare runs" in sidebar_says(at)   # Markdown-escaped
    m = load_mnist()
    new.reopen(1, m["train"], m["test"])
    assert new.trainer.global_step == 2


def test_settings_back_at_their_default_leave_the_address_bar():
    at = app(query={**SMALL_QUERY, "lr": "0.5"})
    [w for w in at.number_input if w.label == "Learning rate η"][0].set_value(0.1)
    [b for b in at.button if b.label == "Apply settings"][0].click()
    at.run()
    assert session(at.session_state).ws.settings.lr == 0.1 and "lr" not in at.query_params


def test_a_change_of_the_learning_rate_after_steps_is_recorded_kept_and_undone(mnist, tmp_path):
    """Workspace.retuned_at: a step link's replay would use the new η throughout (core.lab.stepper.link_caveats)."""
    ws = Workspace(SMALL, mnist["train"], mnist["test"])
    ws.set_hyper(replace(SMALL, lr=0.05))            # before any step: a link carries it, nothing to say
    assert ws.retuned_at is None
    ws.step(), ws.step()
    ws.set_hyper(replace(SMALL, lr=0.05, epochs=1))  # the optimizer's numbers are the same
    assert ws.retuned_at is None
    ws.set_hyper(replace(SMALL, lr=0.2))
    ws.step()
    assert ws.retuned_at == 2
    store, key = LabStore(tmp_path), key_of(new_token())
    store.save(key, LabCopy.of(ws))
    assert store.load(key).workspace(mnist["train"], mnist["test"]).retuned_at == 2
    ws.undo(ws.undo_points()[-1])                    # back before step 1: no step took the old η
    assert ws.trainer.global_step == 0 and ws.retuned_at is None
    ws.fresh()
    assert ws.retuned_at is None
