"""Per-user settings: one JSON file, validated field by field, written atomically.

Plain Python (no Qt): ``SettingsStore`` keeps the current ``Settings`` and tells subscribers what
changed, so the engine, the model library and the canvas can apply changes without a restart.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from inference.api import EngineSettings, InvalidRequestError, Sampler
from inference.library.folders import default_settings_path
from inference.library.hashing import atomic_write_text

log = logging.getLogger(__name__)

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,2})?)$")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
MEMORY_MODES = ("none", "model_offload", "sequential_offload")
PREVIEW_METHODS = ("linear", "taesd", "off")
COLOR_PATTERN = re.compile(r"^#[0-9a-fA-F]{6}$")
ENGINES = ("local", "remote")
MAX_RECENT_PROMPTS = 20


class SettingsError(ValueError):
    """One or more values are invalid; ``problems`` maps field name -> reason."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in problems.items()))


@dataclass(frozen=True)
class Settings:
    # models
    model_folders: tuple[str, ...] = ()
    include_hf_cache: bool = True
    extra_model_files: tuple[str, ...] = ()  # single files added by drag and drop
    checkpoint: str = ""  # last chosen checkpoint path; "" = built-in classic engine
    vae: str = ""  # "" = the checkpoint's own VAE
    allow_pickle: bool = False
    # machine
    device: str = "auto"
    precision: str = "auto"
    memory_mode: str = "none"
    vae_tiling: bool = False
    attention_slicing: bool = False
    # previews
    preview_method: str = "linear"
    preview_every: int = 1
    taesd_path: str = ""  # "" = pick a matching TAESD from the library
    # editor
    autosave_minutes: int = 5  # 0 = off
    mask_color: str = "#ff3b6b"
    mask_opacity: float = 0.5
    max_image_megapixels: int = 100
    # generation defaults
    default_sampler: str = Sampler.EULER_A.value
    default_steps: int = 20
    default_guidance: float = 7.0
    # history: (prompt, negative prompt) pairs, newest first
    recent_prompts: tuple[tuple[str, str], ...] = ()
    # engine: this machine's, or an `impasto serve` server (app/engine_choice.py)
    engine: str = "local"  # local | remote
    remote_url: str = ""
    remote_token: str = ""

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            device=self.device,
            precision=self.precision,
            memory_mode=self.memory_mode,
            vae_tiling=self.vae_tiling,
            attention_slicing=self.attention_slicing,
            preview_method=self.preview_method,
            preview_every=self.preview_every,
            taesd_path=self.taesd_path or None,
            allow_pickle=self.allow_pickle,
        )

    @property
    def max_image_pixels(self) -> int:
        return self.max_image_megapixels * 1_000_000

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with ``changes`` validated; raises ``SettingsError`` naming every bad field."""
        problems: dict[str, str] = {}
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in FIELD_NAMES:
                problems[name] = "unknown setting"
                continue
            try:
                clean[name] = validate(name, value)
            except ValueError as exc:
                problems[name] = str(exc)
        if problems:
            raise SettingsError(problems)
        return dataclasses.replace(self, **clean)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> tuple[Settings, dict[str, Any]]:
        """Settings from saved JSON, plus the keys this version does not know (kept on save).

        Each invalid value falls back to its default with a logged warning."""
        clean: dict[str, Any] = {}
        unknown: dict[str, Any] = {}
        for name, value in data.items():
            if name not in FIELD_NAMES:
                log.warning("settings: unknown key %r ignored", name)
                unknown[name] = value
                continue
            try:
                clean[name] = validate(name, value)
            except ValueError as exc:
                log.warning("settings: %s=%r is invalid (%s); using the default", name, value, exc)
        return cls(**clean), unknown


FIELD_NAMES = frozenset(f.name for f in fields(Settings))


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _int_range(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise ValueError("must be a whole number")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return int(value)

    return check


def _float_range(low: float, high: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise ValueError("must be a number")
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}")
        return float(value)

    return check


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError(f"must be one of: {', '.join(options)}")
        return str(value)

    return check


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    return value


def _paths(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(p, str) for p in value):
        raise ValueError("must be a list of paths")
    unique: list[str] = []
    for path in value:
        if path.strip() and path not in unique:
            unique.append(path)
    return tuple(unique)


def _device(value: Any) -> str:
    if not isinstance(value, str) or not DEVICE_PATTERN.match(value.strip().lower()):
        raise ValueError("must be auto, cpu, mps, cuda or cuda:N")
    return value.strip().lower()


def _color(value: Any) -> str:
    if not isinstance(value, str) or not COLOR_PATTERN.match(value):
        raise ValueError("must be a colour like #ff3b6b")
    return value.lower()


def _sampler(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a sampler name")
    try:
        return Sampler.parse(value).value
    except InvalidRequestError as exc:
        raise ValueError(str(exc)) from None


def _server_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    url = value.strip()
    if url and not re.match(r"^https?://[^\s/]+", url):
        raise ValueError("must look like http://HOST:PORT or https://HOST")
    return url


def _token(value: Any) -> str:
    if not isinstance(value, str) or any(ch.isspace() for ch in value.strip()):
        raise ValueError("must be the server's token (one word, no spaces)")
    return value.strip()


def _prompt_pairs(value: Any) -> tuple[tuple[str, str], ...]:
    """(prompt, negative) pairs, newest first: blank prompts and repeats dropped, at most
    ``MAX_RECENT_PROMPTS`` kept."""
    if not isinstance(value, list | tuple):
        raise ValueError("must be a list of [prompt, negative prompt] pairs")
    pairs: list[tuple[str, str]] = []
    for item in value:
        if (
            not isinstance(item, list | tuple)
            or len(item) != 2
            or not all(isinstance(text, str) for text in item)
        ):
            raise ValueError("must be a list of [prompt, negative prompt] pairs")
        pair = (item[0], item[1])
        if pair[0].strip() and pair not in pairs:
            pairs.append(pair)
    return tuple(pairs[:MAX_RECENT_PROMPTS])


VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "model_folders": _paths,
    "include_hf_cache": _bool,
    "extra_model_files": _paths,
    "checkpoint": _text,
    "vae": _text,
    "allow_pickle": _bool,
    "device": _device,
    "precision": _choice(PRECISIONS),
    "memory_mode": _choice(MEMORY_MODES),
    "vae_tiling": _bool,
    "attention_slicing": _bool,
    "preview_method": _choice(PREVIEW_METHODS),
    "preview_every": _int_range(1, 100),
    "taesd_path": _text,
    "autosave_minutes": _int_range(0, 240),
    "mask_color": _color,
    "mask_opacity": _float_range(0.0, 1.0),
    "max_image_megapixels": _int_range(1, 2000),
    "default_sampler": _sampler,
    "default_steps": _int_range(1, 500),
    "default_guidance": _float_range(0.0, 50.0),
    "recent_prompts": _prompt_pairs,
    "engine": _choice(ENGINES),
    "remote_url": _server_url,
    "remote_token": _token,
}
assert set(VALIDATORS) == FIELD_NAMES, "every setting needs a validator"


def validate(name: str, value: Any) -> Any:
    """The clean value for setting ``name``; raises ``ValueError`` saying what is wrong."""
    return VALIDATORS[name](value)


SettingsListener = Callable[[Settings, frozenset[str]], None]


class SettingsStore:
    """The user's settings file plus change notification (a plain list of callbacks).

    ``path=None`` uses platformdirs' user config dir; tests pass a temp path."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_settings_path()
        self._listeners: list[SettingsListener] = []
        self._unknown: dict[str, Any] = {}
        self._settings = self._load()
        self._write_lock = threading.Lock()
        self._pending_text: str | None = None  # newest content for the background writer
        self._writer: threading.Thread | None = None

    @property
    def settings(self) -> Settings:
        return self._settings

    def _load(self) -> Settings:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Settings()
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning("settings file %s unreadable (%s); using defaults", self.path, exc)
            self._keep_broken_copy()
            return Settings()
        if not isinstance(data, dict):
            log.warning("settings file %s is not a JSON object; using defaults", self.path)
            self._keep_broken_copy()
            return Settings()
        settings, self._unknown = Settings.from_json(data)
        return settings

    def _keep_broken_copy(self) -> None:
        """Nothing lost: the unreadable file stays beside the new one as ``.bad``."""
        try:
            shutil.copy2(self.path, self.path.with_name(self.path.name + ".bad"))
        except OSError as exc:
            log.warning("cannot keep a copy of %s: %s", self.path, exc)

    def update(self, settings: Settings | None = None, /, **changes: Any) -> Settings:
        """Replace the settings (a whole ``Settings`` and/or validated field changes), save them
        atomically and notify listeners with the names of the fields that changed."""
        new = settings if settings is not None else self._settings
        if changes:
            new = new.with_changes(**changes)
        old = self._settings
        changed = frozenset(
            f.name for f in fields(Settings) if getattr(old, f.name) != getattr(new, f.name)
        )
        if not changed:
            return old
        self.save(new)
        self._settings = new
        for listener in list(self._listeners):
            try:
                listener(new, changed)
            except Exception:
                log.exception("settings listener %r failed", listener)
        return new

    def save(self, settings: Settings | None = None) -> None:
        self.flush()  # a write still pending from update_soon must not land after this one
        if (settings or self._settings).remote_token:
            _make_private(self.path)  # a server's token: owner-only before it is written
        atomic_write_text(self.path, self._text(settings))

    def _text(self, settings: Settings | None) -> str:
        data = {**self._unknown, **(settings or self._settings).to_json()}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def update_soon(self, **changes: Any) -> Settings:
        """As :meth:`update` (validated, listeners told at once), but the file is written on a
        background thread: for changes made inside a key press (the prompt history on
        Generate), where the fsync of an atomic write stalled the UI 20-80 ms. The newest
        content wins; :meth:`flush` waits for it. A failed write is logged."""
        new = self._settings.with_changes(**changes)
        old = self._settings
        changed = frozenset(
            f.name for f in fields(Settings) if getattr(old, f.name) != getattr(new, f.name)
        )
        if not changed:
            return old
        self._settings = new
        with self._write_lock:
            self._pending_text = self._text(new)
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_pending, name="impasto-settings-writer"
                )
                self._writer.start()
        for listener in list(self._listeners):
            try:
                listener(new, changed)
            except Exception:
                log.exception("settings listener %r failed", listener)
        return new

    def flush(self, timeout: float | None = 10.0) -> None:
        """Wait for a write started by :meth:`update_soon`."""
        writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join(timeout)

    def _write_pending(self) -> None:
        while True:
            with self._write_lock:
                text, self._pending_text = self._pending_text, None
                if text is None:
                    self._writer = None
                    return
            try:
                atomic_write_text(self.path, text)
            except OSError as error:
                log.warning("could not save the settings: %s", error)

    def subscribe(self, listener: SettingsListener) -> Callable[[], None]:
        """Call ``listener(settings, changed_field_names)`` after each change; returns an
        unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe


def _make_private(path: Path) -> None:
    """Mode 0600 for ``path`` (created empty if missing); atomic saves keep a file's mode."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            os.chmod(path, 0o600)
        else:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:
        log.warning("cannot make %s private: %s", path, exc)
