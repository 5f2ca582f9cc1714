"""Regenerate docs/screenshots/live_painting.png:

    xvfb-run -s "-screen 0 1600x1000x24" python docs/screenshots/take_live.py

The app as ``impasto`` builds it, a landscape photo, a REAL tiny random-weight model named like an
LCM checkpoint (so live mode applies the LCM preset), live mode switched on with Ctrl+L and a few
pen strokes drawn with mouse events: the canvas shows the live picture (noise-like pixels: the
weights are random), the Live button shows the last frame time, the few-step box the preset
found (Auto: LCM).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "screenshots"))

from take_main_window import landscape  # noqa: E402

from widgets.app_window import create_application  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def _mouse(widget, kind, point: QPoint, buttons) -> None:
    from PySide6.QtWidgets import QApplication

    pos = QPointF(point)
    event = QMouseEvent(
        kind,
        pos,
        QPointF(widget.mapToGlobal(point)),
        Qt.MouseButton.LeftButton,
        buttons,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, event)


def stroke(widget, points: list[tuple[int, int]]) -> None:
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    _mouse(widget, QMouseEvent.Type.MouseButtonPress, QPoint(*points[0]), left)
    for x, y in points[1:]:
        _mouse(widget, QMouseEvent.Type.MouseMove, QPoint(x, y), left)
    _mouse(widget, QMouseEvent.Type.MouseButtonRelease, QPoint(*points[-1]), none)


def main() -> int:
    app = create_application()
    from app.settings import SettingsStore
    from tests.tiny_models import save_tiny_single_file
    from widgets.main_window import MainWindow
    from widgets.workspace import Workspace

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        window = MainWindow()
        window.ask_unsaved = lambda action: "discard"
        window.resize(1600, 1000)
        workspace = Workspace(
            window,
            SettingsStore(folder / "settings.json"),
            autosave_folder=folder / "autosave",
            library_cache=folder / "library.json",
            scan_models=False,
        )
        window.show()
        photo = folder / "alpine_meadow.png"
        Image.fromarray(landscape(), "RGBA").save(photo)
        window.open_path(photo)
        model = save_tiny_single_file(folder / "tiny-lcm (random test weights).safetensors")
        workspace.picker.add_dropped_file(model)
        app.processEvents()
        window.canvas.fit()
        panel = workspace.generate_panel
        panel.prompt_edit.setPlainText("a wooden alpine cabin with a red roof, morning light")
        panel.strength_spin.setValue(0.55)
        panel.refresh_document()
        live = panel.session.live
        frames: list[int] = []
        live.frame_shown.connect(frames.append)

        def wait_frames(count: int) -> None:
            deadline = time.monotonic() + 120
            while len(frames) < count and time.monotonic() < deadline:
                app.processEvents()
                time.sleep(0.01)

        window.activateWindow()
        QTest.qWaitForWindowActive(window, 5000)
        window.canvas.setFocus()
        QTest.keyClick(window.canvas, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
        wait_frames(1)
        QTest.keyClick(window.canvas, Qt.Key.Key_B)
        canvas = window.canvas
        width, height = canvas.width(), canvas.height()
        for index in range(3):
            y = int(height * (0.45 + 0.08 * index))
            points = [(int(width * (0.3 + 0.02 * i)), y + (i % 3)) for i in range(15)]
            stroke(canvas, points)
            wait_frames(2 + index)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)
        window.grab().save(str(OUT / "live_painting.png"))
        print("frames:", len(frames), "jobs:", live.jobs_submitted)
        live.stop()
        workspace.shutdown()
        window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
