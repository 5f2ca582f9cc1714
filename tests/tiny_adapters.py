"""Tiny random-weight T2I-Adapters that fit the tiny UNets of :mod:`tests.tiny_models`.

The tiny UNets' first down block is a plain ``DownBlock2D`` (32 channels), which receives an
adapter residual *after* its downsampler, at 1/16 of the image. So a fitting adapter has one level
of 32 channels with ``downscale_factor=16`` (real SD1.5 adapters have four levels at 1/8..1/64 for
UNets whose first block has attention; the maths in the UNet is the same).

- :func:`build_tiny_adapter` -> a ``T2IAdapter`` in memory (``sdxl=True``: ``full_adapter_xl``)
- :func:`save_tiny_adapter` -> the diffusers folder (``config.json`` + safetensors)
"""

from __future__ import annotations

from pathlib import Path

TINY_ADAPTER_CHANNELS = [32]


def build_tiny_adapter(seed: int = 0, sdxl: bool = False):
    import torch
    from diffusers import T2IAdapter

    torch.manual_seed(seed)
    adapter = T2IAdapter(
        in_channels=3,
        channels=TINY_ADAPTER_CHANNELS,
        num_res_blocks=1,
        downscale_factor=16,
        adapter_type="full_adapter_xl" if sdxl else "full_adapter",
    ).eval()
    with torch.no_grad():  # random init is near zero at the output: make the effect visible
        for parameter in adapter.parameters():
            parameter.mul_(3.0)
    return adapter


def save_tiny_adapter(directory: str | Path, seed: int = 0, sdxl: bool = False) -> Path:
    directory = Path(directory)
    build_tiny_adapter(seed=seed, sdxl=sdxl).save_pretrained(directory, safe_serialization=True)
    return directory
