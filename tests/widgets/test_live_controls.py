"""The Live controls in the generate panel, clicked and keyed (the fake engine)."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt

from app.generation.jobs import WORKER_THREAD_NAME, JobController
from app.layers import LayerKind
from app.settings import SettingsStore
from tests.app.fake_engine import FakeEngine
from tests.documents import random_photo
from widgets.generate_panel import GeneratePanel
from widgets.live_controls import LiveControls


@pytest.fixture
def panel(qtbot, tmp_path):
    engine = FakeEngine()
    jobs = JobController(lambda: engine)
    doc = random_photo(64, 48, seed=1)
    store = SettingsStore(tmp_path / "settings.json")
    widget = GeneratePanel(lambda: doc, jobs, store=store)
    qtbot.addWidget(widget)
    widget.show()
    widget.add_model("/models/dreamshaper_8_lcm.safetensors", "dreamshaper_8_lcm", native_size=64)
    widget.prompt_edit.setPlainText("a fox")
    widget.steps_spin.setValue(30)
    widget.doc_under_test = doc
    widget.store_under_test = store
    yield widget
    widget.session.live.stop()
    engine.release.set()
    assert jobs.shutdown(10)
    assert not any(t.name == WORKER_THREAD_NAME for t in threading.enumerate())


def controls_of(panel) -> LiveControls:
    found = panel.findChild(LiveControls)
    assert found is not None
    return found


def test_live_button_applies_the_preset_and_gives_the_settings_back(qtbot, panel):
    controls = controls_of(panel)
    assert (
        "LCM" in controls.status_text and controls.few_step_combo.currentText() == "Auto: LCM"
    )  # recognised from the name, before starting
    live = panel.session.live
    with qtbot.waitSignal(live.frame_shown, timeout=5000):
        qtbot.mouseClick(controls.live_button, Qt.MouseButton.LeftButton)
    assert controls.live_button.isChecked() and controls.live_button.text().startswith("● Live")
    assert (panel.sampler_combo.currentText(), panel.steps_spin.value()) == ("LCM", 4)
    qtbot.mouseClick(controls.apply_new_button, Qt.MouseButton.LeftButton)
    doc = panel.doc_under_test
    assert len(doc.layers_of(LayerKind.RESULT)) == 1
    assert doc.active_layer.kind is LayerKind.SKETCH
    qtbot.mouseClick(controls.live_button, Qt.MouseButton.LeftButton)
    assert not live.active and not controls.apply_button.isEnabled()
    assert (panel.sampler_combo.currentText(), panel.steps_spin.value()) == ("Euler a", 30)


def test_marking_the_model_not_few_step_is_kept_in_the_settings(qtbot, panel):
    controls = controls_of(panel)
    combo = controls.few_step_combo
    combo.setFocus()
    for _ in range(combo.count()):  # down to the last entry, as a keyboard user would
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentData() == "off"
    assert panel.store_under_test.settings.few_step_marks == (
        ("/models/dreamshaper_8_lcm.safetensors", "off"),
    )
    assert "not a few-step model" in controls.status_text
    live = panel.session.live
    with qtbot.waitSignal(live.frame_shown, timeout=5000):
        qtbot.mouseClick(controls.live_button, Qt.MouseButton.LeftButton)
    assert live.preset is None and panel.steps_spin.value() == 30  # the user's settings stay


def test_apply_without_a_picture_says_so(qtbot, panel):
    controls = controls_of(panel)
    controls.apply(new_layer=False)
    assert "No live picture" in controls.status_text
    assert not panel.doc_under_test.layers_of(LayerKind.RESULT)
