"""Pose layer editing through plain pointer events and undoable commands (no widgets)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.document import Document
from app.geometry import Rect
from app.layers import LayerKind
from app.pose_edit import (
    HIT_RADIUS_PX,
    HitKind,
    PoseHit,
    PoseTool,
    add_person,
    add_pose_layer,
    current_pose,
    delete_person,
    figure_frame,
    hit_test,
    mirror_person,
    move_point,
    set_point_visible,
    transform_person,
)
from app.raster import Raster
from app.tools import Phase, PointerEvent
from inference.openpose import Joint, Part, Person, Pose


@pytest.fixture
def doc() -> Document:
    return Document.blank(400, 300)


@pytest.fixture
def posed(doc):
    """A document with a pose layer holding one standing figure."""
    layer = add_pose_layer(doc)
    add_person(doc, layer.id, Rect(100, 20, 200, 260))
    doc.history.clear()
    return doc, layer


def ev(x, y, phase, zoom=1.0, **mods):
    return PointerEvent(x, y, phase, zoom=zoom, **mods)


def drag(tool, points, zoom=1.0, **mods):
    for i, (x, y) in enumerate(points):
        phase = Phase.PRESS if i == 0 else Phase.RELEASE if i == len(points) - 1 else Phase.MOVE
        tool.handle(ev(x, y, phase, zoom, **mods))


def joint(doc, layer, j, person=0):
    return current_pose(doc, layer.id).people[person].body[j]


# ---- commands ------------------------------------------------------------------------------


def test_add_pose_layer_and_person_sized_to_selection_or_canvas(doc):
    layer = add_pose_layer(doc)
    assert layer.kind is LayerKind.POSE and layer.control.control_type == "openpose"
    assert doc.active_layer_id == layer.id
    add_person(doc, layer.id)  # no selection: the canvas with a margin
    left, top, right, bottom = current_pose(doc, layer.id).people[0].bounds()
    assert left > 0 and right < 400 and top > 0 and bottom < 300
    assert bottom - top > 200

    selection = Raster(1)
    selection.write(Rect(10, 10, 60, 120), Raster(1).read(Rect(0, 0, 60, 120)) + 255)
    doc.set_selection(selection)
    add_person(doc, layer.id)
    left, top, right, bottom = current_pose(doc, layer.id).people[1].bounds()
    assert left >= 10 and right <= 70 and top >= 10 and bottom <= 130

    doc.history.undo()  # the second person
    doc.history.undo()  # the selection
    assert len(current_pose(doc, layer.id).people) == 1


def test_person_commands_are_each_one_undo_step(posed):
    doc, layer = posed
    original = layer.pose
    mirror_person(doc, layer.id, 0)  # a symmetric figure is its own mirror image: no step
    assert doc.history.count() == 0
    move_point(doc, layer.id, 0, Part.BODY, Joint.NOSE, 1, 2)
    mirror_person(doc, layer.id, 0)
    transform_person(doc, layer.id, 0, dx=10, dy=5, scale=0.5, degrees=30)
    set_point_visible(doc, layer.id, 0, Part.BODY, Joint.L_EAR, False)
    delete_person(doc, layer.id, 0)
    assert doc.history.count() == 5 and layer.pose.people == ()
    doc.history.undo()
    assert not layer.pose.people[0].body[Joint.L_EAR].visible
    doc.history.undo()
    doc.history.undo()
    assert layer.pose.people[0].body[Joint.NOSE].x > 200  # mirrored about the figure's centre
    doc.history.undo()
    assert layer.pose.people[0].body[Joint.NOSE].x == 1
    for _ in range(1):
        doc.history.undo()
    assert layer.pose is original


def test_locked_layer_refuses_edits(posed):
    doc, layer = posed
    doc.set_locked(layer.id, True)
    notices = []
    doc.notice.connect(notices.append)
    tool = PoseTool(doc)
    wrist = joint(doc, layer, Joint.R_WRIST)
    drag(tool, [(wrist.x, wrist.y), (wrist.x + 40, wrist.y)])
    assert joint(doc, layer, Joint.R_WRIST) == wrist
    assert notices and "locked" in notices[0]


# ---- the tool: joints ----------------------------------------------------------------------


def test_joint_drag_is_one_step_and_undo_restores_exactly(posed):
    doc, layer = posed
    before = layer.pose
    tool = PoseTool(doc)
    elbow = joint(doc, layer, Joint.L_ELBOW)
    changed = []
    doc.pixels_changed.connect(lambda layer_id, rect: changed.append(layer_id))
    path = [(elbow.x + 2, elbow.y - 1)] + [
        (elbow.x + 2 + 7 * i, elbow.y - 1 + 3 * i) for i in range(1, 9)
    ]
    drag(tool, path)
    moved = joint(doc, layer, Joint.L_ELBOW)
    # grabbed 2 px off-centre: the joint keeps that offset instead of jumping
    assert (moved.x, moved.y) == pytest.approx((elbow.x + 56, elbow.y + 24))
    assert moved.visible and layer.id in changed  # shown live
    others = [p for j, p in enumerate(layer.pose.people[0].body) if j != Joint.L_ELBOW]
    assert others == [p for j, p in enumerate(before.people[0].body) if j != Joint.L_ELBOW]
    assert doc.history.count() == 1 and doc.history.undoText() == "Move joint"
    after = layer.pose
    doc.history.undo()
    assert layer.pose is before
    doc.history.redo()
    assert layer.pose is after


def test_hit_radius_is_in_screen_pixels(posed):
    doc, layer = posed
    pose = current_pose(doc, layer.id)
    wrist = pose.people[0].body[Joint.R_WRIST]
    # 6 document px away: 24 screen px at zoom 4 (miss), 1.5 screen px at zoom 0.25 (hit)
    assert hit_test(pose, wrist.x - 6, wrist.y, zoom=4.0) != PoseHit(
        HitKind.POINT, 0, Part.BODY, Joint.R_WRIST
    )
    assert hit_test(pose, wrist.x - 6, wrist.y, zoom=0.25) == PoseHit(
        HitKind.POINT, 0, Part.BODY, Joint.R_WRIST
    )
    far = HIT_RADIUS_PX / 0.25 - 1  # just inside the radius at zoom 0.25
    assert hit_test(pose, wrist.x - far, wrist.y, zoom=0.25).kind is HitKind.POINT
    # the tool uses the event's zoom: a press 6 px away at zoom 4 does not grab the wrist
    tool = PoseTool(doc)
    drag(tool, [(wrist.x - 6, wrist.y), (wrist.x - 60, wrist.y + 50)], zoom=4.0)
    assert joint(doc, layer, Joint.R_WRIST) == wrist
    assert doc.history.undoText() == "Add person"  # it was a rubber band on empty canvas
    drag(tool, [(wrist.x - 6, wrist.y), (wrist.x - 60, wrist.y + 50)], zoom=0.25)
    assert joint(doc, layer, Joint.R_WRIST) == wrist.moved_to(wrist.x - 54, wrist.y + 50)


def test_nearest_joint_wins(posed):
    doc, layer = posed
    pose = current_pose(doc, layer.id)
    neck, shoulder = pose.people[0].body[Joint.NECK], pose.people[0].body[Joint.R_SHOULDER]
    x = neck.x + (shoulder.x - neck.x) * 0.4
    hit = hit_test(pose, x, neck.y, zoom=0.1)
    assert hit == PoseHit(HitKind.POINT, 0, Part.BODY, Joint.NECK)


def test_hover_highlights_the_joint_under_the_pointer(posed):
    doc, layer = posed
    tool = PoseTool(doc)
    knee = joint(doc, layer, Joint.R_KNEE)
    assert tool.handle(ev(knee.x + 1, knee.y, Phase.HOVER)) is not None
    assert tool.hover == PoseHit(HitKind.POINT, 0, Part.BODY, Joint.R_KNEE)
    assert tool.handle(ev(knee.x + 2, knee.y, Phase.HOVER)) is None  # unchanged: no repaint
    overlay = tool.overlay()
    hovered = [p for p in overlay.points if p.hovered]
    assert [(p.part, p.index) for p in hovered] == [(Part.BODY, Joint.R_KNEE)]
    assert hovered[0].color == (0, 255, 255)  # palette entry 9
    tool.handle(ev(5, 5, Phase.HOVER))
    assert tool.hover is None and not any(p.hovered for p in tool.overlay().points)


def test_alt_click_hides_and_shows_a_joint(posed):
    doc, layer = posed
    tool = PoseTool(doc)
    ear = joint(doc, layer, Joint.L_EAR)
    drag(tool, [(ear.x, ear.y), (ear.x, ear.y)], alt=True)
    assert not joint(doc, layer, Joint.L_EAR).visible
    # the hidden joint is still drawn as a ghost and can be grabbed to show it again
    ghost = [p for p in tool.overlay().points if (p.part, p.index) == (Part.BODY, Joint.L_EAR)]
    assert ghost and not ghost[0].visible
    drag(tool, [(ear.x, ear.y), (ear.x, ear.y)], alt=True)
    assert joint(doc, layer, Joint.L_EAR).visible
    assert doc.history.count() == 2
    doc.history.undo()
    doc.history.undo()
    assert joint(doc, layer, Joint.L_EAR) == ear


# ---- the tool: whole figures ---------------------------------------------------------------


def _inside_box_not_on_a_point(person: Person) -> tuple[float, float]:
    hip_l, hip_r = person.body[Joint.L_HIP], person.body[Joint.R_HIP]
    knee = person.body[Joint.L_KNEE]
    return (hip_l.x + hip_r.x) / 2, (hip_l.y + knee.y) / 2


def test_drag_inside_a_figure_moves_it(posed):
    doc, layer = posed
    tool = PoseTool(doc)
    start = current_pose(doc, layer.id).people[0]
    x, y = _inside_box_not_on_a_point(start)
    drag(tool, [(x, y), (x + 10, y + 3), (x + 30, y - 12)])
    assert tool.selected == 0
    moved = current_pose(doc, layer.id).people[0]
    for (_, _, a), (_, _, b) in zip(start.points(), moved.points(), strict=True):
        assert (b.x, b.y) == pytest.approx((a.x + 30, a.y - 12))
    assert doc.history.count() == 1 and doc.history.undoText() == "Move person"


def test_scale_and_rotate_handles(posed):
    doc, layer = posed
    tool = PoseTool(doc)
    start = current_pose(doc, layer.id).people[0]
    x, y = _inside_box_not_on_a_point(start)
    drag(tool, [(x, y), (x, y)])  # click selects
    assert tool.selected == 0 and doc.history.count() == 0
    frame = figure_frame(start, 1.0)
    assert tool.overlay().selected_frame == frame

    cx, cy = start.center
    sx, sy = frame.scale_handle
    drag(tool, [(sx, sy), (cx + (sx - cx) * 0.5, cy + (sy - cy) * 0.5)])
    half = current_pose(doc, layer.id).people[0]
    l0, t0, r0, b0 = start.bounds()
    l1, t1, r1, b1 = half.bounds()
    assert (r1 - l1, b1 - t1) == pytest.approx(((r0 - l0) / 2, (b0 - t0) / 2))
    assert half.center == pytest.approx((cx, cy))

    frame = figure_frame(half, 1.0)
    rx, ry = frame.rotate_handle  # straight above the centre; drag it to the right: +90°
    radius = math.hypot(rx - cx, ry - cy)
    drag(
        tool, [(rx, ry), (cx + radius * 0.7, cy - radius * 0.7), (cx + radius, cy + 2)], shift=True
    )
    turned = current_pose(doc, layer.id).people[0]
    expected = half.rotated(90, (cx, cy))
    for (_, _, a), (_, _, b) in zip(expected.points(), turned.points(), strict=True):
        assert (b.x, b.y) == pytest.approx((a.x, a.y), abs=1e-6)
    assert [doc.history.text(i) for i in range(doc.history.count())] == [
        "Scale person",
        "Rotate person",
    ]


def test_mirror_and_delete_selected(posed):
    doc, layer = posed
    tool = PoseTool(doc)
    assert not tool.mirror_selected()  # nothing selected
    start = current_pose(doc, layer.id).people[0]
    raised = start.with_joint_moved(Joint.R_WRIST, start.body[Joint.R_WRIST].x, 30)
    move_point(doc, layer.id, 0, Part.BODY, Joint.R_WRIST, *(raised.body[Joint.R_WRIST].x, 30))
    x, y = _inside_box_not_on_a_point(start)
    drag(tool, [(x, y), (x, y)])
    assert tool.mirror_selected()
    mirrored = current_pose(doc, layer.id).people[0]
    assert mirrored.body[Joint.L_WRIST].y == 30  # the raised arm is now the left one
    assert tool.delete_selected() and current_pose(doc, layer.id).people == ()
    assert tool.selected is None
    doc.history.undo()
    assert current_pose(doc, layer.id).people[0] == mirrored


def test_rubber_band_on_empty_canvas_adds_a_figure_and_a_layer_in_one_step(doc):
    tool = PoseTool(doc)
    layer_count = len(doc.layers)
    drag(tool, [(20, 30), (50, 90), (120, 250)])
    poses = doc.layers_of(LayerKind.POSE)
    assert len(poses) == 1 and len(doc.layers) == layer_count + 1
    left, top, right, bottom = poses[0].pose.people[0].bounds()
    assert left >= 20 and right <= 120 and top >= 30 and bottom <= 250
    assert tool.selected == 0
    assert doc.history.count() == 1
    doc.history.undo()
    assert doc.layers_of(LayerKind.POSE) == []


def test_click_on_empty_canvas_deselects_and_adds_nothing(posed):
    doc, layer = posed
    tool = PoseTool(doc)
    tool.selected = 0
    drag(tool, [(5, 290), (8, 292)])
    assert tool.selected is None and len(current_pose(doc, layer.id).people) == 1
    assert doc.history.count() == 0


def test_band_in_progress_is_part_of_the_overlay(posed):
    doc, _ = posed
    tool = PoseTool(doc)
    tool.handle(ev(30, 250, Phase.PRESS))
    tool.handle(ev(10, 280, Phase.MOVE))
    assert tool.overlay().rubber_band == (10, 250, 30, 280)
    tool.cancel()
    assert tool.overlay().rubber_band is None


def test_cancel_mid_drag_restores_the_pose_without_history(posed):
    doc, layer = posed
    before = layer.pose
    tool = PoseTool(doc)
    nose = joint(doc, layer, Joint.NOSE)
    tool.handle(ev(nose.x, nose.y, Phase.PRESS))
    tool.handle(ev(nose.x + 50, nose.y + 50, Phase.MOVE))
    assert joint(doc, layer, Joint.NOSE) != nose
    tool.cancel()
    assert layer.pose is before and doc.history.count() == 0
    tool.handle(ev(nose.x + 60, nose.y, Phase.RELEASE))  # a stray release after Esc
    assert layer.pose is before


def test_pose_of_another_canvas_size_is_edited_in_document_coordinates(doc):
    small = Pose(200, 150, (Person.standing(50, 10, 100, 130),))
    layer = add_pose_layer(doc, small)
    doc.history.clear()
    tool = PoseTool(doc)
    nose = small.people[0].body[Joint.NOSE]
    drag(tool, [(nose.x * 2, nose.y * 2), (nose.x * 2 + 20, nose.y * 2)])
    assert (layer.pose.width, layer.pose.height) == (400, 300)
    assert layer.pose.people[0].body[Joint.NOSE].x == pytest.approx(nose.x * 2 + 20)
    doc.history.undo()
    assert layer.pose is small


_steps = st.lists(
    st.tuples(
        st.sampled_from(list(Joint)),
        st.floats(-60, 60, allow_nan=False),
        st.floats(-60, 60, allow_nan=False),
        st.integers(1, 4),
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=_steps)
def test_any_sequence_of_joint_drags_undoes_and_redoes_exactly(steps):
    doc = Document.blank(300, 300)
    layer = add_pose_layer(doc)
    add_person(doc, layer.id, Rect(50, 20, 200, 260))
    doc.history.clear()
    original = layer.pose
    tool = PoseTool(doc)
    snapshots = [original]
    for j, dx, dy, moves in steps:
        start = current_pose(doc, layer.id).people[0].body[j]
        path = [(start.x, start.y)] + [
            (start.x + dx * k / moves, start.y + dy * k / moves) for k in range(1, moves + 1)
        ]
        drag(tool, path, zoom=8.0)  # a large zoom: a small radius, so the grabbed joint is j
        if layer.pose != snapshots[-1]:  # a drag that moved nothing leaves no step
            snapshots.append(layer.pose)
        assert doc.history.count() == len(snapshots) - 1
    for expected in reversed(snapshots[:-1]):
        doc.history.undo()
        assert layer.pose == expected
    assert layer.pose is original
    for expected in snapshots[1:]:
        doc.history.redo()
        assert layer.pose == expected


def test_hands_and_face_follow_the_figure_and_toggle_off():
    from app.pose_details import default_face, with_details
    from app.pose_edit import add_pose_layer, set_pose, toggle_hands_and_face
    from inference.openpose import Joint, Person, Pose

    doc = Document.blank(400, 400)
    layer = add_pose_layer(doc)
    standing = Person.standing(100, 50, 150, 300)
    set_pose(doc, layer.id, Pose(400, 400, (standing,)), "Add person")
    assert toggle_hands_and_face(doc, layer.id, 0)
    person = doc.layer(layer.id).pose.people[0]
    assert len(person.face) == 70 and len(person.left_hand) == 21
    wrist = person.joint(Joint.L_WRIST)
    assert (person.left_hand[0].x, person.left_hand[0].y) == (wrist.x, wrist.y)
    fingertip = person.left_hand[12]  # middle finger continues the forearm, downwards
    assert fingertip.y > wrist.y
    nose, neck = person.joint(Joint.NOSE), person.joint(Joint.NECK)
    xs = [p.x for p in person.face]
    ys = [p.y for p in person.face]
    ear_span = abs(person.joint(Joint.L_EAR).x - person.joint(Joint.R_EAR).x)
    assert max(xs) - min(xs) == pytest.approx(ear_span, rel=0.05)
    assert min(ys) < nose.y < max(ys) <= neck.y + 1  # the face sits on the head, above the neck
    # turned like the eyes: a figure upside down gets an upside-down face
    flipped = standing.rotated(180)
    assert default_face(flipped)[8].y < flipped.joint(Joint.NOSE).y  # the chin is above the nose
    assert with_details(person) == person  # parts it has are kept
    assert not toggle_hands_and_face(doc, layer.id, 0)
    assert doc.layer(layer.id).pose.people[0] == standing
    doc.history.undo()
    assert doc.layer(layer.id).pose.people[0].face is not None
