"""Live painting on a generation session, without widgets: frames per stroke, no pile-up, Apply,
few-step presets put in and taken back."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.compose import composite
from app.document import Document
from app.generation.jobs import WORKER_THREAD_NAME, JobController
from app.generation.live import LIVE_PREVIEW_ID
from app.generation.session import GenerationSession, ModelChoice
from app.geometry import Rect
from app.layers import LayerKind
from app.raster import Raster
from app.settings import SettingsStore
from app.tools import BrushSettings, BrushTarget, BrushTool, Phase, PointerEvent
from inference.api import Mode, Sampler
from tests.app.fake_engine import FakeEngine, seed_color
from tests.documents import random_photo

MODEL = ModelChoice("/models/dreamshaper-lcm.safetensors", "dreamshaper-lcm", "abc1234567", 64)
PLAIN = ModelChoice("/models/plain.safetensors", "plain", "def1234567", 64)


@pytest.fixture
def engine():
    fake = FakeEngine()
    yield fake
    fake.release.set()


@pytest.fixture
def jobs(engine, qtbot):
    controller = JobController(lambda: engine)
    yield controller
    engine.release.set()
    assert controller.shutdown(10)
    assert not any(t.name == WORKER_THREAD_NAME for t in threading.enumerate())


@pytest.fixture
def doc() -> Document:
    return random_photo(96, 80, seed=4)


def session_for(doc, jobs, tmp_path, model=MODEL, **values) -> GenerationSession:
    store = SettingsStore(tmp_path / "settings.json")
    session = GenerationSession(doc, jobs, store=store)
    session.update(prompt="a fox", model=model, strength=0.5, **values)
    return session


def stroke(doc: Document, x: int, y: int, length: int = 20) -> None:
    """One finished brush stroke on the active layer, through the real brush tool."""
    brush = BrushTool(doc, BrushTarget.ACTIVE, BrushSettings(size=6), "Brush")
    brush.handle(PointerEvent(x, y, Phase.PRESS))
    for dx in range(2, length, 2):
        brush.handle(PointerEvent(x + dx, y, Phase.MOVE))
    brush.handle(PointerEvent(x + length, y, Phase.RELEASE))


def wait_idle(qtbot, live, timeout=5000) -> None:
    qtbot.waitUntil(lambda: not live.busy, timeout=timeout)


def test_every_stroke_leads_to_a_frame_with_the_fixed_seed(jobs, engine, doc, qtbot, tmp_path):
    session = session_for(doc, jobs, tmp_path, random_seed=True)
    live = session.live
    frames = []
    live.frame_shown.connect(frames.append)
    with qtbot.waitSignal(live.frame_shown, timeout=5000):
        assert live.start()  # the frame is rendered once at start
    for i in range(3):
        with qtbot.waitSignal(live.frame_shown, timeout=5000):
            stroke(doc, 10, 10 + 20 * i)
    assert len(frames) == 4
    seeds = {request.seed for request in engine.requests}
    assert seeds == {live.seed}  # one fixed seed: only the painting changes the picture
    assert all(r.mode is Mode.IMG2IMG and r.strength == 0.5 for r in engine.requests)
    # the live picture is the last frame, shown outside the history
    assert doc.preview is not None and doc.preview_job == LIVE_PREVIEW_ID
    np.testing.assert_array_equal(doc.preview.raster.data, live.frame.layer.raster.data)
    assert doc.preview.raster.data[0, 0, :3].tolist() == list(seed_color(live.seed))
    assert not doc.layers_of(LayerKind.RESULT)  # nothing landed
    live.stop()
    assert doc.preview is None


def test_a_burst_of_ten_strokes_runs_at_most_two_jobs(jobs, engine, doc, qtbot, tmp_path):
    session = session_for(doc, jobs, tmp_path, steps=20)
    live = session.live
    with qtbot.waitSignal(live.frame_shown, timeout=5000):
        live.start()
    engine.step_delay = 0.005
    before = live.jobs_submitted
    for i in range(10):  # ten strokes in ~100 ms
        stroke(doc, 5, 5 + 7 * i, length=10)
        qtbot.wait(10)
    wait_idle(qtbot, live)
    assert 1 <= live.jobs_submitted - before <= 2
    # the frame shown answers the last stroke: its input holds all ten
    last = engine.requests[-1]
    picture = composite(doc.layers, doc.rect)[..., :3]
    np.testing.assert_array_equal(last.image[..., :3], picture)
    live.stop()


def test_a_stroke_cancels_the_stale_job_at_its_next_step(jobs, engine, doc, qtbot, tmp_path):
    session = session_for(doc, jobs, tmp_path, steps=50)
    live = session.live
    engine.gate_step = 2
    live.start()
    assert engine.at_gate.wait(5)
    cancelled = []
    jobs.cancelled.connect(cancelled.append)
    stroke(doc, 30, 30)
    qtbot.waitUntil(lambda: jobs.running is not None and jobs.running.token.cancelled)
    engine.gate_step = None
    engine.release.set()
    qtbot.waitUntil(lambda: live.frame is not None, timeout=5000)
    assert len(cancelled) == 1 and live.jobs_submitted == 2
    assert engine.steps_run < 50 + 50  # the first job stopped early
    live.stop()


def test_a_change_outside_the_frame_starts_nothing(jobs, engine, doc, qtbot, tmp_path):
    session = session_for(doc, jobs, tmp_path)
    selection = Raster(1)
    selection.write(Rect(0, 0, 40, 40), np.full((40, 40), 255, np.uint8))
    doc.set_selection(selection)
    live = session.live
    with qtbot.waitSignal(live.frame_shown, timeout=5000):
        live.start()
    assert engine.requests[-1].crop_box is not None  # img2img of the selection
    hidden = doc.add_layer(LayerKind.IMAGE, "hidden")
    doc.set_visible(hidden.id, False)
    wait_idle(qtbot, live)
    count = live.jobs_submitted
    doc.set_active(hidden.id)
    stroke(doc, 10, 10)  # painted on a hidden layer: the picture did not change
    wait_idle(qtbot, live)
    assert live.jobs_submitted == count
    live.stop()


def test_live_renders_the_generation_frame_when_the_document_has_one(
    jobs, engine, doc, qtbot, tmp_path
):
    from app.frame import frame_of

    session = session_for(doc, jobs, tmp_path)
    selection = Raster(1)
    selection.write(Rect(0, 0, 40, 40), np.full((40, 40), 255, np.uint8))
    doc.set_selection(selection)  # the frame wins over the selection, as for Generate
    frame_of(doc).set(Rect(8, 8, 64, 72))
    live = session.live
    with qtbot.waitSignal(live.frame_shown, timeout=5000):
        live.start()
    request = engine.requests[-1]
    assert request.image.shape[:2] == (72, 64)  # what the frame covers, not the whole canvas
    live.stop()


def test_apply_lands_one_undoable_result_equal_to_the_live_picture(
    jobs, engine, doc, qtbot, tmp_path
):
    session = session_for(doc, jobs, tmp_path)
    live = session.live
    with qtbot.waitSignal(live.frame_shown, timeout=5000):
        live.start()
    with qtbot.waitSignal(live.frame_shown, timeout=5000):
        stroke(doc, 20, 20)
    shown = doc.preview.raster.data.copy()
    shown_rect = doc.preview.raster.rect
    undo_count = doc.history.count()
    layers_before = len(doc.layers)
    layer = live.apply()
    assert doc.history.count() == undo_count + 1  # one undo step
    (result,) = doc.layers_of(LayerKind.RESULT)
    assert result is layer and len(doc.layers) == layers_before + 1
    assert result.raster.rect == shown_rect
    np.testing.assert_array_equal(result.raster.data, shown)
    assert result.recipe["seed"] == live.seed and result.recipe["prompt"] == "a fox"
    assert doc.preview is None
    qtbot.wait(50)
    assert not live.busy  # applying is not a change to answer
    doc.history.undo()
    assert not doc.layers_of(LayerKind.RESULT)
    live.stop()


def test_apply_to_new_layer_adds_a_paint_layer_above_in_the_same_step(
    jobs, engine, doc, qtbot, tmp_path
):
    session = session_for(doc, jobs, tmp_path)
    live = session.live
    with qtbot.waitSignal(live.frame_shown, timeout=5000):
        live.start()
    count = doc.history.count()
    layer = live.apply(new_layer=True)
    assert doc.history.count() == count + 1
    assert doc.layers.index(doc.active_layer) == doc.layers.index(layer) + 1
    assert doc.active_layer.kind is LayerKind.SKETCH
    with qtbot.waitSignal(live.frame_shown, timeout=5000):
        stroke(doc, 40, 40)  # painting goes on over the applied result
    live.stop()


def test_few_step_model_gets_its_preset_and_the_user_settings_come_back(
    jobs, engine, doc, qtbot, tmp_path
):
    session = session_for(doc, jobs, tmp_path, sampler=Sampler.DPMPP_2M_KARRAS, steps=30)
    session.update(guidance=7.5)
    live = session.live
    with qtbot.waitSignal(live.frame_shown, timeout=5000):
        live.start()
    assert live.preset is not None and live.preset.kind.value == "LCM"
    values = session.values
    assert (values.sampler, values.steps, values.guidance) == (Sampler.LCM, 4, 1.5)
    request = engine.requests[-1]
    assert (request.sampler, request.steps, request.guidance) == (Sampler.LCM, 4, 1.5)
    live.stop()
    values = session.values
    assert (values.sampler, values.steps, values.guidance) == (
        Sampler.DPMPP_2M_KARRAS, 30, 7.5,
    )  # fmt: skip


def test_the_user_mark_and_a_few_step_lora_decide(jobs, engine, doc, qtbot, tmp_path):
    session = session_for(doc, jobs, tmp_path, model=PLAIN, steps=25)
    live = session.live
    assert live.few_step_preset() is None
    session._store.update(few_step_marks=[[PLAIN.path, "Lightning"]])
    preset = live.few_step_preset()
    assert preset is not None and (preset.sampler, preset.steps) == (Sampler.EULER, 4)
    session._store.update(few_step_marks=[])
    session.update(loras=(("/loras/Hyper-SD15-8steps-lora.safetensors", 1.0, True),))
    preset = live.few_step_preset()
    assert preset is not None and preset.kind.value == "Hyper-SD" and preset.steps == 8
    session._store.update(few_step_marks=[[MODEL.path, "off"]])
    session.update(model=MODEL, loras=())
    assert live.few_step_preset() is None  # marked "not few-step" despite its name


def test_a_prompt_change_renders_again_once_typing_pauses(jobs, engine, doc, qtbot, tmp_path):
    session = session_for(doc, jobs, tmp_path)
    live = session.live
    with qtbot.waitSignal(live.frame_shown, timeout=5000):
        live.start()
    count = live.jobs_submitted
    for text in ("a f", "a fo", "a fox in snow"):
        session.update(prompt=text)
    with qtbot.waitSignal(live.frame_shown, timeout=5000):
        pass
    assert live.jobs_submitted == count + 1
    assert engine.requests[-1].prompt == "a fox in snow"
    live.stop()


def test_a_failed_build_says_one_line_and_stops_nothing(jobs, engine, qtbot, tmp_path):
    doc = random_photo(64, 64)
    session = session_for(doc, jobs, tmp_path)
    session.update(model=ModelChoice())  # the classic engine cannot do img2img
    live = session.live
    messages = []
    live.status.connect(messages.append)
    assert live.start()
    assert any("classic engine" in m for m in messages)
    assert live.jobs_submitted == 0 and doc.preview is None
    live.stop()


def test_a_bad_few_step_mark_is_refused_by_name(tmp_path):
    from app.settings import SettingsError

    store = SettingsStore(tmp_path / "settings.json")
    with pytest.raises(SettingsError, match="few_step_marks"):
        store.update(few_step_marks=[["/m.safetensors", "Warp"]])
    store.update(few_step_marks=[["/m.safetensors", "LCM"], ["/m.safetensors", "off"]])
    assert store.settings.few_step_marks == (("/m.safetensors", "off"),)  # the last one counts
    assert SettingsStore(tmp_path / "settings.json").settings.few_step_marks == (
        ("/m.safetensors", "off"),
    )


def test_choosing_another_model_while_live_follows_its_preset(jobs, engine, doc, qtbot, tmp_path):
    session = session_for(doc, jobs, tmp_path, model=PLAIN, sampler=Sampler.DDIM, steps=30)
    live = session.live
    with qtbot.waitSignal(live.frame_shown, timeout=5000):
        live.start()
    assert live.preset is None and session.values.steps == 30
    session.update(model=MODEL)  # an LCM checkpoint now: its preset while live
    assert (session.values.sampler, session.values.steps) == (Sampler.LCM, 4)
    with qtbot.waitSignal(live.frame_shown, timeout=5000):
        pass  # the frame renders again with the new model
    assert engine.requests[-1].model_path == MODEL.path and engine.requests[-1].steps == 4
    session.update(model=PLAIN)  # back to a plain model: the user's values again
    assert (session.values.sampler, session.values.steps) == (Sampler.DDIM, 30)
    session.update(model=MODEL)
    live.mark_model("off")  # the user says it is not few-step: live follows at once
    assert live.preset is None and session.values.steps == 30
    live.stop()
    assert (session.values.sampler, session.values.steps) == (Sampler.DDIM, 30)
