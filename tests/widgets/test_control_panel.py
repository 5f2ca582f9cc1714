"""Control panel: every control edits the active layer's ControlSettings through the undoable
document API, Canny thresholds preview live and commit once, errors become a message."""

from __future__ import annotations

import numpy as np
import pytest

from app.control_layers import add_canny_layer, canny_pixels
from app.document import Document
from app.geometry import Rect
from app.layers import ControlSettings, LayerKind
from app.raster import Raster
from widgets.control_panel import ControlPanel, guess_control_type, model_path_problem


def _picture(size: int = 96) -> np.ndarray:
    """Soft noise: low Canny thresholds find many edges, high ones few."""
    rng = np.random.default_rng(7)
    coarse = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
    rgb = np.kron(coarse, np.ones((8, 8, 1), np.uint8)).astype(np.float32)
    ramp = np.linspace(0, 60, size, dtype=np.float32)[None, :, None]
    rgb = np.clip(rgb * 0.7 + ramp, 0, 255).astype(np.uint8)
    rgba = np.empty((size, size, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = rgb, 255
    return rgba


@pytest.fixture
def doc() -> Document:
    doc = Document.from_rgba(_picture())
    doc.history.clear()
    return doc


@pytest.fixture
def holder(doc) -> dict[str, Document]:
    return {"doc": doc}


@pytest.fixture
def panel(qtbot, holder) -> ControlPanel:
    widget = ControlPanel(lambda: holder["doc"], preview_delay_ms=1, commit_delay_ms=5)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_disabled_for_layers_that_cannot_be_controls(panel, doc):
    assert doc.active_layer.kind is LayerKind.IMAGE
    assert not panel.settings_box.isEnabled()
    assert panel.hint.isVisible()
    assert not panel.control_actions["sketch_as_scribble"].isEnabled()
    assert panel.control_actions["canny_from_picture"].isEnabled()


def test_follows_the_active_layer(panel, doc):
    canny = add_canny_layer(doc)
    assert panel.settings_box.isEnabled()
    assert panel.type_combo.currentText() == "canny"
    assert panel.canny_box.isVisible()
    doc.set_active(doc.layers[0].id)
    assert not panel.settings_box.isEnabled()
    assert not panel.canny_box.isVisible()
    doc.set_active(canny.id)
    assert panel.settings_box.isEnabled()


def test_weight_slider_changes_the_settings_and_undo_restores_them(panel, doc):
    layer = add_canny_layer(doc)
    steps = doc.history.count()
    panel.weight_slider.setValue(150)
    assert layer.control.weight == pytest.approx(1.5)
    assert doc.history.count() == steps + 1
    assert panel.weight_label.text() == "1.50"
    doc.history.undo()
    assert layer.control.weight == pytest.approx(1.0)
    assert panel.weight_slider.value() == 100
    doc.history.redo()
    assert layer.control.weight == pytest.approx(1.5)


def test_a_weight_drag_is_one_undo_step(panel, doc):
    layer = add_canny_layer(doc)
    steps = doc.history.count()
    panel.weight_slider.setSliderDown(True)
    for value in (110, 130, 170, 40):
        panel.weight_slider.setValue(value)
    assert layer.control.weight == pytest.approx(1.0)  # nothing committed mid-drag
    panel.weight_slider.setSliderDown(False)
    assert layer.control.weight == pytest.approx(0.4)
    assert doc.history.count() == steps + 1


def test_type_enabled_range_and_resize_mode(panel, doc):
    layer = add_control_image_layer_from(doc)
    panel.type_combo.setCurrentText("lineart")
    panel.type_combo.activated.emit(panel.type_combo.currentIndex())
    assert layer.control.control_type == "lineart"
    panel.enabled_check.setChecked(False)
    assert layer.control.enabled is False
    panel.start_spin.setValue(0.2)
    panel.end_spin.setValue(0.1)  # below start: start follows
    assert (layer.control.start, layer.control.end) == (pytest.approx(0.1), pytest.approx(0.1))
    panel.end_spin.setValue(0.8)
    assert layer.control.end == pytest.approx(0.8)
    panel.resize_combo.setCurrentText("resize and fill")
    panel.resize_combo.activated.emit(panel.resize_combo.currentIndex())
    assert layer.control.resize_mode == "resize and fill"
    while doc.history.canUndo():
        doc.history.undo()
    assert layer.control == ControlSettings("depth")


def add_control_image_layer_from(doc: Document):
    layer = doc.add_layer(
        LayerKind.CONTROL,
        "Depth",
        raster=Raster(4, np.full((doc.height, doc.width, 4), 128, np.uint8)),
        control=ControlSettings("depth"),
    )
    doc.history.clear()
    return layer


def test_threshold_drag_previews_live_and_commits_one_undo_step(qtbot, panel, doc):
    layer = add_canny_layer(doc, 100, 200)
    original = layer.raster.read(doc.rect)
    steps = doc.history.count()
    panel.low_slider.setSliderDown(True)
    for value in (60, 30, 10):
        panel.low_slider.setValue(value)
    panel.high_slider.setValue(40)
    expected = canny_pixels(doc, 10, 40)
    assert not np.array_equal(expected, original)
    qtbot.waitUntil(lambda: np.array_equal(layer.raster.read(doc.rect), expected), timeout=3000)
    assert doc.history.count() == steps  # shown live, not yet recorded
    assert layer.control.params == {"low": 100.0, "high": 200.0}

    panel.low_slider.setSliderDown(False)  # release
    assert doc.history.count() == steps + 1
    assert np.array_equal(layer.raster.read(doc.rect), expected)
    assert layer.control.params == {"low": 10.0, "high": 40.0}

    doc.history.undo()
    assert np.array_equal(layer.raster.read(doc.rect), original)
    assert layer.control.params == {"low": 100.0, "high": 200.0}
    assert (panel.low_slider.value(), panel.high_slider.value()) == (100, 200)
    doc.history.redo()
    assert np.array_equal(layer.raster.read(doc.rect), expected)


def test_keyboard_threshold_changes_commit_after_a_pause(qtbot, panel, doc):
    layer = add_canny_layer(doc, 100, 200)
    steps = doc.history.count()
    panel.high_slider.setValue(150)
    panel.high_slider.setValue(120)
    qtbot.waitUntil(lambda: layer.control.params["high"] == 120.0, timeout=3000)
    assert doc.history.count() == steps + 1
    assert np.array_equal(layer.raster.read(doc.rect), canny_pixels(doc, 100, 120))


def test_low_threshold_never_passes_high(panel, doc):
    add_canny_layer(doc, 100, 200)
    panel.low_slider.setValue(230)
    assert panel.high_slider.value() == 230
    panel.high_slider.setValue(50)
    assert panel.low_slider.value() == 50


def test_add_pose_figure_creates_an_active_pose_layer(qtbot, panel, doc):
    with qtbot.waitSignal(panel.tool_requested) as requested:
        layer = panel.add_pose_figure()
    assert requested.args == ["pose"]
    assert layer is not None and layer.kind is LayerKind.POSE
    assert doc.active_layer is layer
    assert len(layer.pose.people) == 1
    assert layer.control.control_type == "openpose"
    assert panel.settings_box.isEnabled()
    assert not panel.type_combo.isEnabled()  # a pose layer is always openpose
    doc.history.undo()
    assert layer not in doc.layers


def test_canny_from_picture_action(panel, doc):
    panel.control_actions["canny_from_picture"].trigger()
    layer = doc.active_layer
    assert layer.kind is LayerKind.CONTROL
    assert np.array_equal(layer.raster.read(doc.rect), canny_pixels(doc, 100, 200))


def test_import_of_a_broken_image_shows_a_message_and_changes_nothing(tmp_path, panel, doc):
    broken = tmp_path / "depth_map.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    layers, steps = list(doc.layers), doc.history.count()
    assert panel.import_control_image(broken) is None
    assert panel.message.isVisible()
    assert "depth_map.png" in panel.message.text()
    assert doc.layers == layers and doc.history.count() == steps


def test_import_of_a_good_image_guesses_its_type(tmp_path, panel, doc):
    from PIL import Image

    path = tmp_path / "room_lineart.png"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(path)
    layer = panel.import_control_image(path)
    assert layer is not None and doc.active_layer is layer
    assert layer.control.control_type == "lineart"
    assert panel.type_combo.currentText() == "lineart"
    assert not panel.message.isVisible()


def test_sketch_as_scribble_control(panel, doc):
    sketch = doc.add_layer(LayerKind.SKETCH, "Lines")
    assert panel.control_actions["sketch_as_scribble"].isEnabled()
    assert not panel.enabled_check.isChecked()
    panel.control_actions["sketch_as_scribble"].trigger()
    assert sketch.control.control_type == "scribble" and sketch.control.enabled
    assert panel.enabled_check.isChecked()
    assert not panel.control_actions["sketch_as_scribble"].isEnabled()
    doc.history.undo()
    assert sketch.control is None


def test_model_path_field_accepts_models_and_rejects_other_files(tmp_path, panel, doc):
    layer = add_canny_layer(doc)
    model = tmp_path / "control_canny.safetensors"
    model.write_bytes(b"x")
    panel.model_edit.setText(str(model))
    panel.model_edit.editingFinished.emit()
    assert layer.control.model_path == str(model.resolve())

    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    steps = doc.history.count()
    assert not panel.set_model_path(str(text_file))
    assert "notes.txt" in panel.message.text()
    assert layer.control.model_path == str(model.resolve())
    assert panel.model_edit.text() == str(model.resolve())
    assert doc.history.count() == steps

    folder = tmp_path / "cn"
    folder.mkdir()
    assert not panel.set_model_path(str(folder))  # no config.json
    (folder / "config.json").write_text("{}")
    assert panel.set_model_path(str(folder))
    assert layer.control.model_path == str(folder.resolve())
    doc.history.undo()
    assert layer.control.model_path == str(model.resolve())


def test_locked_canny_layer_reports_instead_of_changing(qtbot, panel, doc):
    layer = add_canny_layer(doc, 100, 200)
    doc.set_locked(layer.id, True)
    before, steps = layer.raster.read(doc.rect), doc.history.count()
    panel.high_slider.setValue(120)
    qtbot.waitUntil(lambda: "locked" in panel.message.text(), timeout=3000)
    qtbot.wait(20)
    assert np.array_equal(layer.raster.read(doc.rect), before)
    assert doc.history.count() == steps


def test_follows_a_replaced_document(panel, holder, doc):
    add_canny_layer(doc)
    other = Document.blank(64, 48)
    holder["doc"] = other
    panel.sync_document()
    assert panel.doc is other
    assert not panel.settings_box.isEnabled()  # other's active layer is its background
    layer = panel.add_pose_figure()
    assert layer in other.layers
    assert all(existing.kind is not LayerKind.POSE for existing in doc.layers)
    # the old document's changes no longer reach the panel
    doc.set_active(doc.layers[-1].id)
    assert panel.title.text().startswith("<b>Pose")


def test_actions_sync_the_document_without_an_explicit_call(panel, holder):
    other = Document.blank(64, 48)
    holder["doc"] = other
    panel.canny_from_picture()
    assert other.active_layer.kind is LayerKind.CONTROL


def test_helpers():
    assert guess_control_type("photo_depth.png") == "depth"
    assert guess_control_type("Pose-ref.png") == "openpose"
    assert guess_control_type("whatever.png") == "depth"
    assert "not found" in model_path_problem("/nonexistent/cn.safetensors")


def test_library_combo_chooses_a_controlnet_per_layer(qtbot, tmp_path, holder, doc):
    from app.library import ModelLibrary
    from tests.inference import test_library_fakes as fakes

    folder = tmp_path / "models"
    fakes.write_fake_safetensors(folder / "canny15.safetensors", fakes.ldm_controlnet(768))
    fakes.write_fake_safetensors(folder / "depth15.safetensors", fakes.ldm_controlnet(768))
    scanner = ModelLibrary(
        folders=[folder], include_hf_cache=False, cache_path=tmp_path / "cache.json"
    )
    try:
        with qtbot.waitSignal(scanner.scan_finished, timeout=10_000):
            scanner.rescan()
        panel = ControlPanel(lambda: holder["doc"], scanner)
        qtbot.addWidget(panel)
        first, second = add_canny_layer(doc), add_canny_layer(doc)
        combo = panel.model_combo
        row = combo.list_model().row_of(str(folder / "depth15.safetensors"))
        combo.setCurrentIndex(row)
        combo.activated.emit(row)
        assert second.control.model_path == str(folder / "depth15.safetensors")
        assert panel.model_edit.text() == second.control.model_path
        doc.set_active(first.id)
        assert first.control.model_path is None
        assert combo.currentIndex() == 0 and panel.model_edit.text() == ""
        doc.set_active(second.id)
        assert combo.path() == str(folder / "depth15.safetensors")
    finally:
        assert scanner.shutdown()


@pytest.fixture
def slow_panel(qtbot, holder) -> ControlPanel:
    """Previews at once, commits only on release (a very long pause)."""
    widget = ControlPanel(lambda: holder["doc"], preview_delay_ms=1, commit_delay_ms=600_000)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_undo_during_a_preview_puts_the_pixels_back(qtbot, slow_panel, doc):
    layer = add_canny_layer(doc, 100, 200)
    original = layer.raster.read(doc.rect)
    doc.ensure_mask_layer()
    doc.replace_pixels(doc.mask_layer.id, Rect(0, 0, 4, 4), np.full((4, 4), 255, np.uint8), "m")
    steps = doc.history.count()
    slow_panel.high_slider.setValue(120)
    qtbot.waitUntil(lambda: not np.array_equal(layer.raster.read(doc.rect), original))
    doc.history.undo()  # the mask stroke, not the threshold change
    assert np.array_equal(layer.raster.read(doc.rect), original)
    assert layer.control.params["high"] == 200.0
    assert slow_panel.high_slider.value() == 200
    assert doc.history.count() == steps


def test_removing_the_layer_during_a_preview_is_harmless(qtbot, slow_panel, doc):
    layer = add_canny_layer(doc, 100, 200)
    slow_panel.low_slider.setValue(20)
    qtbot.waitUntil(lambda: slow_panel._canny is not None)
    doc.remove_layer(layer.id)
    slow_panel.low_slider.setSliderDown(True)
    slow_panel.low_slider.setSliderDown(False)
    assert layer not in doc.layers
    doc.history.undo()
    assert layer in doc.layers


def test_another_edit_records_a_pending_threshold_change_first(qtbot, slow_panel, doc):
    layer = add_canny_layer(doc, 100, 200)
    steps = doc.history.count()
    slow_panel.high_slider.setValue(120)
    qtbot.waitUntil(lambda: slow_panel._canny is not None)
    slow_panel.weight_slider.setValue(50)
    assert layer.control.params["high"] == 120.0
    assert layer.control.weight == pytest.approx(0.5)
    assert doc.history.count() == steps + 2
    assert np.array_equal(layer.raster.read(doc.rect), canny_pixels(doc, 100, 120))


def test_import_dialog_filter_chooses_the_type(tmp_path, monkeypatch, panel, doc):
    from PIL import Image
    from PySide6.QtWidgets import QFileDialog

    path = tmp_path / "photo_depth.png"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(path)

    def fake_dialog(_parent, _title, _folder, filters, _selected):
        chosen = next(f for f in filters.split(";;") if f.startswith("normal map"))
        return str(path), chosen

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(fake_dialog))
    panel.control_actions["import_control_image"].trigger()
    assert doc.active_layer.control.control_type == "normal"


def test_model_file_dialog_sets_the_path(tmp_path, monkeypatch, panel, doc):
    from PySide6.QtWidgets import QFileDialog

    layer = add_canny_layer(doc)
    model = tmp_path / "cn.safetensors"
    model.write_bytes(b"x")
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", staticmethod(lambda *_args: (str(model), ""))
    )
    panel.choose_model_file()
    assert layer.control.model_path == str(model.resolve())


# ---- edges found off the UI thread ---------------------------------------------------------


@pytest.fixture
def held_canny(monkeypatch):
    """The panel's Canny call records (thread, low, high) and waits for ``release`` while
    ``hold`` is set, so a test can act while edges are being found."""
    import threading

    import app.control_layers as module

    real = module.preview_edges
    calls: list[tuple[threading.Thread, float, float]] = []
    hold, release, started = threading.Event(), threading.Event(), threading.Event()
    transform = {"edges": lambda edges: edges}

    def held(picture, low, high):
        calls.append((threading.current_thread(), low, high))
        started.set()
        if hold.is_set():
            release.wait(10)
        return transform["edges"](real(picture, low, high))

    monkeypatch.setattr(module, "preview_edges", held)
    yield calls, hold, release, started, transform
    release.set()


def test_edges_are_found_off_the_ui_thread(qtbot, panel, doc, held_canny):
    import threading

    calls = held_canny[0]
    layer = add_canny_layer(doc, 100, 200)
    panel.low_slider.setSliderDown(True)
    panel.low_slider.setValue(30)
    expected = canny_pixels(doc, 30, 200)
    qtbot.waitUntil(lambda: np.array_equal(layer.raster.read(doc.rect), expected), timeout=3000)
    assert calls and all(thread is not threading.main_thread() for thread, _, _ in calls)
    panel.low_slider.setSliderDown(False)
    assert layer.control.params == {"low": 30.0, "high": 200.0}


def test_the_newest_thresholds_win_and_stale_edges_are_dropped(qtbot, slow_panel, doc, held_canny):
    calls, hold, release, started, _ = held_canny
    layer = add_canny_layer(doc, 100, 200)
    writes = []
    doc.pixels_changed.connect(lambda layer_id, rect: writes.append(layer_id))
    slow_panel.low_slider.setSliderDown(True)
    hold.set()
    slow_panel.low_slider.setValue(60)
    qtbot.waitUntil(started.is_set, timeout=3000)  # the worker is busy with 60
    slow_panel.low_slider.setValue(30)
    qtbot.wait(30)
    slow_panel.low_slider.setValue(10)
    qtbot.wait(30)
    hold.clear()
    release.set()
    expected = canny_pixels(doc, 10, 200)
    qtbot.waitUntil(lambda: np.array_equal(layer.raster.read(doc.rect), expected), timeout=3000)
    qtbot.waitUntil(lambda: not slow_panel._edges.busy, timeout=3000)
    qtbot.wait(30)
    assert [(low, high) for _, low, high in calls] == [(60, 200), (10, 200)]  # 30 was skipped
    assert writes == [layer.id]  # the result for 60 came too late and was never shown
    slow_panel.low_slider.setSliderDown(False)
    assert layer.control.params == {"low": 10.0, "high": 200.0}


def test_edges_arriving_after_the_release_are_dropped(qtbot, slow_panel, doc, held_canny):
    calls, hold, release, started, transform = held_canny
    layer = add_canny_layer(doc, 100, 200)
    steps = doc.history.count()
    transform["edges"] = lambda edges: 255 - edges  # would show if it were written
    hold.set()
    slow_panel.high_slider.setSliderDown(True)
    slow_panel.high_slider.setValue(120)
    qtbot.waitUntil(started.is_set, timeout=3000)
    slow_panel.high_slider.setSliderDown(False)  # commits while the worker is still busy
    release.set()
    qtbot.waitUntil(lambda: not slow_panel._edges.busy, timeout=3000)
    qtbot.wait(30)  # the queued result, if any, is delivered
    assert len(calls) == 1
    assert np.array_equal(layer.raster.read(doc.rect), canny_pixels(doc, 100, 120))
    assert doc.history.count() == steps + 1
    assert slow_panel._canny is None


def test_the_worker_converts_each_picture_to_rgb_once_and_like_as_rgb():
    from app.control_layers import PictureRgb
    from inference.control_images import as_rgb

    worker = PictureRgb()
    opaque = _picture(32)
    clear = opaque.copy()
    clear[::3, ::2, 3] = 90
    for picture in (opaque, clear):
        rgb = worker.rgb_of(picture)
        assert np.array_equal(rgb, as_rgb(picture))
        assert worker.rgb_of(picture) is rgb  # cached for the drag
    worker.forget()
    assert worker.rgb_of(clear) is not rgb
