"""Crop-to-mask ("only masked"), resize to the model's size, paste back through a feathered mask.

The one promise this module keeps: pixels outside the feathered mask (and outside the crop box) are
byte-identical to the input. Everything here is numpy/OpenCV; no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from inference.api import Box, InvalidRequestError

MULTIPLE = 8
MIN_SIDE = 64


@dataclass(frozen=True)
class CropPlan:
    """Where to cut (``box``, in request-image pixels) and at what size to generate."""

    box: Box
    gen_width: int
    gen_height: int

    @property
    def needs_resize(self) -> bool:
        return (self.box.width, self.box.height) != (self.gen_width, self.gen_height)


def mask_bbox(mask: np.ndarray) -> Box | None:
    """Bounding box of the non-zero mask pixels, or None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    return Box(x0, y0, x1 - x0, y1 - y0)


def crop_box_for_mask(mask: np.ndarray, padding: int) -> Box | None:
    """The mask's bounding box grown by ``padding`` on every side, clamped to the image."""
    bbox = mask_bbox(mask)
    if bbox is None:
        return None
    height, width = mask.shape[:2]
    x0, y0 = max(0, bbox.x - padding), max(0, bbox.y - padding)
    x1, y1 = min(width, bbox.right + padding), min(height, bbox.bottom + padding)
    return Box(x0, y0, x1 - x0, y1 - y0)


def _round_to(value: float, multiple: int = MULTIPLE) -> int:
    return max(MIN_SIDE, round(value / multiple) * multiple)


def generation_size(width: int, height: int, native: int) -> tuple[int, int]:
    """The aspect of ``width x height`` with about ``native**2`` pixels, sides multiples of 8."""
    aspect = width / height
    return _round_to(native * math.sqrt(aspect)), _round_to(native / math.sqrt(aspect))


def plan_crop(image_width: int, image_height: int, box: Box | None, native: int) -> CropPlan:
    """Grow ``box`` (None = whole image) to the generation aspect, keep it inside the image."""
    if box is None:
        box = Box(0, 0, image_width, image_height)
    box = clamp_box(box, image_width, image_height)
    if box.width <= 0 or box.height <= 0:
        raise InvalidRequestError("the crop box lies outside the image")
    if (box.width, box.height) == (native, native):
        return CropPlan(box, native, native)
    gen_w, gen_h = generation_size(box.width, box.height, native)
    want_w, want_h = box.width, box.height
    if gen_w / gen_h > box.width / box.height:
        want_w = min(image_width, round(box.height * gen_w / gen_h))
    else:
        want_h = min(image_height, round(box.width * gen_h / gen_w))
    grown = _grow_centered(box, want_w, want_h, image_width, image_height)
    return CropPlan(grown, gen_w, gen_h)


def clamp_box(box: Box, width: int, height: int) -> Box:
    x0, y0 = max(0, box.x), max(0, box.y)
    x1, y1 = min(width, box.right), min(height, box.bottom)
    return Box(x0, y0, x1 - x0, y1 - y0)


def _grow_centered(box: Box, want_w: int, want_h: int, width: int, height: int) -> Box:
    x = box.x - (want_w - box.width) // 2
    y = box.y - (want_h - box.height) // 2
    x = min(max(0, x), width - want_w)
    y = min(max(0, y), height - want_h)
    return Box(x, y, want_w, want_h)


def resize(array: np.ndarray, width: int, height: int, nearest: bool = False) -> np.ndarray:
    """Resize with area averaging when shrinking, Lanczos when enlarging (nearest for masks)."""
    if array.shape[1] == width and array.shape[0] == height:
        return array
    if nearest:
        interpolation = cv2.INTER_NEAREST
    elif width < array.shape[1] and height < array.shape[0]:
        interpolation = cv2.INTER_AREA
    else:
        interpolation = cv2.INTER_LANCZOS4
    return cv2.resize(array, (width, height), interpolation=interpolation)


def cut(array: np.ndarray, box: Box) -> np.ndarray:
    return array[box.y : box.bottom, box.x : box.right]


def crop_for_generation(array: np.ndarray, plan: CropPlan, nearest: bool = False) -> np.ndarray:
    """The crop box area of ``array`` at the generation size."""
    return resize(
        np.ascontiguousarray(cut(array, plan.box)), plan.gen_width, plan.gen_height, nearest
    )


def feathered_alpha(mask: np.ndarray, blur: int) -> np.ndarray:
    """float32 0..1: the mask dilated by ``blur`` then Gaussian-blurred by ``blur``.

    Every masked pixel gets alpha 1; alpha is exactly 0 farther than ``2 * blur`` from the mask.
    """
    binary = (mask > 127).astype(np.float32)
    if blur <= 0:
        return binary
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * blur + 1, 2 * blur + 1))
    dilated = cv2.dilate(binary, kernel)
    size = 2 * blur + 1
    alpha = cv2.GaussianBlur(
        dilated, (size, size), sigmaX=blur / 2.0, borderType=cv2.BORDER_REPLICATE
    )
    alpha[binary == 1] = 1.0
    return np.clip(alpha, 0.0, 1.0)


def match_colors(generated: np.ndarray, original: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Shift/scale each channel of ``generated`` so its unmasked ring matches ``original``.

    All three arrays cover the same crop box; the ring is where ``alpha == 0``.
    """
    ring = alpha == 0
    if ring.sum() < 16:
        return generated
    gen = generated[..., :3].astype(np.float32)
    src = original[..., :3].astype(np.float32)
    out = gen.copy()
    for channel in range(3):
        g, s = gen[..., channel][ring], src[..., channel][ring]
        scale = (s.std() + 1e-3) / (g.std() + 1e-3)
        scale = float(np.clip(scale, 0.5, 2.0))
        out[..., channel] = (gen[..., channel] - g.mean()) * scale + s.mean()
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def paste(
    original: np.ndarray,
    generated: np.ndarray,
    box: Box,
    alpha: np.ndarray | None = None,
) -> np.ndarray:
    """A copy of ``original`` with ``generated`` (RGB uint8, box-sized) blended in at ``box``.

    ``alpha`` is full-image float 0..1 (None = replace the whole box). Where alpha is 0 the
    original bytes are kept untouched; an alpha channel of ``original`` becomes opaque where
    generated pixels land.
    """
    out = original.copy()
    region = out[box.y : box.bottom, box.x : box.right]
    if alpha is None:  # the whole box is replaced: the same bytes as blending with weight 1
        region[..., :3] = generated[..., :3]
        if region.shape[-1] == 4:
            region[..., 3] = 255
        return out
    weight = alpha[box.y : box.bottom, box.x : box.right].astype(np.float32)
    w = weight[..., None]
    blended = generated[..., :3].astype(np.float32) * w + region[..., :3].astype(np.float32) * (
        1 - w
    )
    changed = weight > 0
    region[..., :3][changed] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)[changed]
    if region.shape[-1] == 4:
        opaque = region[..., 3].astype(np.float32) * (1 - weight) + 255.0 * weight
        region[..., 3][changed] = np.clip(np.rint(opaque), 0, 255).astype(np.uint8)[changed]
    return out
