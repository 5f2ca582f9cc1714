"""Tiny random-weight Stable Diffusion components for fast, offline tests.

Built in code the way diffusers' own tests do it: a UNet with two levels, a four-level VAE so that
latents are 1/8 of the image (like the real SD VAE), a five-layer CLIP text encoder and a CLIP
tokenizer over a small local vocabulary. Everything is seeded, so two builds are identical.

Other test suites import these builders; keep the signatures stable:

- :func:`build_tiny_pipeline` -> a ``StableDiffusionPipeline`` in memory
- :func:`build_tiny_sdxl_pipeline` -> a ``StableDiffusionXLPipeline`` in memory
- :func:`save_tiny_model` -> a diffusers folder (``from_pretrained`` layout) on disk
- :func:`save_tiny_single_file` -> an LDM/A1111-layout ``.safetensors`` + matching config folder
- :func:`build_tiny_controlnet` / :func:`save_tiny_controlnet` -> a tiny ``ControlNetModel``

The native generation size of the tiny model is :data:`TINY_NATIVE_SIZE` (64 px): the UNet's
``sample_size`` (8) times the VAE's scale factor (8). Images must be multiples of 16 px (the tiny
UNet downsamples its latents once).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

TINY_NATIVE_SIZE = 64
TINY_CROSS_ATTENTION_DIM = 32
_UNET_BLOCKS = (32, 64)
_VAE_BLOCKS = (8, 16, 16, 16)

# The SD1.5 scheduler config (PNDM, as shipped in runwayml/stable-diffusion-v1-5).
_SCHEDULER_CONFIG: dict[str, Any] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}


def build_tiny_unet(in_channels: int = 4, seed: int = 0):
    """A two-level conditional UNet; ``in_channels=9`` gives an inpainting UNet."""
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        block_out_channels=_UNET_BLOCKS,
        layers_per_block=1,
        sample_size=TINY_NATIVE_SIZE // 8,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TINY_CROSS_ATTENTION_DIM,
        attention_head_dim=8,
        norm_num_groups=8,
    ).eval()


def build_tiny_vae(seed: int = 0):
    """A four-level ``AutoencoderKL`` (three downsamples: latents are 1/8 of the image)."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        block_out_channels=_VAE_BLOCKS,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(_VAE_BLOCKS),
        up_block_types=("UpDecoderBlock2D",) * len(_VAE_BLOCKS),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=TINY_NATIVE_SIZE,
    ).eval()


def build_tiny_text_encoder(seed: int = 0):
    """A five-layer ``CLIPTextModel`` with a 1000-token vocabulary and hidden size 32."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    config = CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=2,
        hidden_size=TINY_CROSS_ATTENTION_DIM,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=5,
        pad_token_id=1,
        vocab_size=1000,
        max_position_embeddings=77,
    )
    return CLIPTextModel(config).eval()


def tiny_tokenizer_vocab() -> tuple[dict[str, int], list[str]]:
    """A small byte-level CLIP vocabulary (< 1000 tokens) and a few merges."""
    from inference.models import bytes_to_unicode

    symbols = bytes_to_unicode()
    tokens = symbols + [s + "</w>" for s in symbols]
    merges = ["t h", "th e</w>", "a n", "an d</w>", "c a", "ca t</w>"]
    tokens += [m.replace(" ", "") for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(tokens)}, merges


def build_tiny_tokenizer():
    """A ``CLIPTokenizer`` over :func:`tiny_tokenizer_vocab`, ``model_max_length=77``."""
    from transformers import CLIPTokenizer

    vocab, merges = tiny_tokenizer_vocab()
    pairs = [tuple(merge.split()) for merge in merges]
    return CLIPTokenizer(vocab=vocab, merges=pairs, model_max_length=77)


def build_tiny_scheduler():
    from diffusers import PNDMScheduler

    return PNDMScheduler.from_config(_SCHEDULER_CONFIG)


def build_tiny_pipeline(inpaint: bool = False, seed: int = 0):
    """A complete tiny ``StableDiffusionPipeline`` (``inpaint=True``: 9-channel UNet,
    ``StableDiffusionInpaintPipeline``), no safety checker."""
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    cls = StableDiffusionInpaintPipeline if inpaint else StableDiffusionPipeline
    return cls(
        unet=build_tiny_unet(in_channels=9 if inpaint else 4, seed=seed),
        vae=build_tiny_vae(seed=seed),
        text_encoder=build_tiny_text_encoder(seed=seed),
        tokenizer=build_tiny_tokenizer(),
        scheduler=build_tiny_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_tiny_sdxl_pipeline(inpaint: bool = False, seed: int = 0):
    """A tiny ``StableDiffusionXLPipeline`` (two text encoders, ``text_time`` conditioning);
    ``inpaint=True``: 9-channel UNet in a ``StableDiffusionXLInpaintPipeline``."""
    import torch
    from diffusers import (
        StableDiffusionXLInpaintPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=_UNET_BLOCKS,
        layers_per_block=1,
        sample_size=TINY_NATIVE_SIZE // 8,
        in_channels=9 if inpaint else 4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=64,  # 16 pooled + 6 * 8 time ids
        cross_attention_dim=48,  # 32 + 16 from the two text encoders
        norm_num_groups=8,
    ).eval()
    config = CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=2,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=5,
        pad_token_id=1,
        vocab_size=1000,
        hidden_act="gelu",
        projection_dim=32,
        max_position_embeddings=77,
    )
    # the second encoder is narrower, as OpenCLIP-G differs from CLIP-L (single-file loading
    # tells the two apart by width)
    config_2 = CLIPTextConfig(**{**config.to_dict(), "hidden_size": 16, "projection_dim": 16})
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(config).eval()
    text_encoder_2 = CLIPTextModelWithProjection(config_2).eval()
    from diffusers import EulerDiscreteScheduler

    cls = StableDiffusionXLInpaintPipeline if inpaint else StableDiffusionXLPipeline
    extra = {"requires_aesthetics_score": False} if inpaint else {}
    return cls(
        unet=unet,
        vae=build_tiny_vae(seed=seed),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=build_tiny_tokenizer(),
        tokenizer_2=build_tiny_tokenizer(),
        scheduler=EulerDiscreteScheduler.from_config(_SCHEDULER_CONFIG),
        **extra,
    )


def save_tiny_model(
    directory: str | Path, inpaint: bool = False, seed: int = 0, sdxl: bool = False
) -> Path:
    """Save a tiny pipeline (SD1.x-like, or SDXL-like with ``sdxl=True``) as a diffusers folder
    with safetensors weights; returns the folder."""
    directory = Path(directory)
    build = build_tiny_sdxl_pipeline if sdxl else build_tiny_pipeline
    build(inpaint=inpaint, seed=seed).save_pretrained(directory, safe_serialization=True)
    return directory


def save_tiny_config_folder(model_folder: str | Path, config_folder: str | Path) -> Path:
    """Copy a diffusers folder without its weights: what ``from_single_file(config=...)`` needs."""
    model_folder, config_folder = Path(model_folder), Path(config_folder)
    shutil.copytree(
        model_folder,
        config_folder,
        ignore=shutil.ignore_patterns("*.safetensors", "*.bin"),
        dirs_exist_ok=True,
    )
    return config_folder


def save_tiny_single_file(
    path: str | Path,
    inpaint: bool = False,
    seed: int = 0,
    with_sidecar_config: bool = True,
    sdxl: bool = False,
) -> Path:
    """Save a tiny model as ONE ``.safetensors`` in the original LDM (A1111) key layout.

    With ``with_sidecar_config`` the matching diffusers config folder is written next to it as
    ``<stem>.config/`` — the convention ``inference.models`` uses to find a config for checkpoints
    that are not standard SD1.x/SD2/SDXL shapes. Returns the ``.safetensors`` path.
    """
    import tempfile

    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pipe = (build_tiny_sdxl_pipeline if sdxl else build_tiny_pipeline)(inpaint=inpaint, seed=seed)
    state = diffusers_to_ldm_state_dict(
        pipe.unet.state_dict(),
        pipe.vae.state_dict(),
        pipe.text_encoder.state_dict(),
        layers_per_block=pipe.unet.config.layers_per_block,
        unet_attention_blocks=["CrossAttn" in name for name in pipe.unet.config.down_block_types],
        vae_blocks=len(pipe.vae.config.block_out_channels),
        text_encoder_2=pipe.text_encoder_2.state_dict() if sdxl else None,
    )
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    if with_sidecar_config:
        with tempfile.TemporaryDirectory() as tmp:
            pipe.save_pretrained(tmp, safe_serialization=True)
            save_tiny_config_folder(tmp, sidecar_config_path(path))
    return path


def sidecar_config_path(checkpoint: str | Path) -> Path:
    """``model.safetensors`` -> ``model.config`` (a diffusers config folder)."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".config")


def diffusers_to_ldm_state_dict(
    unet: dict,
    vae: dict,
    text_encoder: dict,
    layers_per_block: int,
    unet_attention_blocks: list[bool],
    vae_blocks: int,
    text_encoder_2: dict | None = None,
) -> dict:
    """Map diffusers-format SD1.x (or, with ``text_encoder_2``, SDXL) weights to the original
    LDM single-file key layout (what A1111/Civitai checkpoints use).

    The inverse of diffusers' ``convert_ldm_*_checkpoint`` for any number of UNet/VAE levels.
    ``unet_attention_blocks[i]`` says whether down block i (and mirrored up block) has attention.
    """
    out: dict = {}
    for key, value in unet.items():
        out[
            "model.diffusion_model."
            + _unet_key_to_ldm(key, layers_per_block, unet_attention_blocks)
        ] = value
    for key, value in vae.items():
        ldm_key, ldm_value = _vae_key_to_ldm(key, value, vae_blocks)
        out["first_stage_model." + ldm_key] = ldm_value
    clip_prefix = (
        "conditioner.embedders.0.transformer."
        if text_encoder_2
        else ("cond_stage_model.transformer.")
    )
    for key, value in text_encoder.items():
        if not key.startswith("text_model.") and not key.startswith("text_projection"):
            key = "text_model." + key
        out[clip_prefix + key] = value
    if text_encoder_2 is not None:
        out.update(_open_clip_to_ldm(text_encoder_2, "conditioner.embedders.1.model."))
    return out


_OPEN_CLIP_PARTS = (
    ("text_model.encoder.layers.", "transformer.resblocks."),
    (".self_attn.", ".attn."),
    ("layer_norm1", "ln_1"),
    ("layer_norm2", "ln_2"),
    (".fc1.", ".c_fc."),
    (".fc2.", ".c_proj."),
)


def _open_clip_to_ldm(state: dict, prefix: str) -> dict:
    """A ``CLIPTextModelWithProjection`` state dict -> OpenCLIP (SDXL ``embedders.1``) keys."""
    import torch

    state = {
        (k if k.startswith(("text_model.", "text_projection")) else "text_model." + k): v
        for k, v in state.items()
    }
    out: dict = {}
    fused: dict[str, dict[str, object]] = {}
    for key, value in state.items():
        if key == "text_model.embeddings.position_embedding.weight":
            out[prefix + "positional_embedding"] = value
        elif key == "text_model.embeddings.token_embedding.weight":
            out[prefix + "token_embedding.weight"] = value
        elif key.startswith("text_model.final_layer_norm."):
            out[prefix + "ln_final." + key.rsplit(".", 1)[1]] = value
        elif key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T.contiguous()
        elif key.startswith("text_model.encoder.layers."):
            ldm = key
            for diffusers_part, ldm_part in _OPEN_CLIP_PARTS:
                ldm = ldm.replace(diffusers_part, ldm_part)
            for qkv in ("q_proj", "k_proj", "v_proj"):
                if f".attn.{qkv}." in ldm:
                    head, kind = ldm.split(f".attn.{qkv}.")
                    fused.setdefault(f"{head}.attn.in_proj_{kind}", {})[qkv] = value
                    break
            else:
                out[prefix + ldm] = value
    for key, parts in fused.items():
        out[prefix + key] = torch.cat([parts["q_proj"], parts["k_proj"], parts["v_proj"]])
    return out


_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_RESNET_PARTS = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}


def _resnet_rest_to_ldm(rest: str) -> str:
    head, _, tail = rest.partition(".")
    return f"{_RESNET_PARTS.get(head, head)}.{tail}"


def _unet_key_to_ldm(key: str, lpb: int, attention_blocks: list[bool]) -> str:
    for prefix, ldm in _UNET_TOP.items():
        if key.startswith(prefix + "."):
            return ldm + key[len(prefix) :]
    parts = key.split(".")
    n_levels = len(attention_blocks)
    if parts[0] == "down_blocks":
        block = int(parts[1])
        if parts[2] == "downsamplers":
            return f"input_blocks.{(lpb + 1) * (block + 1)}.0.op." + ".".join(parts[5:])
        layer = int(parts[3])
        index = (lpb + 1) * block + layer + 1
        rest = ".".join(parts[4:])
        if parts[2] == "resnets":
            return f"input_blocks.{index}.0." + _resnet_rest_to_ldm(rest)
        return f"input_blocks.{index}.1." + rest
    if parts[0] == "up_blocks":
        block = int(parts[1])
        has_attention = attention_blocks[n_levels - 1 - block]
        if parts[2] == "upsamplers":
            slot = 2 if has_attention else 1
            return f"output_blocks.{(lpb + 1) * block + lpb}.{slot}." + ".".join(parts[4:])
        layer = int(parts[3])
        index = (lpb + 1) * block + layer
        rest = ".".join(parts[4:])
        if parts[2] == "resnets":
            return f"output_blocks.{index}.0." + _resnet_rest_to_ldm(rest)
        return f"output_blocks.{index}.1." + rest
    if parts[0] == "mid_block":
        layer = int(parts[2])
        rest = ".".join(parts[3:])
        if parts[1] == "resnets":
            return f"middle_block.{2 * layer}." + _resnet_rest_to_ldm(rest)
        return "middle_block.1." + rest
    raise KeyError(f"no LDM name for UNet key {key}")


_VAE_ATTENTION_PARTS = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}


def _vae_key_to_ldm(key: str, value, n_blocks: int):
    side, _, rest = key.partition(".")  # encoder | decoder | quant_conv | post_quant_conv
    if side not in {"encoder", "decoder"}:
        return key, value
    rest = rest.replace("conv_norm_out", "norm_out")
    parts = rest.split(".")
    if parts[0] == "down_blocks":
        block = parts[1]
        if parts[2] == "downsamplers":
            return f"{side}.down.{block}.downsample.conv.{parts[-1]}", value
        tail = ".".join(parts[4:]).replace("conv_shortcut", "nin_shortcut")
        return f"{side}.down.{block}.block.{parts[3]}.{tail}", value
    if parts[0] == "up_blocks":
        block = n_blocks - 1 - int(parts[1])
        if parts[2] == "upsamplers":
            return f"{side}.up.{block}.upsample.conv.{parts[-1]}", value
        tail = ".".join(parts[4:]).replace("conv_shortcut", "nin_shortcut")
        return f"{side}.up.{block}.block.{parts[3]}.{tail}", value
    if parts[0] == "mid_block":
        if parts[1] == "resnets":
            tail = ".".join(parts[3:]).replace("conv_shortcut", "nin_shortcut")
            return f"{side}.mid.block_{int(parts[2]) + 1}.{tail}", value
        tail = ".".join(parts[3:])
        for diffusers_name, ldm_name in _VAE_ATTENTION_PARTS.items():
            if tail.startswith(diffusers_name + "."):
                tail = ldm_name + tail[len(diffusers_name) :]
                break
        if value.ndim == 2:  # LDM stores the attention projections as 1x1 convolutions
            value = value[:, :, None, None]
        return f"{side}.mid.attn_1.{tail}", value
    return f"{side}.{rest}", value


# ---- ControlNet ------------------------------------------------------------------------------


def build_tiny_controlnet(seed: int = 0, conditioning_channels: int = 3):
    """A tiny ``ControlNetModel`` matching :func:`build_tiny_unet` (SD1.x-like, context dim 32)."""
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    model = ControlNetModel(
        block_out_channels=_UNET_BLOCKS,
        layers_per_block=1,
        in_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        cross_attention_dim=TINY_CROSS_ATTENTION_DIM,
        attention_head_dim=8,
        norm_num_groups=8,
        conditioning_embedding_out_channels=(8, 8, 16, 16),  # 3 downsamples: image/8 = latents
        conditioning_channels=conditioning_channels,
    ).eval()
    # A fresh ControlNet has zero-initialised output convolutions (no effect at all); give them
    # random weights, as diffusers' own tests do, so tests can see the control act.
    with torch.no_grad():
        zero_convs = [
            *model.controlnet_down_blocks,
            model.controlnet_mid_block,
            model.controlnet_cond_embedding.conv_out,
        ]
        for conv in zero_convs:
            conv.weight.normal_(0.0, 0.2)
            conv.bias.fill_(0.1)
    return model


def save_tiny_controlnet(path: str | Path, seed: int = 0, single_file: bool = False) -> Path:
    """Save a tiny ControlNet: a diffusers folder at ``path``, or with ``single_file=True`` one
    ``.safetensors`` at ``path`` plus its ``<stem>.config/`` sidecar folder (config.json)."""
    from safetensors.torch import save_file

    path = Path(path)
    model = build_tiny_controlnet(seed=seed)
    if not single_file:
        model.save_pretrained(path, safe_serialization=True)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    sidecar = sidecar_config_path(path)
    sidecar.mkdir(parents=True, exist_ok=True)
    (sidecar / "config.json").write_text(json.dumps(dict(model.config), default=list, indent=2))
    return path


# ---- TAESD -----------------------------------------------------------------------------------


def build_tiny_taesd(seed: int = 0):
    """A tiny ``AutoencoderTiny`` (TAESD layout: latents x8 on decode) for preview tests."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    return AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
    ).eval()


def save_tiny_taesd(directory: str | Path, seed: int = 0) -> Path:
    """Save :func:`build_tiny_taesd` as a diffusers folder; returns the folder."""
    directory = Path(directory)
    build_tiny_taesd(seed).save_pretrained(directory, safe_serialization=True)
    return directory
