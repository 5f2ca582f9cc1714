"""Crop-to-mask planning, feathering and byte-exact pasting."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from inference import cropping
from inference.api import Box


def test_crop_box_for_mask_adds_padding_and_clamps():
    mask = np.zeros((100, 200), np.uint8)
    mask[10:20, 150:190] = 255
    assert cropping.mask_bbox(mask) == Box(150, 10, 40, 10)
    assert cropping.crop_box_for_mask(mask, 16) == Box(134, 0, 66, 36)
    assert cropping.crop_box_for_mask(np.zeros((4, 4), np.uint8), 8) is None


def test_plan_keeps_square_native_box_unscaled():
    plan = cropping.plan_crop(1024, 1024, Box(100, 100, 512, 512), 512)
    assert plan == cropping.CropPlan(Box(100, 100, 512, 512), 512, 512)
    assert not plan.needs_resize


def test_plan_scales_small_box_up_to_native_area():
    plan = cropping.plan_crop(2000, 2000, Box(500, 500, 100, 50), 512)
    assert plan.gen_width % 8 == 0 and plan.gen_height % 8 == 0
    assert abs(plan.gen_width * plan.gen_height - 512 * 512) / (512 * 512) < 0.1
    assert abs(plan.box.width / plan.box.height - plan.gen_width / plan.gen_height) < 0.05


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(64, 1500),
    height=st.integers(64, 1500),
    data=st.data(),
    native=st.sampled_from([64, 512, 768, 1024]),
)
def test_plan_box_stays_inside_and_contains_the_request(width, height, data, native):
    x = data.draw(st.integers(0, width - 8))
    y = data.draw(st.integers(0, height - 8))
    w = data.draw(st.integers(8, width - x))
    h = data.draw(st.integers(8, height - y))
    plan = cropping.plan_crop(width, height, Box(x, y, w, h), native)
    box = plan.box
    assert box.x >= 0 and box.y >= 0 and box.right <= width and box.bottom <= height
    assert box.x <= x and box.y <= y and box.right >= x + w and box.bottom >= y + h
    assert plan.gen_width % 8 == 0 and plan.gen_height % 8 == 0


def test_feathered_alpha_is_one_on_mask_and_zero_far_away():
    mask = np.zeros((64, 64), np.uint8)
    mask[20:30, 20:30] = 255
    alpha = cropping.feathered_alpha(mask, 4)
    assert (alpha[mask > 0] == 1).all()
    assert alpha[20, 16] > 0  # the feather reaches outside the mask
    assert alpha[20, 20 - 9] == 0 and alpha[0, 0] == 0
    assert alpha.min() >= 0 and alpha.max() <= 1


def test_paste_leaves_zero_alpha_pixels_byte_identical():
    rng = np.random.default_rng(1)
    original = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    generated = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    alpha = np.zeros((50, 60), np.float32)
    alpha[15:25, 20:40] = 0.5
    alpha[18:22, 25:35] = 1.0
    box = Box(15, 10, 30, 20)
    out = cropping.paste(original, generated, box, alpha)
    np.testing.assert_array_equal(out[alpha == 0], original[alpha == 0])
    np.testing.assert_array_equal(out[18:22, 25:35], generated[8:12, 10:20])
    assert original is not out


def test_paste_without_alpha_replaces_box_and_makes_rgba_opaque():
    original = np.zeros((10, 10, 4), np.uint8)
    generated = np.full((4, 5, 3), 200, np.uint8)
    out = cropping.paste(original, generated, Box(2, 3, 5, 4))
    assert (out[3:7, 2:7, :3] == 200).all() and (out[3:7, 2:7, 3] == 255).all()
    assert (out[:3] == 0).all() and (out[:, :2] == 0).all()


def test_match_colors_moves_ring_statistics_to_the_original():
    rng = np.random.default_rng(2)
    original = rng.normal(100, 10, (40, 40, 3)).clip(0, 255).astype(np.uint8)
    generated = (original.astype(int) + 40).clip(0, 255).astype(np.uint8)
    alpha = np.zeros((40, 40), np.float32)
    alpha[10:30, 10:30] = 1
    matched = cropping.match_colors(generated, original, alpha)
    ring = alpha == 0
    assert abs(matched[ring].mean() - original[ring].mean()) < 1.0


def test_crop_for_generation_resizes_box_area():
    image = np.arange(100 * 120 * 3, dtype=np.uint32).reshape(100, 120, 3).astype(np.uint8)
    plan = cropping.CropPlan(Box(10, 20, 40, 40), 64, 64)
    assert cropping.crop_for_generation(image, plan).shape == (64, 64, 3)
