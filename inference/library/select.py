"""Choosing among library entries (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable

from inference.library.entry import Base, ModelEntry, ModelFormat, ModelKind

_FORMAT_PREFERENCE = {ModelFormat.DIFFUSERS: 0, ModelFormat.SAFETENSORS: 1, ModelFormat.PICKLE: 2}


def find_taesd(
    entries: Iterable[ModelEntry], base: Base, allow_pickle: bool = False
) -> ModelEntry | None:
    """The TAESD decoder to preview a ``base`` checkpoint with, when the settings leave the
    choice to the library: one made for that latent space (not one of unknown base),
    diffusers folders first."""
    fitting = [
        e
        for e in entries
        if e.kind is ModelKind.TAESD
        and e.usable
        and e.base is not Base.UNKNOWN
        and e.base.latent_family == base.latent_family
        and (allow_pickle or e.format is not ModelFormat.PICKLE)
    ]
    fitting.sort(key=lambda e: (_FORMAT_PREFERENCE.get(e.format, 9), e.display_name, e.path))
    return fitting[0] if fitting else None
