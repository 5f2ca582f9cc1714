"""Canvas tiles with groups and blend modes: the one compositor at 1:1, its downsampled twin
zoomed out, and dirty-rectangle repaints of a layer inside a group."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from app import blend
from app.compose import composite
from app.document import Document
from app.geometry import Rect
from app.layers import LayerKind
from app.raster import Raster
from app.tools import BrushSettings, BrushTarget, BrushTool
from tests.widgets.pointer_helpers import drag, photo_pixels
from widgets.canvas import CanvasView


def grouped_doc() -> Document:
    doc = Document.from_rgba(photo_pixels(512, 384))
    rng = np.random.default_rng(4)
    block = rng.integers(0, 256, (150, 201, 4), dtype=np.uint8)
    one = doc.add_layer(LayerKind.IMAGE, "one", Raster(4, block, 37, 53), blend_mode="svg:multiply")
    two = doc.add_layer(
        LayerKind.SKETCH, "two", Raster(4, block[::-1].copy(), 120, 99), blend_mode="svg:hue"
    )
    group = doc.group_layers([one.id, two.id])
    doc.set_opacity(group.id, 0.6)
    doc.set_blend_mode(group.id, "svg:overlay")
    doc.history.clear()
    return doc


def straight_to_premultiplied_bgra(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    out = np.empty(rgba.shape, np.float32)
    out[..., :3] = rgba[..., 2::-1] * alpha
    out[..., 3:] = alpha * 255.0
    return out


def test_full_size_tiles_are_the_flatten(qtbot):
    doc = grouped_doc()
    view = CanvasView()
    qtbot.addWidget(view)
    view.set_mask_shown(False)
    view.set_document(doc)
    rect = Rect(30, 40, 300, 200)
    tile = view._render(rect, 0).astype(np.float32)
    expected = straight_to_premultiplied_bgra(composite(doc.layers, rect))
    assert np.abs(tile - expected).max() <= 1.0


def test_coarse_levels_match_the_box_filtered_full_render(qtbot):
    doc = grouped_doc()
    view = CanvasView()
    qtbot.addWidget(view)
    view.set_document(doc)
    rect = doc.rect
    full = view._render(rect, 0).astype(np.float32)
    for level in (1, 2, 3):
        step = 1 << level
        expected = full.reshape(384 // step, step, 512 // step, step, 4).mean(axis=(1, 3))
        coarse = view._render(rect, level).astype(np.float32)
        # blending downsampled layers is not blending then downsampling: near, not equal,
        # on a noisy layer in non-linear modes (ignoring the modes would be off by ~10)
        group_area = (slice(64 // step, 240 // step), slice(48 // step, 320 // step))
        assert np.abs(coarse - expected)[group_area].mean() <= 2.0, level


def test_hidden_group_hides_its_layers_on_screen(qtbot):
    doc = grouped_doc()
    view = CanvasView()
    qtbot.addWidget(view)
    view.set_document(doc)
    group = next(layer for layer in doc.layers if layer.kind is LayerKind.GROUP)
    doc.set_visible(group.id, False)
    photo = straight_to_premultiplied_bgra(photo_pixels(512, 384))
    assert np.abs(view._render(doc.rect, 0).astype(np.float32) - photo).max() <= 0.5


@pytest.mark.parametrize("mode", ["svg:multiply", "svg:difference"])
def test_painting_inside_a_blended_group_repaints_its_area(qtbot, mode):
    doc = Document.from_rgba(photo_pixels(320, 240))
    layer = doc.add_layer(LayerKind.IMAGE, "paint", blend_mode=mode)
    group = doc.group_layers([layer.id])
    doc.set_blend_mode(group.id, blend.NORMAL)
    doc.set_active(layer.id)
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.set_document(doc)
    view.show()
    qtbot.waitExposed(view)
    view.set_zoom(1.0)
    view._offset = QPointF(10, 20)
    view.set_mask_shown(False)
    view.repaint()
    pen = BrushTool(
        doc, BrushTarget.ACTIVE, BrushSettings(size=9, hardness=1, color=(200, 120, 40)), "p"
    )
    view.set_tool(pen)
    view.grab()  # every tile on screen is cached now
    assert (0, 0, 0) in view._tiles
    view.stats.reset()
    drag(view, [(60, 80), (140, 80)])
    assert doc.layer(layer.id).raster.read(Rect(50, 60, 80, 1))[..., 3].min() == 255
    assert 0 < view.stats.rendered_doc_px < 320 * 240  # only the stroke's area re-rendered
    tile = view._tiles[(0, 0, 0)]
    expected = straight_to_premultiplied_bgra(composite(doc.layers, tile.region))
    assert np.abs(tile.pixels.astype(np.float32) - expected).max() <= 1.0


def test_mask_tint_hides_with_its_group(qtbot):
    doc = Document.from_rgba(photo_pixels(64, 48))
    doc.mask_layer.raster.write(Rect(0, 0, 64, 48), np.full((48, 64), 255, np.uint8))
    group = doc.group_layers([doc.mask_layer.id])
    view = CanvasView()
    qtbot.addWidget(view)
    view.set_document(doc)
    tinted = view._render(doc.rect, 0)
    doc.set_visible(group.id, False)
    plain = straight_to_premultiplied_bgra(photo_pixels(64, 48))
    assert np.abs(tinted.astype(np.float32) - plain).max() > 20
    assert np.abs(view._render(doc.rect, 0).astype(np.float32) - plain).max() <= 0.5


def test_idle_pose_skeleton_hides_with_its_group(qtbot):
    from app.pose_edit import add_pose_layer
    from inference.openpose import Joint, Person, Pose
    from widgets.pose_overlay import PoseOverlayPainter

    doc = Document.blank(128, 128)
    add_pose_layer(doc, Pose(128, 128, (Person.standing(20, 10, 60, 110),)))
    pose_layer = doc.active_layer
    group = doc.group_layers([pose_layer.id])
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(300, 300)
    view.set_document(doc)
    view.show()
    qtbot.waitExposed(view)
    view.set_zoom(2.0)
    view._offset = QPointF(10, 6)
    view.overlay_painters.append(PoseOverlayPainter(lambda: None))
    wrist = pose_layer.pose.people[0].joint(Joint.R_WRIST)
    screen = view.doc_to_widget(wrist.x, wrist.y)

    def shown() -> tuple[int, int, int]:
        color = view.grab().toImage().pixelColor(round(screen.x()), round(screen.y()))
        return color.red(), color.green(), color.blue()

    assert shown() != (255, 255, 255)  # the faint idle skeleton
    doc.set_visible(group.id, False)
    assert shown() == (255, 255, 255)
