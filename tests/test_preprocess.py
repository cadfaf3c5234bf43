"""core/data/preprocess.py: a drawing becomes an MNIST digit the way MNIST's were made."""
import io
from pathlib import Path

import numpy as np
import pytest

from core.data.mnist import make_split
from core.engine.network import MLP
from core.engine.optim import SGD
from core.data.preprocess import (area_matrix, centre_of_mass, gray_from_picture, gray_from_rgba, mnist_style,
                             resize_area)
from core.engine.trainer import Trainer, evaluate


PRETRAINED = Path(__file__).resolve().parent.parent / "data" / "pretrained.npz"


@pytest.fixture(scope="module")
def net(mnist):
    """The pretrained network when it is there, else one trained briefly on a small pool."""
    if PRETRAINED.exists():
        from core.lab import checkpoint
        return checkpoint.load(PRETRAINED).net
    split = make_split(mnist["train"], pool=4000, val=500, seed=0)
    trainer = Trainer(MLP([784, 64, 64, 10], seed=0), SGD(0.1), split, batch_size=64, seed=0)
    trainer.run(15)
    return trainer.net


def ink_box(img784):
    im = img784.reshape(28, 28)
    rows, cols = np.flatnonzero(im.any(1)), np.flatnonzero(im.any(0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def test_area_resampling_averages_areas():
    for n_in, n_out in ((280, 20), (7, 3), (3, 7), (20, 20)):
        np.testing.assert_allclose(area_matrix(n_in, n_out).sum(axis=1), 1.0)
    img = np.arange(16.0).reshape(4, 4)
    np.testing.assert_allclose(resize_area(img, 2, 2), img.reshape(2, 2, 2, 2).mean(axis=(1, 3)))
    np.testing.assert_allclose(resize_area(np.full((30, 50), 0.7), 12, 20), 0.7)
    np.testing.assert_allclose(resize_area(img, 4, 4), img)


def test_empty_canvas_gives_none():
    assert mnist_style(np.zeros((280, 280))) is None
    assert mnist_style(gray_from_rgba(np.zeros((280, 280, 4), np.uint8))) is None


def test_mnist_digits_pass_through_centred_and_classified_the_same(mnist, net):
    X, y = mnist["test"].X[:300], mnist["test"].y[:300]
    out = np.stack([mnist_style(x.reshape(28, 28)) for x in X])
    assert out.shape == (300, 784) and out.dtype == np.uint8
    for img in out:
        r, c = centre_of_mass(img.reshape(28, 28))
        assert abs(r - 14) <= 1 and abs(c - 14) <= 1
        r0, r1, c0, c1 = ink_box(img)
        assert max(r1 - r0, c1 - c0) == 20
    before, after = evaluate(net, X, y)["pred"], evaluate(net, out, y)["pred"]
    assert (before == after).mean() >= 0.97
    # and the images barely change: MNIST is already in this form
    assert np.abs(out.astype(int) - X.astype(int)).mean() < 8


def test_a_small_digit_in_a_corner_is_centred_and_scaled_to_20_pixels(mnist, net):
    X, y = mnist["test"].X[:40], mnist["test"].y[:40]
    drawn = []
    for k, x in enumerate(X):
        canvas = np.zeros((280, 280))
        # a 56×56 copy (digit about 40 px tall) near the top-left or bottom-right corner
        r0, c0 = (4, 6) if k % 2 else (220, 218)
        canvas[r0:r0 + 56, c0:c0 + 56] = resize_area(x.reshape(28, 28).astype(float), 56, 56)
        img = mnist_style(canvas)
        r, c = centre_of_mass(img.reshape(28, 28))
        assert abs(r - 14) <= 1 and abs(c - 14) <= 1
        top, bottom, left, right = ink_box(img)
        assert max(bottom - top, right - left) == 20
        assert min(bottom - top, right - left) <= 20
        drawn.append(img)
    before, after = evaluate(net, X, y)["pred"], evaluate(net, np.stack(drawn), y)["pred"]
    assert (before == after).mean() >= 0.9


def test_aspect_ratio_is_kept():
    canvas = np.zeros((280, 280))
    canvas[40:240, 130:150] = 255      # a "1": 200 tall, 20 wide
    img = mnist_style(canvas).reshape(28, 28)
    r0, r1, c0, c1 = ink_box(img)
    assert r1 - r0 == 20 and c1 - c0 == 2
    assert img.max() == 255


def test_canvas_rgba_white_strokes_on_transparent():
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[100:180, 120:140] = (255, 255, 255, 255)
    rgba[100:180, 140:142] = (255, 255, 255, 128)   # an anti-aliased edge
    g = gray_from_rgba(rgba)
    assert g[150, 130] == 255 and g[150, 141] == pytest.approx(128) and g[0, 0] == 0
    assert mnist_style(g) is not None


def test_an_uploaded_photo_of_dark_ink_on_paper_is_inverted():
    from PIL import Image
    a = np.full((100, 80), 240, np.uint8)
    a[20:80, 35:45] = 10                 # dark stroke on light paper
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    g = gray_from_picture(buf.getvalue())
    assert g[50, 40] > 200 and g[5, 5] < 50
    img = mnist_style(g).reshape(28, 28)
    r, c = centre_of_mass(img)
    assert abs(r - 14) <= 1 and abs(c - 14) <= 1


def test_a_file_that_is_not_a_picture_is_refused_with_a_message():
    with pytest.raises(ValueError, match="not a picture"):
        gray_from_picture(b"label,pixel0\n1,2\n")
