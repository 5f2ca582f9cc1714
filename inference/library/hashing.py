"""A1111-style model hashes (first 10 hex of SHA-256) and the cache that makes rescans instant.

The cache is one JSON file keyed by real path; an entry is trusted only while the file's size and
mtime are unchanged. It also remembers each file's classification so a rescan reads no headers.
It is Impasto's only SHA-256 cache: the library, the engine's model hash (``models.model_hash``)
and ``impasto models`` all go through :func:`file_sha256`, so a checkpoint hashed once is never
hashed again by any process while it is unchanged. Saves merge with what other processes wrote.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from inference import safe_json
from inference.atomic_write import write_atomic_text

log = logging.getLogger(__name__)

CACHE_VERSION = 1
MAX_RECORDS = 20_000  # beyond this the oldest-written records are dropped on save
CHUNK_BYTES = 4 * 1024 * 1024


class CancelFlag(Protocol):
    @property
    def cancelled(self) -> bool: ...


class HashCancelled(Exception):
    pass


def short_hash(sha256: str) -> str:
    return sha256[:10]


def sha256_file(
    path: str | os.PathLike[str],
    cancel: CancelFlag | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> str:
    """SHA-256 of the whole file, checking ``cancel`` between chunks (raises ``HashCancelled``)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            if cancel is not None and cancel.cancelled:
                raise HashCancelled(str(path))
            digest.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return digest.hexdigest()


HashFunction = Callable[..., str]


class LibraryCache:
    """Thread-safe JSON cache: real path -> size, mtime, sha256 and classification."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._files: dict[str, dict[str, Any]] = {}
        self._changed: set[str] = set()
        self._dirty = False
        if path is not None:
            self._files = self._read(path)

    @staticmethod
    def _read(path: Path) -> dict[str, dict[str, Any]]:
        try:
            data = safe_json.loads(path.read_bytes(), max_depth=16)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.info("model cache %s unreadable (%s); starting afresh", path, exc)
            return {}
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            log.info("model cache %s has another version; starting afresh", path)
            return {}
        files = data.get("files")
        if not isinstance(files, dict):
            return {}
        return {str(k): v for k, v in files.items() if isinstance(v, dict)}

    def _valid(self, key: str, size: int, mtime_ns: int) -> dict[str, Any] | None:
        record = self._files.get(key)
        if record and record.get("size") == size and record.get("mtime_ns") == mtime_ns:
            return record
        return None

    def get(self, key: str, size: int, mtime_ns: int, field: str) -> Any:
        with self._lock:
            record = self._valid(key, size, mtime_ns)
            return None if record is None else record.get(field)

    def put(self, key: str, size: int, mtime_ns: int, **fields: Any) -> None:
        with self._lock:
            record = self._valid(key, size, mtime_ns)
            if record is None:
                record = {"size": size, "mtime_ns": mtime_ns}
                self._files[key] = record
            if any(record.get(name) != value for name, value in fields.items()):
                record.update(fields)
                self._changed.add(key)
                self._dirty = True

    def save(self) -> None:
        """Write atomically (temp file, fsync, rename) when something changed, merged with
        what other processes saved meanwhile (our changed records win)."""
        if self.path is None:
            return
        with self._lock:
            if not self._dirty:
                return
            merged = self._read(self.path)
            merged.update({k: self._files[k] for k in self._changed if k in self._files})
            for key, record in merged.items():
                self._files.setdefault(key, record)
            if len(merged) > MAX_RECORDS:
                merged = dict(list(merged.items())[-MAX_RECORDS:])
            text = json.dumps({"version": CACHE_VERSION, "files": merged}, indent=0)
            self._changed.clear()
            self._dirty = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic_text(self.path, text)
        except OSError as exc:
            log.info("cannot write model cache %s: %s", self.path, exc)


def atomic_write_text(path: Path, text: str) -> None:
    """Create the folder, then write ``text`` atomically (used by ``app.settings``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic_text(path, text)


_shared: LibraryCache | None = None
_shared_lock = threading.Lock()


def shared_cache() -> LibraryCache:
    """The process-wide cache on the user's cache file (see ``folders.default_cache_path``)."""
    global _shared
    from inference.library.folders import default_cache_path

    with _shared_lock:
        path = default_cache_path()
        if _shared is None or _shared.path != path:
            _shared = LibraryCache(path)
        return _shared


def file_sha256(
    path: str | os.PathLike[str],
    cache: LibraryCache | None = None,
    cancel: CancelFlag | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> str:
    """Full SHA-256 of a file, from the persistent cache while its size and mtime are unchanged;
    otherwise computed once and stored (unless the file changed while being read)."""
    cache = shared_cache() if cache is None else cache
    real = os.path.realpath(path)
    before = os.stat(real)
    known = cache.get(real, before.st_size, before.st_mtime_ns, "sha256")
    if isinstance(known, str) and len(known) == 64:
        return known
    digest = sha256_file(real, cancel=cancel, on_bytes=on_bytes)
    after = os.stat(real)
    if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns):
        cache.put(real, after.st_size, after.st_mtime_ns, sha256=digest)
        cache.save()
    return digest
