"""Golden-pixel tests: our renderer against a literal transcription of ControlNet's annotator.

``annotator_draw_pose`` below follows ``draw_poses`` / ``draw_bodypose`` / ``draw_handpose`` /
``draw_facepose`` of sd-webui-controlnet's ``annotator/openpose`` (same as controlnet_aux): person
by person, limbs filled at ``int(c * 0.6)`` then joints, on the annotator's own data layout
(normalised keypoints, None = missing), so it shares no code with ``inference.openpose_render``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference.openpose import Joint, Keypoint, Part, Person, Pose
from inference.openpose_render import COLORS, render_pose

# ---- the annotator, transcribed ------------------------------------------------------------

EPS = 0.01
LIMB_SEQ = [[2, 3], [2, 6], [3, 4], [4, 5], [6, 7], [7, 8], [2, 9], [9, 10],
            [10, 11], [2, 12], [12, 13], [13, 14], [2, 1], [1, 15], [15, 17],
            [1, 16], [16, 18], [3, 17], [6, 18]]  # fmt: skip
PALETTE = [[255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0],
           [0, 255, 0], [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255],
           [0, 0, 255], [85, 0, 255], [170, 0, 255], [255, 0, 255], [255, 0, 170],
           [255, 0, 85]]  # fmt: skip


def _hsv_to_rgb(hsv):
    # matplotlib.colors.hsv_to_rgb, as vendored in controlnet_aux
    hsv = np.asarray(hsv, dtype=np.float64)[None]
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    r, g, b = np.empty_like(h), np.empty_like(h), np.empty_like(h)
    i = (h * 6.0).astype(int)
    f = (h * 6.0) - i
    p, q, t = v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f))
    for index, (rr, gg, bb) in enumerate([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v),
                                          (v, p, q)]):  # fmt: skip
        idx = i % 6 == index if index == 0 else i == index
        r[idx], g[idx], b[idx] = rr[idx], gg[idx], bb[idx]
    return np.stack([r, g, b], axis=-1)[0]


def draw_bodypose(canvas, keypoints):
    """One person's body: 17 limbs at ``int(c * 0.6)``, then 18 joints (None = missing)."""
    H, W, _C = canvas.shape
    stickwidth = 4
    for (k1_index, k2_index), color in zip(LIMB_SEQ[:17], PALETTE):  # noqa: B905 (as upstream)
        keypoint1 = keypoints[k1_index - 1]
        keypoint2 = keypoints[k2_index - 1]
        if keypoint1 is None or keypoint2 is None:
            continue
        Y = np.array([keypoint1[0], keypoint2[0]]) * float(W)
        X = np.array([keypoint1[1], keypoint2[1]]) * float(H)
        mX = np.mean(X)
        mY = np.mean(Y)
        length = ((X[0] - X[1]) ** 2 + (Y[0] - Y[1]) ** 2) ** 0.5
        angle = math.degrees(math.atan2(X[0] - X[1], Y[0] - Y[1]))
        polygon = cv2.ellipse2Poly(
            (int(mY), int(mX)), (int(length / 2), stickwidth), int(angle), 0, 360, 1
        )
        cv2.fillConvexPoly(canvas, polygon, [int(float(c) * 0.6) for c in color])
    for keypoint, color in zip(keypoints, PALETTE, strict=True):
        if keypoint is None:
            continue
        x, y = keypoint
        x = int(x * W)
        y = int(y * H)
        cv2.circle(canvas, (int(x), int(y)), 4, color, thickness=-1)
    return canvas


def draw_handpose(canvas, all_hand_peaks):
    H, W, _C = canvas.shape
    edges = [[0, 1], [1, 2], [2, 3], [3, 4], [0, 5], [5, 6], [6, 7], [7, 8], [0, 9], [9, 10],
             [10, 11], [11, 12], [0, 13], [13, 14], [14, 15], [15, 16], [0, 17], [17, 18],
             [18, 19], [19, 20]]  # fmt: skip
    for peaks in all_hand_peaks:
        peaks = np.array(peaks)
        for ie, e in enumerate(edges):
            x1, y1 = peaks[e[0]]
            x2, y2 = peaks[e[1]]
            x1 = int(x1 * W)
            y1 = int(y1 * H)
            x2 = int(x2 * W)
            y2 = int(y2 * H)
            if x1 > EPS and y1 > EPS and x2 > EPS and y2 > EPS:
                color = _hsv_to_rgb([ie / float(len(edges)), 1.0, 1.0]) * 255
                cv2.line(canvas, (x1, y1), (x2, y2), color, thickness=2)
        for keypoint in peaks:
            x, y = keypoint
            x = int(x * W)
            y = int(y * H)
            if x > EPS and y > EPS:
                cv2.circle(canvas, (x, y), 4, (0, 0, 255), thickness=-1)
    return canvas


def draw_facepose(canvas, all_lmks):
    H, W, _C = canvas.shape
    for lmks in all_lmks:
        lmks = np.array(lmks)
        for lmk in lmks:
            x, y = lmk
            x = int(x * W)
            y = int(y * H)
            if x > EPS and y > EPS:
                cv2.circle(canvas, (x, y), 3, (255, 255, 255), thickness=-1)
    return canvas


def annotator_draw_pose(pose: Pose, H: int, W: int) -> np.ndarray:
    """The annotator's ``draw_poses``: person by person, its body, both hands, then its face,
    from normalised keypoints (hidden body points None, hidden hand/face points off-canvas)."""

    def normalised(points):
        return [
            [p.x / pose.width, p.y / pose.height] if p.visible else [-1.0, -1.0] for p in points
        ]

    canvas = np.zeros(shape=(H, W, 3), dtype=np.uint8)
    for person in pose.people:
        body = [(p.x / pose.width, p.y / pose.height) if p.visible else None for p in person.body]
        canvas = draw_bodypose(canvas, body)
        hands = [normalised(h) for h in (person.left_hand, person.right_hand) if h is not None]
        canvas = draw_handpose(canvas, hands)
        canvas = draw_facepose(canvas, [normalised(person.face)] if person.face else [])
    return canvas


# ---- poses to draw ------------------------------------------------------------------------


def _hand(cx: float, cy: float, scale: float) -> tuple[Keypoint, ...]:
    points = [Keypoint(cx, cy)]
    for finger in range(5):
        angle = math.radians(-60 + finger * 30)
        for joint in range(1, 5):
            r = scale * joint
            points.append(Keypoint(cx + r * math.sin(angle), cy + r * math.cos(angle)))
    return tuple(points)


def _face(cx: float, cy: float, radius: float) -> tuple[Keypoint, ...]:
    return tuple(
        Keypoint(cx + radius * math.cos(k * 0.09), cy + radius * 0.8 * math.sin(k * 0.09))
        for k in range(70)
    )


def _rich_pose() -> Pose:
    """Two people overlapping, one mirrored and rotated, with hands, a face, hidden joints and
    a point off the canvas."""
    a = Person.standing(20, 20, 140, 220)
    b = Person.standing(90, 30, 140, 210).rotated(12).mirrored()
    b = b.with_joint_visible(Joint.R_EAR, False).with_joint_moved(Joint.L_ANKLE, 250, 260)
    a = a.with_part(Part.LEFT_HAND, _hand(a.body[Joint.L_WRIST].x, a.body[Joint.L_WRIST].y, 4))
    right = list(_hand(a.body[Joint.R_WRIST].x, a.body[Joint.R_WRIST].y, 3.5))
    right[7] = Keypoint(right[7].x, right[7].y, False)
    a = a.with_part(Part.RIGHT_HAND, right)
    face = list(_face(a.body[Joint.NOSE].x, a.body[Joint.NOSE].y, 9))
    face[3] = Keypoint(0.0, 40.0)  # on column 0: the annotator skips it
    a = a.with_part(Part.FACE, face)
    # b's hands overlap (drawing order matters) and one point sits on column 0 (skipped)
    left = list(_hand(150, 200, 5))
    left[4] = Keypoint(0.0, 120.0)
    b = b.with_part(Part.LEFT_HAND, left).with_part(Part.RIGHT_HAND, _hand(156, 204, 5))
    return Pose(240, 256, (a, b))


# ---- tests ---------------------------------------------------------------------------------


def test_single_figure_matches_annotator_exactly():
    pose = Pose(128, 192, (Person.standing(8, 8, 112, 176),))
    np.testing.assert_array_equal(render_pose(pose), annotator_draw_pose(pose, 192, 128))


def test_people_hands_face_hidden_and_offcanvas_points_match_annotator_exactly():
    pose = _rich_pose()
    ours = render_pose(pose)
    assert ours.shape == (256, 240, 3) and ours.dtype == np.uint8
    np.testing.assert_array_equal(ours, annotator_draw_pose(pose, 256, 240))


@pytest.mark.parametrize(("width", "height"), [(480, 512), (100, 300), (64, 64)])
def test_other_output_sizes_match_annotator_exactly(width, height):
    pose = _rich_pose()
    np.testing.assert_array_equal(
        render_pose(pose, width, height), annotator_draw_pose(pose, height, width)
    )


_coords = st.floats(min_value=-20, max_value=120, allow_nan=False, allow_infinity=False)
_points = st.builds(Keypoint, _coords, _coords, st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(st.lists(_points, min_size=18, max_size=18), min_size=1, max_size=3))
def test_random_bodies_match_annotator_exactly(bodies):
    pose = Pose(100, 100, tuple(Person(tuple(body)) for body in bodies))
    np.testing.assert_array_equal(render_pose(pose, 96, 112), annotator_draw_pose(pose, 112, 96))


def test_joint_centres_are_full_colour_and_limb_midpoints_sixty_percent():
    person = Person.standing(0, 0, 256, 512)
    image = render_pose(Pose(256, 512, (person,)))
    for joint in (Joint.NECK, Joint.R_WRIST, Joint.L_KNEE, Joint.R_ANKLE):
        p = person.body[joint]
        assert (
            tuple(image[int(p.y), int(p.x)])
            == {
                Joint.NECK: (255, 85, 0),
                Joint.R_WRIST: (170, 255, 0),
                Joint.L_KNEE: (0, 0, 255),
                Joint.R_ANKLE: (0, 170, 255),
            }[joint]
        )
    # limb (joint a, joint b) -> 60% of its palette entry
    expected = {
        (Joint.R_SHOULDER, Joint.R_ELBOW): (153, 102, 0),  # limb 2, (255, 170, 0)
        (Joint.R_ELBOW, Joint.R_WRIST): (153, 153, 0),  # limb 3, (255, 255, 0)
        (Joint.L_HIP, Joint.L_KNEE): (0, 102, 153),  # limb 10, (0, 170, 255)
        (Joint.NECK, Joint.R_HIP): (0, 153, 0),  # limb 6, (0, 255, 0)
    }
    for (a, b), color in expected.items():
        pa, pb = person.body[a], person.body[b]
        mid = (int((pa.x + pb.x) / 2), int((pa.y + pb.y) / 2))
        assert tuple(image[mid[1], mid[0]]) == color, (a, b)
    assert tuple(image[2, 2]) == (0, 0, 0)  # black background
    assert tuple(image[505, 250]) == (0, 0, 0)


def test_hidden_joint_drops_its_dot_and_limbs():
    person = Person.standing(0, 0, 256, 512)
    elbow = person.body[Joint.L_ELBOW]
    shown = render_pose(Pose(256, 512, (person,)))
    hidden = render_pose(Pose(256, 512, (person.with_joint_visible(Joint.L_ELBOW, False),)))
    assert tuple(shown[int(elbow.y), int(elbow.x)]) == (0, 255, 0)
    assert tuple(hidden[int(elbow.y), int(elbow.x)]) == (0, 0, 0)
    wrist = person.body[Joint.L_WRIST]
    mid = (int((elbow.x + wrist.x) / 2), int((elbow.y + wrist.y) / 2))
    assert tuple(hidden[mid[1], mid[0]]) == (0, 0, 0)
    assert tuple(hidden[int(wrist.y), int(wrist.x)]) == (0, 255, 85)  # the wrist dot stays


def test_hand_and_face_dots_use_the_annotator_colours():
    person = Person.standing(0, 0, 256, 512)
    hand = _hand(30, 420, 8)  # clear of the body
    face = _face(128, 60, 20)
    person = person.with_part(Part.LEFT_HAND, hand).with_part(Part.FACE, face)
    image = render_pose(Pose(256, 512, (person,)))
    tip = hand[20]
    assert tuple(image[int(tip.y), int(tip.x)]) == (0, 0, 255)
    assert tuple(image[int(face[10].y), int(face[10].x)]) == (255, 255, 255)
    assert not render_pose(Pose(256, 512, (person,)), hands=False)[int(tip.y), int(tip.x)].any()


def test_empty_pose_is_black():
    image = render_pose(Pose(64, 48))
    assert image.shape == (48, 64, 3) and not image.any()


def test_joint_dot_is_the_opencv_radius_4_disc():
    """Pins the rasterised dot (as OpenCV 4.x draws it) so a library change cannot slip by."""
    person = Person(tuple(Keypoint(20.0, 20.0, j == Joint.NOSE) for j in Joint))
    dot = render_pose(Pose(40, 40, (person,)))[16:25, 16:25, 0] == 255
    expected = [
        "....#....",
        "..#####..",
        ".#######.",
        ".#######.",
        "#########",
        ".#######.",
        ".#######.",
        "..#####..",
        "....#....",
    ]
    assert ["".join("#" if v else "." for v in row) for row in dot] == expected


def test_limb_is_an_ellipse_of_half_width_4_along_the_bone():
    body = [Keypoint(0, 0, False)] * 18
    body[Joint.NECK] = Keypoint(20.0, 30.0)
    body[Joint.R_SHOULDER] = Keypoint(80.0, 30.0)
    image = render_pose(Pose(100, 60, (Person(tuple(body)),)), body=True)
    limb = (image == (153, 0, 0)).all(axis=2)  # 60% of red
    rows = np.flatnonzero(limb.any(axis=1))
    cols = np.flatnonzero(limb.any(axis=0))
    assert (rows.min(), rows.max()) == (26, 34)  # 4 px either side of y = 30
    # the ellipse runs from joint to joint; the dots (radius 4) cover its tips
    assert 20 < cols.min() <= 25 and 75 <= cols.max() < 80
    assert tuple(image[30, 22]) == (255, 85, 0)  # the neck dot (joint 1), over the limb
    assert limb[30, 50] and not limb[25, 50] and not limb[35, 50]


def test_overlapping_people_are_drawn_person_by_person():
    """The second person's limbs cover the first one's joints, as ControlNet's annotator draws
    them (the old all-limbs-then-all-joints order left the first person's joints on top)."""
    first = Person.standing(10, 10, 100, 200)
    second = first.translated(6, 3)
    pose = Pose(128, 224, (first, second))
    ours = render_pose(pose)
    np.testing.assert_array_equal(ours, annotator_draw_pose(pose, 224, 128))
    neck = first.body[Joint.NECK]
    alone = render_pose(Pose(128, 224, (first,)))
    x, y = int(neck.x), int(neck.y)
    assert tuple(alone[y, x]) == COLORS[Joint.NECK]  # drawn alone, its neck dot is on top
    assert tuple(ours[y, x]) != COLORS[Joint.NECK]  # the second person's limbs cover it
