"""Finding out what a model file is, and loading it offline into cached diffusers pipelines.

- A diffusers folder loads with ``from_pretrained(local_files_only=True)``.
- A single ``.safetensors`` loads with ``from_single_file(config=<folder>, local_files_only=True)``
  where the folder is ``<stem>.config/`` next to the file when present (a diffusers config folder,
  for unusual architectures), else the bundled one for the kind detected from the weights
  (``resources/configs/``: ``sd15``, ``sd15-inpaint``, ``sd2``, ``sd2-inpaint``, ``sdxl``,
  ``sdxl-inpaint``).
  The CLIP tokenizers are built from the bundled BPE merges, so nothing is fetched from the hub.
- ``.ckpt``/``.pt``/``.bin`` (pickle) files are refused unless ``EngineSettings.allow_pickle``;
  even then only ``torch.load(weights_only=True)`` runs.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from inference.api import EngineSettings, Mode, ModelLoadError, ModelNotFoundError
from inference.library.entry import Base

log = logging.getLogger(__name__)

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "resources" / "configs"
CLIP_BPE = CONFIGS_DIR / "clip" / "bpe_simple_vocab_16e6.txt.gz"
SAFE_SUFFIXES = {".safetensors"}
PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin"}
SIDECAR_SUFFIX = ".config"

_UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"
_UNET_CONTEXT = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"


@dataclass(frozen=True)
class ModelInfo:
    """What a model is, decided from its weights (single file) or its configs (folder)."""

    path: Path
    format: str  # "folder" | "single_file"
    family: Base  # SD1, SD2 or SDXL
    inpaint: bool
    config_dir: Path | None = None  # for single files: the diffusers config folder used
    v_prediction: bool = False  # the file carries a ``v_pred`` marker key (v-prediction models)

    @property
    def name(self) -> str:
        return self.path.stem if self.format == "single_file" else self.path.name


# ---- detection ---------------------------------------------------------------------------------


def sidecar_config_dir(path: Path) -> Path:
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def _is_pickle(path: Path) -> bool:
    return path.suffix.lower() in PICKLE_SUFFIXES


def _refuse_pickle(path: Path) -> ModelLoadError:
    return ModelLoadError(
        f"{path.name} is a pickle checkpoint, which can run arbitrary code when opened; "
        "convert it to .safetensors, or allow pickle checkpoints in the settings"
    )


def read_checkpoint_shapes(path: Path, allow_pickle: bool) -> dict[str, tuple[int, ...]]:
    """Key -> shape of every tensor, without loading safetensors data."""
    if _is_pickle(path):
        if not allow_pickle:
            raise _refuse_pickle(path)
        state = _load_pickle_state(path)
        return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
    if path.suffix.lower() not in SAFE_SUFFIXES:
        raise ModelLoadError(f"{path.name}: not a model file (expected .safetensors)")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    except Exception as error:
        raise ModelLoadError(f"{path.name} is not a readable safetensors file ({error})") from None


def _load_pickle_state(path: Path) -> dict:
    """A pickle checkpoint's tensors, through ``torch.load(weights_only=True)`` only. Memory-mapped
    when the file is torch's zip format; old non-zip ``.ckpt`` files are read without mmap."""
    import zipfile

    import torch

    try:
        mmap = zipfile.is_zipfile(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's pickle-protocol notes: not the user's concern
            state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as error:
        raise ModelLoadError(f"{path.name} was not loaded: {pickle_error_text(error)}") from None
    while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path.name} holds no tensors")
    return state


def pickle_error_text(error: BaseException) -> str:
    """One line for a failed ``torch.load(weights_only=True)``: what was refused, never torch's
    advice to retry with ``weights_only=False`` (that is exactly what must not happen)."""
    text = str(error)
    if "Weights only load failed" in text or "WeightsUnpickler" in text:
        details = [
            line.strip().removeprefix("WeightsUnpickler error:").strip()
            for line in text.splitlines()
            if line.strip()
            and not line.strip().startswith(("Weights only load failed", "Check the documentation"))
            and "weights_only" not in line
        ]
        detail = next((d for d in details if d), "objects other than tensors")
        detail = detail if len(detail) <= 160 else detail[:157] + "..."
        return f"it holds more than plain tensors, which could run code ({detail})"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first = first or type(error).__name__
    return first if len(first) <= 200 else first[:197] + "..."


def refuse_pickles(paths: list[str], allow_pickle: bool) -> None:
    """Refuse pickle files among ``paths`` (LoRAs, ControlNets) before anything is loaded."""
    if allow_pickle:
        return
    for text in paths:
        path = Path(text).expanduser()
        if path.is_file() and _is_pickle(path):
            raise _refuse_pickle(path)


def detect_family(shapes: dict[str, tuple[int, ...]]) -> tuple[Base, bool]:
    """(family, inpaint) of an LDM/A1111 single-file checkpoint."""
    conv_in = shapes.get(_UNET_IN)
    if conv_in is None:
        raise ModelLoadError(
            "this file holds no Stable Diffusion UNet (is it a LoRA, VAE or ControlNet?)"
        )
    if len(conv_in) != 4:
        raise ModelLoadError(
            f"this file's UNet input layer has shape {tuple(conv_in)}, not a 4-D convolution: "
            "not a Stable Diffusion checkpoint"
        )
    inpaint = conv_in[1] == 9
    if any(k.startswith("conditioner.embedders.1.") for k in shapes):
        return Base.SDXL, inpaint
    if any(k.startswith("conditioner.embedders.0.model.") for k in shapes):
        raise ModelLoadError("SDXL refiner checkpoints are not supported; use an SDXL base model")
    if any(k.startswith("cond_stage_model.model.") for k in shapes):
        return Base.SD2, inpaint
    if any(k.startswith("cond_stage_model.transformer.") for k in shapes):
        return Base.SD1, inpaint
    context_shape = shapes.get(_UNET_CONTEXT, ())
    context = context_shape[-1] if len(context_shape) == 2 else 0
    return {768: Base.SD1, 1024: Base.SD2, 2048: Base.SDXL}.get(context, Base.SD1), inpaint


_CONFIG_NAMES = {Base.SD1: "sd15", Base.SD2: "sd2", Base.SDXL: "sdxl"}


def bundled_config_dir(family: Base | str, inpaint: bool) -> Path:
    base = Base.parse(family)
    if base not in _CONFIG_NAMES:
        raise ModelLoadError(f"no bundled configuration for {base.value} models")
    return CONFIGS_DIR / (_CONFIG_NAMES[base] + ("-inpaint" if inpaint else ""))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"cannot read {path}: {error}") from None


def _folder_family(folder: Path) -> tuple[Base, bool]:
    index = _read_json(folder / "model_index.json")
    unet = _read_json(folder / "unet" / "config.json") if (folder / "unet").is_dir() else {}
    inpaint = unet.get("in_channels", 4) == 9
    if "text_encoder_2" in index or "XL" in str(index.get("_class_name", "")):
        return Base.SDXL, inpaint
    return (Base.SD2 if unet.get("cross_attention_dim") == 1024 else Base.SD1), inpaint


def inspect_model(path: str | os.PathLike, allow_pickle: bool = False) -> ModelInfo:
    """Identify a model folder or single file; raises ModelNotFoundError / ModelLoadError."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelNotFoundError(f"model not found: {path}")
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(
                f"{path} is not a diffusers model folder (model_index.json is missing)"
            )
        family, inpaint = _folder_family(path)
        return ModelInfo(path=path, format="folder", family=family, inpaint=inpaint)
    shapes = read_checkpoint_shapes(path, allow_pickle)
    family, inpaint = detect_family(shapes)
    v_prediction = "v_pred" in shapes
    sidecar = sidecar_config_dir(path)
    if (sidecar / "model_index.json").is_file():
        config_dir = sidecar
        family, inpaint = _folder_family(sidecar)[0], inpaint
    else:
        config_dir = bundled_config_dir(family, inpaint)
    return ModelInfo(path, "single_file", family, inpaint, config_dir, v_prediction)


# ---- hashing -------------------------------------------------------------------------------------


def file_sha256(path: str | os.PathLike) -> str:
    """Full SHA-256 hex of a file, through the library's persistent cache (one per user: a new
    process does not hash an unchanged checkpoint again)."""
    from inference.library.hashing import file_sha256 as cached_sha256

    return cached_sha256(path)


def model_hash(info: ModelInfo) -> str:
    """First 10 hex digits of the SHA-256 of the model file (A1111's "Model hash").

    For a diffusers folder, the UNet weights file stands in for the checkpoint.
    """
    if info.format == "single_file":
        return file_sha256(info.path)[:10]
    unet_files = sorted((info.path / "unet").glob("diffusion_pytorch_model*.safetensors"))
    unet_files = unet_files or sorted((info.path / "unet").glob("diffusion_pytorch_model*.bin"))
    return file_sha256(unet_files[0])[:10] if unet_files else ""


# ---- tokenizers from the bundled CLIP BPE ------------------------------------------------------


def bytes_to_unicode() -> list[str]:
    """CLIP's printable stand-ins for the 256 byte values."""
    codes = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    extra = 0
    for byte in range(256):
        if byte not in codes:
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


@lru_cache(maxsize=1)
def clip_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's 49408-token vocabulary and BPE merges, derived as OpenAI's ``SimpleTokenizer``."""
    if not CLIP_BPE.is_file():
        raise ModelLoadError(
            f"the CLIP tokenizer file is missing: {CLIP_BPE} (reinstall Impasto, or copy "
            "bpe_simple_vocab_16e6.txt.gz from the open_clip package there)"
        )
    with gzip.open(CLIP_BPE) as handle:
        lines = handle.read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    symbols = bytes_to_unicode()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(tokens)}, merges  # type: ignore[return-value]


@lru_cache(maxsize=4)
def clip_tokenizer(pad_token: str = "<|endoftext|>", model_max_length: int = 77) -> Any:
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab_and_merges()
    return CLIPTokenizer(
        vocab=dict(vocab),
        merges=list(merges),  # type: ignore[arg-type]  # tokenizers takes pairs; stub says str
        pad_token=pad_token,
        model_max_length=model_max_length,
    )


def bundled_tokenizers(config_dir: Path) -> dict[str, Any]:
    """``tokenizer``/``tokenizer_2`` objects for config folders that reference the bundled BPE."""
    found = {}
    for name in ("tokenizer", "tokenizer_2"):
        config_file = config_dir / name / "tokenizer_config.json"
        if not config_file.is_file():
            continue
        config = _read_json(config_file)
        if "impasto_vocab" not in config:
            continue
        found[name] = clip_tokenizer(
            config.get("pad_token", "<|endoftext|>"), int(config.get("model_max_length", 77))
        )
    return found


# ---- pipelines -----------------------------------------------------------------------------------

_PIPELINES = {
    # (family is sdxl, controlnet) -> mode -> class name
    (False, False): {
        Mode.TXT2IMG: "StableDiffusionPipeline",
        Mode.IMG2IMG: "StableDiffusionImg2ImgPipeline",
        Mode.INPAINT: "StableDiffusionInpaintPipeline",
    },
    (True, False): {
        Mode.TXT2IMG: "StableDiffusionXLPipeline",
        Mode.IMG2IMG: "StableDiffusionXLImg2ImgPipeline",
        Mode.INPAINT: "StableDiffusionXLInpaintPipeline",
    },
    (False, True): {
        Mode.TXT2IMG: "StableDiffusionControlNetPipeline",
        Mode.IMG2IMG: "StableDiffusionControlNetImg2ImgPipeline",
        Mode.INPAINT: "StableDiffusionControlNetInpaintPipeline",
    },
    (True, True): {
        Mode.TXT2IMG: "StableDiffusionXLControlNetPipeline",
        Mode.IMG2IMG: "StableDiffusionXLControlNetImg2ImgPipeline",
        Mode.INPAINT: "StableDiffusionXLControlNetInpaintPipeline",
    },
}


def pipeline_class(family: Base | str, mode: Mode, controlnet: bool = False) -> Any:
    import diffusers

    return getattr(diffusers, _PIPELINES[(Base.parse(family) is Base.SDXL, controlnet)][mode])


def require_safetensors(folder: Path, what: str, allow_pickle: bool) -> None:
    """Refuse a model folder that holds only pickle weights unless pickles are allowed."""
    if allow_pickle or any(folder.glob("*.safetensors")):
        return
    raise ModelLoadError(
        f"{what} has no .safetensors weights (pickle .bin files run code when loaded; "
        "allow pickle files in settings to use it)"
    )


@contextlib.contextmanager
def _load_errors(what: str, hint: str = "") -> Iterator[None]:
    """Turn whatever diffusers/transformers raise while loading into ModelLoadError."""
    try:
        yield
    except (ModelLoadError, ModelNotFoundError):
        raise
    except Exception as error:
        from inference.device import is_oom

        if is_oom(error):
            raise
        log.debug("loading %s failed", what, exc_info=True)
        detail = str(error).split(". If you want")[0].strip().replace("\n", " ")
        if "expected shape" in detail and hint:
            detail = f"{hint} ({detail})"
        raise ModelLoadError(f"could not load {what}: {detail}") from None


@dataclass
class LoadedModel:
    """A loaded model: its base pipeline on the device plus the per-mode pipelines sharing it."""

    info: ModelInfo
    hash: str
    device: Any
    dtype: Any
    base: Any
    settings: EngineSettings
    scheduler_config: dict = field(default_factory=dict)
    _pipes: dict = field(default_factory=dict)

    @property
    def native_size(self) -> int:
        unet = self.base.unet
        return int(unet.config.sample_size) * int(self.base.vae_scale_factor)

    def pipeline(self, mode: Mode, controlnet: Any = None, controlnet_key: str = "") -> Any:
        """The pipeline for ``mode`` (inpainting models always use the inpaint pipeline),
        built with ``from_pipe`` so it shares every loaded component."""
        if self.info.inpaint:
            mode = Mode.INPAINT
        key = (mode, controlnet_key if controlnet is not None else "")
        if key not in self._pipes:
            from inference.device import place_pipeline

            cls = pipeline_class(self.info.family, mode, controlnet is not None)
            extra = {"controlnet": controlnet} if controlnet is not None else {}
            if type(self.base) is cls and not extra:
                pipe = self.base
            else:
                with _load_errors(f"the {mode.value} pipeline"):
                    pipe = cls.from_pipe(self.base, **extra)
                if self.settings.memory_mode != "none" or controlnet is not None:
                    place_pipeline(pipe, self.settings, self.device)
            pipe.set_progress_bar_config(disable=True)
            if controlnet is not None:
                # one ControlNet combination at a time: drop older ones, keep the plain pipes
                for old in [k for k in self._pipes if k[1] and k[1] != key[1]]:
                    del self._pipes[old]
            self._pipes[key] = pipe
        return self._pipes[key]

    def close(self) -> None:
        self._pipes.clear()
        self.base = None


def load_model(
    path: str | os.PathLike,
    settings: EngineSettings,
    vae_path: str | None = None,
) -> LoadedModel:
    """Load a model folder or single file onto the configured device (offline only)."""
    from inference import device as devices
    from inference.quiet import quiet_libraries

    quiet_libraries()  # no library chatter on load, unless --verbose (GUI and CLI alike)
    info = inspect_model(path, settings.allow_pickle)
    device = devices.choose_device(settings)
    dtype = devices.choose_dtype(device, settings.precision)
    digest = model_hash(info)
    kwargs: dict[str, Any] = {"torch_dtype": dtype, "local_files_only": True}
    if info.family is not Base.SDXL:
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    if vae_path:
        kwargs["vae"] = load_vae(vae_path, settings, dtype, info.family)
    cls = pipeline_class(info.family, Mode.INPAINT if info.inpaint else Mode.TXT2IMG)
    hint = ""
    if info.format == "single_file":
        hint = (
            f"its weights do not fit the {info.config_dir.name if info.config_dir else ''} "
            f"architecture; for a non-standard model put its diffusers config folder at "
            f"{sidecar_config_dir(info.path)}"
        )
    with _load_errors(info.name, hint), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch_dtype -> dtype rename (diffusers)
        if info.format == "folder":
            if not settings.allow_pickle:
                kwargs["use_safetensors"] = True
            pipe = cls.from_pretrained(str(info.path), **kwargs)
        else:
            assert info.config_dir is not None
            kwargs.update(bundled_tokenizers(info.config_dir))
            pipe = cls.from_single_file(str(info.path), config=str(info.config_dir), **kwargs)
    pipe.set_progress_bar_config(disable=True)
    devices.place_pipeline(pipe, settings, device)
    log.info(
        "loaded %s (%s, %s%s) on %s",
        info.name,
        info.format,
        info.family,
        ", inpainting" if info.inpaint else "",
        device,
    )
    return LoadedModel(
        info=info,
        hash=digest,
        device=device,
        dtype=dtype,
        base=pipe,
        settings=settings,
        scheduler_config=_scheduler_config(pipe, info),
    )


def _scheduler_config(pipe: Any, info: ModelInfo) -> dict:
    config = dict(pipe.scheduler.config)
    if info.v_prediction:  # ComfyUI/A1111 convention: a ``v_pred`` key marks v-prediction models
        config["prediction_type"] = "v_prediction"
        config["rescale_betas_zero_snr"] = True
        config["timestep_spacing"] = "trailing"
    return config


def load_vae(path: str, settings: EngineSettings, dtype: Any, family: Base | str = Base.SD1) -> Any:
    from diffusers import AutoencoderKL

    vae_path = Path(path).expanduser()
    if not vae_path.exists():
        raise ModelNotFoundError(f"VAE not found: {vae_path}")
    with _load_errors(f"the VAE {vae_path.name}"):
        if vae_path.is_dir():
            return AutoencoderKL.from_pretrained(
                str(vae_path), torch_dtype=dtype, local_files_only=True
            )
        if _is_pickle(vae_path) and not settings.allow_pickle:
            raise _refuse_pickle(vae_path)
        config = sidecar_config_dir(vae_path)
        if not (config / "config.json").is_file():
            sdxl = Base.parse(family) is Base.SDXL
            config = CONFIGS_DIR / ("sdxl" if sdxl else "sd15") / "vae"
        return AutoencoderKL.from_single_file(
            str(vae_path), config=str(config), torch_dtype=dtype, local_files_only=True
        )
