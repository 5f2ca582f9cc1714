"""Regenerate docs/screenshots/main_window.png on a real (virtual) X display:

    xvfb-run -s "-screen 0 1600x1000x24" python docs/screenshots/take_main_window.py
    [--size 1280x800 --out /tmp/small.png]   (to look at the layout at another window size)

The window exactly as ``impasto`` builds it (MainWindow + Workspace, settings in a temporary
folder). Opens a generated photo-like landscape, paints an inpaint mask and a sketch through the
canvas (synthetic mouse events, as a user would), makes a selection, hovers the mask brush, and
grabs the window.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from widgets.app_window import create_application  # noqa: E402

OUT = ROOT / "docs" / "screenshots" / "main_window.png"


def landscape(width: int = 1536, height: int = 1024, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = ys / height
    sky = np.stack([70 + 150 * t, 130 + 100 * t, 215 + 30 * t], -1)
    sun = np.exp(-(((xs - width * 0.72) ** 2 + (ys - height * 0.22) ** 2) / (2 * 60.0**2)))
    glow = np.exp(-(((xs - width * 0.72) ** 2 + (ys - height * 0.22) ** 2) / (2 * 260.0**2)))
    image = sky + (sun[..., None] * 120 + glow[..., None] * 50) * np.array([1.0, 0.9, 0.6])
    for depth, (base, color, amp, freq) in enumerate(
        [
            (0.48, (120, 135, 170), 80, 3.0),
            (0.58, (80, 105, 120), 60, 5.0),
            (0.68, (60, 110, 60), 40, 7.0),
        ]
    ):
        phase = rng.uniform(0, 6)
        ridge = height * base - amp * (
            np.sin(xs[0] / width * freq + phase) + 0.4 * np.sin(xs[0] / width * freq * 3.1 + phase)
        )
        below = ys >= ridge[None, :]
        shade = 1.0 - 0.25 * np.clip((ys - ridge[None, :]) / (height * 0.3), 0, 1)
        layer = np.array(color, np.float32) * shade[..., None]
        image = np.where(below[..., None], layer * (1 - 0.05 * depth), image)
    meadow = ys > height * 0.78
    grass = np.array([70, 140, 50], np.float32) * (0.8 + 0.3 * t[..., None])
    image = np.where(meadow[..., None], grass, image)
    for _ in range(40):  # trees on the meadow edge
        cx, cy = rng.uniform(0, width), height * rng.uniform(0.74, 0.86)
        r = rng.uniform(12, 30)
        tree = ((xs - cx) / r) ** 2 + ((ys - cy) / (r * 1.8)) ** 2 < 1
        image[tree] = np.array([30, 75, 35]) * rng.uniform(0.8, 1.2)
    image += rng.normal(0, 6, image.shape)
    image = cv2.GaussianBlur(np.clip(image, 0, 255).astype(np.uint8), (0, 0), 1.2)
    rgba = np.dstack([image, np.full((height, width), 255, np.uint8)])
    return rgba


def mouse(widget, kind, pos, button, buttons) -> None:
    pos = QPointF(pos)
    event = QMouseEvent(
        kind,
        pos,
        QPointF(widget.mapToGlobal(pos.toPoint())),
        button,
        buttons,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, event)


def drag_doc(window, points) -> None:
    """Drag through document points (mapped to the canvas)."""
    canvas = window.canvas
    screen = [canvas.doc_to_widget(x, y).toPoint() for x, y in points]
    left = Qt.MouseButton.LeftButton
    mouse(canvas, QMouseEvent.Type.MouseButtonPress, screen[0], left, left)
    for point in screen[1:]:
        mouse(canvas, QMouseEvent.Type.MouseMove, point, Qt.MouseButton.NoButton, left)
        QApplication.processEvents()
    mouse(canvas, QMouseEvent.Type.MouseButtonRelease, screen[-1], left, Qt.MouseButton.NoButton)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1600x1000", help="window size WxH")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    app = create_application()
    from app.settings import SettingsStore
    from widgets.main_window import MainWindow, ToolId
    from widgets.workspace import Workspace

    window = MainWindow()
    window.ask_unsaved = lambda action: "discard"
    window.resize(width, height)
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
    Image.fromarray(landscape(), "RGBA").save(photo)
    window.open_path(photo)
    workspace.generate_panel.prompt_edit.setPlainText("a wooden alpine cabin with a red roof")
    app.processEvents()
    window.canvas.fit()

    # an inpaint mask over the left meadow, where a cabin should go
    window.select_tool(ToolId.MASK_BRUSH)
    window.current_tool.settings = window.current_tool.settings.__class__(size=90, hardness=0.6)
    for row in range(5):
        y = 720 + row * 45
        drag_doc(window, [(260 + i * 20, y + 10 * math.sin(i / 3)) for i in range(18)])

    # a sketch of the cabin on a sketch layer
    window.select_tool(ToolId.SKETCH_PEN)
    pen = window.current_tool
    pen.settings = pen.settings.__class__(size=7, hardness=0.9, color=(250, 250, 250))
    drag_doc(window, [(300, 900), (300, 780), (440, 780), (440, 900), (300, 900)])
    drag_doc(window, [(280, 790), (370, 700), (460, 790)])
    drag_doc(window, [(350, 900), (350, 840), (390, 840), (390, 900)])

    # a lasso selection around the sun
    window.select_tool(ToolId.LASSO_SELECT)
    drag_doc(
        window,
        [
            (
                1105 + 150 * math.cos(a / 20 * 2 * math.pi),
                225 + 110 * math.sin(a / 20 * 2 * math.pi),
            )
            for a in range(21)
        ],
    )

    # back to the mask brush, hovering, so the brush outline shows
    window.select_tool(ToolId.MASK_BRUSH)
    hover = window.canvas.doc_to_widget(640, 600).toPoint()
    mouse(
        window.canvas,
        QMouseEvent.Type.MouseMove,
        QPoint(hover),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
    )
    sketch = next(layer for layer in window.doc.layers if layer.kind.value == "sketch")
    window.doc.set_active(sketch.id)
    for _ in range(10):
        app.processEvents()
    window.layers_panel._refresh_thumbnails()  # do not wait for the debounce
    deadline = time.monotonic() + 0.5  # the generate panel re-detects the mode after 120 ms
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(args.out))
    print(f"saved {args.out}")
    window.close()
    workspace.shutdown()
    settings.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
