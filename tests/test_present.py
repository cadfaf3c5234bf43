"""Presentation mode (ui/present.py): ``?present=1`` and the sidebar's toggle agree, the pages'
explanatory prose is left out while presenting, and every chart's axis text is big and dark."""
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from ui import figures, inspect_plots, training_plots
from ui.state import session

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
INTRO = {   # a sentence of each page's intro paragraph
    "pages/stepper.py": "One mini-batch through the network, one phase at a time",
    "pages/lr_lesson.py": "The learning rate η says how far one step goes",
    "pages/training.py": "The step you inspected on the stepper, repeated",
    "pages/evaluate.py": "Run every held-out image through the network",
    "pages/inspect.py": "The weights of a trained network are just numbers",
}


def app(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    at.switch_page(page)
    return at.run()


def text_of(at) -> str:
    return " ".join(m.value for m in [*at.markdown, *at.caption])


def present_param(at):
    value = at.query_params.get("present")
    return value[0] if isinstance(value, list) and value else value


def toggle(at):
    [t] = [t for t in at.toggle if t.label == "Presentation mode"]
    return t


@pytest.mark.parametrize("page", list(INTRO))
def test_the_address_turns_it_on_and_the_prose_goes(page):
    at = app(page, {"present": "1"})
    assert not at.exception
    assert session(at.session_state).present is True
    assert toggle(at).value is True
    assert INTRO[page] not in text_of(at)
    plain = app(page)                                   # without it, the same page explains
    assert not plain.exception and INTRO[page] in text_of(plain)


def test_the_toggle_turns_it_off_and_takes_it_out_of_the_address():
    at = app("pages/stepper.py", {"present": "1"})
    assert present_param(at) == "1"
    toggle(at).set_value(False)
    at.run()
    assert session(at.session_state).present is False
    assert present_param(at) is None
    assert INTRO["pages/stepper.py"] in text_of(at)
    toggle(at).set_value(True)
    at.run()
    assert session(at.session_state).present is True and present_param(at) == "1"
    assert INTRO["pages/stepper.py"] not in text_of(at)


def test_without_the_address_it_is_off():
    at = app("pages/stepper.py")
    assert session(at.session_state).present is False and toggle(at).value is False
    assert present_param(at) is None


def _dark(colour: str) -> bool:
    """A #rgb or #rrggbb colour with at least 10:1 contrast on white (WCAG relative luminance)."""
    h = colour.lstrip("#")
    h = "".join(c * 2 for c in h) if len(h) == 3 else h
    def lin(c):
        c = int(c, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(h[i:i + 2]) for i in (0, 2, 4))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05) >= 10


FIGURES = {
    "heatmap": lambda: figures.heatmap(np.arange(12.0).reshape(3, 4) - 5, "Z1", x_title="unit", y_title="sample"),
    "bars": lambda: figures.bars(np.arange(10), y_title="images"),
    "loss": lambda: training_plots.loss_figure(np.arange(1, 4), [1.0, 0.5, 0.3], [1.1, 0.6, 0.4],
                                               np.array([1.2, 0.9, 0.5, 0.3]), 2, log_x=True),
    "norms": lambda: training_plots.norms_figure(np.arange(1, 4), np.ones((3, 3)), np.ones((3, 3)),
                                                 np.ones((3, 3))),
    "confusion": lambda: inspect_plots.confusion_figure(np.eye(10, dtype=int) * 9 + 1),
    "probabilities": lambda: inspect_plots.probability_bars(np.full(10, 0.1), true=3),
}


@pytest.mark.parametrize("name", list(FIGURES))
def test_for_projector_makes_axis_text_at_least_14px_and_dark(name):
    fig = figures.for_projector(FIGURES[name]())
    axes = [a for k in fig.layout if k.startswith(("xaxis", "yaxis")) for a in [fig.layout[k]]]
    assert axes, "the figure has axes"
    for axis in axes:
        for font in (axis.tickfont, axis.title.font):
            assert font.size >= 14 and _dark(font.color), (name, font)
    assert fig.layout.font.size >= 14 and _dark(fig.layout.font.color)
    for axis in axes:   # plotly draws a log axis' in-between labels (2, 5) at 3/4 size: none of those
        assert axis.type != "log" or axis.dtick == 1 or figures._decades(fig, axis, axis.plotly_name[0] +
                                                                          axis.plotly_name[5:]) < 2, (name, axis)
    assert all(a.font.size >= 14 for a in fig.layout.annotations)
    for trace in fig.data:
        if "colorbar" in trace:
            assert trace.colorbar.tickfont.size >= 14 and _dark(trace.colorbar.tickfont.color)


def test_for_projector_keeps_the_colours_of_notes_on_cells():
    """The confusion matrix writes white on dark cells: only the size of its numbers changes."""
    fig = inspect_plots.confusion_figure(np.eye(10, dtype=int) * 9 + 1)
    before = [a.font.color for a in fig.layout.annotations]
    after = [a.font.color for a in figures.for_projector(fig).layout.annotations]
    assert after == before and any(c.lower() in ("#fff", "#ffffff") for c in before)   # some white on dark cells


def test_for_projector_is_not_the_default():
    fig = figures.heatmap(np.ones((2, 2)), x_title="x")
    assert (fig.layout.xaxis.tickfont.size or 0) < 14    # today's look stays when not presenting
    assert isinstance(figures.for_projector(fig), go.Figure)



def gallery_height(at) -> int:
    """The height of the gallery of mistakes (its rows at their size), as the page drew it."""
    import json
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    [fig] = [f for f in specs if any(a.get("text", "").startswith("4→9") for a in f["layout"].get("annotations", []))]
    return fig["layout"]["height"]


def test_the_gallery_of_mistakes_is_larger_when_presenting():
    """A full-width gallery of digits: fewer, larger ones for a projector (ui.present.grid)."""
    link = {"network": "pretrained", "set": "test", "true": "4", "pred": "9"}
    presenting, plain = app("pages/evaluate.py", link | {"present": "1"}), app("pages/evaluate.py", link)
    assert not presenting.exception and not plain.exception
    assert gallery_height(presenting) >= 1.5 * gallery_height(plain)


def test_a_log_axis_narrower_than_two_powers_of_ten_keeps_its_in_between_labels():
    """With dtick=1 an axis from 0.3 to 0.8 would have no label at all."""
    narrow = figures.for_projector(go.Figure(go.Scatter(x=[1, 2], y=[0.3, 0.8])).update_yaxes(type="log"))
    assert narrow.layout.yaxis.dtick is None
    wide = figures.for_projector(go.Figure(go.Scatter(x=[1, 2], y=[1e-4, 0.8])).update_yaxes(type="log"))
    assert wide.layout.yaxis.dtick == 1
    ranged = go.Figure(go.Scatter(x=[1, 2], y=[0.3, 0.8], yaxis="y2")).update_layout(
        yaxis2=dict(type="log", range=[-5, 1]))
    assert figures.for_projector(ranged).layout.yaxis2.dtick == 1
