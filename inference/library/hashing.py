"""A1111-style model hashes (first 10 hex of SHA-256) and the cache that makes rescans instant.

The cache is one JSON file keyed by real path; an entry is trusted only while the file's size and
mtime are unchanged. It also remembers each file's classification so a rescan reads no headers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

CACHE_VERSION = 1
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
        self._dirty = False
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("model cache %s unreadable (%s); starting afresh", path, exc)
            return
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            log.info("model cache %s has another version; starting afresh", path)
            return
        files = data.get("files")
        if isinstance(files, dict):
            self._files = {str(k): v for k, v in files.items() if isinstance(v, dict)}

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
                self._dirty = True

    def save(self) -> None:
        """Write atomically (temp file, fsync, rename) when something changed."""
        if self.path is None:
            return
        with self._lock:
            if not self._dirty:
                return
            text = json.dumps({"version": CACHE_VERSION, "files": self._files}, indent=0)
            self._dirty = False
        try:
            atomic_write_text(self.path, text)
        except OSError as exc:
            log.warning("cannot write model cache %s: %s", self.path, exc)


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
