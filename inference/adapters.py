"""T2I-Adapters: a control model kind beside ControlNet, for txt2img, img2img and inpaint.

An adapter is given exactly like a ControlNet (a :class:`ControlInput` whose ``model_path`` is a
diffusers ``T2IAdapter`` folder) and recognised from its files. diffusers has adapter pipelines
for txt2img only, so every mode uses the same mechanism instead: the adapter features are
computed once from the control image, scaled by the weight, and handed to the UNet as
``down_intrablock_additional_residuals`` on each step inside the control's step range, by
wrapping the UNet's forward for the duration of one pipeline call. At txt2img this is exactly
what ``StableDiffusion(XL)AdapterPipeline`` computes (tests/inference/test_adapters.py proves it).

The step range: step ``i`` of the ``N`` denoising steps the pipeline runs gets the adapter when
``int(start * N) <= i < int(end * N)`` (with ``start = 0`` that is diffusers'
``adapter_conditioning_factor = end``). Several adapters sum their scaled features, as
diffusers' ``MultiAdapter`` does, each within its own range. Adapters combine with ControlNets:
the UNet adds ControlNet residuals and adapter residuals at different points.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference.api import (
    ControlInput,
    EngineSettings,
    InvalidRequestError,
    ModelLoadError,
    ModelNotFoundError,
    Request,
)
from inference.library.entry import Base

log = logging.getLogger(__name__)

ADAPTER_CLASSES = ("T2IAdapter",)
_XL_TYPES = ("full_adapter_xl",)


def read_adapter_config(path: str | Path) -> dict | None:
    """The config of a diffusers T2I-Adapter folder, or None when ``path`` is not one."""
    folder = Path(path).expanduser()
    config_file = folder / "config.json"
    if not folder.is_dir() or not config_file.is_file():
        return None
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or config.get("_class_name") not in ADAPTER_CLASSES:
        return None
    return config


def is_adapter(path: str | Path, allow_pickle: bool = False) -> bool:
    """A diffusers T2I-Adapter folder, or a single-file adapter (``.safetensors``, or an allowed
    pickle such as TencentARC's original ``t2iadapter_*.pth``)."""
    if read_adapter_config(path) is not None:
        return True
    file = Path(path).expanduser()
    if not file.is_file():
        return False
    try:
        keys = list(_file_shapes(file, allow_pickle))
    except (OSError, ModelLoadError):
        return False
    return adapter_layout(keys) is not None


# ---- single files ------------------------------------------------------------------------------

_FILE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
_SHAPES_CACHE: dict[tuple[str, int, int], dict[str, tuple[int, ...]]] = {}


def adapter_layout(keys: list[str]) -> str | None:
    """``diffusers`` (``adapter.conv_in...``), ``original`` (TencentARC's ``conv_in`` +
    ``body.N.block1``), ``light`` (the colour adapter, not supported) or None."""
    names = set(keys)
    if "adapter.conv_in.weight" in names and "adapter.body.0.resnets.0.block1.weight" in names:
        return "diffusers"
    if "conv_in.weight" in names and "body.0.block1.weight" in names:
        return "original"
    if "body.0.in_conv.weight" in names and "body.0.body.0.block1.weight" in names:
        return "light"
    return None


def _file_shapes(file: Path, allow_pickle: bool) -> dict[str, tuple[int, ...]]:
    from inference.models import _is_pickle, _refuse_pickle, read_checkpoint_shapes

    if file.suffix.lower() not in _FILE_SUFFIXES:
        return {}
    if _is_pickle(file) and not allow_pickle:
        raise _refuse_pickle(file)
    stat = file.stat()
    key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHAPES_CACHE:
        _SHAPES_CACHE[key] = read_checkpoint_shapes(file, allow_pickle)
    return _SHAPES_CACHE[key]


def original_to_diffusers(state: dict, num_res_blocks: int) -> dict:
    """TencentARC's original adapter keys -> diffusers ``T2IAdapter`` keys (full adapters)."""
    out = {}
    for key, value in state.items():
        if key.startswith("conv_in."):
            out["adapter." + key] = value
            continue
        _body, index, rest = key.split(".", 2)
        level, block = divmod(int(index), num_res_blocks)
        if rest.startswith("in_conv."):
            out[f"adapter.body.{level}.{rest}"] = value
        else:
            out[f"adapter.body.{level}.resnets.{block}.{rest}"] = value
    return out


def config_from_shapes(shapes: dict[str, tuple[int, ...]], sdxl: bool) -> dict:
    """The ``T2IAdapter`` config that fits a diffusers-layout state dict: channels and blocks
    from the shapes, input channels and downscale from ``conv_in`` (3 or 1 channels, pixel
    unshuffle 8 or 16), the type from the base it is loaded for."""
    levels = sorted({int(k.split(".")[2]) for k in shapes if k.startswith("adapter.body.")})
    channels = [int(shapes[f"adapter.body.{i}.resnets.0.block1.weight"][0]) for i in levels]
    blocks = len({k.split(".")[4] for k in shapes if k.startswith("adapter.body.0.resnets.")})
    conv_in = int(shapes["adapter.conv_in.weight"][1])
    for in_channels in (3, 1):
        factor = round((conv_in / in_channels) ** 0.5)
        if factor in (8, 16) and in_channels * factor * factor == conv_in:
            break
    else:
        raise ModelLoadError(f"a T2I-Adapter whose first layer takes {conv_in} channels")
    return {
        "in_channels": in_channels,
        "channels": channels,
        "num_res_blocks": blocks,
        "downscale_factor": factor,
        "adapter_type": "full_adapter_xl" if sdxl else "full_adapter",
    }


def _load_adapter_file(file: Path, loaded: Any, settings: EngineSettings) -> Any:
    """A single-file T2I-Adapter, its config derived from its weights (no bundled config
    needed: every size is in the shapes); a ``<stem>.config/config.json`` beside it wins."""
    import torch
    from diffusers import T2IAdapter

    from inference.models import (
        _is_pickle,
        _load_errors,
        _load_pickle_state,
        _refuse_pickle,
        sidecar_config_dir,
    )

    if _is_pickle(file) and not settings.allow_pickle:
        raise _refuse_pickle(file)
    with _load_errors(f"T2I-Adapter {file.name}"):
        if _is_pickle(file):
            state = dict(_load_pickle_state(file))
        else:
            from safetensors.torch import load_file

            state = load_file(str(file))
        layout = adapter_layout(list(state))
        if layout == "light":
            raise ModelLoadError(f"{file.name} is a light (colour) T2I-Adapter, not supported")
        if layout is None:
            raise ModelLoadError(f"{file.name} is not a T2I-Adapter")
        if layout == "original":
            state = original_to_diffusers(state, _blocks_per_level(state))
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        sidecar = sidecar_config_dir(file) / "config.json"
        if sidecar.is_file():
            config = {
                k: v
                for k, v in json.loads(sidecar.read_text(encoding="utf-8")).items()
                if not k.startswith("_")
            }
        else:
            config = config_from_shapes(shapes, Base.parse(loaded.info.family) is Base.SDXL)
        model: Any = T2IAdapter(**config)
        model.load_state_dict(state, strict=True)
    model.to(device=loaded.device, dtype=loaded.dtype or torch.float32)
    model.eval()
    log.info("loaded T2I-Adapter %s (single file, %s layout)", file.name, layout)
    return model


def _blocks_per_level(state: dict) -> int:
    """Resnet blocks per level of an original-layout adapter: the index of the first block with
    an ``in_conv`` (where the second level starts), else all blocks in one level."""
    indices = {int(k.split(".")[1]) for k in state if k.startswith("body.")}
    in_convs = sorted(
        int(k.split(".")[1]) for k in state if k.startswith("body.") and ".in_conv." in k
    )
    in_convs = [i for i in in_convs if i > 0]
    return in_convs[0] if in_convs else len(indices)


def adapter_family(config: dict) -> str:
    """``sdxl`` for ``full_adapter_xl``, else ``sd1`` (SD1.x/SD2.x adapters share a layout)."""
    return "sdxl" if config.get("adapter_type") in _XL_TYPES else "sd1"


def load_adapter(path: str, loaded: Any, settings: EngineSettings) -> Any:
    """Load a T2I-Adapter folder for the loaded base model; refuses a base mismatch."""
    from diffusers import T2IAdapter

    from inference.models import _load_errors, require_safetensors

    folder = Path(path).expanduser()
    if not folder.exists():
        raise ModelNotFoundError(f"T2I-Adapter not found: {folder}")
    if folder.is_file():
        return _load_adapter_file(folder, loaded, settings)
    config = read_adapter_config(folder)
    if config is None:
        raise ModelLoadError(f"{folder.name} is not a T2I-Adapter folder")
    require_safetensors(folder, f"T2I-Adapter {folder.name}", settings.allow_pickle)
    family = adapter_family(config)
    base_is_xl = Base.parse(loaded.info.family) is Base.SDXL
    if (family == "sdxl") != base_is_xl:
        wanted = "SDXL" if family == "sdxl" else "SD1.x"
        raise ModelLoadError(
            f"T2I-Adapter {folder.name} is for {wanted} models but {loaded.info.name} is not; "
            "pick an adapter made for this model"
        )
    with _load_errors(f"T2I-Adapter {folder.name}"):
        model = T2IAdapter.from_pretrained(
            str(folder),
            torch_dtype=loaded.dtype,
            local_files_only=True,
            use_safetensors=None if settings.allow_pickle else True,
        )
    model.to(loaded.device)
    model.eval()
    log.info("loaded T2I-Adapter %s", folder.name)
    return model


@dataclass
class AdapterJob:
    """The adapters of one job: each model with its fitted control image, weight and range."""

    models: list[Any]
    images: list[np.ndarray]  # RGB uint8 at generation size
    controls: list[ControlInput]


def split_adapters(
    request: Request, allow_pickle: bool = False
) -> tuple[Request, list[ControlInput]]:
    """The request with only its ControlNets, and its adapter controls."""
    flags = [is_adapter(c.model_path, allow_pickle) for c in request.controls]
    adapters = [c for c, flag in zip(request.controls, flags, strict=True) if flag]
    if not adapters:
        return request, []
    nets = tuple(c for c, flag in zip(request.controls, flags, strict=True) if not flag)
    return dataclasses.replace(request, controls=nets), adapters


def prepare(
    request: Request,
    loaded: Any,
    plan: Any,
    cache: MutableMapping[str, Any],
    settings: EngineSettings,
) -> tuple[Request, AdapterJob | None]:
    """Split the request's adapters off (the rest goes to ControlNet) and load them."""
    from inference.controlnets import fit_control_image

    nets_request, controls = split_adapters(request, settings.allow_pickle)
    if not controls:
        return request, None
    models = []
    for control in controls:
        path = str(Path(control.model_path).expanduser())
        key = f"{loaded.info.path}|{path}"
        if key not in cache:
            cache[key] = load_adapter(path, loaded, settings)
        models.append(cache[key])
    for model, control in zip(models, controls, strict=True):
        factor = int(model.config.downscale_factor)
        if plan.gen_width % factor or plan.gen_height % factor:
            raise InvalidRequestError(
                f"T2I-Adapter {Path(control.model_path).name} needs a generation size that is a "
                f"multiple of {factor} pixels, not {plan.gen_width}x{plan.gen_height}"
            )
    images = [fit_control_image(c, request, plan) for c in controls]
    return nets_request, AdapterJob(models, images, controls)


def adapter_states(model: Any, image: np.ndarray, weight: float) -> list[Any]:
    """The adapter's features for one control image, times ``weight`` (as diffusers does)."""
    import torch

    if int(model.config.in_channels) == 1:  # sketch/canny adapters read one grey channel
        from PIL import Image

        image = np.asarray(Image.fromarray(image).convert("L"))[..., None]
    pixels = torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    pixels = pixels.to(device=model.device, dtype=model.dtype)
    return [state * weight for state in model(pixels)]


def active(control: ControlInput, step: int, total: int) -> bool:
    return int(control.start * total) <= step < int(control.end * total)


@contextlib.contextmanager
def attached(pipe: Any, job: AdapterJob | None, kwargs: dict[str, Any]) -> Iterator[None]:
    """Feed the job's adapter residuals to ``pipe.unet`` during one ``pipe(**kwargs)`` call.

    Chains ``kwargs["callback_on_step_end"]`` to learn the step index; restores the UNet after.
    """
    if job is None:
        yield
        return
    states = [
        adapter_states(m, image, c.weight)
        for m, image, c in zip(job.models, job.images, job.controls, strict=True)
    ]
    step = [0]
    inner = kwargs.get("callback_on_step_end")

    def on_step_end(pipeline: Any, index: int, timestep: Any, tensors: dict) -> dict:
        step[0] = index + 1
        return inner(pipeline, index, timestep, tensors) if inner is not None else tensors

    kwargs["callback_on_step_end"] = on_step_end
    kwargs.setdefault("callback_on_step_end_tensor_inputs", ["latents"])
    unet = pipe.unet
    had_own = "forward" in unet.__dict__
    original = unet.forward

    def forward(sample: Any, *args: Any, **unet_kwargs: Any) -> Any:
        total = int(getattr(pipe, "num_timesteps", 0) or 0)
        residuals = _residuals_at(states, job.controls, step[0], total, sample.shape[0])
        if residuals is not None:
            unet_kwargs["down_intrablock_additional_residuals"] = residuals
        return original(sample, *args, **unet_kwargs)

    unet.forward = forward
    try:
        yield
    except RuntimeError as error:
        if "size of tensor" in str(error) or "must match the size" in str(error):
            names = ", ".join(Path(c.model_path).name for c in job.controls)
            raise ModelLoadError(
                f"T2I-Adapter {names} does not fit this model's UNet (feature shapes differ)"
            ) from None
        raise
    finally:
        if had_own:
            unet.forward = original
        else:
            del unet.forward


def _residuals_at(
    states: list[list[Any]], controls: list[ControlInput], step: int, total: int, batch: int
) -> list[Any] | None:
    summed: list[Any] | None = None
    for features, control in zip(states, controls, strict=True):
        if total and not active(control, step, total):
            continue
        if summed is None:
            summed = list(features)
        else:
            summed = [a + b for a, b in zip(summed, features, strict=True)]
    if summed is None:
        return None
    # the UNet pops from this list and adds in place: hand it fresh tensors every call
    return [s.repeat(batch // s.shape[0], 1, 1, 1) for s in summed]
