"""OpenPose figures as immutable values: people with 18 COCO body keypoints, hands and face.

Coordinates are pixels on a canvas of ``Pose.width`` x ``Pose.height`` (the document), y down.
Every edit returns a new value, so an undo step only has to keep the old one.

The JSON is the OpenPose / ControlNet exchange format::

    {"people": [{"pose_keypoints_2d": [x, y, c, ...], "hand_left_keypoints_2d": [...],
                 "hand_right_keypoints_2d": [...], "face_keypoints_2d": [...]}],
     "canvas_width": W, "canvas_height": H}

Hidden points are written as ``0, 0, 0`` and visible ones with ``c = 1.0``. On import, which points
are visible follows the file's convention unless a threshold is given: a file with a canvas size is
ControlNet's format, where sd-webui-controlnet draws only points with ``c >= 1``; OpenPose's own
output (no canvas size) marks a missing point with ``c = 0`` and any detection score above it is
shown. Coordinates are normalised when every visible one has ``|v| <= 1`` (the rule of
sd-webui-openpose-editor, whose hands sit a little outside 0..1), else pixels; or forced.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any

from inference import safe_json
from inference.api import InvalidRequestError
from inference.atomic_write import write_atomic
from inference.limits import DEFAULT_PIXEL_LIMIT, MAX_JSON_BYTES

log = logging.getLogger(__name__)

BODY_POINTS = 18
HAND_POINTS = 21
FACE_POINTS = 70
MAX_CANVAS_SIDE = 65536
MAX_PEOPLE = 256
# ControlNet's format (a canvas size given): sd-webui-controlnet hides points with c < 1.
CONTROLNET_MIN_CONFIDENCE = 1.0
# A visible point further than this many canvas sizes outside the canvas is not a pose, it is junk.
ABSURD_CANVAS_MULTIPLE = 4.0


class PoseFormatError(InvalidRequestError):
    """A pose file or JSON value is malformed; the message says where and what."""


class Joint(IntEnum):
    """The 18 body keypoints in the COCO order OpenPose / ControlNet use. Left and right are the
    person's own (a figure facing the viewer has its right shoulder on the image's left)."""

    NOSE = 0
    NECK = 1
    R_SHOULDER = 2
    R_ELBOW = 3
    R_WRIST = 4
    L_SHOULDER = 5
    L_ELBOW = 6
    L_WRIST = 7
    R_HIP = 8
    R_KNEE = 9
    R_ANKLE = 10
    L_HIP = 11
    L_KNEE = 12
    L_ANKLE = 13
    R_EYE = 14
    L_EYE = 15
    R_EAR = 16
    L_EAR = 17


class Part(StrEnum):
    BODY = "body"
    LEFT_HAND = "left_hand"
    RIGHT_HAND = "right_hand"
    FACE = "face"

    @property
    def size(self) -> int:
        return _PART_SIZES[self]

    @property
    def json_key(self) -> str:
        return _JSON_KEYS[self]


_PART_SIZES = {
    Part.BODY: BODY_POINTS,
    Part.LEFT_HAND: HAND_POINTS,
    Part.RIGHT_HAND: HAND_POINTS,
    Part.FACE: FACE_POINTS,
}
_JSON_KEYS = {
    Part.BODY: "pose_keypoints_2d",
    Part.LEFT_HAND: "hand_left_keypoints_2d",
    Part.RIGHT_HAND: "hand_right_keypoints_2d",
    Part.FACE: "face_keypoints_2d",
}

# Mirroring swaps the person's left and right: these index pairs trade places.
_BODY_MIRROR_PAIRS = ((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17))
# OpenPose face: the 68 iBUG landmarks plus the two pupils (68 right, 69 left).
_FACE_MIRROR_PAIRS = (
    *((i, 16 - i) for i in range(8)),  # jaw line
    (17, 26), (18, 25), (19, 24), (20, 23), (21, 22),  # eyebrows
    (31, 35), (32, 34),  # nostrils
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),  # eyes
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58),  # outer lips
    (60, 64), (61, 63), (65, 67),  # inner lips
    (68, 69),  # pupils
)  # fmt: skip

# OpenPose BODY_25 -> COCO 18 (drops mid-hip and the six foot points).
_BODY25_TO_COCO18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)

# A standing figure facing the viewer, in a frame 0.5 wide and 1.0 tall (y down, isotropic).
_FRAME_ASPECT = 0.5
_STANDING_FIGURE: tuple[tuple[float, float], ...] = (
    (0.25, 0.10),  # nose
    (0.25, 0.20),  # neck
    (0.125, 0.20),  # right shoulder (image left)
    (0.09, 0.37),  # right elbow
    (0.07, 0.53),  # right wrist
    (0.375, 0.20),  # left shoulder
    (0.41, 0.37),  # left elbow
    (0.43, 0.53),  # left wrist
    (0.18, 0.53),  # right hip
    (0.175, 0.75),  # right knee
    (0.175, 0.96),  # right ankle
    (0.32, 0.53),  # left hip
    (0.325, 0.75),  # left knee
    (0.325, 0.96),  # left ankle
    (0.225, 0.08),  # right eye
    (0.275, 0.08),  # left eye
    (0.195, 0.09),  # right ear
    (0.305, 0.09),  # left ear
)


@dataclass(frozen=True, slots=True)
class Keypoint:
    """One point. A hidden point keeps its position so showing it again puts it back."""

    x: float
    y: float
    visible: bool = True

    def moved_to(self, x: float, y: float) -> Keypoint:
        return Keypoint(float(x), float(y), self.visible)


Points = tuple[Keypoint, ...]
PointMap = Callable[[float, float], tuple[float, float]]


@dataclass(frozen=True)
class Person:
    """One figure: 18 body keypoints (see :class:`Joint`), optional 21-point hands and 70-point
    face. All edits return a new ``Person``."""

    body: Points
    left_hand: Points | None = None
    right_hand: Points | None = None
    face: Points | None = None

    def __post_init__(self) -> None:
        for part in Part:
            points = self.part(part)
            if points is None:
                if part is Part.BODY:
                    raise ValueError("a person needs body keypoints")
                continue
            if not isinstance(points, tuple) or len(points) != part.size:
                raise ValueError(f"{part} needs a tuple of {part.size} keypoints")

    # ---- construction --------------------------------------------------------------------

    @classmethod
    def standing(cls, x: float, y: float, width: float, height: float) -> Person:
        """A default standing figure facing the viewer, as large as fits in the box, centred."""
        if not all(math.isfinite(v) for v in (x, y, width, height)) or width <= 0 or height <= 0:
            raise ValueError(f"cannot fit a figure into the box {x}, {y}, {width} x {height}")
        scale = min(width / _FRAME_ASPECT, height)
        left = x + (width - _FRAME_ASPECT * scale) / 2
        top = y + (height - scale) / 2
        return cls(tuple(Keypoint(left + u * scale, top + v * scale) for u, v in _STANDING_FIGURE))

    # ---- queries -------------------------------------------------------------------------

    def part(self, part: Part) -> Points | None:
        return getattr(self, part.value)

    def point(self, part: Part, index: int) -> Keypoint:
        points = self.part(part)
        if points is None:
            raise KeyError(f"this person has no {part}")
        return points[index]

    def joint(self, joint: Joint) -> Keypoint:
        return self.body[joint]

    def points(self) -> Iterator[tuple[Part, int, Keypoint]]:
        """Every point (visible or hidden) with its address."""
        for part in Part:
            for index, point in enumerate(self.part(part) or ()):
                yield part, index, point

    def bounds(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) of the visible points; of all body points if none is."""
        visible = [p for _, _, p in self.points() if p.visible] or list(self.body)
        xs = [p.x for p in visible]
        ys = [p.y for p in visible]
        return min(xs), min(ys), max(xs), max(ys)

    @property
    def center(self) -> tuple[float, float]:
        left, top, right, bottom = self.bounds()
        return (left + right) / 2, (top + bottom) / 2

    # ---- single points -------------------------------------------------------------------

    def with_point(self, part: Part, index: int, point: Keypoint) -> Person:
        points = self.part(part)
        if points is None:
            raise KeyError(f"this person has no {part}")
        if not 0 <= index < len(points):
            raise IndexError(f"{part} has no point {index}")
        changed = (*points[:index], point, *points[index + 1 :])
        return replace(self, **{part.value: changed})

    def with_point_moved(self, part: Part, index: int, x: float, y: float) -> Person:
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"cannot move a point to ({x}, {y})")
        return self.with_point(part, index, self.point(part, index).moved_to(x, y))

    def with_point_visible(self, part: Part, index: int, visible: bool) -> Person:
        old = self.point(part, index)
        return self.with_point(part, index, Keypoint(old.x, old.y, bool(visible)))

    def with_joint_moved(self, joint: Joint, x: float, y: float) -> Person:
        return self.with_point_moved(Part.BODY, joint, x, y)

    def with_joint_visible(self, joint: Joint, visible: bool) -> Person:
        return self.with_point_visible(Part.BODY, joint, visible)

    def with_part(self, part: Part, points: Sequence[Keypoint] | None) -> Person:
        changes: dict[str, Any] = {part.value: None if points is None else tuple(points)}
        return replace(self, **changes)

    # ---- whole-figure transforms -----------------------------------------------------------

    def mapped(self, transform: PointMap) -> Person:
        """Every point (hidden ones too) through ``transform(x, y) -> (x, y)``."""

        def through(points: Points | None) -> Points | None:
            if points is None:
                return None
            out = []
            for p in points:
                x, y = transform(p.x, p.y)
                out.append(Keypoint(float(x), float(y), p.visible))
            return tuple(out)

        return Person(
            through(self.body),  # type: ignore[arg-type]
            through(self.left_hand),
            through(self.right_hand),
            through(self.face),
        )

    def translated(self, dx: float, dy: float) -> Person:
        _check_finite("offset", dx, dy)
        return self.mapped(lambda x, y: (x + dx, y + dy))

    def scaled(self, factor: float, center: tuple[float, float] | None = None) -> Person:
        """Uniformly scaled about ``center`` (default: the centre of the visible points)."""
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"scale factor must be a positive number, not {factor}")
        cx, cy = self.center if center is None else center
        return self.mapped(lambda x, y: (cx + (x - cx) * factor, cy + (y - cy) * factor))

    def rotated(self, degrees: float, center: tuple[float, float] | None = None) -> Person:
        """Rotated clockwise on screen (y points down) about ``center`` (default: its centre)."""
        _check_finite("angle", degrees)
        cx, cy = self.center if center is None else center
        cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))

        def turn(x: float, y: float) -> tuple[float, float]:
            dx, dy = x - cx, y - cy
            return cx + dx * cos - dy * sin, cy + dx * sin + dy * cos

        return self.mapped(turn)

    def mirrored(self, axis_x: float | None = None) -> Person:
        """Flipped left-right about the vertical line ``x = axis_x`` (default: its centre).

        The person's left and right labels are swapped as well, so a figure facing the viewer
        still faces the viewer (ControlNet reads facing direction from the limb colours)."""
        axis = self.center[0] if axis_x is None else axis_x
        flipped = self.mapped(lambda x, y: (2 * axis - x, y))
        return Person(
            _swap(flipped.body, _BODY_MIRROR_PAIRS),
            flipped.right_hand,
            flipped.left_hand,
            None if flipped.face is None else _swap(flipped.face, _FACE_MIRROR_PAIRS),
        )


@dataclass(frozen=True)
class Pose:
    """A canvas with any number of people: the content of one pose layer or pose JSON file."""

    width: int
    height: int
    people: tuple[Person, ...] = ()

    def __post_init__(self) -> None:
        _check_canvas(self.width, self.height)
        if not isinstance(self.people, tuple):
            raise ValueError("people must be a tuple")

    def with_person(self, index: int, person: Person) -> Pose:
        self._check_index(index)
        people = (*self.people[:index], person, *self.people[index + 1 :])
        return replace(self, people=people)

    def with_person_added(self, person: Person, index: int | None = None) -> Pose:
        index = len(self.people) if index is None else index
        return replace(self, people=(*self.people[:index], person, *self.people[index:]))

    def without_person(self, index: int) -> Pose:
        self._check_index(index)
        return replace(self, people=self.people[:index] + self.people[index + 1 :])

    def resized(self, width: int, height: int) -> Pose:
        """The same figures on a canvas of another size (coordinates scale with the canvas)."""
        sx, sy = width / self.width, height / self.height
        people = tuple(p.mapped(lambda x, y: (x * sx, y * sy)) for p in self.people)
        return Pose(width, height, people)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self.people):
            raise IndexError(f"there is no person {index} (the pose has {len(self.people)})")


# ---- JSON --------------------------------------------------------------------------------


def pose_to_json(pose: Pose, *, normalized: bool = False) -> dict[str, Any]:
    """The OpenPose JSON dict. Hidden points are ``0, 0, 0``; absent hands/face are ``[]``."""

    def flatten(points: Points | None) -> list[float]:
        values: list[float] = []
        for p in points or ():
            if not p.visible:
                values += [0, 0, 0]
            elif normalized:
                values += [p.x / pose.width, p.y / pose.height, 1.0]
            else:
                values += [p.x, p.y, 1.0]
        return values

    people = [
        {part.json_key: flatten(person.part(part)) for part in Part} for person in pose.people
    ]
    return {"people": people, "canvas_width": pose.width, "canvas_height": pose.height}


def dumps_pose(pose: Pose, *, normalized: bool = False, indent: int | None = None) -> str:
    import json

    return json.dumps(pose_to_json(pose, normalized=normalized), indent=indent, allow_nan=False)


def save_pose(path: str | os.PathLike[str], pose: Pose, *, normalized: bool = False) -> None:
    """Write the pose JSON atomically (temp file, fsync, rename)."""
    write_atomic(Path(path), dumps_pose(pose, normalized=normalized, indent=1).encode())


def load_pose(
    path: str | os.PathLike[str],
    *,
    canvas_size: tuple[int, int] | None = None,
    normalized: bool | None = None,
    min_confidence: float | None = None,
    pixel_limit: int = DEFAULT_PIXEL_LIMIT,
) -> Pose:
    """Read a pose JSON file (a regular file of at most 50 MB) and parse it."""
    path = Path(path)
    try:
        raw = safe_json.read_capped(path, MAX_JSON_BYTES)
    except safe_json.JSONError as err:
        raise PoseFormatError(f"cannot read pose file {path}: {err}") from None
    try:
        return parse_pose_json(
            raw,
            canvas_size=canvas_size,
            normalized=normalized,
            min_confidence=min_confidence,
            pixel_limit=pixel_limit,
        )
    except PoseFormatError as err:
        raise PoseFormatError(f"{path}: {err}") from None


def parse_pose_json(
    data: str | bytes | dict[str, Any],
    *,
    canvas_size: tuple[int, int] | None = None,
    normalized: bool | None = None,
    min_confidence: float | None = None,
    pixel_limit: int = DEFAULT_PIXEL_LIMIT,
) -> Pose:
    """Parse and validate OpenPose JSON.

    ``canvas_size`` (width, height) is used when the JSON has no ``canvas_width/height`` (as
    OpenPose's own output). ``normalized`` forces the coordinate kind; None = detect: when every
    visible coordinate has ``|v| <= 1`` the coordinates are fractions of the canvas.
    ``min_confidence``: a point is visible when its confidence is at least this (and above 0);
    None = the format's convention (1.0 for ControlNet's JSON with a canvas size, else any
    confidence above 0). The canvas may hold at most ``pixel_limit`` pixels.
    BODY_25 bodies (75 numbers) are converted to the 18 COCO keypoints.
    """
    if isinstance(data, (bytes, bytearray, str)):
        try:
            data = safe_json.loads(data)
        except safe_json.JSONError as err:
            raise PoseFormatError(str(err)) from None
    if not isinstance(data, dict):
        raise PoseFormatError(
            f'pose JSON must be an object with a "people" list, not {_json_type(data)}'
        )
    if min_confidence is None:
        has_canvas = "canvas_width" in data or "canvas_height" in data
        min_confidence = CONTROLNET_MIN_CONFIDENCE if has_canvas else 0.0
    elif not (isinstance(min_confidence, (int, float)) and 0 <= min_confidence <= 1):
        raise PoseFormatError(f"the confidence threshold must be 0..1, not {min_confidence!r}")
    width, height = _canvas_from_json(data, canvas_size, pixel_limit)
    people_json = data.get("people")
    if people_json is None:
        raise PoseFormatError('pose JSON has no "people" list')
    if not isinstance(people_json, list):
        raise PoseFormatError(f'"people" must be a list, not {_json_type(people_json)}')
    if len(people_json) > MAX_PEOPLE:
        raise PoseFormatError(f"{len(people_json)} people is too many (at most {MAX_PEOPLE})")

    raw_people = [_read_person(i, entry) for i, entry in enumerate(people_json)]

    def shown(c: float) -> bool:
        return c > 0 and c >= min_confidence

    if normalized is None:
        normalized = _looks_normalized(raw_people, shown)
    sx, sy = (width, height) if normalized else (1.0, 1.0)

    people = []
    for i, raw in enumerate(raw_people):
        parts: dict[Part, list[Keypoint] | None] = {}
        for part, triples in raw.items():
            if triples is None:
                parts[part] = None
                continue
            points = []
            for n, (x, y, c) in enumerate(triples):
                visible = shown(c)
                x, y = x * sx, y * sy
                if visible:
                    _check_not_absurd(f"people[{i}].{part.json_key} point {n}", x, y, width, height)
                points.append(Keypoint(x, y, visible))
            parts[part] = points
        people.append(_place_hidden_points(parts, width, height))
    return Pose(width, height, tuple(people))


def _canvas_from_json(
    data: dict[str, Any], fallback: tuple[int, int] | None, pixel_limit: int
) -> tuple[int, int]:
    has_w, has_h = "canvas_width" in data, "canvas_height" in data
    if not has_w and not has_h:
        if fallback is None:
            raise PoseFormatError(
                "pose JSON has no canvas_width/canvas_height; give the canvas size "
                "(for the CLI: --width and --height)"
            )
        try:
            _check_canvas(*fallback)
        except ValueError as err:
            raise PoseFormatError(str(err)) from None
        check_canvas_pixels(int(fallback[0]), int(fallback[1]), pixel_limit)
        return int(fallback[0]), int(fallback[1])
    if has_w != has_h:
        missing = "canvas_height" if has_w else "canvas_width"
        raise PoseFormatError(f"pose JSON has no {missing}")
    sizes = []
    for key in ("canvas_width", "canvas_height"):
        value = data[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value != int(value)
        ):
            raise PoseFormatError(f"{key} must be a whole number of pixels, not {value!r}")
        if not 0 < value <= MAX_CANVAS_SIDE:
            raise PoseFormatError(f"{key} {int(value)} is outside 1..{MAX_CANVAS_SIDE}")
        sizes.append(int(value))
    check_canvas_pixels(sizes[0], sizes[1], pixel_limit)
    return sizes[0], sizes[1]


def check_canvas_pixels(width: int, height: int, pixel_limit: int = DEFAULT_PIXEL_LIMIT) -> None:
    """Refuse a canvas above the document pixel limit before anything is allocated for it."""
    if width * height > pixel_limit:
        raise PoseFormatError(
            f"a {width}x{height} canvas is {width * height / 1e6:.0f} MP, above the "
            f"{pixel_limit / 1e6:.0f} MP limit"
        )


RawPerson = dict[Part, list[tuple[float, float, float]] | None]


def _read_person(index: int, entry: Any) -> RawPerson:
    where = f"people[{index}]"
    if not isinstance(entry, dict):
        raise PoseFormatError(f"{where} must be an object, not {_json_type(entry)}")
    raw: RawPerson = {}
    for part in Part:
        key = part.json_key
        values = entry.get(key)
        if values is None or values == []:
            raw[part] = [(0.0, 0.0, 0.0)] * part.size if part is Part.BODY else None
            continue
        if not isinstance(values, list):
            raise PoseFormatError(
                f"{where}.{key} must be a list of numbers, not {_json_type(values)}"
            )
        numbers = [_number(f"{where}.{key}[{n}]", v) for n, v in enumerate(values)]
        expected = part.size * 3
        if part is Part.BODY and len(numbers) == 25 * 3:
            log.info("%s: converting a BODY_25 skeleton to the 18 COCO keypoints", where)
            numbers = [v for k in _BODY25_TO_COCO18 for v in numbers[3 * k : 3 * k + 3]]
        if len(numbers) != expected:
            raise PoseFormatError(
                f"{where}.{key} has {len(numbers)} numbers; expected {expected} "
                f"({part.size} points × x, y, confidence)"
            )
        raw[part] = [tuple(numbers[k : k + 3]) for k in range(0, expected, 3)]  # type: ignore[misc]
    return raw


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PoseFormatError(f"{where} is {value!r}, not a number")
    if not math.isfinite(value):
        raise PoseFormatError(f"{where} is {value}, not a finite number")
    return float(value)


def _looks_normalized(people: list[RawPerson], shown: Callable[[float], bool]) -> bool:
    coords = [
        v
        for person in people
        for triples in person.values()
        for x, y, c in triples or ()
        if shown(c)
        for v in (x, y)
    ]
    return bool(coords) and all(abs(v) <= 1.0 for v in coords)


def _check_not_absurd(where: str, x: float, y: float, width: int, height: int) -> None:
    margin = ABSURD_CANVAS_MULTIPLE
    if not (-margin * width <= x <= (1 + margin) * width) or not (
        -margin * height <= y <= (1 + margin) * height
    ):
        raise PoseFormatError(
            f"{where} at ({x:g}, {y:g}) is far outside the {width}x{height} canvas"
        )


def _place_hidden_points(
    parts: dict[Part, list[Keypoint] | None], width: int, height: int
) -> Person:
    """Hidden points arrive as 0,0: give them a plausible place (from the standing figure fitted
    to the visible joints) so that showing one again in the editor puts it somewhere sensible."""
    body = parts[Part.BODY] or []
    visible = [i for i, p in enumerate(body) if p.visible]
    if len(visible) < len(body):
        placed = _fit_standing_figure(body, visible, width, height)
        body = [p if p.visible else Keypoint(*placed[i], False) for i, p in enumerate(body)]
    anchors = {
        Part.LEFT_HAND: body[Joint.L_WRIST],
        Part.RIGHT_HAND: body[Joint.R_WRIST],
        Part.FACE: body[Joint.NOSE],
    }
    result: dict[Part, Points | None] = {Part.BODY: tuple(body)}
    for part, anchor in anchors.items():
        points = parts[part]
        if points is None:
            result[part] = None
            continue
        shown = [p for p in points if p.visible]
        cx = sum(p.x for p in shown) / len(shown) if shown else anchor.x
        cy = sum(p.y for p in shown) / len(shown) if shown else anchor.y
        result[part] = tuple(p if p.visible else Keypoint(cx, cy, False) for p in points)
    return Person(tuple(body), result[Part.LEFT_HAND], result[Part.RIGHT_HAND], result[Part.FACE])


def _fit_standing_figure(
    body: list[Keypoint], visible: list[int], width: int, height: int
) -> list[tuple[float, float]]:
    """Least-squares similarity (scale + rotation + shift) of the standing figure onto the
    visible joints, evaluated at every joint. Complex numbers make the 2-D algebra short."""
    template = [complex(u, v) for u, v in _STANDING_FIGURE]
    if not visible:
        frame = Person.standing(0, 0, width, height)
        return [(p.x, p.y) for p in frame.body]
    targets = [complex(body[i].x, body[i].y) for i in visible]
    sources = [template[i] for i in visible]
    mean_t = sum(targets) / len(targets)
    mean_s = sum(sources) / len(sources)
    spread = sum(abs(s - mean_s) ** 2 for s in sources)
    if len(visible) >= 2 and spread > 0 and any(t != mean_t for t in targets):
        a = sum(
            (s - mean_s).conjugate() * (t - mean_t) for s, t in zip(sources, targets, strict=True)
        )
        a /= spread
    else:
        a = complex(0.5 * height, 0)  # one point: a figure half the canvas tall
    b = mean_t - a * mean_s
    return [((a * u + b).real, (a * u + b).imag) for u in template]


# ---- helpers ------------------------------------------------------------------------------


def _swap(points: Points, pairs: Sequence[tuple[int, int]]) -> Points:
    order = list(range(len(points)))
    for a, b in pairs:
        order[a], order[b] = b, a
    return tuple(points[i] for i in order)


def _check_finite(what: str, *values: float) -> None:
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{what} must be finite, not {values}")


def _check_canvas(width: int, height: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 0 < value <= MAX_CANVAS_SIDE
        ):
            raise ValueError(f"canvas {name} must be a whole number in 1..{MAX_CANVAS_SIDE}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )
