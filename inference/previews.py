"""Latents -> small RGB previews, computed on the device; only the small image reaches the CPU.

The linear factors are the widely used least-squares fits from latent channels to RGB (as in
ComfyUI / A1111's "approximate" preview). TAESD decodes to full size when a local model is set.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SD1_FACTORS = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
SD1_BIAS = (0.0, 0.0, 0.0)
SDXL_FACTORS = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
SDXL_BIAS = (0.1084, -0.0175, -0.0011)


class LinearPreview:
    """``(B, 4, h, w)`` latents -> ``(h, w, 3)`` uint8 of the first batch item."""

    def __init__(self, family: str, device: Any) -> None:
        import torch

        from inference.library.entry import Base

        sdxl = Base.parse(family).latent_family == "sdxl"
        factors, bias = (SDXL_FACTORS, SDXL_BIAS) if sdxl else (SD1_FACTORS, SD1_BIAS)
        self._factors = torch.tensor(factors, dtype=torch.float32, device=device)
        self._bias = torch.tensor(bias, dtype=torch.float32, device=device)

    def __call__(self, latents: Any) -> np.ndarray:
        import torch

        with torch.no_grad():
            latent = latents[0].to(torch.float32)  # (4, h, w)
            rgb = torch.einsum("chw,cr->hwr", latent, self._factors) + self._bias
            rgb = ((rgb + 1.0) * 127.5).clamp_(0, 255).to(torch.uint8)
        return rgb.cpu().numpy()


class TaesdPreview:
    """Full-resolution preview through a local TAESD (``AutoencoderTiny``) model."""

    def __init__(self, path: str, device: Any, dtype: Any) -> None:
        from diffusers import AutoencoderTiny

        self._model = AutoencoderTiny.from_pretrained(
            path, local_files_only=True, torch_dtype=dtype
        )
        self._model.to(device)
        self._dtype = dtype

    def __call__(self, latents: Any) -> np.ndarray:
        import torch

        with torch.no_grad():
            image = self._model.decode(latents[:1].to(self._dtype)).sample[0]
            image = ((image.float() + 1.0) * 127.5).clamp_(0, 255).to(torch.uint8)
        return image.permute(1, 2, 0).cpu().numpy()


def make_previewer(
    method: str, family: str, device: Any, dtype: Any, taesd_path: str | None
) -> LinearPreview | TaesdPreview | None:
    """``None`` when previews are off. Falls back to linear when TAESD cannot be loaded."""
    if method == "off":
        return None
    if method == "taesd" and taesd_path:
        try:
            return TaesdPreview(taesd_path, device, dtype)
        except Exception as error:  # a bad TAESD path must not stop generation
            log.warning("TAESD preview unavailable (%s); using the linear preview", error)
    return LinearPreview(family, device)
