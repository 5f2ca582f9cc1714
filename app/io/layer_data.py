"""What a layer looks like to other applications, and its kind-specific data as JSON.

Shared by the ORA and PSD writers: a mask is exported as white with the mask as alpha, a pose as
its rendered control image with a transparent background, so a layer never hides the picture
under it in apps that know nothing about Impasto.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePath
from typing import Any

import numpy as np

from app.compose import composite
from app.geometry import Rect
from app.layers import PAINT_KINDS, ControlSettings, Layer, LayerKind
from app.raster import Raster

log = logging.getLogger(__name__)

BAND_ROWS = 256  # composite big canvases in bands so float temporaries stay small


def saved_layers(layers: Iterable[Layer]) -> list[Layer]:
    """The layers a file keeps: everything but transient previews."""
    return [layer for layer in layers if layer.kind is not LayerKind.PREVIEW]


def shown_in_picture(layer: Layer) -> bool:
    """Visible in apps that composite every visible layer (Krita, GIMP, Photoshop): only picture
    layers that are visible here. Mask, pose and control layers are written hidden there."""
    return layer.visible and layer.kind in PAINT_KINDS


def flatten(layers: Iterable[Layer], rect: Rect) -> np.ndarray:
    """:func:`app.compose.composite` of ``rect``, computed in bands of rows."""
    layers = list(layers)
    out = np.empty((rect.h, rect.w, 4), np.uint8)

    def fill(top: int) -> None:
        band = Rect(rect.x, rect.y + top, rect.w, min(BAND_ROWS, rect.h - top))
        out[top : top + band.h] = composite(layers, band)

    tops = range(0, rect.h, BAND_ROWS)
    if len(tops) == 1:
        fill(0)
    else:  # numpy releases the GIL on big array operations
        with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
            for done in pool.map(fill, tops):
                del done
    return out


# Layers that only mean something on the canvas (generation inputs): their pixels outside it
# (the slack a growing raster keeps) are never stored. Picture layers keep real offsets.
CANVAS_BOUND_KINDS = frozenset({LayerKind.MASK, LayerKind.SKETCH, LayerKind.CONTROL})


def crop_to_canvas(
    pixels: np.ndarray, x: int, y: int, canvas: Rect
) -> tuple[np.ndarray, int, int] | None:
    """The part of ``pixels`` placed at ``x, y`` that lies on the canvas; None if none does."""
    placed = Rect(x, y, pixels.shape[1], pixels.shape[0])
    inside = placed.intersected(canvas)
    if inside.is_empty:
        return None
    if inside == placed:
        return pixels, x, y
    return pixels[inside.slices(placed)], inside.x, inside.y


def crop_layer_to_canvas(layer: Layer, canvas: Rect) -> None:
    """Drop a canvas-bound layer's pixels outside the canvas (in place, before the document
    holds the layer), so that what is read is what will be saved."""
    raster = layer.raster
    if layer.kind not in CANVAS_BOUND_KINDS or raster is None or raster.rect.is_empty:
        return
    placed = crop_to_canvas(raster.data, raster.x, raster.y, canvas)
    layer.raster = Raster(raster.channels) if placed is None else Raster(raster.channels, *placed)


def layer_rgba(layer: Layer, canvas: Rect) -> tuple[np.ndarray, int, int] | None:
    """RGBA pixels and top-left offset of a layer as other apps should see it; None if empty.
    Mask, sketch and control layers are cropped to the canvas."""
    if layer.kind is LayerKind.POSE:
        return pose_rgba(layer.pose, canvas)
    raster = layer.raster
    if raster is None or raster.rect.is_empty:
        return None
    data, x, y = raster.data, raster.x, raster.y
    if layer.kind in CANVAS_BOUND_KINDS:
        cropped = crop_to_canvas(data, x, y, canvas)
        if cropped is None:
            return None
        data, x, y = cropped
    if layer.kind is LayerKind.MASK:
        rgba = np.empty((*data.shape, 4), np.uint8)
        rgba[..., :3] = 255
        rgba[..., 3] = data
        return rgba, x, y
    return data, x, y


def pose_rgba(pose: Any, canvas: Rect) -> tuple[np.ndarray, int, int] | None:
    """The pose's control image over the canvas, black made transparent, cropped to content."""
    if pose is None or not hasattr(pose, "people") or not pose.people:
        return None
    from inference.openpose_render import render_pose  # lazy: pulls in OpenCV

    rgb = render_pose(pose, canvas.w, canvas.h)
    drawn = np.any(rgb, axis=2)  # the method's stub types the result as a possible scalar
    rows, cols = np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))
    if rows.size == 0:
        return None
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    rgba = np.empty((bottom - top, right - left, 4), np.uint8)
    rgba[..., :3] = rgb[top:bottom, left:right]
    rgba[..., 3] = np.where(drawn[top:bottom, left:right], 255, 0)
    return rgba, int(left), int(top)


# ---- poses ---------------------------------------------------------------------------------


def pose_to_data(pose: Any) -> dict[str, Any] | None:
    """Exact JSON of a pose value, hidden points' positions included (OpenPose JSON drops them)."""
    if pose is None:
        return None
    if isinstance(pose, dict):  # a pose kept as raw OpenPose JSON
        return {"openpose": pose}
    from inference.openpose import Part

    def points(values):
        return None if values is None else [[p.x, p.y, bool(p.visible)] for p in values]

    people = [{part.value: points(person.part(part)) for part in Part} for person in pose.people]
    return {"width": pose.width, "height": pose.height, "people": people}


def pose_from_data(data: dict[str, Any]) -> Any:
    """Inverse of :func:`pose_to_data`; raises ValueError/TypeError/KeyError on bad data."""
    if "openpose" in data:
        from inference.openpose import parse_pose_json

        return parse_pose_json(data["openpose"])
    from inference.openpose import Keypoint, Part, Person, Pose

    def points(values):
        if values is None:
            return None
        return tuple(Keypoint(float(x), float(y), bool(v)) for x, y, v in values)

    people = []
    for entry in data["people"]:
        parts = {part: points(entry.get(part.value)) for part in Part}
        people.append(
            Person(
                body=parts[Part.BODY],
                left_hand=parts[Part.LEFT_HAND],
                right_hand=parts[Part.RIGHT_HAND],
                face=parts[Part.FACE],
            )
        )
    return Pose(int(data["width"]), int(data["height"]), tuple(people))


def pose_openpose_json(pose: Any) -> dict[str, Any] | None:
    """The OpenPose JSON other tools read."""
    if pose is None:
        return None
    if isinstance(pose, dict):
        return pose
    from inference.openpose import pose_to_json

    return pose_to_json(pose)


# ---- control settings ----------------------------------------------------------------------


def control_to_data(control: ControlSettings | None) -> dict[str, Any] | None:
    return None if control is None else dataclasses.asdict(control)


def control_from_data(data: dict[str, Any] | None) -> ControlSettings | None:
    if data is None:
        return None
    known = {f.name for f in dataclasses.fields(ControlSettings)}
    return ControlSettings(**{k: v for k, v in data.items() if k in known})


# ---- JSON with arrays ----------------------------------------------------------------------


class JsonPacker:
    """Turns recipe / generation-state values into JSON, setting numpy arrays aside as ``.npy``
    entries (``{"$ndarray": name}``) and keeping tuples as tuples. Other objects are written
    as ``{"$type": ..., "value": ...}`` with a warning and read back as that dict."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.arrays: dict[str, np.ndarray] = {}

    def pack(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, enum.Enum):
            return self.pack(value.value)
        if isinstance(value, np.ndarray):
            name = f"{self.prefix}{len(self.arrays):03d}.npy"
            self.arrays[name] = value
            return {"$ndarray": name}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, tuple):
            return {"$tuple": [self.pack(v) for v in value]}
        if isinstance(value, list):
            return [self.pack(v) for v in value]
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {k: self.pack(v) for k, v in value.items()}
            return {"$items": [[self.pack(k), self.pack(v)] for k, v in value.items()]}
        if isinstance(value, PurePath):
            return str(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            return {"$type": type(value).__qualname__, "value": self.pack(fields)}
        log.warning("saving a %s as its text; it will load back as text", type(value).__name__)
        return {"$type": type(value).__qualname__, "value": repr(value)}


def unpack(value: Any, load_array) -> Any:
    """Inverse of :meth:`JsonPacker.pack`; ``load_array(name)`` returns a stored array."""
    if isinstance(value, list):
        return [unpack(v, load_array) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, inner),) = value.items()
        if key == "$ndarray" and isinstance(inner, str):
            return load_array(inner)
        if key == "$tuple" and isinstance(inner, list):
            return tuple(unpack(v, load_array) for v in inner)
        if key == "$items" and isinstance(inner, list):
            return {_hashable(unpack(k, load_array)): unpack(v, load_array) for k, v in inner}
    return {k: unpack(v, load_array) for k, v in value.items()}


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    return key
