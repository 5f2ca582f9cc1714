"""The built-in "classic" engine: OpenCV inpainting (Telea / Navier-Stokes), no model needed.

Same ``Request`` -> ``Result`` contract as the diffusion engine, so a new user can remove an object
before installing any model. ``Request.model_path`` of None or ``"classic"``/``"classic:telea"``
selects Telea; ``"classic:ns"`` selects Navier-Stokes.
"""

from __future__ import annotations

import cv2
import numpy as np

from inference import cropping
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

CLASSIC_NAMES = {"classic": "telea", "classic:telea": "telea", "classic:ns": "ns"}
_METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


def is_classic(model_path: str | None) -> bool:
    return model_path is None or model_path.strip().lower() in CLASSIC_NAMES


def classic_method(model_path: str | None) -> str:
    return "telea" if model_path is None else CLASSIC_NAMES[model_path.strip().lower()]


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
    hole = np.ascontiguousarray((cropping.cut(mask, box) > 127).astype(np.uint8) * 255)
    filled = cv2.inpaint(rgb, hole, radius, _METHODS[method])
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
        sampler=f"OpenCV {method}",
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
