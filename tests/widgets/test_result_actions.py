"""Result-layer actions on recipes older Impasto versions stored: "Copy parameters" and
"Generate again" read them through the one Recipe (CFG scale and Size included)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtGui import QGuiApplication

from app.document import Document
from app.files import export_flat_with_recipe
from app.generation.jobs import WORKER_THREAD_NAME, JobController
from app.layers import LayerKind
from app.raster import Raster
from app.staging import Staging
from inference.api import Sampler
from tests.app.fake_engine import FakeEngine
from widgets.generate_panel import GeneratePanel
from widgets.result_actions import copy_parameters, generate_again

# what app/jobs.py stored on a result layer before the Recipe: the app's "guidance", the engine's
# own keys renamed engine_* (the export of this lost CFG scale and Size)
LEGACY_INPAINT = {
    "workflow": "Inpaint",
    "mode": "inpaint",
    "prompt": "a lighthouse",
    "negative_prompt": "fog",
    "model": "fake",
    "model_path": "/models/fake.safetensors",
    "model_hash": "abc1234567",
    "sampler": "DDIM",
    "steps": 4,
    "guidance": 6.5,
    "strength": 0.8,
    "seed": 4242,
    "crop_box": [8, 8, 32, 32],
    "padding": 8,
    "mask_blur": 2,
    "engine_cfg": 6.5,
    "engine_size": [64, 64],
    "batch_index": 0,
}


@pytest.fixture
def engine():
    fake = FakeEngine()
    yield fake
    fake.release.set()


@pytest.fixture
def doc():
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    return Document.from_rgba(pixels)


@pytest.fixture
def panel(qtbot, engine, doc):
    jobs = JobController(lambda: engine, staging=Staging())
    widget = GeneratePanel(lambda: doc, jobs)
    qtbot.addWidget(widget)
    widget.add_model("/models/fake.safetensors", "fake", "abc1234567", native_size=64)
    yield widget
    engine.release.set()
    assert jobs.shutdown(10)
    assert not any(t.name == WORKER_THREAD_NAME for t in threading.enumerate())


def result_layer(doc: Document, recipe: dict):
    pixels = np.zeros((32, 32, 4), np.uint8)
    return doc.add_layer(LayerKind.RESULT, raster=Raster(4, pixels, 8, 8), recipe=recipe)


def test_copy_parameters_of_an_old_recipe_has_cfg_and_size_and_equals_the_export(
    qtbot, doc, tmp_path
):
    from PIL import Image

    layer = result_layer(doc, dict(LEGACY_INPAINT))
    text = copy_parameters(layer)
    assert QGuiApplication.clipboard().text() == text
    assert "CFG scale: 6.5" in text and "Size: 64x64" in text and "Seed: 4242" in text
    export_flat_with_recipe(doc, tmp_path / "out.png", layer.id)
    with Image.open(tmp_path / "out.png") as image:
        assert image.text["parameters"] == text


def test_generate_again_from_an_engine_shaped_recipe_keeps_its_guidance(panel, doc, engine, qtbot):
    layer = result_layer(
        doc, {"prompt": "a boat", "cfg": 5.5, "size": (64, 64), "sampler": "DDIM", "seed": 9}
    )
    panel.guidance_spin.setValue(7.0)
    with qtbot.waitSignal(panel.jobs.finished, timeout=5000):
        generate_again(layer, panel)
    again = engine.requests[-1]
    assert (again.prompt, again.guidance, again.sampler, again.seed) == (
        "a boat",
        5.5,
        Sampler.DDIM,
        9,
    )


def test_exports_write_only_the_settings_the_mode_used(panel, doc, qtbot):
    from app.generation.request import Workflow
    from app.geometry import Rect

    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData(Workflow.TXT2IMG.value))
    with qtbot.waitSignal(panel.jobs.finished, timeout=5000):
        panel.generate()
    txt2img = copy_parameters(doc.layers_of(LayerKind.RESULT)[-1])
    assert "CFG scale: 7" in txt2img and "Mode: txt2img" in txt2img
    assert "Denoising strength" not in txt2img and "Mask blur" not in txt2img
    doc.mask_layer.raster.write(Rect(8, 8, 16, 16), np.full((16, 16), 255, np.uint8))
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData(Workflow.INPAINT.value))
    with qtbot.waitSignal(panel.jobs.finished, timeout=5000):
        panel.generate()
    inpaint = copy_parameters(doc.layers_of(LayerKind.RESULT)[-1])
    assert "Denoising strength: 0.75" in inpaint and "Mask blur: 4" in inpaint
