"""Depth control layers estimated from the picture by a local depth model (a tiny random DPT
saved as a transformers folder): one undo step, an interactive command whose preview stays out
of the history and whose revert leaves the document byte for byte as it was."""

from __future__ import annotations

import numpy as np
import pytest

from app.background import Background
from app.control_layers import DEPTH_PREVIEW_JOB, DepthEstimate, add_depth_layer, depth_pixels
from app.layers import LayerKind
from tests.documents import random_photo


@pytest.fixture(scope="module")
def dpt(tmp_path_factory):
    from tests.tiny_adapters import save_tiny_depth_model

    return save_tiny_depth_model(tmp_path_factory.mktemp("depth") / "dpt-tiny")


@pytest.fixture
def background(qtbot):
    worker = Background("depth-test")
    yield worker
    worker.shutdown(5)


def _state(doc):
    return [(layer.id, layer.raster.data.copy() if layer.raster else None) for layer in doc.layers]


def _same(a, b) -> bool:
    if len(a) != len(b):
        return False
    pairs = zip(a, b, strict=True)
    return all(x[0] == y[0] and (x[1] is None or np.array_equal(x[1], y[1])) for x, y in pairs)


def test_depth_layer_is_one_undo_step_and_editable(dpt):
    doc = random_photo(48, 40, seed=1)
    layer = add_depth_layer(doc, dpt)
    assert layer.kind is LayerKind.CONTROL and layer.control.control_type == "depth"
    pixels = layer.raster.read(doc.rect)
    assert pixels.shape == (40, 48, 4) and (pixels[..., 3] == 255).all()
    assert (pixels[..., 0] == pixels[..., 1]).all()  # grey
    assert pixels[..., 0].min() == 0 and pixels[..., 0].max() == 255  # stretched
    other = random_photo(48, 40, seed=2)
    assert not np.array_equal(depth_pixels(other, dpt), pixels)  # it reads the picture
    doc.history.undo()
    assert all(x.id != layer.id for x in doc.layers)
    doc.history.redo()
    assert doc.layer(layer.id).kind is LayerKind.CONTROL


def test_the_estimate_previews_outside_history_then_commits_once(qtbot, dpt, background):
    doc = random_photo(48, 40, seed=3)
    steps = doc.history.count()
    before = _state(doc)
    ready = []
    command = DepthEstimate(doc, dpt, background, on_ready=lambda: ready.append(True))
    command.start()
    qtbot.waitUntil(lambda: command.ready, timeout=30_000)
    assert ready and doc.preview is not None and doc.preview_job == DEPTH_PREVIEW_JOB
    assert doc.history.count() == steps and _same(_state(doc), before)  # only a preview
    layer = command.commit()
    assert doc.preview is None and doc.history.count() == steps + 1
    assert np.array_equal(layer.raster.read(doc.rect), depth_pixels(doc, dpt))
    doc.history.undo()
    assert _same(_state(doc), before)


def test_revert_leaves_the_document_byte_for_byte(qtbot, dpt, background):
    doc = random_photo(48, 40, seed=4)
    depth = add_depth_layer(doc, dpt)
    painted = depth.raster.read(doc.rect)
    painted[:10, :10, :3] = 200  # the user painted over the map
    doc.replace_pixels(depth.id, doc.rect, painted, "paint")
    steps, before = doc.history.count(), _state(doc)
    command = DepthEstimate(doc, dpt, background, layer_id=depth.id)
    command.start()
    qtbot.waitUntil(lambda: command.ready, timeout=30_000)
    command.revert()
    assert doc.preview is None and doc.history.count() == steps and _same(_state(doc), before)
    # re-estimating that layer and keeping it is one step, undone byte for byte
    again = DepthEstimate(doc, dpt, background, layer_id=depth.id)
    again.start()
    qtbot.waitUntil(lambda: again.ready, timeout=30_000)
    again.commit()
    assert doc.history.count() == steps + 1
    assert not np.array_equal(doc.layer(depth.id).raster.read(doc.rect), painted)
    doc.history.undo()
    assert _same(_state(doc), before)


def test_a_folder_that_is_no_depth_model_says_so(qtbot, tmp_path, background):
    doc = random_photo(32, 32, seed=5)
    problems = []
    command = DepthEstimate(doc, tmp_path, background, on_problem=problems.append)
    command.start()
    qtbot.waitUntil(lambda: bool(problems), timeout=10_000)
    assert "not a depth-estimation model" in problems[0] and "\n" not in problems[0]
    assert command.commit() is None and doc.preview is None
