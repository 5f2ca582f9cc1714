"""Flatten layers into straight-alpha RGBA, one rectangle at a time: the one compositor.

Work follows the rectangle asked for, so repainting a brush dab on an 8k canvas costs the dab.
A stack of normal layers without groups takes the fast paths below (an opaque base copied, then
uint8-friendly source-over); anything with a group or a blend mode goes through
:func:`render_tree`, which composites groups as isolated (or pass-through) groups with the W3C
formulas of :mod:`app.blend`. The canvas, flatten, ``mergedimage.png`` and exports all call here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import cv2
import numpy as np

from app.blend import BLEND_FUNCTIONS, PASS_THROUGH, PLUS, blend_over
from app.geometry import Rect
from app.groups import Node, build_tree
from app.layers import PAINT_KINDS, Layer, LayerKind

# A leaf's pixels over the output grid: (rows, cols) slices into it, straight RGB float32 0..1
# as planes (3, h, w) and alpha 0..1 (1, h, w) without the layer's opacity (planar: see
# app/blend.py); None when it adds nothing.
Patch = tuple[tuple[slice, slice], np.ndarray, np.ndarray]
Fetch = Callable[[Layer], Patch | None]


def composite(
    layers: Iterable[Layer],
    rect: Rect,
    kinds: frozenset[LayerKind] = PAINT_KINDS,
    background: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Straight-alpha RGBA (h, w, 4) uint8 of the visible ``kinds`` layers over ``rect``."""
    layers = list(layers)
    if needs_tree(layers):
        return _composite_tree(layers, rect, kinds, background)
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
        assert layer.raster is not None  # _visible keeps raster layers only
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
    assert base.raster is not None  # _visible keeps raster layers only
    out = base.raster.read(rect)
    for layer in upper:
        assert layer.raster is not None
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
            and layer.raster is not None
            and layer.raster.rect.contains(rect)
            and layer.raster.view(rect)[..., 3].min() == 255
        ):
            return index
    return None


def flatten_rgb(
    layers: Iterable[Layer], rect: Rect, matte: tuple[int, int, int] = (255, 255, 255)
) -> np.ndarray:
    """Contiguous RGB over an opaque matte (for JPEG export and diffusion input)."""
    layers = list(layers)
    if needs_tree(layers):
        return np.ascontiguousarray(composite(layers, rect, background=(*matte, 255))[..., :3])
    stack = _visible(layers, rect, PAINT_KINDS)
    if stack and _topmost_opaque(stack, rect) == len(stack) - 1:
        # an opened photo alone: one multithreaded copy instead of a blend
        top = stack[-1].raster
        assert top is not None
        return cv2.cvtColor(top.view(rect), cv2.COLOR_RGBA2RGB)
    return np.ascontiguousarray(composite(stack, rect, background=(*matte, 255))[..., :3])


# ---- groups and blend modes -----------------------------------------------------------------


def blends(mode: str) -> bool:
    """True when ``mode`` is drawn differently from normal source-over."""
    return mode in BLEND_FUNCTIONS or mode == PLUS


def needs_tree(layers: Sequence[Layer]) -> bool:
    """Whether the stack needs the general compositor: it has a group (even a hidden one hides
    its children) or a visible layer in a blend mode."""
    return any(
        layer.kind is LayerKind.GROUP or (layer.visible and blends(layer.blend_mode))
        for layer in layers
    )


def render_tree(
    layers: Iterable[Layer],
    shape: tuple[int, int],
    fetch: Fetch,
    kinds: frozenset[LayerKind] = PAINT_KINDS,
) -> tuple[np.ndarray, np.ndarray]:
    """Premultiplied RGB planes (3, h, w) and alpha (1, h, w), float32 0..1, of the stack
    composited as an isolated root over transparency. ``fetch`` supplies each leaf's pixels,
    so the canvas can feed downsampled layers through the same compositing as the flatten."""
    roots = build_tree(layers)
    base = _opaque_base(roots, shape, fetch, kinds)
    if base is not None:  # a photo under everything: start from it instead of blending it
        index, rgb = base
        premul, alpha = rgb, np.ones((1, *shape), np.float32)
        roots = roots[index + 1 :]
    else:
        premul = np.zeros((3, *shape), np.float32)
        alpha = np.zeros((1, *shape), np.float32)
    _render_nodes(roots, premul, alpha, fetch, kinds)
    return premul, alpha


def _opaque_base(
    roots: list[Node], shape: tuple[int, int], fetch: Fetch, kinds: frozenset[LayerKind]
) -> tuple[int, np.ndarray] | None:
    """The bottom root layer's RGB if it is a normal, fully opaque layer covering the area."""
    for index, node in enumerate(roots):
        layer = node.layer
        if not layer.visible or layer.opacity <= 0:
            continue
        if (
            layer.kind is LayerKind.GROUP
            or layer.kind not in kinds
            or layer.raster is None
            or layer.opacity < 1.0
            or blends(layer.blend_mode)
        ):
            return None
        patch = fetch(layer)
        if patch is None:
            continue
        _where, rgb, src_alpha = patch
        whole = rgb.shape[1:] == tuple(shape)
        if not whole or src_alpha.min() < 1.0:
            return None
        return index, np.ascontiguousarray(rgb)
    return None


def _render_nodes(
    nodes: list[Node],
    premul: np.ndarray,
    alpha: np.ndarray,
    fetch: Fetch,
    kinds: frozenset[LayerKind],
) -> bool:
    """Composite ``nodes`` into the buffers; False when none of them had pixels here."""
    drew = False
    for node in nodes:
        layer = node.layer
        if not layer.visible or layer.opacity <= 0:
            continue
        if layer.kind is LayerKind.GROUP:
            drew |= _render_group(node, premul, alpha, fetch, kinds)
            continue
        if layer.kind not in kinds or layer.raster is None:
            continue
        patch = fetch(layer)
        if patch is None:
            continue
        (rows, cols), rgb, src_alpha = patch
        if layer.opacity < 1.0:
            src_alpha = src_alpha * np.float32(layer.opacity)
        # basic slices are views: blend_over writes through them into the buffers
        blend_over(premul[:, rows, cols], alpha[:, rows, cols], rgb, src_alpha, layer.blend_mode)
        drew = True
    return drew


def _render_group(
    node: Node,
    premul: np.ndarray,
    alpha: np.ndarray,
    fetch: Fetch,
    kinds: frozenset[LayerKind],
) -> bool:
    group = node.layer
    if group.blend_mode == PASS_THROUGH:
        # not isolated: children blend with what lies under the group; opacity fades the
        # difference they make (Photoshop's and Krita's pass-through)
        if group.opacity >= 1.0:
            return _render_nodes(node.children, premul, alpha, fetch, kinds)
        before_premul, before_alpha = premul.copy(), alpha.copy()
        if not _render_nodes(node.children, premul, alpha, fetch, kinds):
            return False
        keep = np.float32(1.0 - group.opacity)
        premul += (before_premul - premul) * keep
        alpha += (before_alpha - alpha) * keep
        return True
    inner_premul = np.zeros_like(premul)
    inner_alpha = np.zeros_like(alpha)
    if not _render_nodes(node.children, inner_premul, inner_alpha, fetch, kinds):
        return False  # an empty group adds nothing, whatever its mode
    rgb = inner_premul / np.maximum(inner_alpha, np.float32(1e-12))  # 0 where alpha is 0
    if group.opacity < 1.0:
        inner_alpha *= np.float32(group.opacity)
    blend_over(premul, alpha, rgb, inner_alpha, group.blend_mode)
    return True


def full_size_fetch(rect: Rect) -> Fetch:
    """Leaves read 1:1 over ``rect``."""

    def fetch(layer: Layer) -> Patch | None:
        assert layer.raster is not None  # only raster leaves are fetched
        common = rect.intersected(layer.raster.rect)
        if common.is_empty:
            return None
        planes = np.stack(cv2.split(layer.raster.view(common))).astype(np.float32)
        planes *= np.float32(1.0 / 255.0)
        return common.slices(rect), planes[:3], planes[3:4]

    return fetch


def _composite_tree(
    layers: list[Layer],
    rect: Rect,
    kinds: frozenset[LayerKind],
    background: tuple[int, int, int, int] | None,
) -> np.ndarray:
    premul, alpha = render_tree(layers, (rect.h, rect.w), full_size_fetch(rect), kinds)
    if background is not None:  # the root is an isolated group over the matte (ORA spec)
        back_alpha = np.float32(background[3] / 255.0)
        back = np.asarray(background[:3], np.float32).reshape(3, 1, 1) / 255.0 * back_alpha
        premul += back * (1.0 - alpha)
        alpha += back_alpha * (1.0 - alpha)
    rgb = premul / np.maximum(alpha, np.float32(1e-8))  # 0 where alpha is 0
    planes = [*rgb, alpha[0]]
    for plane in planes:
        plane *= np.float32(255.0)
        plane += np.float32(0.5)
        np.clip(plane, 0.0, 255.0, out=plane)
    return cv2.merge([plane.astype(np.uint8) for plane in planes])
