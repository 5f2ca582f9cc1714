"""Outpaint pre-fill, seam mask, --frame parsing and the grown image (pure numpy)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inference.api import Box
from inference.outpaint import (
    FramedImage,
    FrameSpecError,
    outpaint_mask,
    parse_frame,
    prefill,
    prepare,
    seam_width,
)


def half_picture(width: int = 96, height: int = 64) -> np.ndarray:
    """Left half opaque (red on top, blue below, some texture), right half transparent."""
    rng = np.random.default_rng(3)
    rgba = np.zeros((height, width, 4), np.uint8)
    left = rgba[:, : width // 2]
    left[: height // 2, :, 0] = 220
    left[height // 2 :, :, 2] = 220
    left[..., 1] = rng.integers(0, 30, left.shape[:2], dtype=np.uint8)
    left[..., 3] = 255
    return rgba


def test_prefill_keeps_opaque_pixels_byte_identical():
    rgba = half_picture()
    filled = prefill(rgba, seed=1)
    np.testing.assert_array_equal(filled[:, :48], rgba[:, :48, :3])


def test_prefill_extends_each_edge_colour_into_the_empty_area():
    filled = prefill(half_picture(), seed=1).astype(int)
    # just past the edge: the colour of the row's edge (red above, blue below), not grey
    top, bottom = filled[8, 50], filled[56, 50]
    assert top[0] > 150 and top[2] < 80, top
    assert bottom[2] > 150 and bottom[0] < 80, bottom
    # far from the edge the fill is noisy (something for the sampler to work on), near it calm
    far = filled[8:24, 80:96, 0].std()
    near = filled[8:24, 48:52, 0].std()
    assert far > near + 3


def test_prefill_is_seeded_and_blends_partly_transparent_pixels():
    rgba = half_picture()
    rgba[:, 47, 3] = 128  # a soft edge column
    a, b, c = prefill(rgba, seed=5), prefill(rgba, seed=5), prefill(rgba, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # a half-transparent red pixel over a red-ish fill stays red-ish
    assert a[8, 47, 0] > 150


def test_prefill_of_nothing_is_grey_noise_and_of_everything_is_a_copy():
    empty = np.zeros((32, 32, 4), np.uint8)
    filled = prefill(empty, seed=0)
    assert abs(float(filled.mean()) - 127) < 10
    whole = half_picture()
    whole[..., 3] = 255
    np.testing.assert_array_equal(prefill(whole), whole[..., :3])


def test_mask_covers_the_empty_area_plus_the_seam_and_nothing_farther():
    empty = np.zeros((64, 96), bool)
    empty[:, 48:] = True
    mask = outpaint_mask(empty, seam=10)
    assert (mask[:, 48:] == 255).all()
    assert (mask[:, 38:48] == 255).all()  # the seam: 10 pixels into the picture
    assert (mask[:, :37] == 0).all()


def test_mask_adds_the_users_inpaint_mask():
    empty = np.zeros((64, 96), bool)
    empty[:, 80:] = True
    painted = np.zeros((64, 96), np.uint8)
    painted[10:20, 10:20] = 255
    mask = outpaint_mask(empty, seam=4, extra=painted)
    assert (mask[10:20, 10:20] == 255).all() and mask[30, 30] == 0


def test_prepare_reports_the_empty_area_and_a_seam_that_grows_with_the_frame():
    prepared = prepare(half_picture(), seed=2)
    assert prepared.has_empty and prepared.empty[:, 48:].all() and not prepared.empty[:, :48].any()
    assert seam_width(96, 64) == 16 and seam_width(1024, 768) == 32 and seam_width(8192, 64) == 64
    # the pre-filled picture stays the same outside the mask, so a feathered paste can keep it
    outside = prepared.mask == 0
    np.testing.assert_array_equal(prepared.image[outside], half_picture()[..., :3][outside])


@pytest.mark.parametrize(
    ("text", "box"),
    [("0,0,512,512", Box(0, 0, 512, 512)), (" -128, 8 ,768,512", Box(-128, 8, 768, 512))],
)
def test_parse_frame(text, box):
    assert parse_frame(text) == box


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0,0,0,512", "no area"),
        ("0,0,512,-4", "no area"),
        ("1,2,3", "X,Y,W,H"),
        ("a,b,c,d", "X,Y,W,H"),
        ("1.5,0,64,64", "X,Y,W,H"),
        ("", "X,Y,W,H"),
    ],
)
def test_parse_frame_refuses_bad_frames_in_one_line(text, words):
    with pytest.raises(FrameSpecError) as error:
        parse_frame(text)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_framed_image_grows_to_hold_the_frame_and_keeps_the_image():
    image = np.zeros((40, 60, 3), np.uint8)
    image[..., 1] = 200
    framed = FramedImage(image, Box(-16, 8, 48, 48))
    assert framed.canvas == Box(-16, 0, 76, 56)
    rgba = framed.frame_rgba()
    assert rgba.shape == (48, 48, 4)
    assert (rgba[:, :16, 3] == 0).all() and (rgba[:32, 16:, 3] == 255).all()
    assert (rgba[32:, :, 3] == 0).all()  # below the image
    result = np.full((48, 48, 3), 9, np.uint8)
    grown = framed.compose(result)
    assert grown.shape == (56, 76, 4)  # the corners the frame does not cover stay transparent
    assert (grown[8:56, 0:48, :3] == 9).all()
    assert (grown[0:8, 16:76, 1] == 200).all()  # the image where the frame did not reach
    assert grown[0, 0, 3] == 0


def test_framed_image_without_gaps_is_rgb():
    image = np.zeros((40, 60, 3), np.uint8)
    framed = FramedImage(image, Box(0, 0, 80, 40))
    grown = framed.compose(np.zeros((40, 80, 3), np.uint8))
    assert grown.shape == (40, 80, 3)
    mask = framed.frame_mask(np.full((40, 60), 255, np.uint8))
    assert mask.shape == (40, 80) and (mask[:, 60:] == 0).all()


def test_the_prefill_feeds_a_smooth_join():
    """The join between picture and fill has no hard step (a blur of the fill is close)."""
    filled = prefill(half_picture(), seed=0).astype(np.float32)
    step = np.abs(filled[:, 48] - filled[:, 47]).max()
    blurred = cv2.GaussianBlur(filled, (0, 0), 1.0)
    assert step < 60
    assert np.abs(blurred[:, 46:50] - filled[:, 46:50]).mean() < 20
