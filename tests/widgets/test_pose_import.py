"""File › Import Pose…: a pose JSON becomes a pose layer, with the annotator's confidence
threshold chosen in a dialog that starts at the file's convention."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QFileDialog

from app.layers import LayerKind
from app.settings import SettingsStore
from tests.app.fake_engine import FakeEngine
from widgets.main_window import MainWindow, ToolId
from widgets.pose_import_dialog import PoseImportDialog
from widgets.workspace import Workspace


def _body(confidences: list[float]) -> list[float]:
    """18 body points in a column, normalised, with the given confidences."""
    out: list[float] = []
    for i, c in enumerate(confidences):
        out += [0.5, 0.1 + i * 0.04, c]
    return out


EDITOR_JSON = {  # sd-webui-openpose-editor: a canvas size, normalised, some points below 1
    "canvas_width": 512,
    "canvas_height": 512,
    "people": [{"pose_keypoints_2d": _body([1.0] * 12 + [0.6] * 4 + [0.0] * 2)}],
}


@pytest.fixture
def workspace(qtbot, tmp_path):
    window = MainWindow()
    window.ask_unsaved = lambda action: "discard"
    qtbot.addWidget(window)
    ws = Workspace(
        window,
        SettingsStore(tmp_path / "settings.json"),
        engine_factory=FakeEngine,
        autosave_folder=tmp_path / "autosave",
        library_cache=tmp_path / "library.json",
        scan_models=False,
    )
    window.new_document(1024, 1024)
    window.show()
    yield ws
    ws.shutdown()


def _import_through_menu(qtbot, workspace, monkeypatch, path, answer) -> list[str]:
    """Trigger File › Import Pose… with ``path`` picked; ``answer(dialog)`` drives the dialog."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    seen: list[str] = []

    def drive() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, PoseImportDialog)
        seen.append(dialog.count_label.text())
        answer(dialog)
        seen.append(dialog.count_label.text())

    QTimer.singleShot(0, drive)
    file_menu = workspace.window.menus["file"]
    action = next(a for a in file_menu.actions() if a.text().replace("&", "") == "Import Pose…")
    action.trigger()
    return seen


def _ok(qtbot, dialog) -> None:
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)


def test_editor_json_keeps_controlnets_convention_by_default(
    qtbot, workspace, monkeypatch, tmp_path
):
    path = tmp_path / "pose.json"
    path.write_text(json.dumps(EDITOR_JSON))
    seen = _import_through_menu(qtbot, workspace, monkeypatch, path, lambda d: _ok(qtbot, d))
    doc = workspace.window.doc
    layer = doc.active_layer
    assert layer.kind is LayerKind.POSE and layer.name == "pose"
    person = layer.pose.people[0]
    shown = [point.visible for _part, _i, point in person.points()]
    assert shown == [True] * 12 + [False] * 6  # c < 1 hidden, as sd-webui-controlnet draws it
    assert seen[0] == "12 of 18 points shown"
    # placed on the 1024² document (normalised coordinates, canvas scaled)
    assert person.joint(0).x == pytest.approx(512) and person.joint(0).y == pytest.approx(102.4)
    assert workspace.window.current_tool_id is ToolId.POSE
    doc.history.undo()
    assert doc.layers_of(LayerKind.POSE) == []  # one undo step


def test_a_lower_threshold_typed_in_the_dialog_shows_the_uncertain_points(
    qtbot, workspace, monkeypatch, tmp_path
):
    path = tmp_path / "uncertain.json"
    path.write_text(json.dumps(EDITOR_JSON))

    def lower(dialog) -> None:
        spin = dialog.threshold_spin
        spin.setFocus()
        spin.selectAll()
        qtbot.keyClicks(spin, "0.5")
        assert dialog.count_label.text() == "16 of 18 points shown"
        qtbot.keyClick(spin, Qt.Key.Key_Return)  # the default button: OK

    seen = _import_through_menu(qtbot, workspace, monkeypatch, path, lower)
    assert seen == ["12 of 18 points shown", "16 of 18 points shown"]
    person = workspace.window.doc.active_layer.pose.people[0]
    assert sum(p.visible for _part, _i, p in person.points()) == 16


def test_openpose_output_without_a_canvas_shows_every_detected_point(
    qtbot, workspace, monkeypatch, tmp_path
):
    body = []
    for i in range(18):  # pixels on the document, detection scores 0.2..0.9, one missing
        body += [100.0 + i, 50.0 + 10 * i, 0.0 if i == 5 else 0.2 + 0.04 * i]
    path = tmp_path / "openpose_keypoints.json"
    path.write_text(json.dumps({"version": 1.3, "people": [{"pose_keypoints_2d": body}]}))
    seen = _import_through_menu(qtbot, workspace, monkeypatch, path, lambda d: _ok(qtbot, d))
    assert seen[0] == "17 of 18 points shown"
    person = workspace.window.doc.active_layer.pose.people[0]
    assert person.joint(3).x == pytest.approx(103) and person.joint(3).y == pytest.approx(80)


def test_a_bad_pose_file_is_one_clear_line_and_changes_nothing(workspace, tmp_path):
    errors: list[tuple[str, str]] = []
    workspace.window.show_error = lambda title, text: errors.append((title, text))
    before = list(workspace.window.doc.layers)
    path = tmp_path / "broken.json"
    path.write_text('{"people": [{"pose_keypoints_2d": [1, 2]}]}')
    assert workspace.import_pose(path) is False
    ((_title, text),) = errors
    assert "broken.json" in text and "\n" not in text and "Traceback" not in text
    assert workspace.window.doc.layers == before
