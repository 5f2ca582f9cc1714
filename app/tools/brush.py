"""Round brush for masks and sketches.

A stroke keeps a coverage buffer (the maximum of its dabs) and the original pixels of every tile
it touched, and re-blends ``original + coverage x opacity`` under each new dab. So opacity caps
within a stroke as in Photoshop/Krita, each dab costs only its own area, and the finished stroke
becomes one undo step holding just the tiles it dirtied.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np
from numpy.typing import DTypeLike

from app.document import Document, LayerLockedError
from app.geometry import Rect
from app.history import PixelPatch
from app.layers import Layer, LayerKind
from app.tools.base import Phase, PointerEvent

TILE = 64
MIN_SIZE, MAX_SIZE = 1, 2000


class BrushTarget(Enum):
    MASK = "mask"  # paints the inpaint mask
    SKETCH = "sketch"  # paints the active (or topmost) sketch layer
    ACTIVE = "active"  # paints whatever raster layer is active


@dataclass(frozen=True)
class BrushSettings:
    size: float = 64.0  # diameter in document pixels
    hardness: float = 0.8  # 0 = soft edge all the way, 1 = hard disc
    opacity: float = 1.0
    color: tuple[int, int, int] = (0, 0, 0)
    erase: bool = False
    pressure_size: bool = True
    pressure_opacity: bool = False
    spacing: float = 0.12  # dab distance as a fraction of the size

    def resized(self, factor: float) -> BrushSettings:
        return replace(self, size=float(min(MAX_SIZE, max(MIN_SIZE, self.size * factor))))


def dab_alpha(rect: Rect, cx: float, cy: float, radius: float, hardness: float) -> np.ndarray:
    """Coverage (h, w) float32 in 0..1 of a round dab, anti-aliased at its edge."""
    ys = np.arange(rect.y, rect.bottom, dtype=np.float32) + 0.5 - cy
    xs = np.arange(rect.x, rect.right, dtype=np.float32) + 0.5 - cx
    dist = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    inner = radius * min(max(hardness, 0.0), 0.999)
    ramp = (radius - dist) / max(radius - inner, 0.5)
    return np.clip(ramp, 0.0, 1.0).astype(np.float32)


class _TileCache:
    """Per-tile float or uint8 buffers addressed in document coordinates."""

    def __init__(self) -> None:
        self.tiles: dict[tuple[int, int], np.ndarray] = {}

    @staticmethod
    def keys_for(rect: Rect) -> Iterator[tuple[int, int]]:
        for ty in range(rect.y // TILE, (rect.bottom - 1) // TILE + 1):
            for tx in range(rect.x // TILE, (rect.right - 1) // TILE + 1):
                yield tx, ty

    @staticmethod
    def tile_rect(key: tuple[int, int]) -> Rect:
        return Rect(key[0] * TILE, key[1] * TILE, TILE, TILE)

    def read(self, rect: Rect, shape_tail: tuple[int, ...], dtype: DTypeLike) -> np.ndarray:
        out = np.zeros((rect.h, rect.w, *shape_tail), dtype)
        for key in self.keys_for(rect):
            tile_rect = self.tile_rect(key)
            common = rect.intersected(tile_rect)
            out[common.slices(rect)] = self.tiles[key][common.slices(tile_rect)]
        return out

    def write(self, rect: Rect, values: np.ndarray) -> None:
        for key in self.keys_for(rect):
            tile_rect = self.tile_rect(key)
            common = rect.intersected(tile_rect)
            self.tiles[key][common.slices(tile_rect)] = values[common.slices(rect)]


class Stroke:
    def __init__(self, doc: Document, layer: Layer, settings: BrushSettings):
        self.doc, self.layer, self.settings = doc, layer, settings
        assert layer.raster is not None, "a brush stroke needs a raster layer"
        self.raster = layer.raster
        self.tail = () if self.raster.channels == 1 else (4,)
        self.before = _TileCache()
        self.coverage = _TileCache()
        self.dirty: dict[tuple[int, int], Rect] = {}
        self.last: tuple[float, float, float] | None = None
        self.residue = 0.0  # distance travelled since the last dab

    def _radius(self, pressure: float) -> float:
        scale = pressure if self.settings.pressure_size else 1.0
        return max(0.5, self.settings.size * 0.5 * max(scale, 0.05))

    def add_point(self, x: float, y: float, pressure: float) -> Rect:
        """Dab along the segment from the previous point; return the repainted area."""
        if self.last is None:
            self.last = (x, y, pressure)
            return self._dab(x, y, pressure)
        x0, y0, p0 = self.last
        distance = math.hypot(x - x0, y - y0)
        step = max(1.0, self.settings.size * self.settings.spacing)
        painted = Rect(0, 0, 0, 0)
        travelled = step - self.residue
        while travelled <= distance:
            t = travelled / distance
            painted = painted.united(
                self._dab(x0 + (x - x0) * t, y0 + (y - y0) * t, p0 + (pressure - p0) * t)
            )
            travelled += step
        self.residue = distance - (travelled - step)
        self.last = (x, y, pressure)
        return painted

    def _dab(self, cx: float, cy: float, pressure: float) -> Rect:
        radius = self._radius(pressure)
        rect = Rect.around(cx, cy, radius).intersected(self.doc.rect)
        if rect.is_empty:
            return rect
        self._remember(rect)
        strength = pressure if self.settings.pressure_opacity else 1.0
        alpha = dab_alpha(rect, cx, cy, radius, self.settings.hardness) * strength
        coverage = np.maximum(self.coverage.read(rect, (), np.float32), alpha)
        self.coverage.write(rect, coverage)
        original = self.before.read(rect, self.tail, np.uint8)
        self.raster.write(rect, self._blend(original, coverage * self.settings.opacity))
        for key in _TileCache.keys_for(rect):
            self.dirty[key] = self.dirty.get(key, rect).united(rect)
        self.doc.pixels_changed.emit(self.layer.id, rect)
        return rect

    def _remember(self, rect: Rect) -> None:
        self.raster.ensure(rect, limit=self.doc.rect)
        for key in _TileCache.keys_for(rect):
            if key not in self.before.tiles:
                self.before.tiles[key] = self.raster.read(_TileCache.tile_rect(key))
                self.coverage.tiles[key] = np.zeros((TILE, TILE), np.float32)

    def _blend(self, original: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        if self.raster.channels == 1:
            base = original.astype(np.float32)
            target = 0.0 if self.settings.erase else 255.0
            return np.round(base + (target - base) * alpha).astype(np.uint8)
        src = original.astype(np.float32) / 255.0
        a = alpha[..., None]
        if self.settings.erase:
            out = src.copy()
            out[..., 3:] = src[..., 3:] * (1.0 - a)
        else:
            color = np.asarray(self.settings.color, np.float32) / 255.0
            out_a = a + src[..., 3:] * (1.0 - a)
            premul = color * a + src[..., :3] * src[..., 3:] * (1.0 - a)
            out = np.concatenate([premul / np.maximum(out_a, 1e-6), out_a], axis=2)
        result = np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
        result[..., :3] *= result[..., 3:] > 0  # fully transparent pixels are (0, 0, 0, 0)
        return result

    def finish(self) -> list[PixelPatch]:
        """The undo patches; also gives back growth slack when it became large."""
        patches = self.patches()
        if not self.raster.rect.contains(self.doc.rect):  # a canvas-sized layer stays as it is
            content = self.raster.content_rect()
            if self.raster.rect.area > 1.5 * max(content.area, 1):
                self.raster.trim()
        return patches

    def patches(self) -> list[PixelPatch]:
        patches = []
        for key, rect in self.dirty.items():
            tile_rect = _TileCache.tile_rect(key)
            area = rect.intersected(tile_rect)
            before = self.before.tiles[key][area.slices(tile_rect)].copy()
            after = self.raster.read(area)
            patches.append(PixelPatch(area, before, after))
        return patches

    def revert(self) -> Rect:
        area = Rect(0, 0, 0, 0)
        for patch in self.patches():
            self.raster.write(patch.rect, patch.before)
            area = area.united(patch.rect)
        self.doc.pixels_changed.emit(self.layer.id, area)
        return area


class BrushTool:
    """Mask brush/eraser (target MASK) and sketch pen/eraser (target SKETCH)."""

    def __init__(self, doc: Document, target: BrushTarget, settings: BrushSettings, name: str):
        self.doc, self.target, self.settings, self.name = doc, target, settings, name
        self.stroke: Stroke | None = None
        self.cursor: tuple[float, float] | None = None

    def target_layer(self) -> Layer | None:
        active = self.doc.active_layer
        if self.target is BrushTarget.MASK:
            return self.doc.mask_layer
        if self.target is BrushTarget.SKETCH:
            if active is not None and active.kind is LayerKind.SKETCH:
                return active
            sketches = self.doc.layers_of(LayerKind.SKETCH)
            return sketches[-1] if sketches else None
        return active if active is not None and active.raster is not None else None

    def handle(self, event: PointerEvent) -> Rect | None:
        self.cursor = (event.x, event.y)
        if event.phase is Phase.HOVER:
            return None
        if event.phase is Phase.PRESS:
            return self._begin(event)
        if self.stroke is None:
            return None
        painted = self.stroke.add_point(event.x, event.y, event.pressure)
        if event.phase is Phase.RELEASE:
            self._finish()
        return painted

    def _begin(self, event: PointerEvent) -> Rect | None:
        layer = self.target_layer()
        if layer is None and self.target is BrushTarget.ACTIVE:
            self.doc.notice.emit("Select a paintable layer first.")
            return None
        if layer is None:  # the first mask/sketch stroke creates its layer (its own undo step)
            kind = LayerKind.MASK if self.target is BrushTarget.MASK else LayerKind.SKETCH
            layer = self.doc.add_layer(kind, activate=kind is LayerKind.SKETCH)
        try:
            self.doc.check_editable(layer)
        except LayerLockedError as err:
            self.doc.notice.emit(str(err))
            return None
        self.stroke = Stroke(self.doc, layer, self.settings)
        return self.stroke.add_point(event.x, event.y, event.pressure)

    def _finish(self) -> None:
        stroke, self.stroke = self.stroke, None
        assert stroke is not None
        self.doc.push_painted(stroke.layer.id, stroke.finish(), self._undo_text())

    def cancel(self) -> None:
        if self.stroke is not None:
            self.stroke.revert()
            self.stroke = None

    def _undo_text(self) -> str:
        return f"{'Erase' if self.settings.erase else 'Paint'} {self.target.value}"
