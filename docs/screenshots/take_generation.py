"""Regenerate docs/screenshots/generation_in_progress.png and staging_strip.png:

    xvfb-run -s "-screen 0 1600x1000x24" python docs/screenshots/take_generation.py

The app exactly as ``impasto`` builds it (MainWindow + Workspace), a photo with an inpaint mask,
and a REAL generation on a tiny random-weight model dropped into the model picker (so the pixels
it paints are noise-like: the point is the workspace: the step preview in the canvas, progress,
the queue, then the variants waiting in the staging strip).
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

from take_main_window import landscape  # noqa: E402

from widgets.app_window import create_application  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    app = create_application()
    from app.geometry import Rect
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
        model = save_tiny_single_file(folder / "tiny-sd (random test weights).safetensors")
        workspace.picker.add_dropped_file(model)
        app.processEvents()
        window.canvas.fit()
        doc = window.doc
        mask = np.zeros((200, 260), np.uint8)
        yy, xx = np.mgrid[0:200, 0:260]
        mask[((yy - 100) / 95.0) ** 2 + ((xx - 130) / 125.0) ** 2 < 1] = 255
        doc.replace_pixels(doc.mask_layer.id, Rect(240, 700, 260, 200), mask, "Mask")
        panel = workspace.generate_panel
        panel.prompt_edit.setPlainText("a wooden alpine cabin with a red roof, morning light")
        panel.negative_edit.setPlainText("blurry, people")
        panel.steps_spin.setValue(30)
        panel.batch_spin.setValue(3)
        panel.refresh_document()
        jobs = workspace.jobs
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
        workspace.staging.show(4)
        for _ in range(5):
            app.processEvents()
        window.grab().save(str(OUT / "staging_strip.png"))
        workspace.shutdown()
        window.close()
    print(f"saved {OUT / 'generation_in_progress.png'} and {OUT / 'staging_strip.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
