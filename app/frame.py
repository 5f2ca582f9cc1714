"""The generation frame (InvokeAI's bounding box): the area Generate works on, chosen by hand.

A document has at most one frame, a rectangle in document pixels snapped to multiples of 8
(position and size) that may reach past the canvas: Generate then outpaints, and the canvas
grows when the result lands. Without a frame, Generate picks its area as before (mask,
selection, whole canvas).

The frame is part of the document's generation state, not of a widget: ``frame_of(doc)`` gives
the one :class:`GenerationFrame` of a document (``GenerationSession.frame`` is the same object),
whose ``changed`` signal carries the new :class:`~app.geometry.Rect` or None. It is kept in
``doc.generation_state["frame"]`` (saved with the project) and moves with the picture when the
canvas changes size. Live painting or a script reads ``frame_of(doc).rect`` as its area.

:class:`FrameTool` turns pointer events into frame edits (drag a new frame, move it, resize it
by its eight handles; Esc drops a drag in progress, or the frame).
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal

from app.geometry import Rect
from app.tools.base import Phase, PointerEvent

if TYPE_CHECKING:
    from app.document import Document

log = logging.getLogger(__name__)

SNAP = 8  # frame edges and sizes are multiples of this (the latent grid)
MIN_SIDE = 64  # the smallest side a model generates
MAX_SIDE = 8192  # the largest side the engine takes (inference.engine.MAX_SIDE)
STATE_KEY = "frame"  # inside Document.generation_state
HANDLE_RADIUS = 8.0  # screen pixels around a handle that grab it
MIN_DRAG = 4.0  # screen pixels a press must move before it draws a new frame


class FrameError(ValueError):
    """A frame that cannot be used; the message is one line for the user."""


def snap(value: float) -> int:
    return round(value / SNAP) * SNAP


def snapped(rect: Rect) -> Rect:
    """``rect`` with its edges on the 8-pixel grid, each side MIN_SIDE..MAX_SIDE."""
    if rect.is_empty:
        raise FrameError(f"The generation frame ({rect.w} × {rect.h}) has no area.")
    left, top = snap(rect.x), snap(rect.y)
    width = min(MAX_SIDE, max(MIN_SIDE, snap(rect.w)))
    height = min(MAX_SIDE, max(MIN_SIDE, snap(rect.h)))
    return Rect(left, top, width, height)


def generation_size(frame: Rect, native: int, exact: bool = False) -> tuple[int, int]:
    """The size the model generates the frame at: its aspect with about ``native²`` pixels
    (``exact``: at the frame's own size, limited to 4096 on the longer side)."""
    from inference.cropping import generation_size as model_size

    if exact:
        native = min(4096, max(64, snap(max(frame.w, frame.h))))
    if (frame.w, frame.h) == (native, native):
        return native, native
    return model_size(frame.w, frame.h, native)


def describe_frame(frame: Rect, native: int | None, exact: bool = False) -> str:
    """The frame tool's label: its size, and the size and scale the model works at
    (``native`` None: the classic engine, which works at the picture's own size)."""
    size = f"{frame.w} × {frame.h}"
    if native is None:
        return size
    width, height = generation_size(frame, native, exact)
    if (width, height) == (frame.w, frame.h):
        return f"{size} · model native"
    scale = math.sqrt((width * height) / (frame.w * frame.h))
    return f"{size} · generates at {width} × {height} (×{scale:.2f})"


class GenerationFrame(QObject):
    """The generation frame of one document (None when there is none)."""

    changed = Signal(object)  # Rect | None

    def __init__(self, doc: Document) -> None:
        super().__init__()
        self._doc = weakref.ref(doc)
        self._rect: Rect | None = _from_state(doc.generation_state.get(STATE_KEY))
        doc.canvas_resized.connect(self._canvas_resized)

    @property
    def rect(self) -> Rect | None:
        return self._rect

    @property
    def doc(self) -> Document | None:
        return self._doc()

    def set(self, rect: Rect | None) -> Rect | None:
        """Place the frame (snapped), or remove it with None; returns what it became."""
        new = snapped(rect) if rect is not None else None
        if new != self._rect:
            self._rect = new
            doc = self.doc
            if doc is not None:
                if new is None:
                    doc.generation_state.pop(STATE_KEY, None)
                else:
                    doc.generation_state[STATE_KEY] = [new.x, new.y, new.w, new.h]
            self.changed.emit(new)
        return new

    def clear(self) -> None:
        self.set(None)

    def outside_canvas(self) -> bool:
        """True when the frame reaches past the canvas (Generate will outpaint)."""
        doc = self.doc
        return self._rect is not None and doc is not None and not doc.rect.contains(self._rect)

    def _canvas_resized(self, dx: int, dy: int) -> None:
        if self._rect is not None:
            self.set(self._rect.translated(dx, dy))


_frames: weakref.WeakKeyDictionary[Any, GenerationFrame] = weakref.WeakKeyDictionary()


def frame_of(doc: Document) -> GenerationFrame:
    """The document's one generation frame object (made at first use)."""
    frame = _frames.get(doc)
    if frame is None:
        frame = _frames[doc] = GenerationFrame(doc)
    return frame


def _from_state(value: Any) -> Rect | None:
    if value is None:
        return None
    try:
        if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 4:
            raise FrameError(f"not four numbers: {value!r}")
        x, y, w, h = (int(v) for v in value)
        if any(abs(v) > 10 * MAX_SIDE for v in (x, y)):
            raise FrameError(f"too far from the canvas: {value!r}")
        return snapped(Rect(x, y, w, h))
    except (FrameError, TypeError, ValueError, OverflowError) as error:
        log.warning("ignoring a saved generation frame: %s", error)
        return None


# ---- the tool ---------------------------------------------------------------------------


class Grip(Enum):
    """What a press on the frame holds: an edge/corner (which sides move) or the body."""

    MOVE = (True, True, True, True)
    LEFT = (True, False, False, False)
    TOP = (False, True, False, False)
    RIGHT = (False, False, True, False)
    BOTTOM = (False, False, False, True)
    TOP_LEFT = (True, True, False, False)
    TOP_RIGHT = (False, True, True, False)
    BOTTOM_LEFT = (True, False, False, True)
    BOTTOM_RIGHT = (False, False, True, True)
    NEW = (False, False, False, False)  # drawing a new frame

    @property
    def cursor(self) -> Qt.CursorShape:
        """The pointer shape that tells what a press here would do."""
        shapes = Qt.CursorShape
        return {
            Grip.MOVE: shapes.SizeAllCursor,
            Grip.LEFT: shapes.SizeHorCursor,
            Grip.RIGHT: shapes.SizeHorCursor,
            Grip.TOP: shapes.SizeVerCursor,
            Grip.BOTTOM: shapes.SizeVerCursor,
            Grip.TOP_LEFT: shapes.SizeFDiagCursor,
            Grip.BOTTOM_RIGHT: shapes.SizeFDiagCursor,
            Grip.TOP_RIGHT: shapes.SizeBDiagCursor,
            Grip.BOTTOM_LEFT: shapes.SizeBDiagCursor,
            Grip.NEW: shapes.CrossCursor,
        }[self]


def handle_points(rect: Rect) -> dict[Grip, tuple[float, float]]:
    """The eight handles (document coordinates) of a frame."""
    cx, cy = rect.x + rect.w / 2, rect.y + rect.h / 2
    return {
        Grip.TOP_LEFT: (rect.x, rect.y),
        Grip.TOP: (cx, rect.y),
        Grip.TOP_RIGHT: (rect.right, rect.y),
        Grip.RIGHT: (rect.right, cy),
        Grip.BOTTOM_RIGHT: (rect.right, rect.bottom),
        Grip.BOTTOM: (cx, rect.bottom),
        Grip.BOTTOM_LEFT: (rect.x, rect.bottom),
        Grip.LEFT: (rect.x, cy),
    }


def grip_at(rect: Rect | None, x: float, y: float, zoom: float) -> Grip:
    """What a press at (x, y) would take hold of (``zoom``: screen px per document px)."""
    if rect is None:
        return Grip.NEW
    reach = HANDLE_RADIUS / max(zoom, 1e-6)
    best, best_distance = None, reach
    for grip, (hx, hy) in handle_points(rect).items():
        distance = math.hypot(x - hx, y - hy)
        if distance <= best_distance:
            best, best_distance = grip, distance
    if best is not None:
        return best
    if rect.x <= x < rect.right and rect.y <= y < rect.bottom:
        return Grip.MOVE
    return Grip.NEW


class FrameTool:
    """Drag a new frame, move it by its body, resize it by its handles (all snapped to 8)."""

    name = "frame"

    def __init__(self, frame: GenerationFrame) -> None:
        self.frame = frame
        self.hover = Grip.NEW  # what a press would grab now (the canvas shows it as a cursor)
        self._grip: Grip | None = None
        self._start: tuple[float, float] = (0.0, 0.0)
        self._before: Rect | None = None
        self._moved = False

    @property
    def dragging(self) -> bool:
        return self._grip is not None

    @property
    def cursor_shape(self) -> Qt.CursorShape:
        """What the canvas shows: the grip held, or the one under the pointer."""
        return (self._grip or self.hover).cursor

    def handle(self, event: PointerEvent) -> Rect | None:
        before = self.frame.rect
        if event.phase is Phase.HOVER:
            self.hover = grip_at(before, event.x, event.y, event.zoom)
            return None
        if event.phase is Phase.PRESS:
            self._grip = grip_at(before, event.x, event.y, event.zoom)
            self._start = (event.x, event.y)
            self._before = before
            self._moved = False
            return None
        if self._grip is None:
            return None
        dx, dy = event.x - self._start[0], event.y - self._start[1]
        if math.hypot(dx, dy) * event.zoom >= MIN_DRAG:
            self._moved = True
        if self._moved:
            self._apply(event, dx, dy)
        if event.phase is Phase.RELEASE:
            self._grip = None
            self.hover = grip_at(self.frame.rect, event.x, event.y, event.zoom)
        after = self.frame.rect
        return _union(before, after)

    def _apply(self, event: PointerEvent, dx: float, dy: float) -> None:
        grip, old = self._grip, self._before
        assert grip is not None
        if grip is Grip.NEW or old is None:
            sx, sy = self._start
            rect = Rect.from_edges(
                snap(min(sx, event.x)), snap(min(sy, event.y)),
                snap(max(sx, event.x)), snap(max(sy, event.y)),
            )  # fmt: skip
            if event.shift:  # a square, as Shift does in every rectangle tool
                side = max(rect.w, rect.h)
                rect = Rect(
                    rect.x if event.x >= sx else rect.right - side,
                    rect.y if event.y >= sy else rect.bottom - side,
                    side,
                    side,
                )
            self.frame.set(Rect(rect.x, rect.y, max(rect.w, SNAP), max(rect.h, SNAP)))
            return
        if grip is Grip.MOVE:
            self.frame.set(old.translated(snap(dx), snap(dy)))
            return
        move_left, move_top, move_right, move_bottom = grip.value
        left = old.x + snap(dx) if move_left else old.x
        top = old.y + snap(dy) if move_top else old.y
        right = old.right + snap(dx) if move_right else old.right
        bottom = old.bottom + snap(dy) if move_bottom else old.bottom
        # dragged past the opposite edge: keep the smallest frame, anchored at that edge
        if right - left < MIN_SIDE:
            left, right = (right - MIN_SIDE, right) if move_left else (left, left + MIN_SIDE)
        if bottom - top < MIN_SIDE:
            top, bottom = (bottom - MIN_SIDE, bottom) if move_top else (top, top + MIN_SIDE)
        self.frame.set(Rect.from_edges(left, top, right, bottom))

    def cancel(self) -> None:
        """Esc: drop the drag in progress (the frame goes back), or else remove the frame."""
        if self._grip is not None:
            self._grip = None
            self.frame.set(self._before)
            return
        self.frame.clear()


def _union(a: Rect | None, b: Rect | None) -> Rect | None:
    if a is None:
        return b
    if b is None:
        return a
    return a.united(b)
