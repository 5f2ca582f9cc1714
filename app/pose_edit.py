"""Editing pose layers: undoable pose commands and the pose tool.

A pose layer holds an immutable :class:`inference.openpose.Pose` in ``Layer.pose``. Every edit
replaces that value through :class:`EditPose` on the document's one history, so undo puts back the
exact previous value. Drags are shown live (the layer's pose is swapped without history) and
become one undo step on release.

:class:`PoseTool` takes the same plain pointer events as the other tools. Hit radii are given in
screen pixels and divided by the event's zoom, so joints stay easy to grab at any zoom.
:meth:`PoseTool.overlay` describes what the canvas draws on top: joint handles (hovered, hidden),
bones, the selected figure's box with its scale and rotate handles, and the rubber band.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from PySide6.QtGui import QUndoCommand

from app.document import Document, LayerLockedError
from app.geometry import Rect
from app.layers import ControlSettings, Layer, LayerKind
from app.pose_details import has_details, with_details, without_details
from app.tools.base import Phase, PointerEvent
from inference.openpose import Part, Person, Pose
from inference.openpose_render import (
    COLORS,
    HAND_EDGE_COLORS,
    HAND_EDGES,
    HAND_POINT_COLOR,
    LIMBS,
)

HIT_RADIUS_PX = 10.0  # screen pixels around a joint that grab it
HANDLE_RADIUS_PX = 5.0  # drawn size of a joint handle
BOX_PAD_PX = 8.0  # the selected figure's box, outside its points
ROTATE_OFFSET_PX = 28.0  # rotate handle above the box
MIN_FIGURE_PX = 12.0  # a rubber band smaller than this (on screen) is a click
ROTATE_SNAP_DEGREES = 15.0  # with shift
MIN_SCALE = 0.02
CLICK_FIGURE_HEIGHT = 0.8  # a figure added by a click is this share of the canvas height

RGB = tuple[int, int, int]
FACE_POINT_COLOR: RGB = (255, 255, 255)


class EditPose(QUndoCommand):
    """Replace a pose layer's pose. With ``applied=True`` the new pose is already shown (a drag
    painted it live), so the first ``redo`` does nothing."""

    def __init__(
        self,
        doc: Document,
        layer_id: int,
        before: Pose | None,
        after: Pose,
        text: str,
        applied: bool = False,
    ):
        super().__init__(text)
        self.doc, self.layer_id, self.before, self.after = doc, layer_id, before, after
        self._skip_redo = applied

    def redo(self) -> None:
        if self._skip_redo:
            self._skip_redo = False
            return
        self.doc._set_layer_property(self.layer_id, "pose", self.after)

    def undo(self) -> None:
        self.doc._set_layer_property(self.layer_id, "pose", self.before)


# ---- document-level operations (each one undo step) ---------------------------------------


def add_pose_layer(doc: Document, pose: Pose | None = None, name: str | None = None) -> Layer:
    """A new pose layer (active), fed to ControlNet as ``openpose``."""
    pose = Pose(doc.width, doc.height) if pose is None else pose
    return doc.add_layer(LayerKind.POSE, name, pose=pose, control=ControlSettings("openpose"))


def current_pose(doc: Document, layer_id: int) -> Pose:
    """The layer's pose in document coordinates (an empty one when it has none yet)."""
    layer = doc.layer(layer_id)
    if layer.kind is not LayerKind.POSE:
        raise ValueError(f"layer “{layer.name}” is not a pose layer")
    pose = layer.pose
    if pose is None:
        return Pose(doc.width, doc.height)
    if (pose.width, pose.height) != (doc.width, doc.height):
        return pose.resized(doc.width, doc.height)
    return pose


def set_pose(doc: Document, layer_id: int, pose: Pose, text: str) -> None:
    """Replace the layer's pose as one undo step. Raises LayerLockedError on a locked layer."""
    layer = doc.layer(layer_id)
    doc.check_editable(layer)
    if pose != layer.pose:
        doc.history.push(EditPose(doc, layer_id, layer.pose, pose, text))


def default_figure_box(doc: Document) -> Rect:
    """Where "add person" puts a figure: the selection's bounds, else the canvas (with margin)."""
    selected = doc.selection.content_rect().intersected(doc.rect)
    if selected.w >= 8 and selected.h >= 8:
        return selected
    margin_x, margin_y = doc.width // 10, doc.height // 20
    return Rect(margin_x, margin_y, doc.width - 2 * margin_x, doc.height - 2 * margin_y)


def figure_box_at(doc: Document, x: float, y: float) -> Rect:
    """A standing figure's box centred on (x, y), scaled to the canvas and kept inside it."""
    height = max(8, round(doc.height * CLICK_FIGURE_HEIGHT))
    width = max(4, min(doc.width, round(height * 0.5)))
    left = min(max(round(x - width / 2), 0), max(doc.width - width, 0))
    top = min(max(round(y - height / 2), 0), max(doc.height - height, 0))
    return Rect(left, top, width, height)


def add_person(doc: Document, layer_id: int, box: Rect | None = None) -> int:
    """Add a default standing figure fitted to ``box`` (default: :func:`default_figure_box`);
    returns its index."""
    box = default_figure_box(doc) if box is None else box
    pose = current_pose(doc, layer_id)
    person = Person.standing(box.x, box.y, max(box.w, 1), max(box.h, 1))
    set_pose(doc, layer_id, pose.with_person_added(person), "Add person")
    return len(pose.people)


def delete_person(doc: Document, layer_id: int, index: int) -> None:
    set_pose(doc, layer_id, current_pose(doc, layer_id).without_person(index), "Delete person")


def mirror_person(doc: Document, layer_id: int, index: int) -> None:
    pose = current_pose(doc, layer_id)
    set_pose(doc, layer_id, pose.with_person(index, pose.people[index].mirrored()), "Mirror person")


def toggle_hands_and_face(doc: Document, layer_id: int, index: int) -> bool:
    """Give the person default hands and face, or take them away; True when they now have them."""
    pose = current_pose(doc, layer_id)
    person = pose.people[index]
    adding = not has_details(person)
    changed = with_details(person) if adding else without_details(person)
    text = "Add hands and face" if adding else "Remove hands and face"
    set_pose(doc, layer_id, pose.with_person(index, changed), text)
    return adding


def transform_person(
    doc: Document,
    layer_id: int,
    index: int,
    *,
    dx: float = 0.0,
    dy: float = 0.0,
    scale: float = 1.0,
    degrees: float = 0.0,
) -> None:
    """Scale and rotate about the figure's centre, then move it; one undo step."""
    pose = current_pose(doc, layer_id)
    person = pose.people[index]
    pivot = person.center
    if scale != 1.0:
        person = person.scaled(scale, pivot)
    if degrees:
        person = person.rotated(degrees, pivot)
    if dx or dy:
        person = person.translated(dx, dy)
    set_pose(doc, layer_id, pose.with_person(index, person), "Transform person")


def move_point(
    doc: Document, layer_id: int, person: int, part: Part, index: int, x: float, y: float
) -> None:
    pose = current_pose(doc, layer_id)
    moved = pose.people[person].with_point_moved(part, index, x, y)
    set_pose(doc, layer_id, pose.with_person(person, moved), "Move joint")


def set_point_visible(
    doc: Document, layer_id: int, person: int, part: Part, index: int, visible: bool
) -> None:
    pose = current_pose(doc, layer_id)
    changed = pose.people[person].with_point_visible(part, index, visible)
    set_pose(
        doc, layer_id, pose.with_person(person, changed), "Show joint" if visible else "Hide joint"
    )


# ---- hit testing ----------------------------------------------------------------------------


class HitKind(Enum):
    POINT = "point"  # a keypoint (part + index)
    FIGURE = "figure"  # inside a figure's box, not on a point: drag moves the figure
    SCALE = "scale"  # the selected figure's scale handle
    ROTATE = "rotate"  # the selected figure's rotate handle


@dataclass(frozen=True)
class PoseHit:
    kind: HitKind
    person: int
    part: Part | None = None
    index: int | None = None


@dataclass(frozen=True)
class FigureFrame:
    """The selected figure's box and handles, in document coordinates, for one zoom."""

    box: tuple[float, float, float, float]  # left, top, right, bottom
    scale_handle: tuple[float, float]
    rotate_handle: tuple[float, float]


def figure_frame(person: Person, zoom: float) -> FigureFrame:
    left, top, right, bottom = person.bounds()
    pad = BOX_PAD_PX / zoom
    box = (left - pad, top - pad, right + pad, bottom + pad)
    return FigureFrame(
        box, (box[2], box[3]), ((box[0] + box[2]) / 2, box[1] - ROTATE_OFFSET_PX / zoom)
    )


def hit_test(
    pose: Pose, x: float, y: float, zoom: float = 1.0, selected: int | None = None
) -> PoseHit | None:
    """What is under (x, y): the selected figure's handles first, then the nearest point (hidden
    ones too: they are drawn as ghosts; on a tie a visible point and then the top-most person
    wins), then the top-most figure whose box contains the position."""
    radius = HIT_RADIUS_PX / zoom
    if selected is not None and 0 <= selected < len(pose.people):
        frame = figure_frame(pose.people[selected], zoom)
        for kind, (hx, hy) in (
            (HitKind.SCALE, frame.scale_handle),
            (HitKind.ROTATE, frame.rotate_handle),
        ):
            if math.hypot(x - hx, y - hy) <= radius:
                return PoseHit(kind, selected)
    best: tuple[float, int, int] | None = None  # (distance, hidden?, -person): smallest wins
    best_hit: PoseHit | None = None
    for n, person in enumerate(pose.people):
        for part, index, point in person.points():
            distance = math.hypot(x - point.x, y - point.y)
            key = (distance, 0 if point.visible else 1, -n)
            if distance <= radius and (best is None or key < best):
                best, best_hit = key, PoseHit(HitKind.POINT, n, part, index)
    if best_hit is not None:
        return best_hit
    for n in reversed(range(len(pose.people))):
        left, top, right, bottom = figure_frame(pose.people[n], zoom).box
        if left <= x <= right and top <= y <= bottom:
            return PoseHit(HitKind.FIGURE, n)
    return None


# ---- overlay description --------------------------------------------------------------------


@dataclass(frozen=True)
class OverlayPoint:
    x: float
    y: float
    color: RGB
    person: int
    part: Part
    index: int
    visible: bool  # hidden points are drawn as hollow ghosts
    hovered: bool
    in_selected_person: bool


@dataclass(frozen=True)
class OverlayBone:
    x0: float
    y0: float
    x1: float
    y1: float
    color: RGB


@dataclass(frozen=True)
class PoseOverlay:
    """What the canvas draws over a pose layer. Coordinates are document pixels; sizes ending in
    ``_px`` are screen pixels (constant at any zoom)."""

    points: tuple[OverlayPoint, ...]
    bones: tuple[OverlayBone, ...]
    selected_frame: FigureFrame | None
    hovered: PoseHit | None
    rubber_band: tuple[float, float, float, float] | None  # left, top, right, bottom
    handle_radius_px: float = HANDLE_RADIUS_PX
    hit_radius_px: float = HIT_RADIUS_PX


def _point_color(part: Part, index: int) -> RGB:
    if part is Part.BODY:
        return COLORS[index]
    return FACE_POINT_COLOR if part is Part.FACE else HAND_POINT_COLOR


def person_bones(person: Person) -> list[OverlayBone]:
    """The visible limbs and hand edges of ``person`` as coloured segments."""
    bones = []
    for limb, (a, b) in enumerate(LIMBS):
        pa, pb = person.body[a], person.body[b]
        if pa.visible and pb.visible:
            bones.append(OverlayBone(pa.x, pa.y, pb.x, pb.y, COLORS[limb]))
    for hand in (person.left_hand, person.right_hand):
        for edge, (a, b) in enumerate(HAND_EDGES):
            if hand is not None and hand[a].visible and hand[b].visible:
                color = tuple(round(c) for c in HAND_EDGE_COLORS[edge])
                bones.append(OverlayBone(hand[a].x, hand[a].y, hand[b].x, hand[b].y, color))  # type: ignore[arg-type]
    return bones


# ---- the tool -------------------------------------------------------------------------------


@dataclass
class _Drag:
    layer_id: int
    before: Pose | None  # the layer's value before the drag (restored by undo / cancel)
    start_pose: Pose  # the same in document coordinates
    hit: PoseHit
    start: tuple[float, float]
    pivot: tuple[float, float]
    grab: tuple[float, float] = (0.0, 0.0)  # point position minus press position
    moved: bool = False


class PoseTool:
    """Edit the active pose layer (or the topmost one) with pointer events.

    - drag a joint to move it (hidden joints show as ghosts and can be dragged too);
    - alt-click a joint to hide / show it;
    - click a figure to select it; drag inside its box to move it;
    - drag the selected figure's corner handle to scale, the handle above it to rotate
      (shift snaps to 15°);
    - drag on empty canvas to add a standing figure fitted to the dragged box (a pose layer is
      created when there is none); click on empty canvas to deselect, or, while there is no
      figure yet, to add one there, scaled to the canvas.
    Each gesture is one undo step; :meth:`cancel` (Esc) puts the pose back as it was.
    """

    name = "pose"

    def __init__(self, doc: Document):
        self.doc = doc
        self.hover: PoseHit | None = None
        self.selected: int | None = None
        self.zoom = 1.0
        self._drag: _Drag | None = None
        self._band: tuple[float, float, float, float] | None = None

    # ---- target ------------------------------------------------------------------------

    def target_layer(self) -> Layer | None:
        active = self.doc.active_layer
        if active is not None and active.kind is LayerKind.POSE:
            return active
        poses = self.doc.layers_of(LayerKind.POSE)
        return poses[-1] if poses else None

    def _pose(self) -> Pose | None:
        layer = self.target_layer()
        return None if layer is None else current_pose(self.doc, layer.id)

    def _selected_index(self, pose: Pose | None) -> int | None:
        if pose is None or self.selected is None or self.selected >= len(pose.people):
            return None
        return self.selected

    # ---- events ------------------------------------------------------------------------

    def handle(self, event: PointerEvent) -> Rect | None:
        self.zoom = max(event.zoom, 1e-6)
        if event.phase is Phase.HOVER:
            return self._hover(event)
        if event.phase is Phase.PRESS:
            return self._press(event)
        if self._drag is not None:
            return self._drag_to(event, finish=event.phase is Phase.RELEASE)
        if self._band is not None:
            x0, y0 = self._band[:2]
            self._band = (x0, y0, event.x, event.y)
            if event.phase is Phase.RELEASE:
                return self._finish_band()
            return self.doc.rect
        return None

    def cancel(self) -> None:
        drag, self._drag, self._band = self._drag, None, None
        if drag is not None and drag.moved:
            self.doc._set_layer_property(drag.layer_id, "pose", drag.before)

    def _hover(self, event: PointerEvent) -> Rect | None:
        pose = self._pose()
        hit = None
        if pose is not None:
            hit = hit_test(pose, event.x, event.y, self.zoom, self._selected_index(pose))
        if hit == self.hover:
            return None
        self.hover = hit
        return self.doc.rect

    def _press(self, event: PointerEvent) -> Rect | None:
        layer = self.target_layer()
        pose = None if layer is None else current_pose(self.doc, layer.id)
        hit = None
        if pose is not None:
            hit = hit_test(pose, event.x, event.y, self.zoom, self._selected_index(pose))
        if hit is None or layer is None or pose is None:
            self._band = (event.x, event.y, event.x, event.y)
            return self.doc.rect
        try:
            self.doc.check_editable(layer)
        except LayerLockedError as err:
            self.doc.notice.emit(str(err))
            return None
        self.selected = hit.person
        if hit.kind is HitKind.POINT and event.alt:
            assert hit.part is not None and hit.index is not None
            point = pose.people[hit.person].point(hit.part, hit.index)
            set_point_visible(
                self.doc, layer.id, hit.person, hit.part, hit.index, not point.visible
            )
            return self.doc.rect
        person = pose.people[hit.person]
        grab = (0.0, 0.0)
        if hit.kind is HitKind.POINT:
            assert hit.part is not None and hit.index is not None
            point = person.point(hit.part, hit.index)
            grab = (point.x - event.x, point.y - event.y)
        self._drag = _Drag(layer.id, layer.pose, pose, hit, (event.x, event.y), person.center, grab)
        return self.doc.rect

    def _drag_to(self, event: PointerEvent, finish: bool) -> Rect | None:
        drag = self._drag
        assert drag is not None
        index = drag.hit.person
        person = self._dragged_person(drag, event)
        if person is not None:
            after = drag.start_pose.with_person(index, person)
            if after != drag.start_pose or drag.moved:
                drag.moved = True
                self.doc._set_layer_property(drag.layer_id, "pose", after)
        if finish:
            self._drag = None
            layer = self.doc.layer(drag.layer_id)
            if drag.moved and layer.pose != drag.before:
                text = {
                    HitKind.POINT: "Move joint",
                    HitKind.FIGURE: "Move person",
                    HitKind.SCALE: "Scale person",
                    HitKind.ROTATE: "Rotate person",
                }[drag.hit.kind]
                self.doc.history.push(
                    EditPose(self.doc, drag.layer_id, drag.before, layer.pose, text, applied=True)
                )
        return self.doc.rect

    def _dragged_person(self, drag: _Drag, event: PointerEvent) -> Person | None:
        start_person = drag.start_pose.people[drag.hit.person]
        (sx, sy), (cx, cy) = drag.start, drag.pivot
        hit = drag.hit
        if hit.kind is HitKind.POINT:
            assert hit.part is not None and hit.index is not None
            x, y = event.x + drag.grab[0], event.y + drag.grab[1]
            return start_person.with_point_moved(hit.part, hit.index, x, y)
        if hit.kind is HitKind.FIGURE:
            return start_person.translated(event.x - sx, event.y - sy)
        if hit.kind is HitKind.SCALE:
            reach = math.hypot(sx - cx, sy - cy)
            if reach < 1e-9:
                return None
            factor = max(MIN_SCALE, math.hypot(event.x - cx, event.y - cy) / reach)
            return start_person.scaled(factor, (cx, cy))
        angle = math.degrees(math.atan2(event.y - cy, event.x - cx) - math.atan2(sy - cy, sx - cx))
        if event.shift:
            angle = round(angle / ROTATE_SNAP_DEGREES) * ROTATE_SNAP_DEGREES
        return start_person.rotated(angle, (cx, cy))

    def _finish_band(self) -> Rect | None:
        band, self._band = self._band, None
        assert band is not None
        left, right = sorted((band[0], band[2]))
        top, bottom = sorted((band[1], band[3]))
        min_size = MIN_FIGURE_PX / self.zoom
        layer = self.target_layer()
        if right - left < min_size or bottom - top < min_size:  # a click on empty canvas
            pose = None if layer is None else current_pose(self.doc, layer.id)
            if pose is not None and pose.people:
                self.selected = None
                return self.doc.rect
            box = figure_box_at(self.doc, band[0], band[1])  # nothing yet: add a figure there
        else:
            box = Rect.from_edges(
                math.floor(left), math.floor(top), math.ceil(right), math.ceil(bottom)
            )
        if layer is None:
            self.doc.history.beginMacro("Add person")
            layer = add_pose_layer(self.doc)
            self.selected = add_person(self.doc, layer.id, box)
            self.doc.history.endMacro()
            return self.doc.rect
        try:
            self.selected = add_person(self.doc, layer.id, box)
        except LayerLockedError as err:
            self.doc.notice.emit(str(err))
        return self.doc.rect

    # ---- actions for menus and keys ----------------------------------------------------

    def _act_on_selected(self, action: Callable[[Document, int, int], object]) -> bool:
        layer = self.target_layer()
        pose = self._pose()
        index = self._selected_index(pose)
        if layer is None or index is None:
            return False
        try:
            action(self.doc, layer.id, index)
        except LayerLockedError as err:
            self.doc.notice.emit(str(err))
            return False
        return True

    def delete_selected(self) -> bool:
        done = self._act_on_selected(delete_person)
        if done:
            self.selected = None
            self.hover = None
        return done

    def mirror_selected(self) -> bool:
        return self._act_on_selected(mirror_person)

    def toggle_hands_and_face_selected(self) -> bool:
        return self._act_on_selected(toggle_hands_and_face)

    def has_selection(self) -> bool:
        return self._selected_index(self._pose()) is not None

    def add_person(self, box: Rect | None = None) -> int:
        """Add a standing figure (in the selection / ``box``), creating a pose layer if needed."""
        layer = self.target_layer()
        if layer is None:
            self.doc.history.beginMacro("Add person")
            layer = add_pose_layer(self.doc)
            self.selected = add_person(self.doc, layer.id, box)
            self.doc.history.endMacro()
        else:
            self.selected = add_person(self.doc, layer.id, box)
        return self.selected

    # ---- overlay -----------------------------------------------------------------------

    def overlay(self, zoom: float | None = None) -> PoseOverlay | None:
        """What the canvas should draw for the target pose layer (None: no pose layer)."""
        zoom = self.zoom if zoom is None else zoom
        pose = self._pose()
        band = None
        if self._band is not None:
            x0, y0, x1, y1 = self._band
            band = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        if pose is None:
            return None if band is None else PoseOverlay((), (), None, None, band)
        selected = self._selected_index(pose)
        points, bones = [], []
        for n, person in enumerate(pose.people):
            bones += person_bones(person)
            for part, index, point in person.points():
                hovered = self.hover == PoseHit(HitKind.POINT, n, part, index)
                points.append(
                    OverlayPoint(
                        point.x,
                        point.y,
                        _point_color(part, index),
                        n,
                        part,
                        index,
                        point.visible,
                        hovered,
                        n == selected,
                    )
                )
        frame = None if selected is None else figure_frame(pose.people[selected], zoom)
        return PoseOverlay(tuple(points), tuple(bones), frame, self.hover, band)
