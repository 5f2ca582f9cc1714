"""LoRA files applied to a cached diffusers pipeline: any number, each with a weight, offline.

- kohya/A1111 (``lora_unet_*``, ``lora_te*_``) and diffusers/PEFT (``unet.*.lora_A``) files load
  through diffusers' own LoRA loading (``load_lora_weights`` + ``set_adapters``, PEFT backend).
- Loaded adapters are cached on the model (keyed by the UNet object, which every per-mode pipeline
  built with ``from_pipe`` shares) by file path + size + mtime: running the same request again
  loads nothing, and a file changed on disk is reloaded.
- Adapters not in the request are switched off (weight-0 entries too), so a request without LoRAs
  gives exactly the base model's image. Adapters stay unfused: enabling/disabling never touches the
  base weights, which is what makes "without LoRA" byte-identical to "never loaded one".
- Every failure (missing file, not a LoRA, LoRA for another base model, pickle file, shape
  mismatch) becomes ``ModelLoadError`` with a sentence the user can act on.

Recipe helpers follow AUTOMATIC1111: ``<lora:name:weight>`` prompt tags and a ``Lora hashes`` field
holding the first 12 hex digits of the SHA-256 of the file's tensor data ("AutoV3", what Civitai
matches on).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import math
import os
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.api import InvalidRequestError, ModelLoadError

log = logging.getLogger(__name__)

SAFE_SUFFIXES = {".safetensors"}
PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin"}
DIFFUSERS_LORA_FILE = "pytorch_lora_weights.safetensors"
MAX_IDLE_ADAPTERS = 8  # loaded but unused adapters kept per model for quick re-use


@dataclass(frozen=True)
class LoraFile:
    """One LoRA file on disk, identified by path + size + mtime (a changed file is a new one)."""

    path: Path
    size: int
    mtime_ns: int

    @property
    def name(self) -> str:
        """What A1111 calls the LoRA (the file stem), as in ``<lora:name:weight>``."""
        return self.path.stem if self.path.name != DIFFUSERS_LORA_FILE else self.path.parent.name

    @property
    def adapter_name(self) -> str:
        key = f"{self.path}|{self.size}|{self.mtime_ns}".encode()
        return "lora_" + hashlib.sha1(key).hexdigest()[:16]


@dataclass
class _ModelLoras:
    """LoRA state of one loaded model (its UNet and text encoders)."""

    loaded: OrderedDict[str, LoraFile] = field(default_factory=OrderedDict)  # LRU order
    active: tuple[tuple[str, float], ...] | None = ()  # None = unknown, set again next time


_states: weakref.WeakKeyDictionary[Any, _ModelLoras] = weakref.WeakKeyDictionary()
_lock = threading.RLock()


# ---- public API -----------------------------------------------------------------------------


def apply_loras(
    pipe: Any,
    loras: Sequence[tuple[str, float]],
    *,
    allow_pickle: bool = False,
    max_idle: int = MAX_IDLE_ADAPTERS,
) -> None:
    """Make ``pipe`` generate with exactly ``loras`` ((path, weight) pairs), loading what is new.

    An empty ``loras`` switches every loaded adapter off. The same path twice adds the weights.
    Raises ``ModelLoadError`` (bad file) or ``InvalidRequestError`` (weight not a number); after
    an error the pipeline still generates as before the call for requests without LoRAs.
    """
    wanted = _resolve(loras)
    unet = pipe.unet
    with _lock:
        state = _states.get(unet)
        if not wanted and (state is None or not state.loaded):
            return  # never had a LoRA: nothing to switch off, no PEFT needed
        _require_peft()
        if state is None:
            state = _states[unet] = _ModelLoras()
        for lora, _ in wanted:
            if lora.adapter_name not in state.loaded:
                _forget_older_versions(pipe, state, lora)
                state.active = None  # loading may change which adapters diffusers has active
                _load(pipe, lora, allow_pickle)
                state.loaded[lora.adapter_name] = lora
            state.loaded.move_to_end(lora.adapter_name)
        _evict_idle(pipe, state, {lora.adapter_name for lora, _ in wanted}, max_idle)
        active = tuple((lora.adapter_name, weight) for lora, weight in wanted if weight != 0)
        if active != state.active:
            _activate(pipe, active)
            state.active = active


def loaded_loras(pipe: Any) -> dict[str, Path]:
    """Adapter name -> file of every LoRA currently loaded into ``pipe``'s model (for tests/UI)."""
    with _lock:
        state = _states.get(pipe.unet)
        return {} if state is None else {n: f.path for n, f in state.loaded.items()}


def unload_loras(pipe: Any) -> None:
    """Remove every LoRA layer from the model (frees their memory; the next use reloads)."""
    with _lock:
        state = _states.pop(pipe.unet, None)
        if state is not None and state.loaded:
            with _quiet_libraries():
                pipe.unload_lora_weights()


def find_lora_file(path: str | os.PathLike) -> LoraFile:
    """The LoRA file at ``path`` (a diffusers LoRA folder means its weights file inside)."""
    file = Path(path).expanduser()
    if file.is_dir():
        inside = file / DIFFUSERS_LORA_FILE
        if not inside.is_file():
            raise ModelLoadError(f"{file} is a folder without {DIFFUSERS_LORA_FILE}: not a LoRA")
        file = inside
    try:
        file = file.resolve()
        stat = file.stat()
    except FileNotFoundError:
        raise ModelLoadError(f"LoRA not found: {file}") from None
    except OSError as error:
        raise ModelLoadError(f"cannot read the LoRA {file}: {error.strerror or error}") from None
    return LoraFile(file, stat.st_size, stat.st_mtime_ns)


# ---- recipe helpers (A1111 conventions) -----------------------------------------------------

_hash_cache: dict[tuple[str, int, int], str] = {}
_TAG = re.compile(r"<lora:([^:>]+):([^:>]+)(?::[^>]*)?>", re.IGNORECASE)


def lora_hash(path: str | os.PathLike) -> str:
    """A1111's LoRA short hash: first 12 hex of the SHA-256 of a safetensors file's bytes after
    its header (so editing metadata keeps the hash); other files hash whole. Cached by mtime."""
    lora = find_lora_file(path)
    key = (str(lora.path), lora.size, lora.mtime_ns)
    with _lock:
        if key in _hash_cache:
            return _hash_cache[key]
    digest = hashlib.sha256()
    with lora.path.open("rb") as handle:
        if lora.path.suffix.lower() in SAFE_SUFFIXES:
            header_length = int.from_bytes(handle.read(8), "little")
            handle.seek(8 + header_length)
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    value = digest.hexdigest()[:12]
    with _lock:
        _hash_cache[key] = value
    return value


def lora_prompt_tags(loras: Sequence[tuple[str, float]]) -> str:
    """``<lora:name:weight>`` tags, space-separated, as A1111 writes them into the prompt."""
    return " ".join(
        f"<lora:{_alias(find_lora_file(path).name)}:{_number(weight)}>" for path, weight in loras
    )


def prompt_with_lora_tags(prompt: str, loras: Sequence[tuple[str, float]]) -> str:
    """The prompt as A1111 would record it: the user's text followed by the LoRA tags."""
    tags = lora_prompt_tags(loras)
    return f"{prompt} {tags}".strip() if tags else prompt


def split_lora_tags(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """An A1111 prompt -> (prompt without ``<lora:...>`` tags, [(name, weight)]).

    Names are file stems; the caller looks them up in the model library."""
    found: list[tuple[str, float]] = []
    for name, weight in _TAG.findall(prompt):
        try:
            found.append((name.strip(), float(weight)))
        except ValueError:
            continue
    cleaned = re.sub(r"[ \t]{2,}", " ", _TAG.sub("", prompt)).strip()
    return cleaned, found


def lora_recipe(loras: Sequence[tuple[str, float]]) -> dict[str, Any]:
    """Recipe entries for a request's LoRAs (empty dict when there are none):

    - ``loras``: [{name, weight, hash, path}] — enough to re-run the request
    - ``lora_hashes``: A1111's ``Lora hashes`` text, ``"name: hash, name2: hash"``
    - ``lora_tags``: the ``<lora:name:weight>`` tags A1111 appends to the prompt
    """
    if not loras:
        return {}
    entries: list[dict[str, Any]] = []
    for path, weight in loras:
        lora = find_lora_file(path)
        entries.append(
            {
                "name": lora.name,
                "weight": float(weight),
                "hash": lora_hash(lora.path),
                "path": str(path),
            }
        )
    return {
        "loras": entries,
        "lora_hashes": ", ".join(f"{_alias(e['name'])}: {e['hash']}" for e in entries),
        "lora_tags": " ".join(
            f"<lora:{_alias(e['name'])}:{_number(e['weight'])}>" for e in entries
        ),
    }


def _alias(name: str) -> str:
    return name.replace(":", "").replace(",", "").replace(">", "")  # A1111 strips these too


def _number(value: float) -> str:
    value = round(float(value), 4)
    return str(int(value)) if value.is_integer() else str(value)


# ---- loading --------------------------------------------------------------------------------


def _resolve(loras: Sequence[tuple[str, float]]) -> list[tuple[LoraFile, float]]:
    """Validate weights, find the files, merge repeated files (weights add up), keep order."""
    merged: dict[LoraFile, float] = {}
    for entry in loras:
        try:
            path, weight = entry
            weight = float(weight)
        except (TypeError, ValueError):
            raise InvalidRequestError(f"a LoRA must be (path, weight), not {entry!r}") from None
        if not math.isfinite(weight):
            raise InvalidRequestError(f"the weight of LoRA {Path(path).name} is not a number")
        lora = find_lora_file(path)
        merged[lora] = merged.get(lora, 0.0) + weight
    return list(merged.items())


def _require_peft() -> None:
    if importlib.util.find_spec("peft") is None:
        raise ModelLoadError("LoRA support needs the 'peft' package: pip install peft")
    from diffusers.utils import USE_PEFT_BACKEND

    if not USE_PEFT_BACKEND:
        raise ModelLoadError("LoRA support needs newer 'peft' and 'transformers' packages")


def _load(pipe: Any, lora: LoraFile, allow_pickle: bool) -> None:
    shapes, state_dict = _read(lora, allow_pickle)
    _check_kind_and_base(pipe, lora, shapes)
    name = lora.adapter_name
    expected: dict[tuple[str, str], str] = {}  # (component, module path) -> name in the file
    if _is_kohya(shapes):
        tensors = state_dict if state_dict is not None else _load_tensors(lora)
        state_dict, expected = _kohya_to_peft(pipe, lora, tensors)
    else:
        expected = _peft_layers(shapes)
    source: Any = state_dict if state_dict is not None else str(lora.path.parent)
    kwargs: dict[str, Any] = {"adapter_name": name}
    if state_dict is None:
        kwargs.update(weight_name=lora.path.name, local_files_only=True, use_safetensors=True)
    try:
        with _quiet_libraries():
            pipe.load_lora_weights(source, **kwargs)
    except Exception as error:
        _delete_adapter(pipe, name)
        from inference.device import is_oom

        if is_oom(error):
            raise
        log.debug("loading LoRA %s failed", lora.path, exc_info=True)
        raise ModelLoadError(
            f"the LoRA {lora.name} does not fit this model ({_brief(error)})"
        ) from None
    if not any(name in names for names in pipe.get_list_adapters().values()):
        _delete_adapter(pipe, name)
        raise ModelLoadError(f"the LoRA {lora.name} changes no layer of this model")
    missing = [label for layer, label in expected.items() if not _has_adapter(pipe, layer, name)]
    if missing:
        _delete_adapter(pipe, name)
        raise ModelLoadError(
            f"the LoRA {lora.name} could not apply {len(missing)} of its {len(expected)} layers "
            f"({_some(missing)}); nothing of it was loaded"
        )
    log.info("loaded LoRA %s (%d layers)", lora.path, len(expected))


# ---- kohya/A1111 keys -> PEFT keys ----------------------------------------------------------
#
# diffusers converts kohya text-encoder attention keys to its old ``self_attn.to_q_lora`` names,
# which transformers' CLIP no longer accepts: a file with a partial attention set beside MLP layers
# lost those layers silently, and one with only a partial attention set did not load at all. So
# kohya files are converted here, layer by layer, to the PEFT form diffusers passes through as is
# (``unet.<module>.lora_A.weight``), with alpha/rank folded into ``lora_B`` so no alphas are needed.

_KOHYA_COMPONENTS = {
    "lora_unet_": "unet",
    "lora_te_": "text_encoder",
    "lora_te1_": "text_encoder",
    "lora_te2_": "text_encoder_2",
}
_KOHYA_PARTS = (".lora_down.weight", ".lora_up.weight", ".alpha")


def _stem(key: str) -> str:
    """``lora_unet_x.lora_down.weight`` / ``lora_unet_x.alpha`` -> ``lora_unet_x``."""
    return key.split(".", 1)[0]


def _is_kohya(shapes: dict[str, tuple[int, ...]]) -> bool:
    """Every key is ``lora_unet_*`` / ``lora_te*_`` with a plain down/up/alpha tensor."""
    return bool(shapes) and all(
        key.startswith(tuple(_KOHYA_COMPONENTS)) and key.endswith(_KOHYA_PARTS) for key in shapes
    )


def _load_tensors(lora: LoraFile) -> dict[str, Any]:
    from safetensors.torch import load_file

    try:
        return load_file(str(lora.path), device="cpu")
    except Exception as error:
        raise ModelLoadError(f"{lora.path.name} could not be read ({_brief(error)})") from None


def _kohya_module_names(pipe: Any, component: str, prefix: str) -> dict[str, str]:
    """kohya name (``lora_te_text_model_encoder_layers_0_self_attn_q_proj``) -> module path."""
    import torch

    model = getattr(pipe, component, None)
    if model is None:
        return {}
    names: dict[str, str] = {}
    for path, module in model.named_modules():
        if isinstance(module, torch.nn.Linear | torch.nn.Conv2d) and ".lora_" not in path:
            if path.endswith(".base_layer"):  # already wrapped by PEFT for another adapter
                path = path[: -len(".base_layer")]
            flat = path.replace(".", "_")
            names[prefix + flat] = path
            if component.startswith("text_encoder") and not path.startswith("text_model."):
                # kohya trained on transformers 4, whose CLIPTextModel nests ``text_model``
                names[prefix + "text_model_" + flat] = path
    return names


def _kohya_to_peft(
    pipe: Any, lora: LoraFile, tensors: dict[str, Any]
) -> tuple[dict[str, Any], dict[tuple[str, str], str]]:
    """PEFT-form state dict and the layers it must change, from a kohya state dict."""
    import torch

    tensors = _map_sgm_names(pipe, tensors)
    stems = sorted({_stem(key) for key in tensors})
    lookups: dict[str, dict[str, str]] = {}
    converted: dict[str, Any] = {}
    expected: dict[tuple[str, str], str] = {}
    unknown: list[str] = []
    for stem in stems:
        prefix = next(p for p in _KOHYA_COMPONENTS if stem.startswith(p))
        component = _KOHYA_COMPONENTS[prefix]
        if prefix not in lookups:
            lookups[prefix] = _kohya_module_names(pipe, component, prefix)
        path = lookups[prefix].get(stem)
        down = tensors.get(f"{stem}.lora_down.weight")
        up = tensors.get(f"{stem}.lora_up.weight")
        if path is None or down is None or up is None:
            unknown.append(stem)
            continue
        base = getattr(pipe, component).get_submodule(path)
        weight = getattr(base, "base_layer", base).weight
        down, up = _match_layer_kind(down, up, weight.dim())
        rank = down.shape[0]
        if (
            up.shape[1] != rank
            or down.shape[1] != weight.shape[1]
            or up.shape[0] != weight.shape[0]
            or down.dim() != weight.dim()
        ):
            raise ModelLoadError(
                f"the LoRA {lora.name} does not fit this model ({stem}: "
                f"{tuple(up.shape)} x {tuple(down.shape)} for a {tuple(weight.shape)} layer)"
            )
        alpha_tensor = tensors.get(f"{stem}.alpha")
        alpha = float(alpha_tensor.item()) if alpha_tensor is not None else float(rank)
        # the file's dtype is kept (as diffusers would load it); the scaling is done in float32
        converted[f"{component}.{path}.lora_A.weight"] = down.contiguous()
        converted[f"{component}.{path}.lora_B.weight"] = (
            (up.to(torch.float32) * (alpha / rank)).to(up.dtype).contiguous()
        )
        expected[(component, path)] = stem
    if unknown:
        raise ModelLoadError(
            f"the LoRA {lora.name} does not fit this model: {len(unknown)} of its "
            f"{len(stems)} layers are not in it ({_some(unknown)})"
        )
    return converted, expected


def _match_layer_kind(down: Any, up: Any, dims: int) -> tuple[Any, Any]:
    """A 1x1 convolution and a Linear are the same layer: kohya files trained with linear
    projections hold ``proj_in``/``proj_out`` as matrices where the model has 1x1 convs, and the
    other way round. Reshape such factors; anything else is left for the shape check."""
    if dims == 4 and down.dim() == 2 and up.dim() == 2:
        return down[:, :, None, None], up[:, :, None, None]
    if (
        dims == 2
        and down.dim() == 4
        and up.dim() == 4
        and down.shape[2:] == (1, 1)
        and up.shape[2:] == (1, 1)
    ):
        return down[:, :, 0, 0], up[:, :, 0, 0]
    return down, up


def _map_sgm_names(pipe: Any, tensors: dict[str, Any]) -> dict[str, Any]:
    """SDXL kohya files name UNet blocks the original way (``input_blocks_4_1``): map those to
    diffusers' block names with diffusers' own table; other files come back as they are."""
    if not any(
        p in key for key in tensors for p in ("input_blocks", "middle_block", "output_blocks")
    ):
        return tensors
    from diffusers.loaders.lora_conversion_utils import _maybe_map_sgm_blocks_to_diffusers

    unet = {k: v for k, v in tensors.items() if k.startswith("lora_unet_")}
    rest = {k: v for k, v in tensors.items() if not k.startswith("lora_unet_")}
    try:
        unet = _maybe_map_sgm_blocks_to_diffusers(unet, pipe.unet.config)
    except Exception as error:
        raise ModelLoadError(
            f"the LoRA's UNet block names are not understood ({_brief(error)})"
        ) from None
    return {**unet, **rest}


def _peft_layers(shapes: dict[str, tuple[int, ...]]) -> dict[tuple[str, str], str]:
    """The layers a diffusers/PEFT-form file (``unet.<module>.lora_A.weight``) must change."""
    layers: dict[tuple[str, str], str] = {}
    for key in shapes:
        component, _, rest = key.partition(".")
        if component in ("unet", "text_encoder", "text_encoder_2") and rest.endswith(
            ".lora_A.weight"
        ):
            path = rest[: -len(".lora_A.weight")]
            layers[(component, path)] = key[: -len(".lora_A.weight")]
    return layers


def _has_adapter(pipe: Any, layer: tuple[str, str], name: str) -> bool:
    component, path = layer
    try:
        module = getattr(pipe, component).get_submodule(path)
    except (AttributeError, ValueError):
        return False
    adapters = getattr(module, "lora_A", None)
    return adapters is not None and name in adapters


def _some(names: Sequence[str], shown: int = 3) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _read(lora: LoraFile, allow_pickle: bool) -> tuple[dict[str, tuple[int, ...]], dict | None]:
    """Tensor shapes (and, for pickle files, the state dict) without trusting the file."""
    suffix = lora.path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise ModelLoadError(
                f"{lora.path.name} is a pickle file, which can run arbitrary code when opened; "
                "use the .safetensors version of this LoRA, or allow pickle files in the settings"
            )
        return _read_pickle(lora)
    if suffix not in SAFE_SUFFIXES:
        raise ModelLoadError(f"{lora.path.name} is not a LoRA file (expected .safetensors)")
    from inference.library.header import HeaderError, read_header

    try:
        header = read_header(lora.path)
    except HeaderError as error:
        raise ModelLoadError(
            f"{lora.path.name} is not a readable safetensors file: {error}"
        ) from None
    except OSError as error:
        raise ModelLoadError(f"cannot read {lora.path.name}: {error.strerror or error}") from None
    return {key: info.shape for key, info in header.tensors.items()}, None


def _read_pickle(lora: LoraFile) -> tuple[dict[str, tuple[int, ...]], dict]:
    import torch

    try:
        state = torch.load(str(lora.path), map_location="cpu", weights_only=True)
    except Exception as error:
        from inference.models import pickle_error_text

        reason = pickle_error_text(error)
        raise ModelLoadError(f"{lora.path.name} was not loaded: {reason}") from None
    while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelLoadError(f"{lora.path.name} holds no tensors: not a LoRA")
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    return {k: tuple(v.shape) for k, v in tensors.items()}, tensors


def _check_kind_and_base(pipe: Any, lora: LoraFile, shapes: dict[str, tuple[int, ...]]) -> None:
    from inference.library.classify import classify_tensors
    from inference.library.entry import Base, ModelKind

    found = classify_tensors(shapes, lora.path.name)
    if found.kind is not ModelKind.LORA:
        what = "an unknown file" if found.kind is ModelKind.UNKNOWN else f"a {found.kind.value}"
        raise ModelLoadError(f"{lora.path.name} is not a LoRA (it looks like {what})")
    if found.problem:
        raise ModelLoadError(f"the LoRA {lora.name} cannot be used: {found.problem}")
    model_base = pipeline_base(pipe)
    if Base.UNKNOWN not in (found.base, model_base) and found.base != model_base:
        raise ModelLoadError(
            f"the LoRA {lora.name} is made for {found.base.value} models but the loaded model is "
            f"{model_base.value}; pick a {model_base.value} LoRA or switch the model"
        )


def pipeline_base(pipe: Any) -> Any:
    """The ``inference.library.entry.Base`` of a loaded pipeline, decided from its components."""
    from inference.library.entry import Base

    if getattr(pipe, "text_encoder_2", None) is not None or "XL" in type(pipe).__name__:
        return Base.SDXL
    context = getattr(pipe.unet.config, "cross_attention_dim", None)
    return Base.SD2 if context == 1024 else Base.SD1


def _activate(pipe: Any, active: tuple[tuple[str, float], ...]) -> None:
    with _quiet_libraries():
        if not active:
            pipe.disable_lora()
            return
        pipe.enable_lora()
        pipe.set_adapters([name for name, _ in active], [weight for _, weight in active])


def _forget_older_versions(pipe: Any, state: _ModelLoras, lora: LoraFile) -> None:
    """A file that changed on disk: drop the adapter loaded from its old contents."""
    for name, old in list(state.loaded.items()):
        if old.path == lora.path:
            _delete_adapter(pipe, name)
            del state.loaded[name]
            state.active = None


def _evict_idle(pipe: Any, state: _ModelLoras, keep: set[str], max_idle: int) -> None:
    idle = [name for name in state.loaded if name not in keep]  # oldest first
    for name in idle[: max(0, len(idle) - max(0, max_idle))]:
        _delete_adapter(pipe, name)
        del state.loaded[name]
        state.active = None  # PEFT picks another active adapter when it deletes one
        log.debug("evicted LoRA adapter %s", name)


def _delete_adapter(pipe: Any, name: str) -> None:
    try:
        present = any(name in names for names in pipe.get_list_adapters().values())
        if present:
            with _quiet_libraries():
                pipe.delete_adapters([name])
    except Exception:  # cleanup must never hide the error that brought us here
        log.debug("could not delete adapter %s", name, exc_info=True)


def _brief(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = (
        lines[-1] if lines and lines[0].startswith("Error(s) in loading") else " ".join(lines[:1])
    )
    text = text or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Silence diffusers/transformers chatter while loading adapters: transformers prints a
    misleading "newly initialized" load report and a progress bar for every text-encoder LoRA,
    and diffusers logs failures we already turn into ModelLoadError."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    saved = (diffusers_logging.get_verbosity(), transformers_logging.get_verbosity())
    bar = transformers_logging.is_progress_bar_enabled()
    diffusers_logging.set_verbosity(logging.CRITICAL)
    transformers_logging.set_verbosity(logging.CRITICAL)
    transformers_logging.disable_progress_bar()
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="peft")
            yield
    finally:
        diffusers_logging.set_verbosity(saved[0])
        transformers_logging.set_verbosity(saved[1])
        if bar:
            transformers_logging.enable_progress_bar()
