"""Creating and updating control layers: Canny edges from the picture, a pose figure, an imported
control image, and a sketch layer used as scribble control. Each is one undoable step."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from app import pose_edit
from app.compose import composite
from app.document import Document
from app.geometry import Rect
from app.image_io import DEFAULT_PIXEL_LIMIT, ImageLoadError, load_rgba
from app.layers import ControlSettings, Layer, LayerKind
from app.raster import Raster
from inference.control_images import canny_edges
from inference.openpose import Person, Pose

CONTROL_TYPES = ("canny", "scribble", "lineart", "openpose", "depth", "normal", "softedge", "seg")


def _opaque(rgb: np.ndarray) -> np.ndarray:
    alpha = np.full((*rgb.shape[:2], 1), 255, np.uint8)
    return np.concatenate([rgb, alpha], axis=2)


def canny_pixels(doc: Document, low: float, high: float) -> np.ndarray:
    picture = composite(doc.layers, doc.rect)
    return _opaque(canny_edges(picture, low, high))


def add_canny_layer(doc: Document, low: float = 100, high: float = 200) -> Layer:
    """Edges of the visible picture as a new control layer (raises ControlImageError on bad
    thresholds before anything changes)."""
    pixels = canny_pixels(doc, low, high)
    settings = ControlSettings("canny", params={"low": float(low), "high": float(high)})
    return doc.add_layer(
        LayerKind.CONTROL, "Canny edges", raster=Raster(4, pixels), control=settings
    )


def update_canny(
    doc: Document, layer_id: int, low: float, high: float, pixels: np.ndarray | None = None
) -> None:
    """Recompute a Canny layer with new thresholds as one undo step. ``pixels``: the edges for
    these thresholds when the caller already has them (a live preview), else computed here."""
    layer = doc.layer(layer_id)
    if pixels is None:
        pixels = canny_pixels(doc, low, high)
    doc.history.beginMacro("Canny thresholds")
    try:
        doc.replace_pixels(layer_id, doc.rect, pixels, "Canny thresholds")
        params = {**layer.control.params, "low": float(low), "high": float(high)}
        doc.set_layer_property(layer_id, "control", replace(layer.control, params=params))
    finally:
        doc.history.endMacro()


def add_control_image_layer(
    doc: Document,
    path: str | os.PathLike,
    control_type: str = "depth",
    pixel_limit: int = DEFAULT_PIXEL_LIMIT,
) -> Layer:
    """Import a depth map / line art / any image as a control layer, stretched to the canvas
    only at generation time (the resize mode decides how)."""
    if control_type not in CONTROL_TYPES:
        raise ImageLoadError(f"unknown control type {control_type!r}")
    pixels = load_rgba(path, pixel_limit)
    pixels[..., 3] = 255
    return doc.add_layer(
        LayerKind.CONTROL,
        f"{control_type.title()}: {Path(path).stem}",
        raster=Raster(4, pixels),
        control=ControlSettings(control_type),
    )


def add_figure_layer(doc: Document, box: Rect | None = None) -> Layer:
    """A pose layer holding one standing figure fitted to ``box`` (default: the selection, else
    the canvas with a margin)."""
    box = box or pose_edit.default_figure_box(doc)
    person = Person.standing(box.x, box.y, box.w, box.h)
    return pose_edit.add_pose_layer(doc, Pose(doc.width, doc.height, (person,)))


def set_layer_as_control(doc: Document, layer_id: int, control_type: str | None) -> None:
    """Use a sketch (or any raster) layer as control of ``control_type``; None stops using it."""
    layer = doc.layer(layer_id)
    if control_type is None:
        settings = replace(layer.control, enabled=False) if layer.control else None
    else:
        base = layer.control or ControlSettings(control_type)
        settings = replace(base, control_type=control_type, enabled=True)
    doc.set_layer_property(layer_id, "control", settings, "Use as control")
