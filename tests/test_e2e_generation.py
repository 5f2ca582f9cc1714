"""End to end, offscreen: document -> generate panel / job controller -> the REAL engine on a tiny
random-weight model -> previews in the preview layer -> a result layer with its recipe -> undo.

One test per workflow (inpaint, sketch-to-image, txt2img) plus the built-in classic engine.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.compose import composite
from app.document import Document
from app.generation.jobs import WORKER_THREAD_NAME, JobController
from app.generation.request import GenerationParams, Workflow, decode_mask
from app.geometry import Rect
from app.layers import LayerKind
from app.staging import Staging
from tests.documents import random_photo

STEPS = 3


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tests.tiny_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("e2e") / "tiny-sd")


@pytest.fixture
def controller(qtbot):
    jobs = JobController(staging=Staging())  # the default factory: the real inference Engine
    yield jobs
    assert jobs.shutdown(60), "the inference thread did not stop"
    assert not any(t.name == WORKER_THREAD_NAME for t in threading.enumerate())


def photo(width: int, height: int) -> Document:
    return random_photo(width, height, seed=11)


def params(model, **changes) -> GenerationParams:
    base = GenerationParams(
        prompt="a cat",
        model_path=str(model),
        model_name="tiny-sd",
        native_size=64,
        steps=STEPS,
        seed=5,
        padding=8,
        mask_blur=2,
        strength=0.9,
    )
    return GenerationParams(**{**base.__dict__, **changes})


class PreviewWatch:
    """Records every preview-layer state the document shows while a job runs."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.seen: list[tuple[int | None, Rect]] = []
        doc.preview_changed.connect(self._changed)

    def _changed(self, _rect) -> None:
        preview = self.doc.preview
        if preview is not None:
            self.seen.append((self.doc.preview_job, preview.raster.rect))


def run(qtbot, controller: JobController, doc: Document, p: GenerationParams):
    steps = []
    controller.preview.connect(lambda job_id, step, total: steps.append(step))
    with qtbot.waitSignal(controller.finished, timeout=120_000) as blocker:
        job_id = controller.generate(doc, p)
    finished_id, layers = blocker.args
    assert finished_id == job_id
    return job_id, layers, steps


def test_inpaint_through_the_panel_and_the_real_engine(qtbot, controller, tiny_model):
    from widgets.generate_panel import GeneratePanel

    doc = photo(128, 96)
    doc.mask_layer.raster.write(Rect(50, 30, 24, 24), np.full((24, 24), 255, np.uint8))
    before = composite(doc.layers, doc.rect)
    panel = GeneratePanel(lambda: doc, controller)
    qtbot.addWidget(panel)
    panel.add_model(str(tiny_model), "tiny-sd", native_size=64)
    panel.set_params(params(tiny_model))
    panel.random_seed_check.setChecked(False)
    assert panel.workflow is Workflow.INPAINT
    watch = PreviewWatch(doc)
    with qtbot.waitSignal(controller.finished, timeout=120_000):
        job_id = panel.generate()
    assert job_id is not None
    # previews reached the preview layer, at the engine's crop box, for this job
    assert watch.seen and all(seen_job == job_id for seen_job, _ in watch.seen)
    assert doc.preview is None
    (layer,) = doc.layers_of(LayerKind.RESULT)
    preview_rect = watch.seen[-1][1]
    assert layer.raster.rect == preview_rect  # previews and the result share the crop box
    assert layer.raster.rect.contains(Rect(50, 30, 24, 24))
    assert layer.raster.rect.w * layer.raster.rect.h < doc.width * doc.height  # only the box
    recipe = layer.recipe
    assert recipe["crop_box"] == [
        layer.raster.rect.x,
        layer.raster.rect.y,
        layer.raster.rect.w,
        layer.raster.rect.h,
    ]
    assert (recipe["prompt"], recipe["seed"], recipe["steps"]) == ("a cat", 5, STEPS)
    assert recipe["model"] == "tiny-sd" and recipe["sampler"] == "Euler a"
    assert recipe["strength"] == pytest.approx(0.9) and recipe["workflow"] == "Inpaint"
    assert decode_mask(recipe["mask"]).sum() == 255 * 24 * 24
    after = composite(doc.layers, doc.rect)
    near = np.zeros((doc.height, doc.width), bool)
    reach = 2 * 2 + 1  # mask blur 2: the feathered edge reaches 2 * blur
    near[30 - reach : 54 + reach, 50 - reach : 74 + reach] = True
    assert np.array_equal(after[~near], before[~near])  # outside the mask: byte-identical
    assert not np.array_equal(after[30:54, 50:74], before[30:54, 50:74])  # inside: generated
    doc.history.undo()
    assert not doc.layers_of(LayerKind.RESULT)
    assert np.array_equal(composite(doc.layers, doc.rect), before)


def test_sketch_to_image_with_the_real_engine(qtbot, controller, tiny_model):
    doc = photo(64, 64)
    sketch = doc.add_layer(LayerKind.SKETCH)
    strokes = np.zeros((64, 64, 4), np.uint8)
    strokes[30:34, 8:56] = (20, 20, 220, 255)
    sketch.raster.write(doc.rect, strokes)
    watch = PreviewWatch(doc)
    _job_id, _layers, steps = run(qtbot, controller, doc, params(tiny_model))
    assert watch.seen and steps and steps[-1] >= 1
    (layer,) = doc.layers_of(LayerKind.RESULT)
    assert layer.recipe["workflow"] == "Sketch to image" and layer.recipe["mode"] == "img2img"
    assert layer.raster.rect == doc.rect and (layer.raster.data[..., 3] == 255).all()
    depth = doc.history.count()
    doc.history.undo()
    assert not doc.layers_of(LayerKind.RESULT) and doc.history.index() == depth - 1


def test_txt2img_on_an_empty_canvas_with_the_real_engine(qtbot, controller, tiny_model):
    doc = Document.blank(128, 128)
    watch = PreviewWatch(doc)
    _job_id, _layers, _steps = run(qtbot, controller, doc, params(tiny_model, batch_size=2))
    assert watch.seen and all(rect == doc.rect for _, rect in watch.seen)
    # two variants: staged, not yet in the stack
    staging = controller.staging
    assert len(staging) == 2 and not doc.layers_of(LayerKind.RESULT)
    assert [layer.recipe["seed"] for layer in staging.layers] == [5, 6]
    assert not np.array_equal(staging.layers[0].raster.data, staging.layers[1].raster.data)
    staging.accept([1])
    (layer,) = doc.layers_of(LayerKind.RESULT)
    assert layer.raster.rect == doc.rect and layer.recipe["workflow"] == "Text to image"
    assert layer.name == "a cat · seed 6"
    doc.history.undo()
    assert not doc.layers_of(LayerKind.RESULT)


def test_cancel_a_real_generation(qtbot, controller, tiny_model):
    doc = Document.blank(64, 64)
    controller.preview.connect(lambda job_id, step, total: controller.cancel(job_id))
    with qtbot.waitSignal(controller.cancelled, timeout=120_000):
        controller.generate(doc, params(tiny_model, steps=20))
    assert doc.preview is None and not doc.layers_of(LayerKind.RESULT)


def test_classic_engine_inpaint_without_a_model(qtbot, controller):
    doc = photo(96, 96)
    doc.mask_layer.raster.write(Rect(40, 40, 10, 10), np.full((10, 10), 255, np.uint8))
    before = composite(doc.layers, doc.rect)
    _job_id, _layers, _steps = run(
        qtbot, controller, doc, GenerationParams(prompt="", padding=4, mask_blur=2)
    )
    (layer,) = doc.layers_of(LayerKind.RESULT)
    assert layer.recipe["model"] == "Built-in classic" and layer.name == "Result · seed 0"
    after = composite(doc.layers, doc.rect)
    near = np.zeros((96, 96), bool)
    near[35:55, 35:55] = True
    assert np.array_equal(after[~near], before[~near])
    assert not np.array_equal(after[40:50, 40:50], before[40:50, 40:50])
