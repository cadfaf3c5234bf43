"""*Edit the network and see* (What it learned) in a real browser, on the pretrained network:
the neuron open in the grid is silenced, the accuracy shown is the one core computes on a copy,
the image picked in "One image through the network" is the one compared, and undo goes back."""
from tests.browser.helpers import (assert_no_errors, click_button, engine_pretrained, main_text, metric, open_page,
                                   settle, shows, wait_until)

ACC = "Validation accuracy after the edits"


def test_silence_the_open_neuron_pick_an_image_and_undo(server, page):
    from core.teach.surgery import Silence, compare
    ck, split = engine_pretrained()
    X, y = split.source.X[split.val_idx], split.source.y[split.val_idx]
    before, after = compare(ck.net, ck.net.params, [Silence(1, 12)], X, y)

    open_page(page, server, "inspect", query="network=pretrained&neuron=12&image=18",
              expect_text="Edit the network and see")
    assert_no_errors(page)
    assert metric(page, ACC) == f"{before.accuracy:.1%}"
    shows(page, "Image 18, a")
    click_button(page, "+ open neuron", until=lambda: page.get_by_role("button", name="Silence them").is_enabled())
    click_button(page, "Silence them", until="silence A1[:, 12]: W2[12, :] = 0")
    wait_until(lambda: metric(page, ACC) == f"{after.accuracy:.1%}", what="the accuracy after the edit")

    box = page.get_by_label("Validation image (0–999)")     # another image, picked in the section above
    box.fill("25")
    box.press("Enter")
    shows(page, "Image 25, a")
    settle(page)
    d1 = int(after.proba[25].argmax())
    assert f"edited, it says {d1} ({after.proba[25, d1]:.1%})" in main_text(page).replace("**", "")

    click_button(page, "Undo all", until="No edits yet")
    assert metric(page, ACC) == f"{before.accuracy:.1%}"
    assert_no_errors(page)

