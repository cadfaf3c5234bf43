"""The address bar tells the truth: it holds the settings of the network in use, changes only when
that network changes (not when a change waits for the user to confirm it), and the sidebar's form
shows the network in use again after *Keep the current network*. A step link warns when the
learning rate changed between the steps it would replay."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui.session
from core.lab.settings import FIELDS, Settings
from ui.state import session

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
SMALL = {"pool": "3000", "val": "500"}


def app(query: dict, page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(query)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def address(at) -> dict[str, str]:
    """The address's parameters, one value each (AppTest may hold them as lists)."""
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def settings_in(at) -> dict[str, str]:
    return {k: v for k, v in address(at).items() if k in FIELDS}


def widget(at, kind: str, label: str):
    found = [w for w in getattr(at, kind) if w.label == label]
    assert found, f"no {kind} labelled {label!r}"
    return found[0]


def button(at, starts: str):
    return [b for b in at.button if b.label.startswith(starts)][0]


def run(at) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def submit(at) -> AppTest:
    button(at, "Apply settings").click()
    return run(at)


def trained(query: dict, page: str | None = None) -> AppTest:
    at = app({**SMALL, **query}, page)
    session(at.session_state).ws.step()
    return run(at)


def test_a_change_waiting_for_confirmation_stays_out_of_the_address():
    at = trained({})
    widget(at, "selectbox", "Activation").set_value("sigmoid")
    at = submit(at)
    assert any("means a new network" in w.value for w in at.warning)
    assert "activation" not in address(at)                       # not before it is confirmed
    button(at, "Keep the current network").click()
    at = run(at)
    assert "activation" not in address(at) and session(at.session_state).ws.settings.activation == "relu"
    widget(at, "selectbox", "Activation").set_value("sigmoid")
    at = submit(at)
    button(at, "Discard it").click()
    at = run(at)
    assert address(at)["activation"] == "sigmoid"                # now the network is a sigmoid one


def test_keep_puts_the_networks_own_settings_back_in_the_form():
    at = trained({"optimizer": "adam", "lr": "0.002"})
    widget(at, "selectbox", "Activation").set_value("sigmoid")
    widget(at, "selectbox", "Optimizer").set_value("sgd")
    widget(at, "number_input", "Learning rate η").set_value(0.1)
    at = submit(at)
    button(at, "Keep the current network").click()
    at = run(at)
    ws = session(at.session_state).ws
    assert (ws.settings.activation, ws.settings.optimizer, ws.settings.lr) == ("relu", "adam", 0.002)
    assert widget(at, "selectbox", "Activation").value == "relu"
    assert widget(at, "selectbox", "Optimizer").value == "adam"
    assert widget(at, "number_input", "Learning rate η").value == 0.002


def test_after_discard_the_address_builds_the_network_in_use():
    at = trained({"optimizer": "adam", "lr": "0.002"}, "pages/stepper.py")
    assert address(at)["step"] == "1"
    widget(at, "selectbox", "Activation").set_value("sigmoid")
    widget(at, "selectbox", "Optimizer").set_value("sgd")
    widget(at, "number_input", "Learning rate η").set_value(0.1)
    at = submit(at)
    button(at, "Discard it").click()
    at = run(at)
    ws = session(at.session_state).ws
    assert (ws.settings.activation, ws.settings.optimizer, ws.settings.lr) == ("sigmoid", "sgd", 0.1)
    assert settings_in(at) == {**SMALL, "activation": "sigmoid"}
    again, notes = Settings.from_query(address(at))             # opening it elsewhere builds this network …
    assert again == ws.settings and not notes
    assert "step" not in address(at)                            # … untrained, as this one is (no step 1 to replay)


def test_the_address_follows_a_new_network_made_without_asking():
    at = app(SMALL)
    widget(at, "number_input", "Seed").set_value(5)
    at = submit(at)
    assert settings_in(at) == {**SMALL, "seed": "5"}


def test_a_step_link_warns_when_the_learning_rate_changed_between_steps():
    at = app(SMALL, "pages/stepper.py")
    at.button(key="stepper_step").click()
    at = run(at)
    assert not [w for w in at.warning if "learning rate" in w.value]
    widget(at, "number_input", "Learning rate η").set_value(0.5)
    at = submit(at)
    ws = session(at.session_state).ws
    assert ws.trainer.global_step == 1 and ws.optimizer.lr == 0.5          # the same network, at the new η
    at.button(key="stepper_step").click()
    at = run(at)
    assert address(at)["lr"] == "0.5" and address(at)["step"] == "2"
    warned = [w.value for w in at.warning if "learning rate" in w.value]
    assert warned and "step 1" in warned[0]


@pytest.mark.skipif(not ui.session.PRETRAINED.exists(), reason="data/pretrained.npz is not made yet")
def test_the_form_and_the_address_follow_the_pretrained_network_opened_from_home():
    at = app(SMALL)
    at.button(key="home_open_pretrained").click()
    at = run(at)
    ws = session(at.session_state).ws
    assert ws.settings.pool == 42_000
    assert widget(at, "number_input", "Image pool (train + validation)").value == 42_000   # not the 3,000 before
    assert address(at) == {"network": "pretrained"}


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_choosing_an_adaptive_optimizer_with_sgds_eta_takes_its_usual_eta_and_says_so(optimizer):
    """SGD's η = 0.1 blows Adam's and RMSprop's first steps up: left as it was, η becomes the new
    optimizer's usual one, with a note; an η the student chose is kept."""
    from core.engine.optim import usual_lr
    at = app(SMALL)
    widget(at, "selectbox", "Optimizer").set_value(optimizer)
    at = submit(at)
    ws = session(at.session_state).ws
    assert ws.settings.optimizer == optimizer and ws.settings.lr == usual_lr(optimizer) == 0.001
    assert ws.optimizer.lr == 0.001 and address(at)["lr"] == "0.001"
    assert any(f"η set to 0.001" in i.value for i in at.sidebar.info)
    for _ in range(20):                                   # and it trains: no step is refused
        ws.step()
    chosen = app(SMALL)
    widget(chosen, "selectbox", "Optimizer").set_value(optimizer)
    widget(chosen, "number_input", FIELDS["lr"].label).set_value(0.01)
    chosen = submit(chosen)
    assert session(chosen.session_state).ws.settings.lr == 0.01      # the student's own η stays
    assert not any("η set to" in i.value for i in chosen.sidebar.info)
