"""Layer kinds and the layer value object.

Raster layers keep their pixels in a bounded :class:`~app.raster.Raster`. The pose layer keeps
vector data (people x keypoints). Kind-specific settings live in plain fields so persistence can
treat every layer the same way.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.blend import NORMAL
from app.raster import Raster


class LayerKind(StrEnum):
    IMAGE = "image"  # RGBA pixels (photo, paint)
    MASK = "mask"  # one channel, 255 = regenerate
    SKETCH = "sketch"  # RGBA strokes; img2img source or scribble control
    POSE = "pose"  # OpenPose people (vector)
    CONTROL = "control"  # derived or imported control image (canny, depth, line art)
    RESULT = "result"  # RGBA generated pixels + the recipe that made them
    PREVIEW = "preview"  # transient step preview: never saved, never undone, never an input
    GROUP = "group"  # holds the layers whose parent_id is its id; no pixels of its own

    @property
    def channels(self) -> int:
        return 1 if self is LayerKind.MASK else 4

    @property
    def is_raster(self) -> bool:
        return self not in (LayerKind.POSE, LayerKind.GROUP)

    @property
    def default_name(self) -> str:
        return {
            LayerKind.IMAGE: "Layer",
            LayerKind.MASK: "Inpaint mask",
            LayerKind.SKETCH: "Sketch",
            LayerKind.POSE: "Pose",
            LayerKind.CONTROL: "Control",
            LayerKind.RESULT: "Result",
            LayerKind.PREVIEW: "Preview",
            LayerKind.GROUP: "Group",
        }[self]


# Kinds whose pixels make up the picture (what is shown, exported flat and sent to img2img).
PAINT_KINDS = frozenset({LayerKind.IMAGE, LayerKind.SKETCH, LayerKind.RESULT})


@dataclass
class ControlSettings:
    """How a control (or pose / sketch) layer feeds ControlNet."""

    control_type: str = "canny"  # openpose, scribble, lineart, canny, depth, ...
    model_path: str | None = None
    weight: float = 1.0
    start: float = 0.0
    end: float = 1.0
    enabled: bool = True
    resize_mode: str = "crop and resize"
    params: dict[str, Any] = field(default_factory=dict)  # e.g. canny thresholds


_ids = itertools.count(1)


def next_layer_id() -> int:
    return next(_ids)


@dataclass
class Layer:
    kind: LayerKind
    name: str
    raster: Raster | None = None
    visible: bool = True
    opacity: float = 1.0
    locked: bool = False
    id: int = field(default_factory=next_layer_id)
    # compositing: an ``svg:`` blend mode name kept as a string (see app/blend.py), and the group
    # the layer sits in (None: the root stack). Groups are layers of kind GROUP.
    blend_mode: str = NORMAL
    parent_id: int | None = None
    collapsed: bool = False  # GROUP: children hidden in the layers panel
    # kind-specific data
    recipe: dict[str, Any] | None = None  # RESULT: prompt, seed, model hash, ...
    control: ControlSettings | None = None  # CONTROL / POSE / SKETCH used as control
    pose: Any = None  # POSE: inference.openpose people collection (immutable value)
    extra: dict[str, Any] = field(default_factory=dict)  # unknown entries kept from files

    def __post_init__(self) -> None:
        if self.kind.is_raster and self.raster is None:
            self.raster = Raster(self.kind.channels)
        if self.raster is not None and self.raster.channels != self.kind.channels:
            raise ValueError(f"a {self.kind} layer needs {self.kind.channels}-channel pixels")

    @property
    def is_group(self) -> bool:
        return self.kind is LayerKind.GROUP

    def clone(self) -> Layer:
        """A deep copy with a new id (for duplicate)."""
        twin = copy.copy(self)
        twin.id = next_layer_id()
        twin.raster = self.raster.copy() if self.raster is not None else None
        twin.recipe = copy.deepcopy(self.recipe)
        twin.control = copy.deepcopy(self.control)
        twin.extra = copy.deepcopy(self.extra)
        return twin
