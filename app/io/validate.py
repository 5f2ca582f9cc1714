"""Typed values from untrusted file data.

Everything a project file says about a layer (stack.xml attributes, ``impasto/layers/*.json``:
extra attributes, control settings, pose keypoints) passes through here before it reaches the
model, so that a document that opens can always be saved again: a value that could not be
written back (an attribute name that is not an XML name, a non-string value, an infinite
coordinate, a weight that is text) is dropped or replaced by its default, with a log line.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from typing import Any

from app.layers import ControlSettings

log = logging.getLogger(__name__)

MAX_TEXT = 10_000  # characters of one attribute value or setting kept from a file
MAX_CANVAS_SIDE = 32768
POSE_MARGIN = 4.0  # a keypoint may lie this many canvas sizes outside the canvas
MAX_JSON_DEPTH = 64  # recipes and settings are a few levels deep

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# XML 1.0 Name without ':' (an NCName), ASCII-restricted on purpose: what we write back must be
# read by every other OpenRaster reader.
_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_CLARK = re.compile(r"\{([A-Za-z0-9:/._~%#?=+@!$;,\-]+)\}([A-Za-z_][A-Za-z0-9_.\-]*)\Z")
_COMPOSITE_OP = re.compile(r"[A-Za-z][\w\-]*:[A-Za-z][\w\-]*\Z", re.ASCII)  # psd:hLit, krita:a_b
_PARAM_KEY = re.compile(r"[^\x00-\x1f]{1,100}\Z")
DEFAULT_COMPOSITE_OP = "svg:src-over"


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (control characters, lone
    surrogates, U+FFFE/U+FFFF)."""
    return _XML_INVALID.sub("", text)


def clean_name(value: Any, default: str) -> str:
    """A layer name: text without NULs or other control characters, at most 255 characters;
    ``default`` when it is not text at all."""
    if not isinstance(value, str):
        return default
    return xml_text(value)[:255]


def xml_attr_name_ok(name: Any) -> bool:
    """A name ElementTree can write as an attribute and every XML parser reads back: an
    NCName, or ``{namespace}ncname`` (Clark notation, as ElementTree reports namespaced ones)."""
    if not isinstance(name, str) or len(name) > 200:
        return False
    if _NCNAME.match(name):
        return True
    match = _CLARK.match(name)
    return bool(match)


def clean_composite_op(value: Any) -> str:
    """An OpenRaster ``composite-op`` (``svg:multiply``, ``krita:...``); anything else becomes
    ``svg:src-over`` with a log line."""
    if isinstance(value, str) and len(value) <= 64 and _COMPOSITE_OP.match(value):
        return value
    if value is not None:
        log.info("ignoring the invalid composite-op %r", _short(value))
    return DEFAULT_COMPOSITE_OP


def clean_ora_attrs(
    value: Any, reserved: set[str], what: str, reserved_prefix: str = "\0"
) -> dict[str, str]:
    """Attributes of another app kept for the round trip: valid XML names with string values.
    The rest is dropped, one log line each."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        log.warning("%s: dropping extra attributes that are not a mapping", what)
        return {}
    kept: dict[str, str] = {}
    for key, raw in value.items():
        if not xml_attr_name_ok(key):
            log.warning("%s: dropping the attribute %s (not a valid XML name)", what, _short(key))
            continue
        if key in reserved or key.startswith(reserved_prefix):
            log.warning("%s: dropping the attribute %s (Impasto writes its own)", what, key)
            continue
        if not isinstance(raw, str) or len(raw) > MAX_TEXT:
            log.warning("%s: dropping the attribute %s (its value is not text)", what, key)
            continue
        if key == "composite-op":
            kept[key] = clean_composite_op(raw)
        else:
            kept[key] = xml_text(raw)
    return kept


# ---- control settings ----------------------------------------------------------------------


def clean_control(data: Any, what: str) -> ControlSettings | None:
    """Control settings with every field of its declared type; a wrong value takes the default."""
    if data is None:
        return None
    if not isinstance(data, dict):
        log.warning("%s: dropping control settings that are not an object", what)
        return None
    default = ControlSettings()
    values: dict[str, Any] = {}
    for field in dataclasses.fields(ControlSettings):
        if field.name not in data:
            continue
        raw = data[field.name]
        value = _typed_field(field.name, raw, getattr(default, field.name))
        if value is _INVALID:
            log.warning(
                "%s: control %s=%s is invalid; using the default", what, field.name, _short(raw)
            )
            continue
        values[field.name] = value
    return ControlSettings(**values)


_INVALID = object()


def _typed_field(name: str, raw: Any, default: Any) -> Any:
    if name in ("weight", "start", "end"):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            return _INVALID
        value = float(raw)
        return min(max(value, 0.0), 1.0) if name != "weight" else min(max(value, -10.0), 10.0)
    if name == "enabled":
        return raw if isinstance(raw, bool) else _INVALID
    if name == "model_path":
        if raw is None:
            return None
        return xml_text(raw)[:MAX_TEXT] if isinstance(raw, str) else _INVALID
    if name == "params":
        return _clean_params(raw)
    if isinstance(default, str):
        return xml_text(raw)[:200] if isinstance(raw, str) and raw else _INVALID
    return _INVALID


def _clean_params(raw: Any) -> Any:
    """Preprocessor parameters: a flat mapping of short names to numbers, text or booleans."""
    if not isinstance(raw, dict):
        return _INVALID
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _PARAM_KEY.match(key):
            continue
        if _plain_tree(value, depth=3):
            out[key] = value
        else:
            log.warning("dropping the control parameter %s=%s", _short(key), _short(value))
    return out


def _plain_tree(value: Any, depth: int) -> bool:
    """A plain value, or lists/tuples/objects of them nested at most ``depth`` deep."""
    if isinstance(value, (list, tuple)):
        return depth > 0 and len(value) <= 1024 and all(_plain_tree(v, depth - 1) for v in value)
    if isinstance(value, dict):
        return (
            depth > 0
            and len(value) <= 1024
            and all(isinstance(k, str) and _plain_tree(v, depth - 1) for k, v in value.items())
        )
    return _plain_value(value)


def _plain_value(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return abs(value) < 1 << 53
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and len(value) <= MAX_TEXT


# ---- poses ---------------------------------------------------------------------------------


class InvalidPoseError(ValueError):
    """Pose data that cannot be drawn or saved."""


def check_pose_data(data: Any) -> None:
    """Raise :class:`InvalidPoseError` unless ``data`` is Impasto's pose JSON (see
    :func:`app.io.layer_data.pose_to_data`) with a sane canvas and finite keypoints near it."""
    if not isinstance(data, dict):
        raise InvalidPoseError("the pose is not an object")
    if "openpose" in data:
        return  # checked by inference.openpose.parse_pose_json
    width, height = data.get("width"), data.get("height")
    for value in (width, height):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidPoseError(f"the pose canvas size {_short(value)} is not a whole number")
        if not 0 < value <= MAX_CANVAS_SIDE:
            raise InvalidPoseError(f"the pose canvas size {value} is outside 1..{MAX_CANVAS_SIDE}")
    assert isinstance(width, int) and isinstance(height, int)  # checked just above
    people = data.get("people")
    if not isinstance(people, list) or len(people) > 100:
        raise InvalidPoseError("the pose has no list of people (or more than 100)")
    for person in people:
        if not isinstance(person, dict):
            raise InvalidPoseError("a person of the pose is not an object")
        for points in person.values():
            if points is None:
                continue
            if not isinstance(points, list) or len(points) > 100:
                raise InvalidPoseError("a keypoint list of the pose is not a list")
            for point in points:
                _check_point(point, width, height)


def _check_point(point: Any, width: int, height: int) -> None:
    if not isinstance(point, list) or len(point) != 3:
        raise InvalidPoseError("a keypoint of the pose is not [x, y, visible]")
    x, y, visible = point
    for value, size in ((x, width), (y, height)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidPoseError(f"a keypoint coordinate {_short(value)} is not a number")
        if not math.isfinite(value) or not -POSE_MARGIN * size <= value <= (1 + POSE_MARGIN) * size:
            raise InvalidPoseError(f"a keypoint lies at {value:g}, far outside the canvas")
    if not isinstance(visible, bool):
        raise InvalidPoseError("a keypoint's visibility is not true/false")


def nesting_depth(value: Any) -> int:
    """How deeply lists and objects nest in a JSON value (iteratively: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
