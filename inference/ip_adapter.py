"""Reference images: IP-Adapter image prompts and InstantStyle "style only", from local files.

A :class:`~inference.api.ReferenceInput` names an ``ip-adapter*.safetensors`` (SD1.x or SDXL;
pickle ``.bin`` only when allowed) and the CLIP image encoder folder the user has (a transformers
``CLIPVisionModelWithProjection``; found next to the adapter as ``image_encoder/`` when not
given). The adapters go into the model's UNet through diffusers' own ``load_ip_adapter`` (one
loaded adapter per reference, so each keeps its own weight), stay loaded while the next jobs use
the same references, and are unloaded (the UNet's attention processors restored exactly) for a
job without references.

Each reference's image goes through its own encoder here, as diffusers' ``encode_image`` does it
(image embeds for plain IP-Adapters, the penultimate hidden states for "plus" ones; zeros, or the
encoding of a black image, as the unconditional side), and reaches the pipeline as
``ip_adapter_image_embeds``: so references may use different encoders, and every pipeline (txt2img,
img2img, inpaint, with ControlNets or T2I-Adapters) gets them the same way. At txt2img this is
exactly what diffusers computes from ``ip_adapter_image`` (tests/inference/test_ip_adapter.py).

"Style only" follows InstantStyle: the adapter's scale is the weight in the style blocks only and
0 elsewhere (``set_ip_adapter_scale`` with a per-block dict): SDXL ``up_blocks.0.attentions.1``,
SD1.x the whole first up block with attention (``up_blocks.1`` in SD1.5), the blocks the
InstantStyle authors name for each.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference.api import (
    EngineSettings,
    InvalidRequestError,
    ModelLoadError,
    ModelNotFoundError,
    ReferenceInput,
    Request,
)
from inference.library.entry import Base

log = logging.getLogger(__name__)

ENCODER_FOLDER = "image_encoder"
CONTEXT_BASE = {768: Base.SD1, 1024: Base.SD2, 2048: Base.SDXL}
MAX_REFERENCES = 8

# which references a UNet holds now: unet -> (key, attention processors before the first load)
_LOADED: weakref.WeakKeyDictionary[Any, tuple[tuple[str, ...], dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)


# ---- files --------------------------------------------------------------------------------------


def is_ip_adapter_keys(keys: list[str]) -> bool:
    return any(k.startswith("image_proj.") for k in keys) and any(
        k.startswith("ip_adapter.") for k in keys
    )


def ip_adapter_context_dim(shapes: dict[str, tuple[int, ...]]) -> int | None:
    """The cross-attention width the adapter was made for (768 SD1.x, 2048 SDXL...)."""
    shape = shapes.get("ip_adapter.1.to_k_ip.weight")
    return int(shape[1]) if shape is not None and len(shape) == 2 else None


def image_proj_input_dim(shapes: dict[str, tuple[int, ...]]) -> tuple[int, bool] | None:
    """(width of the encoder output the adapter reads, whether it reads hidden states ("plus"))."""
    proj = shapes.get("image_proj.proj.weight")
    if proj is not None and len(proj) == 2:
        return int(proj[1]), False
    proj_in = shapes.get("image_proj.proj_in.weight")
    if proj_in is not None and len(proj_in) == 2:
        return int(proj_in[1]), True
    return None


def read_ip_adapter_shapes(path: Path, allow_pickle: bool) -> dict[str, tuple[int, ...]]:
    """``prefix.key -> shape`` of an IP-Adapter file (safetensors, or an allowed pickle)."""
    from inference.models import _is_pickle, _load_pickle_state, read_checkpoint_shapes

    if _is_pickle(path):
        if not allow_pickle:
            from inference.models import _refuse_pickle

            raise _refuse_pickle(path)
        state = _load_pickle_state(path)
        return {
            f"{part}.{key}": tuple(value.shape)
            for part in ("image_proj", "ip_adapter")
            if isinstance(state.get(part), dict)
            for key, value in state[part].items()
            if hasattr(value, "shape")
        }
    return read_checkpoint_shapes(path, allow_pickle)


def _state_dict(path: Path, allow_pickle: bool) -> dict[str, dict[str, Any]]:
    """The ``{"image_proj": ..., "ip_adapter": ...}`` dict ``load_ip_adapter`` takes."""
    from inference.models import _is_pickle, _load_pickle_state

    if _is_pickle(path):
        state = _load_pickle_state(path)  # refused above unless allowed
        parts = {part: state.get(part) for part in ("image_proj", "ip_adapter")}
        if not all(isinstance(value, dict) for value in parts.values()):
            raise ModelLoadError(f"{path.name} is not an IP-Adapter (no image_proj/ip_adapter)")
        return parts  # type: ignore[return-value]
    from safetensors import safe_open

    out: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
            part, _, name = key.partition(".")
            if part in out:
                out[part][name] = handle.get_tensor(key)
    return out


def default_encoder(adapter: Path) -> Path | None:
    """The encoder folder next to an adapter, as h94/IP-Adapter lays them out."""
    for folder in (adapter.parent / ENCODER_FOLDER, adapter.parent.parent / ENCODER_FOLDER):
        if (folder / "config.json").is_file():
            return folder
    return None


def read_encoder_config(folder: Path) -> dict | None:
    """The config of a CLIP image encoder folder, or None when ``folder`` is not one."""
    from inference.library.classify import read_json

    try:
        config = read_json(folder / "config.json")
    except (OSError, ValueError):
        return None
    architectures = config.get("architectures") or []
    if config.get("model_type") == "clip_vision_model" or "CLIPVisionModelWithProjection" in (
        architectures if isinstance(architectures, list) else []
    ):
        return config
    return None


def encoder_widths(config: dict) -> tuple[int, int]:
    """(image embeds width, hidden states width) of an encoder config."""
    vision = config.get("vision_config") if isinstance(config.get("vision_config"), dict) else None
    source = vision or config
    hidden = int(source.get("hidden_size", 0) or 0)
    projection = int(config.get("projection_dim", source.get("projection_dim", 0)) or 0)
    return projection, hidden


def encoder_fits(shapes: dict[str, tuple[int, ...]], config: dict) -> bool:
    wanted = image_proj_input_dim(shapes)
    if wanted is None:
        return False
    width, plus = wanted
    projection, hidden = encoder_widths(config)
    return width == (hidden if plus else projection)


def pick_image_encoder(
    adapter: str | Path, candidates: list[str], allow_pickle: bool = False
) -> str | None:
    """The encoder folder an IP-Adapter reads through: None when its own ``image_encoder/`` sits
    beside it (the engine finds that one), else the first of ``candidates`` (the library's
    image encoders) whose output width fits the adapter. None when none fits."""
    path = Path(adapter).expanduser()
    if default_encoder(path) is not None:
        return None
    try:
        shapes = read_ip_adapter_shapes(path, allow_pickle)
    except (OSError, ModelLoadError):
        return None
    for candidate in candidates:
        config = read_encoder_config(Path(candidate))
        if config is not None and encoder_fits(shapes, config):
            return str(candidate)
    return None


# ---- loading ------------------------------------------------------------------------------------


@dataclass
class ReferenceJob:
    """The references of one job, their encoders and what each adapter reads from them."""

    references: list[ReferenceInput]
    encoders: list[Any]  # CLIPVisionModelWithProjection, one per reference (shared when equal)
    processors: list[Any]  # CLIPImageProcessor matching each encoder
    scales: list[float | dict]


def _resolve(reference: ReferenceInput) -> tuple[Path, Path]:
    adapter = Path(reference.model_path).expanduser()
    if not adapter.is_file():
        raise ModelNotFoundError(f"IP-Adapter not found: {adapter}")
    if reference.image_encoder_path:
        encoder = Path(reference.image_encoder_path).expanduser()
        if not encoder.exists():
            raise ModelNotFoundError(f"image encoder not found: {encoder}")
    else:
        found = default_encoder(adapter)
        if found is None:
            raise ModelNotFoundError(
                f"IP-Adapter {adapter.name} needs its CLIP image encoder: put the encoder folder "
                f"at {adapter.parent / ENCODER_FOLDER} or give its path"
            )
        encoder = found
    return adapter, encoder


def _check_adapter(adapter: Path, shapes: dict, loaded: Any) -> None:
    if not is_ip_adapter_keys(list(shapes)):
        raise ModelLoadError(f"{adapter.name} is not an IP-Adapter (no image_proj/ip_adapter)")
    context = ip_adapter_context_dim(shapes)
    base_context = int(loaded.base.unet.config.cross_attention_dim)
    if context != base_context:
        family = CONTEXT_BASE.get(context or 0)
        wanted = family.value if family is not None else f"{context}-wide"
        raise ModelLoadError(
            f"IP-Adapter {adapter.stem} is for {wanted} models but {loaded.info.name} is "
            f"{Base.parse(loaded.info.family).value}; pick an IP-Adapter made for this model"
        )
    cross = sum(  # the UNet's own cross-attention (not a loaded adapter's resampler)
        1
        for name in loaded.base.unet.attn_processors
        if name.startswith(("down_blocks.", "mid_block.", "up_blocks."))
        and not name.endswith("attn1.processor")
    )
    layers = {k.split(".")[1] for k in shapes if k.startswith("ip_adapter.")}
    if len(layers) != cross:
        raise ModelLoadError(
            f"IP-Adapter {adapter.stem} has {len(layers)} attention layers but "
            f"{loaded.info.name} has {cross}; pick an IP-Adapter made for this model"
        )


def load_encoder(folder: Path, loaded: Any, settings: EngineSettings) -> tuple[Any, Any]:
    """A CLIP image encoder folder and the image processor diffusers pairs with it."""
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    from inference.models import _load_errors, require_safetensors

    if read_encoder_config(folder) is None:
        raise ModelLoadError(
            f"{folder.name} is not a CLIP image encoder folder (config.json of a "
            "CLIPVisionModelWithProjection)"
        )
    require_safetensors(folder, f"image encoder {folder.name}", settings.allow_pickle)
    with _load_errors(f"image encoder {folder.name}"):
        model = CLIPVisionModelWithProjection.from_pretrained(
            str(folder),
            dtype=loaded.dtype,
            local_files_only=True,
            use_safetensors=None if settings.allow_pickle else True,
        )
    model.to(loaded.device)
    model.eval()
    size = int(model.config.image_size)  # type: ignore[arg-type]  # an int for CLIP vision
    return model, CLIPImageProcessor(size=size, crop_size=size)


def prepare(
    request: Request, loaded: Any, cache: MutableMapping[str, Any], settings: EngineSettings
) -> ReferenceJob | None:
    """Load (or keep) the request's IP-Adapters in the model's UNet; unload them for a job
    without references. Returns what :func:`image_embeds` needs, or None."""
    base = loaded.base
    unet = base.unet
    if not request.references:
        unload(base)
        return None
    if len(request.references) > MAX_REFERENCES:
        raise InvalidRequestError(f"at most {MAX_REFERENCES} reference images in one job")
    resolved = [_resolve(reference) for reference in request.references]
    key = tuple(f"{adapter}|{adapter.stat().st_mtime_ns}" for adapter, _ in resolved)
    shapes = []
    for adapter, encoder in resolved:
        adapter_shapes = read_ip_adapter_shapes(adapter, settings.allow_pickle)
        _check_adapter(adapter, adapter_shapes, loaded)
        config = read_encoder_config(encoder)
        if config is not None and not encoder_fits(adapter_shapes, config):
            raise ModelLoadError(
                f"image encoder {encoder.name} does not fit IP-Adapter {adapter.stem} (its "
                "output has another width); pick the encoder the adapter was trained with"
            )
        shapes.append(adapter_shapes)
    if _LOADED.get(unet, ((), {}))[0] != key:
        unload(base)
        _load(base, [adapter for adapter, _ in resolved], settings, key)
    encoders, processors = [], []
    for _adapter, encoder in resolved:
        cache_key = f"encoder|{encoder.resolve()}|{loaded.dtype}|{loaded.device}"
        if cache_key not in cache:
            cache[cache_key] = load_encoder(encoder, loaded, settings)
        model, processor = cache[cache_key]
        encoders.append(model)
        processors.append(processor)
    scales = [
        style_scale(unet, reference.weight) if reference.style_only else float(reference.weight)
        for reference in request.references
    ]
    base.set_ip_adapter_scale(scales)
    return ReferenceJob(list(request.references), encoders, processors, scales)


def _load(base: Any, adapters: list[Path], settings: EngineSettings, key: tuple) -> None:
    from diffusers.models.attention_processor import AttnProcessor2_0

    from inference.models import _load_errors

    unet = base.unet
    before = dict(unet.attn_processors)
    # diffusers re-creates the self-attention processors by class without arguments, which a
    # sliced processor cannot take: load over the default ones, restore the originals on unload
    unet.set_attn_processor(AttnProcessor2_0())
    names = ", ".join(adapter.name for adapter in adapters)
    try:
        with _load_errors(f"IP-Adapter {names}"):
            states = [_state_dict(adapter, settings.allow_pickle) for adapter in adapters]
            base.load_ip_adapter(
                states, subfolder=[""] * len(states), weight_name=[""] * len(states),
                image_encoder_folder=None,
            )  # fmt: skip
    except BaseException:
        _restore(base, before)
        raise
    _LOADED[unet] = (key, before)
    log.info("loaded IP-Adapter %s", names)


def unload(base: Any) -> None:
    """Take the IP-Adapters out of the UNet (nothing when none is loaded)."""
    unet = base.unet
    held = _LOADED.pop(unet, None)
    if held is None:
        return
    _restore(base, held[1])


def _restore(base: Any, processors: dict[str, Any]) -> None:
    unet = base.unet
    if getattr(unet, "encoder_hid_proj", None) is not None or unet.config.encoder_hid_dim_type:
        base.unload_ip_adapter()
    unet.set_attn_processor(processors)


def style_scale(unet: Any, weight: float) -> dict[str, Any]:
    """InstantStyle's style blocks for ``unet``, as a ``set_ip_adapter_scale`` dict."""
    up_types = list(unet.config.up_block_types)
    block = next((i for i, kind in enumerate(up_types) if "CrossAttn" in kind), None)
    if block is None:
        raise InvalidRequestError("style only needs a UNet with cross-attention up blocks")
    if unet.config.get("addition_embed_type") == "text_time":  # SDXL: the 2nd transformer only
        count = len(unet.up_blocks[block].attentions)
        layers = [0.0] * count
        layers[min(1, count - 1)] = float(weight)
        return {"up": {f"block_{block}": layers}}
    return {"up": {f"block_{block}": float(weight)}}


# ---- embeddings ---------------------------------------------------------------------------------


def image_embeds(pipe: Any, job: ReferenceJob, guidance: bool) -> list[Any]:
    """``ip_adapter_image_embeds`` for one pipeline call: per reference (negative, positive)
    stacked when ``guidance`` (classifier-free guidance), else the positive alone."""
    import torch
    from diffusers.models.embeddings import ImageProjection
    from PIL import Image

    layers = pipe.unet.encoder_hid_proj.image_projection_layers
    out = []
    for reference, encoder, processor, layer in zip(
        job.references, job.encoders, job.processors, layers, strict=True
    ):
        image = Image.fromarray(np.ascontiguousarray(reference.image[..., :3]))
        pixels = processor(image, return_tensors="pt").pixel_values
        pixels = pixels.to(device=encoder.device, dtype=next(encoder.parameters()).dtype)
        if isinstance(layer, ImageProjection):
            positive = encoder(pixels).image_embeds
            negative = torch.zeros_like(positive)
        else:  # "plus" adapters read the penultimate hidden states, of a black image unconditioned
            positive = encoder(pixels, output_hidden_states=True).hidden_states[-2]
            negative = encoder(torch.zeros_like(pixels), output_hidden_states=True).hidden_states[
                -2
            ]
        positive, negative = positive[None], negative[None]
        out.append(torch.cat([negative, positive]) if guidance else positive)
    return out


def uses_guidance(pipe: Any, guidance_scale: float) -> bool:
    """What the pipeline's ``do_classifier_free_guidance`` will be for this call."""
    return guidance_scale > 1 and pipe.unet.config.time_cond_proj_dim is None


def reference_kwargs(pipe: Any, job: ReferenceJob | None, kwargs: dict[str, Any]) -> None:
    """Add the job's ``ip_adapter_image_embeds`` to a pipeline call's ``kwargs``."""
    if job is None:
        return
    guidance = uses_guidance(pipe, float(kwargs.get("guidance_scale", 7.0)))
    kwargs["ip_adapter_image_embeds"] = image_embeds(pipe, job, guidance)
