"""Render a :class:`~inference.openpose.Pose` as the ControlNet 1.1 OpenPose annotator draws it.

OpenPose ControlNets were trained on images from that annotator (``annotator/openpose`` in
sd-webui-controlnet and controlnet_aux: ``draw_poses``), so every drawing step here follows it
exactly, including its integer truncations and drawing order. On a black RGB canvas, person by
person (a later person is drawn over an earlier one):

1. for each of the 17 limbs: a filled convex polygon from ``cv2.ellipse2Poly`` (centre = limb
   midpoint, half-axes = (half the length, 4), angle truncated to whole degrees) in 60% of the
   limb colour, truncated to whole numbers;
2. for each of the 18 joints: a filled circle of radius 4 at full colour;
3. hands (left then right): 20 bones as 2-px lines in HSV rainbow colours, then 21 blue dots of
   radius 4; 4. the face: white dots of radius 3.

Coordinates go through the annotator's normalised form: ``int(x / canvas_width * W)``.
OpenCV is imported when drawing, so the editor can import the palette without loading it.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np

from inference.openpose import Part, Person, Points, Pose

STICK_WIDTH = 4
JOINT_RADIUS = 4
HAND_LINE_THICKNESS = 2
HAND_POINT_RADIUS = 4
FACE_POINT_RADIUS = 3
LIMB_DIM = 0.6
# The annotator skips hand/face points whose integer pixel position is not above this (so points
# on row or column 0 are not drawn: a quirk kept for pixel equality).
_EPS = 0.01

# Limbs as (joint, joint), 0-based COCO indices; the annotator's first 17 of its 19 pairs.
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip

# RGB, indexed by limb for limbs and by joint for joints.
COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip

# The annotator fills limbs with ``[int(float(c) * 0.6) for c in color]``.
LIMB_COLORS: tuple[tuple[int, int, int], ...] = tuple(
    (int(float(r) * LIMB_DIM), int(float(g) * LIMB_DIM), int(float(b) * LIMB_DIM))
    for r, g, b in COLORS
)

HAND_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10),
    (10, 11), (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19),
    (19, 20),
)  # fmt: skip

# Float colours, as the annotator's matplotlib hsv_to_rgb(...) * 255 (OpenCV rounds them).
HAND_EDGE_COLORS: tuple[tuple[float, float, float], ...] = tuple(
    tuple(c * 255 for c in colorsys.hsv_to_rgb(i / len(HAND_EDGES), 1.0, 1.0))  # type: ignore[misc]
    for i in range(len(HAND_EDGES))
)
HAND_POINT_COLOR = (0, 0, 255)
FACE_POINT_COLOR = (255, 255, 255)


def render_pose(
    pose: Pose,
    width: int | None = None,
    height: int | None = None,
    *,
    body: bool = True,
    hands: bool = True,
    face: bool = True,
) -> np.ndarray:
    """The control image, RGB uint8 (height, width, 3); size defaults to the pose canvas.

    A different output size scales coordinates per axis (as the annotator does with normalised
    poses); line widths and dot sizes stay in output pixels."""
    out_w = pose.width if width is None else int(width)
    out_h = pose.height if height is None else int(height)
    if out_w <= 0 or out_h <= 0:
        raise ValueError(f"output size {out_w}x{out_h} must be positive")
    canvas = np.zeros((out_h, out_w, 3), np.uint8)
    for person in pose.people:
        if body:
            _draw_body(canvas, person, pose)
        if hands:
            for part in (Part.LEFT_HAND, Part.RIGHT_HAND):
                _draw_hand(canvas, person.part(part), pose)
        if face:
            _draw_face(canvas, person.face, pose)
    return canvas


def _normalised(pose: Pose, x: float, y: float) -> tuple[float, float]:
    return x / pose.width, y / pose.height


def _draw_body(canvas: np.ndarray, person: Person, pose: Pose) -> None:
    import cv2

    H, W = canvas.shape[:2]
    for limb_index, (a, b) in enumerate(LIMBS):
        pa, pb = person.body[a], person.body[b]
        if not (pa.visible and pb.visible):
            continue
        # numpy float64 arithmetic in the annotator's order, so truncations agree exactly
        ends = np.array([_normalised(pose, pa.x, pa.y), _normalised(pose, pb.x, pb.y)])
        xs = ends[:, 0] * float(W)
        ys = ends[:, 1] * float(H)
        mid_x, mid_y = np.mean(xs), np.mean(ys)
        length = ((ys[0] - ys[1]) ** 2 + (xs[0] - xs[1]) ** 2) ** 0.5
        angle = math.degrees(math.atan2(ys[0] - ys[1], xs[0] - xs[1]))
        polygon = cv2.ellipse2Poly(
            (int(mid_x), int(mid_y)), (int(length / 2), STICK_WIDTH), int(angle), 0, 360, 1
        )
        # the stubs type ellipse2Poly's result as nested sequences; it is an int32 ndarray
        cv2.fillConvexPoly(canvas, polygon, LIMB_COLORS[limb_index])  # type: ignore[call-overload]
    for joint, point in enumerate(person.body):
        if not point.visible:
            continue
        x, y = _normalised(pose, point.x, point.y)
        center = (int(x * W), int(y * H))
        cv2.circle(canvas, center, JOINT_RADIUS, COLORS[joint], thickness=-1)


def _draw_hand(canvas: np.ndarray, points: Points | None, pose: Pose) -> None:
    import cv2

    if points is None:
        return
    H, W = canvas.shape[:2]
    pixels = []
    for p in points:
        x, y = _normalised(pose, p.x, p.y)
        pixels.append((int(x * W), int(y * H)) if p.visible else None)
    for edge_index, (a, b) in enumerate(HAND_EDGES):
        pa, pb = pixels[a], pixels[b]
        if pa is None or pb is None:
            continue
        if pa[0] > _EPS and pa[1] > _EPS and pb[0] > _EPS and pb[1] > _EPS:
            color = HAND_EDGE_COLORS[edge_index]
            cv2.line(canvas, pa, pb, color, thickness=HAND_LINE_THICKNESS)
    for pixel in pixels:
        if pixel is not None and pixel[0] > _EPS and pixel[1] > _EPS:
            cv2.circle(canvas, pixel, HAND_POINT_RADIUS, HAND_POINT_COLOR, thickness=-1)


def _draw_face(canvas: np.ndarray, points: Points | None, pose: Pose) -> None:
    import cv2

    if points is None:
        return
    H, W = canvas.shape[:2]
    for p in points:
        if not p.visible:
            continue
        x, y = _normalised(pose, p.x, p.y)
        pixel = (int(x * W), int(y * H))
        if pixel[0] > _EPS and pixel[1] > _EPS:
            cv2.circle(canvas, pixel, FACE_POINT_RADIUS, FACE_POINT_COLOR, thickness=-1)
