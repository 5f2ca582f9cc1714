"""Layers panel: every control changes the model through undoable document calls."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QApplication

from app.document import Document
from app.geometry import Rect
from app.io.ora import save_ora
from app.layers import LayerKind
from app.raster import Raster
from widgets.layers_panel import DEPTH_ROLE, ID_ROLE, LayersPanel, layer_thumbnail
from widgets.main_window import MainWindow


@pytest.fixture
def doc() -> Document:
    doc = Document.blank(400, 300, fill=(10, 200, 30, 255))
    doc.add_layer(LayerKind.SKETCH, "Lines")
    doc.history.clear()
    return doc


@pytest.fixture
def panel(qtbot, doc) -> LayersPanel:
    widget = LayersPanel()
    qtbot.addWidget(widget)
    widget.set_document(doc)
    widget.show()
    return widget


def row_names(panel: LayersPanel) -> list[str]:
    return [panel.list.item(row).text() for row in range(panel.list.count())]


def test_list_shows_the_stack_top_first(panel, doc):
    assert row_names(panel) == [layer.name for layer in reversed(doc.layers)]
    assert panel.list.currentItem().data(ID_ROLE) == doc.active_layer_id


def test_visibility_checkbox_is_undoable(panel, doc):
    background = doc.layers[0]
    panel.item_for(background.id).setCheckState(Qt.CheckState.Unchecked)
    assert not background.visible
    QApplication.processEvents()
    doc.history.undo()
    assert background.visible
    QApplication.processEvents()
    assert panel.item_for(background.id).checkState() == Qt.CheckState.Checked


def test_rename_by_editing_the_item(panel, doc):
    sketch = doc.layers_of(LayerKind.SKETCH)[0]
    panel.item_for(sketch.id).setText("Outline")
    assert sketch.name == "Outline"
    QApplication.processEvents()
    assert "Outline" in row_names(panel)


def test_opacity_slider_drag_is_one_undo_step(panel, doc):
    sketch = doc.active_layer
    for value in (90, 70, 50, 35):
        panel.opacity_slider.setValue(value)
    assert sketch.opacity == pytest.approx(0.35)
    assert doc.history.count() == 1
    doc.history.undo()
    assert sketch.opacity == 1.0
    assert panel.opacity_slider.value() == 100


def test_selecting_a_row_activates_the_layer(panel, doc):
    background = doc.layers[0]
    panel.list.setCurrentItem(panel.item_for(background.id))
    assert doc.active_layer_id == background.id
    doc.set_active(doc.layers[-1].id)
    assert panel.list.currentItem().data(ID_ROLE) == doc.layers[-1].id


def test_add_duplicate_delete_buttons(panel, doc):
    count = len(doc.layers)
    panel.add_layer(LayerKind.IMAGE)
    assert len(doc.layers) == count + 1 and doc.active_layer.kind is LayerKind.IMAGE
    panel.duplicate_button.click()
    assert len(doc.layers) == count + 2 and doc.active_layer.name.endswith("copy")
    panel.delete_button.click()
    assert len(doc.layers) == count + 1
    assert panel.list.count() == count + 1


def test_lock_button_locks_the_active_layer(panel, doc):
    panel.lock_button.click()
    assert doc.active_layer.locked
    doc.history.undo()
    assert not doc.active_layer.locked


def test_reorder_by_moving_a_row(panel, doc, qtbot):
    background = doc.layers[0]
    model = panel.list.model()
    last = panel.list.count() - 1
    assert model.moveRow(QModelIndex(), last, QModelIndex(), 0)  # bottom row to the top
    qtbot.waitUntil(lambda: doc.layers[-1].id == background.id, timeout=1000)
    assert row_names(panel)[0] == background.name
    doc.history.undo()
    assert doc.layers[0].id == background.id


def test_move_buttons(panel, doc):
    background = doc.layers[0]
    doc.set_active(background.id)
    panel.up_button.click()
    assert doc.index_of(background.id) == 1
    panel.down_button.click()
    assert doc.index_of(background.id) == 0


def test_thumbnail_follows_painting(panel, doc, qtbot):
    sketch = doc.layers_of(LayerKind.SKETCH)[0]
    before = panel.item_for(sketch.id).icon().pixmap(44, 44).toImage()
    doc.replace_pixels(
        sketch.id, Rect(0, 0, 400, 300), np.full((300, 400, 4), (255, 0, 0, 255), np.uint8), "fill"
    )
    qtbot.waitUntil(
        lambda: panel.item_for(sketch.id).icon().pixmap(44, 44).toImage() != before, timeout=2000
    )


def test_thumbnail_of_a_sparse_layer_on_a_big_canvas_is_sampled(qtbot):
    doc = Document(8000, 6000)
    pixels = np.full((100, 100, 4), 255, np.uint8)
    layer = doc.add_layer(LayerKind.IMAGE, "Patch", Raster(4, pixels, 4000, 3000))
    image = layer_thumbnail(doc, layer).toImage()
    assert image.width() == 44
    # sample step ceil(8000 / 44) = 182: thumbnail pixel (22, 17) samples (4004, 3094)
    top = (44 - 6000 // 182) // 2
    assert image.pixelColor(22, top + 17).getRgb()[:3] == (255, 255, 255)
    assert image.pixelColor(5, top + 10).getRgb()[:3] in ((200, 200, 200), (150, 150, 150))


def test_preview_shows_as_a_row_while_a_generation_runs(panel, doc):
    rows = panel.list.count()
    doc.show_preview(3, Rect(10, 10, 32, 32), np.zeros((32, 32, 3), np.uint8))
    assert panel.list.count() == rows + 1
    top = panel.list.item(0)
    assert "preview" in top.text().lower()
    assert not top.flags() & Qt.ItemFlag.ItemIsSelectable
    doc.show_preview(3, Rect(10, 10, 32, 32), np.full((32, 32, 3), 255, np.uint8))
    assert panel.list.count() == rows + 1
    # moving a layer row still maps onto the right stack index with the preview row on top
    background = doc.layers[0]
    assert panel.list.model().moveRow(QModelIndex(), panel.list.count() - 1, QModelIndex(), 1)
    QApplication.processEvents()
    assert doc.layers[-1].id == background.id
    doc.clear_preview(3)
    assert panel.list.count() == rows


def test_the_preview_row_says_whose_picture_it_shows(panel, doc):
    from app.generation.live import LIVE_PREVIEW_ID
    from app.staging import STAGING_PREVIEW_ID

    pixels = np.zeros((32, 32, 3), np.uint8)
    for owner, words in (
        (7, "Generating"),
        (STAGING_PREVIEW_ID, "Variant (not accepted yet)"),
        (LIVE_PREVIEW_ID, "Live picture (not applied yet)"),
    ):
        doc.show_preview(owner, Rect(10, 10, 32, 32), pixels)
        QApplication.processEvents()
        assert words in panel.list.item(0).text(), owner
        doc.clear_preview(owner)


# ---- blend modes and groups ---------------------------------------------------------------


def test_mode_combo_sets_the_blend_mode_as_one_undo_step(panel, doc, qtbot):
    sketch = doc.layers_of(LayerKind.SKETCH)[0]
    doc.set_active(sketch.id)
    combo = panel.mode_combo
    assert combo.currentData() == "svg:src-over"
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Down)  # keyboard choice: Qt reports it as activated
    assert sketch.blend_mode == combo.currentData() != "svg:src-over"
    doc.history.undo()
    assert sketch.blend_mode == "svg:src-over"
    assert combo.currentData() == "svg:src-over"  # the combo follows the model


def test_unknown_mode_is_listed_as_drawn_normal(panel, doc):
    background = doc.layers[0]
    doc.set_blend_mode(background.id, "krita:linear_burn")
    doc.set_active(background.id)
    assert "drawn as Normal" in panel.mode_combo.currentText()


def test_group_rows_are_indented_and_fold(panel, doc, qtbot):
    sketch = doc.layers_of(LayerKind.SKETCH)[0]
    group = doc.group_layers([sketch.id])
    assert row_names(panel)[:3] == ["Inpaint mask", "Group", "Lines"]
    assert panel.item_for(sketch.id).data(DEPTH_ROLE) == 1
    assert panel.mode_combo.itemData(0) == "pass-through"  # groups offer pass-through
    arrow = panel.list.fold_arrow_rect(panel.item_for(group.id)).center()
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=arrow)
    assert doc.layer(group.id).collapsed and "Lines" not in row_names(panel)
    arrow = panel.list.fold_arrow_rect(panel.item_for(group.id)).center()
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=arrow)
    assert "Lines" in row_names(panel)


def test_dragging_a_row_under_an_open_group_puts_it_in(panel, doc, qtbot):
    sketch = doc.layers_of(LayerKind.SKETCH)[0]
    background = doc.layers[0]
    group = doc.group_layers([sketch.id])
    rows = row_names(panel)
    model = panel.list.model()
    source = rows.index("Background")
    assert model.moveRow(QModelIndex(), source, QModelIndex(), rows.index("Group") + 1)
    qtbot.waitUntil(lambda: background.parent_id == group.id, timeout=1000)
    assert row_names(panel)[:4] == ["Inpaint mask", "Group", "Background", "Lines"]
    doc.history.undo()
    assert background.parent_id is None


@pytest.fixture
def window(qtbot) -> MainWindow:
    win = MainWindow()
    win.ask_unsaved = lambda action: "discard"  # no modal questions in tests
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_ctrl_g_groups_the_active_layer_and_move_keys_go_in_and_out(window, qtbot):
    doc = window.doc
    active = doc.active_layer
    qtbot.keyClick(window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    group = doc.active_layer
    assert group.kind is LayerKind.GROUP and active.parent_id == group.id
    doc.set_active(active.id)
    qtbot.keyClick(window, Qt.Key.Key_BracketRight, Qt.KeyboardModifier.ControlModifier)
    assert active.parent_id is None  # stepped out above the group
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert active.parent_id == group.id
    doc.set_active(group.id)
    qtbot.keyClick(
        window,
        Qt.Key.Key_G,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert group not in doc.layers and active.parent_id is None


def test_opening_a_file_with_an_unknown_mode_says_so_once(window, tmp_path):
    source = Document.blank(32, 24)
    source.layers[0].blend_mode = "krita:linear_burn"
    path = tmp_path / "odd.ora"
    save_ora(source, path)
    told: list[str] = []
    assert window.open_path(path)
    window.doc.notice.connect(told.append)
    assert "krita:linear_burn" in window.statusBar().currentMessage()
    window.doc.report_unknown_modes()
    assert told == []  # once per document


def test_ctrl_click_selects_several_layers_and_ctrl_g_groups_them(window, qtbot):
    doc = window.doc
    doc.add_layer(LayerKind.IMAGE, "Upper")
    panel = window.layers_panel
    names = {layer.name: layer for layer in doc.layers}
    viewport = panel.list.viewport()
    for name, modifier in (
        ("Upper", Qt.KeyboardModifier.NoModifier),
        ("Background", Qt.KeyboardModifier.ControlModifier),
    ):
        center = panel.list.visualItemRect(panel.item_for(names[name].id)).center()
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, modifier, center)
    assert sorted(panel.selected_layer_ids()) == sorted([names["Upper"].id, names["Background"].id])
    qtbot.keyClick(window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    group = doc.active_layer
    assert group.kind is LayerKind.GROUP
    assert names["Upper"].parent_id == group.id and names["Background"].parent_id == group.id
    assert doc.mask_layer.parent_id is None  # not selected, not grouped
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert names["Upper"].parent_id is None and group not in doc.layers
