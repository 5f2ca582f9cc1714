"""Regenerate docs/screenshots/generation_in_progress.png and staging_strip.png:

    xvfb-run -s "-screen 0 1600x1000x24" python docs/screenshots/take_generation.py

The main window with the generate panel and staging strip docked exactly as app wiring does it,
a photo with an inpaint mask, and a REAL generation on a tiny random-weight model (so the pixels
it paints are noise-like: the point is the workspace: step preview in the canvas, progress, queue,
then the variants waiting in the staging strip).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "screenshots"))

from PySide6.QtCore import Qt  # noqa: E402
from take_main_window import landscape  # noqa: E402

from widgets.app_window import create_application  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    app = create_application()
    from app.geometry import Rect
    from app.jobs import JobController
    from app.staging import Staging
    from tests.tiny_models import save_tiny_model
    from widgets.generate_panel import GeneratePanel
    from widgets.main_window import MainWindow
    from widgets.staging_strip import StagingStrip

    window = MainWindow()
    window.ask_unsaved = lambda action: "discard"
    window.resize(1600, 1000)
    staging = Staging(window)
    jobs = JobController(staging=staging, parent=window)
    panel = GeneratePanel(lambda: window.doc, jobs)
    window.add_dock(panel, "Generate")
    window.document_changed.connect(lambda _doc: panel.refresh_document())
    panel.status_message.connect(lambda text: window.statusBar().showMessage(text, 4000))
    strip = StagingStrip(staging)
    variants_dock = window.add_dock(strip, "Variants", Qt.DockWidgetArea.BottomDockWidgetArea)
    variants_dock.setVisible(False)
    staging.changed.connect(lambda: variants_dock.setVisible(staging.active))
    window.show()
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "alpine_meadow.png"
        Image.fromarray(landscape(), "RGBA").save(photo)
        window.open_path(photo)
        model = save_tiny_model(Path(folder) / "tiny-sd")
        app.processEvents()
        window.canvas.fit()
        doc = window.doc
        mask = np.zeros((200, 260), np.uint8)
        yy, xx = np.mgrid[0:200, 0:260]
        mask[((yy - 100) / 95.0) ** 2 + ((xx - 130) / 125.0) ** 2 < 1] = 255
        doc.replace_pixels(doc.mask_layer.id, Rect(240, 700, 260, 200), mask, "Mask")
        panel.add_model(str(model), "tiny-sd (random test weights)", native_size=64)
        panel.prompt_edit.setPlainText("a wooden alpine cabin with a red roof, morning light")
        panel.negative_edit.setPlainText("blurry, people")
        panel.steps_spin.setValue(30)
        panel.batch_spin.setValue(3)
        panel.refresh_document()
        shots = {"progress": False}

        def grab_mid_run(_job_id: int, step: int, total: int) -> None:
            if not shots["progress"] and step >= total // 2:
                shots["progress"] = True
                app.processEvents()
                window.grab().save(str(OUT / "generation_in_progress.png"))

        jobs.preview.connect(grab_mid_run)
        panel.generate()
        panel.generate()  # a second job waits in the queue
        while jobs.busy:
            app.processEvents()
        staging.show(4)
        for _ in range(5):
            app.processEvents()
        window.grab().save(str(OUT / "staging_strip.png"))
        jobs.shutdown(30)
    print(f"saved {OUT / 'generation_in_progress.png'} and {OUT / 'staging_strip.png'}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
