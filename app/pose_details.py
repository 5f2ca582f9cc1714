"""Default hands and face for a pose figure, placed from its body joints.

ControlNet's OpenPose models read 21-point hands and a 70-point face when they are drawn; a new
figure has a body only. These builders give a plausible open hand along each forearm and a neutral
face around the nose, oriented by the eyes, so the user starts from something to drag.
"""

from __future__ import annotations

import math

from inference.openpose import Joint, Keypoint, Person

# finger angles (degrees) off the forearm's direction: thumb, index, middle, ring, little
_FINGER_ANGLES = (-42.0, -16.0, 0.0, 14.0, 28.0)
_FINGER_REACH = (0.55, 0.95, 1.0, 0.92, 0.78)  # of the hand's length
_HAND_OF_FOREARM = 0.45  # hand length as a share of the forearm


def default_hand(elbow: Keypoint, wrist: Keypoint) -> tuple[Keypoint, ...]:
    """An open hand at ``wrist`` continuing the forearm: wrist, then 4 points per finger."""
    dx, dy = wrist.x - elbow.x, wrist.y - elbow.y
    forearm = math.hypot(dx, dy) or 1.0
    base = math.atan2(dy, dx)
    length = forearm * _HAND_OF_FOREARM
    points = [Keypoint(wrist.x, wrist.y, wrist.visible)]
    for angle, reach in zip(_FINGER_ANGLES, _FINGER_REACH, strict=True):
        direction = base + math.radians(angle)
        for joint in range(1, 5):
            r = length * reach * (0.25 + 0.75 * joint / 4)
            points.append(
                Keypoint(wrist.x + r * math.cos(direction), wrist.y + r * math.sin(direction))
            )
    return tuple(points)


def _face_layout() -> list[tuple[float, float]]:
    """The 70 OpenPose face points in a unit frame: x towards the figure's left eye (image
    right for a figure facing the viewer), y down, origin at the nose, 1 = half the face width."""
    pts: list[tuple[float, float]] = []
    for i in range(17):  # jaw, ear to ear under the chin
        theta = math.pi - math.pi * i / 16
        pts.append((math.cos(theta), -0.1 + 0.95 * math.sin(theta)))
    for side in (-1, 1):  # eyebrows 17-21 then 22-26, each drawn left to right
        xs = [0.8, 0.62, 0.45, 0.3, 0.15] if side < 0 else [0.15, 0.3, 0.45, 0.62, 0.8]
        for x in xs:
            pts.append((side * x, -0.55 - 0.08 * math.sin(math.pi * (x - 0.15) / 0.65)))
    for i in range(4):  # nose bridge 27-30
        pts.append((0.0, -0.4 + 0.12 * i))
    for x in (-0.2, -0.1, 0.0, 0.1, 0.2):  # nostrils 31-35
        pts.append((x, 0.12 if x else 0.15))
    for cx in (-0.4, 0.4):  # eyes 36-41 and 42-47
        for k in range(6):
            a = math.pi + 2 * math.pi * k / 6
            pts.append((cx + 0.17 * math.cos(a), -0.3 + 0.08 * math.sin(a)))
    for k in range(12):  # outer lips 48-59
        a = math.pi + 2 * math.pi * k / 12
        pts.append((0.35 * math.cos(a), 0.45 + 0.12 * math.sin(a)))
    for k in range(8):  # inner lips 60-67
        a = math.pi + 2 * math.pi * k / 8
        pts.append((0.25 * math.cos(a), 0.45 + 0.05 * math.sin(a)))
    pts += [(-0.4, -0.3), (0.4, -0.3)]  # pupils 68 (right eye), 69 (left eye)
    return pts


_FACE = _face_layout()


def default_face(person: Person) -> tuple[Keypoint, ...]:
    """A neutral face around the nose, as wide as the ears are apart, turned like the eyes."""
    nose = person.joint(Joint.NOSE)
    right_eye, left_eye = person.joint(Joint.R_EYE), person.joint(Joint.L_EYE)
    right_ear, left_ear = person.joint(Joint.R_EAR), person.joint(Joint.L_EAR)
    ex, ey = left_eye.x - right_eye.x, left_eye.y - right_eye.y
    norm = math.hypot(ex, ey) or 1.0
    ex, ey = ex / norm, ey / norm
    half = 0.5 * math.hypot(left_ear.x - right_ear.x, left_ear.y - right_ear.y) or norm
    # y axis: x axis turned 90° clockwise in image coordinates (down when the eyes are level)
    return tuple(
        Keypoint(nose.x + half * (u * ex - v * ey), nose.y + half * (u * ey + v * ex))
        for u, v in _FACE
    )


def has_details(person: Person) -> bool:
    return any(part is not None for part in (person.left_hand, person.right_hand, person.face))


def with_details(person: Person) -> Person:
    """``person`` with default hands and face (parts it already has are kept)."""
    body = person.body
    return Person(
        body,
        person.left_hand or default_hand(body[Joint.L_ELBOW], body[Joint.L_WRIST]),
        person.right_hand or default_hand(body[Joint.R_ELBOW], body[Joint.R_WRIST]),
        person.face or default_face(person),
    )


def without_details(person: Person) -> Person:
    return Person(person.body)
