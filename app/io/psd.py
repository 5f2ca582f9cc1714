"""Layered Photoshop (.psd) export and import through psd-tools.

Export writes an RGBA document (in an RGB one psd-tools turns layer alpha into layer masks),
bottom layer first, every layer with its name, visibility, opacity and offset. Mask, pose and
control layers are included hidden (the mask as white with the mask as alpha, the pose as its
rendered control image), so the picture Photoshop shows equals Impasto's. The merged image is
Impasto's own composite, stored the way Photoshop stores it (colour matted on white plus a
transparency channel, flagged by a negative layer count).

Blend modes travel as PSD blend keys (app/blend.py; keys without an ``svg:`` twin are kept as
``psd:xxxx`` and drawn as normal) and groups as PSD groups (pass-through or an isolated mode).

Import reads every pixel-bearing layer (type, shape and smart-object layers rendered to pixels)
as an image layer, and groups as groups with their own visibility, opacity and mode.
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from app import blend, groups
from app.document import Document
from app.geometry import Rect
from app.image_io import ImageLoadError, to_srgb_rgba
from app.io import layer_data, psd_roles, validate
from app.io.atomic import atomic_save
from app.io.errors import CorruptFileError, FileError, OpenError, SaveError, UnsafeFileError
from app.io.safety import (
    DEFAULT_LIMITS,
    Limits,
    ReadBudget,
    check_canvas,
    check_document_budget,
    check_offset,
)
from app.layers import Layer, LayerKind
from app.raster import Raster

log = logging.getLogger(__name__)

# psd-tools layer kinds that render to pixels; adjustment layers have none of their own.
_PIXEL_KINDS = {
    "pixel",
    "type",
    "shape",
    "smartobject",
    "solidcolorfill",
    "gradientfill",
    "patternfill",
}


# ---- export --------------------------------------------------------------------------------


def save_psd(doc: Document, path: str | os.PathLike, *, backup: bool = True) -> None:
    """Export ``doc`` as a layered PSD, atomically. Raises :class:`SaveError`."""
    if doc.width > 30000 or doc.height > 30000:
        raise SaveError(
            f"A PSD is at most 30000 pixels a side; this canvas is {doc.width}x"
            f"{doc.height}. Save as .ora instead."
        )
    atomic_save(path, lambda tmp: write_psd(doc, tmp), backup=backup)


def write_psd(doc: Document, target: str | os.PathLike) -> None:
    from psd_tools import PSDImage
    from psd_tools.constants import Compression

    psd = PSDImage.new("RGBA", (doc.width, doc.height), color=(0, 0, 0, 0))
    # The merged image carries transparency (Photoshop's negative layer count). Set before the
    # first layer is added: psd-tools keeps the sign when it rebuilds the layer records.
    psd._merged_alpha = True
    layers = layer_data.saved_layers(doc.layers)
    _write_nodes(psd, groups.build_tree(layers), doc.rect)
    _embed_srgb_profile(psd)
    merged = layer_data.flatten(layers, doc.rect)
    planes = [_matted_on_white(merged, channel).tobytes() for channel in range(3)]
    planes.append(merged[..., 3].tobytes())
    del merged
    image_data = psd._record.image_data
    image_data.compression = Compression.RLE
    image_data.set_data(planes, psd._record.header)
    del planes
    # PSDImage.save() would recomposite with psd-tools (slow, float64, and it would replace our
    # composite); write the record we built as it is.
    with open(target, "wb") as handle:
        psd._record.write(handle)


def _embed_srgb_profile(psd) -> None:
    """Tag the document as sRGB (image resource 1039), as Photoshop does with its profile."""
    from psd_tools.constants import Resource
    from psd_tools.psd.image_resources import ImageResource

    from app.image_io import srgb_icc_bytes

    key = Resource.ICC_PROFILE
    psd._record.image_resources[key] = ImageResource(key=key, name="", data=srgb_icc_bytes())


def _write_nodes(parent, nodes: list[groups.Node], canvas) -> None:
    """Layers bottom first into ``parent`` (the PSD or a group), groups as PSD groups."""
    from psd_tools.api.layers import Group, PixelLayer

    for node in nodes:
        layer = node.layer
        psd_layer: Group | PixelLayer
        if layer.kind is LayerKind.GROUP:
            psd_layer = Group.new(parent, layer.name[:255], open_folder=not layer.collapsed)
            _write_nodes(psd_layer, node.children, canvas)
            psd_layer.visible = layer.visible
        else:
            pixels = layer_data.layer_rgba(layer, canvas)
            if pixels is None:
                image, x, y = Image.new("RGBA", (0, 0)), 0, 0
            else:
                rgba, x, y = pixels
                image = Image.fromarray(np.ascontiguousarray(rgba), "RGBA")
            psd_layer = PixelLayer.frompil(image, parent, "Layer", top=y, left=x)
            del image
            psd_layer.visible = layer_data.shown_in_picture(layer)
            psd_roles.write_role(psd_layer, layer)  # mask/sketch/pose/control/result survive
        psd_layer.name = layer.name[:255]  # sets the Unicode name block, as Photoshop does
        psd_layer.opacity = round(min(1.0, max(0.0, layer.opacity)) * 255)
        psd_layer.blend_mode = _psd_blend_mode(layer)


def _psd_blend_mode(layer: Layer):
    from psd_tools.constants import BlendMode

    mode = layer.blend_mode
    if layer.kind is not LayerKind.GROUP and mode == blend.PASS_THROUGH:
        mode = blend.NORMAL
    try:
        return BlendMode(blend.psd_key_of(mode))
    except ValueError:  # a key PSD does not define
        return BlendMode.NORMAL


def _matted_on_white(rgba: np.ndarray, channel: int, rows: int = 512) -> np.ndarray:
    """One colour plane composited over white, in bands of uint16 (the largest value,
    255 * 255 + 127, fits) so an 8k canvas needs no GB of temporaries."""
    out = np.empty(rgba.shape[:2], np.uint8)
    for top in range(0, rgba.shape[0], rows):
        alpha = rgba[top : top + rows, :, 3].astype(np.uint16)
        color = rgba[top : top + rows, :, channel].astype(np.uint16)
        out[top : top + rows] = (color * alpha + 255 * (255 - alpha) + 127) // 255
    return out


# ---- import --------------------------------------------------------------------------------


def open_psd(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> Document:
    """Read a PSD/PSB as a document of image layers. Raises only :class:`FileError` subclasses."""
    path = Path(path)
    if not path.exists():
        raise OpenError(f"{path.name}: file not found ({path})")
    if path.is_dir():
        raise OpenError(f"{path.name} is a folder, not a PSD file")
    try:
        with open(path, "rb") as handle:
            header = handle.read(26)
        _check_header(header, limits)
        doc = _read_psd(path, limits)
    except ImageLoadError as err:  # colour conversion: the message names the layer
        raise OpenError(f"{path.name}: {err}") from err
    except FileError as err:
        raise type(err)(f"{path.name}: {err}") from err
    except PermissionError as err:
        raise OpenError(f"{path.name}: permission denied") from err
    except MemoryError as err:
        raise UnsafeFileError(f"{path.name} needs more memory than is available") from err
    except Exception as err:  # psd-tools raises many types for broken data
        mode = _UNUSUAL_MODES.get(header[24:26]) if len(header) >= 26 else None
        if mode is not None:  # name what we cannot read, rather than calling it damaged
            raise OpenError(
                f"{path.name}: this {mode} PSD could not be read ({err}); Impasto reads RGB, "
                "CMYK, greyscale and Lab PSDs"
            ) from err
        raise CorruptFileError(f"{path.name} is damaged or truncated ({err})") from err
    doc.path = None  # a PSD is an export format: Save asks where to put the project
    return doc


# PSD colour modes psd-tools may fail on (header bytes 24-26); RGB, CMYK, grey and Lab are read.
_UNUSUAL_MODES = {
    b"\x00\x00": "Bitmap",
    b"\x00\x02": "Indexed-colour",
    b"\x00\x07": "Multichannel",
    b"\x00\x08": "Duotone",
}


def _check_header(header: bytes, limits: Limits) -> None:
    if len(header) < 26 or header[:4] != b"8BPS":
        raise CorruptFileError("it is not a Photoshop file")
    version, channels, height, width, depth, _mode = struct.unpack(">H6xHIIHH", header[4:26])
    if version not in (1, 2):
        raise CorruptFileError(f"unknown PSD version {version}")
    check_canvas(width, height, limits)
    if depth not in (1, 8, 16, 32) or not 1 <= channels <= 56:
        raise CorruptFileError(f"unsupported PSD layout ({channels} channels, {depth} bits)")


def _read_psd(path: Path, limits: Limits) -> Document:
    from psd_tools import ParseLimits, PSDImage

    budget = ReadBudget(limits)
    psd = PSDImage.open(
        path,
        max_alloc_bytes=limits.max_layer_pixels * 16,
        parse_limits=ParseLimits(max_total_bytes=limits.max_total_bytes),
    )
    width, height = psd.width, psd.height
    check_canvas(width, height, limits)
    sizes = [
        (layer.bbox[2] - layer.bbox[0], layer.bbox[3] - layer.bbox[1])
        for layer in psd.descendants()
        if not layer.is_group() and layer.kind in _PIXEL_KINDS
    ]
    check_document_budget((width, height), [(w, h) for w, h in sizes if w > 0 and h > 0], limits)
    icc = _icc_profile(psd)
    layers: list[Layer] = []
    _read_nodes(psd, None, layers, limits, budget, icc)
    for layer in layers:  # as in an .ora: mask, sketch and control never beyond the canvas
        layer_data.crop_layer_to_canvas(layer, Rect(0, 0, width, height))
    if not layers:  # no layer records: use the merged image
        budget.spend_pixels(width, height, "the merged image")
        image = psd.topil(apply_icc=False) or psd.composite(apply_icc=False)
        rgba = to_srgb_rgba(image, "the merged image", icc)
        layers.append(Layer(LayerKind.IMAGE, path.stem, Raster(4, rgba)))
    if not any(layer.kind is LayerKind.MASK for layer in layers):
        psd_roles.mask_from_plain_layer(layers)  # re-saved by GIMP: the roles are gone
    doc = Document(width, height)
    for index, layer in enumerate(layers):
        doc._insert_layer(layer, index)
    if doc.mask_layer is None:  # Impasto's own PSD brings its mask back: no second one
        doc._insert_layer(Layer(LayerKind.MASK, LayerKind.MASK.default_name), len(doc.layers))
    paint = [layer for layer in doc.layers if layer.kind is not LayerKind.MASK]
    doc.set_active((paint or doc.layers)[-1].id)
    doc.history.clear()
    return doc


def _icc_profile(psd) -> bytes | None:
    """The document's embedded ICC profile (image resource 1039), if any."""
    from psd_tools.constants import Resource

    try:
        data = psd.image_resources.get_data(Resource.ICC_PROFILE)
    except (KeyError, AttributeError):
        return None
    return bytes(data) if isinstance(data, (bytes, bytearray)) and data else None


def _read_nodes(
    container,
    parent: Layer | None,
    out: list[Layer],
    limits: Limits,
    budget: ReadBudget,
    icc: bytes | None,
) -> None:
    """Layers bottom first, each group after its contents (Document.layers' order)."""
    for psd_layer in container:
        if psd_layer.is_group():
            group = Layer(
                LayerKind.GROUP,
                validate.clean_name(psd_layer.name, "Group") or "Group",
                visible=psd_layer.visible,
                opacity=psd_layer.opacity / 255.0,
                blend_mode=_mode_of(psd_layer),
                collapsed=not _open_folder(psd_layer),
            )
            _read_nodes(psd_layer, group, out, limits, budget, icc)
            layer: Layer | None = group
        else:
            layer = _read_layer(psd_layer, limits, budget, icc)
            if layer is not None:
                layer = psd_roles.apply_role(layer, psd_roles.read_role(psd_layer))
        if layer is None:
            continue
        layer.parent_id = parent.id if parent is not None else None
        out.append(layer)
        if len(out) > limits.max_layers:
            raise UnsafeFileError(f"it has more than {limits.max_layers} layers")


def _open_folder(psd_group) -> bool:
    try:
        return bool(psd_group.open_folder)
    except (ValueError, AttributeError):  # no section divider setting
        return True


def _mode_of(psd_layer) -> str:
    mode = psd_layer.blend_mode
    key = mode.value if hasattr(mode, "value") else bytes(mode)
    return blend.mode_from_psd_key(key)


def _read_layer(psd_layer, limits: Limits, budget: ReadBudget, icc: bytes | None) -> Layer | None:
    # Krita writes Pascal names with a trailing NUL ('Background\x00'): control characters go
    name = validate.clean_name(psd_layer.name, "Layer") or "Layer"
    left, top, right, bottom = psd_layer.bbox
    w, h = right - left, bottom - top
    visible, opacity = psd_layer.visible, psd_layer.opacity / 255.0
    extra = {"psd_kind": psd_layer.kind} if psd_layer.kind != "pixel" else {}
    if psd_layer.kind not in _PIXEL_KINDS:
        log.info("skipping PSD layer %r of kind %s (no pixels)", name, psd_layer.kind)
        return None
    if w <= 0 or h <= 0 or (psd_layer.kind == "pixel" and not psd_layer.has_pixels()):
        return Layer(
            LayerKind.IMAGE,
            name,
            Raster(4),
            visible=visible,
            opacity=opacity,
            extra=extra,
            blend_mode=_mode_of(psd_layer),
        )
    check_offset(left, top, f"layer {name!r}", limits)
    budget.spend_pixels(w, h, f"layer {name!r}")
    image = None
    if psd_layer.kind == "pixel" and not psd_layer.has_mask():
        image = psd_layer.topil(apply_icc=False)  # profiles are converted below
    if image is None:  # masks, type, shapes, smart objects: let psd-tools render them
        image = _render_alone(psd_layer)
        if image is None:
            return None
        left, top = psd_layer.bbox[0], psd_layer.bbox[1]
    rgba = to_srgb_rgba(image, f"layer {name!r}", icc)
    return Layer(
        LayerKind.IMAGE,
        name,
        Raster(4, rgba, left, top),
        visible=visible,
        opacity=opacity,
        locked=False,
        extra=extra,
        blend_mode=_mode_of(psd_layer),
    )


def _render_alone(psd_layer):
    """The layer's own pixels (mask applied) without its opacity or visibility, which the
    Impasto layer keeps as properties: psd-tools' ``composite`` would apply both."""
    opacity = psd_layer.opacity
    try:
        psd_layer.opacity = 255
        return psd_layer.composite(layer_filter=lambda _layer: True, apply_icc=False)
    finally:
        psd_layer.opacity = opacity
