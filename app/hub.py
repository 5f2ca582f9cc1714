"""Downloading a model from the Hugging Face hub, as the app does it (the dialog is its view).

Repository ids are checked here, before any thread or network; :func:`run_download` is what runs
off the UI thread (through :class:`app.background.Background`): ``inference.hub.download_model``
with its outcome as a plain value, so the dialog only shows things.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from app.background import Task
from app.settings import SettingsStore
from inference.api import Cancelled, CancelToken
from inference.hub import (
    DEFAULT_IGNORE_PATTERNS,
    HubError,
    HubOfflineError,
    HubTransport,
    dest_for,
    download_model,
)
from inference.library.entry import format_size
from inference.library.folders import APP_NAME

__all__ = [
    "DEFAULT_IGNORE_PATTERNS",
    "HubError",
    "HubJob",
    "HubOfflineError",
    "HubTransport",
    "RepoIdError",
    "default_models_root",
    "dest_for",
    "format_progress",
    "is_covered",
    "one_line",
    "parse_repo_id",
    "run_download",
]

log = logging.getLogger(__name__)

REPO_HINT = "owner/name, e.g. stabilityai/sd-turbo"
# The hub's own naming rules (letters, digits, "-", "_", "."; no "--" or ".."; no leading or
# trailing "-" / "."), so a bad id is refused here, before any thread or network.
_PART = r"[A-Za-z0-9](?:[\w.\-]{0,94}[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"^{_PART}/{_PART}$")
_URL_PREFIX = re.compile(r"^(?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/", re.IGNORECASE)
# Top-level single-file checkpoints only: a diffusers repository also holds component weights in
# sub-folders (unet/, vae/...), useless without their configs, so those are left out.
SINGLE_FILE_ALLOW = ("*.safetensors",)
SINGLE_FILE_IGNORE = (*DEFAULT_IGNORE_PATTERNS, "*/*")


class RepoIdError(ValueError):
    """The text is not a Hugging Face repository id; the message says what is expected."""


def parse_repo_id(text: str) -> str:
    """``owner/name`` from what the user typed or pasted (a hub URL is accepted too)."""
    value = text.strip()
    if _URL_PREFIX.match(value):
        value = "/".join(_URL_PREFIX.sub("", value).split("/")[:2])
    value = value.rstrip("/")
    if not value:
        raise RepoIdError(f"Enter a repository id: {REPO_HINT}")
    if not _REPO_ID.match(value) or ".." in value or "--" in value:
        raise RepoIdError(f"{value!r} is not a repository id; expected {REPO_HINT}")
    return value


def default_models_root(store: SettingsStore) -> Path:
    """The first configured model folder, or Impasto's own models folder when there is none."""
    folders = store.settings.model_folders
    if folders:
        return Path(folders[0]).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME)) / "models"


def is_covered(root: Path, folders: tuple[str, ...]) -> bool:
    """Whether the library already scans ``root`` (it is, or is inside, a configured folder)."""
    target = root.expanduser().resolve()
    for folder in folders:
        base = Path(folder).expanduser().resolve()
        if target == base or base in target.parents:
            return True
    return False


def format_progress(done: int, total: int | None, speed: float | None) -> str:
    text = format_size(done) if total is None else f"{format_size(done)} of {format_size(total)}"
    if speed is not None:
        text += f" · {format_size(int(speed))}/s"
    return text


@dataclass(frozen=True)
class HubJob:
    repo_id: str
    root: Path
    dest: Path
    allow_patterns: tuple[str, ...] | None
    ignore_patterns: tuple[str, ...]


def one_line(message: str) -> str:
    return " ".join(message.split()) or "the download failed"


def run_download(
    task: Task[tuple], job: HubJob, cancel: CancelToken, transport: HubTransport | None = None
) -> tuple:
    """Run on the worker thread: the download, with progress reported as (done, total).
    Returns ("succeeded", dest) | ("failed", one-line message, offline) | ("cancelled",)."""
    try:
        dest = download_model(
            job.repo_id,
            job.dest,
            progress=lambda done, total: task.report((done, total)),
            cancel=cancel,
            allow_patterns=job.allow_patterns,
            ignore_patterns=job.ignore_patterns,
            transport=transport,
        )
    except Cancelled:
        return ("cancelled",)
    except HubOfflineError as error:
        return ("failed", one_line(str(error)), True)
    except HubError as error:
        return ("failed", one_line(str(error)), False)
    except Exception as error:  # a bug or an odd OS error: say it in one line, log the rest
        log.exception("hub download of %s failed", job.repo_id)
        return ("failed", one_line(f"download failed: {error}"), False)
    return ("succeeded", dest)
