"""The generate panel driven by qtbot against a scripted fake engine."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

from app.document import Document
from app.generation.jobs import WORKER_THREAD_NAME, JobController
from app.generation.request import Workflow
from app.geometry import Rect
from app.layers import ControlSettings, LayerKind
from app.staging import Staging
from inference.api import ModelNotFoundError, Sampler
from tests.app.fake_engine import FakeEngine
from widgets.generate_panel import GeneratePanel
from widgets.result_actions import copy_parameters, generate_again, result_actions, use_seed


@pytest.fixture
def engine():
    fake = FakeEngine()
    yield fake
    fake.release.set()


@pytest.fixture
def doc():
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (96, 128, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    return Document.from_rgba(pixels)


@pytest.fixture
def panel(qtbot, engine, doc):
    jobs = JobController(lambda: engine, staging=Staging())
    holder = {"doc": doc}
    widget = GeneratePanel(lambda: holder["doc"], jobs)
    widget.holder = holder
    qtbot.addWidget(widget)
    widget.add_model("/models/fake.safetensors", "fake", "abc1234567", native_size=64)
    widget.steps_spin.setValue(4)
    widget.prompt_edit.setPlainText("a lighthouse")
    yield widget
    engine.release.set()
    assert jobs.shutdown(10)
    assert not any(t.name == WORKER_THREAD_NAME for t in threading.enumerate())


def paint_mask(doc: Document, rect: Rect) -> None:
    doc.mask_layer.raster.write(rect, np.full((rect.h, rect.w), 255, np.uint8))
    doc.pixels_changed.emit(doc.mask_layer.id, rect)


def test_mode_is_shown_plainly_and_follows_the_document(panel, doc, qtbot):
    assert panel.detected_workflow is Workflow.IMG2IMG
    assert "Image to image" in panel.mode_label.text()
    paint_mask(doc, Rect(10, 10, 20, 20))
    qtbot.waitUntil(lambda: panel.detected_workflow is Workflow.INPAINT, timeout=2000)
    assert "Inpaint" in panel.mode_label.text() and "mask" in panel.mode_label.text()
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData(Workflow.IMG2IMG.value))
    assert panel.workflow is Workflow.IMG2IMG and "(chosen)" in panel.mode_label.text()
    panel.holder["doc"] = Document.blank(64, 64)
    panel.refresh_document()
    assert panel.detected_workflow is Workflow.TXT2IMG


def test_ctrl_enter_generates_and_the_result_lands(panel, doc, engine, qtbot):
    paint_mask(doc, Rect(40, 30, 16, 16))
    panel.show()
    qtbot.waitExposed(panel)
    panel.activateWindow()
    panel.prompt_edit.setFocus()
    qtbot.waitUntil(lambda: panel.prompt_edit.hasFocus(), timeout=2000)
    with qtbot.waitSignal(panel.jobs.finished, timeout=5000):
        qtbot.keyClick(panel.prompt_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    (layer,) = doc.layers_of(LayerKind.RESULT)
    assert layer.recipe["prompt"] == "a lighthouse" and layer.recipe["model"] == "fake"
    assert layer.recipe["model_hash"] == "abc1234567"
    assert engine.requests[0].steps == 4
    assert panel.progress_label.text() == "Done"
    assert panel.recent_prompts == [("a lighthouse", "")]
    assert doc.generation_state["session"]["prompt"] == "a lighthouse"


def test_progress_and_cancel_with_escape(panel, doc, engine, qtbot):
    paint_mask(doc, Rect(40, 30, 16, 16))
    engine.gate_step = 3
    panel.steps_spin.setValue(10)
    panel.show()
    qtbot.waitExposed(panel)
    panel.activateWindow()
    panel.prompt_edit.setFocus()
    qtbot.waitUntil(lambda: panel.prompt_edit.hasFocus(), timeout=2000)
    job_id = panel.generate()
    assert job_id is not None
    assert engine.at_gate.wait(5)
    qtbot.waitUntil(lambda: panel.progress_bar.value() == 2, timeout=2000)
    assert panel.progress_bar.maximum() == 10
    assert panel.progress_label.text().startswith("Step 2/10")
    assert panel.cancel_button.isEnabled() and doc.preview is not None
    with qtbot.waitSignal(panel.jobs.cancelled, timeout=5000):
        qtbot.keyClick(panel.prompt_edit, Qt.Key.Key_Escape)
        assert doc.preview is None
        engine.release.set()
    assert panel.progress_label.text() == "Cancelled"
    assert not doc.layers_of(LayerKind.RESULT) and engine.steps_run <= 3
    assert not panel.cancel_button.isEnabled()


def test_queue_lists_jobs_and_each_can_be_cancelled(panel, doc, engine, qtbot):
    paint_mask(doc, Rect(40, 30, 16, 16))
    engine.gate_step = 1
    first = panel.generate()
    second = panel.generate()
    third = panel.generate()
    assert panel.queue_list.count() == 3
    button = panel.queue_list.findChild(type(panel.history_button), f"cancelJob{second}")
    with qtbot.waitSignal(panel.jobs.cancelled, timeout=2000) as cancelled:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert cancelled.args == [second]
    ids = [
        panel.queue_list.item(i).data(Qt.ItemDataRole.UserRole)
        for i in range(panel.queue_list.count())
    ]
    assert ids == [first, third]
    engine.gate_step = None
    engine.release.set()
    qtbot.waitUntil(lambda: not panel.jobs.busy, timeout=5000)
    assert panel.queue_list.count() == 0
    assert len(doc.layers_of(LayerKind.RESULT)) == 2


def test_errors_show_a_message_and_nothing_changes(panel, doc, engine, qtbot):
    paint_mask(doc, Rect(40, 30, 16, 16))
    engine.fail_with = ModelNotFoundError("/models/fake.safetensors does not exist")
    depth = doc.history.count()
    with qtbot.waitSignal(panel.jobs.failed, timeout=5000):
        panel.generate()
    assert panel.message_label.isVisibleTo(panel)
    assert "Choose another model" in panel.message_label.text()
    assert doc.history.count() == depth and not doc.layers_of(LayerKind.RESULT)


def test_build_errors_are_explained_without_a_job(panel, qtbot):
    panel.model_combo.setCurrentIndex(0)  # the built-in classic engine
    panel.holder["doc"] = Document.blank(64, 64)
    assert panel.generate() is None
    assert "classic engine" in panel.message_label.text()
    assert not panel.jobs.busy
    panel.holder["doc"] = None
    assert panel.generate() is None and "Open or create" in panel.message_label.text()


def test_seed_random_fixed_and_reuse_last(panel, doc, engine, qtbot):
    paint_mask(doc, Rect(40, 30, 16, 16))
    panel.random_seed_check.setChecked(False)
    panel.seed_spin.setValue(1234)
    with qtbot.waitSignal(panel.jobs.finished, timeout=5000):
        panel.generate()
    assert engine.requests[-1].seed == 1234
    panel.random_seed_check.setChecked(True)
    with qtbot.waitSignal(panel.jobs.finished, timeout=5000):
        panel.generate()
    drawn = engine.requests[-1].seed
    assert panel.seed_spin.value() == drawn
    panel.seed_spin.setValue(5)
    panel.reuse_last_seed()
    assert panel.seed_spin.value() == drawn and not panel.random_seed_check.isChecked()


def test_result_layer_actions(panel, doc, engine, qtbot):
    paint_mask(doc, Rect(40, 30, 16, 16))
    panel.sampler_combo.setCurrentIndex(panel.sampler_combo.findData(Sampler.DDIM.value))
    panel.random_seed_check.setChecked(False)
    panel.seed_spin.setValue(77)
    with qtbot.waitSignal(panel.jobs.finished, timeout=5000):
        panel.generate()
    (layer,) = doc.layers_of(LayerKind.RESULT)
    assert next(a.text() for a in result_actions(layer, panel, panel)).startswith("Generate again")
    panel.prompt_edit.setPlainText("something else")
    panel.seed_spin.setValue(1)
    panel.sampler_combo.setCurrentIndex(0)
    with qtbot.waitSignal(panel.jobs.finished, timeout=5000):
        generate_again(layer, panel)
    again = engine.requests[-1]
    assert (again.prompt, again.seed, again.sampler) == ("a lighthouse", 77, Sampler.DDIM)
    panel.seed_spin.setValue(3)
    use_seed(layer, panel)
    assert panel.seed_spin.value() == 77
    text = copy_parameters(layer)
    assert QGuiApplication.clipboard().text() == text
    assert text.startswith("a lighthouse\n") and "Seed: 77" in text and "Sampler: DDIM" in text
    background = doc.layers[0]
    assert result_actions(background, panel, panel) == []


def test_control_layers_are_listed(panel, doc, qtbot):
    layer = doc.add_layer(
        LayerKind.CONTROL,
        "Edges",
        control=ControlSettings("canny", "/cn/canny.safetensors", 0.8, 0, 0.5),
    )
    qtbot.waitUntil(lambda: panel.controls_label.text() == "Control layers (1)", timeout=2000)
    text = panel.controls_list.item(0).text()
    assert "Edges" in text and "canny" in text and "canny.safetensors" in text and "0.80" in text
    doc.set_visible(layer.id, False)
    qtbot.waitUntil(lambda: panel.controls_label.text() == "Control layers (0)", timeout=2000)


def test_state_survives_switching_documents(panel, doc, qtbot):
    paint_mask(doc, Rect(40, 30, 16, 16))
    panel.negative_edit.setPlainText("blurry")
    panel.steps_spin.setValue(7)
    panel.generate()
    qtbot.waitUntil(lambda: not panel.jobs.busy, timeout=5000)
    other = Document.blank(64, 64)
    panel.holder["doc"] = other
    panel.refresh_document()
    panel.prompt_edit.setPlainText("changed")
    panel.steps_spin.setValue(30)
    panel.holder["doc"] = doc
    panel.refresh_document()
    assert panel.prompt_edit.toPlainText() == "a lighthouse"
    assert panel.negative_edit.toPlainText() == "blurry" and panel.steps_spin.value() == 7


def test_cancel_stays_available_for_the_next_queued_job(panel, doc, engine, qtbot):
    paint_mask(doc, Rect(40, 30, 16, 16))
    seen = []
    panel.jobs.queue_changed.connect(  # connected after the panel's own slot, so runs after it
        lambda: seen.append((panel.jobs.running is not None, panel.cancel_button.isEnabled()))
    )
    panel.generate()
    panel.generate()
    qtbot.waitUntil(lambda: not panel.jobs.busy, timeout=5000)
    assert len(engine.requests) == 2
    assert seen and all(running == enabled for running, enabled in seen)
    assert (True, True) in seen[2:]  # after the first job ended, the second one was cancellable


class FakePicker(QWidget):
    """What the panel reads from widgets.model_picker.ModelPicker."""

    checkpoint_changed = Signal(object)

    def __init__(self, entry=None):
        super().__init__()
        self.entry, self.vae, self.asked = entry, "/vae/x.safetensors", []

    def checkpoint(self):
        return self.entry

    def checkpoint_path(self):
        return self.entry.path if self.entry is not None else None

    def vae_path(self):
        return self.vae

    def set_checkpoint_path(self, path):
        self.asked.append(path)
        return True


def test_the_model_picker_feeds_model_hash_vae_and_native_size(qtbot, engine):
    from inference.library.entry import Base, ModelEntry, ModelKind

    entry = ModelEntry(
        "/models/xl.safetensors",
        ModelKind.CHECKPOINT,
        Base.SDXL,
        hash="0123456789",
        display_name="XL model",
    )
    picker = FakePicker(entry)
    jobs = JobController(lambda: engine)
    panel = GeneratePanel(lambda: None, jobs, model_picker=picker)
    qtbot.addWidget(panel)
    params = panel.params()
    assert (params.model_path, params.model_name, params.model_hash) == (
        "/models/xl.safetensors",
        "XL model",
        "0123456789",
    )
    assert params.native_size == 1024 and params.vae_path == "/vae/x.safetensors"
    assert panel.model_combo is None and panel.isAncestorOf(picker)
    panel.apply_recipe({"model_path": "/models/other.safetensors", "seed": 3})
    assert picker.asked == ["/models/other.safetensors"]
    picker.entry = None
    picker.checkpoint_changed.emit(None)
    assert panel.params().model_path is None  # the built-in classic engine
    assert jobs.shutdown(5)


def test_generate_again_restores_a_cleared_mask(panel, doc, engine, qtbot):
    paint_mask(doc, Rect(40, 30, 16, 16))
    with qtbot.waitSignal(panel.jobs.finished, timeout=5000):
        panel.generate()
    (layer,) = doc.layers_of(LayerKind.RESULT)
    doc.mask_layer.raster.data[:] = 0  # the user cleared the mask since
    with qtbot.waitSignal(panel.jobs.finished, timeout=5000):
        generate_again(layer, panel)
    again = engine.requests[-1]
    assert again.mask.sum() == engine.requests[0].mask.sum() == 255 * 16 * 16
    assert len(doc.layers_of(LayerKind.RESULT)) == 2


def test_state_is_json_safe_and_restores_into_a_new_panel(panel, doc, qtbot):
    import json

    panel.negative_edit.setPlainText("blurry")
    panel.steps_spin.setValue(9)
    panel.batch_spin.setValue(2)
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData(Workflow.IMG2IMG.value))
    doc.generation_state["other"] = 1
    state = json.loads(json.dumps(panel.state()))  # what a project file keeps
    assert state["other"] == 1
    reopened = Document.blank(64, 64)
    reopened.generation_state = state
    other = GeneratePanel(lambda: reopened, panel.jobs)
    qtbot.addWidget(other)
    params = other.params()
    assert (params.prompt, params.negative_prompt, params.steps, params.batch_size) == (
        "a lighthouse",
        "blurry",
        9,
        2,
    )
    assert params.workflow is Workflow.IMG2IMG


def test_variants_of_a_document_that_is_replaced_are_discarded(panel, doc, engine, qtbot):
    paint_mask(doc, Rect(40, 30, 16, 16))
    panel.batch_spin.setValue(2)
    with qtbot.waitSignal(panel.jobs.finished, timeout=5000):
        panel.generate()
    assert len(panel.jobs.staging) == 2 and doc.preview is not None
    panel.holder["doc"] = Document.blank(64, 64)
    panel.refresh_document()
    assert not panel.jobs.staging.active and doc.preview is None


# ---- settings: recent prompts across sessions, default sampler / steps / guidance ----------


@pytest.fixture
def store(tmp_path):
    from app.settings import SettingsStore

    return SettingsStore(tmp_path / "settings.json")


@pytest.fixture
def make_panel(qtbot, engine, doc):
    """Panels on one job controller, each given the settings store it is asked for."""
    jobs = JobController(lambda: engine, staging=Staging())
    made = []

    def make(store, documents=lambda: doc):
        widget = GeneratePanel(documents, jobs, store=store)
        qtbot.addWidget(widget)
        widget.add_model("/models/fake.safetensors", "fake", "abc1234567", native_size=64)
        made.append(widget)
        return widget

    yield make
    engine.release.set()
    assert jobs.shutdown(10)


def _generate(panel, qtbot, prompt, negative=""):
    panel.prompt_edit.setPlainText(prompt)
    panel.negative_edit.setPlainText(negative)
    with qtbot.waitSignal(panel.jobs.finished, timeout=5000):
        assert panel.generate() is not None


def test_recent_prompts_survive_a_restart(make_panel, store, qtbot):
    from app.settings import SettingsStore

    panel = make_panel(store)
    _generate(panel, qtbot, "a lighthouse", "fog")
    _generate(panel, qtbot, "a harbour\nat dusk")
    _generate(panel, qtbot, "a lighthouse", "fog")  # again: moves to the front, no repeat
    expected = [("a lighthouse", "fog"), ("a harbour\nat dusk", "")]
    assert panel.recent_prompts == expected
    store.flush()  # as the window's shutdown does: the history is written in the background
    restarted = SettingsStore(store.path)  # a new session reads the file
    assert restarted.settings.recent_prompts == tuple(expected)
    later = make_panel(restarted, documents=lambda: None)
    assert later.recent_prompts == expected
    later.history_menu.aboutToShow.emit()
    actions = later.history_menu.actions()
    assert [a.text() for a in actions] == ["a lighthouse", "a harbour at dusk"]  # one line
    actions[0].trigger()
    assert later.prompt_edit.toPlainText() == "a lighthouse"
    assert later.negative_edit.toPlainText() == "fog"


def test_only_the_last_twenty_are_kept(make_panel, store, qtbot):
    store.update(recent_prompts=[[f"prompt {i}", ""] for i in range(20)])
    panel = make_panel(store)
    _generate(panel, qtbot, "the newest", "n")
    saved = store.settings.recent_prompts
    assert len(saved) == 20 and saved[0] == ("the newest", "n")
    assert saved[-1] == ("prompt 18", "") and ("prompt 19", "") not in saved
    assert panel.recent_prompts == list(saved)


def test_a_second_panel_hears_the_history_live(make_panel, store, qtbot):
    first, second = make_panel(store), make_panel(store)
    _generate(first, qtbot, "a red door", "")
    assert second.recent_prompts == [("a red door", "")]


def test_history_that_cannot_be_saved_costs_nothing_else(
    make_panel, store, qtbot, monkeypatch, caplog
):
    import logging
    import os

    panel = make_panel(store)

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with caplog.at_level(logging.WARNING):
        _generate(panel, qtbot, "a lighthouse")
        store.flush()  # the history is written in the background
    assert "could not save the settings" in caplog.text
    assert panel.recent_prompts == [("a lighthouse", "")]
    monkeypatch.undo()
    from app.settings import SettingsStore

    assert SettingsStore(store.path).settings.recent_prompts == ()  # the file as it was


def test_documents_saved_with_plain_prompt_history_still_restore(make_panel, store):
    old = Document.blank(64, 64)
    old.generation_state = {"panel": {"prompt": "x", "recent_prompts": ["old one", "older"]}}
    store.update(recent_prompts=[["from settings", "neg"]])
    panel = make_panel(store, documents=lambda: old)
    assert panel.recent_prompts == [("from settings", "neg"), ("old one", ""), ("older", "")]


def test_defaults_come_from_the_settings_and_follow_them(make_panel, store, engine, qtbot):
    store.update(default_sampler="ddim", default_steps=33, default_guidance=4.5)
    panel = make_panel(store, documents=lambda: None)
    assert panel.sampler_combo.currentData() == Sampler.DDIM.value
    assert (panel.steps_spin.value(), panel.guidance_spin.value()) == (33, 4.5)
    store.update(default_steps=240, default_guidance=42.0, default_sampler="UniPC")
    assert panel.sampler_combo.currentData() == Sampler.UNIPC.value
    assert (panel.steps_spin.value(), panel.guidance_spin.value()) == (240, 42.0)
    panel.steps_spin.setValue(6)  # the user's own choice stays through unrelated changes
    store.update(mask_color="#00ff00")
    assert panel.steps_spin.value() == 6
    store.update(default_steps=3)
    assert panel.params().steps == 3


def test_a_generation_uses_the_default_steps(make_panel, store, engine, doc, qtbot):
    store.update(default_steps=5, default_guidance=3.0)
    panel = make_panel(store)
    _generate(panel, qtbot, "a lighthouse")
    assert (engine.requests[-1].steps, engine.requests[-1].guidance) == (5, 3.0)


def test_a_document_state_wins_over_the_defaults(make_panel, store):
    reopened = Document.blank(64, 64)
    reopened.generation_state = {"panel": {"steps": 9, "prompt": "saved"}}
    store.update(default_steps=33)
    panel = make_panel(store, documents=lambda: reopened)
    assert panel.steps_spin.value() == 9


def test_a_closed_panel_stops_listening(store, engine, qtbot, caplog):
    import logging

    from shiboken6 import delete

    jobs = JobController(lambda: engine)
    panel = GeneratePanel(lambda: None, jobs, store=store)  # not given to qtbot: deleted here
    delete(panel)
    with caplog.at_level(logging.ERROR):
        store.update(default_steps=44)
    assert "listener" not in caplog.text
    assert jobs.shutdown(5)


def test_without_a_store_nothing_is_written(panel, qtbot, tmp_path):
    with qtbot.waitSignal(panel.jobs.finished, timeout=5000):
        panel.generate()
    assert panel.recent_prompts == [("a lighthouse", "")]
    assert panel.steps_spin.value() == 4 and panel.sampler_combo.currentIndex() == 0


# ---- LoRAs: picked in the panel, sent with the request, kept in recipes and states ----------


@pytest.fixture
def library(qtbot, tmp_path):
    """A scanned model library: an SD1 and an SDXL checkpoint and a LoRA for each."""
    from app.library import ModelLibrary
    from tests.inference import test_library_fakes as fakes

    root = tmp_path / "models"
    fakes.write_fake_safetensors(root / "sd15.safetensors", fakes.sd1_checkpoint())
    fakes.write_fake_safetensors(root / "sdxl.safetensors", fakes.sdxl_checkpoint())
    fakes.write_fake_safetensors(root / "Lora" / "ink15.safetensors", fakes.kohya_lora_sd1())
    fakes.write_fake_safetensors(root / "Lora" / "chromexl.safetensors", fakes.kohya_lora_sdxl())
    scanner = ModelLibrary(folders=[root], include_hf_cache=False, cache_path=tmp_path / "c")
    with qtbot.waitSignal(scanner.scan_finished, timeout=10_000):
        scanner.rescan()
    scanner.root = root
    yield scanner
    assert scanner.shutdown()


@pytest.fixture
def lora_panel(qtbot, engine, doc, library):
    from widgets.model_picker import ModelPicker

    jobs = JobController(lambda: engine, staging=Staging())
    picker = ModelPicker(library, show_controlnet=False)
    holder = {"doc": doc}
    widget = GeneratePanel(lambda: holder["doc"], jobs, picker)
    widget.holder = holder
    qtbot.addWidget(widget)
    assert picker.set_checkpoint_path(str(library.root / "sd15.safetensors"))
    widget.steps_spin.setValue(2)
    widget.prompt_edit.setPlainText("a lighthouse")
    yield widget
    engine.release.set()
    assert jobs.shutdown(10)


def lora_path(library, name: str) -> str:
    import os

    return os.path.abspath(library.root / "Lora" / f"{name}.safetensors")


def test_lora_list_sits_below_the_model_picker_and_follows_its_base(lora_panel, library):
    picker = lora_panel.lora_picker
    assert picker is not None and lora_panel.isAncestorOf(picker)
    layout = picker.parentWidget().layout()  # the scrolling settings body
    assert layout.indexOf(picker) == layout.indexOf(lora_panel.model_picker) + 1
    picker.add_menu.aboutToShow.emit()
    assert [a.text().split("  —  ")[0] for a in picker.add_menu.actions()] == ["ink15"]
    lora_panel.model_picker.set_checkpoint_path(str(library.root / "sdxl.safetensors"))
    picker.add_menu.aboutToShow.emit()
    assert [a.text().split("  —  ")[0] for a in picker.add_menu.actions()] == ["chromexl"]


def test_chosen_loras_go_into_the_request_and_the_result_recipe(
    lora_panel, library, doc, engine, qtbot
):
    from inference.loras import lora_hash

    ink = lora_path(library, "ink15")
    lora_panel.lora_picker.add_lora(ink, 0.65)
    paint_mask(doc, Rect(40, 30, 16, 16))
    with qtbot.waitSignal(lora_panel.jobs.finished, timeout=5000):
        assert lora_panel.generate() is not None
    assert engine.requests[-1].loras == ((ink, 0.65),)
    (layer,) = doc.layers_of(LayerKind.RESULT)
    assert layer.recipe["loras"] == [
        {"name": "ink15", "weight": 0.65, "hash": lora_hash(ink), "path": ink}
    ]
    text = copy_parameters(layer)  # the tags live in the A1111 text, not in the stored recipe
    assert text.startswith("a lighthouse <lora:ink15:0.65>\n")
    assert f'Lora hashes: "ink15: {lora_hash(ink)}"' in text
    lora_panel.lora_picker.rows[0].enable_check.setChecked(False)  # switched off: not sent
    with qtbot.waitSignal(lora_panel.jobs.finished, timeout=5000):
        lora_panel.generate()
    assert engine.requests[-1].loras == ()
    assert "loras" not in doc.layers_of(LayerKind.RESULT)[-1].recipe


def test_generate_again_brings_the_recipe_loras_back(lora_panel, library, doc, engine, qtbot):
    ink = lora_path(library, "ink15")
    lora_panel.lora_picker.add_lora(ink, 1.5)
    paint_mask(doc, Rect(40, 30, 16, 16))
    with qtbot.waitSignal(lora_panel.jobs.finished, timeout=5000):
        lora_panel.generate()
    (layer,) = doc.layers_of(LayerKind.RESULT)
    lora_panel.lora_picker.set_loras([])
    with qtbot.waitSignal(lora_panel.jobs.finished, timeout=5000):
        generate_again(layer, lora_panel)
    assert engine.requests[-1].loras == ((ink, 1.5),)
    assert lora_panel.lora_picker.loras() == ((ink, 1.5),)
    lora_panel.apply_recipe({"prompt": "no lora", "seed": 1})  # a recipe without LoRAs clears
    assert lora_panel.lora_picker.loras() == ()
    lora_panel.apply_recipe({"loras": [{"name": "ink15", "weight": 0.4}, {"name": "nope"}]})
    assert lora_panel.lora_picker.loras() == ((ink, 0.4),)  # found by name in the library
    assert "Not in the model library: nope" in lora_panel.lora_picker.note_label.text()


def test_loras_survive_in_the_document_state(lora_panel, library, doc, qtbot):
    import json

    from widgets.model_picker import ModelPicker

    ink, xl = lora_path(library, "ink15"), lora_path(library, "chromexl")
    lora_panel.lora_picker.set_loras([(ink, 0.25), (xl, -1.0, False)])
    state = json.loads(json.dumps(lora_panel.state()))
    assert state["session"]["loras"] == [[ink, 0.25, True], [xl, -1.0, False]]
    reopened = Document.blank(64, 64)
    reopened.generation_state = state
    other = GeneratePanel(lambda: reopened, lora_panel.jobs, ModelPicker(library))
    qtbot.addWidget(other)
    assert other.lora_picker.rows_state() == [[ink, 0.25, True], [xl, -1.0, False]]
    old = Document.blank(64, 64)  # saved before LoRAs existed: the list stays as it is
    old.generation_state = {"panel": {"prompt": "old", "steps": 3}}
    other._documents = lambda: old
    other.refresh_document()
    assert other.prompt_edit.toPlainText() == "old" and other.lora_picker.loras() == ((ink, 0.25),)


def test_the_classic_engine_ignores_loras_with_a_note(lora_panel, library, doc, engine, qtbot):
    ink = lora_path(library, "ink15")
    lora_panel.lora_picker.add_lora(ink)
    assert not lora_panel.lora_picker.note_label.isVisibleTo(lora_panel)
    lora_panel.model_picker.set_checkpoint_path(None)  # the built-in classic engine
    note = lora_panel.lora_picker.note_label
    assert note.isVisibleTo(lora_panel) and "classic engine ignores LoRAs" in note.text()
    assert lora_panel.params().loras == ()
    paint_mask(doc, Rect(40, 30, 16, 16))
    with qtbot.waitSignal(lora_panel.jobs.finished, timeout=5000):
        lora_panel.generate()
    assert engine.requests[-1].model_path is None and engine.requests[-1].loras == ()
    assert lora_panel.lora_picker.rows_state() == [[ink, 0.8, True]]  # kept for later
    lora_panel.model_picker.set_checkpoint_path(str(library.root / "sd15.safetensors"))
    assert not note.isVisibleTo(lora_panel) and lora_panel.params().loras == ((ink, 0.8),)


def test_a_missing_lora_file_is_explained_before_queueing(lora_panel, library, doc, tmp_path):
    lora_panel.lora_picker.add_lora(str(tmp_path / "deleted.safetensors"))
    paint_mask(doc, Rect(40, 30, 16, 16))
    assert lora_panel.generate() is None
    assert "LoRA not found" in lora_panel.message_label.text()
    assert not lora_panel.jobs.busy


def test_without_a_library_there_is_no_lora_list(panel):
    assert panel.lora_picker is None and panel.params().loras == ()
