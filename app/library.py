"""The model library as an app service: scan, classify and hash model files in the background.

One ``ModelLibrary`` per application. It wraps ``inference.library`` (the Qt-free scanner,
classifier, hash cache) and runs it through :class:`app.background.Background`, so the UI thread
never reads a model file (except the header of a file the user drops). The model picker, the LoRA
list, the settings and the Hugging Face dialog observe it; the generation session asks it for a
checkpoint's hash and native size and resolves a recipe's LoRAs by name.

With a ``SettingsStore`` the folders come from the settings and a change of folders rescans.
Call :meth:`ModelLibrary.shutdown` before the application quits.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.background import Background, Task
from app.settings import Settings, SettingsStore
from inference.api import CancelToken
from inference.library import (
    Base,
    LibraryCache,
    ModelEntry,
    ModelFormat,
    ModelKind,
    ScanProgress,
    default_cache_path,
    default_folders,
    fill_hashes,
    hf_hub_cache,
    inspect_path,
    scan_folders,
    sha256_file,
)
from inference.library.hashing import HashFunction

__all__ = [  # what widgets need of the library: they import these from here, not from inference
    "Base",
    "ModelEntry",
    "ModelFormat",
    "ModelKind",
    "ModelLibrary",
    "ScanProgress",
    "hf_hub_cache",
    "lora_name",
    "native_size",
]

log = logging.getLogger(__name__)

LIBRARY_SETTINGS = frozenset({"model_folders", "include_hf_cache", "extra_model_files"})
REMOTE_SETTINGS = frozenset({"engine", "remote_url", "remote_token"})  # remote: the server's list
SCAN_THREAD_NAME = "impasto-library"
LORA_HASH_THREAD_NAME = "lora-hash"
LoraPair = tuple[str, float]
DIFFUSERS_LORA_FILE = "pytorch_lora_weights.safetensors"


def native_size(base: Base | str | None) -> int:
    """The resolution a checkpoint of ``base`` was trained at (what Generate asks for)."""
    if base in (Base.SDXL, Base.SDXL_REFINER, Base.SD3, Base.FLUX):
        return 1024
    if base is Base.SD2:
        return 768
    return 512


def lora_name(path: str) -> str:
    """What A1111 calls a LoRA: the file stem (a diffusers LoRA folder: the folder's name)."""
    file = Path(path)
    if file.name == DIFFUSERS_LORA_FILE:
        return file.parent.name
    return file.stem if file.suffix else file.name


class ModelLibrary(QObject):
    """The app's one model library: scans the configured folders in the background."""

    scan_started = Signal()
    scan_progress = Signal(object)  # ScanProgress (phase "scan" or "hash")
    entries_changed = Signal(list)  # list[ModelEntry]: a scan finished (hashes may still be None)
    entry_updated = Signal(object)  # ModelEntry whose hash became known
    scan_finished = Signal()  # scanning and hashing are both done (or were cancelled)

    def __init__(
        self,
        store: SettingsStore | None = None,
        *,
        folders: Iterable[str | Path] | None = None,
        include_hf_cache: bool = True,
        cache_path: Path | None = None,
        hash_function: HashFunction = sha256_file,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._folders = [Path(f) for f in folders] if folders is not None else None
        self._include_hf_cache = include_hf_cache
        self._cache = LibraryCache(cache_path or default_cache_path())
        self._hash_function = hash_function
        self._entries: list[ModelEntry] = []
        self._generation = 0
        self._jobs = 0  # started and not yet done
        self._cancel = CancelToken()  # of the current generation's jobs
        # scans and hash jobs run in order on one thread (a cancelled one returns at once)
        self._background = Background(SCAN_THREAD_NAME, latest_only=False, parent=self)
        self._lora_hashes = Background(LORA_HASH_THREAD_NAME, latest_only=False, parent=self)
        self._ignore_extra: set[str] = set()
        self._unsubscribe = store.subscribe(self._on_settings) if store is not None else None

    # ---- queries ----------------------------------------------------------------------------

    def entries(self) -> list[ModelEntry]:
        return list(self._entries)

    def entry(self, path: str | None) -> ModelEntry | None:
        """The entry listed for ``path`` (None when the library does not know the file)."""
        if not path:
            return None
        wanted = _normal(path)
        return next((e for e in self._entries if e.path in (path, wanted)), None)

    def is_scanning(self) -> bool:
        return self._jobs > 0

    def folders(self) -> tuple[list[Path], list[Path]]:
        """(folders, extra files) the next scan will look at."""
        if self._store is not None:
            settings = self._store.settings
            folders = default_folders(settings.model_folders, settings.include_hf_cache)
            return folders, [Path(p) for p in settings.extra_model_files]
        return default_folders(self._folders or [], self._include_hf_cache), []

    def loras(self) -> list[ModelEntry]:
        return [e for e in self._entries if e.kind is ModelKind.LORA]

    def find_lora(self, name: str, base: Base | None = None) -> ModelEntry | None:
        """A usable LoRA called ``name`` (file stem), preferring one made for ``base``."""
        if not name:
            return None
        named = [e for e in self.loras() if e.usable and lora_name(e.path) == name]
        fitting = [e for e in named if base is None or e.works_with(base)]
        candidates = fitting or named
        return candidates[0] if candidates else None

    def resolve_loras(
        self, entries: Any, base: Base | None = None
    ) -> tuple[list[LoraPair], list[str]]:
        """A recipe's ``loras`` ([{name, weight, hash?, path?}]) -> (path, weight) pairs, and the
        names not found. A path that no longer exists, or none at all (a parsed A1111 text), is
        looked up by name among the library's LoRAs."""
        pairs: list[LoraPair] = []
        missing: list[str] = []
        if not isinstance(entries, list | tuple):
            return pairs, missing
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            try:
                weight = float(entry.get("weight", 1.0))
            except (TypeError, ValueError):
                continue
            path = entry.get("path")
            if isinstance(path, str) and path and os.path.exists(path):
                pairs.append((path, weight))
                continue
            name = str(entry.get("name") or (lora_name(path) if path else ""))
            found = self.find_lora(name, base)
            if found is not None:
                pairs.append((found.path, weight))
            elif name:
                missing.append(name)
        return pairs, missing

    # ---- commands ---------------------------------------------------------------------------

    def rescan(self) -> None:
        """Cancel any running scan and start a fresh one; results arrive as signals."""
        self._cancel.cancel()
        self._cancel = CancelToken()
        self._generation += 1
        folders, extra = self.folders()
        generation, token = self._generation, self._cancel
        settings = self._store.settings if self._store is not None else None
        if settings is not None and settings.engine == "remote":  # the server's models
            url, key = settings.remote_url, settings.remote_token
            self._start(lambda task: self._list_server(task, generation, url, key))
            return
        self._start(lambda task: self._scan(task, token, generation, folders, extra, None))

    def _list_server(self, task: Task[None], generation: int, url: str, token: str) -> None:
        from app.engine_choice import server_entries

        try:
            entries = server_entries(url, token) if url else []
        except Exception as error:  # the picker shows no models; Generate will say why
            log.warning("cannot list the server's models: %s", error)
            entries = []
        task.post(lambda: self._on_entries(generation, entries))
        task.post(self._on_done)

    def add_file(self, path: str | Path) -> ModelEntry:
        """Add one model file (e.g. dropped on the window); remembered in the settings.

        Reads only the header here; the hash is computed in the background."""
        entry = inspect_path(path, cache=self._cache)
        self._entries = [e for e in self._entries if e.path != entry.path] + [entry]
        self.entries_changed.emit(self.entries())
        if self._store is not None and entry.usable:
            files = self._store.settings.extra_model_files
            if entry.path not in files:
                self._ignore_extra.add(entry.path)
                self._store.update(extra_model_files=[*files, entry.path])
        if entry.hashable and entry.hash is None and entry.problem is None:
            generation, token = self._generation, self._cancel
            self._start(lambda task: self._scan(task, token, generation, [], [], [entry]))
        return entry

    def warm_lora_hash(self, path: str) -> None:
        """Compute a LoRA's recipe hash in the background, so that Generate (which records it
        and runs on the UI thread) finds it cached instead of reading the whole file there."""

        def work(_task: Task[None]) -> None:
            from inference.loras import lora_hash

            try:
                lora_hash(path)
            except Exception as error:  # a missing or unreadable file is reported at Generate
                log.debug("could not hash the LoRA %s: %s", path, error)

        self._lora_hashes.submit(work)

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel, wait for the worker, stop listening to the settings. True when it stopped."""
        self._cancel.cancel()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        hashes = self._lora_hashes.shutdown(timeout_ms / 1000)
        return self._background.shutdown(timeout_ms / 1000) and hashes

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Block until the worker is idle (tests and benchmarks)."""
        hashes = self._lora_hashes.wait(timeout_ms / 1000)
        return self._background.wait(timeout_ms / 1000) and hashes

    # ---- the worker thread ------------------------------------------------------------------

    def _scan(
        self,
        task: Task[None],
        cancel: CancelToken,
        generation: int,
        folders: list[Path],
        extra: list[Path],
        hash_only: Sequence[ModelEntry] | None,
    ) -> None:
        def progress(value: ScanProgress) -> None:
            task.post(lambda: self._on_progress(generation, value))

        try:
            if hash_only is None:
                result = scan_folders(
                    folders, extra_files=extra, cache=self._cache, cancel=cancel,
                    progress=progress,
                )  # fmt: skip
                if cancel.cancelled:
                    return
                task.post(lambda: self._on_entries(generation, result.entries))
                entries: Sequence[ModelEntry] = result.entries
            else:
                entries = hash_only
            fill_hashes(
                entries,
                cache=self._cache,
                cancel=cancel,
                progress=progress,
                on_entry=lambda e: task.post(lambda: self._on_updated(generation, e)),
                hash_function=self._hash_function,
            )
        except Exception:  # a bug must not end the scan silently
            log.exception("model library scan failed")
        finally:
            task.post(self._on_done)

    # ---- back on the UI thread --------------------------------------------------------------

    def _start(self, work: Any) -> None:
        if self._jobs == 0:
            self.scan_started.emit()
        self._jobs += 1
        self._background.submit(work)

    def _on_entries(self, generation: int, entries: Sequence[ModelEntry]) -> None:
        if generation != self._generation:
            return
        self._entries = list(entries)
        self.entries_changed.emit(self.entries())

    def _on_updated(self, generation: int, entry: ModelEntry) -> None:
        if generation != self._generation:
            return
        self._entries = [entry if e.path == entry.path else e for e in self._entries]
        self.entry_updated.emit(entry)

    def _on_progress(self, generation: int, progress: ScanProgress) -> None:
        if generation == self._generation:
            self.scan_progress.emit(progress)

    def _on_done(self) -> None:
        self._jobs -= 1
        if self._jobs == 0:
            self.scan_finished.emit()

    def _on_settings(self, settings: Settings, changed: frozenset[str]) -> None:
        if not changed & (LIBRARY_SETTINGS | REMOTE_SETTINGS):
            return
        if changed == {"extra_model_files"} and set(settings.extra_model_files) <= (
            self._ignore_extra | {e.path for e in self._entries}
        ):
            return  # our own add_file: already listed
        self.rescan()


def _normal(path: str) -> str:
    try:
        return os.path.abspath(os.path.expanduser(path))
    except (ValueError, OSError):
        return path
