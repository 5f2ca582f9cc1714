"""The staging strip: thumbnails, click to show on canvas, accept selected, discard."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QItemSelectionModel, Qt

from app.document import Document
from app.geometry import Rect
from app.layers import Layer, LayerKind
from app.raster import Raster
from app.staging import Staging
from widgets.staging_strip import StagingStrip


def variant(seed: int, color: tuple[int, int, int]) -> Layer:
    pixels = np.empty((20, 30, 4), np.uint8)
    pixels[..., :3] = color
    pixels[..., 3] = 255
    return Layer(
        LayerKind.RESULT, f"v · seed {seed}", Raster(4, pixels, 10, 5), recipe={"seed": seed}
    )


@pytest.fixture
def setup(qtbot):
    doc = Document.blank(64, 48)
    staging = Staging()
    strip = StagingStrip(staging)
    qtbot.addWidget(strip)
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    staging.stage(doc, 9, [variant(100 + i, c) for i, c in enumerate(colors)])
    return doc, staging, strip, colors


def shown_color(doc: Document) -> tuple[int, ...]:
    return tuple(int(v) for v in doc.preview.raster.read(Rect(15, 10, 1, 1))[0, 0, :3])


def test_thumbnails_and_click_to_show(setup, qtbot):
    doc, staging, strip, colors = setup
    assert strip.isVisibleTo(strip.parentWidget() or strip)
    assert strip.thumbs.count() == 3 and "seed 101" in strip.thumbs.item(1).text()
    assert not strip.thumbs.item(0).icon().isNull()
    assert shown_color(doc) == colors[0]
    rect = strip.thumbs.visualItemRect(strip.thumbs.item(2))
    strip.show()
    qtbot.mouseClick(strip.thumbs.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert staging.current == 2 and shown_color(doc) == colors[2]
    qtbot.mouseClick(strip.next_button, Qt.MouseButton.LeftButton)  # wraps around
    assert staging.current == 0 and strip.thumbs.currentRow() == 0
    assert shown_color(doc) == colors[0]
    assert not doc.layers_of(LayerKind.RESULT)  # showing is not adding


def test_accept_selected_lands_them_in_one_step(setup, qtbot):
    doc, _staging, strip, _colors = setup
    depth = doc.history.count()
    model = strip.thumbs.selectionModel()
    for row in (0, 2):
        model.select(strip.thumbs.model().index(row, 0), QItemSelectionModel.SelectionFlag.Select)
    qtbot.mouseClick(strip.accept_button, Qt.MouseButton.LeftButton)
    seeds = [layer.recipe["seed"] for layer in doc.layers_of(LayerKind.RESULT)]
    assert seeds == [100, 102] and doc.history.count() == depth + 1
    assert doc.preview is None and strip.thumbs.count() == 0 and not strip.isVisible()
    doc.history.undo()
    assert not doc.layers_of(LayerKind.RESULT)


def test_discard_changes_nothing(setup, qtbot):
    doc, staging, strip, _colors = setup
    depth = doc.history.count()
    qtbot.mouseClick(strip.discard_button, Qt.MouseButton.LeftButton)
    assert doc.history.count() == depth and not doc.layers_of(LayerKind.RESULT)
    assert doc.preview is None and not staging.active


def test_accept_all(setup, qtbot):
    doc, _staging, strip, _colors = setup
    qtbot.mouseClick(strip.accept_all_button, Qt.MouseButton.LeftButton)
    assert len(doc.layers_of(LayerKind.RESULT)) == 3
