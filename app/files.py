"""One door for every file the app opens or writes: images, projects, exports.

Widgets call these; each raises :class:`FileError` (or a subclass) with a message fit for a person,
and leaves the open document and any existing file untouched when it fails.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from app.document import Document
from app.image_io import (
    DEFAULT_PIXEL_LIMIT,
    EXPORT_FORMATS,
    OPEN_FORMATS,
    ImageLoadError,
    ImageSaveError,
    check_readable_file,
    load_rgba,
    save_flat,
)
from app.io.autosave import AutosaveManager, RecoverableFile
from app.io.errors import (
    CorruptFileError,
    FileError,
    LayerBoundsError,
    OpenError,
    SaveError,
    UnsafeFileError,
    UnsupportedFormatError,
    ZipBombError,
    ZipSlipError,
)
from app.layers import Layer, LayerKind

__all__ = [
    "OPENABLE_SUFFIXES",
    "PROJECT_SUFFIX",
    "AutosaveManager",
    "CorruptFileError",
    "FileError",
    "ImageLoadError",
    "ImageSaveError",
    "LayerBoundsError",
    "OpenError",
    "RecoverableFile",
    "SaveError",
    "UnsafeFileError",
    "UnsupportedFormatError",
    "ZipBombError",
    "ZipSlipError",
    "chosen_result",
    "export_flat",
    "export_flat_with_recipe",
    "export_mask_png",
    "export_pose_json",
    "export_pose_png",
    "export_psd",
    "import_mask_png",
    "open_document",
    "recipe_parameters",
    "save_project",
]

if TYPE_CHECKING:
    from app.io.safety import Limits

log = logging.getLogger(__name__)

PROJECT_SUFFIX = ".ora"
PSD_SUFFIXES = {".psd", ".psb"}
OPENABLE_SUFFIXES = OPEN_FORMATS | PSD_SUFFIXES | {PROJECT_SUFFIX}


def _limits(pixel_limit: int) -> Limits:
    """Project limits: the pixel limit of Settings bounds the canvas and each layer."""
    from app.io.safety import limits_for

    return limits_for(pixel_limit)


def open_document(path: str | os.PathLike, pixel_limit: int = DEFAULT_PIXEL_LIMIT) -> Document:
    """Open a project (.ora), a PSD (as layers) or an image as a new document.

    An .ora keeps its path (Save writes back to it); a PSD or an image has no path yet, so
    Save asks where. Raises :class:`OpenError` subclasses. What was converted to 8-bit sRGB on
    the way in (profiles, deep colour, CMYK, Lab) is in ``doc.colour_note`` (one sentence).
    """
    from app.image_io import colour_notes, describe_colour_notes

    with colour_notes() as notes:
        doc = _open_document(Path(path), pixel_limit)
    doc.colour_note = describe_colour_notes(notes)
    return doc


def _open_document(path: Path, pixel_limit: int) -> Document:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in OPENABLE_SUFFIXES:
        check_readable_file(path)  # before any reader: a FIFO would block it forever
    if suffix == PROJECT_SUFFIX:
        from app.io.atomic import remove_stale_parts
        from app.io.ora import open_ora

        doc = open_ora(path, _limits(pixel_limit))
        remove_stale_parts(path.parent, of=path.name)  # left by a save killed last session
        return doc
    if suffix in PSD_SUFFIXES:
        from app.io.psd import open_psd

        return open_psd(path, _limits(pixel_limit))
    if suffix not in OPEN_FORMATS:
        raise ImageLoadError(f"{path.name}: unsupported file type {suffix or '(none)'}")
    info: dict[str, str] = {}
    pixels = load_rgba(path, pixel_limit, info)
    doc = Document.from_rgba(pixels, name=path.stem)
    if "parameters" in info:  # an A1111/Impasto picture: its recipe travels with it
        doc.layers[0].extra["parameters"] = info["parameters"]
    doc.path = None  # an opened image is not a project: Save asks where
    return doc


def save_project(doc: Document, path: str | os.PathLike | None = None) -> Path:
    """Save (``path`` None: to ``doc.path``) or Save As an OpenRaster project, atomically, keeping
    the previous version as ``NAME.ora~``. On success ``doc.path`` is set and the history marked
    clean (which also removes the document's autosave). Returns the path written.

    Raises :class:`SaveError` (no path, read-only/missing folder, disk full; the old file is
    intact) or :class:`UnsupportedFormatError` for a name that is not ``.ora``.
    """
    from app.io.ora import save_ora

    if path is None:
        if doc.path is None:
            raise SaveError("This document has not been saved yet; choose a file name.")
        path = doc.path
    path = Path(path)
    if path.suffix == "":
        path = path.with_suffix(PROJECT_SUFFIX)
    if path.suffix.lower() != PROJECT_SUFFIX:
        raise UnsupportedFormatError(
            f"Projects are saved as {PROJECT_SUFFIX}; use Export for {path.suffix} files."
        )
    save_ora(doc, path)
    doc.path = path
    doc.history.setClean()
    return path


def export_psd(doc: Document, path: str | os.PathLike) -> None:
    """Layered PSD of every layer (mask/pose/control included hidden). Raises SaveError."""
    from app.io.psd import save_psd

    path = Path(path)
    if path.suffix.lower() not in PSD_SUFFIXES:
        raise UnsupportedFormatError(f"{path.name}: a layered export must end in .psd")
    save_psd(doc, path)


def export_flat(doc: Document, path: str | os.PathLike, parameters: str | None = None) -> None:
    """Flattened PNG/JPEG/WebP of the visible picture layers."""
    from app.io.layer_data import flatten  # banded: an 8k canvas needs no GBs of float temps

    save_flat(path, flatten(doc.layers, doc.rect), parameters)


def chosen_result(doc: Document, layer_id: int | None = None) -> Layer | None:
    """The result layer whose recipe an export carries: ``layer_id`` if given, else the active
    layer if it is a shown result, else the topmost shown result layer with a recipe. "Shown"
    counts the layer's groups too: a result inside a hidden group is not in the picture."""
    if layer_id is not None:
        layer = doc.layer(layer_id)
        return layer if layer.recipe else None
    active = doc.active_layer
    if (
        active is not None
        and active.kind is LayerKind.RESULT
        and active.recipe
        and doc.is_shown(active)
    ):
        return active
    for layer in reversed(doc.layers):
        if layer.kind is LayerKind.RESULT and layer.recipe and doc.is_shown(layer):
            return layer
    return None


def recipe_parameters(recipe: dict[str, Any]) -> str:
    """The AUTOMATIC1111 ``parameters`` text of a result's recipe (what exports carry and
    "Copy parameters" copies)."""
    from inference.parameters import format_parameters

    return format_parameters(recipe)


def export_flat_with_recipe(
    doc: Document, path: str | os.PathLike, layer_id: int | None = None
) -> None:
    """Flattened export carrying the chosen result's recipe (see :func:`chosen_result`) as the
    PNG ``parameters`` chunk or JPEG/WebP EXIF UserComment. Without a result, the text an opened
    picture brought along (``layer.extra["parameters"]``) is carried; else no text."""
    result = chosen_result(doc, layer_id)
    parameters = _carried_parameters(doc) if layer_id is None else None
    if result is not None:
        assert result.recipe is not None  # chosen_result picks only layers with a recipe
        try:
            parameters = recipe_parameters(result.recipe)
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            # a recipe read from a file may hold anything: the picture still exports
            log.warning("the recipe of %r cannot be written as text (%s)", result.name, err)
    export_flat(doc, path, parameters)


def _carried_parameters(doc: Document) -> str | None:
    """The A1111 text an opened picture brought along (topmost visible layer holding one)."""
    for layer in reversed(doc.layers):
        text = layer.extra.get("parameters")
        if layer.visible and isinstance(text, str) and text.strip():
            return text
    return None


def export_mask_png(doc: Document, path: str | os.PathLike) -> None:
    """The inpaint mask over the whole canvas as a greyscale PNG, white = regenerate."""
    mask = doc.mask_layer
    if mask is None:
        pixels = np.zeros((doc.height, doc.width), np.uint8)
    else:
        assert mask.raster is not None  # a MASK layer is a raster kind
        pixels = mask.raster.read(doc.rect)
    _save_png(path, Image.fromarray(pixels, "L"))


def import_mask_png(
    doc: Document, path: str | os.PathLike, pixel_limit: int = DEFAULT_PIXEL_LIMIT
) -> None:
    """Load a mask image (white = regenerate; transparent counts as unmasked) into the mask
    layer as one undoable step, creating the mask layer if the document has none. An image of
    another size is scaled to the canvas. Raises :class:`OpenError` subclasses."""
    rgba = load_rgba(path, pixel_limit)
    grey = np.asarray(Image.fromarray(rgba, "RGBA").convert("L"), np.uint16)
    values = (grey * rgba[..., 3] + 127) // 255
    pixels = values.astype(np.uint8)
    if pixels.shape != (doc.height, doc.width):
        resized = Image.fromarray(pixels, "L").resize(
            (doc.width, doc.height), Image.Resampling.BILINEAR
        )
        pixels = np.asarray(resized, np.uint8)
    mask = doc.mask_layer
    if mask is not None and mask.locked:
        raise FileError(f"Layer “{mask.name}” is locked; unlock it to import a mask.")
    doc.history.beginMacro("Import mask")
    try:
        mask = doc.ensure_mask_layer()
        from app.raster import Raster

        assert mask.raster is not None  # a MASK layer is a raster kind
        area = Raster(1, pixels).content_rect().united(mask.raster.content_rect())
        if not area.is_empty:
            doc.replace_pixels(mask.id, area, pixels[area.slices(doc.rect)].copy(), "Import mask")
    finally:
        doc.history.endMacro()


def _pose_layer(doc: Document, layer_id: int | None) -> Layer:
    if layer_id is not None:
        layer = doc.layer(layer_id)
    elif doc.active_layer is not None and doc.active_layer.kind is LayerKind.POSE:
        layer = doc.active_layer
    else:
        poses = doc.layers_of(LayerKind.POSE)
        if not poses:
            raise SaveError("There is no pose layer to export.")
        layer = poses[-1]
    if layer.kind is not LayerKind.POSE or layer.pose is None:
        raise SaveError(f"Layer “{layer.name}” holds no pose.")
    return layer


def export_pose_json(doc: Document, path: str | os.PathLike, layer_id: int | None = None) -> None:
    """The pose (``layer_id``, else the active or topmost pose layer) as OpenPose JSON."""
    from app.io.layer_data import pose_openpose_json

    data = pose_openpose_json(_pose_layer(doc, layer_id).pose)
    try:
        text = json.dumps(data, indent=1, allow_nan=False).encode("utf-8")
    except ValueError as err:  # NaN / infinite coordinates
        raise SaveError(f"The pose cannot be written as OpenPose JSON: {err}") from err
    from app.io.atomic import atomic_save

    atomic_save(path, lambda tmp: tmp.write_bytes(text), backup=False)


def export_pose_png(doc: Document, path: str | os.PathLike, layer_id: int | None = None) -> None:
    """The pose's ControlNet control image (canvas size, black background) as PNG."""
    pose = _pose_layer(doc, layer_id).pose
    try:
        if isinstance(pose, dict):
            from inference.openpose import parse_pose_json

            pose = parse_pose_json(pose)
        from inference.openpose_render import render_pose

        rendered = render_pose(pose, doc.width, doc.height)
    except Exception as err:  # PoseFormatError, ValueError from the renderer
        raise SaveError(f"Could not render the pose: {err}") from err
    _save_png(path, Image.fromarray(rendered, "RGB"))


def _save_png(path: str | os.PathLike, image: Image.Image) -> None:
    from app.io.atomic import atomic_save

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UnsupportedFormatError(f"{path.name}: this export is a .png file")
    atomic_save(path, lambda tmp: image.save(tmp, format="PNG"), backup=False)


def save_any(doc: Document, path: str | os.PathLike) -> None:
    """Write ``doc`` in the format the extension names: .ora (layers, all Impasto data), .psd
    (layers), .png/.jpg/.webp (flattened, with the chosen result's recipe). For ``convert``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == PROJECT_SUFFIX:
        from app.io.ora import save_ora

        save_ora(doc, path)
    elif suffix in PSD_SUFFIXES:
        export_psd(doc, path)
    elif suffix in EXPORT_FORMATS:
        export_flat_with_recipe(doc, path)
    else:
        raise UnsupportedFormatError(
            f"cannot write {suffix or 'a file without extension'}; "
            "use .ora, .psd, .png, .jpg or .webp"
        )
