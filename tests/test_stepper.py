"""The stepper's logic (core/lab/stepper.py), without Streamlit: choosing the batch, taking a
step (and a step that diverges), the stop a step opens on, the step shown, and a shared link."""
from dataclasses import replace

import numpy as np
import pytest

from core.lab.stepper import (DIVERGED, MAX_REPLAY, MAX_REPLAY_WORK, Stepper, link_path, max_replay_steps,
                               parse_positions, replay_work)
from core.lab.settings import FIELDS, Settings
from core.lab.workspace import FILE, SEED, SHIPPED, Workspace
from core.lab import checkpoint


def lab(mnist, **kw):
    ws = Workspace(replace(Settings(pool=3000, val=500, hidden=(32, 16)), **kw), mnist["train"], mnist["test"])
    return ws, Stepper().follow(ws)


def same_trace(a, b, names=("X", "Z1", "dW1", "W3_new")):
    return all(np.array_equal(np.asarray(a[n]), np.asarray(b[n])) for n in names)


# --------------------------------------------------------------------------- the batch
def test_each_batch_choice_gives_its_images(mnist):
    ws, s = lab(mnist)
    assert np.array_equal(s.batch(ws, "next").idx, ws.trainer.next_indices())
    first = s.batch(ws, "random").idx
    assert len(first) == 64 and np.array_equal(s.batch(ws, "random").idx, first)   # the same until drawn again
    s.draw_again()
    assert not np.array_equal(s.batch(ws, "random").idx, first)
    chosen = s.batch(ws, "chosen", chosen="3, 0-1")
    assert np.array_equal(chosen.idx, ws.split.train_idx[[3, 0, 1]]) and not chosen.problem
    X, y = chosen.pictures(ws.split.source)
    assert np.array_equal(X, ws.split.source.X[chosen.idx]) and np.array_equal(y, ws.split.source.y[chosen.idx])
    digit = mnist["test"].X[0]
    drawn = s.batch(ws, "drawn", drawn=digit, drawn_label=7)
    X, y = drawn.pictures(ws.split.source)
    assert X.shape == (1, 784) and np.array_equal(X[0], digit) and list(y) == [7]


@pytest.mark.parametrize("how, kw, says", [
    ("chosen", {"chosen": "0, 99999"}, "99,999 is outside"),
    ("chosen", {"chosen": "<b>x</b>"}, "Could not read the indices"),
    ("chosen", {"chosen": ""}, "at least one index"),
    ("drawn", {}, "Draw a digit on the Draw page first."),
])
def test_a_batch_that_cannot_be_used_says_why_and_a_step_on_it_trains_nothing(mnist, how, kw, says):
    ws, s = lab(mnist)
    batch = s.batch(ws, how, **kw)
    assert says in batch.problem and "<b>" not in batch.problem
    assert not s.take_step(ws, batch)
    assert s.problem == batch.problem and ws.trainer.global_step == 0 and not ws.steps


def test_parse_positions():
    assert parse_positions("0, 5, 10-12", 100) == ([0, 5, 10, 11, 12], "")
    assert parse_positions("4-2", 100) == ([2, 3, 4], "")
    assert parse_positions("0-2000", 5000, limit=1024)[1] == "At most 1,024 images per mini-batch."
    # as many chosen images as the sidebar's largest batch, and no more
    top = int(FIELDS["batch_size"].hi)
    assert parse_positions(f"0-{top - 1}", 10_000) == (list(range(top)), "")
    assert parse_positions(f"0-{top}", 10_000)[1] == f"At most {top:,} images per mini-batch."


# --------------------------------------------------------------------------- the step
def test_a_step_trains_and_opens_its_first_stop(mnist):
    ws, s = lab(mnist)
    s.stop = "dW2"
    assert s.take_step(ws, s.batch(ws, "next"))
    assert ws.trainer.global_step == 1 and s.shown == 1 and s.stop == "X" and s.custom == set()
    assert s.take_step(ws, s.batch(ws, "random"))
    assert s.custom == {2} and s.random_draw == 1            # the next random batch is another one
    assert s.take_step(ws, s.batch(ws, "chosen", chosen="0-3"))
    assert s.custom == {2, 3} and ws.steps[-1].how == "chosen" and ws.current["X"].shape == (4, 784)
    assert s.take_step(ws, s.batch(ws, "drawn", drawn=mnist["test"].X[0], drawn_label=7))
    assert s.custom == {2, 3, 4} and ws.steps[-1].how == "drawn" and int(ws.current["y"][0]) == 7


def test_a_step_during_a_run_trains_nothing_and_says_so(mnist, monkeypatch):
    ws, s = lab(mnist)
    monkeypatch.setattr(type(ws.runner), "active", property(lambda self: True))
    assert not s.take_step(ws, s.batch(ws, "next"))
    assert "pause it" in s.problem and ws.trainer.global_step == 0


def test_a_step_that_diverges_keeps_the_network_and_shows_its_partial_trace(mnist):
    ws, s = lab(mnist, lr=100.0, hidden=(64, 64))
    for _ in range(10):
        params = ws.net.params
        if not s.take_step(ws, s.batch(ws, "next")):
            break
    assert s.diverged is not None, "lr 100 should blow up within a few steps"
    assert ws.net.params is params and s.shown == DIVERGED and s.stop == "X"
    assert s.diverged.number == ws.trainer.global_step + 1 and "learning rate" in s.diverged.message
    shown = s.shown_step(ws)
    assert shown.label == DIVERGED and shown.record is None and shown.trace is s.diverged.trace
    assert "losses" in shown.trace and "ΔW1" in shown.trace and "W1_new" not in shown.trace  # the refused update
    assert s.step_choices(ws)[0] == DIVERGED
    assert s.link_query(ws, shown) == {"step": str(ws.trainer.global_step), "stop": "X"}


# --------------------------------------------------------------------------- stops and the step shown
def test_a_step_opens_on_the_links_stop_when_its_trace_has_it():
    s = Stepper()
    keys = ["X", "Z1", "A1", "losses", "dZ2"]
    s.stop = "A1"                                     # from a link
    assert s.opening_stop(keys) == "A1" == s.stop
    s.stop = "ΔW3"                                    # not a stop of this (partial) trace
    assert s.opening_stop(keys) == "X" == s.stop       # the link of what is shown says so too


def test_an_earlier_step_is_recomputed_by_the_same_engine(mnist):
    ws, s = lab(mnist)
    assert s.shown_step(ws) is None
    s.take_step(ws, s.batch(ws, "next"))
    first = ws.current
    s.take_step(ws, s.batch(ws, "chosen", chosen="5-9"))
    s.take_step(ws, s.batch(ws, "next"))
    latest = s.shown_step(ws)
    assert latest.trace is ws.current and latest.label == latest.number == 3
    assert s.step_choices(ws) == [3, 2, 1]
    s.shown = 1
    again = s.shown_step(ws)
    assert again.record is ws.steps[0] and again.number == 1 and same_trace(again.trace, first)
    assert s.shown_step(ws).trace is again.trace                 # recomputed once, not on every rerun
    assert s.link_query(ws, again) == {"step": "1", "stop": "X"}
    s.shown = 2                                                  # a chosen batch is recomputed on its images
    assert s.shown_step(ws).trace["X"].shape == (5, 784)
    s.shown = 99                                                 # no longer kept: the latest
    assert s.shown_step(ws).label == 3 and s.step_choices(ws) and s.shown == 3


def test_another_trainer_starts_the_stepper_over_but_not_the_link(mnist):
    """Loading a checkpoint (or the pretrained network) keeps the Workspace object but gives it
    another trainer: what was shown of the old network must go, the note of what the link
    replayed too (it was about the old network); the link is still read only once."""
    ws, s = lab(mnist, lr=100.0, hidden=(64, 64))
    for _ in range(10):
        if not s.take_step(ws, s.batch(ws, "random")):
            break
    s.link_done, s.link_note, s.stop = True, "Replayed 3 steps from the link.", "losses"
    assert s.diverged is not None and s.custom
    other, _ = lab(mnist)
    ck = checkpoint.load(checkpoint.to_bytes(other.net, other.optimizer, other.trainer))
    ws.open_checkpoint(ck, other.settings, mnist["train"], mnist["test"], origin="an uploaded checkpoint (epoch 0)")
    s.follow(ws)
    assert s.diverged is None and s.custom == set() and s.shown is None and s.stop == "X"
    assert s.random_draw == 0 and s.shown_step(ws) is None and ws.memory()["recomputed_trace"] == 0
    assert s.link_done and s.link_note == ""
    assert s.follow(ws).link_done                                # the same trainer: nothing starts over


# --------------------------------------------------------------------------- a shared link
def test_a_link_replays_the_trainers_own_steps_once(mnist):
    ws, s = lab(mnist)
    for _ in range(3):
        s.take_step(ws, s.batch(ws, "next"))
    link = link_path(ws.settings, 3, "ΔW2")
    assert link.startswith("/stepper?") and "hidden=32,16" in link and "step=3&stop=ΔW2" in link

    fresh, t = lab(mnist)
    n = t.read_link(fresh, {"step": "3", "stop": "ΔW2", "hidden": "32,16"})
    assert n == 3 and t.stop == "ΔW2" and fresh.trainer.global_step == 0     # reading trains nothing
    t.replay(fresh, n)
    assert fresh.trainer.global_step == 3 and t.shown == 3 and t.link_note == "Replayed 3 steps from the link."
    assert same_trace(fresh.current, ws.current)
    assert t.read_link(fresh, {"step": "5"}) == 0 and fresh.trainer.global_step == 3   # once per session


@pytest.mark.parametrize("query, note", [
    ({"step": "three"}, "was not a number"),
    ({"step": "3739"}, "at most 3,738 steps"),          # 784 → 32 → 16 → 10: more steps than the default's
    ({"step": "0"}, ""),
    ({"stop": "Z1"}, ""),
])
def test_a_link_that_cannot_be_replayed_says_why(mnist, query, note):
    ws, s = lab(mnist)
    assert s.read_link(ws, query) == 0 and ws.trainer.global_step == 0
    assert (note in s.link_note) if note else s.link_note == ""


def test_a_link_is_bounded_by_its_work_not_its_steps(mnist):
    """2,000 steps of the default network, or as much work at other sizes: a link to step 2,000 of
    3×512 at batch 2048 (once 335 CPU-seconds in the server) is refused, saying how far it may go."""
    default = Workspace(Settings(), mnist["train"], mnist["test"])
    assert max_replay_steps(default) == MAX_REPLAY
    assert replay_work(default, MAX_REPLAY) <= MAX_REPLAY_WORK < replay_work(default, MAX_REPLAY + 1)
    big, s = lab(mnist, hidden=(512, 512, 512), batch_size=2048, optimizer="adam", lr=0.001)
    most = max_replay_steps(big)
    assert most == MAX_REPLAY_WORK // (2048 * 932_362 + 500_000) == 4
    assert s.read_link(big, {"step": "2000", "stop": "Z1"}) == 0 and big.trainer.global_step == 0
    assert "at most 4 steps" in s.link_note and "nothing was replayed" in s.link_note and s.stop == "Z1"


def wait_for_the_replay(ws, s, timeout=120):
    ws.runner.join(timeout)
    assert not ws.busy, "the training process did not end"
    assert s.finish_replay(ws)


def test_a_long_link_is_replayed_in_the_training_process_then_its_last_step_here(mnist):
    ws, s = lab(mnist)
    n = s.read_link(ws, {"step": "300", "stop": "dW1"})
    assert n == 300 and s.start_replay(ws, n)
    assert ws.busy and s.replaying == 300                       # the training process trains
    assert ws.runner.pause_at == 299
    wait_for_the_replay(ws, s)
    assert ws.trainer.global_step == 300 and s.replaying == 0 and s.shown == 300
    assert len(ws.steps) == 1 and ws.steps[0].number == 300         # only the last step was taken here
    assert s.link_note == "Replayed 300 steps from the link."
    assert ws.runner.status == "idle"           # the training page offers no run to resume
    ref, r = lab(mnist)                         # the same 300 steps, all here: the same numbers
    r.replay(ref, 300)
    assert same_trace(ws.current, ref.current, names=("X", "Z1", "A2", "dW1", "ΔW3", "W3_new"))
    for k, v in ref.net.params.items():
        np.testing.assert_array_equal(ws.net.params[k], v)
    np.testing.assert_array_equal(ws.history.step_loss[:300], ref.history.step_loss[:300])


def test_a_short_link_is_replayed_here_at_once(mnist):
    ws, s = lab(mnist)
    assert not s.start_replay(ws, s.read_link(ws, {"step": "5"}))
    assert ws.trainer.global_step == 5 and not ws.busy and s.replaying == 0
    assert len(ws.steps) == 5 and s.link_note == "Replayed 5 steps from the link."


def test_a_replay_that_stops_in_the_training_process_says_where(mnist):
    ws, s = lab(mnist, lr=100.0, hidden=(64, 64))
    assert s.start_replay(ws, s.read_link(ws, {"step": "400"}))
    wait_for_the_replay(ws, s)
    done = ws.trainer.global_step
    assert done < 399 and not ws.steps
    assert f"its replay stopped at step {done:,}: " in s.link_note and "learning rate" in s.link_note


@pytest.mark.parametrize("action", [
    lambda ws, s: s.take_step(ws, s.batch(ws, "next")),
    lambda ws, s: s.show(1),
    lambda ws, s: s.draw_again(),
])
def test_the_note_of_a_link_stays_until_the_student_does_something_else(mnist, action):
    ws, s = lab(mnist)
    s.start_replay(ws, s.read_link(ws, {"step": "2"}))
    for _ in range(3):                                          # reruns of the page change nothing
        shown = s.shown_step(ws)
        s.opening_stop(["X", "Z1", "A1"])
        s.step_choices(ws)
        s.link_caveats(ws, shown.number)
        s.follow(ws)
    assert s.link_note == "Replayed 2 steps from the link."
    action(ws, s)
    assert s.link_note == ""


def test_a_link_to_a_network_that_has_trained_replays_nothing(mnist):
    ws, s = lab(mnist)
    ws.step()
    assert s.read_link(ws, {"step": "4"}) == 0 and "already elsewhere" in s.link_note
    assert ws.trainer.global_step == 1


def test_a_replay_that_diverges_stops_there(mnist):
    ws, s = lab(mnist, lr=100.0, hidden=(64, 64))
    n = s.read_link(ws, {"step": "40"})
    s.replay(ws, n)
    assert s.shown == DIVERGED and s.diverged.number == ws.trainer.global_step + 1 < 40


def test_a_link_says_when_it_will_not_give_the_same_numbers(mnist):
    ws, s = lab(mnist)
    s.take_step(ws, s.batch(ws, "next"))
    assert s.link_caveats(ws, 1) == []
    s.take_step(ws, s.batch(ws, "random"))
    assert s.link_caveats(ws, 1) == []                                   # step 1 came before the random one
    assert any("random or chosen" in n for n in s.link_caveats(ws, 2))
    most = max_replay_steps(ws)
    assert not any("beyond" in n for n in s.link_caveats(ws, most))
    assert any(f"beyond the {most:,}" in n for n in s.link_caveats(ws, most + 1))
    ck = checkpoint.load(checkpoint.to_bytes(ws.net, ws.optimizer, ws.trainer))
    ws.open_checkpoint(ck, ws.settings, mnist["train"], mnist["test"], origin="the pretrained network", made=SHIPPED)
    assert any("fresh seed network" in n for n in s.link_caveats(ws, 1))


def test_what_a_link_does_follows_how_the_network_was_made_not_the_words_for_it(mnist):
    """Before, a network counted as fresh when its origin's text began with "a new network":
    a reworded origin broke links, and a file so named was replayed over."""
    ws, s = lab(mnist)
    ws.origin = "un nouveau réseau (graine 0)"                          # another wording, the same network
    assert ws.fresh_from_seed and s.read_link(ws, {"step": "3"}) == 3 and s.link_caveats(ws, 3) == []
    other, t = lab(mnist)
    ck = checkpoint.load(checkpoint.to_bytes(other.net, other.optimizer, other.trainer))
    other.open_checkpoint(ck, other.settings, mnist["train"], mnist["test"], origin="a new network (seed 0)")
    assert other.made == FILE and not other.fresh_from_seed          # a file at step 0, whatever it is called
    assert t.read_link(other, {"step": "3"}) == 0 and "already elsewhere" in t.link_note
    assert any("fresh seed network" in n for n in t.link_caveats(other, 3))
    other.fresh()                                                     # a new network from the settings again
    assert other.made == SEED and other.fresh_from_seed
