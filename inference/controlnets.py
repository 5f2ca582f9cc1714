"""ControlNet models (offline: folder or single file) and fitting control images to the crop."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from inference import cropping
from inference.api import (
    ControlInput,
    EngineSettings,
    InvalidRequestError,
    ModelLoadError,
    ModelNotFoundError,
    Request,
    ResizeMode,
)
from inference.library.entry import Base
from inference.models import CONFIGS_DIR, read_checkpoint_shapes, sidecar_config_dir

log = logging.getLogger(__name__)

FAMILY_BY_CONTEXT = {768: Base.SD1, 1024: Base.SD2, 2048: Base.SDXL}


def controlnet_context_dim(path: Path, allow_pickle: bool = False) -> int:
    """The cross-attention width a ControlNet expects (768 SD1.x, 1024 SD2.x, 2048 SDXL)."""
    if path.is_dir():
        config_file = path / "config.json"
        if not config_file.is_file():
            raise ModelLoadError(f"{path} is not a ControlNet folder (config.json is missing)")
        config = json.loads(config_file.read_text(encoding="utf-8"))
        return int(config.get("cross_attention_dim", 768))
    sidecar = sidecar_config_dir(path) / "config.json"
    if sidecar.is_file():
        return int(json.loads(sidecar.read_text(encoding="utf-8")).get("cross_attention_dim", 768))
    shapes = read_checkpoint_shapes(path, allow_pickle)
    for key, shape in shapes.items():
        if key.endswith("attn2.to_k.weight") and len(shape) == 2:
            return int(shape[1])
    raise ModelLoadError(f"{path.name} does not look like a ControlNet (no cross-attention found)")


def _single_file_config(path: Path, family: Base) -> Path:
    sidecar = sidecar_config_dir(path)
    if (sidecar / "config.json").is_file():
        return sidecar
    bundled = {Base.SD1: "controlnet-sd15", Base.SDXL: "controlnet-sdxl"}.get(family)
    if bundled is None:
        raise ModelLoadError(
            f"no bundled config for {family.value} ControlNet {path.name}: put its "
            f"diffusers config.json in {sidecar}/"
        )
    return CONFIGS_DIR / bundled


def load_controlnet(path: str, loaded: Any, settings: EngineSettings) -> Any:
    """Load a ControlNet for the loaded base model; refuses a base mismatch (SD1.x vs SDXL)."""
    from diffusers import ControlNetModel

    from inference.models import _is_pickle, _load_errors, _refuse_pickle

    file = Path(path).expanduser()
    if not file.exists():
        raise ModelNotFoundError(f"ControlNet not found: {file}")
    if file.is_file() and _is_pickle(file) and not settings.allow_pickle:
        raise _refuse_pickle(file)
    context = controlnet_context_dim(file, settings.allow_pickle)
    family = FAMILY_BY_CONTEXT.get(context, Base.UNKNOWN)
    base_context = int(loaded.base.unet.config.cross_attention_dim)
    if context != base_context:
        base_family = FAMILY_BY_CONTEXT.get(base_context, loaded.info.family)
        wanted = family.value if family is not Base.UNKNOWN else f"{context}-wide"
        raise ModelLoadError(
            f"ControlNet {file.stem} is for {wanted} models but "
            f"{loaded.info.name} is {base_family.value}; "
            "pick a ControlNet made for this model"
        )
    with _load_errors(f"ControlNet {file.name}"):
        if file.is_dir():
            model = ControlNetModel.from_pretrained(
                str(file), torch_dtype=loaded.dtype, local_files_only=True
            )
        else:
            model = ControlNetModel.from_single_file(
                str(file),
                config=str(_single_file_config(file, family)),
                torch_dtype=loaded.dtype,
                local_files_only=True,
            )
    model.to(loaded.device)
    model.eval()
    log.info("loaded ControlNet %s", file.name)
    return model


def fit_to(image: np.ndarray, width: int, height: int, mode: ResizeMode) -> np.ndarray:
    """Fit a control image to ``width x height`` the way A1111's ControlNet does."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    if mode is ResizeMode.JUST_RESIZE:
        return cropping.resize(image, width, height)
    if mode is ResizeMode.CROP_AND_RESIZE:
        scale = max(width / w, height / h)
        scaled = cropping.resize(image, max(width, round(w * scale)), max(height, round(h * scale)))
        y = (scaled.shape[0] - height) // 2
        x = (scaled.shape[1] - width) // 2
        return np.ascontiguousarray(scaled[y : y + height, x : x + width])
    scale = min(width / w, height / h)  # resize and fill: letterbox on black
    scaled = cropping.resize(image, max(1, round(w * scale)), max(1, round(h * scale)))
    out = np.zeros((height, width, image.shape[2]), image.dtype)
    y = (height - scaled.shape[0]) // 2
    x = (width - scaled.shape[1]) // 2
    out[y : y + scaled.shape[0], x : x + scaled.shape[1]] = scaled
    return out


def fit_control_image(
    control: ControlInput, request: Request, plan: cropping.CropPlan
) -> np.ndarray:
    """The control image over the same area as the request image, cut to the crop box and
    resized to the generation size (RGB uint8)."""
    if request.image is not None:
        ref_h, ref_w = request.image.shape[:2]
    else:
        ref_w, ref_h = request.width, request.height
    image = control.image
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InvalidRequestError("a control image must be RGB or RGBA")
    fitted = fit_to(np.ascontiguousarray(image[..., :3]), ref_w, ref_h, control.resize_mode)
    return np.ascontiguousarray(cropping.crop_for_generation(fitted, plan))
