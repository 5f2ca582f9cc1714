"""End to end: a generation frame past the canvas -> the REAL engine on a tiny random-weight
model -> previews past the canvas -> the canvas grows with the result in one step -> undo."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.compose import composite
from app.frame import frame_of
from app.generation.jobs import WORKER_THREAD_NAME, JobController
from app.generation.request import GenerationParams, Workflow
from app.geometry import Rect
from app.layers import LayerKind
from tests.documents import random_photo


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tests.tiny_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("e2e-outpaint") / "tiny-sd")


@pytest.fixture
def controller(qtbot):
    jobs = JobController()  # the default factory: the real inference Engine
    yield jobs
    assert jobs.shutdown(60), "the inference thread did not stop"
    assert not any(t.name == WORKER_THREAD_NAME for t in threading.enumerate())


def test_outpaint_with_a_diffusion_model(qtbot, controller, tiny_model):
    doc = random_photo(96, 64, seed=12)
    before = composite(doc.layers, doc.rect)
    frame = frame_of(doc)
    frame.set(Rect(-64, 0, 128, 64))
    params = GenerationParams(
        prompt="more meadow", model_path=str(tiny_model), model_name="tiny-sd", native_size=64,
        steps=3, seed=5, mask_blur=2, strength=0.9, frame=frame.rect,
    )  # fmt: skip
    previews: list[Rect] = []
    doc.preview_changed.connect(
        lambda _r: doc.preview is not None and previews.append(doc.preview.raster.rect)
    )
    with qtbot.waitSignal(controller.finished, timeout=120_000) as finished:
        controller.generate(doc, params)
    assert finished.args[1]
    assert previews and previews[-1] == Rect(-64, 0, 128, 64)  # shown past the canvas
    assert (doc.width, doc.height) == (160, 64) and frame.rect == Rect(0, 0, 128, 64)
    (result,) = doc.layers_of(LayerKind.RESULT)
    assert result.recipe["workflow"] == Workflow.INPAINT.value
    assert result.raster.rect == Rect(0, 0, 128, 64)
    after = composite(doc.layers, doc.rect)
    assert (after[:, :64, 3] == 255).all()
    seam = 16 + 2 * params.mask_blur  # mask seam + feather
    np.testing.assert_array_equal(after[:, 64 + seam :], before[:, seam:])
    assert (after[:, :64, :3] != 0).any()
    doc.history.undo()
    assert (doc.width, doc.height) == (96, 64)
    np.testing.assert_array_equal(composite(doc.layers, doc.rect), before)
