"""Image › Upscale… in the real window, driven by key and mouse events: the dialog refuses a
factor beyond the pixel limit with one line and stays open; Upscale grows the canvas; Ctrl+Z
puts it back."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMenu

from app.layers import LayerKind
from app.settings import SettingsStore
from inference.engine import Engine
from widgets.main_window import MainWindow
from widgets.upscale_dialog import UpscaleDialog
from widgets.workspace import Workspace


@pytest.fixture
def workspace(qtbot, tmp_path):
    window = MainWindow()
    window.ask_unsaved = lambda action: "discard"
    qtbot.addWidget(window)
    ws = Workspace(
        window,
        SettingsStore(tmp_path / "settings.json"),
        engine_factory=lambda: Engine(),
        autosave_folder=tmp_path / "autosave",
        library_cache=tmp_path / "library.json",
        scan_models=False,
    )
    window.show()
    qtbot.waitExposed(window)
    yield ws
    ws.shutdown()


def open_upscale_from_the_menu(qtbot, window) -> UpscaleDialog:
    bar = window.menuBar()
    image_menu: QMenu = window.menus["image"]
    qtbot.mouseClick(
        bar, Qt.MouseButton.LeftButton, pos=bar.actionGeometry(image_menu.menuAction()).center()
    )
    qtbot.waitUntil(image_menu.isVisible, timeout=3000)
    action = next(a for a in image_menu.actions() if a.text() == "&Upscale…")
    qtbot.mouseClick(
        image_menu, Qt.MouseButton.LeftButton, pos=image_menu.actionGeometry(action).center()
    )
    qtbot.waitUntil(
        lambda: isinstance(QApplication.activeModalWidget(), UpscaleDialog), timeout=3000
    )
    return QApplication.activeModalWidget()


def test_upscale_dialog_path_grows_the_canvas_and_undo_restores_it(qtbot, workspace):
    window = workspace.window
    window.new_document(40, 30)
    doc = window.doc
    window.pixel_limit = 10_000  # x4 (160 x 120) is too big, x2 (80 x 60) fits
    dialog = open_upscale_from_the_menu(qtbot, window)
    assert not dialog.refine_check.isEnabled()  # no Stable Diffusion model chosen
    assert dialog.size_label.text().startswith("80 × 60")

    dialog.scale_combo.setFocus()
    qtbot.keyClick(dialog.scale_combo, Qt.Key.Key_Down)  # x2 -> x4
    assert dialog.size_label.text().startswith("160 × 120")
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()  # refused, with one line saying why
    assert dialog.message_label.isVisible()
    assert "above the 0.01 MP pixel limit" in dialog.message_label.text()
    assert (doc.width, doc.height) == (40, 30) and not workspace.jobs.busy

    qtbot.keyClick(dialog.scale_combo, Qt.Key.Key_Up)  # back to x2
    with qtbot.waitSignal(workspace.jobs.finished, timeout=20000):
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert QApplication.activeModalWidget() is None  # the dialog closed
    assert (doc.width, doc.height) == (80, 60)
    assert doc.layers_of(LayerKind.RESULT)[0].name == "Upscale ×2"
    canvas = window.canvas  # refitted: the whole grown picture is on screen
    assert canvas.rect().contains(canvas.doc_rect_to_widget(doc.rect))

    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert (doc.width, doc.height) == (40, 30) and not doc.layers_of(LayerKind.RESULT)


def test_cancel_closes_the_dialog_and_changes_nothing(qtbot, workspace):
    window = workspace.window
    window.new_document(32, 32)
    depth = window.doc.history.count()
    dialog = open_upscale_from_the_menu(qtbot, window)
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: QApplication.activeModalWidget() is None, timeout=3000)
    assert window.doc.history.count() == depth and not workspace.jobs.busy
    assert (window.doc.width, window.doc.height) == (32, 32)
