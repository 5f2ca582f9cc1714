"""Strokes, selections and mask operations driven by plain pointer events (no widgets)."""

import numpy as np
import pytest

from app import mask_ops
from app.document import Document
from app.geometry import Rect
from app.layers import LayerKind
from app.tools import (
    BrushSettings,
    BrushTarget,
    BrushTool,
    LassoSelectTool,
    Phase,
    PointerEvent,
    RectSelectTool,
)


def drag(tool, points, pressure=1.0, **mods):
    for i, (x, y) in enumerate(points):
        phase = Phase.PRESS if i == 0 else Phase.RELEASE if i == len(points) - 1 else Phase.MOVE
        tool.handle(PointerEvent(x, y, phase, pressure, **mods))


@pytest.fixture
def doc():
    return Document.blank(256, 256, fill=(50, 60, 70, 255))


def mask_of(doc):
    return doc.mask_layer.raster.read(doc.rect)


def test_mask_stroke_paints_a_line_and_is_one_undo_step(doc):
    tool = BrushTool(doc, BrushTarget.MASK, BrushSettings(size=10, hardness=1.0), "mask")
    drag(tool, [(20, 100), (120, 100), (220, 100)])
    mask = mask_of(doc)
    assert mask[100, 20:221].min() == 255  # continuous line along the path
    assert mask[80].max() == 0 and mask[120].max() == 0  # nothing far from it
    assert doc.history.count() == 1
    doc.history.undo()
    assert mask_of(doc).max() == 0


def test_stroke_opacity_caps_within_a_stroke(doc):
    tool = BrushTool(doc, BrushTarget.MASK, BrushSettings(size=20, hardness=1.0, opacity=0.5), "m")
    drag(tool, [(50, 50)] + [(50 + i * 0.5, 50) for i in range(40)])
    assert mask_of(doc)[50, 50] in (127, 128)


def test_mask_eraser_removes(doc):
    BrushTool(doc, BrushTarget.MASK, BrushSettings(size=40, hardness=1), "m").handle(
        PointerEvent(100, 100, Phase.PRESS)
    )
    eraser = BrushTool(doc, BrushTarget.MASK, BrushSettings(size=10, hardness=1, erase=True), "e")
    drag(eraser, [(100, 100), (100, 100)])
    assert mask_of(doc)[100, 100] == 0 and mask_of(doc)[100, 115] == 255


def test_pressure_changes_dab_size(doc):
    tool = BrushTool(doc, BrushTarget.MASK, BrushSettings(size=40, hardness=1), "m")
    drag(tool, [(60, 60), (60, 60)], pressure=0.25)
    painted = np.argwhere(mask_of(doc) > 0)
    width = painted[:, 1].max() - painted[:, 1].min() + 1
    assert 8 <= width <= 13


def test_sketch_pen_creates_a_sketch_layer_and_paints_colour(doc):
    pen = BrushTool(
        doc, BrushTarget.SKETCH, BrushSettings(size=6, color=(255, 0, 0), hardness=1), "p"
    )
    drag(pen, [(30, 30), (60, 30)])
    sketch = doc.layers_of(LayerKind.SKETCH)[0]
    assert sketch.raster.read(Rect(45, 30, 1, 1))[0, 0].tolist() == [255, 0, 0, 255]
    assert sketch.raster.read(Rect(45, 50, 1, 1))[0, 0, 3] == 0
    assert doc.layers[0].raster.read(Rect(45, 30, 1, 1))[0, 0].tolist() == [50, 60, 70, 255]
    eraser = BrushTool(doc, BrushTarget.SKETCH, BrushSettings(size=6, erase=True, hardness=1), "e")
    drag(eraser, [(45, 30), (45, 30)])
    assert sketch.raster.read(Rect(45, 30, 1, 1))[0, 0, 3] == 0


def test_locked_layer_refuses_strokes(qtbot, doc):
    doc.set_locked(doc.mask_layer.id, True)
    tool = BrushTool(doc, BrushTarget.MASK, BrushSettings(), "m")
    with qtbot.waitSignal(doc.notice) as blocker:
        drag(tool, [(10, 10), (20, 20)])
    assert "locked" in blocker.args[0]
    assert mask_of(doc).max() == 0


def test_cancel_reverts_stroke_in_progress(doc):
    tool = BrushTool(doc, BrushTarget.MASK, BrushSettings(size=10), "m")
    tool.handle(PointerEvent(10, 10, Phase.PRESS))
    tool.handle(PointerEvent(100, 100, Phase.MOVE))
    tool.cancel()
    assert mask_of(doc).max() == 0 and doc.history.count() == 0


def test_undo_of_a_stroke_stores_only_its_dirty_tiles():
    doc = Document.blank(8192, 8192)
    tool = BrushTool(doc, BrushTarget.MASK, BrushSettings(size=32), "m")
    drag(tool, [(4000, 4000), (4100, 4000)])
    command = doc.history.command(0)
    assert command.nbytes < 2 * 4 * 64 * 64 * 4  # a few 64-px tiles, not the 8k canvas


def test_rect_selection_modes(doc):
    tool = RectSelectTool(doc)
    drag(tool, [(10, 10), (50, 40)])
    assert doc.selection.content_rect() == Rect(10, 10, 40, 30)
    drag(tool, [(100, 100), (120, 120)], shift=True)
    assert doc.selection.read(Rect(110, 110, 1, 1))[0, 0] == 255
    assert doc.selection.read(Rect(20, 20, 1, 1))[0, 0] == 255
    drag(tool, [(0, 0), (30, 30)], alt=True)
    assert doc.selection.read(Rect(20, 20, 1, 1))[0, 0] == 0
    doc.history.undo()
    assert doc.selection.read(Rect(20, 20, 1, 1))[0, 0] == 255


def test_lasso_selection_to_mask_add_and_subtract(doc):
    lasso = LassoSelectTool(doc)
    drag(lasso, [(20, 20), (120, 20), (120, 120), (20, 120), (20, 21)])
    mask_ops.selection_to_mask(doc)
    assert mask_of(doc)[70, 70] == 255 and mask_of(doc)[150, 150] == 0
    drag(RectSelectTool(doc), [(60, 60), (80, 80)])
    mask_ops.selection_to_mask(doc, subtract=True)
    assert mask_of(doc)[70, 70] == 0 and mask_of(doc)[30, 30] == 255


def test_mask_fill_invert_grow_shrink_feather(doc):
    drag(RectSelectTool(doc), [(100, 100), (140, 140)])
    mask_ops.fill_mask(doc)
    assert mask_of(doc).sum() // 255 == 40 * 40
    mask_ops.grow_mask(doc, 5)
    assert mask_of(doc)[95, 120] == 255
    mask_ops.shrink_mask(doc, 10)
    assert mask_of(doc)[100, 120] == 0 and mask_of(doc)[120, 120] == 255
    mask_ops.feather_mask(doc, 6)
    edge = mask_of(doc)[105, 120]
    assert 0 < edge < 255
    mask_ops.invert_mask(doc)
    assert mask_of(doc)[0, 0] == 255
    mask_ops.clear_mask(doc)  # clears inside the selection only
    assert mask_of(doc)[120, 120] == 0 and mask_of(doc)[0, 0] == 255
    for _ in range(7):
        doc.history.undo()
    assert mask_of(doc).max() == 0
