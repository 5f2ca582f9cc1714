"""Pixels with their own bounds, so a layer costs only the area it covers.

A :class:`Raster` is a uint8 array placed at an offset in document coordinates: (h, w, 4) straight
RGBA, or (h, w) for one-channel data (masks, selections). Reads outside the array give zeros
(transparent / unmasked); writes outside it grow the array, in 64-pixel steps so a brush stroke
does not reallocate on every dab.
"""

from __future__ import annotations

import numpy as np

from app.geometry import EMPTY, Rect

GROW_GRID = 64
MAX_SLACK = 512


class Raster:
    def __init__(self, channels: int, data: np.ndarray | None = None, x: int = 0, y: int = 0):
        if channels not in (1, 4):
            raise ValueError(f"a raster has 1 or 4 channels, not {channels}")
        self.channels = channels
        if data is None:
            data = np.zeros(self._shape(0, 0), np.uint8)
        data = np.ascontiguousarray(data, dtype=np.uint8)
        if data.shape[2:] != self._shape(0, 0)[2:] or data.ndim != len(self._shape(0, 0)):
            raise ValueError(
                f"array of shape {data.shape} does not fit a {channels}-channel raster"
            )
        self.data = data
        self.x, self.y = x, y

    def _shape(self, h: int, w: int) -> tuple[int, ...]:
        return (h, w) if self.channels == 1 else (h, w, self.channels)

    @property
    def rect(self) -> Rect:
        return Rect(self.x, self.y, self.data.shape[1], self.data.shape[0])

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    def copy(self) -> Raster:
        return Raster(self.channels, self.data.copy(), self.x, self.y)

    def read(self, rect: Rect) -> np.ndarray:
        """A copy of ``rect``; pixels outside the stored bounds are zero."""
        out = np.zeros(self._shape(max(rect.h, 0), max(rect.w, 0)), np.uint8)
        common = rect.intersected(self.rect)
        if not common.is_empty:
            out[common.slices(rect)] = self.data[common.slices(self.rect)]
        return out

    def view(self, rect: Rect) -> np.ndarray:
        """A writable view of ``rect``, which must lie inside the stored bounds."""
        if not self.rect.contains(rect):
            raise ValueError(f"{rect} is outside the raster bounds {self.rect}")
        return self.data[rect.slices(self.rect)]

    def ensure(self, rect: Rect, limit: Rect | None = None) -> None:
        """Grow (never shrink) so that ``rect`` is stored.

        When ``limit`` (the canvas) is given, growth takes some slack in the direction it grows
        (half the current size, at most MAX_SLACK), so a stroke moving across the canvas
        reallocates a few times instead of every 64 pixels."""
        if rect.is_empty or self.rect.contains(rect):
            return
        if self.rect.is_empty:
            wanted = rect.aligned(GROW_GRID)
        else:
            wanted = self.rect.united(rect.aligned(GROW_GRID))
            if limit is not None:
                wanted = self._with_slack(wanted, limit)
        grown = np.zeros(self._shape(wanted.h, wanted.w), np.uint8)
        if not self.rect.is_empty:
            grown[self.rect.slices(wanted)] = self.data
        self.data, self.x, self.y = grown, wanted.x, wanted.y

    def _with_slack(self, wanted: Rect, limit: Rect) -> Rect:
        old = self.rect
        slack_x = min(MAX_SLACK, max(GROW_GRID, old.w // 2))
        slack_y = min(MAX_SLACK, max(GROW_GRID, old.h // 2))
        left = wanted.x - slack_x if wanted.x < old.x else wanted.x
        top = wanted.y - slack_y if wanted.y < old.y else wanted.y
        right = wanted.right + slack_x if wanted.right > old.right else wanted.right
        bottom = wanted.bottom + slack_y if wanted.bottom > old.bottom else wanted.bottom
        canvas = limit.aligned(GROW_GRID)
        slacked = Rect.from_edges(left, top, right, bottom).intersected(canvas).united(wanted)
        if slacked.area * 2 > canvas.area:
            # past half the canvas, take all of it at once: no more reallocations of a big array
            return canvas.united(wanted)
        return slacked

    def write(self, rect: Rect, pixels: np.ndarray, limit: Rect | None = None) -> None:
        if rect.is_empty:
            return
        if pixels.shape[:2] != (rect.h, rect.w):
            raise ValueError(f"pixels {pixels.shape[:2]} do not match {rect}")
        self.ensure(rect, limit)
        self.data[rect.slices(self.rect)] = pixels

    def content_rect(self) -> Rect:
        """Bounds of the non-transparent (non-zero) pixels."""
        if self.rect.is_empty:
            return EMPTY
        alpha = self.data if self.channels == 1 else self.data[..., 3]
        rows = np.flatnonzero(alpha.any(axis=1))
        if rows.size == 0:
            return EMPTY
        cols = np.flatnonzero(alpha.any(axis=0))
        return Rect.from_edges(
            self.x + int(cols[0]),
            self.y + int(rows[0]),
            self.x + int(cols[-1]) + 1,
            self.y + int(rows[-1]) + 1,
        )

    def trim(self) -> None:
        """Drop stored area that holds nothing."""
        content = self.content_rect()
        if content != self.rect:
            self.data = (
                np.ascontiguousarray(self.read(content))
                if not content.is_empty
                else (np.zeros(self._shape(0, 0), np.uint8))
            )
            self.x, self.y = (content.x, content.y) if not content.is_empty else (0, 0)

    def is_blank(self) -> bool:
        return self.content_rect().is_empty


def full_raster(width: int, height: int, channels: int, fill: int = 0) -> Raster:
    shape = (height, width) if channels == 1 else (height, width, channels)
    return Raster(channels, np.full(shape, fill, np.uint8))
