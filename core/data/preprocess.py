"""Turn a drawing into an MNIST digit, the way MNIST itself was made.

LeCun, Cortes and Burges describe it: the NIST digits were "size normalized to
fit in a 20x20 pixel box while preserving their aspect ratio", anti-aliased
(hence grey levels), then "centered in a 28x28 image by computing the center
of mass of the pixels, and translating the image so as to position this point
at the center of the 28x28 field". A network trained on MNIST only knows
digits that went through those steps, so a drawing must go through them too:

1. grey levels, ink bright on black (a dark-on-light picture is inverted);
2. crop to the bounding box of the ink;
3. scale so the longer side is 20 pixels, aspect ratio kept, by *area
   averaging* (each output pixel is the mean of the input area it covers —
   the anti-aliasing; pure NumPy, one small matrix per axis);
4. paste into 28×28 so that the centre of mass lands on pixel (14, 14) — where
   it is, on average, in MNIST's own images (measured: 13.99, 14.00).

The shift is a whole number of pixels, as in MNIST (its centres of mass are
spread ±0.29 px around 14, the spread of rounding). If centring would push
ink off the 28×28 field, the box is kept inside instead.
"""
from __future__ import annotations

import io

import numpy as np

BOX = 20          # the longer side of the digit, in pixels
SIZE = 28         # the image
CENTRE = 14.0     # where the centre of mass goes (row, column)
INK = 0.1         # grey levels below this fraction of the brightest pixel are background
MAX_UPLOAD_PIXELS = 4096 * 4096


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights: output pixel ``i`` averages the input interval
    ``[i·s, (i+1)·s)`` with ``s = n_in / n_out``, each input pixel weighted by
    how much of it falls inside. Rows sum to 1."""
    s = n_in / n_out
    lo = np.arange(n_out)[:, None] * s
    hi = lo + s
    k = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, k + 1) - np.maximum(lo, k), 0, None)
    return overlap / s


def resize_area(img: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Area-averaged resize (down or up) of a 2-D array."""
    img = np.asarray(img, np.float64)
    return area_matrix(img.shape[0], rows) @ img @ area_matrix(img.shape[1], cols).T


def centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    """(row, column) of the intensity-weighted mean pixel position."""
    img = np.asarray(img, np.float64)
    total = img.sum()
    r = np.arange(img.shape[0]) @ img.sum(axis=1) / total
    c = np.arange(img.shape[1]) @ img.sum(axis=0) / total
    return float(r), float(c)


def mnist_style(gray: np.ndarray, *, ink: float = INK) -> np.ndarray | None:
    """A drawing (2-D grey levels, ink bright on dark, any size, 0–255 or 0–1)
    as a ``(784,)`` uint8 MNIST image; ``None`` when there is no ink at all."""
    g = np.asarray(gray, np.float64)
    if g.ndim != 2 or g.size == 0:
        raise ValueError(f"Expected a 2-D grey image, got shape {g.shape}.")
    g = np.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0).clip(0, None)
    top = g.max()
    if top <= 0:
        return None
    g = np.where(g >= ink * top, g / top, 0.0)  # background to 0, brightest ink to 1
    rows, cols = np.flatnonzero(g.any(axis=1)), np.flatnonzero(g.any(axis=0))
    crop = g[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    if h >= w:
        nh, nw = BOX, max(1, int(round(BOX * w / h)))
    else:
        nh, nw = max(1, int(round(BOX * h / w))), BOX
    small = resize_area(crop, nh, nw)
    small /= small.max()  # anti-aliasing spreads thin strokes; keep the darkest ink at 255
    cy, cx = centre_of_mass(small)
    r0 = int(np.clip(np.round(CENTRE - cy), 0, SIZE - nh))
    c0 = int(np.clip(np.round(CENTRE - cx), 0, SIZE - nw))
    out = np.zeros((SIZE, SIZE))
    out[r0:r0 + nh, c0:c0 + nw] = small
    return np.round(out * 255).clip(0, 255).astype(np.uint8).ravel()


def gray_from_rgba(rgba: np.ndarray) -> np.ndarray:
    """The canvas's picture (white strokes, transparent or black background) as
    grey levels 0–255: brightness times opacity."""
    a = np.asarray(rgba, np.float64)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"Expected an RGB(A) image, got shape {a.shape}.")
    lum = a[..., :3].mean(axis=2)
    if a.shape[2] == 4:
        lum = lum * a[..., 3] / 255
    return lum


def gray_from_picture(data: bytes) -> np.ndarray:
    """An uploaded picture (PNG, JPEG…) as grey levels 0–255 with bright ink on
    a dark background: a picture that is mostly light (dark pen on paper) is
    inverted. Raises ``ValueError`` with a readable message for anything else."""
    from PIL import Image, UnidentifiedImageError  # Streamlit depends on Pillow

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_UPLOAD_PIXELS:
                raise ValueError(f"The picture is {im.width}×{im.height} pixels; use one under "
                                 f"{MAX_UPLOAD_PIXELS:,} pixels.")
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255) if _ink_is_dark(im) else (0, 0, 0, 255))
                im = Image.alpha_composite(bg, im)
            g = np.asarray(im.convert("L"), np.float64)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise ValueError(f"This is not a picture I can read: {err}") from None
    if np.median(g) > 127:
        g = 255 - g
    return g


def _ink_is_dark(im) -> bool:
    """For a picture with transparency: is what is drawn on it (its opaque pixels) dark?
    Then it goes on white paper, else on black."""
    a = np.asarray(im, np.float64)
    opaque = a[..., 3] > 127
    if not opaque.any():
        return False
    return bool(a[..., :3][opaque].mean() < 127)
