"""The real window with its workspace, on the CPU engine, for end-to-end tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from app.generation.jobs import WORKER_THREAD_NAME
from app.settings import SettingsStore
from widgets.main_window import MainWindow
from widgets.workspace import Workspace


@contextmanager
def cpu_workspace(
    qtbot, tmp_path, show: bool = False, size: tuple[int, int] | None = None
) -> Iterator[Workspace]:
    """A ``Workspace`` on a fresh ``MainWindow`` with its own settings, autosave folder and library
    cache under ``tmp_path`` and a CPU engine; shut down (worker thread joined) afterwards."""
    from inference.api import EngineSettings
    from inference.engine import Engine

    window = MainWindow()
    window.ask_unsaved = lambda action: "discard"
    qtbot.addWidget(window)
    ws = Workspace(
        window,
        SettingsStore(tmp_path / "settings.json"),
        engine_factory=lambda: Engine(EngineSettings(device="cpu")),
        autosave_folder=tmp_path / "autosave",
        library_cache=tmp_path / "library.json",
        scan_models=False,
    )
    if size is not None:
        window.resize(*size)
    if show:
        window.show()
        qtbot.waitExposed(window)
    yield ws
    ws.shutdown()
    assert not any(t.name == WORKER_THREAD_NAME for t in threading.enumerate())
