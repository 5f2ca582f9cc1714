"""The generation frame tool and Image › Canvas Size / Crop, through real keys and mouse events
on the real window."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from app.compose import composite
from app.document import Document
from app.frame import frame_of
from app.geometry import Rect
from app.layers import LayerKind
from tests.app.fake_engine import FakeEngine
from tests.widgets.pointer_helpers import drag, photo_pixels, send_mouse
from widgets.frame_tool import FRAME_COLOUR, CanvasSizeDialog
from widgets.main_window import MainWindow, ToolId, qimage_to_rgba

ORIGIN = 40  # widget position of the document's top-left corner


@pytest.fixture
def window(qtbot):
    win = MainWindow(Document.from_rgba(photo_pixels(), name="Photo"))
    win.ask_unsaved = lambda action: "discard"
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    canvas = win.canvas
    canvas.set_zoom(1.0)
    canvas.pan_by(ORIGIN - canvas._offset.x(), ORIGIN - canvas._offset.y())
    canvas.setFocus()
    return win


def at(x: int, y: int) -> QPoint:
    """The widget point over document pixel (x, y) at 100% zoom."""
    return QPoint(ORIGIN + x, ORIGIN + y)


def frame_pixels(window) -> np.ndarray:
    shot = qimage_to_rgba(window.canvas.grab().toImage())
    colour = np.array([FRAME_COLOUR.red(), FRAME_COLOUR.green(), FRAME_COLOUR.blue()])
    return np.abs(shot[..., :3].astype(int) - colour).sum(axis=2) < 40


def test_f_draws_a_frame_handles_resize_it_past_the_canvas_and_esc_removes_it(window, qtbot):
    canvas = window.canvas
    qtbot.keyClick(canvas, Qt.Key.Key_F)
    assert window.current_tool_id is ToolId.FRAME
    frame = frame_of(window.doc)
    drag(canvas, [at(17, 15), at(100, 80), at(201, 143)])
    assert frame.rect == Rect(16, 16, 184, 128)  # snapped to 8
    # the frame and its handles are on screen, in the frame colour, where the frame is
    blue = frame_pixels(window)
    assert blue[ORIGIN + 16, ORIGIN + 60 : ORIGIN + 150].mean() > 0.8  # top edge
    assert blue[ORIGIN + 80, ORIGIN + 60 : ORIGIN + 150].mean() < 0.05  # inside: the picture
    # the pointer over a handle says what a drag does
    none = Qt.MouseButton.NoButton
    send_mouse(canvas, QMouseEvent.Type.MouseMove, at(200, 144), none, none)
    assert canvas.cursor().shape() is Qt.CursorShape.SizeFDiagCursor
    send_mouse(canvas, QMouseEvent.Type.MouseMove, at(100, 80), none, none)
    assert canvas.cursor().shape() is Qt.CursorShape.SizeAllCursor
    # the bottom-right handle drags it past the canvas (320 x 240)
    drag(canvas, [at(200, 144), at(300, 200), at(397, 261)])
    assert frame.rect == Rect(16, 16, 384, 248) and frame.outside_canvas()
    # the body moves it
    drag(canvas, [at(100, 100), at(60, 80), at(36, 60)])
    assert frame.rect == Rect(-48, -24, 384, 248)
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    assert frame.rect is None
    assert not frame_pixels(window)[ORIGIN:, ORIGIN:].any()


def test_the_frame_label_shows_the_model_scale(window, qtbot):
    window.frame_overlay.describe = lambda rect: f"{rect.w} x {rect.h} at 512"
    shown = []
    original = window.frame_overlay.describe
    window.frame_overlay.describe = lambda rect: shown.append(rect) or original(rect)
    qtbot.keyClick(window.canvas, Qt.Key.Key_F)
    drag(window.canvas, [at(16, 16), at(80, 80), at(144, 144)])
    window.canvas.grab()
    assert shown and shown[-1] == Rect(16, 16, 128, 128)


def test_the_frame_stays_drawn_with_another_tool_and_clear_frame_removes_it(window, qtbot):
    frame = frame_of(window.doc)
    frame.set(Rect(8, 8, 128, 128))
    qtbot.keyClick(window.canvas, Qt.Key.Key_M)
    assert window.current_tool_id is ToolId.MASK_BRUSH
    assert frame_pixels(window)[ORIGIN + 8, ORIGIN + 40 : ORIGIN + 100].mean() > 0.3  # dashed
    window.action_map["clear_frame"].trigger()
    assert frame.rect is None


def _answer_canvas_dialog(qtbot, width: int, height: int, anchor: str, accept: bool = True):
    def answer():
        dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, CanvasSizeDialog))
        for box, value in ((dialog.width_box, width), (dialog.height_box, height)):
            box.selectAll()
            qtbot.keyClicks(box, str(value))
        button = dialog.findChild(object, f"anchor_{anchor}")
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
        if accept and ok.isEnabled():
            qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
        else:
            answer.problem = dialog.problem.text()
            dialog.reject()

    QTimer.singleShot(0, answer)
    return answer


def test_canvas_size_dialog_grows_by_the_anchor_and_ctrl_z_shrinks_back(window, qtbot):
    doc = window.doc
    before = composite(doc.layers, doc.rect)
    _answer_canvas_dialog(qtbot, 400, 300, "bottom_right")
    assert window.canvas_size_dialog()
    assert (doc.width, doc.height) == (400, 300)
    assert window.size_label.text() == "400 × 300"
    np.testing.assert_array_equal(composite(doc.layers, doc.rect)[60:, 80:], before)
    # the canvas shows the grown document: the new top-left is transparent (checkerboard)
    shot = qimage_to_rgba(window.canvas.grab().toImage())
    assert shot.shape[0] > 300
    window.activateWindow()  # the dialog had it (the offscreen platform does not give it back)
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert (doc.width, doc.height) == (320, 240) and window.size_label.text() == "320 × 240"
    np.testing.assert_array_equal(composite(doc.layers, doc.rect), before)


def test_canvas_size_over_the_pixel_limit_is_refused_with_one_line(window, qtbot):
    window.pixel_limit = 200_000
    answer = _answer_canvas_dialog(qtbot, 1000, 1000, "center", accept=True)
    assert not window.canvas_size_dialog()
    assert "MP limit" in answer.problem and "\n" not in answer.problem
    assert (window.doc.width, window.doc.height) == (320, 240)


def test_crop_to_selection_and_to_frame(window, qtbot):
    doc = window.doc
    before = composite(doc.layers, doc.rect)
    qtbot.keyClick(window.canvas, Qt.Key.Key_S)
    drag(window.canvas, [at(20, 30), at(60, 60), at(120, 110)])
    window.action_map["crop_to_selection"].trigger()
    assert (doc.width, doc.height) == (100, 80)
    np.testing.assert_array_equal(composite(doc.layers, doc.rect), before[30:110, 20:120])
    doc.history.undo()
    frame_of(doc).set(Rect(-16, 0, 128, 64))
    window.action_map["crop_to_frame"].trigger()
    assert (doc.width, doc.height) == (128, 64)
    assert frame_of(doc).rect == Rect(0, 0, 128, 64)
    grown = composite(doc.layers, doc.rect)
    assert (grown[:, :16, 3] == 0).all()
    np.testing.assert_array_equal(grown[:, 16:], before[:64, :112])


def test_generate_with_a_frame_past_the_canvas_outpaints_and_undo_shrinks(qtbot, tmp_path):
    """The whole path in the assembled window: F, drag the frame past the edge, Generate."""
    from app.settings import SettingsStore
    from widgets.workspace import Workspace

    window = MainWindow(Document.from_rgba(photo_pixels(), name="Photo"))
    window.ask_unsaved = lambda action: "discard"
    qtbot.addWidget(window)
    engine = FakeEngine()
    workspace = Workspace(
        window,
        SettingsStore(tmp_path / "settings.json"),
        engine_factory=lambda: engine,
        autosave_folder=tmp_path / "autosave",
        library_cache=tmp_path / "library.json",
        scan_models=False,
    )
    try:
        window.resize(1400, 900)
        window.show()
        qtbot.waitExposed(window)
        canvas = window.canvas
        canvas.set_zoom(1.0)
        canvas.pan_by(ORIGIN - canvas._offset.x(), ORIGIN - canvas._offset.y())
        doc = window.doc
        before = composite(doc.layers, doc.rect)
        window.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
        qtbot.keyClick(canvas, Qt.Key.Key_F)
        assert window.current_tool_id is ToolId.FRAME
        drag(canvas, [at(224, 0), at(300, 100), at(416, 240)])
        assert frame_of(doc).rect == Rect(224, 0, 192, 240)
        panel = workspace.generate_panel
        qtbot.waitUntil(lambda: "Inpaint" in panel.mode_label.text(), timeout=3000)
        with qtbot.waitSignal(workspace.jobs.finished, timeout=10_000):
            panel.generate()  # the classic engine outpaints
        assert (doc.width, doc.height) == (416, 240)
        assert window.size_label.text() == "416 × 240"
        after = composite(doc.layers, doc.rect)
        np.testing.assert_array_equal(after[:, : 224 + 96 - 20], before[:, :300])
        assert (after[..., 3] == 255).all()
        assert len(doc.layers_of(LayerKind.RESULT)) == 1
        qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert (doc.width, doc.height) == (320, 240)
        np.testing.assert_array_equal(composite(doc.layers, doc.rect), before)
    finally:
        workspace.shutdown()
