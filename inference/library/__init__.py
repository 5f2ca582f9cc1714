"""The model library: find the models a user already has and say what they are, without loading.

Typical use (off the UI thread)::

    cache = LibraryCache(default_cache_path())
    result = scan_folders(default_folders(), cache=cache, cancel=token, progress=report)
    entries = fill_hashes(result.entries, cache=cache, cancel=token, on_entry=show)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from inference.library.classify import Classification, classify_tensors
from inference.library.entry import Base, ModelEntry, ModelFormat, ModelKind, format_size
from inference.library.folders import (
    configured_folders,
    default_cache_path,
    default_settings_path,
    hf_hub_cache,
)
from inference.library.hashing import LibraryCache, sha256_file, short_hash
from inference.library.header import HeaderError, read_header
from inference.library.scanner import (
    ScanProgress,
    ScanResult,
    fill_hashes,
    inspect_path,
    scan_folders,
)
from inference.library.select import find_taesd


def default_folders(
    user_folders: Sequence[str | Path] = (), include_hf_cache: bool = True
) -> list[Path]:
    """The Hugging Face hub cache (when present and wanted) followed by the user's folders."""
    folders: list[Path] = []
    if include_hf_cache:
        cache = hf_hub_cache()
        if cache.is_dir():
            folders.append(cache)
    folders.extend(Path(f).expanduser() for f in user_folders)
    return folders


__all__ = [
    "Base",
    "Classification",
    "HeaderError",
    "LibraryCache",
    "ModelEntry",
    "ModelFormat",
    "ModelKind",
    "ScanProgress",
    "ScanResult",
    "classify_tensors",
    "configured_folders",
    "default_cache_path",
    "default_folders",
    "default_settings_path",
    "fill_hashes",
    "find_taesd",
    "format_size",
    "hf_hub_cache",
    "inspect_path",
    "read_header",
    "scan_folders",
    "sha256_file",
    "short_hash",
]
