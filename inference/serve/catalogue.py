"""The models a server offers, found by the library scanner, referenced by name + A1111 hash.

Clients never send paths: they name a model (its file or folder name, or the library's display
name) and, when they know it, its A1111 short hash. A model the server lacks, or whose hash
differs, is a :class:`~inference.api.ModelNotFoundError` that names it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.api import ModelNotFoundError
from inference.library import LibraryCache, ModelEntry, ModelKind, fill_hashes, scan_folders
from inference.serve.wire import ModelRef

log = logging.getLogger(__name__)

KINDS = {
    "checkpoint": ModelKind.CHECKPOINT,
    "controlnet": ModelKind.CONTROLNET,
    "lora": ModelKind.LORA,
    "vae": ModelKind.VAE,
}


@dataclass(frozen=True)
class Catalogue:
    entries: tuple[ModelEntry, ...]

    @classmethod
    def scan(cls, folders: Sequence[str | Path], cache_path: Path | None = None) -> Catalogue:
        """Scan ``folders`` and hash every file (once; the hash cache keeps them)."""
        cache = LibraryCache(cache_path) if cache_path is not None else None
        entries = scan_folders(folders, cache=cache).entries
        usable = [e for e in entries if e.usable]
        hashed = fill_hashes(usable, cache=cache)
        log.info("serving %d models from %s", len(hashed), ", ".join(map(str, folders)))
        return cls(tuple(hashed))

    def resolve(self, ref: ModelRef, kind: str) -> str:
        """The path of the model ``ref`` names; raises ModelNotFoundError naming it."""
        wanted = KINDS.get(kind)
        named = [
            e
            for e in self.entries
            if (wanted is None or e.kind is wanted) and ref.name in _names(e)
        ]
        if not named:
            have = ", ".join(sorted({e.display_name for e in self.entries if e.kind is wanted}))
            raise ModelNotFoundError(
                f"this server has no {kind} named {ref.name!r}"
                + (f" (it has: {have})" if have else " (it has none)")
            )
        if ref.hash:
            matching = [e for e in named if e.hash and _same_hash(e.hash, ref.hash)]
            if not matching:
                found = ", ".join(e.hash or "no hash" for e in named)
                raise ModelNotFoundError(
                    f"this server's {kind} {ref.name!r} has hash {found}, not {ref.hash}: "
                    "it is a different file"
                )
            named = matching
        return named[0].path

    def to_wire(self) -> list[dict[str, Any]]:
        return [
            {
                "name": e.display_name,
                "kind": e.kind.value,
                "family": e.base.value,
                "inpaint": e.inpaint,
                "hash": e.hash,
                "size": e.size,
            }
            for e in self.entries
            if e.kind.value in KINDS
        ]


def _names(entry: ModelEntry) -> set[str]:
    path = Path(entry.path)
    return {entry.display_name, path.name, path.stem}


def _same_hash(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    return a.startswith(b) or b.startswith(a)
