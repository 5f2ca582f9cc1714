"""Tiny random LoRA files for the tiny models of :mod:`tests.tiny_models`, built in code.

- :func:`tiny_lora_factors` -> ``{module path: (down, up, alpha)}`` for the UNet attention
  projections and the text encoder's self-attention projections (or any other targets, e.g. the
  MLPs); :func:`only` keeps a subset, as pruned or module-selected LoRAs hold
- :func:`save_kohya_lora` -> a kohya/A1111-style ``.safetensors`` (``lora_unet_*``,
  ``lora_te_text_model_*`` as kohya's transformers-4 CLIP names them)
- :func:`save_diffusers_lora` -> a diffusers/PEFT-style file written by diffusers'
  ``save_lora_weights`` (``unet.*.lora_A.weight``)
- :func:`merge_lora_into` -> add ``weight * alpha / rank * up @ down`` to a pipeline's weights by
  hand: the reference a loaded LoRA must match
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")
UNET_FF_TARGETS = ("ff.net.0.proj", "ff.net.2")
TEXT_MLP_TARGETS = ("mlp.fc1", "mlp.fc2")

Factors = dict[str, tuple[Any, Any, float]]  # "unet.<module>" / "text_encoder.<module>"


def tiny_lora_factors(
    seed: int = 0,
    rank: int = 4,
    alpha: float | None = None,
    scale: float = 0.5,
    unet: bool = True,
    text_encoder: bool = True,
    unet_targets: tuple[str, ...] = UNET_TARGETS,
    text_targets: tuple[str, ...] = TEXT_TARGETS,
) -> Factors:
    """Random LoRA factors for every targeted Linear of the tiny UNet / text encoder."""
    import torch

    from tests.tiny_models import build_tiny_text_encoder, build_tiny_unet

    generator = torch.Generator().manual_seed(seed)
    factors: Factors = {}
    parts = []
    if unet:
        parts.append(("unet", build_tiny_unet(), unet_targets))
    if text_encoder:
        parts.append(("text_encoder", build_tiny_text_encoder(), text_targets))
    for prefix, model, targets in parts:
        for name, module in model.named_modules():
            if name.endswith(targets) and isinstance(module, torch.nn.Linear):
                down = torch.randn(rank, module.in_features, generator=generator) * scale
                up = torch.randn(module.out_features, rank, generator=generator) * scale
                factors[f"{prefix}.{name}"] = (
                    down,
                    up,
                    float(alpha if alpha is not None else rank),
                )
    return factors


def only(factors: Factors, *parts: str) -> Factors:
    """The factors whose key contains any of ``parts`` (a partial layer set)."""
    return {key: value for key, value in factors.items() if any(p in key for p in parts)}


KOHYA_PREFIXES = {"unet": "lora_unet_", "text_encoder": "lora_te_"}
KOHYA_SDXL_PREFIXES = {
    "unet": "lora_unet_",
    "text_encoder": "lora_te1_",
    "text_encoder_2": "lora_te2_",
}


def save_kohya_lora(path: str | Path, factors: Factors, sdxl: bool = False) -> Path:
    """kohya-ss layout: ``lora_unet_<module_with_underscores>.lora_down.weight``, ``.lora_up``,
    ``.alpha``; text encoder: ``lora_te_text_model_<module>`` (kohya's CLIP had ``text_model``
    above ``encoder``; transformers 5 no longer has it); ``sdxl``: ``lora_te1_`` / ``lora_te2_``."""
    import torch
    from safetensors.torch import save_file

    state = {}
    for key, (down, up, alpha) in factors.items():
        prefix, module = key.split(".", 1)
        if prefix.startswith("text_encoder") and not module.startswith("text_model."):
            module = "text_model." + module
        stem = (KOHYA_SDXL_PREFIXES if sdxl else KOHYA_PREFIXES)[prefix] + module.replace(".", "_")
        state[f"{stem}.lora_down.weight"] = down.contiguous()
        state[f"{stem}.lora_up.weight"] = up.contiguous()
        state[f"{stem}.alpha"] = torch.tensor(alpha)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={"ss_network_module": "networks.lora"})
    return path


def save_diffusers_lora(path: str | Path, factors: Factors) -> Path:
    """diffusers/PEFT layout, written by ``StableDiffusionPipeline.save_lora_weights``.

    All factors must share one rank and ``alpha == rank`` (diffusers' default scaling)."""
    from diffusers import StableDiffusionPipeline

    layers: dict[str, dict] = {"unet": {}, "text_encoder": {}}
    for key, (down, up, alpha) in factors.items():
        prefix, module = key.split(".", 1)
        assert alpha == down.shape[0], "diffusers files without metadata imply alpha == rank"
        layers[prefix][f"{module}.lora_A.weight"] = down.contiguous()
        layers[prefix][f"{module}.lora_B.weight"] = up.contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(
        str(path.parent),
        unet_lora_layers=layers["unet"] or None,
        text_encoder_lora_layers=layers["text_encoder"] or None,
        weight_name=path.name,
        safe_serialization=True,
    )
    return path


def merge_lora_into(pipe: Any, factors: Factors, weight: float = 1.0) -> None:
    """Add each LoRA delta to the pipeline's own Linear weights (in place)."""
    import torch

    with torch.no_grad():
        for key, (down, up, alpha) in factors.items():
            prefix, module_name = key.split(".", 1)
            module = getattr(pipe, prefix).get_submodule(module_name)
            delta = (up @ down) * (alpha / down.shape[0]) * weight
            module.weight += delta.to(module.weight.dtype)
