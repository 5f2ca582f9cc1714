"""Import a pose JSON file (OpenPose's output, ControlNet's or sd-webui-openpose-editor's format)
as a new pose layer, with the confidence threshold the user picks.

The file is read and validated once (``read_pose_file``); the import dialog then asks
``pose_for`` how many points a threshold shows, and ``import_pose`` adds the layer (one undo
step). Which points are visible by default follows the file's own convention (see
``inference.openpose``): ControlNet's JSON (it has a canvas size) draws only points with
confidence 1, OpenPose's own output draws every detected point (confidence above 0).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.document import Document
from app.io.errors import OpenError
from app.layers import Layer
from app.pose_edit import add_pose_layer
from inference import safe_json
from inference.limits import DEFAULT_PIXEL_LIMIT, MAX_JSON_BYTES
from inference.openpose import (
    CONTROLNET_MIN_CONFIDENCE,
    Pose,
    PoseFormatError,
    parse_pose_json,
)


@dataclass(frozen=True)
class PoseFile:
    """A pose JSON file read and checked: its data, and the convention it follows."""

    path: Path
    data: dict[str, Any]
    pixel_limit: int = DEFAULT_PIXEL_LIMIT

    @property
    def controlnet_format(self) -> bool:
        """ControlNet / openpose-editor JSON (with a canvas size), else OpenPose's output."""
        return "canvas_width" in self.data or "canvas_height" in self.data

    @property
    def default_threshold(self) -> float:
        """The format's own convention: the threshold its tools draw with."""
        return CONTROLNET_MIN_CONFIDENCE if self.controlnet_format else 0.0

    @property
    def convention(self) -> str:
        if self.controlnet_format:
            return "ControlNet's pose JSON: its tools draw only points with confidence 1"
        return "OpenPose's output: every detected point (confidence above 0) is drawn"

    @property
    def people_count(self) -> int:
        people = self.data.get("people")
        return len(people) if isinstance(people, list) else 0


def read_pose_file(
    path: str | os.PathLike[str], doc: Document, pixel_limit: int = DEFAULT_PIXEL_LIMIT
) -> PoseFile:
    """Read and validate a pose file for ``doc``; one clear line (OpenError) when it is not a
    pose Impasto can read."""
    path = Path(path)
    try:
        data = safe_json.loads(safe_json.read_capped(path, MAX_JSON_BYTES))
    except safe_json.JSONError as err:
        raise OpenError(f"{path.name} cannot be read as a pose: {err}") from None
    except OSError as err:
        raise OpenError(f"{path.name} cannot be read: {err.strerror or err}") from None
    if not isinstance(data, dict):
        raise OpenError(f'{path.name} is not a pose file (no "people" list)')
    pose_file = PoseFile(path, data, pixel_limit)
    pose_for(doc, pose_file, None)  # every error now, before the dialog
    return pose_file


def pose_for(doc: Document, pose_file: PoseFile, min_confidence: float | None) -> Pose:
    """The file's pose on ``doc``'s canvas (scaled when the file names another canvas size);
    ``min_confidence`` None = the file's convention."""
    try:
        pose = parse_pose_json(
            pose_file.data,
            canvas_size=(doc.width, doc.height),
            min_confidence=min_confidence,
            pixel_limit=pose_file.pixel_limit,
        )
    except (PoseFormatError, ValueError) as err:
        raise OpenError(f"{pose_file.path.name}: {err}") from None
    if (pose.width, pose.height) != (doc.width, doc.height):
        pose = pose.resized(doc.width, doc.height)
    return pose


def visible_points(pose: Pose) -> tuple[int, int]:
    """(shown, all) keypoints of every person."""
    shown = total = 0
    for person in pose.people:
        for _part, _index, point in person.points():
            total += 1
            shown += point.visible
    return shown, total


def import_pose(doc: Document, pose_file: PoseFile, min_confidence: float | None) -> Layer:
    """Add the file's pose as a new (active) pose layer named after the file: one undo step."""
    pose = pose_for(doc, pose_file, min_confidence)
    return add_pose_layer(doc, pose, name=pose_file.path.stem or "Pose")
