"""Regenerate docs/screenshots/frame_tool.png on a real (virtual) X display:

    xvfb-run -s "-screen 0 1600x1000x24" python docs/screenshots/take_frame_tool.py [--outpaint]

The window as ``impasto`` builds it, a landscape photo, the generation frame tool (F) and a frame
dragged past the picture's right edge by its handle, as a user would (synthetic mouse events).
With ``--outpaint`` the built-in classic engine also fills the frame first (the canvas grows),
saved as frame_outpaint.png.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from take_main_window import drag_doc, landscape, mouse  # noqa: E402

from widgets.app_window import create_application  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def settle(app, seconds: float = 0.4) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)


def main() -> int:
    outpaint = "--outpaint" in sys.argv
    app = create_application()
    from app.frame import frame_of
    from app.settings import SettingsStore
    from widgets.main_window import MainWindow, ToolId
    from widgets.workspace import Workspace

    window = MainWindow()
    window.ask_unsaved = lambda action: "discard"
    window.resize(1600, 1000)
    settings = tempfile.TemporaryDirectory()
    folder = Path(settings.name)
    workspace = Workspace(
        window,
        SettingsStore(folder / "settings.json"),
        autosave_folder=folder / "autosave",
        library_cache=folder / "library.json",
        scan_models=False,
    )
    window.show()
    photo = folder / "alpine_meadow.png"
    Image.fromarray(landscape(1024, 768), "RGBA").save(photo)
    window.open_path(photo)
    workspace.generate_panel.prompt_edit.setPlainText("the valley goes on, evening light")
    app.processEvents()
    window.canvas.set_zoom(0.55)
    window.canvas.pan_by(-180, 0)
    window.select_tool(ToolId.FRAME)
    drag_doc(window, [(640, 96), (800, 300), (1024, 640)])  # a new frame
    drag_doc(window, [(1024, 640), (1200, 660), (1408, 672)])  # its corner, past the edge
    hover = window.canvas.doc_to_widget(1100, 400).toPoint()
    none = Qt.MouseButton.NoButton
    mouse(window.canvas, QMouseEvent.Type.MouseMove, hover, none, none)
    settle(app)
    print("frame:", frame_of(window.doc).rect)
    name = "frame_tool.png"
    if outpaint:
        with_result = []
        workspace.jobs.finished.connect(lambda *_: with_result.append(True))
        workspace.generate_panel.generate()
        deadline = time.monotonic() + 120
        while not with_result and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)
        settle(app)
        print("canvas:", window.doc.width, window.doc.height)
        name = "frame_outpaint.png"
    window.grab().save(str(OUT / name))
    print(f"saved {OUT / name}")
    window.close()
    workspace.shutdown()
    settings.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
