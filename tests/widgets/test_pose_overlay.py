"""Pose overlay painter: joints, ghosts, hover, the selected figure's frame and the rubber band
land as pixels at their screen positions; the canvas hook draws it and follows the cursor."""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QImage, QPainter

from app.document import Document
from app.geometry import Rect
from app.pose_edit import HitKind, PoseHit, PoseTool, add_pose_layer, set_point_visible
from app.tools import Phase, PointerEvent
from inference.openpose import Joint, Part, Person, Pose
from inference.openpose_render import COLORS
from widgets.canvas import CanvasView
from widgets.pose_overlay import (
    HANDLE_FILL,
    PoseOverlayPainter,
    cursor_for_hit,
    paint_pose_overlay,
    skeleton_overlay,
)

SCALE, OFFSET = 2.0, (10.0, 6.0)
BOX = Rect(20, 10, 60, 110)


def to_screen(x: float, y: float) -> QPointF:
    return QPointF(OFFSET[0] + SCALE * x, OFFSET[1] + SCALE * y)


@pytest.fixture
def doc() -> Document:
    doc = Document.blank(128, 128)
    person = Person.standing(BOX.x, BOX.y, BOX.w, BOX.h)
    add_pose_layer(doc, Pose(doc.width, doc.height, (person,)))
    return doc


@pytest.fixture
def tool(doc) -> PoseTool:
    tool = PoseTool(doc)
    tool.zoom = SCALE
    return tool


def paint(overlay) -> QImage:
    image = QImage(300, 300, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    paint_pose_overlay(painter, overlay, to_screen)
    painter.end()
    return image


def joint_screen(doc: Document, joint: Joint) -> QPointF:
    point = doc.active_layer.pose.people[0].joint(joint)
    return to_screen(point.x, point.y)


def at(image: QImage, point: QPointF, dx: float = 0.0, dy: float = 0.0) -> QColor:
    return image.pixelColor(round(point.x() + dx), round(point.y() + dy))


def isolated_joints(doc: Document, tool: PoseTool) -> list[Joint]:
    """Joints with no other handle close enough on screen to paint over their centre."""
    people = doc.active_layer.pose.people[0]
    reach = 2 * tool.overlay(SCALE).handle_radius_px + 2
    result = []
    for joint in Joint:
        here = people.joint(joint)
        others = [p for j, p in enumerate(people.body) if j != joint]
        if all(math.hypot(here.x - p.x, here.y - p.y) * SCALE > reach for p in others):
            result.append(joint)
    return result


def test_joints_are_filled_circles_in_their_colours(doc, tool):
    image = paint(tool.overlay(SCALE))
    joints = isolated_joints(doc, tool)
    assert len(joints) >= 8
    for joint in joints:
        color = at(image, joint_screen(doc, joint))
        assert (color.red(), color.green(), color.blue(), color.alpha()) == (
            *COLORS[joint],
            255,
        ), joint
    assert image.pixelColor(295, 295).alpha() == 0  # nothing far from the figure


def test_hidden_joint_is_a_hollow_ring(doc, tool):
    layer = doc.active_layer
    set_point_visible(doc, layer.id, 0, Part.BODY, Joint.L_WRIST, False)
    image = paint(tool.overlay(SCALE))
    center = joint_screen(doc, Joint.L_WRIST)
    radius = tool.overlay(SCALE).handle_radius_px
    assert at(image, center).alpha() == 0
    ring = max((at(image, center, dx=radius + d) for d in (-1, 0, 1)), key=QColor.alpha)
    assert ring.alpha() > 150
    assert (ring.red(), ring.green(), ring.blue()) == pytest.approx(COLORS[Joint.L_WRIST], abs=40)


def test_hovered_joint_is_bigger_with_a_ring(doc, tool):
    radius = tool.overlay(SCALE).handle_radius_px
    plain = paint(tool.overlay(SCALE))
    ankle = doc.active_layer.pose.people[0].joint(Joint.R_ANKLE)
    tool.handle(PointerEvent(ankle.x, ankle.y, Phase.HOVER, zoom=SCALE))
    assert tool.hover == PoseHit(HitKind.POINT, 0, Part.BODY, Joint.R_ANKLE)
    hovered = paint(tool.overlay(SCALE))
    center = joint_screen(doc, Joint.R_ANKLE)
    bigger = 1.4 * radius  # inside the grown disc, outside the normal one
    assert at(plain, center, dx=-bigger).alpha() == 0
    assert at(hovered, center, dx=-bigger).alpha() == 255
    ring = radius * 1.6 + 3
    assert at(hovered, center, dx=-ring).alpha() > 100
    other = joint_screen(doc, Joint.L_ANKLE)  # the other ankle is unchanged
    assert at(hovered, other, dx=bigger).alpha() == 0


def test_selected_figure_has_a_dashed_frame_and_handles(doc, tool):
    tool.selected = 0
    overlay = tool.overlay(SCALE)
    frame = overlay.selected_frame
    image = paint(overlay)
    left, top, right, bottom = frame.box
    top_left, bottom_right = to_screen(left, top), to_screen(right, bottom)
    edge = [
        image.pixelColor(round(x), round(top_left.y())).alpha()
        for x in range(round(top_left.x()) + 20, round(bottom_right.x()) - 20)
    ]
    assert min(edge) > 0  # the frame runs along the whole top edge
    colors = {
        image.pixelColor(round(x), round(top_left.y())).lightness()
        for x in range(round(top_left.x()) + 20, round(bottom_right.x()) - 20)
    }
    assert max(colors) - min(colors) > 100  # light dashes over a dark line
    for handle in (frame.scale_handle, frame.rotate_handle):
        assert at(image, to_screen(*handle)) == HANDLE_FILL
    inside = to_screen((left + right) / 2, bottom - 2 / SCALE)
    assert at(image, inside).alpha() == 0  # the frame is not filled


def test_rubber_band_is_drawn_while_dragging_on_empty_canvas(doc, tool):
    tool.handle(PointerEvent(90, 100, Phase.PRESS, zoom=SCALE))
    tool.handle(PointerEvent(120, 125, Phase.MOVE, zoom=SCALE))
    image = paint(tool.overlay(SCALE))
    corner_a, corner_b = to_screen(90, 100), to_screen(120, 125)
    y = round(corner_b.y())
    assert min(image.pixelColor(x, y).alpha() for x in range(round(corner_a.x()) + 2, 250)) > 0
    assert image.pixelColor(round(corner_a.x()) - 8, y).alpha() == 0


def test_skeleton_overlay_draws_a_pose_without_a_tool(doc):
    set_point_visible(doc, doc.active_layer.id, 0, Part.BODY, Joint.L_WRIST, False)
    people = doc.active_layer.pose.people
    image = paint(skeleton_overlay(people))
    neck = joint_screen(doc, Joint.NECK)
    assert at(image, neck).alpha() == 255
    overlay = skeleton_overlay(people)
    assert overlay.selected_frame is None and overlay.hovered is None
    assert len(overlay.bones) == 16  # the hidden wrist's forearm is not drawn
    assert at(image, joint_screen(doc, Joint.L_WRIST)).alpha() == 0
    assert len(overlay.points) == 17


def test_cursor_follows_what_is_under_the_pointer():
    assert cursor_for_hit(None) == Qt.CursorShape.CrossCursor
    assert cursor_for_hit(PoseHit(HitKind.POINT, 0, Part.BODY, 3)) == (
        Qt.CursorShape.PointingHandCursor
    )
    assert cursor_for_hit(PoseHit(HitKind.FIGURE, 0)) == Qt.CursorShape.SizeAllCursor
    assert cursor_for_hit(PoseHit(HitKind.SCALE, 0)) == Qt.CursorShape.SizeFDiagCursor
    assert cursor_for_hit(PoseHit(HitKind.ROTATE, 0)) == Qt.CursorShape.OpenHandCursor


def test_canvas_hook_draws_the_tool_overlay_and_idle_skeletons(qtbot, doc, tool):
    canvas = CanvasView()
    qtbot.addWidget(canvas)
    canvas.resize(300, 300)
    canvas.set_document(doc)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_zoom(2.0)
    canvas._offset = QPointF(*OFFSET)
    canvas.overlay_painters.append(PoseOverlayPainter(lambda: tool))

    wrist = doc.active_layer.pose.people[0].joint(Joint.R_WRIST)
    screen = canvas.doc_to_widget(wrist.x, wrist.y)
    background = canvas.grab().toImage()  # no tool: a faint skeleton over the white page
    faint = at(background, screen)
    assert faint != QColor(255, 255, 255) and faint.red() > 200  # R_WRIST is yellow, blended

    canvas.set_tool(tool)
    image = canvas.grab().toImage()
    color = at(image, screen)
    assert (color.red(), color.green(), color.blue()) == COLORS[Joint.R_WRIST]

    tool.handle(PointerEvent(wrist.x, wrist.y, Phase.HOVER, zoom=canvas.scale))
    canvas.grab()
    assert canvas.cursor().shape() == Qt.CursorShape.PointingHandCursor
    tool.handle(PointerEvent(5, 125, Phase.HOVER, zoom=canvas.scale))
    canvas.grab()
    assert canvas.cursor().shape() == Qt.CursorShape.CrossCursor
