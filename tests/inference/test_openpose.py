"""Pose data model: figures, edits, mirroring, JSON import/export and its validation."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from inference.api import InvalidRequestError
from inference.openpose import (
    FACE_POINTS,
    HAND_POINTS,
    Joint,
    Keypoint,
    Part,
    Person,
    Pose,
    PoseFormatError,
    dumps_pose,
    load_pose,
    parse_pose_json,
    pose_to_json,
    save_pose,
)


def _figure() -> Person:
    return Person.standing(100, 50, 200, 400)


def _with_hands_and_face(person: Person) -> Person:
    lw, rw, nose = person.body[Joint.L_WRIST], person.body[Joint.R_WRIST], person.body[Joint.NOSE]
    left = tuple(Keypoint(lw.x + i * 1.5, lw.y + i * 0.75) for i in range(HAND_POINTS))
    right = tuple(Keypoint(rw.x - i * 1.25, rw.y + i * 0.5) for i in range(HAND_POINTS))
    face = tuple(
        Keypoint(nose.x + 8 * math.cos(i / 11), nose.y + 8 * math.sin(i / 11))
        for i in range(FACE_POINTS)
    )
    return (
        person.with_part(Part.LEFT_HAND, left)
        .with_part(Part.RIGHT_HAND, right)
        .with_part(Part.FACE, face)
    )


def _approx_person(a: Person, b: Person, tol: float = 1e-6) -> None:
    pa, pb = list(a.points()), list(b.points())
    assert [(part, i, p.visible) for part, i, p in pa] == [
        (part, i, p.visible) for part, i, p in pb
    ]
    for (_, _, p), (_, _, q) in zip(pa, pb, strict=True):
        assert p.x == pytest.approx(q.x, abs=tol) and p.y == pytest.approx(q.y, abs=tol)


# ---- the figure ---------------------------------------------------------------------------


def test_joint_order_is_coco_as_controlnet_uses():
    assert [j.name for j in Joint] == [
        "NOSE", "NECK", "R_SHOULDER", "R_ELBOW", "R_WRIST", "L_SHOULDER", "L_ELBOW", "L_WRIST",
        "R_HIP", "R_KNEE", "R_ANKLE", "L_HIP", "L_KNEE", "L_ANKLE", "R_EYE", "L_EYE", "R_EAR",
        "L_EAR",
    ]  # fmt: skip


def test_standing_figure_fits_its_box_and_faces_the_viewer():
    person = Person.standing(100, 50, 200, 400)
    left, top, right, bottom = person.bounds()
    assert left >= 100 and right <= 300 and top >= 50 and bottom <= 450
    assert bottom - top > 0.8 * 400  # uses the height of a tall box
    assert person.center[0] == pytest.approx(200)
    body = person.body
    assert all(p.visible for p in body)
    # facing the viewer: the person's right side is on the image's left
    assert body[Joint.R_SHOULDER].x < body[Joint.NECK].x < body[Joint.L_SHOULDER].x
    assert body[Joint.R_HIP].x < body[Joint.L_HIP].x
    assert body[Joint.R_EYE].x < body[Joint.L_EYE].x
    # head above neck above hips above knees above ankles
    ys = [body[j].y for j in (Joint.NOSE, Joint.NECK, Joint.R_HIP, Joint.R_KNEE, Joint.R_ANKLE)]
    assert ys == sorted(ys)


def test_standing_figure_in_a_wide_box_is_limited_by_height_and_centred():
    person = Person.standing(0, 0, 1000, 100)
    left, _top, right, bottom = person.bounds()
    assert bottom <= 100 and right - left < 60
    assert person.center[0] == pytest.approx(500)


@pytest.mark.parametrize("box", [(0, 0, 0, 10), (0, 0, 10, -1), (0, math.nan, 10, 10)])
def test_standing_figure_refuses_empty_boxes(box):
    with pytest.raises(ValueError):
        Person.standing(*box)


def test_values_are_immutable_and_edits_return_new_values():
    person = _figure()
    with pytest.raises(dataclasses.FrozenInstanceError):
        person.body = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        person.body[0].x = 3  # type: ignore[misc]
    moved = person.with_joint_moved(Joint.L_WRIST, 10, 20)
    assert moved.body[Joint.L_WRIST] == Keypoint(10, 20, True)
    assert person.body[Joint.L_WRIST] != moved.body[Joint.L_WRIST]
    assert moved.body[:7] == person.body[:7] and moved.body[8:] == person.body[8:]


def test_hide_and_show_keep_the_position():
    person = _figure()
    hidden = person.with_joint_visible(Joint.R_KNEE, False)
    assert not hidden.body[Joint.R_KNEE].visible
    assert (hidden.body[Joint.R_KNEE].x, hidden.body[Joint.R_KNEE].y) == (
        person.body[Joint.R_KNEE].x,
        person.body[Joint.R_KNEE].y,
    )
    assert hidden.with_joint_visible(Joint.R_KNEE, True) == person


def test_translate_scale_rotate():
    person = _with_hands_and_face(_figure())
    moved = person.translated(10, -5)
    for (_, _, p), (_, _, q) in zip(person.points(), moved.points(), strict=True):
        assert (q.x, q.y) == pytest.approx((p.x + 10, p.y - 5))

    cx, cy = person.center
    big = person.scaled(2.0)
    assert big.center == pytest.approx((cx, cy))
    l0, t0, r0, b0 = person.bounds()
    l1, t1, r1, b1 = big.bounds()
    assert (r1 - l1, b1 - t1) == pytest.approx((2 * (r0 - l0), 2 * (b0 - t0)))

    # clockwise on screen: a point right of the centre goes below it
    turned = person.rotated(90, center=(0, 0))
    p, q = person.body[Joint.NECK], turned.body[Joint.NECK]
    assert (q.x, q.y) == pytest.approx((-p.y, p.x))
    _approx_person(person.rotated(360), person)
    pivot = person.center  # the bounds' centre moves when rotating, so pin the pivot
    _approx_person(person.rotated(30, pivot).rotated(-30, pivot), person)

    with pytest.raises(ValueError):
        person.scaled(0)
    with pytest.raises(ValueError):
        person.rotated(math.inf)


def test_mirror_swaps_left_and_right_labels():
    person = _figure()
    # raise the right arm: the right wrist goes up on the image's left
    raised = person.with_joint_moved(Joint.R_WRIST, person.body[Joint.R_WRIST].x, 60)
    mirrored = raised.mirrored()
    axis = raised.center[0]
    # the raised wrist is now the person's LEFT wrist, on the image's right
    lw = mirrored.body[Joint.L_WRIST]
    assert lw.y == 60 and lw.x == pytest.approx(2 * axis - raised.body[Joint.R_WRIST].x)
    assert lw.x > axis
    # still facing the viewer
    assert mirrored.body[Joint.R_SHOULDER].x < mirrored.body[Joint.L_SHOULDER].x
    # a symmetric standing figure is its own mirror image; mirroring twice is the identity
    _approx_person(person.mirrored(), person)
    _approx_person(raised.mirrored().mirrored(), raised)


def test_mirror_swaps_hands_and_face_sides():
    person = _with_hands_and_face(_figure()).with_point_visible(Part.LEFT_HAND, 3, False)
    mirrored = person.mirrored(axis_x=0)
    for i in range(HAND_POINTS):
        src, dst = person.left_hand[i], mirrored.right_hand[i]
        assert (dst.x, dst.y, dst.visible) == (-src.x, src.y, src.visible)
    # face: right eye corner 36 <-> left eye corner 45, pupils 68 <-> 69, nose tip 30 stays
    for a, b in ((36, 45), (68, 69), (0, 16), (48, 54)):
        assert mirrored.face[b].x == -person.face[a].x and mirrored.face[b].y == person.face[a].y
    assert mirrored.face[30].x == -person.face[30].x
    _approx_person(mirrored.mirrored(axis_x=0), person)


def test_pose_people_add_replace_remove():
    pose = Pose(512, 512)
    a, b = _figure(), _figure().translated(50, 0)
    pose = pose.with_person_added(a).with_person_added(b)
    assert pose.people == (a, b)
    assert pose.with_person(0, b).people == (b, b)
    assert pose.without_person(0).people == (b,)
    assert pose.with_person_added(b, index=0).people == (b, a, b)
    with pytest.raises(IndexError):
        pose.without_person(2)
    resized = pose.resized(1024, 256)
    assert resized.people[0].body[0].x == pytest.approx(a.body[0].x * 2)
    assert resized.people[0].body[0].y == pytest.approx(a.body[0].y / 2)


@pytest.mark.parametrize("size", [(0, 10), (10, -1), (70000, 10), (10.5, 10)])
def test_pose_refuses_bad_canvas(size):
    with pytest.raises(ValueError):
        Pose(*size)


def test_person_refuses_wrong_point_counts():
    with pytest.raises(ValueError):
        Person(tuple(Keypoint(0, 0) for _ in range(17)))
    with pytest.raises(ValueError):
        Person(_figure().body, left_hand=(Keypoint(0, 0),))


# ---- JSON ---------------------------------------------------------------------------------


def test_export_writes_hidden_as_zeros_and_visible_with_confidence_one():
    person = _figure().with_joint_visible(Joint.L_EAR, False)
    data = pose_to_json(Pose(400, 500, (person,)))
    assert data["canvas_width"] == 400 and data["canvas_height"] == 500
    entry = data["people"][0]
    body = entry["pose_keypoints_2d"]
    assert len(body) == 54
    assert body[3 * Joint.L_EAR : 3 * Joint.L_EAR + 3] == [0, 0, 0]
    assert body[3 * Joint.NECK : 3 * Joint.NECK + 3] == [
        person.body[Joint.NECK].x,
        person.body[Joint.NECK].y,
        1.0,
    ]
    assert entry["hand_left_keypoints_2d"] == [] and entry["face_keypoints_2d"] == []


def test_round_trip_with_hands_and_face_is_exact():
    a = _with_hands_and_face(_figure())
    b = _figure().translated(120.25, 3.5).rotated(20)
    pose = Pose(640, 480, (a, b))
    assert parse_pose_json(dumps_pose(pose)) == pose


def test_round_trip_keeps_hidden_flags_and_places_hidden_points_sensibly():
    person = _with_hands_and_face(_figure())
    person = person.with_joint_visible(Joint.L_ELBOW, False).with_point_visible(Part.FACE, 5, False)
    back = parse_pose_json(dumps_pose(Pose(640, 480, (person,)))).people[0]
    for (part, i, p), (_, _, q) in zip(person.points(), back.points(), strict=True):
        assert p.visible == q.visible, (part, i)
        if p.visible:
            assert (p.x, p.y) == (q.x, q.y)
    # the hidden elbow is placed where the standing figure fitted to the visible joints puts it
    elbow, original = back.body[Joint.L_ELBOW], person.body[Joint.L_ELBOW]
    assert (elbow.x, elbow.y) == pytest.approx((original.x, original.y), abs=1e-6)
    assert (elbow.x, elbow.y) != (0, 0)


def test_normalised_export_and_detection():
    pose = Pose(640, 480, (_with_hands_and_face(_figure()),))
    text = dumps_pose(pose, normalized=True)
    values = json.loads(text)["people"][0]["pose_keypoints_2d"]
    assert all(0 <= v <= 1 for v in values)
    back = parse_pose_json(text)
    _approx_person(back.people[0], pose.people[0])


def test_normalised_flag_can_be_forced():
    data = {"people": [{"pose_keypoints_2d": [0.5, 0.5, 1] * 18}], "canvas_width": 10,
            "canvas_height": 10}  # fmt: skip
    assert parse_pose_json(data).people[0].body[0] == Keypoint(5, 5)
    assert parse_pose_json(data, normalized=False).people[0].body[0] == Keypoint(0.5, 0.5)


def test_controlnet_json_hides_confidence_below_one_as_sd_webui_controlnet_does():
    values = [10, 20, 0.3] * 16 + [30, 40, 1.0] + [7, 8, 0]
    data = {"people": [{"pose_keypoints_2d": values}], "canvas_width": 100, "canvas_height": 100}
    body = parse_pose_json(data).people[0].body
    assert [p.visible for p in body] == [False] * 16 + [True, False]
    # the threshold is an import option: 0.1 shows the 0.3 points, zero stays hidden
    body = parse_pose_json(data, min_confidence=0.1).people[0].body
    assert [p.visible for p in body] == [True] * 17 + [False]
    assert body[0] == Keypoint(10, 20)


def test_openpose_output_without_canvas_shows_any_positive_confidence():
    values = [10, 20, 0.3] * 17 + [7, 8, 0]
    data = {"version": 1.3, "people": [{"pose_keypoints_2d": values}]}
    body = parse_pose_json(data, canvas_size=(100, 100)).people[0].body
    assert all(p.visible for p in body[:17]) and not body[17].visible
    body = parse_pose_json(data, canvas_size=(100, 100), min_confidence=1).people[0].body
    assert not any(p.visible for p in body)


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan")])
def test_a_confidence_threshold_outside_0_to_1_is_refused(threshold):
    data = {"people": [], "canvas_width": 10, "canvas_height": 10}
    with pytest.raises(PoseFormatError, match="threshold"):
        parse_pose_json(data, min_confidence=threshold)


def test_openpose_editor_hands_slightly_outside_0_1_are_still_normalised():
    """sd-webui-openpose-editor writes normalised points a hair outside 0..1 (hands at -0.0013);
    its rule (|v| <= 1 with a canvas size means normalised) keeps the figure full size."""
    figure = Person.standing(0.2, 0.1, 0.6, 0.8)  # in fractions of the canvas
    body = [v for p in figure.body for v in (p.x, p.y, 1)]
    hand = [0.1, 0.6, 1] * 20 + [-0.0013, 0.61, 1]
    data = {"people": [{"pose_keypoints_2d": body, "hand_left_keypoints_2d": hand}],
            "canvas_width": 512, "canvas_height": 768}  # fmt: skip
    person = parse_pose_json(data).people[0]
    assert person.body[0].x == pytest.approx(figure.body[0].x * 512)
    assert person.body[0].y == pytest.approx(figure.body[0].y * 768)
    assert person.left_hand[20].x == pytest.approx(-0.0013 * 512)
    from inference.openpose_render import render_pose

    drawn = int((render_pose(parse_pose_json(data)) > 0).any(axis=2).sum())
    assert drawn > 1000  # the old 0..1 rule drew a 19-pixel figure in the corner


def test_missing_canvas_uses_the_given_size_and_body25_is_converted():
    body25 = []
    for k in range(25):
        body25 += [10 + k, 20 + k, 0.9]
    data = {"version": 1.3, "people": [{"pose_keypoints_2d": body25}]}
    pose = parse_pose_json(data, canvas_size=(300, 200))
    assert (pose.width, pose.height) == (300, 200)
    body = pose.people[0].body
    assert body[Joint.NECK] == Keypoint(11, 21)
    assert body[Joint.R_HIP] == Keypoint(19, 29)  # BODY_25 index 9; 8 is the mid-hip
    assert body[Joint.L_EAR] == Keypoint(28, 38)


def test_people_without_body_are_all_hidden_and_empty_people_is_fine():
    data = {"people": [{"hand_left_keypoints_2d": [5, 5, 1] * 21}], "canvas_width": 64,
            "canvas_height": 64}  # fmt: skip
    person = parse_pose_json(data).people[0]
    assert not any(p.visible for p in person.body)
    assert all(p.visible for p in person.left_hand) and person.right_hand is None
    assert parse_pose_json('{"people": [], "canvas_width": 8, "canvas_height": 8}').people == ()


def test_save_and_load_file(tmp_path):
    pose = Pose(320, 240, (_with_hands_and_face(_figure()),))
    path = tmp_path / "pose.json"
    save_pose(path, pose)
    assert load_pose(path) == pose
    assert [p.name for p in tmp_path.iterdir()] == ["pose.json"]  # no temp files left


# ---- bad input ----------------------------------------------------------------------------

_OK_BODY = [10.0, 10.0, 1.0] * 18


def _doc(**person) -> dict:
    return {"people": [person], "canvas_width": 100, "canvas_height": 100}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"people": [', "malformed JSON at line 1"),
        (b"\xff\xfe{}", "not UTF-8"),
        ("[1, 2]", "must be an object"),
        ('{"canvas_width": 5, "canvas_height": 5}', 'no "people"'),
        ('{"people": {}, "canvas_width": 5, "canvas_height": 5}', '"people" must be a list'),
        ('{"people": [3], "canvas_width": 5, "canvas_height": 5}', "people[0] must be an object"),
        ({"people": []}, "no canvas_width/canvas_height"),
        ({"people": [], "canvas_width": 5}, "no canvas_height"),
        ({"people": [], "canvas_width": 0, "canvas_height": 5}, "canvas_width 0 is outside"),
        ({"people": [], "canvas_width": 5, "canvas_height": -3}, "canvas_height -3 is outside"),
        ({"people": [], "canvas_width": 5.5, "canvas_height": 5}, "whole number"),
        ({"people": [], "canvas_width": "512", "canvas_height": 5}, "whole number"),
        ({"people": [], "canvas_width": True, "canvas_height": 5}, "whole number"),
        ({"people": [], "canvas_width": 10**9, "canvas_height": 5}, "outside 1..65536"),
        (_doc(pose_keypoints_2d=_OK_BODY[:-1]), "has 53 numbers; expected 54"),
        (_doc(pose_keypoints_2d=[*_OK_BODY, 1, 1, 1]), "has 57 numbers; expected 54"),
        (_doc(pose_keypoints_2d=_OK_BODY, hand_left_keypoints_2d=[1] * 62), "expected 63"),
        (_doc(pose_keypoints_2d=_OK_BODY, hand_right_keypoints_2d=[1] * 60), "expected 63"),
        (_doc(pose_keypoints_2d=_OK_BODY, face_keypoints_2d=[1] * 204), "expected 210"),
        (_doc(pose_keypoints_2d="1,2,3"), "must be a list of numbers"),
        (_doc(pose_keypoints_2d=[*_OK_BODY[:4], "x", *_OK_BODY[5:]]), "[4] is 'x', not a number"),
        (_doc(pose_keypoints_2d=[*_OK_BODY[:4], None, *_OK_BODY[5:]]), "not a number"),
        (_doc(pose_keypoints_2d=[*_OK_BODY[:4], True, *_OK_BODY[5:]]), "not a number"),
        (_doc(pose_keypoints_2d=[*_OK_BODY[:3], math.nan, *_OK_BODY[4:]]), "[3] is nan"),
        (_doc(pose_keypoints_2d=[*_OK_BODY[:3], math.inf, *_OK_BODY[4:]]), "[3] is inf"),
        (_doc(pose_keypoints_2d=[*_OK_BODY[:3], 1e9, *_OK_BODY[4:]]), "far outside"),
        (_doc(pose_keypoints_2d=[*_OK_BODY[:4], -1e6, *_OK_BODY[5:]]), "far outside"),
        ({"people": [{}] * 300, "canvas_width": 5, "canvas_height": 5}, "too many"),
    ],
)
def test_bad_json_gives_a_specific_typed_error(data, message):
    with pytest.raises(PoseFormatError) as info:
        parse_pose_json(data)
    assert isinstance(info.value, InvalidRequestError)
    assert message in str(info.value)


def test_nan_in_json_text_is_refused():
    text = json.dumps(_doc(pose_keypoints_2d=[*_OK_BODY[:3], math.nan, *_OK_BODY[4:]]))
    assert "NaN" in text
    with pytest.raises(PoseFormatError, match="not a finite number"):
        parse_pose_json(text)


def test_hidden_points_far_away_are_not_absurd():
    body = [*_OK_BODY[:3], 1e7, 1e7, 0, *_OK_BODY[6:]]  # hidden: coordinates do not matter
    assert not parse_pose_json(_doc(pose_keypoints_2d=body)).people[0].body[1].visible


def test_bad_files(tmp_path):
    with pytest.raises(PoseFormatError, match="cannot read pose file"):
        load_pose(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"people": [}')
    with pytest.raises(PoseFormatError, match=r"bad\.json: malformed JSON"):
        load_pose(bad)


def test_mirror_pairs_are_disjoint_swaps_within_range():
    from inference.openpose import _BODY_MIRROR_PAIRS, _FACE_MIRROR_PAIRS

    for pairs, size in ((_BODY_MIRROR_PAIRS, 18), (_FACE_MIRROR_PAIRS, FACE_POINTS)):
        flat = [i for pair in pairs for i in pair]
        assert len(flat) == len(set(flat)) and all(0 <= i < size for i in flat)
    # every body joint named R_* trades places with its L_* twin
    swapped = {Joint(a).name: Joint(b).name for a, b in _BODY_MIRROR_PAIRS}
    assert all(left == "L_" + right[2:] for right, left in swapped.items())
    # face: the midline (nose bridge 27-30, nose tip 33, lip centres 51/57/62/66, chin 8) stays
    assert not {8, 27, 28, 29, 30, 33, 51, 57, 62, 66} & set(
        i for pair in _FACE_MIRROR_PAIRS for i in pair
    )
