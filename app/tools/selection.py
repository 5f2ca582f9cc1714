"""Rectangle and lasso selection. The selection is a one-channel bounded raster (255 = selected)."""

from __future__ import annotations

from enum import Enum

import cv2
import numpy as np

from app.document import Document
from app.geometry import Rect
from app.raster import Raster
from app.tools.base import Phase, PointerEvent


class SelectionMode(Enum):
    REPLACE = "replace"
    ADD = "add"  # shift
    SUBTRACT = "subtract"  # alt


def combine(current: Raster, shape: Raster, mode: SelectionMode) -> Raster:
    if mode is SelectionMode.REPLACE:
        return shape
    area = current.rect.united(shape.rect)
    if area.is_empty:
        return Raster(1)
    old, new = current.read(area), shape.read(area)
    data = np.maximum(old, new) if mode is SelectionMode.ADD else np.minimum(old, 255 - new)
    result = Raster(1, data, area.x, area.y)
    result.trim()
    return result


class _SelectTool:
    name = "select"

    def __init__(self, doc: Document, mode: SelectionMode = SelectionMode.REPLACE):
        self.doc, self.mode = doc, mode
        self.points: list[tuple[float, float]] = []
        self.gesture_mode = mode

    def handle(self, event: PointerEvent) -> Rect | None:
        if event.phase is Phase.HOVER:
            return None
        if event.phase is Phase.PRESS:
            self.points = [(event.x, event.y)]
            self.gesture_mode = (
                SelectionMode.ADD
                if event.shift
                else SelectionMode.SUBTRACT
                if event.alt
                else self.mode
            )
            return None
        if not self.points:
            return None
        self._extend(event.x, event.y)
        if event.phase is Phase.RELEASE:
            shape = self._rasterize()
            self.points = []
            if shape is None:  # a click without a drag deselects
                if self.gesture_mode is SelectionMode.REPLACE:
                    self.doc.clear_selection()
                return self.doc.rect
            self.doc.set_selection(combine(self.doc.selection, shape, self.gesture_mode))
            return self.doc.rect
        return self.outline_rect()

    def cancel(self) -> None:
        self.points = []

    def outline(self) -> list[tuple[float, float]]:
        """The gesture in progress, for the canvas to draw marching ants."""
        return list(self.points)

    def outline_rect(self) -> Rect:
        xs, ys = [p[0] for p in self.points], [p[1] for p in self.points]
        return Rect.from_edges(
            int(min(xs)) - 2, int(min(ys)) - 2, int(max(xs)) + 3, int(max(ys)) + 3
        )

    def _extend(self, x: float, y: float) -> None:
        raise NotImplementedError

    def _polygon(self) -> np.ndarray:
        return np.asarray(self.points, np.float64)

    def _rasterize(self) -> Raster | None:
        polygon = self._polygon()
        bounds = Rect.from_edges(
            int(np.floor(polygon[:, 0].min())),
            int(np.floor(polygon[:, 1].min())),
            int(np.ceil(polygon[:, 0].max())),
            int(np.ceil(polygon[:, 1].max())),
        ).intersected(self.doc.rect)
        if bounds.w < 2 or bounds.h < 2:
            return None
        data = np.zeros((bounds.h, bounds.w), np.uint8)
        local = np.round(polygon - [bounds.x, bounds.y]).astype(np.int32)
        cv2.fillPoly(data, [local], 255)
        return Raster(1, data, bounds.x, bounds.y)


class RectSelectTool(_SelectTool):
    name = "rect_select"

    def _extend(self, x: float, y: float) -> None:
        self.points = [self.points[0], (x, y)]

    def _polygon(self) -> np.ndarray:
        (x0, y0), (x1, y1) = self.points[0], self.points[-1]
        left, right = sorted((round(x0), round(x1)))
        top, bottom = sorted((round(y0), round(y1)))
        return np.asarray([(left, top), (right, top), (right, bottom), (left, bottom)], np.float64)

    def _rasterize(self) -> Raster | None:
        polygon = self._polygon()
        left, top = polygon[0]
        right, bottom = polygon[2]
        rect = Rect.from_edges(int(left), int(top), int(right), int(bottom)).intersected(
            self.doc.rect
        )
        if rect.w < 2 or rect.h < 2:
            return None
        return Raster(1, np.full((rect.h, rect.w), 255, np.uint8), rect.x, rect.y)


class LassoSelectTool(_SelectTool):
    name = "lasso_select"

    def _extend(self, x: float, y: float) -> None:
        last = self.points[-1]
        if abs(x - last[0]) + abs(y - last[1]) >= 1.0:
            self.points.append((x, y))
