"""OpenRaster (.ora), Impasto's project format (https://www.openraster.org/).

Layout written::

    mimetype                    "image/openraster", first entry, stored (not compressed)
    stack.xml                   <image w h><stack><layer .../>...</stack></image>, top layer first
    data/layerNNN.png           one PNG per layer, placed at the layer's x/y offset
    mergedimage.png             the flattened picture at full size
    Thumbnails/thumbnail.png    the picture scaled to fit 256x256
    impasto/document.json       format version, prompt panel state, active layer, selection
    impasto/layers/layerNNN.json          kind-specific data: recipe, control settings, pose
    impasto/layers/layerNNN.openpose.json a pose layer's OpenPose JSON, for other tools
    impasto/arrays/*.npy        numpy arrays found in recipes / generation state
    impasto/selection.png       the selection, if any

Layer attributes in stack.xml: the standard ``name src x y opacity visibility``, plus
``impasto:kind``, ``impasto:visible``, ``impasto:locked``, ``impasto:empty`` and ``impasto:data`` in
the Impasto namespace. Mask, pose and control layers are written ``visibility="hidden"`` (their own
visibility is ``impasto:visible``) so Krita, GIMP and MyPaint show the same picture as Impasto.
Masks are stored as white with the mask as alpha; pose layers as their rendered control image.

Blend modes are ``composite-op`` (kept as a string, unknown ones drawn as normal); groups are
nested ``<stack>`` elements with ``isolation="isolate"`` (or ``"auto"`` for pass-through).

Reading files from other apps: every layer becomes an image layer, nested stacks become groups
(offsets added; opacity, visibility and mode stay on the group), unknown attributes are kept in
``layer.extra["ora_attrs"]`` and written back.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import weakref
import zipfile
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar
from xml.etree import ElementTree as ET

import numpy as np
from PIL import Image

from app import blend, groups
from app.document import Document
from app.geometry import Rect
from app.io import layer_data, validate
from app.io.atomic import atomic_save
from app.io.errors import CorruptFileError, FileError, OpenError, SaveError, UnsafeFileError
from app.io.safety import (
    DEFAULT_LIMITS,
    Limits,
    ReadBudget,
    check_archive,
    check_canvas,
    check_document_budget,
    check_offset,
    decode_png,
    png_size,
    read_entry,
)
from app.layers import Layer, LayerKind
from app.raster import Raster

log = logging.getLogger(__name__)

MIMETYPE = b"image/openraster"
ORA_VERSION = "0.0.5"
NS = "https://github.com/impasto/impasto/ns/openraster/1"
FORMAT_VERSION = 1
THUMBNAIL_SIDE = 256
ENCODE_THREADS = max(1, min(4, os.cpu_count() or 1))
DECODE_THREADS = max(1, min(2, os.cpu_count() or 1))  # each holds one decoded layer in flight
PNG_COMPRESS_LEVEL = 1  # layers are big; level 1 is ~4x faster than 6 for ~10% more bytes

T = TypeVar("T")

# Not carried over from other apps' files: derived from the layer itself, or an identity that
# must not be copied along when a layer is duplicated.
_NOT_KEPT = {"edit-locked", "uuid"}
_STANDARD_ATTRS = {"name", "src", "x", "y", "opacity", "visibility", "composite-op"}
_RESERVED_ATTRS = _STANDARD_ATTRS | {"edit-locked"}
_Q = f"{{{NS}}}"


# ---- writing -------------------------------------------------------------------------------


class OraSource(Protocol):
    """What the writer reads: a :class:`Document`, or autosave's frozen snapshot of one."""

    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def rect(self) -> Rect: ...
    @property
    def layers(self) -> list[Layer]: ...
    @property
    def active_layer_id(self) -> int | None: ...
    @property
    def selection(self) -> Raster: ...
    @property
    def generation_state(self) -> dict[str, Any]: ...


def save_ora(
    doc: OraSource,
    path: str | os.PathLike,
    *,
    backup: bool = True,
    merged: bool = True,
    png_cache: PngCache | None = None,
) -> None:
    """Write ``doc`` as an OpenRaster project, atomically. Raises :class:`SaveError`.

    ``merged=False`` leaves out ``mergedimage.png`` and the thumbnail (autosaves: flattening the
    picture is most of the cost of a save and Impasto's reader does not need it). ``png_cache``
    (see :class:`PngCache`) reuses the PNGs of layers whose pixels did not change.
    """
    atomic_save(
        path, lambda tmp: write_ora(doc, tmp, merged=merged, png_cache=png_cache), backup=backup
    )


class PngCache(dict):
    """Encoded layer PNGs kept between saves, by layer id. An entry is reused only while the
    layer still holds the very same pixel array (or pose value) at the same offset; the owner
    must also drop a layer's entry when ``Document.pixels_changed`` reports an in-place edit
    (every pixel write in the model emits it)."""

    def invalidate(self, layer_id: int, *_args: object) -> None:
        self.pop(layer_id, None)


def _content_key(layer: Layer) -> tuple:
    raster = layer.raster
    if raster is None:
        return (layer.kind, layer.pose)
    return (layer.kind, weakref.ref(raster.data), raster.x, raster.y)


def _same_content(key: tuple, layer: Layer) -> bool:
    raster = layer.raster
    if raster is None:
        return key[0] is layer.kind and len(key) == 2 and key[1] is layer.pose
    return (
        key[0] is layer.kind
        and len(key) == 4
        and key[1]() is raster.data
        and key[2:] == (raster.x, raster.y)
    )


def _cached_layer_png(layer: Layer, canvas, cache: PngCache | None) -> tuple[bytes, int, int, bool]:
    if cache is None:
        return _layer_png(layer, canvas)
    hit = cache.get(layer.id)
    if hit is not None and _same_content(hit[0], layer):
        return hit[1]
    key = _content_key(layer)
    encoded = _layer_png(layer, canvas)
    cache[layer.id] = (key, encoded)
    return encoded


def write_ora(
    doc: OraSource,
    target: str | os.PathLike | io.BufferedIOBase,
    *,
    merged: bool = True,
    png_cache: PngCache | None = None,
) -> None:
    """Write the project to a path or a binary file object (not atomic; see :func:`save_ora`)."""
    # children before their group, so the index of a layer read back is the one written here
    layers = list(groups.post_order(groups.build_tree(layer_data.saved_layers(doc.layers))))
    ET.register_namespace("impasto", NS)
    root = ET.Element("image", {"version": ORA_VERSION, "w": str(doc.width), "h": str(doc.height)})
    stack = ET.SubElement(root, "stack")
    packer = layer_data.JsonPacker("impasto/arrays/")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, compress_type=zipfile.ZIP_STORED)
        elements: dict[int, ET.Element] = {}
        pixel_layers = [layer for layer in layers if layer.kind is not LayerKind.GROUP]
        jobs = [partial(_cached_layer_png, layer, doc.rect, png_cache) for layer in pixel_layers]
        encoded_by_id = zip(pixel_layers, _in_order(jobs), strict=True)
        for layer, encoded in encoded_by_id:
            index = layers.index(layer)
            elements[layer.id] = _write_layer(archive, layer, index, encoded, packer)
        for layer in layers:
            if layer.kind is LayerKind.GROUP:
                elements[layer.id] = _group_element(layer)
        _nest(stack, layers, elements)
        active = next(
            (i for i, layer in enumerate(layers) if layer.id == doc.active_layer_id), None
        )
        document = {
            "format": FORMAT_VERSION,
            "app": "Impasto",
            "active_layer": active,
            "generation_state": packer.pack(doc.generation_state),
        }
        if not doc.selection.is_blank():
            selection = doc.selection.copy()
            selection.trim()
            _write_png(archive, "impasto/selection.png", Image.fromarray(selection.data, "L"))
            document["selection"] = {"x": selection.x, "y": selection.y}
        _write_json(archive, "impasto/document.json", document)
        for name, array in packer.arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(name, buffer.getvalue())
        archive.writestr("stack.xml", _xml_bytes(root))
        if png_cache is not None:  # forget deleted layers
            for stale in set(png_cache) - {layer.id for layer in layers}:
                png_cache.pop(stale, None)
        if merged:
            picture = Image.fromarray(layer_data.flatten(layers, doc.rect), "RGBA")
            _write_png(archive, "mergedimage.png", picture)
            picture.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BOX)
            _write_png(archive, "Thumbnails/thumbnail.png", picture)


def _xml_bytes(root: ET.Element) -> bytes:
    """stack.xml, checked by parsing it back: a file we write must be one we can open."""
    try:
        data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        ET.fromstring(data)
    except (TypeError, ValueError, ET.ParseError) as err:
        raise SaveError(f"Could not write stack.xml: {err}") from err
    return data


def _layer_png(layer: Layer, canvas) -> tuple[bytes, int, int, bool]:
    """PNG bytes of a layer as other apps see it, its offset, and whether it is empty."""
    pixels = layer_data.layer_rgba(layer, canvas)
    if pixels is None:
        return _encode_png(Image.new("RGBA", (1, 1), (0, 0, 0, 0))), 0, 0, True
    rgba, x, y = pixels
    return _encode_png(Image.fromarray(np.ascontiguousarray(rgba), "RGBA")), x, y, False


def _in_order(
    jobs: Sequence[Callable[[], T]], workers: int = ENCODE_THREADS
) -> Generator[T, None, None]:
    """Run ``jobs`` on a few threads (PNG coding releases the GIL), yielding results in order
    with at most ``workers`` in flight, so memory stays bounded. A job's exception is raised
    in order, after the jobs in flight finish."""
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future[T]] = deque()
        for job in jobs:
            pending.append(pool.submit(job))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _write_layer(
    archive: zipfile.ZipFile,
    layer: Layer,
    index: int,
    encoded: tuple[bytes, int, int, bool],
    packer: layer_data.JsonPacker,
) -> ET.Element:
    stem = f"layer{index:03d}"
    src = f"data/{stem}.png"
    png, x, y, empty = encoded
    kept = validate.clean_ora_attrs(
        layer.extra.get("ora_attrs"), _RESERVED_ATTRS, f"layer {layer.name!r}", _Q
    )
    attrs: dict[str, str] = dict(kept)
    if empty:
        attrs[_Q + "empty"] = "true"
    _write_stored(archive, src, png)
    del png
    attrs.update(
        {
            "name": validate.clean_name(layer.name, ""),
            "src": src,
            "x": str(x),
            "y": str(y),
            "opacity": repr(float(layer.opacity)),
            "visibility": "visible" if layer_data.shown_in_picture(layer) else "hidden",
            "composite-op": validate.clean_composite_op(layer.blend_mode),
            _Q + "kind": layer.kind.value,
            _Q + "visible": _bool(layer.visible),
            _Q + "locked": _bool(layer.locked),
        }
    )
    if layer.locked:
        attrs["edit-locked"] = "true"
    meta: dict[str, Any] = {}
    if layer.recipe is not None:
        meta["recipe"] = packer.pack(layer.recipe)
    if layer.control is not None:
        meta["control"] = packer.pack(layer_data.control_to_data(layer.control))
    if layer.pose is not None:
        meta["pose"] = layer_data.pose_to_data(layer.pose)
        openpose = layer_data.pose_openpose_json(layer.pose)
        _write_json(archive, f"impasto/layers/{stem}.openpose.json", openpose)
    extra = {k: v for k, v in layer.extra.items() if k not in ("ora_attrs",)}
    if extra:
        meta["extra"] = packer.pack(extra)
    if meta:
        name = f"impasto/layers/{stem}.json"
        _write_json(archive, name, meta)
        attrs[_Q + "data"] = name
    return ET.Element("layer", attrs)


def _group_element(layer: Layer) -> ET.Element:
    """A group as a nested ``<stack>``: pass-through is ``isolation="auto"`` with src-over (the
    spec's non-isolated case), every other mode an isolated group with that ``composite-op``."""
    passing = layer.blend_mode == blend.PASS_THROUGH
    attrs = {
        "name": xml_safe(layer.name),
        "opacity": repr(float(layer.opacity)),
        "visibility": "visible" if layer.visible else "hidden",
        "composite-op": blend.NORMAL if passing else validate.clean_composite_op(layer.blend_mode),
        "isolation": "auto" if passing else "isolate",
        _Q + "kind": LayerKind.GROUP.value,
        _Q + "locked": _bool(layer.locked),
        _Q + "collapsed": _bool(layer.collapsed),
    }
    return ET.Element("stack", attrs)


def _nest(root: ET.Element, layers: list[Layer], elements: dict[int, ET.Element]) -> None:
    """Place each element in its group's ``<stack>``, top first as stack.xml lists them."""
    for node in reversed(groups.build_tree(layers)):
        _nest_node(root, node, elements)


def _nest_node(parent: ET.Element, node: groups.Node, elements: dict[int, ET.Element]) -> None:
    element = elements[node.layer.id]
    parent.append(element)
    for child in reversed(node.children):
        _nest_node(element, child, elements)


def _encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _write_stored(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    # PNG data is already compressed: deflating it again costs time for nothing.
    archive.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_STORED)


def _write_png(archive: zipfile.ZipFile, name: str, image: Image.Image) -> None:
    _write_stored(archive, name, _encode_png(image))


def _write_json(archive: zipfile.ZipFile, name: str, value: Any) -> None:
    try:
        text = json.dumps(value, ensure_ascii=False, indent=1)
    except (TypeError, ValueError) as err:
        raise SaveError(f"Could not save {name}: {err}") from err
    archive.writestr(name, text.encode("utf-8"))


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (control characters, lone surrogates);
    a layer name imported from elsewhere may contain them."""
    return validate.xml_text(text)


def _bool(value: bool) -> str:
    return "true" if value else "false"


# ---- reading -------------------------------------------------------------------------------


@dataclass(eq=False)
class _Placed:
    element: ET.Element
    x: int
    y: int
    opacity: float
    visible: bool
    parent: _Placed | None = None  # the enclosing <stack>, None for the root stack


def open_ora(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> Document:
    """Read an OpenRaster file (ours or another app's) into a new document.

    Raises only :class:`FileError` subclasses: :class:`OpenError` for a missing or unreadable
    file, :class:`CorruptFileError` for damaged content, :class:`UnsafeFileError` (zip slip, zip
    bomb, absurd sizes) for files refused on purpose.
    """
    path = Path(path)
    if not path.exists():
        raise OpenError(f"{path.name}: file not found ({path})")
    if path.is_dir():
        raise OpenError(f"{path.name} is a folder, not a project file")
    try:
        with zipfile.ZipFile(path) as archive:
            doc = _read_archive(archive, limits)
    except FileError as err:
        raise type(err)(f"{path.name}: {err}") from err
    except PermissionError as err:
        raise OpenError(f"{path.name}: permission denied") from err
    except zipfile.BadZipFile as err:
        raise CorruptFileError(f"{path.name} is not a valid OpenRaster file ({err})") from err
    except MemoryError as err:
        raise UnsafeFileError(f"{path.name} needs more memory than is available") from err
    except Exception as err:  # zlib.error, EOFError, struct.error, ValueError, ...
        raise CorruptFileError(f"{path.name} is damaged or truncated ({err})") from err
    doc.path = path
    return doc


def _read_archive(archive: zipfile.ZipFile, limits: Limits) -> Document:
    check_archive(archive, limits)
    budget = ReadBudget(limits)
    names = set(archive.namelist())
    if "mimetype" in names:
        mimetype = read_entry(archive, "mimetype", 256, budget).strip()
        if mimetype != MIMETYPE:
            raise CorruptFileError(f"it is not an OpenRaster file (mimetype {mimetype[:40]!r})")
    if "stack.xml" not in names:
        raise CorruptFileError("it is not an OpenRaster file (no stack.xml)")
    root = _parse_xml(read_entry(archive, "stack.xml", limits.max_text_bytes, budget))
    if root.tag != "image":
        raise CorruptFileError("stack.xml does not describe an image")
    width, height = _int_attr(root, "w", None), _int_attr(root, "h", None)
    check_canvas(width, height, limits)
    stack = root.find("stack")
    if stack is None:
        raise CorruptFileError("stack.xml has no layer stack")

    placed: list[_Placed] = []
    _collect(stack, 0, 0, None, placed, limits, depth=0)
    if len(placed) > limits.max_layers:
        raise UnsafeFileError(f"it has {len(placed)} layers (at most {limits.max_layers})")
    check_document_budget((width, height), _declared_sizes(archive, placed), limits)

    document_meta: dict[str, Any] = {}
    if "impasto/document.json" in names:
        document_meta = _read_json(archive, "impasto/document.json", limits, budget)
        if not isinstance(document_meta, dict):
            raise CorruptFileError("impasto/document.json is not an object")

    def load_array(name: str) -> np.ndarray:
        data = read_entry(archive, name, limits.max_entry_bytes, budget)
        array = np.load(io.BytesIO(data), allow_pickle=False)
        if array.size > limits.max_layer_pixels * 4:
            raise UnsafeFileError(f"{name} is too large")
        return array

    bottom_first = list(reversed(placed))  # children before their group
    pixel_items = [item for item in bottom_first if item.element.tag != "stack"]
    jobs = [
        partial(_read_layer, archive, item, width, height, limits, budget, load_array)
        for item in pixel_items
    ]
    read = dict(zip(map(id, pixel_items), _in_order(jobs, DECODE_THREADS), strict=True))
    layers = [
        read[id(item)] if item.element.tag != "stack" else _read_group(item)
        for item in bottom_first
    ]
    layer_of = {id(item): layer for item, layer in zip(bottom_first, layers, strict=True)}
    for item, layer in zip(bottom_first, layers, strict=True):
        if item.parent is not None:
            layer.parent_id = layer_of[id(item.parent)].id
    doc = Document(width, height)
    for index, layer in enumerate(layers):
        doc._insert_layer(layer, index)
    if not document_meta:  # another app's file: give it the mask layer every document has
        doc._insert_layer(Layer(LayerKind.MASK, LayerKind.MASK.default_name), len(doc.layers))
    state = _unpack_state(document_meta.get("generation_state"), load_array)
    doc.generation_state = state if isinstance(state, dict) else {}
    _read_selection(archive, doc, document_meta, limits, budget)
    active = document_meta.get("active_layer")
    if isinstance(active, int) and 0 <= active < len(layers):
        doc.set_active(layers[active].id)
    elif doc.layers:
        paint = [layer for layer in doc.layers if layer.kind is not LayerKind.MASK]
        doc.set_active((paint or doc.layers)[-1].id)
    doc.history.clear()
    return doc


def _declared_sizes(archive: zipfile.ZipFile, placed: list[_Placed]) -> list[tuple[int, int]]:
    """The pixel sizes the layers' PNG headers declare (nothing is decompressed beyond them)."""
    sizes = []
    for item in placed:
        if item.element.tag == "stack" or item.element.get(_Q + "empty") == "true":
            continue
        size = png_size(archive, item.element.get("src", ""))
        if size is not None:
            sizes.append(size)
    return sizes


def _unpack_state(value: Any, load_array) -> Any:
    return layer_data.unpack(value, load_array) if value is not None else {}


def _parse_xml(data: bytes) -> ET.Element:
    # Entity declarations are how XML bombs work; stack.xml never needs them. (A bare DOCTYPE is
    # harmless: expat fetches no external DTD.)
    if b"<!ENTITY" in data:
        raise UnsafeFileError("stack.xml declares XML entities, which Impasto refuses")
    try:
        return ET.fromstring(data)
    except ET.ParseError as err:
        raise CorruptFileError(f"stack.xml is not valid XML ({err})") from err


def _collect(
    stack: ET.Element,
    x: int,
    y: int,
    parent: _Placed | None,
    out: list[_Placed],
    limits: Limits,
    depth: int,
) -> None:
    """List the layers and groups, top first (a group before its contents), with offsets
    added up; opacity and visibility stay on the group they belong to."""
    if depth > 64:
        raise UnsafeFileError("layer groups are nested more than 64 deep")
    for child in stack:
        if child.tag not in ("layer", "stack"):
            log.info("skipping unknown stack.xml element <%s>", child.tag)
            continue
        cx = x + _int_attr(child, "x", 0)
        cy = y + _int_attr(child, "y", 0)
        check_offset(cx, cy, f"layer {child.get('name', '')!r}", limits)
        visible = child.get("visibility", "visible") != "hidden"
        if child.tag == "stack":
            group = _Placed(child, cx, cy, _opacity(child), visible, parent)
            out.append(group)
            _collect(child, cx, cy, group, out, limits, depth + 1)
        elif child.get("src"):
            out.append(_Placed(child, cx, cy, _opacity(child), visible, parent))
        else:
            log.info("skipping layer %r without pixels", child.get("name"))
            continue
        if len(out) > limits.max_layers:
            raise UnsafeFileError(f"it has more than {limits.max_layers} layers")


def _read_group(item: _Placed) -> Layer:
    """A ``<stack>`` as a group. ``isolation="auto"`` (the default) with src-over at full
    opacity is the spec's non-isolated group: pass-through; anything else is isolated. Impasto's
    own groups (``impasto:kind="group"``) are pass-through at any opacity when not isolated."""
    element = item.element
    mode = _blend_mode(element)
    ours = element.get(_Q + "kind") == LayerKind.GROUP.value
    if (
        element.get("isolation", "auto") != "isolate"
        and mode == blend.NORMAL
        and (item.opacity >= 1.0 or ours)
    ):
        mode = blend.PASS_THROUGH
    return Layer(
        LayerKind.GROUP,
        validate.clean_name(element.get("name"), "Group") or "Group",
        visible=item.visible,
        opacity=item.opacity,
        locked=element.get(_Q + "locked", element.get("edit-locked", "false")) == "true",
        blend_mode=mode,
        collapsed=element.get(_Q + "collapsed") == "true",
    )


def _blend_mode(element: ET.Element) -> str:
    """The ``composite-op`` as a string (unknown ones are kept and drawn as normal)."""
    return validate.clean_composite_op(element.get("composite-op", blend.NORMAL).strip())


def _read_layer(
    archive: zipfile.ZipFile,
    item: _Placed,
    width: int,
    height: int,
    limits: Limits,
    budget: ReadBudget,
    load_array,
) -> Layer:
    element = item.element
    name = validate.clean_name(element.get("name"), "Layer")
    try:
        kind = LayerKind(element.get(_Q + "kind", "image"))
    except ValueError:
        kind = LayerKind.IMAGE
    if kind in (LayerKind.PREVIEW, LayerKind.GROUP):
        kind = LayerKind.IMAGE
    visible = item.visible
    if element.get(_Q + "visible") is not None:
        visible = element.get(_Q + "visible") == "true"
    locked = element.get(_Q + "locked", element.get("edit-locked", "false")) == "true"
    src = element.get("src", "")
    what = f"layer {name!r}"
    if not src.lower().endswith(".png"):
        log.warning("layer %r has non-PNG pixels %r; reading them as an image anyway", name, src)
    data = read_entry(archive, src, limits.max_entry_bytes, budget)
    empty = element.get(_Q + "empty") == "true"

    meta: dict[str, Any] = {}
    if data_name := element.get(_Q + "data"):
        meta = _read_json(archive, data_name, limits, budget)
        if not isinstance(meta, dict):
            raise CorruptFileError(f"the data of {what} is not an object")

    raster: Raster | None = None
    if kind.is_raster:
        if empty:
            raster = Raster(kind.channels)
        else:
            pixels = decode_png(data, what, budget, mask=kind is LayerKind.MASK)
            placed: tuple[np.ndarray, int, int] | None = (pixels, item.x, item.y)
            if kind in layer_data.CANVAS_BOUND_KINDS:  # never beyond the canvas in the model
                placed = layer_data.crop_to_canvas(
                    pixels, item.x, item.y, Rect(0, 0, width, height)
                )
            raster = Raster(kind.channels) if placed is None else Raster(kind.channels, *placed)
    extra: dict[str, Any] = {}
    if meta.get("extra"):
        unpacked = layer_data.unpack(meta["extra"], load_array)
        if isinstance(unpacked, dict):
            extra.update(unpacked)
    attrs = validate.clean_ora_attrs(extra.pop("ora_attrs", None), _RESERVED_ATTRS, what, _Q)
    foreign = {
        k: v
        for k, v in element.attrib.items()
        if k not in _RESERVED_ATTRS | _NOT_KEPT and not k.startswith(_Q)
    }
    attrs.update(validate.clean_ora_attrs(foreign, _RESERVED_ATTRS, what, _Q))
    attrs.pop("composite-op", None)  # the layer's blend_mode holds it
    if attrs:
        extra["ora_attrs"] = attrs
    for key in ("psd_kind",):
        if key in extra and not isinstance(extra[key], str):
            log.warning("%s: dropping %s=%r (not text)", what, key, extra.pop(key))
    layer = Layer(
        kind,
        name,
        raster,
        visible=visible,
        opacity=item.opacity,
        locked=locked,
        extra=extra,
        blend_mode=_blend_mode(element),
    )
    if meta.get("recipe") is not None:
        recipe = layer_data.unpack(meta["recipe"], load_array)
        if isinstance(recipe, dict):
            layer.recipe = recipe
        else:
            log.warning("%s: dropping a recipe that is not an object", what)
    if meta.get("control") is not None:
        layer.control = validate.clean_control(layer_data.unpack(meta["control"], load_array), what)
    if kind is LayerKind.POSE and meta.get("pose") is not None:
        try:
            validate.check_pose_data(meta["pose"])
            layer.pose = layer_data.pose_from_data(meta["pose"])
        except FileError:
            raise
        except Exception as err:  # ValueError, KeyError, TypeError, PoseFormatError
            # the layer stays (its picture is in the PNG); only the unusable keypoints go
            log.warning("%s: dropping its pose data, which cannot be used (%s)", what, err)
    return layer


def _read_selection(
    archive: zipfile.ZipFile,
    doc: Document,
    meta: dict[str, Any],
    limits: Limits,
    budget: ReadBudget,
) -> None:
    placement = meta.get("selection")
    if not isinstance(placement, dict):
        return
    x, y = placement.get("x", 0), placement.get("y", 0)
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (x, y)):
        log.warning("ignoring a selection placed at (%r, %r)", x, y)
        return
    check_offset(x, y, "the selection", limits)
    data = read_entry(archive, "impasto/selection.png", limits.max_entry_bytes, budget)
    pixels = decode_png(data, "the selection", budget, mask=True)
    doc.selection = Raster(1, pixels, x, y)


def _read_json(archive: zipfile.ZipFile, name: str, limits: Limits, budget: ReadBudget) -> Any:
    data = read_entry(archive, name, limits.max_text_bytes, budget)
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptFileError(f"{name} is not valid JSON ({err})") from err
    except RecursionError:
        raise CorruptFileError(f"{name} is nested too deeply") from None
    if validate.nesting_depth(value) > validate.MAX_JSON_DEPTH:
        # every later step (unpacking, saving) recurses: refuse before the model holds it
        raise CorruptFileError(f"{name} is nested more than {validate.MAX_JSON_DEPTH} deep")
    return value


def _int_attr(element: ET.Element, key: str, default: int | None) -> int:
    raw = element.get(key)
    if raw is None:
        if default is None:
            raise CorruptFileError(f"<{element.tag}> has no {key} attribute")
        return default
    try:
        value = float(raw)
    except ValueError:
        raise CorruptFileError(f"<{element.tag}> has a non-numeric {key}={raw[:20]!r}") from None
    if not math.isfinite(value):
        raise CorruptFileError(f"<{element.tag}> has {key}={raw[:20]!r}")
    if abs(value) > 1 << 40:
        raise UnsafeFileError(f"<{element.tag}> has an absurd {key}={raw[:20]!r}")
    return round(value)


def _opacity(element: ET.Element) -> float:
    raw = element.get("opacity", "1")
    try:
        value = float(raw)
    except ValueError:
        raise CorruptFileError(f"layer opacity {raw[:20]!r} is not a number") from None
    if not math.isfinite(value):
        raise CorruptFileError(f"layer opacity {raw[:20]!r} is not a number")
    return min(1.0, max(0.0, value))
