"""The canvas: draws the document and turns mouse/tablet gestures into tool pointer events.

Drawing follows dirty rectangles. The picture is cached as 256x256 tiles of premultiplied BGRA
numpy arrays wrapped (not copied) by QImages. Zoomed out, tiles come from a coarser level (each
tile pixel averages 2^level document pixels), so a fitted 8k document costs about a screenful of
tiles, not 8k x 8k. ``pixels_changed(layer, rect)`` re-renders only ``rect`` inside the tiles of the
current level and repaints only that rectangle's screen area. A change bigger than a couple of
tiles (a result landing, a layer shown or hidden, a restack) re-renders the visible tiles one
event-loop turn at a time, drawing the old tile meanwhile, so no single repaint holds the UI thread
for the whole screen.

The cached picture already contains the inpaint-mask tint. The transient step preview is not
rendered into the tiles: it is wrapped in one QImage when it changes and drawn over them, so a
preview costs the UI thread a wrap and a repaint of its box. The selection outline, the gesture in
progress, the brush outline and any extra overlay painters (e.g. the pose editor) are drawn on top
on every paint.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QCursor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QPolygonF,
    QTabletEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from app.compose import Patch, composite, needs_tree, render_tree
from app.document import Document
from app.geometry import Rect
from app.layers import PAINT_KINDS, LayerKind
from app.tools import BrushTool, LassoSelectTool, Phase, PointerEvent, RectSelectTool
from widgets.keyboard import is_text_field

log = logging.getLogger(__name__)

SELECT_TOOLS = (RectSelectTool, LassoSelectTool)  # tools that draw a gesture outline

TILE = 256
MAX_LEVEL = 6
MAX_CACHED_TILES = 512  # 256 KiB each: at most 128 MiB of display cache
SYNC_RENDER_PX = 2 * TILE * TILE  # a change up to this many tile pixels re-renders at once
STALE_BUDGET_S = 0.008  # UI time per event-loop turn spent re-rendering stale tiles
MIN_ZOOM, MAX_ZOOM = 0.01, 64.0
ZOOM_STEP = math.sqrt(2.0)
DISPLAY_KINDS = PAINT_KINDS | {LayerKind.CONTROL, LayerKind.PREVIEW}
CANVAS_BACKGROUND = QColor(38, 38, 40)

OverlayPainter = Callable[[QPainter, "CanvasView"], None]
"""Called after the picture is drawn, with the painter in widget (logical) coordinates; use
``canvas.view_transform()`` to map document coordinates."""


@dataclass
class RepaintStats:
    """What the canvas did, for benchmarks and tests: rendered document pixels and painted
    screen pixels since the last reset."""

    rendered_doc_px: int = 0
    painted_screen_px: int = 0
    paint_events: int = 0

    def reset(self) -> None:
        self.rendered_doc_px = self.painted_screen_px = self.paint_events = 0


@dataclass
class _Tile:
    pixels: np.ndarray  # (h, w, 4) uint8 premultiplied BGRA, C-contiguous
    image: QImage  # wraps ``pixels`` without a copy
    region: Rect  # document area it shows


def _wrap(pixels: np.ndarray) -> QImage:
    h, w = pixels.shape[:2]
    return QImage(pixels.data, w, h, pixels.strides[0], QImage.Format.Format_ARGB32_Premultiplied)


def _checker_brush() -> QBrush:
    size = 8
    pixmap = QPixmap(2 * size, 2 * size)
    pixmap.fill(QColor(204, 204, 204))
    painter = QPainter(pixmap)
    painter.fillRect(0, 0, size, size, QColor(154, 154, 154))
    painter.fillRect(size, size, size, size, QColor(154, 154, 154))
    painter.end()
    return QBrush(pixmap)


def _pixels_of(raster, area: Rect) -> np.ndarray:
    """``area`` of a raster: a view when stored, else a zero-padded copy."""
    if raster.rect.contains(area):
        return raster.view(area)
    return raster.read(area)


def _downsample(pixels: np.ndarray, step: int) -> np.ndarray:
    """Box-filter by ``step`` (edges padded with zeros to whole blocks), as uint8."""
    h, w = pixels.shape[:2]
    bh, bw = -(-h // step), -(-w // step)
    if (bh * step, bw * step) != (h, w):
        pad = ((0, bh * step - h), (0, bw * step - w)) + ((0, 0),) * (pixels.ndim - 2)
        pixels = np.pad(pixels, pad)
    return cv2.resize(np.ascontiguousarray(pixels), (bw, bh), interpolation=cv2.INTER_AREA)


def _downsample_premultiplied(rgba: np.ndarray, step: int) -> np.ndarray:
    """Straight RGBA uint8 -> box-filtered premultiplied RGBA float32 (0..255). Premultiplying
    first keeps the colour of transparent pixels from bleeding dark fringes into edges."""
    alpha = rgba[..., 3]
    if alpha.min() < 255:
        rgba = rgba.copy()
        a3 = cv2.merge([alpha, alpha, alpha])
        rgba[..., :3] = cv2.multiply(np.ascontiguousarray(rgba[..., :3]), a3, scale=1.0 / 255.0)
    return _downsample(rgba, step).astype(np.float32)


class CanvasView(QWidget):
    zoom_changed = Signal(float)  # device pixels per document pixel (1.0 = 100%)
    cursor_moved = Signal(object)  # (x, y) in document pixels, or None when outside
    mask_shown_changed = Signal(bool)  # the mask tint was shown or hidden

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("canvas")
        self.setMouseTracking(True)
        self.setTabletTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(200, 150)
        self.doc: Document | None = None
        self.tool = None  # an app.tools Tool
        self.overlay_painters: list[OverlayPainter] = []
        self.stats = RepaintStats()
        self.mask_color = QColor("#ff3b6b")  # app.settings defaults
        self.mask_opacity = 0.5
        self.mask_shown = True  # a view setting: hiding the tint changes nothing in the document
        self._scale = 1.0  # logical widget pixels per document pixel
        self._offset = QPointF(0, 0)  # widget position of the document origin
        self._fit_pending = True
        self._fitted = False
        self._tiles: OrderedDict[tuple[int, int, int], _Tile] = OrderedDict()
        # cached tiles still showing old pixels: key -> document area to re-render
        self._stale: dict[tuple[int, int, int], Rect] = {}
        self._stale_timer = QTimer(self, singleShot=True, interval=0)
        self._stale_timer.timeout.connect(self._render_stale)
        self._preview_image: tuple[QImage, np.ndarray, Rect] | None = None
        self._checker = _checker_brush()
        self._selection_polys: list[QPolygonF] = []
        self._selection_bounds = Rect(0, 0, 0, 0)
        self._ants_phase = 0
        self._ants_timer = QTimer(self)
        self._ants_timer.setInterval(150)
        self._ants_timer.timeout.connect(self._march_ants)
        self._cursor_doc: tuple[float, float] | None = None
        self._gesture_rect: Rect | None = None
        self._stroking = False
        self._pan_anchor: QPointF | None = None
        self._space_down = False
        self._view_kept = False  # a canvas resize kept the view: size_changed does not refit

    # ---- document ------------------------------------------------------------------------

    def set_document(self, doc: Document | None) -> None:
        if self.doc is not None:
            self.doc.pixels_changed.disconnect(self._on_pixels_changed)
            self.doc.preview_changed.disconnect(self._on_preview_changed)
            self.doc.selection_changed.disconnect(self._on_selection_changed)
            self.doc.size_changed.disconnect(self._on_size_changed)
            self.doc.canvas_resized.disconnect(self._on_canvas_resized)
        self.doc = doc
        self._tiles.clear()
        self._stale.clear()
        self._preview_image = None
        self._stroking = False
        if doc is not None:
            doc.pixels_changed.connect(self._on_pixels_changed)
            doc.preview_changed.connect(self._on_preview_changed)
            doc.selection_changed.connect(self._on_selection_changed)
            doc.size_changed.connect(self._on_size_changed)
            doc.canvas_resized.connect(self._on_canvas_resized)
        self._on_selection_changed()
        self._fit_pending = True
        if self.width() > 0 and self.isVisible():
            self.fit()
        self.update()

    def _on_size_changed(self) -> None:
        """The canvas grew or shrank: every cached tile is cut to the old size. The view fits
        the new canvas, unless a canvas resize said how the picture moved and kept it in place."""
        self._tiles.clear()
        self._stale.clear()
        self._on_preview_changed(self.doc.rect if self.doc is not None else Rect(0, 0, 0, 0))
        if self._view_kept:
            self._view_kept = False
        else:
            self.fit()
        self.update()

    def set_tool(self, tool) -> None:
        if self.tool is not None and self._stroking:
            self.tool.cancel()
        self.tool = tool
        self._stroking = False
        self._gesture_rect = None
        brushlike = isinstance(tool, BrushTool)
        self.setCursor(
            Qt.CursorShape.CrossCursor if tool is not None else Qt.CursorShape.ArrowCursor
        )
        if not brushlike:
            self.update()
        self.refresh_cursor_outline()

    def set_mask_overlay(self, color: QColor | None = None, opacity: float | None = None) -> None:
        if color is not None:
            self.mask_color = QColor(color)
        if opacity is not None:
            self.mask_opacity = float(min(1.0, max(0.0, opacity)))
        self._invalidate_mask_area()

    def set_mask_shown(self, shown: bool) -> None:
        if shown != self.mask_shown:
            self.mask_shown = shown
            self._invalidate_mask_area()
            self.mask_shown_changed.emit(shown)

    def _invalidate_mask_area(self) -> None:
        """The tint covers only the mask layers' stored area: re-render that, not the screen
        (hiding the tint when a result lands used to re-render every visible tile)."""
        if self.doc is None:
            return
        for layer in self.doc.layers:
            raster = layer.raster if layer.kind is LayerKind.MASK else None
            if raster is not None and not raster.rect.is_empty:
                self._on_pixels_changed(-1, raster.rect)

    def invalidate(self, rect: Rect | None = None) -> None:
        """Re-render ``rect`` (document pixels) or everything."""
        if self.doc is None:
            return
        self._on_pixels_changed(-1, self.doc.rect if rect is None else rect)

    def grab(self, *args):  # type: ignore[override]
        """A snapshot shows the document as it is: finish re-rendering stale tiles first."""
        self.flush_stale()
        return super().grab(*args)

    # ---- view transform ------------------------------------------------------------------

    @property
    def zoom(self) -> float:
        """Device pixels per document pixel: 1.0 shows every image pixel on one screen pixel."""
        return self._scale * self.devicePixelRatioF()

    @property
    def scale(self) -> float:
        return self._scale

    def view_transform(self) -> QTransform:
        """Document coordinates -> widget (logical) coordinates."""
        return QTransform(self._scale, 0, 0, self._scale, self._offset.x(), self._offset.y())

    def doc_to_widget(self, x: float, y: float) -> QPointF:
        return QPointF(self._offset.x() + x * self._scale, self._offset.y() + y * self._scale)

    def widget_to_doc(self, pos: QPointF | QPoint) -> tuple[float, float]:
        pos = QPointF(pos)
        return (
            (pos.x() - self._offset.x()) / self._scale,
            (pos.y() - self._offset.y()) / self._scale,
        )

    def doc_rect_to_widget(self, rect: Rect, margin: int = 2) -> QRect:
        top_left = self.doc_to_widget(rect.x, rect.y)
        bottom_right = self.doc_to_widget(rect.right, rect.bottom)
        return QRect(
            math.floor(top_left.x()) - margin,
            math.floor(top_left.y()) - margin,
            math.ceil(bottom_right.x() - top_left.x()) + 2 * margin + 1,
            math.ceil(bottom_right.y() - top_left.y()) + 2 * margin + 1,
        )

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom (device px per document px) keeping the document point under ``anchor`` fixed."""
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        anchor = (
            QPointF(anchor) if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        )
        doc_x, doc_y = self.widget_to_doc(anchor)
        self._scale = zoom / self.devicePixelRatioF()
        self._offset = QPointF(anchor.x() - doc_x * self._scale, anchor.y() - doc_y * self._scale)
        self._fit_pending = False
        self._fitted = False
        self._after_view_change()

    def zoom_in(self, anchor: QPointF | None = None) -> None:
        self.set_zoom(self.zoom * ZOOM_STEP, anchor)

    def zoom_out(self, anchor: QPointF | None = None) -> None:
        self.set_zoom(self.zoom / ZOOM_STEP, anchor)

    def fit(self) -> None:
        if self.doc is None or self.width() <= 0 or self.height() <= 0:
            return
        margin = 24
        avail_w, avail_h = max(1, self.width() - 2 * margin), max(1, self.height() - 2 * margin)
        self._scale = min(avail_w / self.doc.width, avail_h / self.doc.height)
        self._center_document()
        self._fit_pending = False
        self._fitted = True  # stays fitted when the view is resized (a panel opens or closes)
        self._after_view_change()

    def actual_pixels(self) -> None:
        """100%: one document pixel on one device pixel, centred on the view centre."""
        self.set_zoom(1.0)

    def pan_by(self, dx: float, dy: float) -> None:
        self._fitted = False
        self._offset += QPointF(dx, dy)
        self._after_view_change()

    def _center_document(self) -> None:
        self._offset = QPointF(
            round((self.width() - self.doc.width * self._scale) / 2),
            round((self.height() - self.doc.height * self._scale) / 2),
        )

    def _after_view_change(self) -> None:
        self.zoom_changed.emit(self.zoom)
        self.update()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if (self._fit_pending or self._fitted) and self.doc is not None:
            self.fit()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._fit_pending and self.doc is not None:
            self.fit()

    # ---- tile cache ----------------------------------------------------------------------

    def level(self) -> int:
        """Tile level for the current zoom: each tile pixel covers 2^level document pixels."""
        zoom = self.zoom
        if zoom >= 1.0:
            return 0
        return int(min(MAX_LEVEL, max(0, math.floor(math.log2(1.0 / zoom) + 1e-9))))

    def _tile_region(self, level: int, tx: int, ty: int) -> Rect:
        span = TILE << level
        return Rect(tx * span, ty * span, span, span).intersected(self.doc.rect)

    def _display_layers(self) -> list:
        if needs_tree(self.doc.layers):  # groups and modes: the compositor walks the tree
            return list(self.doc.layers)
        layers = [
            layer
            for layer in self.doc.layers
            if layer.visible
            and layer.kind in DISPLAY_KINDS
            and layer.raster is not None
            and layer.opacity > 0
        ]
        return layers

    def _mask_layers(self) -> list:
        return [
            layer
            for layer in self.doc.layers
            if layer.kind is LayerKind.MASK
            and self.doc.is_shown(layer)  # hidden with its group too
            and layer.raster is not None
            and layer.opacity > 0
        ]

    def _render(self, rect: Rect, level: int) -> np.ndarray:
        """Premultiplied BGRA uint8 of ``rect`` (aligned to 2^level) downsampled by 2^level."""
        self.stats.rendered_doc_px += rect.area
        if level == 0:
            premul, tint = self._render_full(rect), self._mask_coverage(rect, 1)
        else:
            premul, tint = (
                self._render_coarse(rect, 1 << level),
                self._mask_coverage(rect, 1 << level),
            )
        if tint is not None:
            color = self.mask_color
            bgr = np.asarray([color.blue(), color.green(), color.red()], np.float32)
            keep = 1.0 - tint
            premul[..., :3] = premul[..., :3] * keep + bgr * tint
            premul[..., 3:] = premul[..., 3:] * keep + 255.0 * tint
        return (premul + 0.5).astype(np.uint8)

    def _render_full(self, rect: Rect) -> np.ndarray:
        """1:1 pixels through app.compose, the same compositing as the flat export."""
        straight = composite(self._display_layers(), rect, DISPLAY_KINDS)
        alpha = straight[..., 3:4].astype(np.float32) * (1.0 / 255.0)
        premul = np.empty(straight.shape, np.float32)
        premul[..., :3] = straight[..., 2::-1] * alpha  # RGB -> BGR
        premul[..., 3:] = alpha * 255.0
        return premul

    def _render_coarse(self, rect: Rect, step: int) -> np.ndarray:
        """Zoomed out: box-downsample each layer first (premultiplied, OpenCV), then blend the
        small images, so a fitted 8k document costs a resize per layer, not an 8k composite."""
        h, w = -(-rect.h // step), -(-rect.w // step)
        if needs_tree(self.doc.layers):
            return self._render_coarse_tree(rect, step, (h, w))
        premul = np.zeros((h, w, 4), np.float32)  # BGRA, 0..255 premultiplied
        for layer in self._display_layers():
            common = rect.intersected(layer.raster.rect)
            if common.is_empty:
                continue
            area = common.aligned(step).intersected(rect)
            small = _downsample_premultiplied(_pixels_of(layer.raster, area), step)
            rows = slice((area.y - rect.y) // step, (area.y - rect.y) // step + small.shape[0])
            cols = slice((area.x - rect.x) // step, (area.x - rect.x) // step + small.shape[1])
            src = small[..., [2, 1, 0, 3]] * layer.opacity
            dst = premul[rows, cols]
            premul[rows, cols] = src + dst * (1.0 - src[..., 3:] * (1.0 / 255.0))
        return premul

    def _render_coarse_tree(self, rect: Rect, step: int, shape: tuple[int, int]) -> np.ndarray:
        """Groups and blend modes zoomed out: the same downsampled layers, composited by
        app.compose (blending needs straight colour, so each is un-premultiplied)."""

        def fetch(layer) -> Patch | None:
            common = rect.intersected(layer.raster.rect)
            if common.is_empty:
                return None
            area = common.aligned(step).intersected(rect)
            small = _downsample_premultiplied(_pixels_of(layer.raster, area), step)
            top, left = (area.y - rect.y) // step, (area.x - rect.x) // step
            where = (
                slice(top, top + small.shape[0]),
                slice(left, left + small.shape[1]),
            )
            planes = np.stack(cv2.split(small))  # planar, as app.compose works
            alpha = planes[3:4] * np.float32(1.0 / 255.0)
            rgb = planes[:3] / np.maximum(planes[3:4], np.float32(1e-9))  # 0 where alpha is 0
            return where, rgb, alpha

        rgb, alpha = render_tree(self.doc.layers, shape, fetch, DISPLAY_KINDS)
        rgb *= np.float32(255.0)
        return cv2.merge([rgb[2], rgb[1], rgb[0], alpha[0] * np.float32(255.0)])  # BGRA

    def _mask_coverage(self, rect: Rect, step: int) -> np.ndarray | None:
        """Tint strength 0..1 (h, w, 1) at the given downsampling, or None without a mask."""
        if self.mask_opacity <= 0 or not self.mask_shown:
            return None
        coverage = None
        h, w = -(-rect.h // step), -(-rect.w // step)
        for layer in self._mask_layers():
            common = rect.intersected(layer.raster.rect)
            if common.is_empty:
                continue
            if step == 1:
                values = layer.raster.read(rect).astype(np.float32)
            else:
                area = common.aligned(step).intersected(rect)
                small = _downsample(_pixels_of(layer.raster, area), step)
                values = np.zeros((h, w), np.float32)
                top, left = (area.y - rect.y) // step, (area.x - rect.x) // step
                values[top : top + small.shape[0], left : left + small.shape[1]] = small
            values *= layer.opacity / 255.0
            coverage = values if coverage is None else np.maximum(coverage, values)
        if coverage is None:
            return None
        return (coverage * self.mask_opacity)[..., None]

    def _tile(self, level: int, tx: int, ty: int) -> _Tile | None:
        key = (level, tx, ty)
        tile = self._tiles.get(key)
        if tile is not None:
            self._tiles.move_to_end(key)
            return tile
        region = self._tile_region(level, tx, ty)
        if region.is_empty:
            return None
        pixels = np.ascontiguousarray(self._render(region, level))
        tile = _Tile(pixels, _wrap(pixels), region)
        self._tiles[key] = tile
        self._stale.pop(key, None)
        while len(self._tiles) > MAX_CACHED_TILES:
            self._tiles.popitem(last=False)
        return tile

    def visible_doc_rect(self, clip: QRect | None = None) -> Rect:
        """Document pixels shown inside ``clip`` (default: the whole widget)."""
        clip = clip if clip is not None else self.rect()
        x0, y0 = self.widget_to_doc(QPointF(clip.left(), clip.top()))
        x1, y1 = self.widget_to_doc(QPointF(clip.right() + 1, clip.bottom() + 1))
        bounds = Rect.from_edges(math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1))
        return bounds.intersected(self.doc.rect) if self.doc is not None else bounds

    def _cached_keys_over(self, rect: Rect) -> list[tuple[int, int, int]]:
        keys = []
        for level in range(MAX_LEVEL + 1):
            span = TILE << level
            for ty in range(rect.y // span, (rect.bottom - 1) // span + 1):
                for tx in range(rect.x // span, (rect.right - 1) // span + 1):
                    if (level, tx, ty) in self._tiles:
                        keys.append((level, tx, ty))
        return keys

    def _on_pixels_changed(self, layer_id: int, rect: Rect) -> None:
        if self.doc is None:
            return
        rect = rect.intersected(self.doc.rect)
        if rect.is_empty:
            return
        if self._is_vector_layer(layer_id):  # poses are drawn by overlay painters, not tiles
            self.update()
            return
        if not self.mask_shown and self._is_mask_layer(layer_id):
            self.set_mask_shown(True)  # the mask is being edited: never paint it blind
            return
        current = self.level()
        visible = self.visible_doc_rect()
        shown: list[tuple[tuple[int, int, int], Rect]] = []
        # look tiles up by index (a dab touches a few per level), never scan the whole cache
        for key in self._cached_keys_over(rect):
            level = key[0]
            tile = self._tiles[key]
            area = rect.aligned(1 << level).intersected(tile.region)
            if area.is_empty:
                continue
            if level != current or tile.region.intersected(visible).is_empty:
                del self._tiles[key]  # re-rendered when it is shown again
                self._stale.pop(key, None)
                continue
            shown.append((key, area))
        work = sum(area.area >> (2 * key[0]) for key, area in shown)
        if work <= SYNC_RENDER_PX:  # a dab, a small result: at once
            for key, area in shown:
                self._render_into(key, area)
            self.update(self.doc_rect_to_widget(rect))
            return
        for key, area in shown:  # a big change: spread over event-loop turns
            old = self._stale.get(key)
            self._stale[key] = area if old is None else old.united(area)
        self._stale_timer.start()
        self.update(self.doc_rect_to_widget(rect))  # tiles not cached yet render when painted

    def _render_into(self, key: tuple[int, int, int], area: Rect) -> None:
        tile = self._tiles[key]
        step = 1 << key[0]
        rows = (area.y - tile.region.y) // step
        cols = (area.x - tile.region.x) // step
        fresh = self._render(area, key[0])
        tile.pixels[rows : rows + fresh.shape[0], cols : cols + fresh.shape[1]] = fresh

    def _render_stale(self, budget_s: float | None = STALE_BUDGET_S) -> None:
        """Re-render stale tiles, the ones nearest the view centre first, until ``budget_s`` of
        UI time is spent (None: all of them); the old tile stays on screen until then."""
        if self.doc is None:
            self._stale.clear()
            return
        current = self.level()
        view = self.visible_doc_rect()
        centre = (view.x + view.w / 2, view.y + view.h / 2)

        def distance(key: tuple[int, int, int]) -> float:
            span = TILE << key[0]
            return abs((key[1] + 0.5) * span - centre[0]) + abs((key[2] + 0.5) * span - centre[1])

        start = time.perf_counter()
        for key in sorted(self._stale, key=distance):
            area = self._stale.pop(key)
            if key not in self._tiles:  # evicted meanwhile: rendered afresh when shown
                continue
            if key[0] != current:
                del self._tiles[key]
                continue
            self._render_into(key, area)
            self.update(self.doc_rect_to_widget(area))
            if budget_s is not None and time.perf_counter() - start >= budget_s:
                break
        if self._stale:
            self._stale_timer.start()

    def flush_stale(self) -> None:
        """Re-render every stale tile now."""
        self._stale_timer.stop()
        self._render_stale(None)

    def _is_vector_layer(self, layer_id: int) -> bool:
        if layer_id < 0:
            return False
        try:
            return self.doc.layer(layer_id).kind is LayerKind.POSE
        except KeyError:  # removed: re-render what it covered
            return False

    def _is_mask_layer(self, layer_id: int) -> bool:
        try:
            return layer_id >= 0 and self.doc.layer(layer_id).kind is LayerKind.MASK
        except KeyError:
            return False

    def _on_canvas_resized(self, dx: int, dy: int) -> None:
        """Just before ``size_changed`` (app/canvas_size.py): the picture moved by (dx, dy) in
        document pixels; it stays where it was on screen unless the view was fitted."""
        if not self._fitted:
            self._offset -= QPointF(dx * self._scale, dy * self._scale)
            self._view_kept = True

    def _on_preview_changed(self, rect: Rect) -> None:
        preview = self.doc.preview if self.doc is not None else None
        if preview is None or preview.raster is None or preview.raster.rect.is_empty:
            self._preview_image = None
        else:
            pixels = np.ascontiguousarray(preview.raster.data)
            height, width = pixels.shape[:2]
            image = QImage(pixels.data, width, height, width * 4, QImage.Format.Format_RGBA8888)
            self._preview_image = (image, pixels, preview.raster.rect)
        self.update(self.doc_rect_to_widget(rect))

    def _paint_preview(self, painter: QPainter) -> None:
        if self._preview_image is None:
            return
        image, _pixels, rect = self._preview_image
        painter.save()
        painter.setTransform(self.view_transform())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 1.0)
        painter.drawImage(QRectF(rect.x, rect.y, rect.w, rect.h), image)
        painter.restore()

    # ---- selection outline ---------------------------------------------------------------

    def _on_selection_changed(self) -> None:
        old = self._selection_bounds
        self._selection_polys = []
        self._selection_bounds = Rect(0, 0, 0, 0)
        selection = self.doc.selection if self.doc is not None else None
        if selection is not None and not selection.rect.is_empty:
            # contours of the pixel-edge grid: upscale x2 so outlines sit on pixel borders
            binary = (selection.data >= 128).astype(np.uint8)
            padded = np.pad(binary, 1)
            contours, _ = cv2.findContours(padded, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
            for contour in contours:
                points = contour.reshape(-1, 2).astype(np.float64)
                points += (selection.x - 1 + 0.5, selection.y - 1 + 0.5)
                self._selection_polys.append(QPolygonF([QPointF(x, y) for x, y in points]))
            if self._selection_polys:
                self._selection_bounds = selection.content_rect().adjusted(1)
        if self._selection_polys:
            self._ants_timer.start()
        else:
            self._ants_timer.stop()
        self._update_doc_area(old.united(self._selection_bounds))

    def _march_ants(self) -> None:
        self._ants_phase = (self._ants_phase + 1) % 8
        self._update_doc_area(self._selection_bounds)

    def _update_doc_area(self, rect: Rect, margin: int = 3) -> None:
        if not rect.is_empty:
            self.update(self.doc_rect_to_widget(rect, margin))

    # ---- painting ------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        region_area = sum(r.width() * r.height() for r in event.region())
        self.stats.painted_screen_px += region_area
        self.stats.paint_events += 1
        painter.fillRect(event.rect(), CANVAS_BACKGROUND)
        if self.doc is None:
            painter.end()
            return
        doc_screen = self.doc_rect_to_widget(self.doc.rect, margin=0).adjusted(0, 0, -1, -1)
        painter.setBrushOrigin(doc_screen.topLeft())
        painter.fillRect(doc_screen.intersected(event.rect()), self._checker)
        self._paint_tiles(painter, event.rect())
        self._paint_preview(painter)
        painter.setTransform(QTransform())
        for overlay in self.overlay_painters:
            painter.save()
            try:
                overlay(painter, self)
            except Exception:  # an overlay bug must not break painting
                log.exception("overlay painter failed")
            painter.restore()
        self._paint_selection(painter)
        self._paint_gesture(painter)
        self._paint_brush_outline(painter)
        painter.end()

    def _paint_tiles(self, painter: QPainter, clip: QRect) -> None:
        level = self.level()
        step = 1 << level
        visible = self.visible_doc_rect(clip)
        if visible.is_empty:
            return
        span = TILE << level
        smooth = self.zoom < 1.0
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        # draw in tile-pixel space so the transform, not per-tile rounding, places every tile
        transform = QTransform.fromScale(step, step) * self.view_transform()
        painter.setTransform(transform)
        for ty in range(visible.y // span, (visible.bottom - 1) // span + 1):
            for tx in range(visible.x // span, (visible.right - 1) // span + 1):
                tile = self._tile(level, tx, ty)
                if tile is not None:
                    painter.drawImage(
                        QPointF(tile.region.x / step, tile.region.y / step), tile.image
                    )

    def _paint_selection(self, painter: QPainter) -> None:
        if not self._selection_polys:
            return
        self._draw_ants(painter, self._selection_polys, closed=True)

    def _draw_ants(self, painter: QPainter, polygons: list[QPolygonF], closed: bool) -> None:
        painter.save()
        painter.setTransform(self.view_transform())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        white = QPen(QColor(255, 255, 255), 1)
        white.setCosmetic(True)
        black = QPen(QColor(0, 0, 0), 1, Qt.PenStyle.CustomDashLine)
        black.setCosmetic(True)
        black.setDashPattern([4, 4])
        black.setDashOffset(self._ants_phase)
        for pen in (white, black):
            painter.setPen(pen)
            for polygon in polygons:
                if closed:
                    painter.drawPolygon(polygon)
                else:
                    painter.drawPolyline(polygon)
        painter.restore()

    def _paint_gesture(self, painter: QPainter) -> None:
        if not isinstance(self.tool, SELECT_TOOLS):
            return
        points = self.tool.outline()
        if len(points) < 2:
            return
        if len(points) == 2:  # a rectangle gesture: its two corners
            (ax, ay), (bx, by) = points
            points = [(ax, ay), (bx, ay), (bx, by), (ax, by)]
        polygon = QPolygonF([QPointF(x, y) for x, y in points])
        self._draw_ants(painter, [polygon], closed=True)

    def brush_radius(self) -> float | None:
        if not isinstance(self.tool, BrushTool):
            return None
        return float(self.tool.settings.size) / 2.0

    def _paint_brush_outline(self, painter: QPainter) -> None:
        radius = self.brush_radius()
        if radius is None or self._cursor_doc is None or self._pan_anchor is not None:
            return
        center = self.doc_to_widget(*self._cursor_doc)
        screen_radius = max(1.5, radius * self._scale)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for color, width in ((QColor(0, 0, 0, 160), 3.0), (QColor(255, 255, 255, 230), 1.2)):
            painter.setPen(QPen(color, width))
            painter.drawEllipse(center, screen_radius, screen_radius)

    def _brush_outline_rect(self) -> QRect | None:
        radius = self.brush_radius()
        if radius is None or self._cursor_doc is None:
            return None
        center = self.doc_to_widget(*self._cursor_doc)
        r = math.ceil(max(1.5, radius * self._scale)) + 4
        return QRect(round(center.x()) - r, round(center.y()) - r, 2 * r + 1, 2 * r + 1)

    def refresh_cursor_outline(self) -> None:
        area = self._brush_outline_rect()
        if area is not None:
            self.update(area)

    # ---- input -> tools ------------------------------------------------------------------

    def _pointer(self, pos: QPointF, phase: Phase, pressure: float, modifiers) -> PointerEvent:
        x, y = self.widget_to_doc(pos)
        return PointerEvent(
            x,
            y,
            phase,
            pressure=pressure,
            zoom=self._scale,
            shift=bool(modifiers & Qt.KeyboardModifier.ShiftModifier),
            alt=bool(modifiers & Qt.KeyboardModifier.AltModifier),
            ctrl=bool(modifiers & Qt.KeyboardModifier.ControlModifier),
        )

    def _send(self, event: PointerEvent) -> None:
        if self.tool is None or self.doc is None:
            return
        before = self._gesture_rect
        rect = self.tool.handle(event)
        self._gesture_rect = None
        if isinstance(self.tool, SELECT_TOOLS) and len(self.tool.outline()) >= 2:
            self._gesture_rect = self.tool.outline_rect()
        for area in (rect, before, self._gesture_rect):
            if area is not None:
                self._update_doc_area(area)
        shape = getattr(self.tool, "cursor_shape", None)  # a pointer that says what it does
        if shape is not None and self._pan_anchor is None and not self._space_down:
            self.setCursor(shape)

    def _move_cursor(self, pos: QPointF) -> None:
        old = self._brush_outline_rect()
        x, y = self.widget_to_doc(pos)
        self._cursor_doc = (x, y)
        inside = self.doc is not None and 0 <= x < self.doc.width and 0 <= y < self.doc.height
        self.cursor_moved.emit((x, y) if inside else None)
        new = self._brush_outline_rect()
        for area in (old, new):
            if area is not None:
                self.update(area)

    def _start_pan(self, pos: QPointF) -> None:
        self._pan_anchor = QPointF(pos)
        self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def _end_pan(self) -> None:
        self._pan_anchor = None
        self.setCursor(
            Qt.CursorShape.OpenHandCursor
            if self._space_down
            else Qt.CursorShape.CrossCursor
            if self.tool is not None
            else Qt.CursorShape.ArrowCursor
        )

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if event.button() == Qt.MouseButton.MiddleButton or (
            event.button() == Qt.MouseButton.LeftButton and self._space_down
        ):
            self._start_pan(pos)
            return
        if event.button() == Qt.MouseButton.LeftButton and not self._stroking:
            self._stroking = True
            self._send(self._pointer(pos, Phase.PRESS, 1.0, event.modifiers()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._pointer_moved(event.position(), 1.0, event.modifiers())

    def _pointer_moved(self, pos: QPointF, pressure: float, modifiers) -> None:
        """Mouse or pen moved: pan while panning, else hover or continue the stroke."""
        if self._pan_anchor is not None:
            delta = pos - self._pan_anchor
            self._pan_anchor = QPointF(pos)
            self.pan_by(delta.x(), delta.y())
            return
        self._move_cursor(pos)
        phase = Phase.MOVE if self._stroking else Phase.HOVER
        self._send(self._pointer(pos, phase, pressure, modifiers))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._pan_anchor is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._end_pan()
            return
        if event.button() == Qt.MouseButton.LeftButton and self._stroking:
            self._stroking = False
            self._send(self._pointer(pos, Phase.RELEASE, 1.0, event.modifiers()))

    def tabletEvent(self, event: QTabletEvent) -> None:
        pos = event.position()
        pressure = float(min(1.0, max(0.0, event.pressure())))
        kind = event.type()
        event.accept()  # no synthesized mouse events: the tablet stroke carries pressure
        if kind == QTabletEvent.Type.TabletPress:
            if self._space_down or event.button() == Qt.MouseButton.MiddleButton:
                self._start_pan(pos)
                return
            self._stroking = True
            self._send(self._pointer(pos, Phase.PRESS, pressure, event.modifiers()))
        elif kind == QTabletEvent.Type.TabletMove:
            self._pointer_moved(pos, pressure, event.modifiers())
        elif kind == QTabletEvent.Type.TabletRelease:
            if self._pan_anchor is not None:
                self._end_pan()
                return
            if self._stroking:
                self._stroking = False
                self._send(self._pointer(pos, Phase.RELEASE, pressure, event.modifiers()))

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y()
        if delta == 0:
            return
        self.set_zoom(self.zoom * ZOOM_STEP ** (delta / 120.0), event.position())
        event.accept()

    def enterEvent(self, event) -> None:
        # take keyboard focus (Space to pan, Esc to cancel) unless the user is typing somewhere
        if not is_text_field(self.window().focusWidget()):
            self.setFocus(Qt.FocusReason.MouseFocusReason)
        super().enterEvent(event)

    def leaveEvent(self, event) -> None:
        old = self._brush_outline_rect()
        self._cursor_doc = None
        self.cursor_moved.emit(None)
        if old is not None:
            self.update(old)
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            if self._pan_anchor is None:
                self.setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if event.key() == Qt.Key.Key_Escape and self.tool is not None:
            self._stroking = False
            self.tool.cancel()
            self._gesture_rect = None
            self.update()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            if self._pan_anchor is None:
                self._end_pan()
            return
        super().keyReleaseEvent(event)

    def cursor_position_in_widget(self) -> QPointF:
        return QPointF(self.mapFromGlobal(QCursor.pos()))
