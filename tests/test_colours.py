"""The colours survive colour-blindness: under simulated deuteranopia (Machado et al. 2009,
severity 1, tools/cvd.py) the ten digit colours stay apart, right and wrong in the
confusion matrix stay apart, and every number in the matrix is readable on its cell.

Distances are CIE76 ΔE (Euclidean in L*a*b*): about 2.3 is just noticeable; the old
tab10 palette had pairs at 7 after simulation (2/3, 0/4, 6/9, 1/8 looked alike), which
is what the issue saw. 15 is a bit under Okabe–Ito's own closest pair (17, orange and
yellow), the best a ten-colour palette on white can do by this measure.
"""
from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from tools.cvd import DEUTERANOPIA, delta_e, deuteranopia, simulate_png
from ui.colours import DIGIT_COLOURS, contrast, rgb
from ui.inspect_plots import class_boxes, confusion_figure, pca_scatter, prediction_counts
from ui.trace_viewer import colour_scales

MIN_DIGIT_DE = 15.0
MIN_RIGHT_WRONG_DE = 30.0
WCAG_AA = 4.5
TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",   # the palette before issue 15
         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def srgb(colour: str) -> np.ndarray:
    """'#rrggbb' or plotly's 'rgb(r, g, b)' as sRGB in [0, 1]."""
    m = re.fullmatch(r"rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+).*\)", colour.replace(" ", ""))
    return np.array([float(v) for v in m.groups()]) / 255 if m else rgb(colour)


def painted(scale, t: float) -> str:
    """The colour plotly paints at ``t`` of a colorscale given as (position, colour) stops:
    linear in sRGB between stops. Written here again, independently of ui.colours."""
    pos = [float(p) for p, _ in scale]
    cols = np.array([srgb(c) for _, c in scale])
    c = [np.interp(t, pos, cols[:, i]) for i in range(3)]
    return "#%02x%02x%02x" % tuple(int(round(255 * v)) for v in c)


def closest_pair(colours: list[str], simulate=deuteranopia) -> tuple[float, int, int]:
    s = simulate(np.array([srgb(c) for c in colours]))
    return min((float(delta_e(s[i], s[j])), i, j) for i, j in itertools.combinations(range(len(colours)), 2))


def test_the_simulation_is_machado_and_keeps_greys():
    assert np.allclose(DEUTERANOPIA.sum(axis=1), 1, atol=1e-3)          # white stays white
    grey = np.array([0.5, 0.5, 0.5])
    assert np.allclose(deuteranopia(grey), grey, atol=2e-3)
    # red and green, the classic confusion, come out close; blue and orange stay far apart
    assert delta_e(deuteranopia(srgb("#d62728")), deuteranopia(srgb("#2ca02c"))) < 10
    assert delta_e(deuteranopia(srgb("#0072b2")), deuteranopia(srgb("#e69f00"))) > 40


def test_the_check_catches_the_old_palette():
    d, i, j = closest_pair(TAB10)
    assert d < MIN_DIGIT_DE, (d, i, j)


def test_digit_colours_stay_apart_for_deuteranopes_and_everyone_else():
    assert len(DIGIT_COLOURS) == len(set(DIGIT_COLOURS)) == 10
    d, i, j = closest_pair(DIGIT_COLOURS)
    assert d >= MIN_DIGIT_DE, f"digits {i} and {j} are only ΔE {d:.1f} apart under deuteranopia"
    d, i, j = closest_pair(DIGIT_COLOURS, simulate=lambda c: c)
    assert d >= MIN_DIGIT_DE, f"digits {i} and {j} are only ΔE {d:.1f} apart"


def test_every_figure_that_colours_by_digit_uses_the_palette_and_names_the_digit():
    rng = np.random.default_rng(0)
    y = np.arange(300) % 10
    scatter = pca_scatter(rng.normal(size=(300, 2)), y, (y + (rng.random(300) < 0.1)) % 10)
    assert [t.marker.color for t in scatter.data] == DIGIT_COLOURS
    tags = {a.text: a for a in scatter.layout.annotations}
    assert sorted(tags) == [f"<b>{c}</b>" for c in range(10)]              # the digit is written, not only coloured
    for c in range(10):
        tag = tags[f"<b>{c}</b>"]
        assert tag.bgcolor == DIGIT_COLOURS[c] and contrast(tag.font.color, tag.bgcolor) >= WCAG_AA
    boxes = class_boxes([rng.normal(size=20) for _ in range(10)])
    assert [t.marker.color for t in boxes.data] == DIGIT_COLOURS
    assert list(prediction_counts(y).data[0].marker.color) == DIGIT_COLOURS
    # the stepper's trace viewer paints the labels y with the same ten colours
    labels = colour_scales()["labels"]
    assert ["#" + labels[i:i + 6] for i in range(0, 60, 6)] == DIGIT_COLOURS


def _confusion_cells(fig):
    """(text colour, painted cell colour) for every cell: the diagonal trace paints the
    diagonal, the error trace the rest."""
    on, off = fig.data[0], fig.data[1]
    out = []
    for ann in fig.layout.annotations:
        t, p = int(ann.y), int(ann.x)
        trace = on if t == p else off
        z = np.asarray(trace.z, float)[t, p]
        out.append((ann.font.color, painted(trace.colorscale, (z - trace.zmin) / (trace.zmax - trace.zmin)), t, p))
    return out


def test_right_and_wrong_stay_apart_at_every_shade():
    fig = confusion_figure(np.eye(10, dtype=int) * 50 + 3)
    right, wrong = fig.data[0].colorscale, fig.data[1].colorscale
    for t in np.linspace(0.2, 1, 17):
        a, b = srgb(painted(right, t)), srgb(painted(wrong, t))
        assert delta_e(a, b) >= MIN_RIGHT_WRONG_DE, t
        assert delta_e(deuteranopia(a), deuteranopia(b)) >= MIN_RIGHT_WRONG_DE, t


def _matrices():
    rng = np.random.default_rng(1)
    trained = np.diag(rng.integers(900, 1100, 10)) + rng.integers(0, 30, (10, 10)) * (1 - np.eye(10, dtype=int))
    untrained = np.zeros((10, 10), int)
    untrained[:, 3] = rng.integers(80, 120, 10)                # an untrained network says "3" to everything
    spread = rng.integers(0, 100, (10, 10))                     # every shade of both scales
    return {"trained": trained, "untrained": untrained, "spread": spread, "empty": np.zeros((10, 10), int)}


@pytest.mark.parametrize("normalised", [False, True])
@pytest.mark.parametrize("name", list(_matrices()))
def test_every_number_in_the_confusion_matrix_is_readable(name, normalised):
    fig = confusion_figure(_matrices()[name], normalised=normalised)
    cells = _confusion_cells(fig)
    assert len(cells) == 100
    for text, cell, t, p in cells:
        assert contrast(text, cell) >= WCAG_AA, f"true {t}, predicted {p}: {text} on {cell}"


def test_a_png_is_simulated_pixel_by_pixel(tmp_path):
    from PIL import Image
    img = np.zeros((2, 2, 3), np.uint8)
    img[0, 0], img[0, 1], img[1, 0], img[1, 1] = (214, 39, 40), (44, 160, 44), (255, 255, 255), (0, 114, 178)
    Image.fromarray(img).save(tmp_path / "in.png")
    simulate_png(str(tmp_path / "in.png"), str(tmp_path / "out.png"))
    out = np.asarray(Image.open(tmp_path / "out.png"), float) / 255
    assert np.allclose(out[1, 0], 1, atol=0.01)                 # white stays white
    assert np.allclose(out[0, 0], deuteranopia(img[0, 0] / 255), atol=0.01)
    assert delta_e(out[0, 0], out[0, 1]) < 10                   # red and green merge, as in the issue


def test_before_and_after_an_edit_stay_apart_and_after_is_hatched_too():
    from ui.inspect_plots import before_after_bars
    fig = before_after_bars(np.full(10, 0.9), np.full(10, 0.5), true=3)
    before, after = fig.data
    a, b = srgb(before.marker.color), srgb(after.marker.color)
    assert delta_e(a, b) >= MIN_RIGHT_WRONG_DE
    assert delta_e(deuteranopia(a), deuteranopia(b)) >= MIN_RIGHT_WRONG_DE
    assert not before.marker.pattern.shape and after.marker.pattern.shape    # not told apart by colour alone
    assert list(before.marker.line.width) == [3 if c == 3 else 0 for c in range(10)]   # the true digit outlined
