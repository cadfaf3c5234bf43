"""The app's categorical colours, made to survive colour-blindness, and the one rule
for text on a coloured cell.

About 1 man in 12 sees red and green as one colour. The digits therefore get the
Okabe–Ito palette (Okabe & Ito 2008, "Color Universal Design") plus two of Paul Tol's
colour-blind-safe colours, and every figure that colours by digit also writes the digit;
right and wrong are blue and orange, never green and red. tests/test_colours.py checks
both under simulated deuteranopia (tools/cvd.py).
"""
from __future__ import annotations

import numpy as np

# one colour per digit. Similar-looking digits (1/7, 4/9, 3/5/8) got colours far apart;
# Okabe–Ito's closest pair (orange, yellow) went to 1 and 6, which are rarely confused.
DIGIT_COLOURS = ["#0072b2",   # 0 blue
                 "#e69f00",   # 1 orange
                 "#009e73",   # 2 bluish green
                 "#d55e00",   # 3 vermillion
                 "#56b4e9",   # 4 sky blue
                 "#cc79a7",   # 5 reddish purple
                 "#f0e442",   # 6 yellow
                 "#000000",   # 7 black
                 "#332288",   # 8 indigo (Tol)
                 "#882255"]   # 9 wine (Tol)

# right answers and wrong ones (the confusion matrix): ColorBrewer's Blues and Oranges,
# white at 0. Blue against orange stays apart under every common colour-blindness.
RIGHT_SCALE = ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"]
WRONG_SCALE = ["#fff5eb", "#fee6ce", "#fdd0a2", "#fdae6b", "#fd8d3c", "#f16913", "#d94801", "#a63603", "#7f2704"]

# the sign of a contribution (bars left and right of zero): Okabe–Ito blue and vermillion
POSITIVE, NEGATIVE = "#0072b2", "#d55e00"

# a network before and after an edit (pages/inspect.py): Okabe–Ito blue and orange; "after" is also hatched
BEFORE, AFTER = "#0072b2", "#e69f00"

DARK_TEXT = "#000000"
LIGHT_TEXT = "#ffffff"


def rgb(colour: str) -> np.ndarray:
    """'#rrggbb' (or '#rgb') as sRGB in [0, 1]."""
    h = colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)], float) / 255


def to_hex(srgb) -> str:
    return "#%02x%02x%02x" % tuple(int(round(255 * float(c))) for c in np.clip(srgb, 0, 1))


def plotly_scale(colours: list[str]) -> list[list]:
    """Evenly spaced stops, as plotly's ``colorscale`` wants them."""
    return [[i / (len(colours) - 1), c] for i, c in enumerate(colours)]


def scale_colour(colours: list[str], t: float) -> str:
    """The colour a plotly heatmap paints at ``t`` in [0, 1] of the scale ``colours``:
    plotly interpolates linearly in sRGB between evenly spaced stops."""
    t = min(max(float(t), 0.0), 1.0) if np.isfinite(t) else 0.0
    x = t * (len(colours) - 1)
    i = min(int(x), len(colours) - 2)
    a, b = rgb(colours[i]), rgb(colours[i + 1])
    return to_hex(a + (x - i) * (b - a))


def linear(srgb) -> np.ndarray:
    """sRGB in [0, 1] → linear light (what screens add and what eyes' cones integrate)."""
    srgb = np.asarray(srgb, float)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance: 0 for black, 1 for white."""
    return float(linear(rgb(colour)) @ [0.2126, 0.7152, 0.0722])


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio, 1 to 21; 4.5 is the minimum for normal text."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def text_on(background: str) -> str:
    """Black or white, whichever reads better on ``background``. With pure black and
    white one of the two always has a contrast of at least 4.58:1."""
    return DARK_TEXT if contrast(DARK_TEXT, background) >= contrast(LIGHT_TEXT, background) else LIGHT_TEXT

# runs side by side (Compare runs): Okabe–Ito without its yellow (too pale on white), then two of Tol's;
# past ten runs the colours come round again with a dashed line (ui/compare_plots.py)
RUN_COLOURS = ["#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#000000", "#332288", "#882255",
               "#999933"]
