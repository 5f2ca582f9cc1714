"""Flatten layers into straight-alpha RGBA, one rectangle at a time.

Work follows the rectangle asked for, so repainting a brush dab on an 8k canvas costs the dab.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from app.geometry import Rect
from app.layers import PAINT_KINDS, Layer, LayerKind


def composite(
    layers: Iterable[Layer],
    rect: Rect,
    kinds: frozenset[LayerKind] = PAINT_KINDS,
    background: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Straight-alpha RGBA (h, w, 4) uint8 of the visible ``kinds`` layers over ``rect``."""
    stack = _visible(layers, rect, kinds)
    # Everything under the topmost layer that covers the rect opaquely is hidden: start there.
    base_index = _topmost_opaque(stack, rect)
    if base_index is not None:
        return _over_opaque_base(stack[base_index], stack[base_index + 1 :], rect)
    premul = np.zeros((rect.h, rect.w, 3), np.float32)
    alpha = np.zeros((rect.h, rect.w, 1), np.float32)
    if background is not None:
        alpha[:] = background[3] / 255.0
        premul[:] = np.asarray(background[:3], np.float32) / 255.0 * alpha
    for layer in stack:
        common = rect.intersected(layer.raster.rect)
        src = layer.raster.view(common).astype(np.float32) / 255.0
        src_a = src[..., 3:4] * layer.opacity
        dst = common.slices(rect)
        premul[dst] = src[..., :3] * src_a + premul[dst] * (1.0 - src_a)
        alpha[dst] = src_a + alpha[dst] * (1.0 - src_a)
    out = np.zeros((rect.h, rect.w, 4), np.uint8)
    with np.errstate(divide="ignore", invalid="ignore"):
        rgb = np.where(alpha > 0, premul / np.maximum(alpha, 1e-8), 0.0)
    out[..., :3] = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out[..., 3:] = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def _visible(layers: Iterable[Layer], rect: Rect, kinds: frozenset[LayerKind]) -> list[Layer]:
    return [
        layer
        for layer in layers
        if layer.visible
        and layer.kind in kinds
        and layer.raster is not None
        and layer.opacity > 0
        and not rect.intersected(layer.raster.rect).is_empty
    ]


def _over_opaque_base(base: Layer, upper: list[Layer], rect: Rect) -> np.ndarray:
    """An opaque base keeps alpha at 255, so each upper layer is blended only where it lies."""
    out = base.raster.read(rect)
    for layer in upper:
        common = rect.intersected(layer.raster.rect)
        src = layer.raster.view(common)
        src_a = src[..., 3:4].astype(np.float32) * (layer.opacity / 255.0)
        dst = out[common.slices(rect)]
        blended = src[..., :3] * src_a + dst[..., :3] * (1.0 - src_a)
        dst[..., :3] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return out


def _topmost_opaque(stack: list[Layer], rect: Rect) -> int | None:
    for index in range(len(stack) - 1, -1, -1):
        layer = stack[index]
        if (
            layer.opacity >= 1.0
            and layer.raster.rect.contains(rect)
            and layer.raster.view(rect)[..., 3].min() == 255
        ):
            return index
    return None


def flatten_rgb(layers: Iterable[Layer], rect: Rect, matte=(255, 255, 255)) -> np.ndarray:
    """Contiguous RGB over an opaque matte (for JPEG export and diffusion input)."""
    stack = _visible(layers, rect, PAINT_KINDS)
    if stack and _topmost_opaque(stack, rect) == len(stack) - 1:
        # an opened photo alone: one multithreaded copy instead of a blend
        return cv2.cvtColor(stack[-1].raster.view(rect), cv2.COLOR_RGBA2RGB)
    return np.ascontiguousarray(composite(stack, rect, background=(*matte, 255))[..., :3])
