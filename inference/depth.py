"""Depth maps from a picture, by a local transformers depth-estimation folder (DPT, Depth
Anything, GLPN...): what a depth ControlNet or T2I-Adapter reads.

The folder is a transformers model (``config.json`` whose architecture ends in
``ForDepthEstimation``, its image processor config and safetensors weights), loaded offline once
per process and device. The map is the model's prediction resized to the picture and stretched
to 0..255 with near = bright, as the MiDaS maps depth ControlNets were trained on (relative
models predict inverse depth already; metric ones are inverted).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from inference.api import Cancelled, CancelToken, ModelLoadError, ModelNotFoundError

log = logging.getLogger(__name__)

_METRIC_TYPES = ("zoedepth",)
_CACHE: dict[tuple[str, str], tuple[Any, Any]] = {}
_LOCK = threading.Lock()


def read_depth_config(folder: str | Path) -> dict | None:
    """The config of a transformers depth-estimation folder, or None when it is not one."""
    from inference.library.classify import read_json

    path = Path(folder).expanduser()
    try:
        config = read_json(path / "config.json")
    except (OSError, ValueError):
        return None
    architectures = config.get("architectures")
    names = architectures if isinstance(architectures, list) else []
    if any(isinstance(name, str) and name.endswith("ForDepthEstimation") for name in names):
        return config
    return None


def is_depth_model(folder: str | Path) -> bool:
    return read_depth_config(folder) is not None


def _metric(config: dict) -> bool:
    return (
        config.get("model_type") in _METRIC_TYPES or config.get("depth_estimation_type") == "metric"
    )


def load_depth_model(folder: str | os.PathLike[str], device: str = "cpu") -> tuple[Any, Any]:
    """(model, image processor) for ``folder``, loaded offline and cached."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ModelNotFoundError(f"depth model folder not found: {path}")
    if read_depth_config(path) is None:
        raise ModelLoadError(
            f"{path.name} is not a depth-estimation model (a transformers folder whose "
            "config.json names a ...ForDepthEstimation architecture)"
        )
    if not any(path.glob("*.safetensors")):
        raise ModelLoadError(f"depth model {path.name} has no .safetensors weights")
    key = (str(path.resolve()), device)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        from inference.models import _load_errors
        from inference.quiet import quiet_libraries

        quiet_libraries()
        with _load_errors(f"depth model {path.name}"):
            processor = AutoImageProcessor.from_pretrained(str(path), local_files_only=True)
            model = AutoModelForDepthEstimation.from_pretrained(
                str(path), local_files_only=True, use_safetensors=True
            )
        model.to(device).eval()
        _CACHE[key] = (model, processor)
        log.info("loaded depth model %s", path.name)
        return model, processor


def estimate_depth(
    rgb: np.ndarray,
    folder: str | os.PathLike[str],
    device: str = "cpu",
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """A uint8 (H, W) depth map of ``rgb`` (H, W, 3), near = 255, far = 0."""
    import torch

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError("depth estimation needs an 8-bit RGB picture")
    model, processor = load_depth_model(folder, device)
    if cancel is not None and cancel.cancelled:
        raise Cancelled("cancelled")
    from PIL import Image

    inputs = processor(images=Image.fromarray(rgb), return_tensors="pt")
    with torch.inference_mode():
        pixels = inputs["pixel_values"].to(device=model.device, dtype=model.dtype)
        predicted = model(pixel_values=pixels).predicted_depth
        if predicted.ndim == 3:
            predicted = predicted[:, None]
        resized = torch.nn.functional.interpolate(
            predicted.float(), size=rgb.shape[:2], mode="bicubic", align_corners=False
        )[0, 0]
    depth = resized.cpu().numpy()
    if _metric(model.config.to_dict()):
        depth = -depth
    low, high = float(depth.min()), float(depth.max())
    if not np.isfinite([low, high]).all():
        raise ModelLoadError("the depth model produced an invalid map (NaN)")
    if high - low < 1e-8:
        return np.zeros(rgb.shape[:2], np.uint8)
    return np.round((depth - low) / (high - low) * 255).astype(np.uint8)


def forget_models() -> None:
    """Drop the cached depth models (tests, or to free memory)."""
    with _LOCK:
        _CACHE.clear()
