"""Tell what a model is from tensor names and shapes (or diffusers config files) alone.

Key names follow the layouts the community uses: the original LDM/SGM checkpoints
(``model.diffusion_model.*``, ``cond_stage_model.*``, ``conditioner.embedders.*``,
``first_stage_model.*``), lllyasviel's ControlNets (``control_model.*``), kohya LoRAs
(``lora_unet_*``, ``lora_te*_``), PEFT/diffusers LoRAs (``unet.*.lora_A``), diffusers models and
TAESD. Shapes decide the base where names alone cannot (cross-attention width: 768 = SD1,
1024 = SD2, 2048 = SDXL).
"""

from __future__ import annotations

import errno
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from inference import safe_json
from inference.library.entry import Base, ModelKind

Shapes = Mapping[str, tuple[int, ...]]

CONTEXT_DIM_BASE = {768: Base.SD1, 1024: Base.SD2, 2048: Base.SDXL, 1280: Base.SDXL_REFINER}
WEIGHT_SUFFIXES = (".safetensors", ".bin")
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # diffusers config files are a few KB


@dataclass(frozen=True)
class Classification:
    kind: ModelKind
    base: Base = Base.UNKNOWN
    inpaint: bool = False
    problem: str | None = None


def classify_tensors(shapes: Shapes, name_hint: str = "") -> Classification:
    """Classify a single-file model from ``{tensor name: shape}``."""
    if not shapes:
        return Classification(ModelKind.UNKNOWN, problem="the file contains no tensors")
    keys = list(shapes)
    for detector in (
        _ip_adapter,
        _t2i_adapter,
        _controlnet,  # first: original ControlNet files also carry a whole SD model
        _ldm_checkpoint,
        _other_architectures,
        _lora,
        _taesd,
        _vae,
        _bare_unet,
    ):
        found = detector(shapes, keys, name_hint.lower())
        if found is not None:
            return found
    return Classification(
        ModelKind.UNKNOWN,
        problem=f"not a Stable Diffusion model this app knows (first tensor: {keys[0]})",
    )


# ---- single-file detectors: each returns None when the file is not of its kind --------------


def _ldm_checkpoint(shapes: Shapes, keys: list[str], _hint: str) -> Classification | None:
    prefix = "model.diffusion_model."
    if not any(k.startswith(prefix) for k in keys):
        return None
    if any(k.startswith(prefix + "joint_blocks.") for k in keys):
        return Classification(ModelKind.CHECKPOINT, Base.SD3, problem="SD3 is not supported")
    if any(k.startswith(prefix + "double_blocks.") for k in keys):
        return Classification(ModelKind.CHECKPOINT, Base.FLUX, problem="Flux is not supported")
    conv_in = shapes.get(prefix + "input_blocks.0.0.weight")
    if conv_in is None or len(conv_in) != 4:
        return Classification(
            ModelKind.CHECKPOINT, problem="UNet without input_blocks.0.0 (unsupported architecture)"
        )
    base = _unet_base(shapes, keys, prefix, text_keys=keys)
    return _with_in_channels(ModelKind.CHECKPOINT, base, conv_in[1])


def _with_in_channels(kind: ModelKind, base: Base, in_channels: int) -> Classification:
    if in_channels == 4:
        return Classification(kind, base)
    if in_channels == 9:
        return Classification(kind, base, inpaint=True)
    if in_channels == 8:
        return Classification(
            kind, base, problem="instruct-pix2pix (8-channel UNet) is unsupported"
        )
    return Classification(kind, base, problem=f"UNet with {in_channels} input channels")


def _unet_base(shapes: Shapes, keys: list[str], prefix: str, text_keys: list[str]) -> Base:
    """Base of an LDM-layout UNet (checkpoint or ControlNet) under ``prefix``."""
    label_emb = shapes.get(prefix + "label_emb.0.0.weight")
    if label_emb is not None and len(label_emb) == 2:
        return Base.SDXL_REFINER if label_emb[1] == 2560 else Base.SDXL
    if any(k.startswith("conditioner.embedders.1.") for k in text_keys):
        return Base.SDXL
    if any(k.startswith("cond_stage_model.model.") for k in text_keys):
        return Base.SD2  # OpenCLIP text encoder
    if any(k.startswith("cond_stage_model.transformer.") for k in text_keys):
        return Base.SD1  # OpenAI CLIP text encoder
    by_width = _base_from_context_dim(shapes, keys)
    if by_width is not Base.UNKNOWN:
        return by_width
    proj_in = shapes.get(prefix + "input_blocks.1.1.proj_in.weight")
    if proj_in is not None:
        return Base.SD2 if len(proj_in) == 2 else Base.SD1  # SD2 made proj_in linear
    return Base.UNKNOWN


def _base_from_context_dim(shapes: Shapes, keys: list[str]) -> Base:
    for key in keys:
        if key.endswith("attn2.to_k.weight"):
            shape = shapes[key]
            if len(shape) == 2:
                return CONTEXT_DIM_BASE.get(shape[1], Base.UNKNOWN)
    return Base.UNKNOWN


def _ip_adapter(shapes: Shapes, keys: list[str], _hint: str) -> Classification | None:
    """``ip-adapter*.safetensors``: image projection + per-layer key/value weights; the base
    from the width of the text context its key projections take."""
    if not any(k.startswith("image_proj.") for k in keys):
        return None
    if not any(k.startswith("ip_adapter.") for k in keys):
        return None
    shape = shapes.get("ip_adapter.1.to_k_ip.weight")
    base = (
        CONTEXT_DIM_BASE.get(shape[1], Base.UNKNOWN) if shape and len(shape) == 2 else Base.UNKNOWN
    )
    problem = None
    if not any(k.startswith(("image_proj.proj.", "image_proj.proj_in.")) for k in keys):
        problem = "an IP-Adapter variant this app does not load (FaceID or full-face)"
    return Classification(ModelKind.IP_ADAPTER, base, problem=problem)


def _t2i_adapter(shapes: Shapes, keys: list[str], _hint: str) -> Classification | None:
    """A single-file T2I-Adapter (diffusers or TencentARC keys): a control model. SDXL adapters
    read the picture through a 16x pixel unshuffle (``conv_in`` takes 256 or 768 channels),
    SD1.x ones through 8x (64 or 192)."""
    for conv_in, body in (
        ("adapter.conv_in.weight", "adapter.body.0.resnets.0.block1.weight"),
        ("conv_in.weight", "body.0.block1.weight"),
    ):
        shape = shapes.get(conv_in)
        if shape is not None and body in shapes and len(shape) == 4:
            base = {64: Base.SD1, 192: Base.SD1, 256: Base.SDXL, 768: Base.SDXL}
            return Classification(ModelKind.CONTROLNET, base.get(shape[1], Base.UNKNOWN))
    if "body.0.in_conv.weight" in shapes and "body.0.body.0.block1.weight" in shapes:
        return Classification(ModelKind.CONTROLNET, problem="light (colour) T2I-Adapter")
    return None


def classify_transformers_folder(folder: Path, config: dict) -> Classification | None:
    """A transformers model folder the app uses: the CLIP image encoder of IP-Adapters, or a
    depth estimator (DPT, Depth Anything) for depth control layers."""
    architectures = config.get("architectures")
    names = architectures if isinstance(architectures, list) else []
    problem = (
        None if has_weights(folder) else "no weights next to config.json (incomplete download?)"
    )
    if any(isinstance(name, str) and name.endswith("ForDepthEstimation") for name in names):
        return Classification(ModelKind.DEPTH_ESTIMATOR, Base.UNKNOWN, problem=problem)
    if (
        config.get("model_type") != "clip_vision_model"
        and "CLIPVisionModelWithProjection" not in names
    ):
        return None
    return Classification(ModelKind.IMAGE_ENCODER, Base.UNKNOWN, problem=problem)


def _other_architectures(shapes: Shapes, keys: list[str], _hint: str) -> Classification | None:
    if any(k.startswith(("double_blocks.", "single_blocks.")) for k in keys):
        return Classification(ModelKind.CHECKPOINT, Base.FLUX, problem="Flux is not supported")
    if any(k.startswith("joint_blocks.") for k in keys):
        return Classification(ModelKind.CHECKPOINT, Base.SD3, problem="SD3 is not supported")
    return None


_CONTROLNET_MARKERS = (
    "control_model.input_hint_block.",
    "model.control_model.input_hint_block.",
    "input_hint_block.",
    "controlnet_cond_embedding.",
)


def _controlnet(shapes: Shapes, keys: list[str], _hint: str) -> Classification | None:
    if not any(k.startswith(_CONTROLNET_MARKERS) for k in keys):
        if any(k.startswith("lora_controlnet") for k in keys):
            return Classification(ModelKind.CONTROLNET, problem="Control-LoRA is not supported")
        return None
    if any("label_emb." in k or k.startswith("add_embedding.") for k in keys):
        base = Base.SDXL
    else:
        base = _base_from_context_dim(shapes, keys)
        if base is Base.UNKNOWN:
            for prefix in ("control_model.", ""):
                proj_in = shapes.get(prefix + "input_blocks.1.1.proj_in.weight")
                if proj_in is not None:
                    base = Base.SD2 if len(proj_in) == 2 else Base.SD1
    return Classification(ModelKind.CONTROLNET, base)


_LORA_PREFIXES = (
    "lora_unet_",
    "lora_te_",
    "lora_te1_",
    "lora_te2_",
    "lycoris_",
    "unet.",
    "text_encoder.",
    "text_encoder_2.",
    "lora_transformer_",
    "transformer.",
    "diffusion_model.",
)
_LORA_PARTS = (
    ".lora_down.",
    ".lora_up.",
    ".lora_A.",
    ".lora_B.",
    ".lora.down.",
    ".lora.up.",
    ".hada_w1_a",
    ".lokr_w1",
    ".alpha",
)
_LORA_DOWN = (".lora_down.weight", ".lora_A.weight", ".lora.down.weight", ".lora_A.default.weight")


def _lora(shapes: Shapes, keys: list[str], _hint: str) -> Classification | None:
    lora_keys = [k for k in keys if any(part in k for part in _LORA_PARTS)]
    if not lora_keys:
        return None
    if any(k.startswith(("lora_transformer_", "transformer.")) for k in lora_keys):
        return Classification(ModelKind.LORA, Base.UNKNOWN, problem="LoRA for a transformer model")
    if any(k.startswith(("lora_te2_", "text_encoder_2.")) for k in lora_keys):
        return Classification(ModelKind.LORA, Base.SDXL)
    for key in lora_keys:  # cross-attention key projection: in_features = context width
        if "attn2" in key and ("to_k" in key) and key.endswith(_LORA_DOWN):
            base = CONTEXT_DIM_BASE.get(shapes[key][-1] if shapes[key] else 0, Base.UNKNOWN)
            if base is not Base.UNKNOWN:
                return Classification(ModelKind.LORA, base)
    if any(k.startswith(("lora_unet_input_blocks", "lora_unet_output_blocks")) for k in lora_keys):
        return Classification(ModelKind.LORA, Base.SDXL)  # kohya SDXL uses SGM block names
    for key in lora_keys:  # text-encoder-only LoRA: hidden width 768 = SD1, 1024 = SD2
        text_encoder = key.startswith(("lora_te_", "text_encoder.")) and "mlp_fc1" in key
        if text_encoder and key.endswith(_LORA_DOWN) and shapes[key]:
            width = shapes[key][-1]
            base = {768: Base.SD1, 1024: Base.SD2}.get(width, Base.UNKNOWN)
            return Classification(ModelKind.LORA, base)
    return Classification(ModelKind.LORA, Base.UNKNOWN)


_TAESD_PREFIX = re.compile(
    r"^(?:taesd_decoder\.|taesd_encoder\.|decoder\.layers\.|encoder\.layers\.)?(\d+)\."
)


def _taesd(shapes: Shapes, keys: list[str], hint: str) -> Classification | None:
    if not all(_TAESD_PREFIX.match(k) for k in keys):
        return None
    decoder = [k for k in keys if k.startswith(("decoder.layers.", "taesd_decoder."))]
    if decoder:
        first = _first_conv(shapes, decoder)
    elif any(k.startswith(("encoder.layers.", "taesd_encoder.")) for k in keys):
        return Classification(
            ModelKind.TAESD, problem="TAESD encoder only; previews need a decoder"
        )
    else:
        first = _first_conv(shapes, keys)
        if first is not None and first[1] == 3:
            return Classification(
                ModelKind.TAESD, problem="TAESD encoder only; previews need a decoder"
            )
    if first is None:
        return None
    latent_channels = first[1]
    if latent_channels == 16:
        base = Base.FLUX if ("taef1" in hint or "flux" in hint) else Base.SD3
        return Classification(ModelKind.TAESD, base, problem=f"TAESD for {base.value} latents")
    if latent_channels != 4:
        return None
    return Classification(ModelKind.TAESD, Base.SDXL if "xl" in hint else Base.SD1)


def _first_conv(shapes: Shapes, keys: list[str]) -> tuple[int, ...] | None:
    convs = [
        (int(match.group(1)), shapes[k])
        for k in keys
        if k.endswith(".weight") and len(shapes[k]) == 4 and (match := _TAESD_PREFIX.match(k))
    ]
    return min(convs)[1] if convs else None


def _vae(shapes: Shapes, keys: list[str], hint: str) -> Classification | None:
    for prefix in ("", "first_stage_model.", "vae."):
        conv_in = shapes.get(prefix + "decoder.conv_in.weight")
        encoder = any(k.startswith(prefix + "encoder.") for k in keys)
        if conv_in is not None and len(conv_in) == 4 and encoder:
            latent_channels = conv_in[1]
            if latent_channels == 16:
                return Classification(ModelKind.VAE, problem="16-channel VAE (SD3/Flux)")
            if latent_channels != 4:
                return Classification(ModelKind.VAE, problem=f"{latent_channels}-channel VAE")
            return Classification(ModelKind.VAE, _vae_base_from_name(hint))
    return None


def _vae_base_from_name(hint: str) -> Base:
    # SD1/SD2 and SDXL VAEs have identical shapes; only the name tells them apart.
    if "xl" in hint:
        return Base.SDXL
    if re.search(r"sd[-_ ]?(1|2|v1|v2)|ft-mse|ft-ema|kl-f8|840000|560000", hint):
        return Base.SD1
    return Base.UNKNOWN


def _bare_unet(shapes: Shapes, keys: list[str], _hint: str) -> Classification | None:
    if "conv_in.weight" in shapes and any(k.startswith("down_blocks.") for k in keys):
        return Classification(
            ModelKind.UNKNOWN, problem="a bare diffusers UNet (it needs its pipeline folder)"
        )
    return None


# ---- diffusers folders ---------------------------------------------------------------------


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; raises ``ValueError`` with a readable reason."""
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
    try:
        data = safe_json.loads(safe_json.read_capped(path, MAX_CONFIG_BYTES))
    except safe_json.JSONError as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return data


def has_weights(folder: Path) -> bool:
    try:
        return any(
            p.name.endswith(WEIGHT_SUFFIXES) or p.name.endswith(".safetensors.index.json")
            for p in folder.iterdir()
        )
    except OSError:
        return False


def classify_pipeline_folder(folder: Path) -> Classification:
    """A diffusers pipeline folder (one with ``model_index.json``)."""
    try:
        index = read_json(folder / "model_index.json")
    except ValueError as exc:
        return Classification(ModelKind.UNKNOWN, problem=str(exc))
    class_name = str(index.get("_class_name", ""))
    if "transformer" in index:
        base = (
            Base.FLUX
            if "Flux" in class_name
            else Base.SD3
            if "StableDiffusion3" in class_name
            else Base.UNKNOWN
        )
        return Classification(ModelKind.CHECKPOINT, base, problem=f"{class_name} is not supported")
    if "unet" not in index:
        return Classification(ModelKind.UNKNOWN, problem=f"{class_name or 'pipeline'} has no UNet")
    try:
        unet = read_json(folder / "unet" / "config.json")
    except FileNotFoundError:
        return Classification(ModelKind.CHECKPOINT, problem="unet/config.json is missing")
    except (OSError, ValueError) as exc:
        return Classification(ModelKind.CHECKPOINT, problem=f"unet/{exc}")
    if "text_encoder_2" in index and index.get("text_encoder") not in (None, [None, None]):
        base = Base.SDXL
    elif "text_encoder_2" in index:
        base = Base.SDXL_REFINER
    else:
        base = _unet_config_base(unet)
    try:
        in_channels = int(unet.get("in_channels", 4))
    except (TypeError, ValueError):
        in_channels = 4
    found = _with_in_channels(ModelKind.CHECKPOINT, base, in_channels)
    if found.problem is None:
        missing = [
            name
            for name in ("unet", "vae")
            if isinstance(index.get(name), list) and not has_weights(folder / name)
        ]
        if missing:
            problem = f"no weights in {', '.join(missing)}/ (incomplete download?)"
            return Classification(found.kind, found.base, found.inpaint, problem)
    return found


def _unet_config_base(config: dict) -> Base:
    if config.get("addition_embed_type") == "text_time":
        return Base.SDXL
    width = config.get("cross_attention_dim")
    if isinstance(width, int) and width in CONTEXT_DIM_BASE:
        return CONTEXT_DIM_BASE[width]
    if config.get("use_linear_projection"):
        return Base.SD2
    return Base.SD1 if config.get("_class_name") == "UNet2DConditionModel" else Base.UNKNOWN


def classify_component_folder(folder: Path, config: dict) -> Classification:
    """A standalone diffusers model folder (``config.json`` + weights): ControlNet, VAE, TAESD."""
    class_name = str(config.get("_class_name", ""))
    hint = folder.name.lower()
    if not has_weights(folder):
        problem = "no weights next to config.json (incomplete download?)"
    else:
        problem = None
    if class_name == "ControlNetModel":
        base = _unet_config_base(config)
        return Classification(ModelKind.CONTROLNET, base, problem=problem)
    if class_name == "T2IAdapter":  # a control model like a ControlNet (inference.adapters)
        xl = config.get("adapter_type") == "full_adapter_xl"
        base = Base.SDXL if xl else (Base.SD2 if "sd2" in hint else Base.SD1)
        return Classification(ModelKind.CONTROLNET, base, problem=problem)
    if class_name == "AutoencoderKL":
        latent = config.get("latent_channels", 4)
        if latent != 4:
            return Classification(ModelKind.VAE, problem=f"{latent}-channel VAE")
        factor = config.get("scaling_factor")
        if factor is not None and abs(float(factor) - 0.13025) < 1e-4:
            base = Base.SDXL
        elif factor is not None and abs(float(factor) - 0.18215) < 1e-4 and "xl" not in hint:
            base = Base.SD1
        else:
            base = _vae_base_from_name(hint)
        return Classification(ModelKind.VAE, base, problem=problem)
    if class_name == "AutoencoderTiny":
        latent = config.get("latent_channels", 4)
        if latent != 4:
            return Classification(ModelKind.TAESD, problem=f"TAESD for {latent}-channel latents")
        return Classification(
            ModelKind.TAESD, Base.SDXL if "xl" in hint else Base.SD1, problem=problem
        )
    if class_name == "UNet2DConditionModel":
        return Classification(
            ModelKind.UNKNOWN, problem="a bare UNet (it needs its pipeline folder)"
        )
    return Classification(
        ModelKind.UNKNOWN,
        problem=f"{class_name or 'this config.json'} is not a model this app uses",
    )
