"""Which checkpoint to use when the user has not said: a sensible first pick once models appear,
and the inpaint checkpoint of the chosen model's family for inpainting.

Pure functions over the library's entries, so they are tested without widgets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from inference.library import ModelEntry, ModelKind

_NAME_NOISE = re.compile(r"[-_. ]*(inpaint(ing)?|v?\d+(\.\d+)*|fp16|pruned|ema(only)?)", re.I)
_SUFFIX = re.compile(r"\.(safetensors|ckpt|pt|bin)$", re.I)


def _checkpoints(entries: Iterable[ModelEntry]) -> list[ModelEntry]:
    return [e for e in entries if e.kind is ModelKind.CHECKPOINT and e.usable]


def _family_name(entry: ModelEntry) -> str:
    name = entry.display_name or entry.path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return _NAME_NOISE.sub("", _SUFFIX.sub("", name).lower())


def first_pick(entries: Iterable[ModelEntry], remembered: str | None = None) -> ModelEntry | None:
    """The remembered checkpoint when it is listed, else the newest general (non-inpaint)
    checkpoint, else the newest inpaint one; None when the library has no usable checkpoint."""
    checkpoints = _checkpoints(entries)
    if remembered:
        for entry in checkpoints:
            if entry.path == remembered:
                return entry
    if not checkpoints:
        return None
    return max(checkpoints, key=lambda e: (not e.inpaint, e.mtime_ns, e.path))


def inpaint_partner(entries: Iterable[ModelEntry], chosen: ModelEntry | None) -> ModelEntry | None:
    """The inpaint checkpoint of ``chosen``'s family (same base; the closest name wins), or None
    when ``chosen`` is already an inpaint model or there is none."""
    if chosen is None or chosen.inpaint:
        return None
    candidates = [
        e for e in _checkpoints(entries) if e.inpaint and e.base == chosen.base and e != chosen
    ]
    if not candidates:
        return None
    family = _family_name(chosen)
    return max(candidates, key=lambda e: (_family_name(e) == family, e.mtime_ns, e.path))
