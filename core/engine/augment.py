"""Data augmentation: small random shifts and rotations of a batch's images, in NumPy alone.

Each image of a training batch is moved by a whole number of pixels (up to ``shift`` each
way, across and down; what comes in from outside the image is 0, the background) and turned
by an angle drawn uniformly from ``±rotate`` degrees about the image's centre, sampled by
bilinear interpolation. The network sees slightly different digits each time it meets an
image, so it learns the digit rather than its exact pixels; evaluation never augments.

Both moves are one resampling: output pixel ``p`` takes the source image at
``R(−θ)·(p − s − c) + c`` (``c`` the centre (13.5, 13.5), ``s`` the shift, ``R`` a rotation),
interpolated between the four pixels around it (``a + (b − a)·f`` across, then down). With θ = 0 that point is a whole pixel, so a
pure shift copies values exactly (0 when it falls outside), and no augmentation at all is
the identity bit for bit.

The random numbers come from the generator the trainer gives each step
(:func:`core.engine.trainer.augment_rng`: the seed and the step's number alone), so a run,
a resumed or recomputed step and the training process all see the same images.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIDE = 28                  # MNIST images are SIDE × SIDE
MAX_SHIFT = 4              # pixels, each way: a digit is about 20 pixels inside a 28-pixel frame
MAX_ROTATE = 20.0          # degrees, each way: more starts to turn a 6 into something else


@dataclass(frozen=True)
class Augmentation:
    """What augmentation did to one batch: each image's shift and angle, and the images before."""

    shifts: np.ndarray     # (m, 2) int: (down, right) in pixels
    angles: np.ndarray     # (m,) float: degrees, counter-clockwise as the image is drawn
    original: np.ndarray   # (m, 784): the batch as it came from the data set

    def describe(self, i: int) -> str:
        """Image ``i``'s move in words: "2 px right, 1 px up, turned 7.4° anticlockwise"."""
        dy, dx = (int(v) for v in self.shifts[i])
        a = float(self.angles[i])
        parts = []
        if dx:
            parts.append(f"{abs(dx)} px {'right' if dx > 0 else 'left'}")
        if dy:
            parts.append(f"{abs(dy)} px {'down' if dy > 0 else 'up'}")
        if round(a, 1):
            parts.append(f"turned {abs(a):.1f}° {'anticlockwise' if a > 0 else 'clockwise'}")
        return ", ".join(parts) or "unchanged"


def draw(rng: np.random.Generator, m: int, shift: int, rotate: float) -> tuple[np.ndarray, np.ndarray]:
    """Each of ``m`` images' shift (whole pixels in ``[-shift, shift]``, down and right) and
    angle (degrees, uniform in ``[-rotate, rotate]``). The shifts are drawn first and the
    angles always, so changing one setting never changes what the other draws."""
    shifts = rng.integers(-int(shift), int(shift) + 1, size=(m, 2))
    angles = rng.uniform(-1.0, 1.0, size=m) * float(rotate)
    return shifts, angles


def transform(X: np.ndarray, shifts: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """The images ``X`` (m, 784), each shifted by ``shifts[i]`` = (down, right) whole pixels
    with zero fill and turned ``angles[i]`` degrees anticlockwise (as drawn, row 0 at the top)
    about the centre, by bilinear interpolation; in ``X``'s dtype. Vectorised over the batch.
    Without a turn the resample only copies pixels: :func:`_shift` copies them directly, bit for
    bit the same and several times faster."""
    X = np.asarray(X)
    m = X.shape[0]
    dtype = X.dtype if X.dtype.kind == "f" else np.float32
    if m == 0:
        return X.astype(dtype, copy=True)
    if not np.any(angles):
        return _shift(X.astype(dtype, copy=False), np.asarray(shifts))
    return _resample(X, shifts, angles, dtype)


def _shift(X: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Each image moved by whole pixels (down, right), zeros where nothing arrives: one slice copy
    per distinct move in the batch (at most 81 for moves of up to 4 px)."""
    m = X.shape[0]
    images = X.reshape(m, SIDE, SIDE)
    out = np.zeros_like(images)
    moves, which = np.unique(shifts.reshape(m, 2), axis=0, return_inverse=True)
    for k, (dy, dx) in enumerate(moves.tolist()):
        rows = np.flatnonzero(which.ravel() == k)
        if abs(dy) >= SIDE or abs(dx) >= SIDE:
            continue
        out[rows, max(dy, 0):SIDE + min(dy, 0), max(dx, 0):SIDE + min(dx, 0)] = \
            images[rows, max(-dy, 0):SIDE + min(-dy, 0), max(-dx, 0):SIDE + min(-dx, 0)]
    return out.reshape(m, SIDE * SIDE)


def _resample(X: np.ndarray, shifts: np.ndarray, angles: np.ndarray, dtype) -> np.ndarray:
    """:func:`transform` by bilinear interpolation (any turn)."""
    m = X.shape[0]
    # pad: 1 zero row/column before, 2 after, so clipped coordinates in [-1, SIDE] read zeros
    P = SIDE + 3
    padded = np.zeros((m, P, P), dtype)
    padded[:, 1:SIDE + 1, 1:SIDE + 1] = X.reshape(m, SIDE, SIDE)
    # Every step below writes into arrays made once (``out=``, in place): a batch's temporaries are
    # 200 KB each, and allocating a dozen of them costs more than the arithmetic.
    c = np.float32((SIDE - 1) / 2)
    r = np.arange(SIDE, dtype=np.float32) - c
    th = np.deg2rad(np.asarray(angles, np.float64))
    cos, sin = np.cos(th).astype(np.float32)[:, None, None], np.sin(th).astype(np.float32)[:, None, None]
    # output pixel (row, col) relative to the centre, less the shift (whole numbers: exact in float32)
    yy = r[None, :, None] - np.asarray(shifts[:, 0], np.float32)[:, None, None]       # (m, 28, 1)
    xx = r[None, None, :] - np.asarray(shifts[:, 1], np.float32)[:, None, None]       # (m, 1, 28)
    # source = R(−θ)·(p − s − c) + c, rows growing downwards (θ > 0 turns the digit anticlockwise)
    sy = np.multiply(cos, yy, out=np.empty((m, SIDE, SIDE), np.float32))
    sy += sin * xx
    sy += c
    sx = np.multiply(cos, xx, out=np.empty((m, SIDE, SIDE), np.float32))
    sx -= sin * yy
    sx += c
    np.clip(sy, -1.0, SIDE, out=sy)
    np.clip(sx, -1.0, SIDE, out=sx)
    y0, x0 = np.floor(sy), np.floor(sx)
    sy -= y0                                  # the fractions: how far past the top-left neighbour
    sx -= x0
    fy, fx = sy.reshape(m, -1).astype(dtype, copy=False), sx.reshape(m, -1).astype(dtype, copy=False)
    # flat index of each output pixel's top-left neighbour in the padded batch (whole numbers, exact
    # in float32 below 2**24 = a batch of 17,000 images; float64 beyond)
    if m * P * P >= 2**24:
        y0, x0 = y0.astype(np.float64), x0.astype(np.float64)
    y0 *= P
    y0 += x0
    y0 += (np.arange(m, dtype=y0.dtype) * (P * P) + (P + 1))[:, None, None]
    i00 = y0.astype(np.intp).reshape(m, -1)
    flat = padded.ravel()
    # a b   the four neighbours (their flat indices i00, +1, +P, +P+1: views of flat shifted by as much)
    # d e   blended a + (b − a)·fx across, then top + (bottom − top)·fy down, in place (into x0's
    #       and y0's arrays, free now, when they have the images' dtype)
    spare = y0.dtype == flat.dtype
    a = flat.take(i00, out=x0.reshape(m, -1) if spare else None)
    b = flat[1:].take(i00, out=y0.reshape(m, -1) if spare else None)
    b -= a
    b *= fx
    b += a
    d = flat[P:].take(i00, out=a)
    e = flat[P + 1:].take(i00)
    e -= d
    e *= fx
    e += d
    e -= b
    e *= fy
    e += b
    return e

def augment(X: np.ndarray, rng: np.random.Generator, shift: int, rotate: float) -> tuple[np.ndarray, Augmentation]:
    """A batch's images as augmentation gives them to the network, and what it did."""
    shifts, angles = draw(rng, np.shape(X)[0], shift, rotate)
    return transform(X, shifts, angles), Augmentation(shifts, angles, X)


def to_u8(X: np.ndarray) -> np.ndarray:
    """Images scaled to [0, 1] (an augmented batch) back as grey levels 0–255, to draw them."""
    return np.clip(np.rint(np.asarray(X, np.float64) * 255), 0, 255).astype(np.uint8)


def describe_settings(shift: int, rotate: float) -> str:
    """The augmentation a trainer applies, in words ("" when none)."""
    parts = ([f"moved up to {shift} px each way"] if shift else []) + \
            ([f"turned up to {rotate:g}° either way"] if rotate else [])
    return " and ".join(parts)
