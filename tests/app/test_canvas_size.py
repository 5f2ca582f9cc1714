"""Image › Canvas Size and Crop: sizes, anchors, undo, what moves, limits, files."""

from __future__ import annotations

import numpy as np
import pytest

from app import files
from app.canvas_size import (
    Anchor,
    CanvasSizeError,
    anchor_offset,
    crop_canvas,
    grow_to_fit,
    resize_canvas,
)
from app.compose import composite
from app.document import Document
from app.frame import frame_of
from app.geometry import Rect
from app.layers import LayerKind
from app.raster import Raster
from inference.openpose import Person, Pose
from tests.documents import paint_mask, random_photo


def doc_with_layers() -> Document:
    doc = random_photo(64, 48, seed=2)
    sketch = np.zeros((8, 8, 4), np.uint8)
    sketch[..., 0], sketch[..., 3] = 200, 255
    doc.add_layer(LayerKind.IMAGE, "Patch", Raster(4, sketch, 10, 12))
    paint_mask(doc, Rect(4, 4, 6, 6))
    doc.set_selection(Raster(1, np.full((5, 5), 255, np.uint8), 20, 20))
    person = Person.standing(20, 4, 20, 40)
    doc.add_layer(LayerKind.POSE, "Pose", pose=Pose(64, 48, (person,)))
    return doc


@pytest.mark.parametrize(
    ("anchor", "offset"),
    [
        (Anchor.TOP_LEFT, (0, 0)),
        (Anchor.CENTER, (18, 6)),
        (Anchor.BOTTOM_RIGHT, (36, 12)),
        (Anchor.TOP, (18, 0)),
        (Anchor.LEFT, (0, 6)),
    ],
)
def test_anchor_offsets(anchor, offset):
    assert anchor_offset((64, 48), (100, 60), anchor) == offset


def test_resize_moves_every_layer_by_the_anchor_and_undo_restores_it_exactly():
    doc = doc_with_layers()
    before = composite(doc.layers, doc.rect)
    rasters = {layer.id: layer.raster.rect for layer in doc.layers if layer.raster is not None}
    resized = []
    doc.canvas_resized.connect(lambda dx, dy: resized.append((dx, dy)))
    resize_canvas(doc, 100, 60, Anchor.BOTTOM_RIGHT)
    assert (doc.width, doc.height) == (100, 60) and resized == [(36, 12)]
    for layer in doc.layers:
        if layer.raster is not None and not layer.raster.rect.is_empty:
            assert layer.raster.rect == rasters[layer.id].translated(36, 12)
    assert doc.selection.content_rect() == Rect(56, 32, 5, 5)
    after = composite(doc.layers, doc.rect)
    np.testing.assert_array_equal(after[12:, 36:], before)  # the old picture, where it went
    assert (after[:12, :, 3] == 0).all() and (after[:, :36, 3] == 0).all()  # new: transparent
    assert doc.history.count() >= 1 and doc.history.undoText() == "Canvas size"
    doc.history.undo()
    assert (doc.width, doc.height) == (64, 48) and resized[-1] == (-36, -12)
    np.testing.assert_array_equal(composite(doc.layers, doc.rect), before)
    assert doc.selection.content_rect() == Rect(20, 20, 5, 5)


def test_shrinking_keeps_the_pixels_outside_so_undo_and_regrow_lose_nothing():
    doc = random_photo(64, 48, seed=4)
    original = doc.layers[0].raster.data.copy()
    resize_canvas(doc, 32, 24, Anchor.CENTER)
    assert (doc.width, doc.height) == (32, 24)
    assert doc.layers[0].raster.rect == Rect(-16, -12, 64, 48)  # kept, off the canvas
    np.testing.assert_array_equal(
        composite(doc.layers, doc.rect)[..., :3], original[12:36, 16:48, :3]
    )
    resize_canvas(doc, 64, 48, Anchor.CENTER)
    np.testing.assert_array_equal(composite(doc.layers, doc.rect), original)


def test_pose_moves_with_the_canvas():
    doc = random_photo(64, 48)
    person = Person.standing(10, 4, 20, 40)
    x0 = person.body[0].x
    layer = doc.add_layer(LayerKind.POSE, "Pose", pose=Pose(64, 48, (person,)))
    resize_canvas(doc, 80, 48, Anchor.RIGHT)
    pose = doc.layer(layer.id).pose
    assert (pose.width, pose.height) == (80, 48)
    assert pose.people[0].body[0].x == pytest.approx(x0 + 16)
    doc.history.undo()
    pose = doc.layer(layer.id).pose
    assert pose.people[0].body[0].x == pytest.approx(x0) and pose.width == 64


def test_frame_moves_with_the_canvas():
    doc = random_photo(64, 48)
    frame = frame_of(doc)
    frame.set(Rect(0, 0, 64, 64))
    resize_canvas(doc, 96, 48, Anchor.RIGHT)
    assert frame.rect == Rect(32, 0, 64, 64)
    doc.history.undo()
    assert frame.rect == Rect(0, 0, 64, 64)


@pytest.mark.parametrize(
    ("size", "words"),
    [((0, 10), "no area"), ((40000, 10), "at most"), ((20000, 20000), "MP limit")],
)
def test_refused_sizes_say_why_in_one_line_and_change_nothing(size, words):
    doc = random_photo(32, 32)
    with pytest.raises(CanvasSizeError) as error:
        resize_canvas(doc, *size)
    assert words in str(error.value) and "\n" not in str(error.value)
    assert (doc.width, doc.height) == (32, 32) and doc.history.count() == 0


def test_pixel_limit_is_the_callers():
    doc = random_photo(32, 32)
    with pytest.raises(CanvasSizeError, match="MP limit"):
        resize_canvas(doc, 2000, 2000, pixel_limit=1_000_000)


def test_crop_to_a_rectangle_and_undo():
    doc = random_photo(64, 48, seed=5)
    before = composite(doc.layers, doc.rect)
    crop_canvas(doc, Rect(8, 4, 32, 24))
    assert (doc.width, doc.height) == (32, 24)
    np.testing.assert_array_equal(composite(doc.layers, doc.rect), before[4:28, 8:40])
    doc.history.undo()
    np.testing.assert_array_equal(composite(doc.layers, doc.rect), before)
    with pytest.raises(CanvasSizeError, match="nothing to crop"):
        crop_canvas(doc, Rect(0, 0, 0, 10))


def test_grow_to_fit_grows_only_when_needed():
    doc = random_photo(64, 48)
    assert grow_to_fit(doc, Rect(0, 0, 64, 48)) == (0, 0) and doc.history.count() == 0
    assert grow_to_fit(doc, Rect(-16, 40, 32, 16)) == (16, 0)
    assert (doc.width, doc.height) == (80, 56)


@pytest.mark.parametrize("suffix", [".ora", ".psd"])
def test_canvas_size_survives_save_and_reopen(tmp_path, suffix):
    doc = doc_with_layers()
    resize_canvas(doc, 90, 70, Anchor.BOTTOM_RIGHT)
    expected = composite(doc.layers, doc.rect)
    path = tmp_path / f"grown{suffix}"
    if suffix == ".ora":
        files.save_project(doc, path)
    else:
        files.export_psd(doc, path)
    reopened = files.open_document(path)
    assert (reopened.width, reopened.height) == (90, 70)
    patch = next(layer for layer in reopened.layers if layer.name == "Patch")
    assert patch.raster.content_rect() == Rect(36, 34, 8, 8)
    np.testing.assert_array_equal(composite(reopened.layers, reopened.rect), expected)


@pytest.mark.parametrize("suffix", [".ora", ".psd"])
def test_a_shrunk_canvas_survives_save_and_reopen(tmp_path, suffix):
    doc = random_photo(64, 48, seed=9)
    resize_canvas(doc, 40, 30, Anchor.CENTER)  # the photo now reaches past every edge
    expected = composite(doc.layers, doc.rect)
    path = tmp_path / f"shrunk{suffix}"
    if suffix == ".ora":
        files.save_project(doc, path)
    else:
        files.export_psd(doc, path)
    reopened = files.open_document(path)
    assert (reopened.width, reopened.height) == (40, 30)
    np.testing.assert_array_equal(composite(reopened.layers, reopened.rect), expected)
