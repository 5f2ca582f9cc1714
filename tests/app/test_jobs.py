"""The job controller against a scripted fake engine: previews, results, cancel, errors, queue."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.compose import composite
from app.document import Document
from app.generation.jobs import WORKER_THREAD_NAME, JobController
from app.generation.request import GenerationParams, Workflow, build_request, decode_mask
from app.generation.results import land_layers, result_name
from app.geometry import Rect
from app.layers import LayerKind
from app.staging import Staging
from inference.api import ModelNotFoundError, OutOfMemoryError
from tests.app.fake_engine import FakeEngine, seed_color
from tests.documents import paint_mask, random_photo

PARAMS = GenerationParams(
    model_path="/models/fake.safetensors",
    model_name="fake",
    native_size=64,
    prompt="a cat",
    seed=7,
    steps=4,
    padding=8,
)


def photo(width: int = 160, height: int = 128) -> Document:
    return random_photo(width, height, seed=1)


@pytest.fixture
def engine():
    fake = FakeEngine()
    yield fake
    fake.release.set()


@pytest.fixture
def controller(engine, qtbot):
    jobs = JobController(lambda: engine)
    yield jobs
    engine.release.set()
    assert jobs.shutdown(10), "the inference thread did not stop"
    assert not any(t.name == WORKER_THREAD_NAME for t in threading.enumerate())


def params(**changes) -> GenerationParams:
    return GenerationParams(**{**PARAMS.__dict__, **changes})


def test_inpaint_result_lands_as_one_undoable_layer_with_recipe(controller, engine, qtbot):
    doc = photo()
    paint_mask(doc, Rect(60, 40, 20, 16))
    before = composite(doc.layers, doc.rect)
    previews = []
    doc.preview_changed.connect(lambda rect: previews.append(doc.preview is not None))
    with qtbot.waitSignal(controller.finished, timeout=5000) as finished:
        job_id = controller.generate(doc, params())
    assert finished.args[0] == job_id
    assert previews and any(previews) and doc.preview is None  # previews came, then went
    results = doc.layers_of(LayerKind.RESULT)
    assert len(results) == 1
    layer = results[0]
    assert layer.name == "a cat · seed 7"
    # the layer holds only the crop box, not the canvas
    assert layer.raster.rect == Rect(52, 32, 36, 32)
    recipe = layer.recipe
    assert recipe["prompt"] == "a cat" and recipe["seed"] == 7 and recipe["steps"] == 4
    assert recipe["model"] == "fake" and recipe["model_hash"] == "fakehash00"
    assert recipe["crop_box"] == [52, 32, 36, 32] and recipe["workflow"] == "Inpaint"
    mask = decode_mask(recipe["mask"])
    assert mask.shape == (32, 36) and mask.sum() == 255 * 20 * 16
    after = composite(doc.layers, doc.rect)
    inside = np.zeros((doc.height, doc.width), bool)
    inside[40:56, 60:80] = True
    assert np.array_equal(after[~inside], before[~inside])  # outside the mask: byte-identical
    assert (after[inside][:, :3] == seed_color(7)).all()
    assert layer.raster.data[0, 0, 3] == 0  # far from the mask the layer is clear
    doc.history.undo()
    assert not doc.layers_of(LayerKind.RESULT)
    assert np.array_equal(composite(doc.layers, doc.rect), before)
    assert engine.thread_names == ["impasto-inference"]  # the engine never ran on the UI thread


def test_request_is_a_snapshot_later_edits_do_not_reach_it(controller, engine, qtbot):
    doc = photo()
    paint_mask(doc, Rect(10, 10, 16, 16))
    engine.gate_step = 2
    with qtbot.waitSignal(controller.finished, timeout=5000):
        controller.generate(doc, params())
        assert engine.at_gate.wait(5)
        doc.layers[0].raster.data[:] = 0  # the user keeps painting
        paint_mask(doc, Rect(100, 100, 20, 20))
        engine.release.set()
    request = engine.requests[0]
    assert request.image.any() and request.mask.sum() == 255 * 16 * 16


def test_cancel_mid_run_stops_within_a_step_and_changes_nothing(controller, engine, qtbot):
    doc = photo()
    paint_mask(doc, Rect(10, 10, 16, 16))
    engine.gate_step = 2
    depth = doc.history.count()
    job_id = controller.generate(doc, params(steps=10))
    qtbot.waitUntil(lambda: doc.preview is not None, timeout=5000)  # step 1 preview shown
    assert engine.at_gate.wait(5)
    with qtbot.waitSignal(controller.cancelled, timeout=5000) as cancelled:
        controller.cancel(job_id)
        assert doc.preview is None  # the preview goes at once
        engine.release.set()
    assert cancelled.args == [job_id]
    assert engine.steps_run <= 2  # the gated step finished, nothing after it
    assert doc.history.count() == depth and not doc.layers_of(LayerKind.RESULT)
    assert doc.preview is None and not controller.busy


def test_queue_runs_in_order_and_a_queued_job_can_be_cancelled(controller, engine, qtbot):
    doc = photo()
    paint_mask(doc, Rect(10, 10, 16, 16))
    engine.gate_step = 1
    first = controller.generate(doc, params(seed=1))
    second = controller.generate(doc, params(seed=2))
    third = controller.generate(doc, params(seed=3))
    assert [job.id for job in controller.jobs] == [first, second, third]
    with qtbot.waitSignal(controller.cancelled, timeout=2000) as cancelled:
        controller.cancel(second)
    assert cancelled.args == [second]
    assert [job.id for job in controller.jobs] == [first, third]
    engine.gate_step = None
    engine.release.set()
    qtbot.waitUntil(lambda: not controller.busy, timeout=5000)
    seeds = [layer.recipe["seed"] for layer in doc.layers_of(LayerKind.RESULT)]
    assert seeds == [1, 3] and [r.seed for r in engine.requests] == [1, 3]


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (OutOfMemoryError("CUDA out of memory"), "Lower the resolution"),
        (ModelNotFoundError("no such model /x"), "Choose another model"),
        (RuntimeError("boom"), "unchanged"),
    ],
)
def test_errors_become_a_message_and_the_document_is_untouched(
    controller, engine, qtbot, error, words
):
    doc = photo()
    paint_mask(doc, Rect(10, 10, 16, 16))
    engine.fail_with, engine.fail_at_step = error, 2
    notices = []
    doc.notice.connect(notices.append)
    depth = doc.history.count()
    with qtbot.waitSignal(controller.failed, timeout=5000) as failed:
        controller.generate(doc, params())
    assert words in failed.args[1] and notices == [failed.args[1]]
    assert doc.history.count() == depth and doc.preview is None
    assert not doc.layers_of(LayerKind.RESULT)
    # the worker survives and the next job runs
    engine.fail_with = None
    with qtbot.waitSignal(controller.finished, timeout=5000):
        controller.generate(doc, params())


def test_progress_reports_step_elapsed_and_eta(controller, engine, qtbot):
    doc = photo()
    paint_mask(doc, Rect(10, 10, 16, 16))
    engine.step_delay = 0.02
    reports = []
    controller.progress.connect(lambda *args: reports.append(args))
    with qtbot.waitSignal(controller.finished, timeout=5000):
        controller.generate(doc, params(steps=5))
    steps = [r[1] for r in reports]
    assert steps[0] == 0 and steps[-1] == 5 and steps == sorted(steps)
    assert all(r[2] == 5 for r in reports)
    last = reports[-1]
    assert last[3] > 0 and last[4] == 0.0


def test_stale_previews_of_a_cancelled_job_are_dropped(controller, engine, qtbot):
    doc = photo()
    paint_mask(doc, Rect(10, 10, 16, 16))
    job_id = controller.generate(doc, params())
    controller.cancel(job_id)
    # even if the worker managed to post a frame, it must not be drawn
    controller._on_preview()
    qtbot.waitUntil(lambda: not controller.busy, timeout=5000)
    assert doc.preview is None


def test_preview_is_scaled_to_the_crop_box(controller, engine, qtbot):
    doc = photo()
    paint_mask(doc, Rect(60, 40, 20, 16))
    engine.gate_step = 2
    controller.generate(doc, params())
    qtbot.waitUntil(lambda: doc.preview is not None, timeout=5000)
    assert doc.preview.raster.rect.contains(Rect(52, 32, 36, 32))
    # inpaint previews show only where the result can change: opaque on the mask, clear far away
    preview = doc.preview.raster
    assert (preview.read(Rect(60, 40, 20, 16))[..., 3] == 255).all()
    assert preview.read(Rect(52, 32, 1, 1))[0, 0, 3] == 0
    assert doc.preview.kind is LayerKind.PREVIEW and doc.preview not in doc.layers
    engine.release.set()
    qtbot.waitUntil(lambda: not controller.busy, timeout=5000)


def test_txt2img_result_fills_the_target_box(controller, engine, qtbot):
    doc = Document.blank(128, 96)
    with qtbot.waitSignal(controller.finished, timeout=5000):
        controller.generate(doc, params())
    (layer,) = doc.layers_of(LayerKind.RESULT)
    assert layer.raster.rect == doc.rect and layer.recipe["workflow"] == Workflow.TXT2IMG.value
    assert (layer.raster.data[..., :3] == seed_color(7)).all()


def test_batch_goes_to_staging_then_accept_lands_in_one_step(engine, qtbot):
    staging = Staging()
    controller = JobController(lambda: engine, staging=staging)
    try:
        doc = photo()
        paint_mask(doc, Rect(60, 40, 20, 16))
        depth = doc.history.count()
        with qtbot.waitSignal(controller.finished, timeout=5000):
            controller.generate(doc, params(batch_size=3))
        assert len(staging) == 3 and not doc.layers_of(LayerKind.RESULT)
        assert doc.history.count() == depth
        assert doc.preview is not None and staging.current == 0
        staging.next()
        assert staging.current == 1
        shown = doc.preview.raster.read(Rect(60, 40, 20, 16))
        assert (shown[..., :3] == seed_color(8)).all()
        landed = staging.accept([0, 2])
        assert [layer.recipe["seed"] for layer in landed] == [7, 9]
        assert [layer.recipe["seed"] for layer in doc.layers_of(LayerKind.RESULT)] == [7, 9]
        assert doc.preview is None and not staging.active
        doc.history.undo()  # one step for both
        assert not doc.layers_of(LayerKind.RESULT)
    finally:
        assert controller.shutdown(10)


def test_land_layers_goes_below_the_mask():
    doc = photo(32, 32)
    plan = build_request(doc, params(workflow=Workflow.IMG2IMG))
    from app.generation.results import result_layers
    from inference.api import Result, Variant

    image = plan.request.image.copy()
    layers = result_layers(plan, Result((Variant(image, 5, plan.request.crop_box),), {}))
    land_layers(doc, layers)
    assert [layer.kind for layer in doc.layers] == [
        LayerKind.IMAGE,
        LayerKind.RESULT,
        LayerKind.MASK,
    ]
    assert result_name("", 3) == "Result · seed 3"
    assert result_name("x " * 40, 3).endswith("… · seed 3")


def test_a_malformed_result_is_refused_and_nothing_changes(qtbot):
    from inference.api import Box, Result, Variant

    class WrongSize:
        def run(self, request, on_preview=None, cancel=None):
            return Result((Variant(np.zeros((8, 8, 3), np.uint8), 1, Box(0, 0, 8, 8)),), {})

    controller = JobController(WrongSize)
    try:
        doc = photo()
        paint_mask(doc, Rect(10, 10, 16, 16))
        depth = doc.history.count()
        with qtbot.waitSignal(controller.failed, timeout=5000) as failed:
            controller.generate(doc, params())
        assert "could not be placed" in failed.args[1] and "Nothing changed" in failed.args[1]
        assert doc.history.count() == depth and not doc.layers_of(LayerKind.RESULT)
    finally:
        assert controller.shutdown(10)


def test_a_new_engine_factory_is_used_from_the_next_job(qtbot):
    first, second = FakeEngine(), FakeEngine()
    controller = JobController(lambda: first)
    try:
        doc = photo()
        paint_mask(doc, Rect(10, 10, 16, 16))
        first.gate_step = 1
        controller.generate(doc, params())
        assert first.at_gate.wait(5)
        controller.set_engine_factory(lambda: second)  # while a job runs on the old engine
        first.release.set()
        with qtbot.waitSignal(controller.finished, timeout=5000):
            controller.generate(doc, params(seed=2))
        qtbot.waitUntil(lambda: not controller.busy, timeout=5000)
        assert [r.seed for r in first.requests] == [7] and [r.seed for r in second.requests] == [2]
    finally:
        assert controller.shutdown(10)
    assert not any(t.name == WORKER_THREAD_NAME for t in threading.enumerate())


def test_a_second_batch_joins_the_waiting_variants(engine, qtbot):
    staging = Staging()
    controller = JobController(lambda: engine, staging=staging)
    try:
        doc = photo()
        paint_mask(doc, Rect(60, 40, 20, 16))
        controller.generate(doc, params(batch_size=2, seed=10))
        controller.generate(doc, params(batch_size=2, seed=20))
        qtbot.waitUntil(lambda: not controller.busy, timeout=5000)
        assert [layer.recipe["seed"] for layer in staging.layers] == [10, 11, 20, 21]
        assert staging.current == 2  # the newest batch is shown
        other = photo()
        paint_mask(other, Rect(60, 40, 20, 16))
        with qtbot.waitSignal(controller.finished, timeout=5000):
            controller.generate(other, params(batch_size=2, seed=30))
        # variants of another document replace the old ones (which never touched their doc)
        assert [layer.recipe["seed"] for layer in staging.layers] == [30, 31]
        assert doc.preview is None and not doc.layers_of(LayerKind.RESULT)
    finally:
        assert controller.shutdown(10)


def test_an_engine_that_cannot_be_created_fails_the_job_cleanly(qtbot):
    def broken():
        raise ImportError("No module named 'torch'")

    controller = JobController(broken)
    doc = photo()
    paint_mask(doc, Rect(10, 10, 16, 16))
    with qtbot.waitSignal(controller.failed, timeout=2000) as failed:
        controller.generate(doc, params())
    assert "No module named 'torch'" in failed.args[1] and not controller.busy
    assert controller.shutdown(5)
