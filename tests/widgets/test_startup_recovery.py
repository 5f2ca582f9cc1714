"""Crash recovery is offered at start-up also when the app is started with a file argument."""

import numpy as np
import pytest
from PIL import Image

from app.document import Document
from app.io.autosave import AutosaveManager
from app.layers import LayerKind
from app.settings import SettingsStore
from tests.app.fake_engine import FakeEngine
from widgets.app_window import startup_open
from widgets.main_window import MainWindow
from widgets.workspace import Workspace


@pytest.fixture
def workspace(qtbot, tmp_path):
    window = MainWindow()
    window.ask_unsaved = lambda action: "discard"
    qtbot.addWidget(window)
    engine = FakeEngine()
    ws = Workspace(
        window,
        SettingsStore(tmp_path / "settings.json"),
        engine_factory=lambda: engine,
        autosave_folder=tmp_path / "autosave",
        library_cache=tmp_path / "library.json",
        scan_models=False,
    )
    yield ws
    ws.shutdown()


def _crash_with_unsaved_work(folder) -> None:
    crashed = AutosaveManager(folder)
    lost = Document.blank(40, 30)
    lost.add_layer(LayerKind.SKETCH, name="precious")
    crashed.watch(lost)
    crashed.autosave_now()
    crashed._lock.release()  # what the OS does when the process dies


@pytest.mark.parametrize("answer", [True, False])
def test_file_argument_after_a_crash_still_offers_recovery(workspace, tmp_path, answer):
    _crash_with_unsaved_work(tmp_path / "autosave")
    image = tmp_path / "photo.png"
    Image.fromarray(np.full((12, 20, 3), 90, np.uint8)).save(image)
    asked = []
    workspace._ask_recovery = lambda items: asked.append(items) or answer
    startup_open(workspace, workspace.window, str(image))
    assert len(asked) == 1
    names = [layer.name for layer in workspace.window.doc.layers]
    if answer:
        assert "precious" in names
    else:
        assert workspace.window.doc.width == 20 and "precious" not in names


def test_file_argument_without_a_crash_just_opens(workspace, tmp_path):
    image = tmp_path / "photo.png"
    Image.fromarray(np.full((12, 20, 3), 90, np.uint8)).save(image)
    workspace._ask_recovery = lambda items: pytest.fail("nothing to recover")
    startup_open(workspace, workspace.window, str(image))
    assert workspace.window.doc.width == 20
