"""Whole-mask operations (each one undoable step): selection to mask, fill, clear, invert,
grow, shrink, feather. They work on the document area, where the mask can matter."""

from __future__ import annotations

import cv2
import numpy as np

from app.document import Document
from app.geometry import Rect


def _mask_and_area(doc: Document) -> tuple[int, Rect, np.ndarray]:
    layer = doc.ensure_mask_layer()
    doc.check_editable(layer)
    area = doc.rect
    assert layer.raster is not None  # a MASK layer is a raster kind
    return layer.id, area, layer.raster.read(area)


def _apply(
    doc: Document, layer_id: int, area: Rect, before: np.ndarray, after: np.ndarray, text: str
) -> None:
    changed = np.argwhere(before != after)
    if changed.size == 0:
        return
    (top, left), (bottom, right) = changed.min(axis=0), changed.max(axis=0) + 1
    rect = Rect.from_edges(area.x + left, area.y + top, area.x + right, area.y + bottom)
    doc.replace_pixels(layer_id, rect, after[rect.slices(area)].copy(), text)


def _selection_or_all(doc: Document) -> np.ndarray:
    selection = doc.selection_mask()
    return selection if selection is not None else np.full((doc.height, doc.width), 255, np.uint8)


def selection_to_mask(doc: Document, subtract: bool = False) -> None:
    selection = doc.selection_mask()
    if selection is None:
        doc.notice.emit("Nothing is selected.")
        return
    layer_id, area, mask = _mask_and_area(doc)
    after = np.minimum(mask, 255 - selection) if subtract else np.maximum(mask, selection)
    _apply(
        doc,
        layer_id,
        area,
        mask,
        after,
        "Subtract selection from mask" if subtract else "Add selection to mask",
    )


def fill_mask(doc: Document) -> None:
    layer_id, area, mask = _mask_and_area(doc)
    _apply(doc, layer_id, area, mask, np.maximum(mask, _selection_or_all(doc)), "Fill mask")


def clear_mask(doc: Document) -> None:
    layer_id, area, mask = _mask_and_area(doc)
    _apply(doc, layer_id, area, mask, np.minimum(mask, 255 - _selection_or_all(doc)), "Clear mask")


def invert_mask(doc: Document) -> None:
    layer_id, area, mask = _mask_and_area(doc)
    _apply(doc, layer_id, area, mask, 255 - mask, "Invert mask")


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def grow_mask(doc: Document, pixels: int) -> None:
    if pixels <= 0:
        return
    layer_id, area, mask = _mask_and_area(doc)
    _apply(doc, layer_id, area, mask, cv2.dilate(mask, _disc(pixels)), f"Grow mask {pixels}px")


def shrink_mask(doc: Document, pixels: int) -> None:
    if pixels <= 0:
        return
    layer_id, area, mask = _mask_and_area(doc)
    eroded = cv2.erode(mask, _disc(pixels), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    _apply(doc, layer_id, area, mask, eroded, f"Shrink mask {pixels}px")


def feather_mask(doc: Document, pixels: int) -> None:
    if pixels <= 0:
        return
    layer_id, area, mask = _mask_and_area(doc)
    sigma = pixels / 2.0
    blurred = cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, sigmaY=sigma)
    _apply(doc, layer_id, area, mask, blurred, f"Feather mask {pixels}px")
