import numpy as np
import pytest

from app.compose import composite
from app.document import Document
from app.geometry import Rect
from app.layers import LayerKind
from app.raster import Raster


@pytest.fixture
def doc():
    return Document.blank(64, 48, fill=(10, 20, 30, 255))


def names(doc):
    return [layer.name for layer in doc.layers]


def test_blank_document_has_background_and_mask(doc):
    assert names(doc) == ["Background", "Inpaint mask"]
    assert doc.mask_layer.kind is LayerKind.MASK
    assert doc.mask_layer.raster.nbytes == 0  # empty mask costs nothing
    assert not doc.is_modified


def test_layer_ops_are_undoable(doc):
    sketch = doc.add_layer(LayerKind.SKETCH)
    assert names(doc) == ["Background", "Sketch", "Inpaint mask"]
    assert doc.active_layer_id == sketch.id
    doc.rename_layer(sketch.id, "Lines")
    doc.set_visible(sketch.id, False)
    doc.set_locked(sketch.id, True)
    twin = doc.duplicate_layer(sketch.id)
    doc.move_layer(twin.id, 0)
    assert names(doc) == ["Lines copy", "Background", "Lines", "Inpaint mask"]
    doc.remove_layer(doc.layers[1].id)
    assert names(doc) == ["Lines copy", "Lines", "Inpaint mask"]
    while doc.history.canUndo():
        doc.history.undo()
    assert names(doc) == ["Background", "Inpaint mask"]
    while doc.history.canRedo():
        doc.history.redo()
    assert names(doc) == ["Lines copy", "Lines", "Inpaint mask"]
    lines = doc.layers[1]
    assert (lines.visible, lines.locked) == (False, True)


def test_opacity_slider_drag_merges_into_one_step(doc):
    layer_id = doc.layers[0].id
    for value in (0.9, 0.7, 0.5, 0.3):
        doc.set_opacity(layer_id, value)
    assert doc.history.count() == 1
    doc.history.undo()
    assert doc.layers[0].opacity == 1.0


def test_duplicate_is_deep(doc):
    original = doc.layers[0].raster.data.copy()
    twin = doc.duplicate_layer(doc.layers[0].id)
    twin.raster.data[:] = 0
    np.testing.assert_array_equal(doc.layers[0].raster.data, original)


def test_layer_signals(qtbot, doc):
    with qtbot.waitSignal(doc.layers_changed):
        doc.add_layer(LayerKind.IMAGE)
    with qtbot.waitSignal(doc.pixels_changed) as blocker:
        doc.replace_pixels(doc.layers[0].id, Rect(1, 2, 3, 4), np.zeros((4, 3, 4), np.uint8), "x")
    assert blocker.args[1] == Rect(1, 2, 3, 4)


def test_replace_pixels_undo_restores_bytes(doc):
    layer = doc.layers[0]
    before = layer.raster.data.copy()
    doc.replace_pixels(layer.id, Rect(5, 5, 10, 10), np.full((10, 10, 4), 200, np.uint8), "fill")
    assert layer.raster.read(Rect(5, 5, 10, 10)).min() == 200
    doc.history.undo()
    np.testing.assert_array_equal(layer.raster.data, before)


def test_preview_is_outside_history_and_composite(doc):
    doc.show_preview(7, Rect(0, 0, 8, 8), np.zeros((8, 8, 3), np.uint8))
    assert doc.preview is not None and doc.history.count() == 0
    assert doc.preview not in doc.layers
    doc.clear_preview(job_id=99)  # stale job id: ignored
    assert doc.preview is not None
    doc.clear_preview(job_id=7)
    assert doc.preview is None


def test_composite_respects_opacity_visibility_and_offsets():
    doc = Document.from_rgba(np.full((1, 4, 4), 255, np.uint8))
    black = Raster(4, np.array([[[0, 0, 0, 255]]], np.uint8), 2, 0)
    top = doc.add_layer(LayerKind.IMAGE, raster=black)
    out = composite(doc.layers, doc.rect)
    assert out[0, 2, :3].tolist() == [0, 0, 0] and out[0, 1, :3].tolist() == [255, 255, 255]
    doc.set_opacity(top.id, 0.5)
    assert composite(doc.layers, doc.rect)[0, 2, 0] in (127, 128)
    doc.set_visible(top.id, False)
    assert composite(doc.layers, doc.rect)[0, 2, 0] == 255


def test_opaque_composite_is_byte_identical():
    pixels = np.random.default_rng(1).integers(0, 256, (32, 32, 4), np.uint8)
    pixels[..., 3] = 255
    doc = Document.from_rgba(pixels)
    np.testing.assert_array_equal(composite(doc.layers, doc.rect), pixels)


def test_absurd_sizes_rejected():
    with pytest.raises(ValueError):
        Document(0, 10)
    with pytest.raises(ValueError):
        Document(100_000, 10)
