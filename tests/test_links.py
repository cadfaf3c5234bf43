"""A link to every view: the pretrained network, a snapshot epoch, a neuron, one image, a
confusion-matrix cell, with presentation mode. Link parameters are declared and checked in one
place (core/lab/links.py); a page opens its link's view once, keeps its address in sync with what is
on screen, and an odd value gives a note, never an error."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui.session
from core.engine.metrics import mistakes
from core.engine.trainer import evaluate
from core.lab import links
from core.lab.settings import Settings
from core.lab.stepper import link_path
from core.lab.store import Keeper
from core.lab.workspace import SEED, SHIPPED, Workspace
from ui.state import EVAL_SET, MIS_PRED, MIS_TRUE, NEURON, PROBE_HOW, PROBE_INDEX, STATE_KEY, Session, session

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
needs_pretrained = pytest.mark.skipif(not ui.session.PRETRAINED.exists(), reason="data/pretrained.npz is not made yet")


# --------------------------------------------------------------------------- the registry
def test_a_pages_view_parameters_are_read_and_checked_in_one_place():
    values, notes = links.read("inspect", {"epoch": "5", "neuron": "17", "image": "123", "true": "4", "lr": "0.5"},
                               {"epoch": [0, 1, 2, 5], "neuron": range(64), "image": range(1000)})
    assert values == {"epoch": 5, "neuron": 17, "image": 123} and notes == []      # true= is another page's
    values, notes = links.read("inspect", {"epoch": "7", "neuron": "99", "image": "abc"},
                               {"epoch": [0, 1, 2, 5], "neuron": range(64), "image": range(1000)})
    assert values == {}
    assert notes == ["The link's snapshot epoch 7 is not there: there are 0, 1, 2, 5.",
                     "The link's layer-1 neuron 99 is not there: there are 0 to 63.",
                     "The link's validation image 'abc' is not a whole number."]
    values, notes = links.read("evaluate", {"set": "train", "true": "-1", "pred": "9"},
                               {"set": ("validation",), "true": range(10), "pred": range(10)})
    assert values == {"pred": 9}
    assert notes == ["The link's image set 'train' is not one of: validation.",
                     "The link's true digit -1 is not there: there are 0 to 9."]
    assert links.PARAMS[links.NETWORK].read("mine") == (None, "The link's network 'mine' is not one of: pretrained.")
    assert links.PARAMS[links.NETWORK].read("x" * 500)[1].endswith("'xxxxxxxxxxxxxxxxxxxx…' is not one of: pretrained.")


def test_one_function_builds_a_views_query_and_a_path():
    assert links.query("evaluate", epoch=None, set=None, true=4, pred=9) == {"true": "4", "pred": "9"}
    with pytest.raises(KeyError):
        links.query("inspect", true=4)                         # not a parameter of that page
    assert links.path("inspect", {"network": "pretrained", "neuron": "17", "present": "1"}) == \
        "/inspect?network=pretrained&neuron=17&present=1"
    assert link_path(Settings(hidden=(32, 16)), 3, "ΔW1") == "/stepper?hidden=32,16&step=3&stop=ΔW1"
    assert set(links.of_page("stepper")) == {"step", "stop"}
    for name, p in links.PARAMS.items():                     # every page a parameter names exists
        assert all(f"pages/{page}.py" in {entry.path for entry in ui.session.PAGES} for page in p.pages), name


def test_the_network_part_names_the_pretrained_network_or_the_settings(mnist):
    ws = Workspace(Settings(pool=600, val=100, lr=0.5), mnist["train"], mnist["test"])
    assert links.network_query(ws) == {"pool": "600", "val": "100", "lr": "0.5"} and links.caveats(ws) == []
    ws.step()
    assert "not its training" in links.caveats(ws)[0]
    ws.made, ws.made_at = SHIPPED, ws.trainer.global_step
    assert links.network_query(ws) == {"network": "pretrained"} and links.caveats(ws) == []
    ws.step()
    assert "1 more steps" in links.caveats(ws)[0]


# --------------------------------------------------------------------------- the app
def app(query: dict, page: str | None = None, token: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if token is not None:     # the browser sent this lab's cookie (see tests/test_store.py)
        at.session_state[STATE_KEY] = Session(lab=Keeper(token=token))
    at.query_params.update(query)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def address(at) -> dict[str, str]:
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def codes(at) -> list[str]:
    return [c.value for c in at.code]


def infos(at) -> str:
    return " ".join(i.value for i in at.info)


@needs_pretrained
@pytest.mark.parametrize("page", [None, "pages/data.py", "pages/stepper.py", "pages/training.py"])
def test_network_pretrained_opens_the_shipped_network_on_any_page(page):
    at = app({"network": "pretrained", "pool": "3000", "present": "1"}, page)
    ws = session(at.session_state).ws
    assert ws.made == SHIPPED and ws.trainer.epoch == 1000 and ws.split.n_train == 41_000
    assert address(at) == {"network": "pretrained", "present": "1"}    # the link's pool was not this network's
    assert session(at.session_state).present is True


def trained_lab() -> str:
    """The token of a browser whose kept lab has trained a step (see tests/test_store.py)."""
    first = app({"pool": "3000", "val": "500"})
    session(first.session_state).ws.step()
    first.run()
    from ui.session import lab_writer, live_labs
    assert lab_writer().flush(timeout=60)
    live_labs.clear()
    return session(first.session_state).lab.token


@needs_pretrained
def test_a_network_link_asks_before_replacing_trained_work():
    token = trained_lab()
    at = app({"network": "pretrained", "neuron": "17"}, "pages/inspect.py", token=token)
    ws = session(at.session_state).ws
    assert ws.made == SEED and ws.trainer.global_step == 1                 # nothing thrown away yet
    assert any("The link you opened asks for it" in w.value and "trained 1 step" in w.value for w in at.warning)
    assert address(at)["pool"] == "3000" and "network" not in address(at)   # the network in use …
    assert address(at)["neuron"] == "17"                                   # … and the view the link asks for
    at.button(key="link_confirm_pretrained").click().run()
    assert not at.exception and session(at.session_state).ws.made == SHIPPED and not at.warning
    assert address(at)["network"] == "pretrained" and "pool" not in address(at)
    assert session(at.session_state).ws.trainer.epoch == 1000
    assert at.number_input(key=NEURON).value == 17                          # the link's view, once it is settled


@needs_pretrained
def test_keeping_the_trained_network_against_a_link_keeps_it_and_its_address():
    at = app({"network": "pretrained", "neuron": "17"}, "pages/inspect.py", token=trained_lab())
    at.button(key="link_keep_pretrained").click().run()
    ws = session(at.session_state).ws
    assert not at.exception and ws.made == SEED and ws.trainer.global_step == 1
    assert not [w for w in at.warning if "The link you opened" in w.value]
    assert all("not its training" in w.value for w in at.warning)          # what a link of it would not carry
    assert "network" not in address(at) and address(at)["pool"] == "3000"
    assert at.number_input(key=NEURON).value == 17                          # the view still opens


@needs_pretrained
def test_an_inspect_link_opens_its_snapshot_neuron_and_image_presenting():
    at = app({"network": "pretrained", "epoch": "5", "neuron": "17", "image": "123", "present": "1"},
             "pages/inspect.py")
    ws = session(at.session_state).ws
    assert [s.value for s in at.selectbox if s.label == "Network at"] == [5]
    assert at.session_state[NEURON] == 17 and at.number_input(key=NEURON).value == 17
    assert at.session_state[PROBE_HOW] == "by number" and at.number_input(key=PROBE_INDEX).value == 123
    assert any("Validation image **123**" in m.value for m in at.markdown)
    assert any(m.value.startswith("Neuron **17**") for m in at.markdown)
    assert address(at) == {"network": "pretrained", "epoch": "5", "neuron": "17", "image": "123", "present": "1"}
    assert "/inspect?network=pretrained&epoch=5&neuron=17&present=1" in codes(at)
    assert "/inspect?network=pretrained&epoch=5&image=123&present=1" in codes(at)
    assert ws.trainer.snapshots[5] is not ws.net.params and not infos(at)

    at.number_input(key=NEURON).set_value(3).run()                        # the address follows the screen
    assert address(at)["neuron"] == "3" and address(at)["epoch"] == "5"
    [s for s in at.selectbox if s.label == "Network at"][0].set_value("now").run()
    assert "epoch" not in address(at) and address(at)["neuron"] == "3"


@needs_pretrained
def test_odd_values_in_an_inspect_link_give_notes_and_the_page_its_defaults():
    at = app({"network": "pretrained", "epoch": "7", "neuron": "640", "image": "-3"}, "pages/inspect.py")
    said = infos(at)
    assert "The link's snapshot epoch 7 is not there: there are 0, 1, 2, 5, 10, 20, 50, 100, 200, 500, " \
           "1,000." in said.replace("\\", "")
    assert "neuron 640 is not there: there are 0 to 63" in said.replace("\\", "")
    assert "validation image -3 is not there" in said.replace("\\", "")
    assert [s.value for s in at.selectbox if s.label == "Network at"] == ["now"] and "epoch" not in address(at)
    at.number_input(key=NEURON).set_value(3).run()                        # the student moved on: the notes go
    assert "neuron 640" not in infos(at)


@needs_pretrained
def test_an_evaluate_link_opens_a_confusion_cell_of_the_test_set():
    at = app({"network": "pretrained", "set": "test", "true": "4", "pred": "9", "present": "1"},
             "pages/evaluate.py")
    assert at.session_state[EVAL_SET] == "test" and (at.session_state[MIS_TRUE], at.session_state[MIS_PRED]) == (4, 9)
    ws = session(at.session_state).ws
    test = ws.split.test
    got = evaluate(ws.net, test.X, test.y, ws.net.params)           # the gallery holds the test set's 4s taken for 9s
    wrong = mistakes(test.y, got["pred"], got["proba"], true_class=4, pred_class=9)
    shown = [c.value for c in at.caption if "mistakes with these filters" in c.value]
    assert shown and shown[0].startswith(f"{len(wrong):,} mistakes with these filters") and len(wrong) > 0
    assert address(at) == {"network": "pretrained", "set": "test", "true": "4", "pred": "9", "present": "1"}
    assert "/evaluate?network=pretrained&set=test&true=4&pred=9&present=1" in codes(at)


@needs_pretrained
def test_an_evaluate_link_with_values_it_cannot_show_says_so():
    at = app({"network": "pretrained", "set": "train", "true": "ten"}, "pages/evaluate.py")
    said = infos(at).replace("\\", "")
    assert "The link's image set 'train' is not one of: validation, test." in said
    assert "The link's true digit 'ten' is not a whole number." in said
    assert at.session_state[EVAL_SET] == "validation" and at.session_state[MIS_TRUE] is None
