"""Simulate colour-vision deficiency, to check that the app's colours survive it.

    python tools/cvd.py page.png page-deuteranopia.png

Deuteranopia (no working green cones, about 1 man in 100) by Machado, Oliveira and
Fernandes (2009), "A physiologically-based model for simulation of color vision
deficiency", severity 1.0: a 3×3 matrix applied to *linear* RGB. The tests
(tests/test_colours.py) use the same functions on the app's palettes.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ui.colours import linear as to_linear, rgb as hex_to_rgb  # noqa: E402

# Machado et al. 2009, table of matrices, deuteranomaly at severity 1.0 (= deuteranopia)
DEUTERANOPIA = np.array([[0.367322, 0.860646, -0.227968],
                         [0.280085, 0.672501, 0.047413],
                         [-0.011820, 0.042940, 0.968881]])


def to_srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(np.asarray(linear, float), 0, 1)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def deuteranopia(srgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] (any shape ending in 3) as a deuteranope sees it, in sRGB."""
    return to_srgb(to_linear(srgb) @ DEUTERANOPIA.T)


def to_lab(srgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] → CIE L*a*b* (D65 white)."""
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = to_linear(srgb) @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIE76 colour difference: Euclidean distance in L*a*b*. About 2.3 is just noticeable;
    colours meant to be told apart at a glance in a scatter plot want 20 or more."""
    return np.linalg.norm(to_lab(a) - to_lab(b), axis=-1)


def simulate_png(src: str, dst: str) -> None:
    from PIL import Image
    img = Image.open(src).convert("RGB")
    rgb = np.asarray(img, float) / 255
    out = np.round(deuteranopia(rgb) * 255).astype(np.uint8)
    Image.fromarray(out).save(dst)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.split("\n\n")[1])
    simulate_png(sys.argv[1], sys.argv[2])
