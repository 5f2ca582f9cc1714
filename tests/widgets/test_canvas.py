"""Canvas view: painting through synthetic mouse/tablet events, zoom, pan, dirty repaints."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QPointingDevice, QTabletEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from app.document import Document
from app.geometry import Rect
from app.layers import LayerKind
from app.raster import Raster
from app.tools import BrushSettings, BrushTarget, BrushTool, RectSelectTool
from tests.widgets.pointer_helpers import drag, make_photo_doc, photo_pixels
from widgets.canvas import CanvasView


@pytest.fixture
def photo_doc() -> Document:
    return make_photo_doc()


@pytest.fixture
def canvas(qtbot, photo_doc):
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(500, 400)
    view.set_document(photo_doc)
    view.show()
    qtbot.waitExposed(view)
    view.set_zoom(1.0)  # offscreen: one device pixel per logical pixel
    view._offset = QPointF(10, 20)
    view.update()
    return view


def mask(doc: Document) -> np.ndarray:
    return doc.mask_layer.raster.read(doc.rect)


def pixel(view: CanvasView, x: int, y: int) -> QColor:
    return view.grab().toImage().pixelColor(x, y)


def test_mouse_drag_paints_the_mask_where_the_pointer_went(canvas, photo_doc):
    canvas.set_tool(BrushTool(photo_doc, BrushTarget.MASK, BrushSettings(size=10, hardness=1), "m"))
    drag(canvas, [(60, 120), (110, 120), (160, 120)])  # doc (50, 100) .. (150, 100)
    painted = mask(photo_doc)
    assert painted[100, 50:151].min() == 255
    assert painted[80].max() == 0 and painted[:, 170:].max() == 0
    assert photo_doc.history.count() == 1
    # the tint shows on screen where the mask is, and not elsewhere
    tinted, plain = pixel(canvas, 110, 120), pixel(canvas, 110, 200)
    original = photo_pixels()[100, 100]
    assert tinted.red() > original[0] + 20
    assert (plain.red(), plain.green(), plain.blue()) == tuple(photo_pixels()[180, 100, :3])
    photo_doc.history.undo()
    assert mask(photo_doc).max() == 0
    restored = pixel(canvas, 110, 120)
    assert (restored.red(), restored.green(), restored.blue()) == tuple(original[:3])


def test_sketch_pen_draws_colour_on_a_new_sketch_layer(canvas, photo_doc):
    pen = BrushTool(
        photo_doc, BrushTarget.SKETCH, BrushSettings(size=6, hardness=1, color=(250, 0, 0)), "pen"
    )
    canvas.set_tool(pen)
    drag(canvas, [(40, 60), (90, 60)])
    sketch = photo_doc.layers_of(photo_doc.active_layer.kind)[-1]
    assert sketch.raster.read(Rect(30, 40, 50, 1))[0, :, 0].min() == 250
    shown = pixel(canvas, 60, 60)
    assert (shown.red(), shown.green(), shown.blue()) == (250, 0, 0)


def test_repaint_follows_the_dirty_rectangle(canvas, photo_doc, qtbot):
    canvas.set_tool(BrushTool(photo_doc, BrushTarget.MASK, BrushSettings(size=8), "m"))
    canvas.repaint()
    canvas.stats.reset()
    drag(canvas, [(100, 100), (104, 100)])
    QApplication.processEvents()
    assert canvas.stats.paint_events >= 1
    whole = canvas.width() * canvas.height()
    assert 0 < canvas.stats.painted_screen_px < whole / 10
    assert 0 < canvas.stats.rendered_doc_px < 20 * 20 * 4


def test_wheel_zoom_keeps_the_point_under_the_cursor(canvas):
    anchor = QPointF(137, 211)
    before = canvas.widget_to_doc(anchor)
    event = QWheelEvent(
        anchor,
        QPointF(canvas.mapToGlobal(anchor.toPoint())),
        QPoint(0, 0),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas, event)
    assert canvas.zoom == pytest.approx(2.0)
    after = canvas.widget_to_doc(anchor)
    assert after == pytest.approx(before)


def test_fit_and_actual_pixels(canvas):
    canvas.fit()
    width, height = 320 * canvas.scale, 240 * canvas.scale
    assert width <= canvas.width() and height <= canvas.height()
    assert max(width / canvas.width(), height / canvas.height()) > 0.8
    canvas.actual_pixels()
    assert canvas.zoom == pytest.approx(1.0)


def test_middle_button_and_space_drag_pan_without_painting(canvas, photo_doc, qtbot):
    canvas.set_tool(BrushTool(photo_doc, BrushTarget.MASK, BrushSettings(size=10), "m"))
    start = canvas.widget_to_doc(QPointF(100, 100))
    drag(canvas, [(100, 100), (130, 110), (150, 140)], button=Qt.MouseButton.MiddleButton)
    assert canvas.widget_to_doc(QPointF(150, 140)) == pytest.approx(start)
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    drag(canvas, [(150, 140), (100, 100)])
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.widget_to_doc(QPointF(100, 100)) == pytest.approx(start)
    assert mask(photo_doc).max() == 0 and photo_doc.history.count() == 0


def test_tablet_pressure_reaches_the_brush(canvas, photo_doc):
    tool = BrushTool(photo_doc, BrushTarget.MASK, BrushSettings(size=40, hardness=1), "m")
    canvas.set_tool(tool)
    device = QPointingDevice.primaryPointingDevice()

    def tablet(kind, x, y, pressure):
        pos = QPointF(x, y)
        event = QTabletEvent(
            kind,
            device,
            pos,
            QPointF(canvas.mapToGlobal(pos.toPoint())),
            pressure,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            Qt.KeyboardModifier.NoModifier,
            Qt.MouseButton.LeftButton,
            Qt.MouseButton.LeftButton,
        )
        QApplication.sendEvent(canvas, event)

    tablet(QTabletEvent.Type.TabletPress, 110, 120, 0.25)
    tablet(QTabletEvent.Type.TabletRelease, 110, 120, 0.25)
    light = int((mask(photo_doc) > 0).sum())
    photo_doc.history.undo()
    tablet(QTabletEvent.Type.TabletPress, 110, 120, 1.0)
    tablet(QTabletEvent.Type.TabletRelease, 110, 120, 1.0)
    full = int((mask(photo_doc) > 0).sum())
    assert 0 < light < full / 4  # radius scales with pressure: area with its square


def test_zoomed_out_view_draws_from_a_coarser_level(qtbot):
    doc = Document.blank(4000, 3000, fill=(200, 40, 10, 255))
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.set_document(doc)
    view.show()
    qtbot.waitExposed(view)
    view.fit()
    assert view.level() >= 3
    center = view.doc_to_widget(2000, 1500)
    color = pixel(view, int(center.x()), int(center.y()))
    assert (color.red(), color.green(), color.blue()) == (200, 40, 10)
    # rendering the whole fitted 12 MP document touched it at tile resolution, once
    assert view.stats.rendered_doc_px <= 4000 * 3000 * 1.2


def test_preview_layer_is_drawn_in_place(canvas, photo_doc):
    preview = np.zeros((20, 30, 3), np.uint8)
    preview[..., 1] = 255
    photo_doc.show_preview(7, Rect(100, 50, 30, 20), preview)
    color = pixel(canvas, 10 + 110, 20 + 60)
    assert (color.red(), color.green(), color.blue()) == (0, 255, 0)
    photo_doc.clear_preview(7)
    color = pixel(canvas, 10 + 110, 20 + 60)
    assert (color.red(), color.green(), color.blue()) == tuple(photo_pixels()[60, 110, :3])


def test_selection_outline_and_gesture_are_drawn(canvas, photo_doc):
    tool = RectSelectTool(photo_doc)
    canvas.set_tool(tool)
    drag(canvas, [(60, 70), (160, 170)])  # doc (50,50) .. (150,150)
    assert photo_doc.selection.content_rect() == Rect(50, 50, 100, 100)
    image = canvas.grab().toImage()
    edge = [image.pixelColor(10 + 100, 20 + 50 + dy) for dy in (-1, 0, 1)]
    assert any(c.red() in (0, 255) and c.red() == c.green() == c.blue() for c in edge)
    inside = image.pixelColor(10 + 100, 20 + 100)
    assert (inside.red(), inside.green()) == tuple(photo_pixels()[100, 100, :2])


def test_mask_overlay_colour_and_opacity(canvas, photo_doc):
    photo_doc.mask_layer.raster = Raster(1, np.full((240, 320), 255, np.uint8))
    canvas.set_mask_overlay(QColor(0, 0, 255), 1.0)
    color = pixel(canvas, 100, 100)
    assert (color.red(), color.green(), color.blue()) == (0, 0, 255)
    canvas.set_mask_overlay(opacity=0.0)
    color = pixel(canvas, 100, 100)
    assert (color.red(), color.green()) == tuple(photo_pixels()[80, 90, :2])


def test_overlay_painters_are_called_with_the_view(canvas):
    calls = []
    canvas.overlay_painters.append(lambda painter, view: calls.append(view.view_transform()))
    canvas.repaint()
    assert calls and calls[-1].m11() == pytest.approx(canvas.scale)


def test_escape_cancels_a_stroke_in_progress(canvas, photo_doc, qtbot):
    from PySide6.QtGui import QMouseEvent

    from tests.widgets.pointer_helpers import send_mouse

    canvas.set_tool(BrushTool(photo_doc, BrushTarget.MASK, BrushSettings(size=10), "m"))
    send_mouse(canvas, QMouseEvent.Type.MouseButtonPress, QPoint(60, 60))
    send_mouse(canvas, QMouseEvent.Type.MouseMove, QPoint(90, 60), Qt.MouseButton.NoButton)
    assert mask(photo_doc).max() == 255
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    assert mask(photo_doc).max() == 0
    send_mouse(
        canvas, QMouseEvent.Type.MouseButtonRelease, QPoint(90, 60), buttons=Qt.MouseButton.NoButton
    )
    assert photo_doc.history.count() == 0


HIDPI_PROBE = """
import numpy as np
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.document import Document
from widgets.canvas import CanvasView
pixels = np.zeros((64, 64, 4), np.uint8)
pixels[..., 3] = 255
pixels[:, ::2, :3] = 255  # one-pixel columns: white, black, white, ...
view = CanvasView()
view.resize(200, 200)
view.set_document(Document.from_rgba(pixels))
view.show()
app.processEvents()
view.actual_pixels()
image = view.grab().toImage()
origin = view.doc_to_widget(20, 20)
dpr = view.devicePixelRatioF()
x, y = round(origin.x() * dpr), round(origin.y() * dpr)
row = [image.pixelColor(x + i, y).red() for i in range(6)]
print(dpr, view.zoom, row)
"""


def test_hidpi_100_percent_maps_one_image_pixel_to_one_device_pixel():
    import ast
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR="2")
    result = subprocess.run(
        [sys.executable, "-c", HIDPI_PROBE],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    dpr, zoom, row = result.stdout.strip().split(" ", 2)
    assert float(dpr) == 2.0 and float(zoom) == 1.0
    assert ast.literal_eval(row) == [255, 0, 255, 0, 255, 0]  # sharp single device pixels, no blur


def test_coarse_levels_match_the_box_filtered_full_render(qtbot):
    """Zoomed-out tiles (layers downsampled first) show what averaging the 1:1 picture shows."""
    doc = Document.from_rgba(photo_pixels(512, 384))
    block = np.zeros((101, 77, 4), np.uint8)
    block[..., 0], block[..., 3] = 255, 128  # half-transparent red at an unaligned offset
    doc.add_layer(LayerKind.SKETCH, "Red", Raster(4, block, 37, 53), opacity=0.5)
    doc.mask_layer.raster.write(Rect(200, 100, 90, 70), np.full((70, 90), 255, np.uint8))
    view = CanvasView()
    qtbot.addWidget(view)
    view.set_document(doc)
    rect = doc.rect
    full = view._render(rect, 0).astype(np.float32)
    for level in (1, 2, 3):
        step = 1 << level
        expected = full.reshape(384 // step, step, 512 // step, step, 4).mean(axis=(1, 3))
        coarse = view._render(rect, level).astype(np.float32)
        assert coarse.shape == expected.shape
        assert np.abs(coarse - expected).max() <= 3.0, level


def test_pose_changes_repaint_overlays_without_re_rendering_tiles(canvas, photo_doc, qtbot):
    pose = photo_doc.add_layer(LayerKind.POSE)
    calls = []
    canvas.overlay_painters.append(lambda painter, view: calls.append(1))
    canvas.grab()
    canvas.stats.reset()
    calls.clear()
    photo_doc.set_layer_property(pose.id, "pose", {"people": []})
    QApplication.processEvents()
    canvas.grab()
    assert calls and canvas.stats.rendered_doc_px == 0


def test_step_preview_is_drawn_over_the_tiles_without_re_rendering_them(qtbot, canvas, photo_doc):
    canvas.grab()  # tiles cached
    canvas.stats.reset()
    photo_doc.show_preview(1, Rect(40, 30, 20, 10), np.full((10, 20, 3), (0, 0, 255), np.uint8))
    inside, outside = pixel(canvas, 10 + 50, 20 + 35), pixel(canvas, 10 + 80, 20 + 35)
    assert (inside.red(), inside.green(), inside.blue()) == (0, 0, 255)
    assert (outside.red(), outside.green(), outside.blue()) == tuple(photo_pixels()[35, 80, :3])
    assert canvas.stats.rendered_doc_px == 0
    photo_doc.clear_preview(1)
    back = pixel(canvas, 10 + 50, 20 + 35)
    assert (back.red(), back.green(), back.blue()) == tuple(photo_pixels()[35, 50, :3])


def test_hidden_mask_tint_shows_the_picture_and_returns_when_the_mask_is_edited(
    qtbot, canvas, photo_doc
):
    mask_id = photo_doc.mask_layer.id
    photo_doc.replace_pixels(mask_id, Rect(40, 30, 20, 20), np.full((20, 20), 255, np.uint8), "m")
    original = tuple(photo_pixels()[35, 45, :3])
    tinted = pixel(canvas, 10 + 45, 20 + 35)
    assert (tinted.red(), tinted.green(), tinted.blue()) != original
    with qtbot.waitSignal(canvas.mask_shown_changed):
        canvas.set_mask_shown(False)
    plain = pixel(canvas, 10 + 45, 20 + 35)
    assert (plain.red(), plain.green(), plain.blue()) == original
    assert photo_doc.history.count() == 1  # a view setting, not a document change
    photo_doc.replace_pixels(mask_id, Rect(0, 0, 2, 2), np.full((2, 2), 255, np.uint8), "m")
    assert canvas.mask_shown
    again = pixel(canvas, 10 + 45, 20 + 35)
    assert (again.red(), again.green(), again.blue()) != original


def test_hiding_the_mask_tint_re_renders_only_the_mask_area(qtbot, canvas, photo_doc):
    mask_id = photo_doc.mask_layer.id
    photo_doc.replace_pixels(mask_id, Rect(40, 30, 20, 20), np.full((20, 20), 255, np.uint8), "m")
    canvas.grab()  # every visible tile cached
    canvas.stats.reset()
    canvas.set_mask_shown(False)
    canvas.grab()
    stored = photo_doc.mask_layer.raster.rect
    assert 0 < canvas.stats.rendered_doc_px <= stored.area < photo_doc.rect.area
    plain = pixel(canvas, 10 + 45, 20 + 35)
    assert (plain.red(), plain.green(), plain.blue()) == tuple(photo_pixels()[35, 45, :3])


def test_a_big_change_is_re_rendered_over_several_event_loop_turns(qtbot):
    """Showing a full-canvas layer must not re-render the whole screen in one go: the change
    is spread over event-loop turns (old tiles drawn meanwhile) and ends in the right pixels."""
    doc = Document.blank(1024, 1024, fill=(10, 20, 30, 255))
    white = np.full((1024, 1024, 4), 255, np.uint8)
    top = doc.add_layer(LayerKind.IMAGE, "top", Raster(4, white))
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(700, 600)
    view.set_document(doc)
    view.show()
    qtbot.waitExposed(view)
    view.set_zoom(1.0)
    view.grab()  # cached: 3x3 tiles on screen
    view.stats.reset()
    doc.set_visible(top.id, False)
    assert view.stats.rendered_doc_px == 0  # nothing rendered inside the signal
    qtbot.waitUntil(lambda: not view._stale, timeout=5000)
    assert view.stats.rendered_doc_px >= 600 * 500
    image = view.grab().toImage()
    color = image.pixelColor(350, 300)
    assert (color.red(), color.green(), color.blue()) == (10, 20, 30)
    # a snapshot taken while tiles are stale still shows the document as it is
    doc.set_visible(top.id, True)
    assert view._stale
    color = view.grab().toImage().pixelColor(350, 300)
    assert (color.red(), color.green(), color.blue()) == (255, 255, 255)
