"""Canvas size and crop: change the document's size, keeping every layer where it is.

One command, :class:`ResizeCanvas`, does both (and the growth of an outpaint): the canvas gets
a new size and everything on it moves by ``(dx, dy)`` so that the chosen anchor stays put. No
pixels are cut or resampled: a layer partly outside the new canvas keeps its pixels (picture
layers keep real offsets in .ora/.psd, as Krita and Photoshop keep "big data"), so undo is
exact and cheap — moving rasters costs nothing but their offsets.
"""

from __future__ import annotations

from dataclasses import replace
from enum import Enum
from typing import TYPE_CHECKING

from PySide6.QtGui import QUndoCommand

from app.document import MAX_SIDE
from app.geometry import Rect
from inference.limits import DEFAULT_PIXEL_LIMIT

if TYPE_CHECKING:
    from app.document import Document


class CanvasSizeError(ValueError):
    """A size the canvas cannot take; the message is one line for the user."""


class Anchor(Enum):
    """Where the old picture stays when the canvas changes size (Photoshop's 3×3 grid)."""

    TOP_LEFT = (0, 0)
    TOP = (1, 0)
    TOP_RIGHT = (2, 0)
    LEFT = (0, 1)
    CENTER = (1, 1)
    RIGHT = (2, 1)
    BOTTOM_LEFT = (0, 2)
    BOTTOM = (1, 2)
    BOTTOM_RIGHT = (2, 2)

    @property
    def column(self) -> int:
        return self.value[0]

    @property
    def row(self) -> int:
        return self.value[1]


def anchor_offset(old: tuple[int, int], new: tuple[int, int], anchor: Anchor) -> tuple[int, int]:
    """How far the old picture moves on a canvas resized from ``old`` to ``new``."""
    dx = (new[0] - old[0]) * anchor.column // 2
    dy = (new[1] - old[1]) * anchor.row // 2
    return dx, dy


def check_canvas_size(width: int, height: int, pixel_limit: int = DEFAULT_PIXEL_LIMIT) -> None:
    """Raise :class:`CanvasSizeError` for a size the document cannot have."""
    if width < 1 or height < 1:
        raise CanvasSizeError(f"A canvas of {width} × {height} has no area.")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise CanvasSizeError(
            f"A canvas of {width} × {height} is too large: each side can be at most {MAX_SIDE}."
        )
    if width * height > pixel_limit:
        raise CanvasSizeError(
            f"A canvas of {width} × {height} ({width * height / 1e6:.0f} MP) is over the "
            f"{pixel_limit / 1e6:.0f} MP limit."
        )


class ResizeCanvas(QUndoCommand):
    """The canvas becomes ``width`` x ``height``; every layer, the selection, the poses and the
    generation frame move by ``(dx, dy)``."""

    def __init__(
        self, doc: Document, width: int, height: int, dx: int, dy: int, text: str = ""
    ) -> None:
        super().__init__(text or "Canvas size")
        self.doc = doc
        self.old = (doc.width, doc.height)
        self.new = (int(width), int(height))
        self.dx, self.dy = int(dx), int(dy)

    def redo(self) -> None:
        apply_canvas_size(self.doc, *self.new, self.dx, self.dy)

    def undo(self) -> None:
        apply_canvas_size(self.doc, *self.old, -self.dx, -self.dy)


def apply_canvas_size(doc: Document, width: int, height: int, dx: int, dy: int) -> None:
    """The raw change (commands call it): no checks, no history."""
    for layer in doc.layers:
        raster = layer.raster
        if raster is not None:
            raster.x += dx
            raster.y += dy
        if layer.pose is not None:
            people = tuple(person.translated(dx, dy) for person in layer.pose.people)
            layer.pose = replace(layer.pose, width=width, height=height, people=people)
    doc.selection.x += dx
    doc.selection.y += dy
    if doc.preview is not None and doc.preview.raster is not None:
        doc.preview.raster.x += dx
        doc.preview.raster.y += dy
    doc.width, doc.height = int(width), int(height)
    doc.canvas_resized.emit(dx, dy)
    doc.size_changed.emit()
    doc.layers_changed.emit()
    doc.selection_changed.emit()
    doc.pixels_changed.emit(-1, doc.rect)


def resize_canvas(
    doc: Document,
    width: int,
    height: int,
    anchor: Anchor = Anchor.CENTER,
    pixel_limit: int = DEFAULT_PIXEL_LIMIT,
) -> None:
    """Image › Canvas Size: one undo step (raises :class:`CanvasSizeError`)."""
    check_canvas_size(width, height, pixel_limit)
    if (width, height) == (doc.width, doc.height):
        return
    dx, dy = anchor_offset((doc.width, doc.height), (width, height), anchor)
    doc.history.push(ResizeCanvas(doc, width, height, dx, dy, "Canvas size"))


def crop_canvas(
    doc: Document, rect: Rect, text: str = "Crop", pixel_limit: int = DEFAULT_PIXEL_LIMIT
) -> None:
    """The canvas becomes ``rect`` (document coordinates, may reach past the canvas)."""
    if rect.is_empty:
        raise CanvasSizeError("There is nothing to crop to: the area is empty.")
    check_canvas_size(rect.w, rect.h, pixel_limit)
    if rect == doc.rect:
        return
    doc.history.push(ResizeCanvas(doc, rect.w, rect.h, -rect.x, -rect.y, text))


def grown_size(doc: Document, rect: Rect) -> Rect:
    """The canvas (in today's coordinates) that holds both the canvas and ``rect``."""
    return doc.rect.united(rect)


def grow_to_fit(
    doc: Document, rect: Rect, text: str = "Grow canvas", pixel_limit: int = DEFAULT_PIXEL_LIMIT
) -> tuple[int, int]:
    """Grow the canvas (one command on the history) so that ``rect`` lies on it; returns how far
    everything moved. Nothing happens when ``rect`` is already on the canvas."""
    if rect.is_empty or doc.rect.contains(rect):
        return 0, 0
    total = grown_size(doc, rect)
    check_canvas_size(total.w, total.h, pixel_limit)
    dx, dy = -total.x, -total.y
    doc.history.push(ResizeCanvas(doc, total.w, total.h, dx, dy, text))
    return dx, dy
