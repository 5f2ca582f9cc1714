"""The generation session without any widget: values, Generate, recipes, state in the .ora."""

from __future__ import annotations

import threading

import pytest

from app import files
from app.document import Document
from app.generation.jobs import WORKER_THREAD_NAME, JobController
from app.generation.request import RequestBuildError, ResolutionPolicy, Workflow
from app.generation.session import (
    LEGACY_STATE_KEY,
    STATE_KEY,
    GenerationSession,
    GenerationSessions,
    ModelChoice,
)
from app.geometry import Rect
from app.layers import LayerKind
from inference.api import Sampler
from tests.app.fake_engine import FakeEngine
from tests.documents import paint_mask, random_photo

MODEL = ModelChoice("/models/fake.safetensors", "fake", "abc1234567", 64)


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


def test_a_session_generates_without_any_panel(jobs, engine, qtbot):
    doc = random_photo(96, 64, seed=2)
    paint_mask(doc, Rect(20, 20, 16, 16))
    session = GenerationSession(doc, jobs)
    seen = []
    session.changed.connect(seen.append)
    session.update(prompt="a boat", model=MODEL, steps=3, random_seed=False, seed=11)
    assert seen == [frozenset({"prompt", "model", "steps", "random_seed", "seed"})]
    assert session.update(steps=3) == frozenset() and len(seen) == 1  # no change, no signal
    with qtbot.waitSignal(jobs.finished, timeout=5000):
        session.generate()
    request = engine.requests[-1]
    assert (request.prompt, request.steps, request.seed) == ("a boat", 3, 11)
    (layer,) = doc.layers_of(LayerKind.RESULT)
    assert layer.recipe["model_hash"] == "abc1234567"
    assert session.recent_prompts == [("a boat", "")]
    with pytest.raises(TypeError):
        session.update(cfg=3.0)  # one vocabulary: unknown names are refused


def test_random_seed_is_drawn_at_generate_and_shown(jobs, engine, qtbot):
    doc = random_photo(64, 64)
    paint_mask(doc, Rect(8, 8, 16, 16))
    session = GenerationSession(doc, jobs)
    session.update(model=MODEL, steps=2)
    with qtbot.waitSignal(jobs.finished, timeout=5000):
        session.generate()
    assert session.values.seed == engine.requests[-1].seed and session.values.random_seed
    session.use_seed(5)
    assert (session.values.seed, session.values.random_seed) == (5, False)
    session.update(seed=9)
    session.reuse_last_seed()
    assert session.values.seed == engine.requests[-1].seed


def test_apply_recipe_takes_its_values_and_fixes_the_seed(jobs):
    session = GenerationSession(None, jobs)
    missing = session.apply_recipe(
        {
            "prompt": "a fox",
            "negative_prompt": "blur",
            "sampler": "DDIM",
            "steps": 12,
            "guidance": 4.5,
            "seed": 77,
            "workflow": Workflow.INPAINT.value,
            "model_path": "/models/other.safetensors",
            "model": "other",
            "loras": [{"path": "/loras/x.safetensors", "weight": 0.5}],
        }
    )
    v = session.values
    assert (v.prompt, v.negative_prompt, v.sampler, v.steps, v.guidance) == (
        "a fox",
        "blur",
        Sampler.DDIM,
        12,
        4.5,
    )
    assert (v.seed, v.random_seed, v.workflow) == (77, False, Workflow.INPAINT)
    assert v.model.path == "/models/other.safetensors" and v.model.name == "other"
    assert v.loras == (("/loras/x.safetensors", 0.5, True),) and missing == []


def test_without_a_document_generate_says_what_to_do(jobs):
    with pytest.raises(RequestBuildError, match="Open or create"):
        GenerationSession(None, jobs).generate()


def test_session_state_survives_ora_save_and_open(jobs, tmp_path):
    doc = Document.blank(64, 48)
    doc.generation_state["other tool"] = {"kept": 1}
    session = GenerationSessions(jobs).activate(doc)
    session.update(
        prompt="a harbour",
        negative_prompt="people",
        sampler=Sampler.UNIPC,
        steps=9,
        guidance=3.5,
        strength=0.4,
        seed=1234,
        random_seed=False,
        batch_size=3,
        resolution=ResolutionPolicy.EXACT,
        padding=48,
        mask_blur=6,
        workflow=Workflow.IMG2IMG,
        loras=(("/loras/ink.safetensors", 0.6, True), ("/loras/off.safetensors", -1.0, False)),
    )
    session.remember_prompt("a harbour", "people")
    path = files.save_project(doc, tmp_path / "harbour.ora")  # no panel, no widget asked
    reopened = files.open_document(path)
    assert reopened.generation_state["other tool"] == {"kept": 1}
    again = GenerationSessions(jobs).activate(reopened)
    kept = {**vars(session.values), "model": again.values.model}  # the model is this machine's
    assert again.values == type(session.values)(**kept)
    assert again.recent_prompts == [("a harbour", "people")]
    assert reopened.generation_state[STATE_KEY]["version"] == 1


def test_an_old_projects_panel_dict_is_migrated(jobs, tmp_path):
    old = Document.blank(64, 48)
    old.generation_state = {
        LEGACY_STATE_KEY: {
            "prompt": "old prompt",
            "negative_prompt": "old negative",
            "sampler": "Euler",
            "steps": 7,
            "guidance": 5.0,
            "seed": 99,
            "random_seed": False,
            "batch_size": 2,
            "resolution": ResolutionPolicy.EXACT.value,
            "workflow": None,
            "loras": [["/l/a.safetensors", 0.3]],
            "lora_rows": [["/l/a.safetensors", 0.3, True], ["/l/b.safetensors", 1.0, False]],
            "recent_prompts": ["plain old string", ["pair", "neg"]],
        }
    }
    path = files.save_project(old, tmp_path / "old.ora")
    reopened = files.open_document(path)
    session = GenerationSessions(jobs).activate(reopened)
    v = session.values
    assert (v.prompt, v.negative_prompt, v.sampler, v.steps, v.seed) == (
        "old prompt",
        "old negative",
        Sampler.EULER,
        7,
        99,
    )
    assert (v.random_seed, v.batch_size, v.resolution) == (False, 2, ResolutionPolicy.EXACT)
    assert v.loras == (("/l/a.safetensors", 0.3, True), ("/l/b.safetensors", 1.0, False))
    assert session.recent_prompts == [("plain old string", ""), ("pair", "neg")]
    state = reopened.generation_state
    assert LEGACY_STATE_KEY not in state and state[STATE_KEY]["prompt"] == "old prompt"


def test_a_state_from_a_newer_version_is_left_alone(jobs, caplog):
    doc = Document.blank(32, 32)
    doc.generation_state = {STATE_KEY: {"version": 99, "prompt": "from the future"}}
    session = GenerationSession(None, jobs)
    assert not session.from_state(doc.generation_state)
    assert session.values.prompt == "" and "unknown version" in caplog.text


def test_each_document_has_its_own_session(jobs):
    sessions = GenerationSessions(jobs)
    first, second = Document.blank(32, 32), Document.blank(32, 32)
    a = sessions.activate(first)
    a.update(prompt="first")
    b = sessions.activate(second)
    assert b.values.prompt == "first"  # a new document starts from the current values
    b.update(prompt="second")
    assert sessions.activate(first) is a and a.values.prompt == "first"
    assert first.generation_state[STATE_KEY]["prompt"] == "first"
    assert second.generation_state[STATE_KEY]["prompt"] == "second"
