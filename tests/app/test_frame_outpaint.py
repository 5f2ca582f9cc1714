"""The generation frame and outpainting: the frame value, its tool, requests, landing, undo."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.compose import composite
from app.frame import (
    FrameError,
    FrameTool,
    GenerationFrame,
    Grip,
    describe_frame,
    frame_of,
    generation_size,
    snapped,
)
from app.generation.jobs import WORKER_THREAD_NAME, JobController
from app.generation.request import (
    GenerationParams,
    RequestBuildError,
    Workflow,
    build_request,
)
from app.geometry import Rect
from app.layers import LayerKind
from app.raster import Raster
from app.tools.base import Phase, PointerEvent
from inference.api import EngineError, Mode
from inference.engine import Engine
from tests.app.fake_engine import FakeEngine
from tests.documents import paint_mask, random_photo

MODEL = GenerationParams(
    model_path="/models/fake.safetensors", model_name="fake", native_size=64, prompt="sea",
    seed=3, steps=3, padding=8, mask_blur=2,
)  # fmt: skip
CLASSIC = GenerationParams(seed=3, steps=3, mask_blur=2)


def with_frame(params: GenerationParams, rect: Rect) -> GenerationParams:
    return GenerationParams(**{**params.__dict__, "frame": rect})


# ---- the frame value ------------------------------------------------------------------------


def test_frame_snaps_to_eight_and_keeps_a_model_sized_minimum():
    assert snapped(Rect(3, -13, 101, 67)) == Rect(0, -16, 104, 64)
    assert snapped(Rect(0, 0, 10, 10)) == Rect(0, 0, 64, 64)
    with pytest.raises(FrameError, match="no area"):
        snapped(Rect(0, 0, 0, 40))


def test_frame_is_document_state_saved_and_announced():
    doc = random_photo(64, 48)
    frame = frame_of(doc)
    assert frame is frame_of(doc) and frame.rect is None
    seen = []
    frame.changed.connect(seen.append)
    frame.set(Rect(-30, 5, 90, 70))
    assert frame.rect == Rect(-32, 8, 88, 72) and seen == [Rect(-32, 8, 88, 72)]
    assert doc.generation_state["frame"] == [-32, 8, 88, 72]
    assert frame.outside_canvas()
    frame.set(frame.rect)  # no change, no signal
    assert len(seen) == 1
    # a project reopened with its state gets the frame back
    twin = random_photo(64, 48)
    twin.generation_state.update(doc.generation_state)
    assert GenerationFrame(twin).rect == Rect(-32, 8, 88, 72)
    frame.clear()
    assert seen[-1] is None and "frame" not in doc.generation_state


@pytest.mark.parametrize("saved", ["0,0,64,64", [1, 2, 3], [0, 0, 0, 64], [0, 0, "x", 9], {"a": 1}])
def test_a_broken_saved_frame_is_ignored(saved):
    doc = random_photo(64, 48)
    doc.generation_state["frame"] = saved
    assert GenerationFrame(doc).rect is None


def test_generation_size_and_label_show_the_models_scale():
    assert generation_size(Rect(0, 0, 512, 512), 512) == (512, 512)
    assert generation_size(Rect(0, 0, 1024, 512), 512) == (728, 360)
    assert describe_frame(Rect(0, 0, 512, 512), 512) == "512 × 512 · model native"
    assert describe_frame(Rect(0, 0, 1024, 1024), 512) == (
        "1024 × 1024 · generates at 512 × 512 (×0.50)"
    )
    assert describe_frame(Rect(0, 0, 640, 480), None) == "640 × 480"


# ---- the tool (pointer events, no widgets) --------------------------------------------------


def press(tool, x, y, phase=Phase.PRESS, zoom=1.0, **mods):
    return tool.handle(PointerEvent(x, y, phase, zoom=zoom, **mods))


def test_tool_draws_moves_and_resizes_the_frame_on_the_grid():
    doc = random_photo(256, 256)
    tool = FrameTool(frame_of(doc))
    press(tool, 10, 10)
    press(tool, 150, 90, Phase.MOVE)
    press(tool, 203, 141, Phase.RELEASE)
    assert tool.frame.rect == Rect(8, 8, 192, 136)
    # move by the body: snapped steps
    press(tool, 100, 60)
    press(tool, 77, 63, Phase.RELEASE)
    assert tool.frame.rect == Rect(-16, 8, 192, 136)
    # resize by the bottom-right handle, past the canvas
    assert tool.hover is not None
    press(tool, 176, 144, Phase.HOVER)
    assert tool.hover is Grip.BOTTOM_RIGHT
    press(tool, 176, 144)
    press(tool, 300, 300, Phase.RELEASE)
    assert tool.frame.rect == Rect(-16, 8, 320, 296)
    # an edge dragged past the opposite one keeps the smallest frame
    press(tool, -16, 150)
    press(tool, 500, 150, Phase.RELEASE)
    assert tool.frame.rect.w == 64 and tool.frame.rect.right == 304


def test_a_click_without_a_drag_changes_nothing_and_esc_cancels_a_drag_then_clears():
    doc = random_photo(256, 256)
    frame = frame_of(doc)
    frame.set(Rect(0, 0, 128, 128))
    tool = FrameTool(frame)
    press(tool, 200, 200)
    press(tool, 201, 200, Phase.RELEASE)
    assert frame.rect == Rect(0, 0, 128, 128)
    press(tool, 64, 64)
    press(tool, 120, 100, Phase.MOVE)
    assert frame.rect != Rect(0, 0, 128, 128)
    tool.cancel()  # Esc mid-drag: back to where it was
    assert frame.rect == Rect(0, 0, 128, 128) and not tool.dragging
    tool.cancel()  # Esc again: no frame
    assert frame.rect is None


def test_shift_draws_a_square():
    tool = FrameTool(frame_of(random_photo(256, 256)))
    press(tool, 0, 0)
    press(tool, 200, 96, Phase.RELEASE, shift=True)
    assert tool.frame.rect == Rect(0, 0, 200, 200)


# ---- requests --------------------------------------------------------------------------------


def test_frame_inside_an_image_is_img2img_of_what_it_covers():
    doc = random_photo(128, 96, seed=1)
    plan = build_request(doc, with_frame(MODEL, Rect(16, 8, 64, 64)))
    assert plan.workflow is Workflow.IMG2IMG and plan.origin == Rect(16, 8, 64, 64)
    expected = composite(doc.layers, Rect(16, 8, 64, 64))[..., :3]
    np.testing.assert_array_equal(plan.request.image, expected)
    assert plan.request.crop_box.width == 64 and plan.recipe["crop_box"] == [16, 8, 64, 64]


def test_frame_with_the_mask_inside_is_an_inpaint_of_the_frame():
    doc = random_photo(128, 96, seed=1)
    paint_mask(doc, Rect(30, 30, 10, 10))
    plan = build_request(doc, with_frame(MODEL, Rect(16, 8, 64, 64)))
    assert plan.workflow is Workflow.INPAINT and plan.request.mask.shape == (64, 64)
    assert plan.request.mask[22:32, 14:24].min() == 255 and plan.request.mask.sum() == 255 * 100


def test_frame_past_the_canvas_is_an_outpaint_with_prefill_and_seam():
    doc = random_photo(128, 96, seed=1)
    plan = build_request(doc, with_frame(MODEL, Rect(96, 0, 64, 96)))
    request = plan.request
    assert plan.workflow is Workflow.INPAINT and request.mode is Mode.INPAINT
    # straight RGBA, transparent past the canvas: the engine pre-fills it on its thread
    assert request.image.shape == (96, 64, 4) and (request.image[:, 32:, 3] == 0).all()
    mask = request.mask
    assert (mask[:, 32:] == 255).all()  # past the canvas
    assert (mask[:, 16:32] == 255).all() and (mask[:, :16] == 0).all()  # a 16 px seam
    picture = composite(doc.layers, Rect(96, 0, 32, 96))
    np.testing.assert_array_equal(request.image[:, :32], picture)  # known pixels as they are
    # what the model starts from: the known pixels, and an extension of them, not black
    from inference.engine import prepare_work

    work = prepare_work(request, 64)
    assert work.source.shape[2] == 3 and work.source[:, -8:].mean() > 40


def test_transparent_pixels_inside_the_canvas_are_outpainted_too():
    doc = random_photo(128, 96, seed=1)
    doc.layers[0].raster.data[:, 64:, 3] = 0  # the right half erased
    plan = build_request(doc, with_frame(MODEL, Rect(32, 0, 64, 64)))
    assert plan.workflow is Workflow.INPAINT
    assert (plan.request.mask[:, 32:] == 255).all() and plan.request.mask[:, 0].max() == 0


def test_frame_on_a_blank_canvas_is_text_to_image_in_the_frame():
    from app.document import Document

    doc = Document.blank(128, 128)
    plan = build_request(doc, with_frame(MODEL, Rect(64, 64, 128, 64)))
    assert plan.workflow is Workflow.TXT2IMG and plan.target == Rect(64, 64, 128, 64)


def test_frame_refusals_are_one_line():
    doc = random_photo(128, 96)
    with pytest.raises(RequestBuildError, match="no area"):
        build_request(doc, with_frame(MODEL, Rect(0, 0, 0, 64)))
    with pytest.raises(RequestBuildError, match="MP limit"):
        build_request(doc, with_frame(MODEL, Rect(30000, 30000, 64, 64)))
    with pytest.raises(RequestBuildError, match="classic engine"):
        build_request(doc, with_frame(CLASSIC, Rect(0, 0, 64, 64)))  # inside: nothing to fill


def test_session_params_carry_the_documents_frame(qtbot):
    from app.generation.session import GenerationSession

    doc = random_photo(64, 64)
    session = GenerationSession(doc, JobController(lambda: FakeEngine()))
    assert session.params().frame is None
    session.frame.set(Rect(-64, 0, 128, 64))
    assert session.params().frame == Rect(-64, 0, 128, 64)
    assert session.frame is frame_of(doc)


# ---- landing, undo, cancel (through the job queue) -------------------------------------------


@pytest.fixture
def jobs_for(qtbot):
    made = []

    def make(engine):
        controller = JobController(lambda: engine)
        made.append((controller, engine))
        return controller

    yield make
    for controller, engine in made:
        if isinstance(engine, FakeEngine):
            engine.release.set()
        assert controller.shutdown(10)
    assert not any(t.name == WORKER_THREAD_NAME for t in threading.enumerate())


def test_outpaint_grows_the_canvas_in_one_step_keeps_the_picture_and_undo_shrinks_it(
    jobs_for, qtbot
):
    """The real classic engine outpaints up and to the left of a photo."""
    doc = random_photo(128, 96, seed=7)
    before = composite(doc.layers, doc.rect)
    frame = frame_of(doc)
    frame.set(Rect(-48, -32, 112, 96))
    jobs = jobs_for(Engine())
    depth = doc.history.count()
    with qtbot.waitSignal(jobs.finished, timeout=20000):
        jobs.generate(doc, with_frame(CLASSIC, frame.rect))
    assert (doc.width, doc.height) == (176, 128)
    assert doc.history.count() == depth + 1  # growth and result: one step
    assert frame.rect == Rect(0, 0, 112, 96)  # the frame moved with the picture
    after = composite(doc.layers, doc.rect)
    # the frame is filled, opaque; the corner neither the frame nor the photo covers is clear
    assert (after[:96, :112, 3] == 255).all() and (after[:32, 112:, 3] == 0).all()
    old = after[32:, 48:]
    # original pixels farther than seam (16) + 2 * mask blur (4) from the new area: identical
    np.testing.assert_array_equal(old[20:, 20:], before[20:, 20:])
    np.testing.assert_array_equal(old[:, 64:], before[:, 64:])  # right of the frame too
    changed = (old != before).any(axis=2)
    may_change = np.zeros_like(changed)
    may_change[:64, :64] = True  # inside the frame...
    may_change[20:, 20:] = False  # ...and within the seam and feather of the new area
    assert changed[:16, :64].any() and changed[:64, :16].any()  # the seam was repainted
    assert not (changed & ~may_change).any()
    doc.history.undo()
    assert (doc.width, doc.height) == (128, 96) and frame.rect == Rect(-48, -32, 112, 96)
    np.testing.assert_array_equal(composite(doc.layers, doc.rect), before)
    assert not doc.layers_of(LayerKind.RESULT)
    doc.history.redo()
    assert (doc.width, doc.height) == (176, 128)
    np.testing.assert_array_equal(composite(doc.layers, doc.rect), after)


def test_outpaint_to_the_right_leaves_the_left_untouched(jobs_for, qtbot):
    doc = random_photo(128, 64, seed=8)
    before = composite(doc.layers, doc.rect)
    jobs = jobs_for(FakeEngine())
    with qtbot.waitSignal(jobs.finished, timeout=5000):
        jobs.generate(doc, with_frame(MODEL, Rect(64, 0, 128, 64)))
    assert (doc.width, doc.height) == (192, 64)
    after = composite(doc.layers, doc.rect)
    np.testing.assert_array_equal(after[:, : 64 + 32 - 16 - 4], before[:, :76])
    result = doc.layers_of(LayerKind.RESULT)[0]
    assert result.raster.rect == Rect(64, 0, 128, 64)
    assert result.recipe["crop_box"] == [64, 0, 128, 64]


def test_cancelled_outpaint_leaves_size_and_pixels_as_they_were(jobs_for, qtbot):
    doc = random_photo(96, 64, seed=9)
    before = composite(doc.layers, doc.rect)
    engine = FakeEngine(gate_step=2)
    jobs = jobs_for(engine)
    depth = doc.history.count()
    job_id = jobs.generate(doc, with_frame(MODEL, Rect(-64, 0, 128, 64)))
    qtbot.waitUntil(lambda: doc.preview is not None, timeout=5000)
    assert doc.preview.raster.rect.x == -64  # the preview shows past the canvas
    assert engine.at_gate.wait(5)
    with qtbot.waitSignal(jobs.cancelled, timeout=5000):
        jobs.cancel(job_id)
        engine.release.set()
    assert (doc.width, doc.height) == (96, 64) and doc.history.count() == depth
    np.testing.assert_array_equal(composite(doc.layers, doc.rect), before)


def test_failed_outpaint_leaves_size_and_pixels_as_they_were(jobs_for, qtbot):
    doc = random_photo(96, 64, seed=9)
    before = composite(doc.layers, doc.rect)
    jobs = jobs_for(FakeEngine(fail_with=EngineError("boom"), fail_at_step=2))
    with qtbot.waitSignal(jobs.failed, timeout=5000):
        jobs.generate(doc, with_frame(MODEL, Rect(-64, 0, 128, 64)))
    assert (doc.width, doc.height) == (96, 64) and doc.history.count() == 0
    np.testing.assert_array_equal(composite(doc.layers, doc.rect), before)


def test_layers_off_the_canvas_do_not_count_as_picture(jobs_for, qtbot):
    """A layer kept past the canvas (after a crop) is not what the frame sees there."""
    doc = random_photo(64, 64, seed=1)
    hidden = np.full((64, 64, 4), 255, np.uint8)
    doc.add_layer(LayerKind.IMAGE, "Off canvas", Raster(4, hidden, 64, 0))
    plan = build_request(doc, with_frame(MODEL, Rect(32, 0, 64, 64)))
    assert plan.workflow is Workflow.INPAINT and (plan.request.mask[:, 32:] == 255).all()


def test_the_frame_is_saved_with_the_project(tmp_path):
    from app import files

    doc = random_photo(64, 48)
    frame_of(doc).set(Rect(-32, 8, 96, 64))
    path = tmp_path / "framed.ora"
    files.save_project(doc, path)
    reopened = files.open_document(path)
    assert frame_of(reopened).rect == Rect(-32, 8, 96, 64)


def test_a_batch_of_outpaints_is_staged_and_accepting_one_grows_the_canvas(qtbot):
    from app.staging import Staging

    doc = random_photo(96, 64, seed=3)
    staging = Staging()
    engine = FakeEngine()
    jobs = JobController(lambda: engine, staging=staging)
    try:
        params = GenerationParams(**{**MODEL.__dict__, "batch_size": 2})
        with qtbot.waitSignal(jobs.finished, timeout=5000):
            jobs.generate(doc, with_frame(params, Rect(-32, 0, 96, 64)))
        assert (doc.width, doc.height) == (96, 64)  # staged: nothing landed yet
        assert doc.preview is not None and doc.preview.raster.rect.x == -32
        staging.accept([1])
        assert (doc.width, doc.height) == (128, 64)
        assert doc.layers_of(LayerKind.RESULT)[0].raster.rect == Rect(0, 0, 96, 64)
        doc.history.undo()
        assert (doc.width, doc.height) == (96, 64) and not doc.layers_of(LayerKind.RESULT)
    finally:
        assert jobs.shutdown(10)
