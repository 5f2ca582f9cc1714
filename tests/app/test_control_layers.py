import numpy as np
import pytest

from app import control_layers
from app.document import Document
from app.geometry import Rect
from app.layers import LayerKind
from app.raster import Raster
from inference.control_images import ControlImageError


@pytest.fixture
def doc():
    pixels = np.zeros((64, 96, 4), np.uint8)
    pixels[..., 3] = 255
    pixels[16:48, 32:64, :3] = 255  # a white square: four edges
    return Document.from_rgba(pixels)


def test_canny_layer_shows_the_square_edges_and_undoes(doc):
    layer = control_layers.add_canny_layer(doc, 50, 150)
    edges = layer.raster.read(doc.rect)[..., 0]
    assert edges[16:48, 30:34].max() == 255  # left edge of the square
    assert edges[30, 45] == 0 and edges[2, 2] == 0  # inside and outside: no edges
    assert layer.control.control_type == "canny" and layer.control.params["low"] == 50
    doc.history.undo()
    assert doc.layers_of(LayerKind.CONTROL) == []


def test_canny_thresholds_update_is_one_step(doc):
    layer = control_layers.add_canny_layer(doc)
    steps = doc.history.count()
    control_layers.update_canny(doc, layer.id, 10, 20)
    assert doc.history.count() == steps + 1
    assert layer.control.params == {"low": 10.0, "high": 20.0}
    doc.history.undo()
    assert doc.layer(layer.id).control.params["low"] == 100.0


def test_bad_thresholds_change_nothing(doc):
    with pytest.raises(ControlImageError):
        control_layers.add_canny_layer(doc, 200, 100)
    assert doc.history.count() == 0


def test_pose_layer_fits_the_selection(doc):
    doc.set_selection(Raster(1, np.full((40, 20), 255, np.uint8), 10, 12))
    layer = control_layers.add_figure_layer(doc)
    x0, y0, x1, y1 = layer.pose.people[0].bounds()
    assert x0 >= 10 and x1 <= 30 and y0 >= 12 and y1 <= 52
    assert (layer.pose.width, layer.pose.height) == (96, 64)
    assert layer.control.control_type == "openpose"


def test_import_control_image_and_bad_file(doc, tmp_path):
    from PIL import Image

    path = tmp_path / "depth.png"
    Image.fromarray(np.full((10, 20), 128, np.uint8)).save(path)
    layer = control_layers.add_control_image_layer(doc, path, "depth")
    assert layer.raster.rect == Rect(0, 0, 20, 10) and layer.control.control_type == "depth"
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnope")
    from app.image_io import ImageLoadError

    steps = doc.history.count()
    with pytest.raises(ImageLoadError):
        control_layers.add_control_image_layer(doc, broken, "depth")
    assert doc.history.count() == steps


def test_sketch_as_control_toggles(doc):
    sketch = doc.add_layer(LayerKind.SKETCH)
    control_layers.set_layer_as_control(doc, sketch.id, "scribble")
    assert sketch.control.enabled and sketch.control.control_type == "scribble"
    control_layers.set_layer_as_control(doc, sketch.id, None)
    assert not sketch.control.enabled
    doc.history.undo()
    assert sketch.control.enabled


def test_update_canny_records_given_preview_pixels_without_recomputing(doc, monkeypatch):
    layer = control_layers.add_canny_layer(doc)
    shown = np.zeros((doc.height, doc.width, 4), np.uint8)
    shown[..., 3] = 255
    shown[5, 5, :3] = 255

    def no_recompute(*_args):
        raise AssertionError("the edges were computed again")

    monkeypatch.setattr(control_layers, "canny_pixels", no_recompute)
    control_layers.update_canny(doc, layer.id, 12, 34, pixels=shown)
    np.testing.assert_array_equal(layer.raster.read(doc.rect), shown)
    assert layer.control.params == {"low": 12.0, "high": 34.0}
    doc.history.undo()
    assert layer.raster.read(doc.rect)[5, 5, 0] == 0


# ---- the Canny preview: an interactive command (begin / update / commit / revert) ------------


@pytest.fixture
def edges_thread(qtbot):
    from app.background import Background

    background = Background("canny-preview")
    yield background
    assert background.shutdown(5)


def _textured(doc):
    """Squares of low, middle and full contrast: each threshold pair finds other edges."""
    pixels = np.zeros((doc.height, doc.width, 4), np.uint8)
    pixels[..., 3] = 255
    for x, grey in ((4, 30), (36, 90), (68, 255)):
        pixels[16:40, x : x + 24, :3] = grey
    doc.replace_pixels(doc.layers[0].id, doc.rect, pixels, "texture")


def test_a_cancelled_canny_preview_leaves_history_and_pixels_as_they_were(doc, qtbot, edges_thread):
    _textured(doc)
    layer = control_layers.add_canny_layer(doc, 100, 200)
    before = layer.raster.read(doc.rect).tobytes()
    steps, index = doc.history.count(), doc.history.index()
    preview = control_layers.CannyPreview(doc, layer.id, edges_thread)
    preview.update(10, 40)
    qtbot.waitUntil(lambda: preview.showing, timeout=3000)
    shown = layer.raster.read(doc.rect)
    assert shown.tobytes() != before  # the preview is in the layer...
    assert np.array_equal(shown, control_layers.canny_pixels(doc, 10, 40))
    assert (doc.history.count(), doc.history.index()) == (steps, index)  # ...outside the history
    preview.revert()
    assert layer.raster.read(doc.rect).tobytes() == before
    assert (doc.history.count(), doc.history.index()) == (steps, index)
    assert layer.control.params == {"low": 100.0, "high": 200.0}
    preview.update(20, 60)  # a reverted preview shows nothing more
    qtbot.wait(50)
    assert edges_thread.wait(3) and layer.raster.read(doc.rect).tobytes() == before


def test_a_committed_canny_preview_is_one_undo_step(doc, qtbot, edges_thread):
    _textured(doc)
    layer = control_layers.add_canny_layer(doc, 100, 200)
    before = layer.raster.read(doc.rect).tobytes()
    steps = doc.history.count()
    preview = control_layers.CannyPreview(doc, layer.id, edges_thread)
    preview.update(30, 90)
    qtbot.waitUntil(lambda: preview.showing, timeout=3000)
    assert preview.commit(30, 90)
    assert doc.history.count() == steps + 1
    assert np.array_equal(layer.raster.read(doc.rect), control_layers.canny_pixels(doc, 30, 90))
    assert layer.control.params == {"low": 30.0, "high": 90.0}
    doc.history.undo()
    assert layer.raster.read(doc.rect).tobytes() == before
    assert layer.control.params == {"low": 100.0, "high": 200.0}
