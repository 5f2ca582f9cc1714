"""End to end, offscreen: a pose figure placed on a pose layer drives a tiny ControlNet through the
real job controller and engine; the result layer's recipe carries the control, and the pose
changes the pixels (same seed, figure moved -> a different image)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from app import control_layers
from app.document import Document
from app.generation.jobs import JobController
from app.generation.request import GenerationParams, Workflow, decode_image
from app.geometry import Rect
from app.layers import LayerKind
from app.staging import Staging
from inference.openpose_render import render_pose


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from tests.tiny_models import save_tiny_controlnet, save_tiny_model

    folder = tmp_path_factory.mktemp("pose-e2e")
    return save_tiny_model(folder / "tiny-sd"), save_tiny_controlnet(folder / "tiny-openpose")


@pytest.fixture
def controller(qtbot):
    jobs = JobController(staging=Staging())
    yield jobs
    assert jobs.shutdown(60)


def generate(qtbot, controller, doc, params):
    with qtbot.waitSignal(controller.finished, timeout=120_000) as blocker:
        controller.generate(doc, params)
    return blocker.args[1]


def test_pose_to_image_with_a_tiny_controlnet(qtbot, controller, models):
    model, controlnet = models
    doc = Document.blank(64, 64, fill=(0, 0, 0, 0))
    pose_layer = control_layers.add_figure_layer(doc, Rect(8, 4, 24, 56))
    doc.set_layer_property(
        pose_layer.id, "control", replace(pose_layer.control, model_path=str(controlnet))
    )
    params = GenerationParams(
        prompt="a dancer",
        model_path=str(model),
        model_name="tiny-sd",
        native_size=64,
        steps=2,
        seed=3,
        workflow=Workflow.TXT2IMG,
    )
    generate(qtbot, controller, doc, params)
    (result,) = doc.layers_of(LayerKind.RESULT)
    (control,) = result.recipe["controls"]
    assert (control["type"], control["model"]) == ("openpose", "tiny-openpose")
    recorded = decode_image(control["image"])  # the control image is part of the recipe
    assert recorded.shape == (64, 64, 3)
    np.testing.assert_array_equal(recorded, render_pose(pose_layer.pose, 64, 64))
    image_a = result.raster.read(doc.rect)

    moved = pose_layer.pose.with_person(0, pose_layer.pose.people[0].translated(24, 0))
    doc.set_layer_property(pose_layer.id, "pose", moved)
    generate(qtbot, controller, doc, params)
    image_b = doc.layers_of(LayerKind.RESULT)[-1].raster.read(doc.rect)
    assert image_a.shape == image_b.shape == (64, 64, 4)
    assert not np.array_equal(image_a, image_b)  # the figure steers the picture
