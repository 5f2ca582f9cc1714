"""End to end, offscreen: a LoRA picked from the model library in the generate panel goes through
the job controller and the REAL engine on a tiny model; the result layer's recipe lists it and its
pixels differ from the same seed without it (and match again when it is switched back on)."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from app.document import Document
from app.generation.jobs import WORKER_THREAD_NAME, JobController
from app.generation.request import Workflow
from app.layers import Layer, LayerKind
from app.staging import Staging
from inference.parameters import format_parameters

STEPS = 3


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from tests.tiny_loras import save_kohya_lora, tiny_lora_factors
    from tests.tiny_models import save_tiny_model

    root = tmp_path_factory.mktemp("e2e-lora") / "models"
    save_tiny_model(root / "tiny-sd")
    save_kohya_lora(root / "Lora" / "tinyink.safetensors", tiny_lora_factors(seed=1))
    return root


@pytest.fixture
def controller(qtbot):
    jobs = JobController(staging=Staging())  # the default factory: the real inference Engine
    yield jobs
    assert jobs.shutdown(60), "the inference thread did not stop"
    assert not any(t.name == WORKER_THREAD_NAME for t in threading.enumerate())


@pytest.fixture
def scanner(qtbot, tmp_path, models):
    from app.library import ModelLibrary

    scanner = ModelLibrary(folders=[models], include_hf_cache=False, cache_path=tmp_path / "c")
    with qtbot.waitSignal(scanner.scan_finished, timeout=30_000):
        scanner.rescan()
    yield scanner
    assert scanner.shutdown()


def generate(qtbot, panel) -> Layer:
    with qtbot.waitSignal(panel.jobs.finished, timeout=120_000):
        assert panel.generate() is not None
    return panel.document().layers_of(LayerKind.RESULT)[-1]


def test_a_lora_picked_in_the_panel_changes_the_real_generation(qtbot, controller, scanner, models):
    from inference.loras import lora_hash
    from widgets.generate_panel import GeneratePanel
    from widgets.model_picker import ModelPicker

    doc = Document.blank(64, 64)
    picker = ModelPicker(scanner, show_controlnet=False)
    panel = GeneratePanel(lambda: doc, controller, picker)
    qtbot.addWidget(panel)
    assert picker.set_checkpoint_path(str(models / "tiny-sd"))
    panel.prompt_edit.setPlainText("a cat")
    panel.steps_spin.setValue(STEPS)
    panel.random_seed_check.setChecked(False)
    panel.seed_spin.setValue(5)
    assert panel.workflow is Workflow.TXT2IMG
    # keep txt2img once results cover the canvas (Automatic would switch to img2img of them)
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData(Workflow.TXT2IMG.value))

    loras = panel.lora_picker
    loras.add_menu.aboutToShow.emit()  # the user opens "Add LoRA" and picks the tiny LoRA
    (action,) = [a for a in loras.add_menu.actions() if a.text().startswith("tinyink")]
    action.trigger()
    (row,) = loras.rows
    row.weight_spin.setValue(1.0)
    lora_file = os.path.abspath(models / "Lora" / "tinyink.safetensors")

    with_lora = generate(qtbot, panel)
    assert with_lora.recipe["loras"] == [
        {"name": "tinyink", "weight": 1.0, "hash": lora_hash(lora_file), "path": lora_file}
    ]
    assert format_parameters(with_lora.recipe).split("\n")[0].endswith(" <lora:tinyink:1>")
    assert with_lora.recipe["seed"] == 5

    row.enable_check.setChecked(False)
    without = generate(qtbot, panel)
    assert "loras" not in without.recipe and without.recipe["seed"] == 5
    assert without.recipe["workflow"] == with_lora.recipe["workflow"] == "Text to image"
    difference = np.abs(
        with_lora.raster.data[..., :3].astype(int) - without.raster.data[..., :3].astype(int)
    )
    assert difference.mean() > 1.0  # the LoRA changed the picture, not just a few pixels

    row.enable_check.setChecked(True)  # back on: the same seed gives the LoRA picture again
    again = generate(qtbot, panel)
    np.testing.assert_array_equal(again.raster.data, with_lora.raster.data)
