"""Drawing the pose editor on the canvas.

:func:`paint_pose_overlay` paints an :class:`app.pose_edit.PoseOverlay` (what the pose tool says
is on screen) with a QPainter in widget coordinates, given the canvas's document -> screen mapping.
Sizes are screen pixels, so handles stay the same size at any zoom:

- bones as thin lines in their limb colours;
- joints as filled circles in their colours, hidden joints as hollow rings ("ghosts"), the hovered
  joint bigger with a white ring;
- the selected figure's box dashed, a square scale handle on its bottom-right corner and a round
  rotate handle above it;
- the rubber band (drag on empty canvas to add a figure) dashed.

:class:`PoseOverlayPainter` adapts that to the canvas's ``overlay_painters`` hook: it draws the pose
tool's overlay while that tool is the canvas's tool, keeps the cursor in step with what is under
it (:func:`cursor_for_hit`), and otherwise shows visible pose layers as plain skeletons (the
canvas's picture does not contain pose layers).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen

from app.layers import LayerKind
from app.pose_edit import (
    HitKind,
    OverlayBone,
    OverlayPoint,
    PoseHit,
    PoseOverlay,
    PoseTool,
    current_pose,
    person_bones,
)
from inference.openpose import Part, Person
from inference.openpose_render import (
    COLORS,
    FACE_POINT_COLOR,
    HAND_POINT_COLOR,
)

log = logging.getLogger(__name__)

ToScreen = Callable[[float, float], QPointF]

BONE_WIDTH_PX = 2.5
HOVER_GROWTH = 1.6  # the hovered joint is this much bigger
FACE_RADIUS_FACTOR = 0.5  # face points are small: 70 of them sit close together
HAND_RADIUS_FACTOR = 0.7
OUTLINE = QColor(0, 0, 0, 200)  # dark edge so bright joints read on a bright picture
FRAME_LIGHT = QColor(255, 255, 255, 230)
FRAME_DARK = QColor(0, 0, 0, 200)
HIGHLIGHT = QColor(255, 255, 255)
HANDLE_FILL = QColor(40, 140, 255)
IDLE_OPACITY = 0.55  # skeletons of pose layers while another tool is active
_UNSET = object()  # no cursor set by us since the tool was (re)selected


def cursor_for_hit(hit: PoseHit | None) -> Qt.CursorShape:
    """The cursor over what the pose tool hit-tests at the pointer."""
    if hit is None:
        return Qt.CursorShape.CrossCursor  # drag on empty canvas adds a figure
    return {
        HitKind.POINT: Qt.CursorShape.PointingHandCursor,
        HitKind.FIGURE: Qt.CursorShape.SizeAllCursor,
        HitKind.SCALE: Qt.CursorShape.SizeFDiagCursor,
        HitKind.ROTATE: Qt.CursorShape.OpenHandCursor,
    }[hit.kind]


def paint_pose_overlay(painter: QPainter, overlay: PoseOverlay | None, to_screen: ToScreen) -> None:
    """Paint ``overlay`` (document coordinates) with ``painter`` in screen coordinates."""
    if overlay is None:
        return
    painter.save()
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        _paint_bones(painter, overlay.bones, to_screen)
        if overlay.selected_frame is not None:
            _paint_frame(painter, overlay, to_screen)
        radius = overlay.handle_radius_px
        # hovered last, so it is drawn above its neighbours
        for point in sorted(overlay.points, key=lambda p: p.hovered):
            _paint_point(painter, point, to_screen, radius)
        if overlay.rubber_band is not None:
            _paint_band(painter, overlay.rubber_band, to_screen)
    finally:
        painter.restore()


def skeleton_overlay(people: Iterable[Person]) -> PoseOverlay:
    """A plain overlay of ``people``' visible points and bones (no hover, no selection, no
    ghosts): how a pose layer shows while another tool is active."""
    points: list[OverlayPoint] = []
    bones: list[OverlayBone] = []
    for n, person in enumerate(people):
        bones += person_bones(person)
        for part, index, point in person.points():
            if not point.visible:
                continue  # not part of the control image; only the pose tool shows ghosts
            color = COLORS[index] if part is Part.BODY else _small_point_color(part)
            points.append(
                OverlayPoint(point.x, point.y, color, n, part, index, point.visible, False, False)
            )
    return PoseOverlay(tuple(points), tuple(bones), None, None, None)


class PoseOverlayPainter:
    """An overlay painter for ``CanvasView.overlay_painters``: ``painter(qpainter, canvas)``.

    ``tool`` returns the pose tool of the current document (tools are rebuilt when the document
    is replaced). While that tool is the canvas's tool its overlay is drawn and the cursor
    follows the hover; otherwise, with ``show_idle_layers``, visible pose layers are drawn as
    faint skeletons so a pose stays visible while painting a mask.
    """

    def __init__(self, tool: Callable[[], PoseTool | None], show_idle_layers: bool = True):
        self._tool = tool
        self.show_idle_layers = show_idle_layers
        self._last_hover: object = _UNSET

    def __call__(self, painter: QPainter, canvas) -> None:
        tool = self._tool()
        if tool is not None and canvas.tool is tool:
            overlay = tool.overlay(canvas.scale)
            paint_pose_overlay(painter, overlay, canvas.doc_to_widget)
            self._follow_cursor(canvas, tool.hover)
            return
        self._last_hover = _UNSET  # the canvas resets the cursor when the tool changes
        doc = canvas.doc
        if not self.show_idle_layers or doc is None:
            return
        for layer in doc.layers:
            if layer.kind is not LayerKind.POSE or not doc.is_shown(layer) or layer.pose is None:
                continue
            people = current_pose(doc, layer.id).people
            if people:
                painter.save()
                painter.setOpacity(IDLE_OPACITY * layer.opacity)
                paint_pose_overlay(painter, skeleton_overlay(people), canvas.doc_to_widget)
                painter.restore()

    def _follow_cursor(self, canvas, hover: PoseHit | None) -> None:
        # Only on a change of hover: the canvas sets its own cursors while panning.
        if hover == self._last_hover:
            return
        self._last_hover = hover
        canvas.setCursor(cursor_for_hit(hover))


# ---- pieces ---------------------------------------------------------------------------------


def _qcolor(rgb: tuple[int, int, int], alpha: int = 255) -> QColor:
    return QColor(int(rgb[0]), int(rgb[1]), int(rgb[2]), alpha)


def _small_point_color(part: Part) -> tuple[int, int, int]:
    return FACE_POINT_COLOR if part is Part.FACE else HAND_POINT_COLOR


def _paint_bones(painter: QPainter, bones: Iterable[OverlayBone], to_screen: ToScreen) -> None:
    for bone in bones:
        pen = QPen(_qcolor(bone.color, 220), BONE_WIDTH_PX)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        painter.drawLine(to_screen(bone.x0, bone.y0), to_screen(bone.x1, bone.y1))


def _point_radius(point: OverlayPoint, base: float) -> float:
    if point.part is Part.FACE:
        base *= FACE_RADIUS_FACTOR
    elif point.part is not Part.BODY:
        base *= HAND_RADIUS_FACTOR
    return base * HOVER_GROWTH if point.hovered else base


def _paint_point(
    painter: QPainter, point: OverlayPoint, to_screen: ToScreen, base_radius: float
) -> None:
    center = to_screen(point.x, point.y)
    radius = _point_radius(point, base_radius)
    color = _qcolor(point.color)
    if point.visible:
        painter.setPen(QPen(OUTLINE, 1.0))
        painter.setBrush(QBrush(color))
    else:  # a hidden joint: a hollow ghost that can still be grabbed
        painter.setPen(QPen(color, 2.0))
        painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawEllipse(center, radius, radius)
    if point.hovered:
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(OUTLINE, 3.0))
        painter.drawEllipse(center, radius + 3.0, radius + 3.0)
        painter.setPen(QPen(HIGHLIGHT, 1.5))
        painter.drawEllipse(center, radius + 3.0, radius + 3.0)


def _dashed_rect(painter: QPainter, rect: QRectF) -> None:
    """A dashed outline that reads on light and dark pictures (white dashes over dark)."""
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.setPen(QPen(FRAME_DARK, 1.0))
    painter.drawRect(rect)
    dashes = QPen(FRAME_LIGHT, 1.0, Qt.PenStyle.DashLine)
    painter.setPen(dashes)
    painter.drawRect(rect)


def _screen_rect(box: tuple[float, float, float, float], to_screen: ToScreen) -> QRectF:
    return QRectF(to_screen(box[0], box[1]), to_screen(box[2], box[3])).normalized()


def _paint_frame(painter: QPainter, overlay: PoseOverlay, to_screen: ToScreen) -> None:
    frame = overlay.selected_frame
    assert frame is not None
    rect = _screen_rect(frame.box, to_screen)
    _dashed_rect(painter, rect)
    hovered = overlay.hovered.kind if overlay.hovered is not None else None
    size = overlay.handle_radius_px

    rotate = to_screen(*frame.rotate_handle)
    top_middle = QPointF(rect.center().x(), rect.top())
    painter.setPen(QPen(FRAME_DARK, 1.0))
    painter.drawLine(top_middle, rotate)
    painter.setPen(QPen(FRAME_LIGHT, 1.0, Qt.PenStyle.DashLine))
    painter.drawLine(top_middle, rotate)

    for kind, center, round_handle in (
        (HitKind.SCALE, to_screen(*frame.scale_handle), False),
        (HitKind.ROTATE, rotate, True),
    ):
        half = size * (HOVER_GROWTH if hovered is kind else 1.0)
        painter.setPen(QPen(HIGHLIGHT if hovered is kind else FRAME_DARK, 1.5))
        painter.setBrush(QBrush(HANDLE_FILL))
        if round_handle:
            painter.drawEllipse(center, half, half)
        else:
            painter.drawRect(QRectF(center.x() - half, center.y() - half, 2 * half, 2 * half))


def _paint_band(
    painter: QPainter, band: tuple[float, float, float, float], to_screen: ToScreen
) -> None:
    rect = _screen_rect(band, to_screen)
    coords = (rect.x(), rect.y(), rect.width(), rect.height())
    if not all(math.isfinite(v) for v in coords) or (rect.width() < 1 and rect.height() < 1):
        return
    painter.setBrush(QBrush(QColor(255, 255, 255, 24)))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawRect(rect)
    _dashed_rect(painter, rect)
