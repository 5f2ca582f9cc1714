"""Upscaling: Lanczos, or a local super-resolution model (ESRGAN, Real-ESRGAN, SwinIR...).

Model files are read through spandrel (the loader ComfyUI and chaiNNer use), which recognises the
architecture from the state dict alone. ``.pth``/``.pt``/``.ckpt``/``.bin`` files are pickles:
refused unless allowed, and then read with ``torch.load(weights_only=True)`` only, exactly like
checkpoints (``inference.models``). A model runs over the image in tiles with a margin of context
that is cut off again, each tile resized to the wanted scale at once, so memory follows the tile,
not the model's own scale (a x4 model asked for x2 never makes the x4 image).
"""

from __future__ import annotations

import enum
import logging
import math
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inference.api import (
    Cancelled,
    CancelToken,
    InvalidRequestError,
    ModelLoadError,
    ModelNotFoundError,
    UpscalerLoadError,
)

log = logging.getLogger(__name__)

MIN_SCALE = 1.0
MAX_SCALE = 8.0
MAX_OUTPUT_SIDE = 32768  # the document's largest side (app.document.MAX_SIDE)
SAFE_SUFFIXES = {".safetensors"}
PICKLE_SUFFIXES = {".pth", ".pt", ".ckpt", ".bin"}
MODEL_TILE = 256  # source pixels per model tile (CPU-friendly; the margin comes on top)
MODEL_MARGIN = 32  # context around each model tile, cut off after

Progress = Callable[[int, int], None]  # (tiles done, tiles in all)


def target_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The upscaled size: each side times ``scale``, rounded, at least one pixel."""
    return max(1, round(width * scale)), max(1, round(height * scale))


def check_scale(width: int, height: int, scale: float, pixel_limit: int) -> tuple[int, int]:
    """The upscaled size, or InvalidRequestError saying why it cannot be made."""
    if not math.isfinite(scale) or not MIN_SCALE <= scale <= MAX_SCALE:
        raise InvalidRequestError(f"the upscale factor must be {MIN_SCALE:g}..{MAX_SCALE:g}")
    out_w, out_h = target_size(width, height, scale)
    if out_w * out_h > pixel_limit:
        raise InvalidRequestError(
            f"upscaling {width}x{height} by {scale:g} makes {out_w}x{out_h} "
            f"({out_w * out_h / 1e6:.3g} MP), above the {pixel_limit / 1e6:.3g} MP pixel limit"
        )
    if max(out_w, out_h) > MAX_OUTPUT_SIDE:
        raise InvalidRequestError(
            f"upscaling {width}x{height} by {scale:g} makes {out_w}x{out_h}, wider than "
            f"{MAX_OUTPUT_SIDE} pixels"
        )
    return out_w, out_h


def lanczos(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` (H, W, C uint8) resized to ``width`` x ``height``: Lanczos up, area down."""
    if image.shape[1] == width and image.shape[0] == height:
        return image.copy()
    shrinking = width < image.shape[1] or height < image.shape[0]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4
    return cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=interpolation)


# ---- super-resolution models -----------------------------------------------------------------


@dataclass
class Upscaler:
    """A loaded super-resolution model: ``scale`` is the model's own factor."""

    name: str
    architecture: str
    scale: int
    descriptor: Any  # spandrel.ImageModelDescriptor

    def upscale(
        self,
        image: np.ndarray,
        width: int,
        height: int,
        cancel: CancelToken | None = None,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """``image`` (RGB uint8) through the model, tile by tile, resized to ``width`` x
        ``height``, as opaque RGBA; raises Cancelled between tiles."""
        import torch

        src_h, src_w = image.shape[:2]
        out = np.empty((height, width, 4), np.uint8)
        out[..., 3] = 255
        fx, fy = width / src_w, height / src_h
        boxes = [
            (x, y, min(src_w, x + MODEL_TILE), min(src_h, y + MODEL_TILE))
            for y in range(0, src_h, MODEL_TILE)
            for x in range(0, src_w, MODEL_TILE)
        ]
        model = self.descriptor
        for index, (x0, y0, x1, y1) in enumerate(boxes):
            if cancel is not None and cancel.cancelled:
                raise Cancelled("cancelled")
            cx0, cy0 = max(0, x0 - MODEL_MARGIN), max(0, y0 - MODEL_MARGIN)
            cx1, cy1 = min(src_w, x1 + MODEL_MARGIN), min(src_h, y1 + MODEL_MARGIN)
            patch = np.ascontiguousarray(image[cy0:cy1, cx0:cx1, :3])
            tensor = torch.from_numpy(patch).permute(2, 0, 1)[None].float().div_(255)
            with torch.inference_mode():
                result = model(tensor.to(model.device, model.dtype))[0].float()
                big_np = result.clamp_(0, 1).mul_(255).round_().byte().permute(1, 2, 0).cpu()
            big_np = big_np.numpy()
            s = self.scale
            inner = big_np[
                (y0 - cy0) * s : (y0 - cy0 + y1 - y0) * s, (x0 - cx0) * s : (x0 - cx0 + x1 - x0) * s
            ]
            ox0, oy0, ox1, oy1 = round(x0 * fx), round(y0 * fy), round(x1 * fx), round(y1 * fy)
            if ox1 > ox0 and oy1 > oy0:
                out[oy0:oy1, ox0:ox1, :3] = lanczos(inner, ox1 - ox0, oy1 - oy0)
            if progress is not None:
                progress(index + 1, len(boxes))
        return out


def load_upscaler(path: str, allow_pickle: bool = False, device: Any = None) -> Upscaler:
    """Read a super-resolution model file; ModelNotFoundError / ModelLoadError say what is wrong
    in one sentence (a pickle not allowed, an architecture spandrel does not know, not an
    upscaler)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelNotFoundError(f"upscaler not found: {path}")
    suffix = file.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        from inference.models import _load_pickle_state, refuse_pickles

        try:
            refuse_pickles([str(file)], allow_pickle)
            state = _load_pickle_state(file)
        except ModelLoadError as error:
            raise UpscalerLoadError(str(error)) from None
    elif suffix in SAFE_SUFFIXES:
        state = _read_safetensors(file)
    else:
        raise UpscalerLoadError(
            f"{file.name} is not an upscaler model file (expected .safetensors or .pth)"
        )
    spandrel = import_spandrel()
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError:
        raise UpscalerLoadError(
            f"{file.name} is not a super-resolution model of a known architecture "
            "(ESRGAN, Real-ESRGAN, SwinIR, HAT, DAT, SPAN... are supported)"
        ) from None
    except Exception as error:  # a known architecture with broken or mismatched tensors
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UpscalerLoadError(f"{file.name} could not be read as an upscaler: {detail}") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise UpscalerLoadError(f"{file.name} is not an image model")
    name = descriptor.architecture.name
    if descriptor.purpose != "SR" or descriptor.scale < 2 or descriptor.input_channels != 3:
        raise UpscalerLoadError(
            f"{file.name} is a {name} model for {descriptor.purpose.lower()} at scale "
            f"{descriptor.scale}, not an RGB upscaler"
        )
    descriptor.eval()
    if device is not None:
        descriptor.to(device)
    log.info("loaded upscaler %s (%s x%d)", file.name, name, descriptor.scale)
    return Upscaler(file.name, name, int(descriptor.scale), descriptor)


def _read_safetensors(file: Path) -> dict:
    try:
        from safetensors.torch import load_file

        return load_file(str(file), device="cpu")
    except Exception as error:
        raise UpscalerLoadError(
            f"{file.name} is not a readable safetensors file ({error})"
        ) from None


def import_spandrel() -> Any:
    """spandrel, imported. Its package imports torchvision for two models that are not upscalers
    (LaMa inpainting, RestoreFormer faces). Where torchvision is missing (a CPU-only torch with no
    matching torchvision build), a placeholder stands in during the import only and is removed
    after, so nothing else ever sees it; those two architectures then fail when used."""
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    import importlib.util

    placeholders: dict[str, types.ModuleType] = {}
    if importlib.util.find_spec("torchvision") is None:
        placeholders = _torchvision_placeholder()
        sys.modules.update(placeholders)
    try:
        import spandrel
    except ImportError as error:
        raise ModelLoadError(f"the upscaler loader (spandrel) is not available: {error}") from None
    finally:
        for name in placeholders:
            sys.modules.pop(name, None)
    return spandrel


def _torchvision_placeholder() -> dict[str, types.ModuleType]:
    def missing(*_args: Any, **_kwargs: Any) -> Any:
        raise ModelLoadError("this model needs torchvision, which is not installed")

    class InterpolationMode(enum.Enum):
        NEAREST = "nearest"
        BILINEAR = "bilinear"
        BICUBIC = "bicubic"

    root = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = InterpolationMode  # type: ignore[attr-defined]
    functional.rotate = missing  # type: ignore[attr-defined]
    functional.normalize = missing  # type: ignore[attr-defined]
    transforms.functional = functional  # type: ignore[attr-defined]
    root.transforms = transforms  # type: ignore[attr-defined]
    return {
        "torchvision": root,
        "torchvision.transforms": transforms,
        "torchvision.transforms.functional": functional,
    }


def upscale_image(
    image: np.ndarray,
    scale: float,
    upscaler: Upscaler | None,
    pixel_limit: int,
    cancel: CancelToken | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """``image`` (RGB uint8) upscaled by ``scale`` as opaque RGBA (Lanczos without
    ``upscaler``). RGBA, not RGB: the result layer is RGBA, and handing it this array saves a
    second full-size copy (at 8k, 200 MB)."""
    height, width = image.shape[:2]
    out_w, out_h = check_scale(width, height, scale, pixel_limit)
    if upscaler is not None:
        return upscaler.upscale(image[..., :3], out_w, out_h, cancel, progress)
    source = np.empty((height, width, 4), np.uint8)  # the small side gets the alpha channel
    source[..., :3] = image[..., :3]
    source[..., 3] = 255
    out = lanczos(source, out_w, out_h)
    del source
    out[..., 3] = 255
    return out
