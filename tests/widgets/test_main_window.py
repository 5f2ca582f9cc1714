"""Main window: open, paint, undo, export, shortcuts, paste, drop, close, error hook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage, QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox

from app.compose import composite
from app.layers import LayerKind
from app.tools import SelectionMode
from tests.widgets.pointer_helpers import drag, photo_pixels
from widgets.app_window import ErrorHook
from widgets.main_window import MainWindow, ToolId, qimage_to_rgba

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def window(qtbot):
    win = MainWindow()
    win.ask_unsaved = lambda action: "discard"  # no modal questions in tests
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    return win


@pytest.fixture
def photo_file(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(photo_pixels(), "RGBA").save(path)
    return path


def place(window: MainWindow) -> None:
    """Zoom 100% with the document origin at (10, 10) of the canvas."""
    window.canvas.set_zoom(1.0)
    window.canvas.pan_by(10 - window.canvas._offset.x(), 10 - window.canvas._offset.y())


def test_open_image_sets_document_and_title(window, photo_file):
    assert window.open_path(photo_file)
    assert (window.doc.width, window.doc.height) == (320, 240)
    np.testing.assert_array_equal(window.doc.layers[0].raster.data, photo_pixels())
    assert "photo.png" in window.windowTitle()
    assert window.size_label.text() == "320 × 240"


def test_bad_file_shows_a_message_and_keeps_the_document(window, tmp_path, qtbot):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    before = window.doc
    assert not window.open_path(broken)
    assert not window.open_path(tmp_path / "missing.jpg")
    assert not window.open_path(tmp_path / "notes.txt")
    assert window.doc is before
    boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox)]
    assert boxes and all(not box.isModal() for box in boxes if box.isVisible())
    assert any("broken.png" in box.text() for box in boxes)


def test_pixel_limit_refuses_big_images(window, photo_file):
    window.pixel_limit = 1000
    before = window.doc
    assert not window.open_path(photo_file)
    assert window.doc is before


def test_paint_mask_undo_redo_with_shortcuts_and_export(window, photo_file, tmp_path, qtbot):
    window.open_path(photo_file)
    place(window)
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert window.current_tool_id is ToolId.MASK_BRUSH
    drag(window.canvas, [(60, 60), (160, 60)])  # doc y = 50
    mask = window.doc.mask_layer.raster.read(window.doc.rect)
    assert mask[50, 50:151].min() == 255
    assert window.isWindowModified()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.doc.mask_layer.raster.read(window.doc.rect).max() == 0
    assert not window.isWindowModified()
    qtbot.keyClick(window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert window.doc.mask_layer.raster.read(window.doc.rect)[50, 100] == 255
    window.undo()
    qtbot.keyClick(
        window,
        Qt.Key.Key_Z,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert window.doc.mask_layer.raster.read(window.doc.rect)[50, 100] == 255

    # sketch with B, then export: the PNG holds picture layers, not the mask
    qtbot.keyClick(window, Qt.Key.Key_B)
    window.tools[ToolId.SKETCH_PEN].settings = window.tools[ToolId.SKETCH_PEN].settings.__class__(
        size=6, hardness=1.0, color=(255, 0, 255)
    )
    drag(window.canvas, [(60, 110), (160, 110)])  # doc y = 100
    out = tmp_path / "export.png"
    assert window.export_png(out)
    exported = np.asarray(Image.open(out).convert("RGBA"))
    np.testing.assert_array_equal(exported, composite(window.doc.layers, window.doc.rect))
    assert tuple(exported[100, 100, :3]) == (255, 0, 255)
    assert tuple(exported[50, 100]) == tuple(photo_pixels()[50, 100])  # no mask tint


def test_export_to_missing_folder_is_a_message(window, tmp_path):
    assert not window.export_png(tmp_path / "nope" / "x.png")
    assert "does not exist" in window.statusBar().currentMessage()


def test_tool_shortcuts(window, qtbot):
    keys = [
        (Qt.Key.Key_B, ToolId.SKETCH_PEN),
        (Qt.Key.Key_E, ToolId.SKETCH_ERASER),
        (Qt.Key.Key_M, ToolId.MASK_BRUSH),
        (Qt.Key.Key_X, ToolId.MASK_ERASER),
        (Qt.Key.Key_X, ToolId.MASK_BRUSH),
        (Qt.Key.Key_E, ToolId.MASK_ERASER),
        (Qt.Key.Key_S, ToolId.RECT_SELECT),
        (Qt.Key.Key_S, ToolId.LASSO_SELECT),
        (Qt.Key.Key_S, ToolId.RECT_SELECT),
    ]
    for key, expected in keys:
        qtbot.keyClick(window, key)
        assert window.current_tool_id is expected, key
        assert window.canvas.tool is window.tools[expected]
        assert window.tool_options.tool is window.tools[expected]
    qtbot.keyClick(window, Qt.Key.Key_X)  # on a selection tool: add <-> subtract
    assert window.tools[ToolId.RECT_SELECT].mode is SelectionMode.SUBTRACT
    assert window.tools[ToolId.LASSO_SELECT].mode is SelectionMode.SUBTRACT
    qtbot.keyClick(window, Qt.Key.Key_M)
    size = window.current_tool.settings.size
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    assert window.current_tool.settings.size > size
    assert window.tool_options.size_spin.value() == round(window.current_tool.settings.size)
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)
    assert window.current_tool.settings.size < size


def test_view_shortcuts(window, qtbot):
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.canvas.zoom == pytest.approx(1.0)
    assert window.zoom_label.text() == "100%"
    qtbot.keyClick(window, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert window.canvas.zoom < 1.0  # 1024 px document in a smaller canvas


def test_selection_to_mask_and_mask_operations(window, qtbot):
    place(window)
    qtbot.keyClick(window, Qt.Key.Key_S)
    drag(window.canvas, [(110, 110), (210, 160)])  # doc (100,100)-(200,150)
    qtbot.keyClick(window, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    mask = window.doc.mask_layer.raster.read(window.doc.rect)
    assert mask[100:150, 100:200].min() == 255 and mask.sum() == 255 * 100 * 50
    window.grow_mask(5)
    assert window.doc.mask_layer.raster.read(window.doc.rect)[97, 150] == 255
    window.action_map["invert_mask"].trigger()
    assert window.doc.mask_layer.raster.read(window.doc.rect)[0, 0] == 255
    window.action_map["clear_mask"].trigger()  # clears inside the selection only
    inverted = window.doc.mask_layer.raster.read(window.doc.rect)
    assert inverted[0, 0] == 255 and inverted[120, 150] == 0
    qtbot.keyClick(
        window,
        Qt.Key.Key_A,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert window.doc.selection_mask() is None


def test_layer_menu_actions(window):
    count = len(window.doc.layers)
    window.action_map["new_sketch_layer"].trigger()
    assert window.doc.active_layer.kind is LayerKind.SKETCH
    window.action_map["duplicate_layer"].trigger()
    assert len(window.doc.layers) == count + 2
    window.action_map["delete_layer"].trigger()
    assert len(window.doc.layers) == count + 1
    window.action_map["undo"].trigger()
    assert len(window.doc.layers) == count + 2


def test_new_document_asks_before_dropping_work(window, qtbot):
    window.doc.add_layer(LayerKind.IMAGE)
    window.ask_unsaved = lambda action: "cancel"
    before = window.doc
    assert not window.new_document(300, 200)
    assert window.doc is before
    window.ask_unsaved = lambda action: "discard"
    assert window.new_document(300, 200, (0, 0, 0, 0))
    assert (window.doc.width, window.doc.height) == (300, 200)
    assert window.doc.layers[0].raster.data.max() == 0
    assert window.canvas.doc is window.doc and window.layers_panel.doc is window.doc
    assert window.current_tool.doc is window.doc


def test_close_with_unsaved_work_can_be_cancelled(window):
    window.doc.add_layer(LayerKind.IMAGE)
    asked = []
    window.ask_unsaved = lambda action: asked.append(action) or "cancel"
    assert not window.close()
    assert asked == ["quit"] and window.isVisible()
    saved = []
    window.save_handler = lambda: saved.append(True) or True
    window.ask_unsaved = lambda action: "save"
    assert window.close()
    assert saved == [True]


def test_paste_from_clipboard_as_layer_and_as_document(window):
    pixels = np.zeros((40, 60, 4), np.uint8)
    pixels[..., 0] = 255
    pixels[..., 3] = 255
    image = QImage(pixels.data, 60, 40, 240, QImage.Format.Format_RGBA8888).copy()
    QApplication.clipboard().setImage(image)
    assert window.paste_as_layer()
    layer = window.doc.active_layer
    assert layer.name == "Pasted" and layer.raster.rect.w == 60
    np.testing.assert_array_equal(layer.raster.data, pixels)
    assert window.paste_as_document()
    assert (window.doc.width, window.doc.height) == (60, 40)


def drop_file(window, path) -> bool:
    """Drag ``path`` over the window and drop it, as a file manager does; returns whether the
    drag was accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(
        QPoint(300, 300),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, enter)
    drop = QDropEvent(
        QPointF(300, 300),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, drop)
    return enter.isAccepted()


def test_drop_a_file_opens_it(window, photo_file, qtbot):
    assert drop_file(window, photo_file)
    qtbot.waitUntil(lambda: window.doc.width == 320, timeout=2000)


def test_add_dock_places_a_panel_on_the_right(window):
    from PySide6.QtWidgets import QLabel

    dock = window.add_dock(QLabel("generate"), "Generate")
    assert window.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea
    assert dock.toggleViewAction() in window.menus["panels"].actions()


def test_notice_reaches_the_status_bar(window):
    window.doc.notice.emit("Layer is locked")
    assert window.statusBar().currentMessage() == "Layer is locked"


def test_qimage_to_rgba_handles_padded_rows():
    image = QImage(3, 2, QImage.Format.Format_RGB888)  # 9-byte rows padded to 12
    image.fill(Qt.GlobalColor.red)
    pixels = qimage_to_rgba(image)
    assert pixels.shape == (2, 3, 4) and (pixels[..., 0] == 255).all()


def test_error_hook_shows_a_message_once_per_burst():
    shown = []
    hook = ErrorHook(lambda title, message, details: shown.append((title, message, details)))
    try:
        raise ValueError("boom")
    except ValueError as err:
        hook(type(err), err, err.__traceback__)
        hook(type(err), err, err.__traceback__)
    assert len(shown) == 1
    _title, message, details = shown[0]
    assert "boom" in message and "Traceback" in details and "Traceback" not in message


def test_impasto_starts_shows_a_window_and_exits(photo_file):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", IMPASTO_QUIT_WHEN_SHOWN="1")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from app.main import main; sys.exit(main(sys.argv[1:]))",
            str(photo_file),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_shortcut_keys_are_registered():
    shortcuts = {
        "undo": "Ctrl+Z",
        "zoom_fit": "Ctrl+0",
        "zoom_100": "Ctrl+1",
    }
    win = MainWindow()
    try:
        for key, sequence in shortcuts.items():
            assert QKeySequence(sequence) in win.action_map[key].shortcuts()
        redo = win.action_map["redo"].shortcuts()
        assert QKeySequence("Ctrl+Shift+Z") in redo and QKeySequence("Ctrl+Y") in redo
    finally:
        win.deleteLater()


def test_escape_in_canvas_does_not_undo(window, qtbot):
    place(window)
    drag(window.canvas, [(60, 60), (100, 60)])
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert window.doc.history.count() == 1


def test_mask_overlay_from_menu_and_settings(window, qtbot):
    from app.settings import Settings

    with qtbot.waitSignal(window.mask_overlay_changed) as signal:
        window.set_mask_opacity(0.8)
    assert signal.args[1] == pytest.approx(0.8) and window.canvas.mask_opacity == 0.8
    window.apply_settings(Settings(mask_color="#00ff00", mask_opacity=0.35, max_image_megapixels=7))
    assert window.canvas.mask_color.name() == "#00ff00"
    assert window.canvas.mask_opacity == pytest.approx(0.35)
    assert window.pixel_limit == 7_000_000
    assert window._opacity_actions[35].isChecked()


def test_pose_tool_click_adds_a_person_and_the_bar_offers_pose_actions(window, qtbot):
    window.new_document(400, 300)
    place(window)
    qtbot.keyClick(window.canvas, Qt.Key.Key_P)
    assert window.current_tool_id is ToolId.POSE
    bar = window.tool_options
    qtbot.waitUntil(lambda: bar.pose_group.isVisible() and not bar.size_group.isVisible())
    assert window.doc.layers_of(LayerKind.POSE) == []
    qtbot.mouseClick(window.canvas, Qt.MouseButton.LeftButton, pos=QPoint(10 + 120, 10 + 150))
    poses = window.doc.layers_of(LayerKind.POSE)
    assert len(poses) == 1 and len(poses[0].pose.people) == 1
    left, top, right, bottom = poses[0].pose.people[0].bounds()
    assert 0.6 * 300 <= bottom - top <= 300  # scaled to the canvas, not a speck
    assert abs((left + right) / 2 - 120) < 8  # where the click was
    assert window.doc.history.count() == 1  # layer + person: one undo step

    qtbot.mouseClick(bar.pose_buttons["details"], Qt.MouseButton.LeftButton)
    person = window.doc.layers_of(LayerKind.POSE)[0].pose.people[0]
    assert person.face is not None and person.left_hand is not None
    assert all(0 <= p.x <= 400 and 0 <= p.y <= 300 for p in person.face)
    qtbot.mouseClick(bar.pose_buttons["mirror"], Qt.MouseButton.LeftButton)
    mirrored = window.doc.layers_of(LayerKind.POSE)[0].pose.people[0]
    assert mirrored != person
    qtbot.mouseClick(bar.pose_buttons["add"], Qt.MouseButton.LeftButton)
    assert len(window.doc.layers_of(LayerKind.POSE)[0].pose.people) == 2
    qtbot.mouseClick(window.canvas, Qt.MouseButton.LeftButton, pos=QPoint(395, 295))
    assert len(window.doc.layers_of(LayerKind.POSE)[0].pose.people) == 2  # a click deselects
    qtbot.mouseClick(bar.pose_buttons["mirror"], Qt.MouseButton.LeftButton)
    assert "select" in bar.pose_hint.text()

    for _ in range(4):
        qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.doc.layers_of(LayerKind.POSE) == []


def test_a_checked_checkbox_shows_a_tick(qtbot):
    from PySide6.QtWidgets import QCheckBox

    from widgets.app_window import STYLE_SHEET

    icons = (STYLE_SHEET.parent / "icons").as_posix()
    box = QCheckBox("")
    box.setStyleSheet(STYLE_SHEET.read_text(encoding="utf-8").replace("@ICONS@", icons))
    qtbot.addWidget(box)
    box.show()

    def indicator() -> np.ndarray:
        pixels = qimage_to_rgba(box.grab().toImage())
        return pixels[:, :16, :3].astype(int)

    box.setChecked(True)
    checked = indicator()
    blue = (checked[..., 2] > 170) & (checked[..., 0] < 120)
    assert blue.sum() > 20  # the filled box
    ys, xs = np.nonzero(blue)
    inside = checked[ys.min() + 1 : ys.max(), xs.min() + 1 : xs.max()]
    assert int((inside.min(axis=2) > 200).sum()) >= 8  # a white tick inside it


def test_dropping_a_deep_colour_file_says_it_was_converted(window, tmp_path, qtbot):
    from tests.hostile.builders import grey16_png

    path = tmp_path / "scan16.png"
    path.write_bytes(grey16_png(np.full((24, 30), 50000, np.uint16)))
    assert drop_file(window, path)
    qtbot.waitUntil(lambda: window.doc.width == 30, timeout=2000)
    message = window.statusBar().currentMessage()
    assert "scan16.png" in message and "16-bit values scaled" in message
    assert window.doc.layers[0].raster.data[0, 0, 0] == round(50000 * 255 / 65535)
