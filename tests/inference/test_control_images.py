"""Canny edges, scribbles from sketches, and fitting control images to a target size."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inference.api import InvalidRequestError, ResizeMode
from inference.control_images import (
    ControlImageError,
    as_rgb,
    canny_edges,
    fit_control_image,
    scribble_from_sketch,
)


def _square_photo() -> np.ndarray:
    image = np.full((64, 80, 3), 30, np.uint8)
    image[16:48, 20:60] = (220, 180, 40)
    return image


# ---- Canny ---------------------------------------------------------------------------------


def test_canny_draws_white_edges_on_black_around_the_square():
    edges = canny_edges(_square_photo(), 100, 200)
    assert edges.shape == (64, 80, 3) and edges.dtype == np.uint8
    assert set(np.unique(edges)) == {0, 255}
    assert (edges[..., 0] == edges[..., 1]).all() and (edges[..., 1] == edges[..., 2]).all()
    on = edges[..., 0] > 0
    assert on[16:48, 19:21].any() and on[16:48, 59:61].any()  # left and right sides
    assert not on[24:40, 28:52].any()  # flat inside
    assert not on[:10].any()  # flat outside
    np.testing.assert_array_equal(edges[..., 0], cv2.Canny(_square_photo(), 100, 200))


def test_canny_thresholds_change_the_result():
    rng = np.random.default_rng(3)
    noisy = (_square_photo().astype(int) + rng.integers(-25, 25, (64, 80, 3))).clip(0, 255)
    noisy = noisy.astype(np.uint8)
    loose = canny_edges(noisy, 10, 30)[..., 0] > 0
    strict = canny_edges(noisy, 200, 400)[..., 0] > 0
    assert loose.sum() > strict.sum() > 0


def test_canny_composites_rgba_over_white():
    rgba = np.zeros((32, 32, 4), np.uint8)  # fully transparent: a white page, no edges
    assert not canny_edges(rgba).any()
    rgba[8:24, 8:24] = (0, 0, 0, 255)
    assert canny_edges(rgba)[8:24, 7:9].any()


@pytest.mark.parametrize(
    ("image", "low", "high", "message"),
    [
        (np.zeros((8, 8, 3), np.float32), 100, 200, "8-bit"),
        (np.zeros((8, 8, 2), np.uint8), 100, 200, "gray, RGB or RGBA"),
        (np.zeros((0, 8, 3), np.uint8), 100, 200, "empty"),
        ("not an image", 100, 200, "numpy array"),
        (np.zeros((8, 8, 3), np.uint8), 200, 100, "above the high threshold"),
        (np.zeros((8, 8, 3), np.uint8), float("nan"), 100, "low threshold"),
        (np.zeros((8, 8, 3), np.uint8), -1, 100, "low threshold"),
    ],
)
def test_canny_bad_input(image, low, high, message):
    with pytest.raises(ControlImageError, match=message) as info:
        canny_edges(image, low, high)
    assert isinstance(info.value, InvalidRequestError)


# ---- scribble ------------------------------------------------------------------------------


def test_scribble_uses_alpha_of_transparent_sketch_whatever_the_colour():
    sketch = np.zeros((40, 40, 4), np.uint8)
    sketch[10:12, 5:35] = (255, 255, 0, 255)  # yellow stroke
    sketch[20:22, 5:35] = (0, 0, 0, 255)  # black stroke
    sketch[30, 5:35] = (0, 0, 0, 60)  # faint stroke, under the threshold
    out = scribble_from_sketch(sketch)
    assert out.shape == (40, 40, 3)
    assert (out[10:12, 5:35] == 255).all() and (out[20:22, 5:35] == 255).all()
    assert not out[30].any()
    assert not out[:10].any() and not out[12:20].any()
    soft = scribble_from_sketch(sketch, binary=False)
    assert (soft[30, 5:35] == 60).all()


def test_scribble_from_opaque_paper_uses_darkness():
    paper = np.full((30, 30, 4), 255, np.uint8)
    paper[15, :] = (0, 0, 0, 255)
    out = scribble_from_sketch(paper)
    assert (out[15] == 255).all() and not out[:15].any()
    rgb = np.full((30, 30, 3), 255, np.uint8)
    rgb[:, 7] = 20
    assert (scribble_from_sketch(rgb)[:, 7] == 255).all()


def test_scribble_bad_threshold():
    with pytest.raises(ControlImageError, match=r"0\.\.255"):
        scribble_from_sketch(np.zeros((4, 4, 4), np.uint8), threshold=300)


# ---- fitting -------------------------------------------------------------------------------


def _marked(width: int, height: int) -> np.ndarray:
    """Gradient image (many colours) with a red left column and a blue right column."""
    xs = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    ys = np.linspace(0, 200, height, dtype=np.float32)[:, None, None]
    image = np.concatenate([np.broadcast_to(xs, (height, width, 1)),
                            np.broadcast_to(ys, (height, width, 1)),
                            np.full((height, width, 1), 50, np.float32)], axis=2)  # fmt: skip
    image = image.astype(np.uint8)
    image[:, :4] = (255, 0, 0)
    image[:, -4:] = (0, 0, 255)
    return image


def test_same_size_is_an_unchanged_copy():
    image = _marked(64, 32)
    out = fit_control_image(image, 64, 32, ResizeMode.RESIZE_AND_FILL)
    np.testing.assert_array_equal(out, image)
    assert out is not image


def test_just_resize_stretches_everything_in():
    out = fit_control_image(_marked(200, 100), 100, 100, ResizeMode.JUST_RESIZE)
    assert out.shape == (100, 100, 3)
    assert tuple(out[50, 0]) == (255, 0, 0) and tuple(out[50, 99]) == (0, 0, 255)


def test_crop_and_resize_covers_and_crops_the_sides():
    out = fit_control_image(_marked(200, 100), 100, 100, ResizeMode.CROP_AND_RESIZE)
    assert out.shape == (100, 100, 3)
    # scale 1.0 (height fits), 50 px cut from each side: the coloured columns are gone
    assert not (out[..., 0] == 255).all(axis=0).any()
    np.testing.assert_array_equal(out, _marked(200, 100)[:, 50:150])


def test_resize_and_fill_fits_inside_and_pads_with_the_border_colour():
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 90:110] = 255  # a white block on black
    out = fit_control_image(image, 100, 100, "resize and fill")
    assert out.shape == (100, 100, 3)
    assert not out[:25].any() and not out[75:].any()  # black padding above and below
    assert (out[45:55, 45:55] == 255).all()  # the block, halved, centred

    lineart = np.full((100, 200, 3), 255, np.uint8)  # white page: padding is white too
    lineart[50, :] = 0
    padded = fit_control_image(lineart, 100, 100, ResizeMode.RESIZE_AND_FILL)
    assert (padded[:24] == 255).all() and (padded[76:] == 255).all()


def test_binary_maps_stay_binary_and_few_colour_maps_keep_their_colours():
    edges = np.zeros((50, 50, 3), np.uint8)
    edges[10:40, 25] = 255
    up = fit_control_image(edges, 120, 90, ResizeMode.JUST_RESIZE)
    assert set(np.unique(up)) == {0, 255} and up[..., 0].any()

    seg = np.zeros((40, 40, 3), np.uint8)
    seg[:20] = (120, 10, 200)
    seg[20:, :20] = (5, 250, 70)
    seg[20:, 20:] = (250, 250, 0)
    out = fit_control_image(seg, 97, 53, ResizeMode.CROP_AND_RESIZE)
    colours = {tuple(c) for c in out.reshape(-1, 3)}
    assert colours == {(120, 10, 200), (5, 250, 70), (250, 250, 0)}


def test_rgba_and_gray_inputs():
    gray = np.full((10, 10), 77, np.uint8)
    assert fit_control_image(gray, 20, 20).shape == (20, 20, 3)
    rgba = np.zeros((10, 10, 4), np.uint8)
    np.testing.assert_array_equal(as_rgb(rgba), np.full((10, 10, 3), 255, np.uint8))


@pytest.mark.parametrize(
    ("size", "mode", "message"),
    [((0, 10), ResizeMode.JUST_RESIZE, "outside"), ((10, 10), "squash", "unknown resize mode")],
)
def test_fit_bad_input(size, mode, message):
    with pytest.raises(ControlImageError, match=message):
        fit_control_image(np.zeros((8, 8, 3), np.uint8), *size, mode)
