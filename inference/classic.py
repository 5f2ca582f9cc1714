"""The built-in "classic" engine: inpainting with no model (numpy/OpenCV only, never torch).

Same ``Request`` -> ``Result`` contract as the diffusion engine, so a new user can remove an object
before installing any model. ``Request.model_path`` of None, ``"classic"`` or ``"classic:fill"``
selects the default fill (``classic_fill``: smooth membrane + OpenCV FSR near the rim);
``"classic:telea"`` and ``"classic:ns"`` select OpenCV's Telea and Navier-Stokes, which are fast
but streak on anything bigger than a scratch.
"""

from __future__ import annotations

import cv2
import numpy as np

from inference import classic_fill, cropping
from inference.api import (
    Box,
    Cancelled,
    CancelToken,
    InvalidRequestError,
    Mode,
    PreviewCallback,
    Request,
    Result,
    Variant,
)
from inference.recipe import Recipe

CLASSIC_NAMES = {
    "classic": "fill",
    "classic:fill": "fill",
    "classic:telea": "telea",
    "classic:ns": "ns",
}
_OPENCV_METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
CONTEXT = 64  # px around the crop box that the fill may read (never writes)


def is_classic(model_path: str | None) -> bool:
    return model_path is None or model_path.strip().lower() in CLASSIC_NAMES


def classic_method(model_path: str | None) -> str:
    return "fill" if model_path is None else CLASSIC_NAMES[model_path.strip().lower()]


def _sampler_name(method: str) -> str:
    if method != "fill":
        return f"OpenCV {method}"
    return "harmonic + OpenCV FSR" if classic_fill.has_fsr() else "harmonic"


def inpaint_region(rgb: np.ndarray, hole: np.ndarray, method: str, radius: int) -> np.ndarray:
    """``rgb`` (uint8) with the ``hole`` (bool) filled by ``method``; other pixels unchanged."""
    if method == "fill":
        return classic_fill.fill(rgb, hole)
    mask = hole.astype(np.uint8) * 255
    return cv2.inpaint(np.ascontiguousarray(rgb), mask, radius, _OPENCV_METHODS[method])


def _fill_box(
    image: np.ndarray, hole: np.ndarray, box: Box, method: str, radius: int
) -> np.ndarray:
    """The filled ``box`` area, computed with up to ``CONTEXT`` px of surroundings to copy from."""
    height, width = hole.shape
    context = cropping.clamp_box(
        Box(box.x - CONTEXT, box.y - CONTEXT, box.width + 2 * CONTEXT, box.height + 2 * CONTEXT),
        width,
        height,
    )
    rgb = np.ascontiguousarray(cropping.cut(image, context)[..., :3])
    region_hole = cropping.cut(hole, context)
    if region_hole.all():
        raise InvalidRequestError(
            "the mask covers the whole picture: the classic engine needs unmasked pixels "
            "to fill from (or choose a diffusion model)"
        )
    filled = inpaint_region(rgb, region_hole, method, radius)
    top, left = box.y - context.y, box.x - context.x
    return np.ascontiguousarray(filled[top : top + box.height, left : left + box.width])


def run_classic(
    request: Request,
    on_preview: PreviewCallback | None = None,
    cancel: CancelToken | None = None,
) -> Result:
    """Inpaint the masked pixels from their surroundings; one variant, one "step"."""
    if request.mode is not Mode.INPAINT or request.image is None or request.mask is None:
        raise InvalidRequestError(
            "the classic engine only removes things (inpaint with an image and a mask); "
            "choose a diffusion model for txt2img or img2img"
        )
    if cancel is not None and cancel.cancelled:
        raise Cancelled("cancelled")
    image, mask = request.image, request.mask
    height, width = mask.shape
    box = request.crop_box or cropping.crop_box_for_mask(mask, request.padding)
    if box is None:  # empty mask: nothing to do, the input comes back unchanged
        box = Box(0, 0, width, height)
    box = cropping.clamp_box(box, width, height)
    method = classic_method(request.model_path)
    radius = max(3, request.mask_blur)
    rgb = np.ascontiguousarray(cropping.cut(image, box)[..., :3])
    filled = _fill_box(image, mask > 127, box, method, radius)
    alpha = cropping.feathered_alpha(mask, request.mask_blur)
    if request.color_match:
        filled = cropping.match_colors(filled, rgb, cropping.cut(alpha, box))
    if on_preview is not None:
        on_preview(1, 1, filled, box, cropping.cut(alpha, box) > 0)
    if cancel is not None and cancel.cancelled:
        raise Cancelled("cancelled")
    result = cropping.paste(image, filled, box, alpha)
    recipe = Recipe(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        mode=request.mode.value,
        model=f"classic:{method}",
        sampler=_sampler_name(method),
        steps=1,
        seed=request.seed,
        size=(width, height),
        crop_box=(box.x, box.y, box.width, box.height),
        mask_blur=request.mask_blur,
        padding=request.padding,
    )
    region = cropping.cut(alpha, box) > 0  # where the paste may change pixels
    return Result(
        variants=(Variant(image=result, seed=request.seed, box=box, region=region),),
        recipe=recipe,
    )
