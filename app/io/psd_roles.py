"""Impasto's own layer roles carried through a PSD.

A PSD has only pixel layers. So that ``.ora -> .psd -> .ora`` keeps which layer is the inpaint
mask, a sketch, a pose (with its editable keypoints), a control image or a result (with its
recipe), each layer carries one item in its Photoshop "metadata setting" block (``shmd``, the
block Photoshop keeps per-layer metadata in) under the key ``impa``: UTF-8 JSON with the kind, the
layer's own visibility and lock, and its kind-specific data (numpy arrays as base64 ``.npy``).
Other programs see the pixels only; psd-tools keeps unknown ``shmd`` items as raw bytes.

What is read back goes through the same validation as an ``.ora`` (``app.io.validate``).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
from typing import Any

import numpy as np

from app.io import layer_data, validate
from app.layers import Layer, LayerKind
from app.raster import Raster

log = logging.getLogger(__name__)

KEY = b"impa"
_PIXEL_ROLES = frozenset(
    {
        LayerKind.IMAGE,
        LayerKind.MASK,
        LayerKind.SKETCH,
        LayerKind.POSE,
        LayerKind.CONTROL,
        LayerKind.RESULT,
    }
)
FORMAT = 1
MAX_BYTES = 64 << 20  # one layer's role data
MAX_ARRAY_ITEMS = 64 << 20


def write_role(psd_layer, layer: Layer) -> None:
    """Attach ``layer``'s role to the psd-tools layer (every layer: picture layers keep their
    exact opacity and lock this way)."""
    from psd_tools.constants import Tag
    from psd_tools.psd.tagged_blocks import MetadataSetting, MetadataSettings, TaggedBlock

    packer = layer_data.JsonPacker("array")
    meta: dict[str, Any] = {
        "format": FORMAT,
        "kind": layer.kind.value,
        "visible": bool(layer.visible),
        "locked": bool(layer.locked),
        "opacity": float(layer.opacity),  # exact; the PSD's own is 8-bit
    }
    if layer.recipe is not None:
        meta["recipe"] = packer.pack(layer.recipe)
    if layer.control is not None:
        meta["control"] = packer.pack(layer_data.control_to_data(layer.control))
    if layer.pose is not None:
        meta["pose"] = layer_data.pose_to_data(layer.pose)
    if packer.arrays:
        meta["arrays"] = {name: _encode_array(array) for name, array in packer.arrays.items()}
    data = json.dumps(meta, ensure_ascii=False, allow_nan=True).encode("utf-8")
    item = MetadataSetting(key=KEY, copy_on_sheet=True, data=data)
    blocks = psd_layer._record.tagged_blocks
    existing = blocks.get_data(Tag.METADATA_SETTING)
    items = [i for i in (existing or []) if getattr(i, "key", None) != KEY] + [item]
    blocks[Tag.METADATA_SETTING] = TaggedBlock(
        key=Tag.METADATA_SETTING,
        data=MetadataSettings(items),  # type: ignore[arg-type]  # psd-tools types data as bytes
    )


def read_role(psd_layer) -> dict[str, Any] | None:
    """The role JSON of a psd-tools layer, or None (another program's layer, or unreadable)."""
    from psd_tools.constants import Tag

    try:
        items = (
            psd_layer.tagged_blocks.get_data(Tag.METADATA_SETTING)
            if psd_layer.tagged_blocks
            else None
        )
    except (AttributeError, KeyError, ValueError):
        return None
    for item in items or []:
        if getattr(item, "key", None) != KEY or not isinstance(item.data, (bytes, bytearray)):
            continue
        if len(item.data) > MAX_BYTES:
            log.warning("ignoring Impasto data of layer %r: too large", psd_layer.name)
            return None
        try:
            meta = json.loads(bytes(item.data).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as err:
            log.warning("ignoring unreadable Impasto data of layer %r (%s)", psd_layer.name, err)
            return None
        if validate.nesting_depth(meta) > validate.MAX_JSON_DEPTH:
            log.warning("ignoring Impasto data of layer %r: nested too deeply", psd_layer.name)
            return None
        return meta if isinstance(meta, dict) else None
    return None


def apply_role(layer: Layer, meta: dict[str, Any] | None) -> Layer:
    """The Impasto layer that ``layer`` (read from the PSD's pixels) was, per its role data."""
    if meta is None:
        return layer
    what = f"layer {layer.name!r}"
    try:
        kind = LayerKind(meta.get("kind", ""))
    except ValueError:
        log.warning("%s: unknown kind %r; kept as a picture layer", what, meta.get("kind"))
        return layer
    if kind not in _PIXEL_ROLES:  # a preview, or a group: a pixel layer cannot become one
        log.warning("%s: kind %s cannot hold pixels; kept as a picture layer", what, kind.value)
        kind = LayerKind.IMAGE
    arrays = meta.get("arrays")
    if not isinstance(arrays, dict):
        arrays = {}

    def load_array(name: str) -> np.ndarray:
        return _decode_array(arrays.get(name), name)

    raster = layer.raster
    pose = None
    if kind is LayerKind.POSE:
        try:
            validate.check_pose_data(meta.get("pose"))
            pose = layer_data.pose_from_data(meta["pose"])
        except Exception as err:  # InvalidPoseError, PoseFormatError, ValueError...
            log.warning("%s: its pose data cannot be used (%s); kept as pixels", what, err)
            return layer
        raster = None
    elif kind is LayerKind.MASK and raster is not None:
        alpha = raster.data[..., 3] if raster.data.size else np.zeros((0, 0), np.uint8)
        raster = Raster(1, alpha, raster.x, raster.y)
    opacity = meta.get("opacity")
    if not (
        isinstance(opacity, float)
        and math.isfinite(opacity)
        and abs(opacity - layer.opacity) <= 1 / 255 + 1e-9
    ):  # changed in another program since: the PSD's value wins
        opacity = layer.opacity
    opacity = min(1.0, max(0.0, opacity))
    result = Layer(
        kind,
        layer.name,
        raster,
        visible=meta["visible"] if isinstance(meta.get("visible"), bool) else layer.visible,
        opacity=opacity,
        locked=meta["locked"] if isinstance(meta.get("locked"), bool) else False,
        extra=layer.extra,
        blend_mode=layer.blend_mode,
        parent_id=layer.parent_id,
    )
    result.pose = pose
    try:
        if meta.get("recipe") is not None:
            recipe = layer_data.unpack(meta["recipe"], load_array)
            result.recipe = recipe if isinstance(recipe, dict) else None
        if meta.get("control") is not None:
            result.control = validate.clean_control(
                layer_data.unpack(meta["control"], load_array), what
            )
    except (ValueError, TypeError, KeyError, RecursionError) as err:
        log.warning("%s: dropping its recipe/control data (%s)", what, err)
    return result


def _encode_array(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _decode_array(text: Any, name: str) -> np.ndarray:
    if not isinstance(text, str) or len(text) > MAX_BYTES:
        raise ValueError(f"array {name!r} is missing or too large")
    try:
        array = np.load(io.BytesIO(base64.b64decode(text, validate=True)), allow_pickle=False)
    except (binascii.Error, ValueError, OSError, EOFError) as err:
        raise ValueError(f"array {name!r} is damaged ({err})") from err
    if array.size > MAX_ARRAY_ITEMS:
        raise ValueError(f"array {name!r} is too large")
    return array


def mask_from_plain_layer(layers: list[Layer]) -> bool:
    """Take back Impasto's mask from a PSD that lost its role data; True when one was found.

    GIMP 2.10 drops every ``shmd`` item when it re-saves a PSD
    (``tests/app/test_psd_gimp.py``), so our layers come back as plain pixels. The mask then
    is a hidden layer named "Inpaint mask", white where masked with the mask as its alpha (how
    the export draws it): it becomes the mask again (in place), so the document gets no second,
    empty mask beside a plain copy of the first. Anything else about it must match, or it stays
    a picture layer."""
    for index, layer in enumerate(layers):
        raster = layer.raster
        if (
            layer.kind is not LayerKind.IMAGE
            or layer.visible
            or layer.name != LayerKind.MASK.default_name
            or raster is None
        ):
            continue
        data = raster.data
        if data.size and not (data[..., :3][data[..., 3] > 0] == 255).all():
            continue  # a picture someone named so: not our mask
        alpha = np.ascontiguousarray(data[..., 3]) if data.size else np.zeros((0, 0), np.uint8)
        layers[index] = Layer(
            LayerKind.MASK,
            layer.name,
            Raster(1, alpha, raster.x, raster.y),
            opacity=layer.opacity,
            locked=layer.locked,
            id=layer.id,
            parent_id=layer.parent_id,
        )
        log.info("PSD without Impasto role data: layer %r taken back as the mask", layer.name)
        return True
    return False
