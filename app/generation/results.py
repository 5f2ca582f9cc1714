"""Finished variants -> RESULT layers, and step previews -> pixels at their place.

Pure numpy (no Qt signals, no threads): the job controller calls these on the worker thread so
the UI thread only inserts ready layers. A result layer holds only its box; its alpha is opaque
where the engine says the result may change (``Variant.region``) or did change, clear elsewhere,
so the rest of the picture stays byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import cv2
import numpy as np

from app.canvas_size import check_canvas_size, grow_to_fit
from app.document import Document
from app.generation.request import (
    PlannedJob,
    Workflow,
    encode_image,
    encode_mask,
    encode_reference,
)
from app.geometry import Rect
from app.layers import Layer, LayerKind
from app.raster import Raster
from inference.api import Box, ControlInput, JobPreview, Result, Variant
from inference.recipe import ControlUnit, Recipe, ReferenceUnit


@dataclass(frozen=True, eq=False)
class PreviewFrame:
    """A step preview already scaled to its place in the document (RGBA)."""

    job_id: int
    step: int
    total: int
    rect: Rect
    pixels: np.ndarray
    at: float


@dataclass(frozen=True)
class Placement:
    """Where a running job's previews go (read on the worker thread)."""

    job_id: int
    plan: PlannedJob

    @property
    def txt2img(self) -> bool:
        return self.plan.request.image is None

    def rect_for(self, box: Box) -> Rect:
        if self.plan.request.upscale is not None:  # upscaled coordinates, shown on today's canvas
            from app.generation.upscale import preview_rect

            return preview_rect(self.plan, box)
        if self.txt2img:
            return self.plan.target
        rect = self.plan.to_document(box)
        return rect if not rect.is_empty else self.plan.target

    def place(self, event: JobPreview, at: float) -> PreviewFrame:
        """The preview scaled into its document rectangle; an inpaint shows only where the
        result can change (the region the engine sent with it)."""
        rect = self.rect_for(event.box)
        pixels = scale_preview(event.image, rect.w, rect.h)
        if event.region is not None and not self.txt2img:
            region = event.region
            if region.shape != pixels.shape[:2]:
                region = cv2.resize(
                    region.astype(np.uint8), (rect.w, rect.h), interpolation=cv2.INTER_NEAREST
                ).astype(bool)
            pixels[..., 3] = np.where(region, 255, 0)
        return PreviewFrame(self.job_id, event.step, event.total, rect, pixels, at)


def scale_preview(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """A small RGB(A) preview as opaque RGBA at ``width`` x ``height`` (off the UI thread)."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[1] != width or image.shape[0] != height:
        image = cv2.resize(
            np.ascontiguousarray(image), (width, height), interpolation=cv2.INTER_LINEAR
        )
    if image.shape[2] == 4:
        return np.ascontiguousarray(image)
    out = np.empty((height, width, 4), np.uint8)
    out[..., :3] = image[..., :3]
    out[..., 3] = 255
    return out


# ---- results -> layers -----------------------------------------------------------------------


def result_layers(plan: PlannedJob, result: Result) -> list[Layer]:
    """One RESULT layer per variant, holding only its box, named from prompt and seed."""
    if plan.request.upscale is not None:
        from app.generation.upscale import upscale_layers

        return upscale_layers(plan, result)
    layers = []
    for index, variant in enumerate(result.variants):
        rect, pixels = _variant_pixels(plan, variant)
        recipe = _variant_recipe(plan, result, variant, rect, index)
        name = result_name(plan.request.prompt, variant.seed)
        layers.append(
            Layer(LayerKind.RESULT, name, Raster(4, pixels, rect.x, rect.y), recipe=recipe)
        )
    return layers


def land_layers(doc: Document, layers: list[Layer], text: str | None = None) -> None:
    """Insert ``layers`` at the top of the picture (below the mask) as one undoable step; the
    top one becomes the active layer. Layers reaching past the canvas (an outpaint) grow it in
    the same step (raises ``app.canvas_size.CanvasSizeError`` before any change when the
    grown canvas would be too large)."""
    if not layers:
        return
    index = len(doc.layers)
    while index > 0 and doc.layers[index - 1].kind is LayerKind.MASK:
        index -= 1
    reach = Rect(0, 0, 0, 0)
    for layer in layers:
        reach = reach.united(layer.raster.rect if layer.raster is not None else reach)
    if not doc.rect.contains(reach):
        grown = doc.rect.united(reach)
        check_canvas_size(grown.w, grown.h)  # before the macro: a refusal leaves no step
    doc.history.beginMacro(text or f"Generate {layers[0].name}")
    try:
        # an outpaint: the canvas grows to hold the result, in the same undo step
        dx, dy = grow_to_fit(doc, reach, "Grow canvas")
        for layer in layers:
            if layer.raster is not None:
                layer.raster.x += dx
                layer.raster.y += dy
        for offset, layer in enumerate(layers):
            doc.insert_layer(layer, index + offset, activate=False, text=f"Add {layer.name}")
    finally:
        doc.history.endMacro()
    doc.set_active(layers[-1].id)  # new layers (a sketch) go above the result


def result_name(prompt: str, seed: int) -> str:
    words = " ".join(prompt.split())
    if not words:
        return f"Result · seed {seed}"
    short = words if len(words) <= 32 else words[:31].rstrip() + "…"
    return f"{short} · seed {seed}"


def _variant_pixels(plan: PlannedJob, variant: Variant) -> tuple[Rect, np.ndarray]:
    request = plan.request
    image = variant.image
    if request.image is None:  # txt2img: the whole output, scaled into the target box
        rect = plan.target
        rgb = image[..., :3]
        if rgb.shape[:2] != (rect.h, rect.w):
            interpolation = cv2.INTER_AREA if rgb.shape[1] > rect.w else cv2.INTER_LANCZOS4
            rgb = cv2.resize(
                np.ascontiguousarray(rgb), (rect.w, rect.h), interpolation=interpolation
            )
        return rect, _with_alpha(rgb, None)
    if image.shape[:2] != request.image.shape[:2]:
        raise ValueError(
            f"variant is {image.shape[1]}x{image.shape[0]}, request image is "
            f"{request.image.shape[1]}x{request.image.shape[0]}"
        )
    box = _clamp_box(variant.box, image.shape[1], image.shape[0])
    rect = plan.to_document(box)
    cut = (slice(box.y, box.bottom), slice(box.x, box.right))
    rgb = image[cut][..., :3]
    coverage = None
    if request.mask is not None:
        # opaque where the engine may have changed pixels (its region) or did change them,
        # clear elsewhere, so the result layer leaves the rest of the picture exactly as it was
        coverage = (rgb != request.image[cut][..., :3]).any(axis=2)
        region = variant.region
        if region is not None and box == variant.box and region.shape == coverage.shape:
            coverage |= region
    return rect, _with_alpha(rgb, coverage)


def _with_alpha(rgb: np.ndarray, coverage: np.ndarray | None) -> np.ndarray:
    out = np.empty((*rgb.shape[:2], 4), np.uint8)
    out[..., :3] = rgb
    out[..., 3] = 255 if coverage is None else np.where(coverage, 255, 0)
    return out


def _clamp_box(box: Box, width: int, height: int) -> Box:
    x0, y0 = max(0, box.x), max(0, box.y)
    x1, y1 = min(width, box.right), min(height, box.bottom)
    if x1 <= x0 or y1 <= y0:
        return Box(0, 0, width, height)
    return Box(x0, y0, x1 - x0, y1 - y0)


def _variant_recipe(
    plan: PlannedJob, result: Result, variant: Variant, rect: Rect, index: int
) -> dict[str, Any]:
    """The engine's Recipe completed by the app (its settings win where it has them: the
    picker's model name and hash, the workflow, paths), with the variant's seed, its box in the
    document, the mask and control images under it; stored on the layer as JSON."""
    app = Recipe.from_json(plan.recipe)
    engine = Recipe.from_json(result.recipe)  # a Recipe, or the JSON of one (a remote engine)
    recipe = engine.completed(**{f.name: getattr(app, f.name) for f in fields(app)})
    local = rect.translated(-plan.origin.x, -plan.origin.y)
    mask, encoded = plan.request.mask, None
    if mask is not None and plan.workflow is Workflow.INPAINT:
        encoded = encode_mask(mask[local.slices(Rect(0, 0, mask.shape[1], mask.shape[0]))])
    layers = [unit.layer for unit in app.controls] + [None] * len(plan.request.controls)
    pairs = zip(plan.request.controls, layers, strict=False)
    controls = tuple(_control_recipe(control, local, name) for control, name in pairs)
    names = [unit.layer for unit in app.references] + [None] * len(plan.request.references)
    references = tuple(
        ReferenceUnit.of_input(reference, layer=name, image=encode_reference(reference.image))
        for reference, name in zip(plan.request.references, names, strict=False)
    )
    crop = (rect.x, rect.y, rect.w, rect.h)
    recipe = replace(recipe.for_mode(), seed=int(variant.seed), batch_index=index, crop_box=crop)
    return replace(recipe, mask=encoded, controls=controls, references=references).to_json()


def _control_recipe(control: ControlInput, local: Rect, layer: str | None) -> ControlUnit:
    """A control input as the recipe keeps it: its settings and its image over the result box."""
    image = control.image[local.slices(Rect(0, 0, control.image.shape[1], control.image.shape[0]))]
    return ControlUnit.of_input(control, layer=layer, image=encode_image(image))
