"""The assembled workspace: save/open projects, recent files, exports, autosave recovery, settings,
the pose tool from the menu, and a generation landing through the fake engine."""

import re

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QScrollArea

from app.geometry import Rect
from app.io.autosave import AutosaveManager
from app.layers import LayerKind
from app.settings import SettingsStore
from tests.app.fake_engine import FakeEngine
from tests.widgets.pointer_helpers import drag
from widgets.main_window import MainWindow, ToolId
from widgets.workspace import Workspace


@pytest.fixture
def workspace(qtbot, tmp_path):
    window = MainWindow()
    window.ask_unsaved = lambda action: "discard"
    qtbot.addWidget(window)
    engine = FakeEngine()
    ws = Workspace(
        window,
        SettingsStore(tmp_path / "settings.json"),
        engine_factory=lambda: engine,
        autosave_folder=tmp_path / "autosave",
        library_cache=tmp_path / "library.json",
        scan_models=False,
    )
    ws.engine = engine
    yield ws
    ws.shutdown()


def test_save_reopen_round_trip_and_recent(workspace, tmp_path):
    window = workspace.window
    window.new_document(64, 48)
    doc = window.doc
    doc.replace_pixels(doc.mask_layer.id, Rect(8, 8, 10, 10), np.full((10, 10), 255, np.uint8), "m")
    target = tmp_path / "work.ora"
    assert workspace._save_to(target)
    assert target.exists() and not doc.is_modified and doc.path == target
    assert workspace.recent.paths == [str(target.resolve())]
    assert "work" in window.windowTitle()
    window.new_document(10, 10)
    workspace.open_recent(str(target))
    reopened = window.doc
    assert (reopened.width, reopened.height) == (64, 48)
    assert reopened.mask_layer.raster.read(Rect(8, 8, 10, 10)).min() == 255
    assert workspace.save()  # has a path now: no dialog
    assert (tmp_path / "work.ora~").exists()  # the previous version is kept


def test_save_to_missing_folder_reports_and_keeps_document(workspace, tmp_path):
    doc = workspace.window.doc
    doc.add_layer(LayerKind.SKETCH)
    assert not workspace._save_to(tmp_path / "missing" / "x.ora")
    assert doc.is_modified and doc.path is None


def test_exports_and_mask_import(workspace, tmp_path):
    window = workspace.window
    window.new_document(32, 32)
    mask = np.zeros((32, 32), np.uint8)
    mask[4:12, 4:12] = 255
    Image.fromarray(mask, "L").save(tmp_path / "mask.png")
    assert workspace.import_mask(tmp_path / "mask.png")
    assert window.doc.mask_layer.raster.read(Rect(0, 0, 32, 32))[5, 5] == 255
    assert workspace.export("mask", tmp_path / "out_mask.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out_mask.png")), mask)
    assert workspace.export("psd", tmp_path / "out.psd")
    assert not workspace.export("psd", tmp_path / "out.txt")  # error shown, nothing raised


def test_recovery_after_a_crash(qtbot, workspace, tmp_path):
    crashed = AutosaveManager(tmp_path / "autosave")
    from app.document import Document

    lost = Document.blank(40, 30)
    lost.add_layer(LayerKind.SKETCH, name="precious")
    crashed.watch(lost)
    crashed.autosave_now()
    # the crashed session never called shutdown(); pretend its process is gone
    import app.io.autosave as autosave_module

    original = autosave_module._session_alive
    autosave_module._session_alive = lambda session: session == workspace.autosave.session_dir
    try:
        assert workspace.offer_recovery(ask=lambda items: True)
    finally:
        autosave_module._session_alive = original
    assert "precious" in [layer.name for layer in workspace.window.doc.layers]


def test_settings_change_applies_live(workspace):
    workspace.store.update(mask_color="#00ff00", mask_opacity=0.25)
    assert workspace.window.canvas.mask_color.name() == "#00ff00"
    assert workspace.window.canvas.mask_opacity == pytest.approx(0.25)


def test_pose_person_from_menu_action(workspace):
    window = workspace.window
    window.new_document(200, 300)
    window.doc.add_layer(LayerKind.POSE)
    workspace._pose_tool("add_person")
    assert window.current_tool_id is ToolId.POSE
    pose = window.doc.active_layer.pose
    assert pose is not None and len(pose.people) == 1


def test_generation_lands_a_result_layer_with_a_recipe(qtbot, workspace):
    window = workspace.window
    window.new_document(64, 64)
    doc = window.doc
    doc.replace_pixels(
        doc.mask_layer.id, Rect(16, 16, 16, 16), np.full((16, 16), 255, np.uint8), "m"
    )
    panel = workspace.generate_panel
    panel.refresh_document()
    panel.prompt_edit.setPlainText("a red door")
    panel.steps_spin.setValue(2)
    with qtbot.waitSignal(workspace.jobs.finished, timeout=10_000):
        panel.generate()
    results = doc.layers_of(LayerKind.RESULT)
    assert len(results) == 1 and results[0].recipe["prompt"] == "a red door"
    assert not window.canvas.mask_shown  # the result is seen without the tint over it
    window.select_tool(ToolId.MASK_BRUSH)
    assert window.canvas.mask_shown and window.show_mask_action.isChecked()
    doc.history.undo()
    assert doc.layers_of(LayerKind.RESULT) == []


def test_panel_keeps_following_the_new_document_after_the_old_one_is_gone(qtbot, workspace):
    import gc

    window = workspace.window
    window.new_document(64, 64)
    window.new_document(32, 32)  # the first document loses its last reference
    gc.collect()
    qtbot.wait(200)
    doc = window.doc
    doc.replace_pixels(doc.mask_layer.id, Rect(4, 4, 8, 8), np.full((8, 8), 255, np.uint8), "m")
    qtbot.waitUntil(lambda: "Inpaint" in workspace.generate_panel.mode_label.text(), timeout=2000)


def test_only_engine_settings_changes_replace_the_engine(qtbot, tmp_path):
    built = []

    def factory_for(settings):
        def build():
            built.append(settings)
            return FakeEngine()

        return build

    import widgets.workspace as workspace_module

    original = workspace_module.default_engine_factory
    workspace_module.default_engine_factory = factory_for
    window = MainWindow()
    qtbot.addWidget(window)
    try:
        ws = Workspace(
            window,
            SettingsStore(tmp_path / "settings.json"),
            autosave_folder=tmp_path / "autosave",
            library_cache=tmp_path / "library.json",
            scan_models=False,
        )
        replaced = []
        ws.jobs.set_engine_factory = lambda factory: replaced.append(factory)
        ws.store.update(mask_opacity=0.3)  # not an engine setting
        ws.store.update(recent_prompts=(("a cat", ""),))
        assert replaced == []
        ws.store.update(vae_tiling=True)
        assert len(replaced) == 1
        ws.shutdown()
    finally:
        workspace_module.default_engine_factory = original


def test_a_model_dropped_on_the_window_joins_the_library(workspace, tmp_path):
    from tests.tiny_models import save_tiny_single_file

    model = save_tiny_single_file(tmp_path / "dropped-model.safetensors")
    doc = workspace.window.doc
    assert workspace.window.handle_dropped_path(str(model))
    assert workspace.window.doc is doc  # not opened as a document
    chosen = workspace.picker.checkpoint()
    assert chosen is not None and chosen.path == str(model)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    assert workspace.window.handle_dropped_path(str(broken))
    assert "cannot be used" in workspace.window.statusBar().currentMessage()


def _show_active(qtbot, window) -> None:
    window.show()
    with qtbot.waitActive(window):
        window.activateWindow()


def _click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(6, 6))


def test_tool_keys_reach_the_tools_from_spin_and_combo_boxes_but_not_the_prompt(qtbot, workspace):
    window = workspace.window
    panel = workspace.generate_panel
    _show_active(qtbot, window)
    steps = panel.steps_spin.value()
    _click(qtbot, panel.steps_spin)
    assert QApplication.focusWidget() is panel.steps_spin
    qtbot.keyClick(panel.steps_spin, Qt.Key.Key_B)
    assert window.current_tool_id is ToolId.SKETCH_PEN
    assert panel.steps_spin.value() == steps
    qtbot.keyClick(panel.steps_spin, Qt.Key.Key_M)
    assert window.current_tool_id is ToolId.MASK_BRUSH

    qtbot.mouseMove(window.canvas, window.canvas.rect().center())  # hovering the canvas
    assert QApplication.focusWidget() is window.canvas

    combo = panel.model_combo or panel.sampler_combo
    _click(qtbot, combo)  # opens the popup; closing it leaves focus on the combo
    combo.hidePopup()
    _show_active(qtbot, window)
    assert QApplication.focusWidget() is combo
    qtbot.keyClick(combo, Qt.Key.Key_B)
    assert window.current_tool_id is ToolId.SKETCH_PEN

    window.select_tool(ToolId.MASK_BRUSH)
    _click(qtbot, panel.prompt_edit)
    assert QApplication.focusWidget() is panel.prompt_edit
    qtbot.keyClick(panel.prompt_edit, Qt.Key.Key_B)
    assert window.current_tool_id is ToolId.MASK_BRUSH  # typing, not switching tools
    assert panel.prompt_edit.toPlainText().endswith("b")
    qtbot.mouseMove(window.canvas, window.canvas.rect().center() + QPoint(5, 5))
    assert QApplication.focusWidget() is panel.prompt_edit  # hovering does not steal the text
    _click(qtbot, window.canvas)
    assert QApplication.focusWidget() is window.canvas
    qtbot.keyClick(window.canvas, Qt.Key.Key_B)
    assert window.current_tool_id is ToolId.SKETCH_PEN


def _generate(qtbot, workspace, rect=Rect(16, 16, 16, 16), steps: int = 2) -> None:
    doc = workspace.window.doc
    doc.replace_pixels(doc.mask_layer.id, rect, np.full((rect.h, rect.w), 255, np.uint8), "m")
    panel = workspace.generate_panel
    panel.refresh_document()
    panel.prompt_edit.setPlainText("a red door")
    panel.steps_spin.setValue(steps)
    with qtbot.waitSignal(workspace.jobs.finished, timeout=10_000):
        panel.generate()


def test_a_landed_result_is_active_and_a_new_sketch_goes_above_it(qtbot, workspace):
    window = workspace.window
    window.new_document(64, 64)
    _show_active(qtbot, window)
    _generate(qtbot, workspace)
    doc = window.doc
    result = doc.layers_of(LayerKind.RESULT)[0]
    assert doc.active_layer is result
    window.canvas.fit()
    qtbot.keyClick(window.canvas, Qt.Key.Key_B)
    centre = window.canvas.doc_to_widget(24, 24).toPoint()
    drag(window.canvas, [centre, centre + QPoint(20, 0)])
    sketch = doc.layers_of(LayerKind.SKETCH)[0]
    assert doc.index_of(sketch.id) > doc.index_of(result.id)  # painted on top, so it is seen
    assert doc.active_layer is sketch


def test_undoing_a_result_shows_the_mask_tint_again(qtbot, workspace):
    window = workspace.window
    window.new_document(64, 64)
    _show_active(qtbot, window)
    _generate(qtbot, workspace)
    assert not window.canvas.mask_shown
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.doc.layers_of(LayerKind.RESULT) == []
    assert window.doc.mask_layer.raster.read(Rect(16, 16, 16, 16)).max() == 255  # still there
    assert window.canvas.mask_shown and window.show_mask_action.isChecked()


def test_the_classic_engine_message_goes_once_a_mask_is_painted(qtbot, workspace):
    window = workspace.window
    window.new_document(200, 150)
    _show_active(qtbot, window)
    panel = workspace.generate_panel
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert panel.message_label.isVisible() and "classic" in panel.message_label.text()
    window.canvas.fit()
    qtbot.keyClick(window.canvas, Qt.Key.Key_M)
    start = window.canvas.doc_to_widget(80, 70).toPoint()
    drag(window.canvas, [start, start + QPoint(30, 10)])
    qtbot.waitUntil(lambda: not panel.message_label.isVisible(), timeout=3000)


def test_done_with_variants_goes_after_accept(qtbot, workspace):
    window = workspace.window
    window.new_document(64, 64)
    _show_active(qtbot, window)
    workspace.generate_panel.batch_spin.setValue(3)
    _generate(qtbot, workspace)
    label = workspace.generate_panel.progress_label
    assert label.text() == "Done: 3 variants to choose from"
    qtbot.mouseClick(workspace.strip.accept_button, Qt.MouseButton.LeftButton)
    assert len(window.doc.layers_of(LayerKind.RESULT)) == 1
    assert "variants" not in label.text()


def test_status_counts_every_waiting_variant_and_the_layers_row_says_what_it_shows(
    qtbot, workspace
):
    window = workspace.window
    window.new_document(64, 64)
    _show_active(qtbot, window)
    panel = workspace.generate_panel
    panel.batch_spin.setValue(2)
    _generate(qtbot, workspace)
    _generate(qtbot, workspace)  # a second batch joins the first in the strip
    assert len(workspace.jobs.staging) == 4
    assert panel.progress_label.text() == "Done: 4 variants to choose from"
    rows = window.layers_panel.list
    top = rows.item(0).text()
    assert "Variant" in top and "Generating" not in top  # the variant shown, not a running job
    workspace.jobs.staging.accept([0, 2])  # lands two, the others are dropped
    assert panel.progress_label.text() == "Done"
    assert all("Variant" not in rows.item(i).text() for i in range(rows.count()))


class ScaledStepsEngine(FakeEngine):
    """Reports steps as img2img does: ``steps × strength`` of them."""

    def run(self, request, on_preview=None, cancel=None):
        total = int(request.steps * request.strength)
        for step in range(1, total + 1):
            if on_preview is not None:
                on_preview(step, total, np.zeros((8, 8, 3), np.uint8))
        return super().run(request, None, cancel)


def test_progress_says_why_there_are_fewer_steps(qtbot, tmp_path):
    window = MainWindow()
    window.ask_unsaved = lambda action: "discard"
    qtbot.addWidget(window)
    ws = Workspace(
        window,
        SettingsStore(tmp_path / "settings.json"),
        engine_factory=ScaledStepsEngine,
        autosave_folder=tmp_path / "autosave",
        library_cache=tmp_path / "library.json",
        scan_models=False,
    )
    try:
        window.new_document(64, 64)
        panel = ws.generate_panel
        texts = []
        panel.status_message.connect(texts.append)
        panel.strength_spin.setValue(0.75)
        _generate(qtbot, ws, steps=8)
        assert any(re.match(r"Step \d/6 \(8 × strength 0.75\) · ", t) for t in texts), texts
    finally:
        ws.shutdown()


def test_control_step_range_reads_and_takes_percent(qtbot, workspace):
    from app.layers import ControlSettings
    from app.raster import Raster

    window = workspace.window
    window.new_document(32, 32)
    layer = window.doc.add_layer(
        LayerKind.CONTROL,
        "Depth",
        raster=Raster(4, np.full((32, 32, 4), 128, np.uint8)),
        control=ControlSettings("depth"),
    )
    _show_active(qtbot, window)
    workspace.control_dock.raise_()
    panel = workspace.control_panel
    qtbot.waitUntil(lambda: panel.end_spin.isVisible())
    assert (panel.start_spin.text(), panel.end_spin.text()) == ("0 %", "100 %")
    _click(qtbot, panel.end_spin)
    panel.end_spin.selectAll()
    qtbot.keyClicks(panel.end_spin, "35")
    qtbot.keyClick(panel.end_spin, Qt.Key.Key_Return)
    assert window.doc.layer(layer.id).control.end == pytest.approx(0.35)
    assert panel.end_spin.text() == "35 %"


def test_adding_a_model_folder_picks_a_model_and_inpaint_uses_its_inpaint_partner(
    qtbot, workspace, tmp_path
):
    from tests.inference import test_library_fakes as fakes

    folder = tmp_path / "models"
    fakes.write_fake_safetensors(folder / "dreamshaper_8.safetensors", fakes.sd1_checkpoint())
    fakes.write_fake_safetensors(
        folder / "dreamshaper_8_inpainting.safetensors", fakes.sd1_checkpoint(inpaint=True)
    )
    picker, panel = workspace.picker, workspace.generate_panel
    assert picker.checkpoint() is None  # the built-in classic engine
    with qtbot.waitSignal(workspace.scanner.scan_finished, timeout=10_000):
        workspace.store.update(model_folders=[str(folder)], include_hf_cache=False)
    qtbot.waitUntil(lambda: picker.checkpoint() is not None, timeout=5000)
    assert picker.checkpoint().path.endswith("dreamshaper_8.safetensors")

    window = workspace.window
    window.new_document(64, 64)
    panel.refresh_document()
    assert panel.params().model_path.endswith("dreamshaper_8.safetensors")  # no mask: img2img
    doc = window.doc
    doc.replace_pixels(doc.mask_layer.id, Rect(8, 8, 8, 8), np.full((8, 8), 255, np.uint8), "m")
    qtbot.waitUntil(lambda: panel.workflow is not None and panel.workflow.name == "INPAINT")
    assert panel.params().model_path.endswith("dreamshaper_8_inpainting.safetensors")
    assert picker.checkpoint().path.endswith("dreamshaper_8.safetensors")  # the choice stays


def test_layers_generate_and_control_are_seen_together_and_the_prompt_never_scrolls(
    qtbot, workspace
):
    window = workspace.window
    window.resize(1600, 1000)
    _show_active(qtbot, window)
    generate, control, layers = workspace.generate_dock, workspace.control_dock, window.layers_dock
    assert window.tabifiedDockWidgets(generate) == []  # not tabs of one panel
    for dock in (generate, control, layers):
        assert dock.isVisible() and not dock.visibleRegion().isEmpty()
    assert layers.geometry().bottom() < generate.geometry().top()
    assert generate.geometry().bottom() < control.geometry().top()
    rows = window.layers_panel.list
    row_height = max(rows.sizeHintForRow(0), 1)
    assert rows.viewport().height() >= 4 * row_height  # room for the mask, results, sketch…
    panel = workspace.generate_panel
    scroll = next(w for w in panel.findChildren(QScrollArea))
    assert scroll.viewport().height() >= 180  # the settings get a usable height (was ~70 px)
    scroll.verticalScrollBar().setValue(scroll.verticalScrollBar().maximum())
    for widget in (panel.prompt_edit, panel.generate_button, panel.mode_combo):
        assert not widget.visibleRegion().isEmpty(), widget


def test_opening_the_variants_strip_refits_the_picture(qtbot, workspace):
    window = workspace.window
    window.resize(1400, 900)
    window.new_document(640, 640)
    _show_active(qtbot, window)
    window.canvas.fit()
    workspace.generate_panel.batch_spin.setValue(2)
    _generate(qtbot, workspace)
    qtbot.waitUntil(lambda: workspace.variants_dock.isVisible())
    canvas = window.canvas
    qtbot.waitUntil(lambda: canvas.doc_to_widget(0, 640).y() <= canvas.height())
    bottom = canvas.doc_to_widget(320, 640)
    assert 0 <= bottom.y() <= canvas.height()  # the picture's bottom is on screen


def test_save_and_export_suggest_the_opened_files_name_and_folder(
    qtbot, workspace, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QFileDialog

    folder = tmp_path / "holiday"
    folder.mkdir()
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(folder / "photo.png")
    window = workspace.window
    assert window.open_path(folder / "photo.png")
    asked: list[str] = []

    def fake_dialog(_parent, _title, start, _filter=""):
        asked.append(start)
        return "", ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake_dialog)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", fake_dialog)
    workspace.save_as()
    workspace.export("psd")
    window.export_dialog()
    workspace.import_mask()
    assert asked == [
        str(folder / "photo.ora"),
        str(folder / "photo.psd"),
        str(folder / "photo_edited.png"),  # never the original by default
        str(folder),
    ]


def test_picking_a_diffusers_model_imports_the_libraries_while_idle(qtbot, tmp_path):
    """With the real engine, choosing a checkpoint starts the import of torch/diffusers in the
    background, so the first Ctrl+Enter does not wait for it; the classic engine never does."""
    from tests.inference import test_library_fakes as fakes

    folder = tmp_path / "models"
    fakes.write_fake_safetensors(folder / "dreamshaper_8.safetensors", fakes.sd1_checkpoint())
    window = MainWindow()
    window.ask_unsaved = lambda action: "discard"
    qtbot.addWidget(window)
    ws = Workspace(
        window,
        SettingsStore(tmp_path / "settings.json"),
        autosave_folder=tmp_path / "autosave",
        library_cache=tmp_path / "library.json",
        scan_models=False,
    )
    try:
        assert not ws._warm_up_timer.isActive()  # built-in classic: nothing to import
        with qtbot.waitSignal(ws.jobs.warmed, timeout=120_000):
            with qtbot.waitSignal(ws.scanner.scan_finished, timeout=10_000):
                ws.store.update(model_folders=[str(folder)], include_hf_cache=False)
            qtbot.waitUntil(lambda: ws.picker.checkpoint() is not None, timeout=5000)
            assert ws._warm_up_timer.isActive()
        assert not ws.jobs.warm_up()  # once per process
    finally:
        ws.shutdown()
