"""The app shell: settings in the sidebar, asking before a trained network is thrown
away, settings from a shared link, and the home and data pages."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui.session
from core.lab.workspace import SEED, SHIPPED
from ui.state import session

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


def app(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def widget(at, kind: str, label: str):
    found = [w for w in getattr(at, kind) if w.label == label]
    assert found, f"no {kind} labelled {label!r}: {[w.label for w in getattr(at, kind)]}"
    return found[0]


def submit(at):
    [b for b in at.button if b.label == "Apply settings"][0].click()
    return at.run()


def test_home_page_states_the_seed_and_our_result():
    at = app()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "97.7%" in text and "784 → 64 (ReLU) → 64 (ReLU) → 10 (softmax)" in text
    ws = session(at.session_state).ws
    assert ws.net.sizes == [784, 64, 64, 10] and ws.split.n_train == 41_000 and ws.split.n_val == 1_000


def test_a_link_sets_the_network_and_reports_what_it_ignored():
    at = app({"hidden": "32", "lr": "0.05", "seed": "3", "batch_size": "oops"})
    ws = session(at.session_state).ws
    assert ws.net.sizes == [784, 32, 10] and ws.settings.lr == 0.05 and ws.net.seed == 3
    assert any("Ignored batch" in c.value and "oops" in c.value for c in at.caption)


def test_changing_the_learning_rate_keeps_the_network():
    at = app({"pool": "3000", "val": "500"})
    ws = session(at.session_state).ws
    ws.step()
    params = ws.net.params
    widget(at, "number_input", "Learning rate η").set_value(0.01)
    at = submit(at)
    assert session(at.session_state).ws is ws and ws.net.params is params and ws.optimizer.lr == 0.01
    assert at.query_params["lr"] in ("0.01", ["0.01"])  # the link now carries it


def test_changing_the_architecture_of_a_trained_network_asks_first():
    at = app({"pool": "3000", "val": "500"})
    ws = session(at.session_state).ws
    ws.step()
    widget(at, "selectbox", "Activation").set_value("tanh")
    at = submit(at)
    assert session(at.session_state).ws is ws                  # nothing thrown away yet
    assert any("means a new network" in w.value for w in at.warning)
    [b for b in at.button if b.label == "Keep the current network"][0].click()
    at.run()
    assert session(at.session_state).ws is ws and not at.warning
    widget(at, "selectbox", "Activation").set_value("tanh")
    at = submit(at)
    [b for b in at.button if b.label.startswith("Discard it")][0].click()
    at.run()
    new = session(at.session_state).ws
    assert new is not ws and new.net.activation == "tanh" and new.trainer.global_step == 0


def test_an_untrained_network_is_rebuilt_without_asking():
    at = app({"pool": "3000", "val": "500"})
    ws = session(at.session_state).ws
    widget(at, "number_input", "Seed").set_value(5)
    at = submit(at)
    assert session(at.session_state).ws is not ws and session(at.session_state).ws.net.seed == 5 and not at.warning


@pytest.mark.skipif(not ui.session.PRETRAINED.exists(), reason="data/pretrained.npz is not made yet")
def test_opening_the_pretrained_network_from_home_asks_first_only_when_work_would_be_lost():
    """Before, the home page's button replaced a trained network without a word."""
    at = app({"pool": "3000", "val": "500"})
    state = session(at.session_state)
    untrained = state.ws
    at.button(key="home_open_pretrained").click().run()          # nothing trained: opens at once
    assert state.ws is untrained and untrained.made == SHIPPED and untrained.trainer.epoch == 1000
    assert not at.warning and not at.exception
    pretrained_trainer = state.ws.trainer
    at.button(key="home_open_pretrained").click().run()          # the pretrained one as shipped: nothing lost
    assert not at.warning and state.ws.trainer is not pretrained_trainer and state.ws.trainer.epoch == 1000

    widget(at, "number_input", "Seed").set_value(5)               # a new network, then trained one step
    at = submit(at)
    ws = session(at.session_state).ws
    ws.step()
    trainer = ws.trainer
    at.button(key="home_open_pretrained").click().run()
    assert ws.trainer is trainer and ws.made == SEED and ws.trainer.global_step == 1
    assert any("replaces the current one, which has trained 1 step (0 epochs)" in w.value for w in at.warning)
    at.button(key="home_keep_pretrained").click().run()
    assert ws.trainer is trainer and not at.warning
    at.button(key="home_open_pretrained").click().run()
    at.button(key="home_confirm_pretrained").click().run()
    assert ws.trainer is not trainer and ws.made == SHIPPED and ws.trainer.epoch == 1000 and not at.warning

    ws.step()                                                     # the pretrained one trained further: asks
    at.button(key="home_open_pretrained").click().run()
    assert ws.would_lose_work and any("replaces the current one" in w.value for w in at.warning)


def test_the_data_page_describes_the_split():
    at = app()
    at.switch_page("pages/data.py")
    at.run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "41,000 training and 1,000 validation images" in text
    assert len(at.get("plotly_chart")) >= 4


def test_two_sessions_are_isolated():
    a, b = app({"pool": "3000", "val": "500"}), app({"pool": "3000", "val": "500"})
    session(a.session_state).ws.step()
    assert session(a.session_state).ws is not session(b.session_state).ws
    assert session(b.session_state).ws.trainer.global_step == 0



def test_the_sidebar_names_the_optimizer_and_what_is_added_to_the_seed():
    """Your network: its shape, optimizer and η, and dropout and augmentation when they are on."""
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "streamlit_app.py"), default_timeout=120)
    at.query_params.update({"pool": "3000", "val": "500", "optimizer": "rmsprop", "lr": "0.001", "dropout": "0.2",
                            "shift": "2"})
    at.run()
    text = " ".join(c.value for c in at.sidebar.caption)
    assert "784 → 64 → 64 → 10 · RMSprop, η = 0.001 · dropout 0.2 · augmented: moved up to 2 px each way" in text
    plain = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "streamlit_app.py"), default_timeout=120)
    plain.query_params.update({"pool": "3000", "val": "500"})
    plain.run()
    text = " ".join(c.value for c in plain.sidebar.caption)
    assert "784 → 64 → 64 → 10 · SGD, η = 0.1 · 0 epochs" in text and "dropout" not in text
