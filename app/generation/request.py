"""Turn the document plus the generate panel's settings into one immutable engine request.

A pure function: it reads the document, copies every array it sends, and returns a
:class:`PlannedJob` that later edits of the document cannot touch. No threads, no Qt objects
beyond reading the document.

Coordinates: the request's ``image`` covers ``PlannedJob.origin`` (a document rectangle, the whole
canvas or the crop box plus some context), so memory follows the generated area rather than the
canvas; the engine's boxes are relative to that origin.
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from app.compose import composite, flatten_rgb
from app.control_layers import is_reference
from app.document import Document
from app.geometry import EMPTY, Rect
from app.layers import PAINT_KINDS, Layer, LayerKind
from app.raster import Raster
from inference.api import (
    Box,
    ControlInput,
    Mode,
    ModelLoadError,
    ReferenceInput,
    Request,
    ResizeMode,
    Sampler,
)

# Context kept around the crop box so the engine can grow it to the model's aspect ratio.
CONTEXT_MARGIN = 64
SIZE_MULTIPLE = 8
DEFAULT_NATIVE = 512


class RequestBuildError(ValueError):
    """The document and settings cannot make a request; the message says what to do."""


class Workflow(StrEnum):
    """What Generate will do, as the panel shows it."""

    INPAINT = "Inpaint"
    SKETCH = "Sketch to image"
    IMG2IMG_SELECTION = "Image to image (selection)"
    IMG2IMG = "Image to image"
    TXT2IMG = "Text to image"

    @property
    def engine_mode(self) -> Mode:
        if self is Workflow.INPAINT:
            return Mode.INPAINT
        if self is Workflow.TXT2IMG:
            return Mode.TXT2IMG
        return Mode.IMG2IMG


class ResolutionPolicy(StrEnum):
    NATIVE = "Model native (fast)"  # generate at the model's resolution, scale to the box
    EXACT = "Crop size (exact)"  # generate at the box's own size (slow for large boxes)


@dataclass(frozen=True)
class GenerationParams:
    """Everything the generate panel decides (a plain value, easy to save and compare)."""

    prompt: str = ""
    negative_prompt: str = ""
    model_path: str | None = None  # None = built-in classic engine
    model_name: str = "Built-in classic"
    model_hash: str | None = None
    vae_path: str | None = None
    native_size: int = DEFAULT_NATIVE  # model's native resolution (512 SD1.x, 1024 SDXL)
    sampler: Sampler = Sampler.EULER_A
    steps: int = 20
    guidance: float = 7.0
    strength: float = 0.75
    seed: int = 0  # already resolved: the panel draws a random one before building
    batch_size: int = 1
    resolution: ResolutionPolicy = ResolutionPolicy.NATIVE
    padding: int = 32
    mask_blur: int = 4
    color_match: bool = False
    workflow: Workflow | None = None  # user override; None = follow the document
    loras: tuple[tuple[str, float], ...] = ()  # (path, weight); ignored by the classic engine
    frame: Rect | None = None  # the generation frame (app.frame); None = the automatic area
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class PlannedJob:
    """A request and where its results belong in the document."""

    request: Request
    workflow: Workflow
    origin: Rect  # document area covered by request.image (txt2img: the target box)
    target: Rect  # the crop box in document coordinates
    recipe: dict[str, Any]  # app-side recipe entries (merged with the engine's)
    doc_size: tuple[int, int] = (0, 0)

    def to_document(self, box: Box) -> Rect:
        """An engine box (relative to the request image) in document coordinates."""
        return Rect(box.x + self.origin.x, box.y + self.origin.y, box.width, box.height)


# ---- mode ------------------------------------------------------------------------------


def detect_workflow(doc: Document) -> Workflow:
    """Inpaint when the mask has pixels, sketch-to-image when the active layer is a sketch with
    strokes, img2img on a selection, txt2img on an empty canvas, otherwise img2img of it all."""
    mask = doc.mask_layer
    if mask is not None and not _content(mask, doc).is_empty:
        return Workflow.INPAINT
    active = doc.active_layer
    if (
        active is not None
        and active.kind is LayerKind.SKETCH
        and active.visible
        and not _used_as_control(active)
        and not _content(active, doc).is_empty
    ):
        return Workflow.SKETCH
    blank = picture_is_blank(doc)
    if blank:
        return Workflow.TXT2IMG
    if doc.selection_mask() is not None:
        return Workflow.IMG2IMG_SELECTION
    return Workflow.IMG2IMG


def picture_is_blank(doc: Document) -> bool:
    """True when the visible picture is nothing, or one flat colour (a new canvas)."""
    contributing = [
        layer
        for layer in doc.layers
        if layer.kind in PAINT_KINDS
        and doc.is_shown(layer)
        and layer.opacity > 0
        and not _content(layer, doc).is_empty
    ]
    if not contributing:
        return True
    if len(contributing) > 1:
        return False
    raster = contributing[0].raster
    assert raster is not None
    data = raster.data
    first = data[0, 0]
    if not np.array_equal(
        data[::7, ::7].reshape(-1, 4).min(0), data[::7, ::7].reshape(-1, 4).max(0)
    ):
        return False
    return bool((data == first).all())


# ---- the request -----------------------------------------------------------------------


def build_request(doc: Document, params: GenerationParams) -> PlannedJob:
    """The immutable request for ``params`` on ``doc`` (raises :class:`RequestBuildError`)."""
    _check_params(params)
    frame = params.frame
    picture = None
    if frame is not None:
        _check_frame(doc, frame)
        picture = frame_picture(doc, frame)
        workflow = params.workflow or detect_framed_workflow(doc, frame, picture)
    else:
        workflow = params.workflow or detect_workflow(doc)
    if params.model_path is None and workflow is not Workflow.INPAINT:
        raise RequestBuildError(
            "The built-in classic engine can only remove things: paint an inpaint mask over "
            "them, or choose a Stable Diffusion model for "
            f"{workflow.value.lower()}."
        )
    target = frame if frame is not None else _target_box(doc, workflow, params.padding)
    if target.is_empty:
        raise RequestBuildError(_empty_target_message(workflow))
    controls_layers = active_control_layers(doc)
    if workflow is Workflow.TXT2IMG:
        origin = target
        width, height = _txt2img_size(target, params)
        image = mask = None
        crop_box = None
    elif frame is not None:
        origin = frame
        image, mask = framed_pixels(doc, frame, workflow, picture)
        width, height = frame.w, frame.h
        crop_box = Box(0, 0, frame.w, frame.h)
    else:
        origin = doc.rect if target == doc.rect else _with_context(target, doc, params.padding)
        image = picture_rgb(doc, origin)  # picture layers only: never the preview or the mask
        width, height = origin.w, origin.h
        crop_box = Box(target.x - origin.x, target.y - origin.y, target.w, target.h)
        mask = None
        if workflow is Workflow.INPAINT:
            mask = _mask_over(doc, origin)
    reference_layers = [layer for layer in controls_layers if is_reference(layer)]
    controls_layers = [layer for layer in controls_layers if not is_reference(layer)]
    controls = tuple(_control_input(doc, layer, origin) for layer in controls_layers)
    references = tuple(_reference_input(layer) for layer in reference_layers)
    model_size = None
    if params.resolution is ResolutionPolicy.EXACT and workflow is not Workflow.TXT2IMG:
        model_size = _round(max(target.w, target.h))
    loras = _request_loras(params)
    request = Request(
        mode=workflow.engine_mode,
        prompt=params.prompt.strip(),
        negative_prompt=params.negative_prompt.strip(),
        seed=int(params.seed),
        steps=int(params.steps),
        guidance=float(params.guidance),
        strength=float(params.strength),
        sampler=params.sampler,
        batch_size=int(params.batch_size),
        width=width,
        height=height,
        model_path=params.model_path,
        model_size=model_size,
        image=image,
        mask=mask,
        crop_box=crop_box,
        mask_blur=int(params.mask_blur),
        padding=int(params.padding),
        color_match=params.color_match,
        controls=controls,
        loras=loras,
        vae_path=params.vae_path,
        references=references,
    )
    recipe = _app_recipe(params, workflow, target, controls_layers)
    if reference_layers:
        recipe["references"] = [{"layer": layer.name} for layer in reference_layers]
    recipe.update(_lora_recipe(loras))
    return PlannedJob(request, workflow, origin, target, recipe, (doc.width, doc.height))


# ---- the generation frame (app/frame.py) -----------------------------------------------------


def detect_framed_workflow(
    doc: Document, frame: Rect, picture: np.ndarray | None = None
) -> Workflow:
    """What Generate does with a frame: txt2img on a blank canvas, outpaint (inpaint) where the
    frame covers nothing (past the canvas, transparent pixels) or the inpaint mask, sketch to
    image on an active sketch, otherwise img2img of what the frame covers."""
    if picture_is_blank(doc):
        return Workflow.TXT2IMG
    if picture is None:
        picture = frame_picture(doc, frame)
    if (picture[..., 3] < 255).any():
        return Workflow.INPAINT
    mask = doc.mask_layer
    if mask is not None and not _content(mask, doc).intersected(frame).is_empty:
        return Workflow.INPAINT
    active = doc.active_layer
    if (
        active is not None
        and active.kind is LayerKind.SKETCH
        and active.visible
        and not _used_as_control(active)
        and not _content(active, doc).intersected(frame).is_empty
    ):
        return Workflow.SKETCH
    return Workflow.IMG2IMG


FRAME_HINTS = {  # why each mode was chosen, when a generation frame decides
    Workflow.INPAINT: "the generation frame reaches past the picture or over the mask",
    Workflow.SKETCH: "a sketch in the generation frame",
    Workflow.IMG2IMG_SELECTION: "the generation frame",
    Workflow.IMG2IMG: "what the generation frame covers",
    Workflow.TXT2IMG: "the canvas is empty: the generation frame",
}


def planned_workflow(doc: Document) -> Workflow:
    """What Generate does now: with the document's generation frame, what the frame covers
    decides (``detect_framed_workflow``), else ``detect_workflow``."""
    from app.frame import frame_of

    frame = frame_of(doc).rect
    return detect_framed_workflow(doc, frame) if frame is not None else detect_workflow(doc)


def frame_picture(doc: Document, frame: Rect) -> np.ndarray:
    """Straight RGBA of the visible picture over ``frame``, transparent past the canvas."""
    inside = frame.intersected(doc.rect)
    if inside == frame:
        return composite(doc.layers, frame)
    rgba = np.zeros((frame.h, frame.w, 4), np.uint8)
    if not inside.is_empty:  # only the canvas part: an opaque photo there is a plain copy
        rgba[inside.slices(frame)] = composite(doc.layers, inside)
    return rgba


def framed_pixels(
    doc: Document, frame: Rect, workflow: Workflow, picture: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The request image over ``frame`` and, for an inpaint, its mask: the empty area (past the
    canvas, transparent) with a seam (``inference.outpaint``) plus the user's inpaint mask.
    Where the frame holds empty pixels the image is straight RGBA: the engine pre-fills them
    on its own thread before denoising (the fill of a large frame takes a good fraction of a
    second)."""
    from inference import outpaint

    rgba = frame_picture(doc, frame) if picture is None else picture
    empty = rgba[..., 3] < 255
    image = rgba if empty.any() else np.ascontiguousarray(rgba[..., :3])
    if workflow is not Workflow.INPAINT:
        return image, None
    mask_layer = doc.mask_layer
    painted = None
    if mask_layer is not None and mask_layer.raster is not None:
        painted = mask_layer.raster.read(frame)
        painted[~_inside_canvas(frame, doc)] = 0
    seam = outpaint.seam_width(frame.w, frame.h)
    mask = outpaint.outpaint_mask(empty, seam, painted)
    if not (mask > 127).any():
        raise RequestBuildError(
            "Nothing to inpaint inside the frame: paint the inpaint mask there, move the frame "
            "past the canvas to outpaint, or choose another mode."
        )
    return image, mask


def _inside_canvas(frame: Rect, doc: Document) -> np.ndarray:
    inside = np.zeros((frame.h, frame.w), bool)
    common = frame.intersected(doc.rect)
    if not common.is_empty:
        inside[common.slices(frame)] = True
    return inside


def _check_frame(doc: Document, frame: Rect) -> None:
    from app.canvas_size import CanvasSizeError, check_canvas_size

    if frame.is_empty:
        raise RequestBuildError(
            f"The generation frame ({frame.w} × {frame.h}) has no area: draw it again."
        )
    grown = doc.rect.united(frame)
    try:
        check_canvas_size(grown.w, grown.h)
    except CanvasSizeError as error:
        raise RequestBuildError(f"Cannot outpaint there: {error}") from None


def picture_rgb(doc: Document, area: Rect) -> np.ndarray:
    """The visible picture over ``area`` as RGB on white (what img2img and inpaint start from).
    An opened photo (one opaque layer) is copied, not blended (see ``compose.composite``)."""
    return flatten_rgb(doc.layers, area)


def active_control_layers(doc: Document) -> list[Layer]:
    """Visible layers whose control is switched on: control, pose, sketch-as-control, or any
    other raster layer the user chose to use as control."""
    return [
        layer
        for layer in doc.layers
        if layer.kind not in (LayerKind.MASK, LayerKind.PREVIEW, LayerKind.GROUP)
        and doc.is_shown(layer)
        and _used_as_control(layer)
    ]


def control_image(doc: Document, layer: Layer, area: Rect) -> np.ndarray:
    """The control image (RGB uint8) a layer gives over the document ``area``."""
    if layer.kind is LayerKind.POSE:
        return _pose_image(doc, layer, area)
    if layer.kind is LayerKind.SKETCH:
        from inference.control_images import scribble_from_sketch

        strokes = composite([_opaque_copy(layer)], area)
        if not strokes[..., 3].any():
            return np.zeros((area.h, area.w, 3), np.uint8)
        return scribble_from_sketch(strokes)
    raster = layer.raster
    assert raster is not None
    if _is_imported_map(raster, doc):
        # an imported depth map / line art of another size: fitted to the canvas as A1111 does
        from inference.control_images import fit_control_image

        mode = layer.control.resize_mode if layer.control else ResizeMode.CROP_AND_RESIZE
        fitted = fit_control_image(raster.data[..., :3], doc.width, doc.height, mode)
        out = np.zeros((area.h, area.w, 3), np.uint8)  # black past the canvas (a frame)
        common = area.intersected(doc.rect)
        if not common.is_empty:
            out[common.slices(area)] = fitted[common.slices(doc.rect)]
        return out
    # the layer already holds its control image (canny, depth...), black where empty
    black = (0, 0, 0, 255)
    return composite([_opaque_copy(layer)], area, kinds=frozenset({layer.kind}), background=black)[
        ..., :3
    ]


def _is_imported_map(raster: Raster, doc: Document) -> bool:
    rect = raster.rect
    return (
        not rect.is_empty
        and (rect.x, rect.y) == (0, 0)
        and (rect.w, rect.h) != (doc.width, doc.height)
        and bool((raster.data[..., 3] == 255).all())
    )


# ---- recipes ---------------------------------------------------------------------------


def encode_mask(mask: np.ndarray) -> str:
    """A mask as base64 PNG text (small for masks, and JSON-safe for project files)."""
    return encode_image(mask)


def encode_image(pixels: np.ndarray) -> str:
    """A grey (h, w) or RGB (h, w, 3) image as base64 PNG text, JSON-safe for recipes."""
    from PIL import Image

    mode = "L" if pixels.ndim == 2 else "RGB"
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, np.uint8), mode).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


MAX_KEPT_REFERENCE = 2048  # px per side of a reference image kept in a recipe


def encode_reference(pixels: np.ndarray) -> str:
    """A reference image for the recipe: exact up to ``MAX_KEPT_REFERENCE`` px a side (the
    encoder sees 224 px), shrunk beyond that so a recipe stays a few MB at most."""
    height, width = pixels.shape[:2]
    scale = MAX_KEPT_REFERENCE / max(height, width)
    if scale < 1:
        import cv2

        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return encode_image(pixels[..., :3])


def decode_image(text: str) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(text))) as image:
        image.load()
        return np.asarray(image).copy()


def decode_mask(text: str) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(text))) as image:
        return np.asarray(image.convert("L")).copy()


def params_from_recipe(recipe: dict[str, Any], base: GenerationParams) -> GenerationParams:
    """Panel settings that reproduce ``recipe`` ("generate again with this recipe")."""
    from dataclasses import replace

    sampler = base.sampler
    if recipe.get("sampler"):
        with contextlib.suppress(ValueError):
            sampler = Sampler.parse(str(recipe["sampler"]))
    workflow = base.workflow
    if recipe.get("workflow") in {w.value for w in Workflow}:
        workflow = Workflow(recipe["workflow"])
    return replace(
        base,
        prompt=str(recipe.get("prompt", base.prompt)),
        negative_prompt=str(recipe.get("negative_prompt", base.negative_prompt)),
        model_path=recipe.get("model_path", base.model_path),
        model_name=str(recipe.get("model", base.model_name)),
        model_hash=recipe.get("model_hash", base.model_hash),
        vae_path=recipe.get("vae_path", base.vae_path),
        sampler=sampler,
        steps=int(recipe.get("steps", base.steps)),
        guidance=float(recipe.get("guidance", base.guidance)),
        strength=float(recipe.get("strength", base.strength)),
        seed=int(recipe.get("seed", base.seed)),
        padding=int(recipe.get("padding", base.padding)),
        mask_blur=int(recipe.get("mask_blur", base.mask_blur)),
        workflow=workflow,
        loras=recipe_loras(recipe.get("loras")),
    )


def recipe_loras(entries: Any) -> tuple[tuple[str, float], ...]:
    """(path, weight) pairs from a recipe's ``loras`` ([{name, weight, hash, path}]) or a saved
    panel state's ([path, weight] pairs). Entries without a path (a parsed A1111 text names its
    LoRAs only) or with a weight that is not a number are left out; the model library can resolve
    names (see ``widgets.lora_picker``)."""
    if not isinstance(entries, list | tuple):
        return ()
    pairs: list[tuple[str, float]] = []
    for entry in entries:
        if isinstance(entry, dict):
            path, weight = entry.get("path"), entry.get("weight", 1.0)
        elif isinstance(entry, list | tuple) and len(entry) == 2:
            path, weight = entry
        else:
            continue
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            continue
        if isinstance(path, str) and path and math.isfinite(weight):
            pairs.append((path, weight))
    return tuple(pairs)


def _app_recipe(
    params: GenerationParams,
    workflow: Workflow,
    target: Rect,
    control_layers: list[Layer],
) -> dict[str, Any]:
    recipe: dict[str, Any] = {
        "workflow": workflow.value,
        "mode": workflow.engine_mode.value,
        "prompt": params.prompt.strip(),
        "negative_prompt": params.negative_prompt.strip(),
        "model": params.model_name,
        "model_path": params.model_path,
        "model_hash": params.model_hash,
        "vae_path": params.vae_path,
        "sampler": params.sampler.value,
        "steps": int(params.steps),
        "guidance": float(params.guidance),
        "strength": float(params.strength),
        "seed": int(params.seed),
        "batch_size": int(params.batch_size),
        "crop_box": [target.x, target.y, target.w, target.h],
        "padding": int(params.padding),
        "mask_blur": int(params.mask_blur),
        "resolution": params.resolution.value,
        "native_size": int(params.native_size) if params.model_path else 0,
        "mask": None,
        "controls": [
            {
                "layer": layer.name,
                "type": layer.control.control_type if layer.control else "",
                "model": layer.control.model_path if layer.control else None,
                "weight": layer.control.weight if layer.control else 1.0,
                "start": layer.control.start if layer.control else 0.0,
                "end": layer.control.end if layer.control else 1.0,
                "resize_mode": layer.control.resize_mode if layer.control else "",
            }
            for layer in control_layers
        ],
    }
    return recipe


def _request_loras(params: GenerationParams) -> tuple[tuple[str, float], ...]:
    """The LoRAs to send: none for the classic engine (it has no LoRAs to apply)."""
    if params.model_path is None:
        return ()
    loras = []
    for path, weight in params.loras:
        weight = float(weight)
        if not math.isfinite(weight):
            raise RequestBuildError(f"The weight of the LoRA {path} is not a number.")
        loras.append((str(path), weight))
    return tuple(loras)


def _lora_recipe(loras: tuple[tuple[str, float], ...]) -> dict[str, Any]:
    """``loras`` ([{name, weight, hash, path}]), ``lora_tags`` and ``lora_hashes`` for the
    recipe. The hash reads the file once (cached by path, size and mtime afterwards); a missing
    file stops the job here with a message instead of failing in the worker."""
    if not loras:
        return {}
    from inference.loras import lora_recipe

    try:
        return lora_recipe(loras)
    except ModelLoadError as error:
        raise RequestBuildError(
            f"{error}. Remove it from the LoRA list or pick it again."
        ) from None
    except OSError as error:
        raise RequestBuildError(f"Cannot read a LoRA: {error}.") from None


# ---- helpers ---------------------------------------------------------------------------


def _content(layer: Layer, doc: Document) -> Rect:
    if layer.raster is None:
        return EMPTY
    return layer.raster.content_rect().intersected(doc.rect)


def _used_as_control(layer: Layer) -> bool:
    return layer.control is not None and layer.control.enabled


def _check_params(params: GenerationParams) -> None:
    problems = []
    if not 1 <= params.steps <= 1000:
        problems.append(f"steps must be 1..1000, not {params.steps}")
    if not 0.0 <= params.strength <= 1.0:
        problems.append(f"strength must be 0..1, not {params.strength}")
    if not 1 <= params.batch_size <= 64:
        problems.append(f"batch count must be 1..64, not {params.batch_size}")
    if params.padding < 0 or params.mask_blur < 0:
        problems.append("padding and mask blur cannot be negative")
    if not math.isfinite(params.guidance) or params.guidance < 0:
        problems.append(f"guidance must be a number >= 0, not {params.guidance}")
    if not 0 <= params.seed < 2**32:
        problems.append(f"seed must be 0..{2**32 - 1}, not {params.seed}")
    if problems:
        raise RequestBuildError("Cannot generate: " + "; ".join(problems) + ".")


def _target_box(doc: Document, workflow: Workflow, padding: int) -> Rect:
    selection = _selection_bounds(doc)
    if workflow is Workflow.INPAINT:
        mask = doc.mask_layer
        bounds = _content(mask, doc) if mask is not None else EMPTY
        return bounds.adjusted(padding).intersected(doc.rect) if not bounds.is_empty else EMPTY
    if workflow is Workflow.IMG2IMG_SELECTION:
        return (
            selection.adjusted(padding).intersected(doc.rect) if not selection.is_empty else EMPTY
        )
    if workflow in (Workflow.SKETCH, Workflow.TXT2IMG) and not selection.is_empty:
        return selection.adjusted(padding).intersected(doc.rect)
    return doc.rect


def _selection_bounds(doc: Document) -> Rect:
    if doc.selection.is_blank():
        return EMPTY
    return doc.selection.content_rect().intersected(doc.rect)


def _empty_target_message(workflow: Workflow) -> str:
    if workflow is Workflow.INPAINT:
        return "Nothing to inpaint: paint the inpaint mask over the area to regenerate."
    if workflow is Workflow.IMG2IMG_SELECTION:
        return "Nothing is selected: select the area to regenerate, or choose another mode."
    return "The area to generate is empty."


def _with_context(target: Rect, doc: Document, padding: int) -> Rect:
    margin = max(CONTEXT_MARGIN, padding, abs(target.w - target.h) // 2 + SIZE_MULTIPLE)
    return target.adjusted(margin).intersected(doc.rect)


def _round(value: float) -> int:
    return max(SIZE_MULTIPLE * 8, round(value / SIZE_MULTIPLE) * SIZE_MULTIPLE)


def _txt2img_size(target: Rect, params: GenerationParams) -> tuple[int, int]:
    if params.resolution is ResolutionPolicy.EXACT:
        return _round(target.w), _round(target.h)
    aspect = target.w / target.h
    native = params.native_size
    return _round(native * math.sqrt(aspect)), _round(native / math.sqrt(aspect))


def _mask_over(doc: Document, area: Rect) -> np.ndarray:
    mask = doc.mask_layer
    assert mask is not None and mask.raster is not None
    return mask.raster.read(area)


def _opaque_copy(layer: Layer) -> Layer:
    """The layer as it feeds control: visible and fully opaque whatever its display opacity."""
    from dataclasses import replace

    return replace(layer, visible=True, opacity=1.0)


def _pose_image(doc: Document, layer: Layer, area: Rect) -> np.ndarray:
    from inference.openpose import Pose
    from inference.openpose_render import render_pose

    pose = layer.pose
    if pose is None or not pose.people:
        return np.zeros((area.h, area.w, 3), np.uint8)
    if (pose.width, pose.height) != (doc.width, doc.height):
        pose = pose.resized(doc.width, doc.height)
    shifted = Pose(
        area.w,
        area.h,
        tuple(person.translated(-area.x, -area.y) for person in pose.people),
    )
    return render_pose(shifted)


def _reference_input(layer: Layer) -> ReferenceInput:
    """A reference layer's picture (all of it, wherever it lies, on white) for its IP-Adapter."""
    settings = layer.control
    assert settings is not None and layer.raster is not None
    if not settings.model_path:
        raise RequestBuildError(
            f"Reference layer “{layer.name}” has no IP-Adapter: choose one in its settings, "
            "or switch it off."
        )
    area = layer.raster.content_rect()
    if area.is_empty:
        raise RequestBuildError(f"Reference layer “{layer.name}” is empty.")
    image = composite(
        [_opaque_copy(layer)], area, kinds=frozenset({layer.kind}), background=(255, 255, 255, 255)
    )[..., :3]
    encoder = settings.params.get("image_encoder")
    return ReferenceInput(
        image=np.ascontiguousarray(image),
        model_path=settings.model_path,
        image_encoder_path=encoder if isinstance(encoder, str) and encoder else None,
        weight=float(settings.weight),
        style_only=settings.params.get("style_only") is True,
    )


def _control_input(doc: Document, layer: Layer, origin: Rect) -> ControlInput:
    settings = layer.control
    assert settings is not None
    if not settings.model_path:
        raise RequestBuildError(
            f"Control layer “{layer.name}” has no ControlNet model: choose one in its settings, "
            "or switch its control off."
        )
    image = control_image(doc, layer, origin)
    try:
        resize_mode = ResizeMode(settings.resize_mode)
    except ValueError:
        resize_mode = ResizeMode.CROP_AND_RESIZE
    return ControlInput(
        image=image,
        model_path=settings.model_path,
        control_type=settings.control_type,
        weight=float(settings.weight),
        start=float(settings.start),
        end=float(settings.end),
        resize_mode=resize_mode,
    )
