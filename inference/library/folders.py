"""Where models live: the Hugging Face cache and the A1111 / ComfyUI folder layouts."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import platformdirs

from inference.library.entry import ModelKind

log = logging.getLogger(__name__)

APP_NAME = "impasto"

# Folder name (lower case) -> what it holds, for AUTOMATIC1111 and ComfyUI ``models/`` trees.
ROLE_FOLDERS: dict[str, ModelKind] = {
    "stable-diffusion": ModelKind.CHECKPOINT,  # A1111
    "checkpoints": ModelKind.CHECKPOINT,  # ComfyUI
    "diffusers": ModelKind.CHECKPOINT,  # ComfyUI
    "controlnet": ModelKind.CONTROLNET,  # both (A1111 "ControlNet")
    "vae": ModelKind.VAE,
    "lora": ModelKind.LORA,  # A1111
    "loras": ModelKind.LORA,  # ComfyUI
    "lycoris": ModelKind.LORA,
    "vae-approx": ModelKind.TAESD,  # A1111
    "vae_approx": ModelKind.TAESD,  # ComfyUI
    "ipadapter": ModelKind.IP_ADAPTER,  # ComfyUI (A1111 keeps them in ControlNet/)
}

# Subfolders of an A1111/ComfyUI ``models/`` folder that hold nothing the library uses.
IGNORED_MODEL_FOLDERS = frozenset(
    name.lower()
    for name in (
        "ESRGAN", "RealESRGAN", "SwinIR", "ScuNET", "LDSR", "GFPGAN", "Codeformer", "BLIP",
        "deepbooru", "karlo", "hypernetworks", "upscale_models", "clip", "clip_vision",
        "text_encoders", "style_models", "gligen", "photomaker", "insightface",
        "facerestore_models", "ultralytics", "sams", "embeddings", "unet", "diffusion_models",
    )
)  # fmt: skip

APP_MARKERS = (
    Path("models") / "Stable-diffusion",  # AUTOMATIC1111 / Forge
    Path("models") / "checkpoints",  # ComfyUI
)


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, honouring HF_HUB_CACHE and HF_HOME as huggingface_hub does."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        value = os.environ.get(variable)
        if value:
            return Path(value).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(home).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def default_cache_path() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "model_library.json"


def default_settings_path() -> Path:
    """The app's settings file (app/settings.py owns its format; the CLI only reads folders)."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / "settings.json"


def role_of(path: Path) -> ModelKind | None:
    """What an A1111/ComfyUI folder along ``path`` says its models are, nearest folder first."""
    for part in reversed(path.parts):
        role = ROLE_FOLDERS.get(part.lower())
        if role is not None:
            return role
    return None


def app_model_roots(folder: Path) -> list[Path] | None:
    """For an A1111 / ComfyUI install folder, the folders worth scanning; None for other folders.

    Scanning a whole install would crawl its virtualenv and repositories."""
    try:
        if not any((folder / marker).is_dir() for marker in APP_MARKERS):
            return None
        roots = [folder / "models"]
        extensions = folder / "extensions"
        if extensions.is_dir():  # A1111 ControlNet extension keeps models in extensions/*/models
            roots.extend(
                sorted(p / "models" for p in extensions.iterdir() if (p / "models").is_dir())
            )
    except OSError:
        return None
    return roots


def configured_folders(settings_path: Path | None = None) -> tuple[list[Path], bool, list[Path]]:
    """(model folders, include HF cache, extra files) as saved by the app's settings, leniently.

    Used by the CLI, which must not import app/. Missing or broken settings give the defaults."""
    path = settings_path or default_settings_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [], True, []
    except (OSError, ValueError) as exc:
        log.warning("cannot read settings %s (%s); using default model folders", path, exc)
        return [], True, []
    if not isinstance(data, dict):
        return [], True, []
    folders = [Path(p) for p in data.get("model_folders", []) if isinstance(p, str)]
    files = [Path(p) for p in data.get("extra_model_files", []) if isinstance(p, str)]
    include_hf = data.get("include_hf_cache", True)
    return folders, include_hf if isinstance(include_hf, bool) else True, files
