"""Image › Upscale: the request built from the document, the result layer, and landing it.

An upscale job is an ordinary job on the :class:`~app.generation.jobs.JobController` (the same
queue, previews, cancel and engines, local or remote): its request carries an
:class:`~inference.api.UpscaleSpec`. The picture (every visible layer, flattened) is upscaled
and, with *refine*, regenerated tile by tile (inference/tiled_refine.py). Its result is one RESULT
layer covering the grown canvas; landing it grows the canvas in the same undo step, so one undo
puts the document back as it was. Previews arrive in upscaled coordinates and are shown scaled
down onto the canvas as it is now. A cancelled or failed job changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from app.canvas_size import ResizeCanvas
from app.document import MAX_SIDE, Document
from app.generation.request import (
    GenerationParams,
    PlannedJob,
    RequestBuildError,
    Workflow,
    _control_input,
    _request_loras,
    active_control_layers,
    picture_rgb,
)
from app.geometry import Rect
from app.layers import Layer, LayerKind
from app.library import ModelEntry, ModelKind
from app.raster import Raster
from inference.api import Box, ControlInput, Mode, Request, Result, UpscaleSpec
from inference.recipe import Recipe
from inference.tiled_refine import MAX_TILE, MIN_TILE

SCALES = (1.5, 2.0, 4.0)
WORKFLOW_NAME = "Upscale"


@dataclass(frozen=True)
class UpscaleOptions:
    """What the Upscale dialog decides."""

    scale: float = 2.0
    upscaler_path: str | None = None  # None = Lanczos
    refine: bool = False
    strength: float = 0.3
    tile: int = 512
    overlap: int = 64


def upscaled_size(doc: Document, scale: float) -> tuple[int, int]:
    return max(1, round(doc.width * scale)), max(1, round(doc.height * scale))


def check_options(doc: Document, options: UpscaleOptions, pixel_limit: int) -> None:
    """Raise RequestBuildError with one sentence when ``options`` cannot work on ``doc``."""
    scale = options.scale
    if not math.isfinite(scale) or not 1 <= scale <= 8:
        raise RequestBuildError("The upscale factor must be between 1 and 8.")
    width, height = upscaled_size(doc, scale)
    if width * height > pixel_limit:
        raise RequestBuildError(
            f"Upscaling {doc.width}x{doc.height} by {scale:g} makes {width}x{height} "
            f"({width * height / 1e6:.3g} MP), above the {pixel_limit / 1e6:.3g} MP pixel limit "
            "(Settings); choose a smaller factor."
        )
    if max(width, height) > MAX_SIDE:
        raise RequestBuildError(
            f"Upscaling by {scale:g} makes {width}x{height}, wider than {MAX_SIDE} pixels."
        )
    if not options.refine:
        if scale == 1:
            raise RequestBuildError("An upscale by 1 without refining changes nothing.")
        return
    if not 0 < options.strength <= 1:
        raise RequestBuildError("The refine strength must be above 0 and at most 1.")
    if not MIN_TILE <= options.tile <= MAX_TILE or options.tile % 8:
        raise RequestBuildError(
            f"The tile size must be a multiple of 8 from {MIN_TILE} to {MAX_TILE} pixels."
        )
    if not 0 <= options.overlap <= options.tile // 2:
        raise RequestBuildError("The tile overlap must be at most half the tile size.")


def build_upscale_job(
    doc: Document, params: GenerationParams, options: UpscaleOptions, pixel_limit: int
) -> PlannedJob:
    """The immutable upscale request for ``doc`` now (raises RequestBuildError)."""
    check_options(doc, options, pixel_limit)
    if options.refine and params.model_path is None:
        raise RequestBuildError(
            "Refining needs a Stable Diffusion model: choose one in the model picker, or turn "
            "Refine off."
        )
    image = picture_rgb(doc, doc.rect)
    controls: tuple[ControlInput, ...] = ()
    if options.refine:
        controls = tuple(
            _control_input(doc, layer, doc.rect) for layer in active_control_layers(doc)
        )
    spec = UpscaleSpec(
        scale=float(options.scale),
        upscaler_path=options.upscaler_path,
        refine=options.refine,
        tile=int(options.tile),
        overlap=int(options.overlap),
        pixel_limit=int(pixel_limit),
    )
    refine = options.refine
    request = Request(
        mode=Mode.IMG2IMG,
        prompt=params.prompt.strip() if refine else "",
        negative_prompt=params.negative_prompt.strip() if refine else "",
        seed=int(params.seed),
        steps=int(params.steps),
        guidance=float(params.guidance),
        strength=float(options.strength),
        sampler=params.sampler,
        model_path=params.model_path if refine else None,
        image=image,
        controls=controls,
        loras=_request_loras(params) if refine else (),
        vae_path=params.vae_path if refine else None,
        upscale=spec,
    )
    recipe: dict[str, Any] = {"workflow": WORKFLOW_NAME, "seed": int(params.seed)}
    if refine:
        recipe.update(
            model=params.model_name, model_path=params.model_path, model_hash=params.model_hash
        )
    return PlannedJob(
        request, Workflow.IMG2IMG, doc.rect, doc.rect, recipe, (doc.width, doc.height)
    )


def is_upscale(plan: PlannedJob) -> bool:
    return plan.request.upscale is not None


def preview_rect(plan: PlannedJob, box: Box) -> Rect:
    """A preview box (upscaled picture coordinates) on the canvas as it is now."""
    spec = plan.request.upscale
    assert spec is not None
    x0, y0 = math.floor(box.x / spec.scale), math.floor(box.y / spec.scale)
    x1, y1 = math.ceil(box.right / spec.scale), math.ceil(box.bottom / spec.scale)
    rect = Rect(x0, y0, max(1, x1 - x0), max(1, y1 - y0))
    return rect.intersected(plan.origin) if not rect.intersected(plan.origin).is_empty else rect


def upscale_layers(plan: PlannedJob, result: Result) -> list[Layer]:
    """The one RESULT layer of an upscale: the whole grown canvas, opaque, with its recipe."""
    spec = plan.request.upscale
    assert spec is not None and len(result.variants) == 1
    variant = result.variants[0]
    expected = upscaled_size_of(plan)
    height, width = variant.image.shape[:2]
    if (width, height) != expected:
        raise ValueError(f"the upscaled picture is {width}x{height}, expected {expected}")
    if variant.image.shape[2] == 4 and variant.image.flags.writeable:
        pixels = variant.image  # the engine's own array: no second full-size copy
    else:
        pixels = np.empty((height, width, 4), np.uint8)
        pixels[..., :3] = variant.image[..., :3]
    pixels[..., 3] = 255
    engine = Recipe.from_json(result.recipe)
    app = Recipe.from_json(plan.recipe)
    recipe = engine.completed(
        workflow=app.workflow, model=app.model, model_hash=app.model_hash, model_path=app.model_path
    )
    recipe = replace(recipe, seed=int(variant.seed), crop_box=(0, 0, width, height))
    if not spec.refine:
        recipe = replace(recipe, mode=None, strength=None, prompt="", negative_prompt="")
    name = f"Upscale ×{spec.scale:g}" + (" refined" if spec.refine else "")
    return [Layer(LayerKind.RESULT, name, Raster(4, pixels, 0, 0), recipe=recipe.to_json())]


def upscaled_size_of(plan: PlannedJob) -> tuple[int, int]:
    spec = plan.request.upscale
    assert spec is not None and plan.request.image is not None
    height, width = plan.request.image.shape[:2]
    return max(1, round(width * spec.scale)), max(1, round(height * spec.scale))


def land_upscale(doc: Document, layers: list[Layer]) -> None:
    """Grow the canvas to the result and put the result on top: one undo step."""
    layer = layers[0]
    assert layer.raster is not None
    width, height = layer.raster.rect.w, layer.raster.rect.h
    index = len(doc.layers)
    while index > 0 and doc.layers[index - 1].kind is LayerKind.MASK:
        index -= 1
    doc.history.beginMacro(layer.name)
    try:
        doc.history.push(ResizeCanvas(doc, width, height, 0, 0))  # poses, frame follow
        doc.insert_layer(layer, index, activate=False, text=f"Add {layer.name}")
    finally:
        doc.history.endMacro()
    doc.set_active(layer.id)


# folder and file names upscaler models are kept under (A1111: models/ESRGAN, models/SwinIR...;
# ComfyUI: models/upscale_models) or named by (4x-UltraSharp, RealESRGAN_x4plus...)
UPSCALER_HINTS = ("esrgan", "swinir", "upscal", "4x", "2x", "x4", "x2")


def upscaler_files(entries: Iterable[ModelEntry]) -> list[Path]:
    """Model library entries that look like super-resolution models (the library does not
    classify them: their tensors are not Stable Diffusion's), sorted by name."""
    found = []
    for entry in entries:
        if entry.kind is not ModelKind.UNKNOWN:
            continue
        path = Path(entry.path)
        if path.suffix.lower() not in {".safetensors", ".pth", ".pt"}:
            continue
        where = "/".join(part.lower() for part in path.parts[-3:])
        if any(hint in where for hint in UPSCALER_HINTS):
            found.append(path)
    return sorted(found, key=lambda p: p.name.lower())


def option_problem(
    doc: Document, params: GenerationParams, options: UpscaleOptions, pixel_limit: int
) -> str | None:
    """Why ``options`` cannot run on ``doc`` (one sentence), or None."""
    try:
        check_options(doc, options, pixel_limit)
    except RequestBuildError as error:
        return str(error)
    if options.refine and params.model_path is None:
        return "Refining needs a Stable Diffusion model: choose one, or turn Refine off."
    return None
