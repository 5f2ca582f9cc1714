"""Integer rectangles in document pixels."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    w: int
    h: int

    @classmethod
    def from_edges(cls, left: int, top: int, right: int, bottom: int) -> Rect:
        return cls(left, top, max(0, right - left), max(0, bottom - top))

    @classmethod
    def around(cls, cx: float, cy: float, radius: float) -> Rect:
        """Smallest integer rect containing the disc of ``radius`` around (cx, cy)."""
        left, top = math.floor(cx - radius), math.floor(cy - radius)
        return cls.from_edges(left, top, math.ceil(cx + radius) + 1, math.ceil(cy + radius) + 1)

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    @property
    def is_empty(self) -> bool:
        return self.w <= 0 or self.h <= 0

    @property
    def area(self) -> int:
        return 0 if self.is_empty else self.w * self.h

    def intersected(self, other: Rect) -> Rect:
        return Rect.from_edges(
            max(self.x, other.x),
            max(self.y, other.y),
            min(self.right, other.right),
            min(self.bottom, other.bottom),
        )

    def united(self, other: Rect) -> Rect:
        if self.is_empty:
            return other
        if other.is_empty:
            return self
        return Rect.from_edges(
            min(self.x, other.x),
            min(self.y, other.y),
            max(self.right, other.right),
            max(self.bottom, other.bottom),
        )

    def contains(self, other: Rect) -> bool:
        return other.is_empty or (
            self.x <= other.x
            and self.y <= other.y
            and self.right >= other.right
            and self.bottom >= other.bottom
        )

    def translated(self, dx: int, dy: int) -> Rect:
        return Rect(self.x + dx, self.y + dy, self.w, self.h)

    def adjusted(self, margin: int) -> Rect:
        return Rect(self.x - margin, self.y - margin, self.w + 2 * margin, self.h + 2 * margin)

    def aligned(self, grid: int) -> Rect:
        """Grow outwards so every edge sits on a multiple of ``grid``."""
        left = (self.x // grid) * grid
        top = (self.y // grid) * grid
        right = -(-self.right // grid) * grid
        bottom = -(-self.bottom // grid) * grid
        return Rect.from_edges(left, top, right, bottom)

    def slices(self, origin: Rect) -> tuple[slice, slice]:
        """Numpy (rows, cols) slices of this rect inside an array placed at ``origin``."""
        return (
            slice(self.y - origin.y, self.bottom - origin.y),
            slice(self.x - origin.x, self.right - origin.x),
        )


EMPTY = Rect(0, 0, 0, 0)
