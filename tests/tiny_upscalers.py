"""Tiny random-weight super-resolution models, built in code with spandrel's own architecture
classes (never downloaded): an ESRGAN (RRDB) with 8 filters and one block."""

from __future__ import annotations

from pathlib import Path


def build_tiny_esrgan(scale: int = 4, seed: int = 0):
    import torch

    from inference.upscale import import_spandrel

    import_spandrel()  # spandrel's package first (it may need a torchvision placeholder)
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(seed)
    return ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=scale).eval()


def save_tiny_esrgan(path: str | Path, scale: int = 4, seed: int = 0) -> Path:
    """The tiny ESRGAN's state dict as ``.safetensors``, or as a torch pickle for ``.pth``."""
    import torch

    path = Path(path)
    state = {k: v.contiguous() for k, v in build_tiny_esrgan(scale, seed).state_dict().items()}
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, str(path))
    return path
