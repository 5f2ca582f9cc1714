"""Image › Upscale through the job controller: the canvas grows with one result layer in one undo
step, previews land scaled onto today's canvas, cancel mid-tile and bad options change nothing."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from app.compose import flatten_rgb
from app.document import Document
from app.generation.jobs import WORKER_THREAD_NAME, JobController
from app.generation.request import GenerationParams, RequestBuildError
from app.generation.upscale import UpscaleOptions, build_upscale_job, upscaler_files
from app.geometry import Rect
from app.layers import LayerKind
from app.library import ModelEntry, ModelKind
from inference.api import Box
from inference.engine import Engine
from inference.recipe import Recipe
from tests.documents import random_photo

LIMIT = 100_000_000


def shutdown(jobs: JobController) -> None:
    assert jobs.shutdown(10), "the inference thread did not stop"
    assert not any(t.name == WORKER_THREAD_NAME for t in threading.enumerate())


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from tests.tiny_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("upscale") / "tiny-sd")


@pytest.fixture
def real_jobs(qtbot):
    jobs = JobController(lambda: Engine())
    yield jobs
    shutdown(jobs)


def state(doc: Document) -> tuple:
    return (doc.width, doc.height, [layer.id for layer in doc.layers], doc.history.index())


def test_lanczos_upscale_grows_the_canvas_with_one_result_layer_in_one_undo_step(real_jobs, qtbot):
    doc = random_photo(40, 30, seed=3)
    doc.add_layer(LayerKind.SKETCH)  # layers keep their place
    picture = flatten_rgb(doc.layers, doc.rect)
    before = state(doc)
    sizes: list[tuple[int, int]] = []
    doc.size_changed.connect(lambda: sizes.append((doc.width, doc.height)))
    plan = build_upscale_job(doc, GenerationParams(seed=11), UpscaleOptions(scale=2), LIMIT)
    with qtbot.waitSignal(real_jobs.finished, timeout=20000) as done:
        real_jobs.submit(doc, plan)
    (layer,) = done.args[1]
    assert (doc.width, doc.height) == (80, 60) and sizes == [(80, 60)]
    pictures = [other for other in doc.layers if other.kind is not LayerKind.MASK]
    assert pictures[-1] is layer and layer.kind is LayerKind.RESULT  # on top, under the mask
    assert doc.active_layer is layer and layer.name == "Upscale ×2"
    assert layer.raster.rect == Rect(0, 0, 80, 60)
    expected = cv2.resize(picture, (80, 60), interpolation=cv2.INTER_LANCZOS4)
    pixels = layer.raster.read(Rect(0, 0, 80, 60))
    np.testing.assert_array_equal(pixels[..., :3], expected)
    assert (pixels[..., 3] == 255).all()
    recipe = Recipe.from_json(layer.recipe)
    assert dict(recipe.extra) == {"Upscale": "2", "Upscaler": "Lanczos"}
    assert recipe.workflow == "Upscale" and recipe.seed == 11
    assert doc.history.index() == before[3] + 1  # one step
    doc.history.undo()
    assert state(doc) == before and sizes[-1] == (40, 30)
    doc.history.redo()
    assert (doc.width, doc.height) == (80, 60) and layer in doc.layers


def test_a_scale_beyond_the_pixel_limit_or_refine_without_a_model_is_one_sentence():
    doc = random_photo(4000, 3000, seed=1)
    with pytest.raises(RequestBuildError) as error:
        build_upscale_job(doc, GenerationParams(), UpscaleOptions(scale=4), LIMIT)
    assert str(error.value) == (
        "Upscaling 4000x3000 by 4 makes 16000x12000 (192 MP), above the 100 MP pixel limit "
        "(Settings); choose a smaller factor."
    )
    small = random_photo(40, 30, seed=1)
    with pytest.raises(RequestBuildError, match="needs a Stable Diffusion model"):
        build_upscale_job(small, GenerationParams(), UpscaleOptions(refine=True), LIMIT)
    with pytest.raises(RequestBuildError, match="half the tile"):
        params = GenerationParams(model_path="/m")
        build_upscale_job(small, params, UpscaleOptions(refine=True, tile=64, overlap=40), LIMIT)


class Gate:
    """Wraps an engine; holds the job at the first preview of the second tile."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.at_gate = threading.Event()
        self.release = threading.Event()
        self.previews_after_gate = 0

    def run(self, request, on_preview=None, cancel=None):
        def preview(step, total, image, box=None, region=None):
            if self.at_gate.is_set():
                self.previews_after_gate += 1
            if on_preview is not None:
                on_preview(step, total, image, box, region)
            if box is not None and box.x > 0 and not self.at_gate.is_set():
                self.at_gate.set()
                self.release.wait(10)

        return self.engine.run(request, preview, cancel)


def test_cancel_mid_tile_leaves_the_document_unchanged(tiny_model_dir, qtbot):
    gate = Gate(Engine())
    jobs = JobController(lambda: gate)
    try:
        doc = random_photo(96, 96, seed=2)
        before = state(doc)
        params = GenerationParams(
            model_path=str(tiny_model_dir), prompt="a cat", steps=8, seed=4, native_size=64
        )
        options = UpscaleOptions(scale=2, refine=True, strength=0.5, tile=128, overlap=32)
        job_id = jobs.submit(doc, build_upscale_job(doc, params, options, LIMIT))
        assert gate.at_gate.wait(60)
        # the second tile (x 64..192 of the 192 px result) previews on today's 96 px canvas
        qtbot.waitUntil(
            lambda: doc.preview is not None and doc.preview.raster.rect == Rect(32, 0, 64, 64),
            timeout=5000,
        )
        with qtbot.waitSignal(jobs.cancelled, timeout=20000):
            jobs.cancel(job_id)
            gate.release.set()
        assert gate.previews_after_gate == 0  # stopped within the step
        assert state(doc) == before and doc.preview is None
        assert not doc.layers_of(LayerKind.RESULT)
    finally:
        gate.release.set()
        shutdown(jobs)


def test_a_refined_upscale_records_tile_settings_and_the_model(tiny_model_dir, real_jobs, qtbot):
    doc = random_photo(48, 48, seed=5)
    params = GenerationParams(
        model_path=str(tiny_model_dir),
        model_name="tiny",
        prompt="a cat",
        steps=4,
        seed=9,
        native_size=64,
    )
    options = UpscaleOptions(scale=2, refine=True, strength=0.25, tile=64, overlap=16)
    with qtbot.waitSignal(real_jobs.finished, timeout=60000) as done:
        real_jobs.submit(doc, build_upscale_job(doc, params, options, LIMIT))
    recipe = Recipe.from_json(done.args[1][0].recipe)
    assert (doc.width, doc.height) == (96, 96)
    assert recipe.prompt == "a cat" and recipe.strength == pytest.approx(0.25)
    assert recipe.model == "tiny" and recipe.seed == 9 and recipe.size == (64, 64)
    assert dict(recipe.extra)["Tile size"] == "64" and dict(recipe.extra)["Tile overlap"] == "16"
    assert done.args[1][0].name == "Upscale ×2 refined"


def test_upscaler_files_are_found_by_folder_and_name():
    entries = [
        ModelEntry("/m/ESRGAN/UltraSharp.pth", ModelKind.UNKNOWN),
        ModelEntry("/m/upscale_models/nmkd.safetensors", ModelKind.UNKNOWN),
        ModelEntry("/m/other/RealESRGAN_x4plus.safetensors", ModelKind.UNKNOWN),
        ModelEntry("/m/other/notes.safetensors", ModelKind.UNKNOWN),
        ModelEntry("/m/ESRGAN/sd15.safetensors", ModelKind.CHECKPOINT),
        ModelEntry("/m/ESRGAN/readme.txt", ModelKind.UNKNOWN),
    ]
    names = [path.name for path in upscaler_files(entries)]
    assert names == ["nmkd.safetensors", "RealESRGAN_x4plus.safetensors", "UltraSharp.pth"]


def test_preview_boxes_map_onto_the_canvas_as_it_is():
    from app.generation.upscale import preview_rect

    doc = random_photo(100, 50, seed=1)
    plan = build_upscale_job(doc, GenerationParams(), UpscaleOptions(scale=4), LIMIT)
    assert preview_rect(plan, Box(0, 0, 400, 200)) == Rect(0, 0, 100, 50)
    assert preview_rect(plan, Box(130, 20, 128, 128)) == Rect(32, 5, 33, 32)


def test_poses_take_the_grown_canvas_so_they_keep_their_place(real_jobs, qtbot):
    from app.pose_edit import add_pose_layer

    doc = random_photo(40, 30, seed=4)
    pose_layer = add_pose_layer(doc)
    points_before = [person.points for person in pose_layer.pose.people]
    plan = build_upscale_job(doc, GenerationParams(seed=1), UpscaleOptions(scale=2), LIMIT)
    with qtbot.waitSignal(real_jobs.finished, timeout=20000):
        real_jobs.submit(doc, plan)
    # the pose says which canvas its points are on: a stale 40x30 would stretch it ×2 when drawn
    assert (pose_layer.pose.width, pose_layer.pose.height) == (80, 60)
    assert [person.points for person in pose_layer.pose.people] == points_before
    doc.history.undo()
    assert (pose_layer.pose.width, pose_layer.pose.height) == (40, 30)
