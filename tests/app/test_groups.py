"""Layer groups: compositing (isolated, pass-through, nested) and editing the stack, undoable."""

from __future__ import annotations

import numpy as np
import pytest

from app import blend
from app.compose import composite
from app.document import Document
from app.generation.request import Workflow, build_request, detect_workflow
from app.geometry import Rect
from app.layers import Layer, LayerKind
from app.raster import Raster
from tests.app import blend_reference as ref
from tests.app.test_request_builder import MODEL
from tests.documents import paint_mask, random_photo

H, W = 8, 10


def square(color, box: Rect, alpha: int = 255) -> np.ndarray:
    pixels = np.zeros((H, W, 4), np.uint8)
    pixels[box.slices(Rect(0, 0, W, H))] = (*color, alpha)
    return pixels


def build(stack, doc: Document | None = None, parent: Layer | None = None) -> Document:
    """A document from a reference stack (the same description the reference flattens)."""
    doc = doc or Document(W, H)
    for kind, mode, opacity, content in stack:
        if kind == "layer":
            layer = Layer(LayerKind.IMAGE, "layer", Raster(4, content.copy()))
        else:
            layer = Layer(LayerKind.GROUP, "group")
        layer.opacity, layer.blend_mode = opacity, mode
        layer.parent_id = parent.id if parent is not None else None
        if kind == "group":
            build(content, doc, layer)
        doc._insert_layer(layer, len(doc.layers))
    return doc


BACK = square((40, 90, 200), Rect(0, 0, W, H))
RED = square((230, 30, 30), Rect(1, 1, 6, 5))
GREEN = square((30, 200, 60), Rect(4, 3, 5, 4))  # overlaps RED over (4..7, 3..6)


def test_group_opacity_applies_to_the_isolated_group_not_to_each_child():
    stack = [
        ("layer", blend.NORMAL, 1.0, BACK),
        (
            "group",
            blend.NORMAL,
            0.5,
            [("layer", blend.NORMAL, 1.0, RED), ("layer", blend.NORMAL, 1.0, GREEN)],
        ),
    ]
    doc = build(stack)
    got = composite(doc.layers, doc.rect)
    ref.assert_close(got, ref.flatten(stack, H, W))
    # where the children overlap only GREEN shows through the group (half over the backdrop);
    # opacity multiplied into each child would let RED tint it
    overlap = got[4, 5, :3].astype(int)
    assert abs(overlap[0] - (40 + 30) / 2) <= 1
    per_child = [
        ("layer", blend.NORMAL, 1.0, BACK),
        ("layer", blend.NORMAL, 0.5, RED),
        ("layer", blend.NORMAL, 0.5, GREEN),
    ]
    wrong = ref.flatten(per_child, H, W)[4, 5, :3] * 255
    assert np.abs(wrong - overlap).max() > 20


@pytest.mark.parametrize("group_mode", [blend.NORMAL, "svg:multiply", "svg:screen", "svg:hue"])
def test_group_mode_blends_the_isolated_composite(group_mode):
    rng = np.random.default_rng(1)
    child = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    stack = [
        ("layer", blend.NORMAL, 1.0, BACK),
        (
            "group",
            group_mode,
            0.8,
            [("layer", "svg:difference", 1.0, child), ("layer", "svg:overlay", 0.7, RED)],
        ),
    ]
    doc = build(stack)
    ref.assert_close(composite(doc.layers, doc.rect), ref.flatten(stack, H, W))


@pytest.mark.parametrize("opacity", [1.0, 0.6])
def test_pass_through_children_blend_with_what_is_under_the_group(opacity):
    stack = [
        ("layer", blend.NORMAL, 1.0, BACK),
        (
            "group",
            blend.PASS_THROUGH,
            opacity,
            [("layer", "svg:multiply", 1.0, RED), ("layer", "svg:screen", 0.8, GREEN)],
        ),
    ]
    doc = build(stack)
    got = composite(doc.layers, doc.rect)
    ref.assert_close(got, ref.flatten(stack, H, W))
    isolated = build([stack[0], ("group", blend.NORMAL, opacity, stack[1][3])])
    # isolated, the multiply layer has nothing under it inside the group and stays red
    assert np.abs(composite(isolated.layers, isolated.rect).astype(int) - got).max() > 20


def test_nested_groups_and_hidden_groups():
    inner = [("layer", "svg:color-burn", 0.9, GREEN)]
    stack = [
        ("layer", blend.NORMAL, 1.0, BACK),
        (
            "group",
            "svg:multiply",
            0.7,
            [("layer", blend.NORMAL, 1.0, RED), ("group", blend.NORMAL, 0.5, inner)],
        ),
    ]
    doc = build(stack)
    ref.assert_close(composite(doc.layers, doc.rect), ref.flatten(stack, H, W))
    outer = next(
        layer for layer in doc.layers if layer.kind is LayerKind.GROUP and layer.parent_id is None
    )
    doc.set_visible(outer.id, False)
    assert np.array_equal(composite(doc.layers, doc.rect), BACK)  # children hidden with it
    assert all(not doc.is_shown(layer) for layer in doc.layers[1:])
    doc.history.undo()
    ref.assert_close(composite(doc.layers, doc.rect), ref.flatten(stack, H, W))


def flat_doc() -> Document:
    doc = Document.blank(W, H, (40, 90, 200, 255))
    doc.add_layer(LayerKind.IMAGE, "A", Raster(4, RED.copy()))
    doc.add_layer(LayerKind.IMAGE, "B", Raster(4, GREEN.copy()))
    doc.history.clear()
    return doc


def structure(doc: Document) -> list[tuple[str, str | None]]:
    names = {layer.id: layer.name for layer in doc.layers}
    return [(layer.name, names.get(layer.parent_id)) for layer in doc.layers]


def test_group_ungroup_and_undo_keep_ids_and_pixels():
    doc = flat_doc()
    a, b = doc.layers[1], doc.layers[2]
    before = composite(doc.layers, doc.rect)
    group = doc.group_layers([a.id, b.id])
    assert structure(doc) == [
        ("Background", None),
        ("A", "Group"),
        ("B", "Group"),
        ("Group", None),
        ("Inpaint mask", None),
    ]
    assert doc.active_layer_id == group.id
    assert np.array_equal(composite(doc.layers, doc.rect), before)  # a normal group changes nothing
    doc.set_opacity(group.id, 0.5)
    assert not np.array_equal(composite(doc.layers, doc.rect), before)
    doc.history.undo()
    doc.history.undo()  # the grouping is one step
    assert structure(doc) == [
        ("Background", None),
        ("A", None),
        ("B", None),
        ("Inpaint mask", None),
    ]
    doc.history.redo()
    doc.ungroup(group.id)
    assert structure(doc) == [
        ("Background", None),
        ("A", None),
        ("B", None),
        ("Inpaint mask", None),
    ]
    doc.history.undo()
    assert doc.layer(group.id).kind is LayerKind.GROUP and a.parent_id == group.id


def test_step_moves_into_and_out_of_groups():
    doc = flat_doc()
    a, b = doc.layers[1], doc.layers[2]
    group = doc.group_layers([b.id])
    doc.step_layer(a.id, +1)  # meets the group above: goes in at its bottom
    assert structure(doc)[1:4] == [("A", "Group"), ("B", "Group"), ("Group", None)]
    doc.step_layer(a.id, -1)  # at the group's bottom edge: steps out below it
    assert structure(doc)[1:4] == [("A", None), ("B", "Group"), ("Group", None)]
    doc.step_layer(b.id, +1)  # top edge: out above the group
    assert structure(doc)[1:4] == [("A", None), ("Group", None), ("B", None)]
    for _ in range(3):
        doc.history.undo()
    assert structure(doc)[1:4] == [("A", None), ("B", "Group"), ("Group", None)]
    with pytest.raises(ValueError):
        doc.move_into(group.id, group.id, 0)


def test_delete_and_duplicate_a_group_with_its_contents():
    doc = flat_doc()
    a, b = doc.layers[1], doc.layers[2]
    group = doc.group_layers([a.id, b.id])
    twin = doc.duplicate_layer(group.id)
    twins = [layer for layer in doc.layers if layer.parent_id == twin.id]
    assert [layer.name for layer in twins] == ["A", "B"]
    assert {layer.id for layer in twins}.isdisjoint({a.id, b.id})
    doc.history.undo()
    count = len(doc.layers)
    doc.remove_layer(group.id)
    assert len(doc.layers) == count - 3
    doc.history.undo()
    assert structure(doc)[1:4] == [("A", "Group"), ("B", "Group"), ("Group", None)]


def test_new_layer_above_a_grouped_layer_joins_its_group():
    doc = flat_doc()
    a = doc.layers[1]
    group = doc.group_layers([a.id])
    doc.set_active(a.id)
    added = doc.add_layer(LayerKind.IMAGE, "C")
    assert added.parent_id == group.id and doc.index_of(added.id) == doc.index_of(a.id) + 1


def test_roles_stay_on_their_layers_inside_groups():
    """The inpaint mask is found by kind wherever it sits, and the request sees the picture
    the groups make."""
    doc = random_photo(64, 48, seed=2)
    mask = doc.mask_layer
    sketch = doc.add_layer(
        LayerKind.SKETCH, "Lines", Raster(4, np.full((48, 64, 4), 200, np.uint8))
    )
    group = doc.group_layers([mask.id, sketch.id])
    paint_mask(doc, Rect(10, 10, 20, 16))
    assert doc.mask_layer is mask and mask.parent_id == group.id
    assert detect_workflow(doc) is Workflow.INPAINT
    assert mask in doc.leaf_layers() and group not in doc.leaf_layers()
    doc.set_blend_mode(sketch.id, "svg:multiply")
    job = build_request(doc, MODEL)
    area = job.origin
    expected = composite(doc.layers, area)[..., :3]
    assert np.abs(job.request.image.astype(int) - expected).max() <= 1


def test_a_locked_or_hidden_group_reaches_its_layers():
    from app.document import LayerLockedError
    from app.generation.request import active_control_layers
    from app.layers import ControlSettings

    doc = flat_doc()
    a = doc.layers[1]
    control = doc.add_layer(LayerKind.CONTROL, "edges", control=ControlSettings("canny"))
    group = doc.group_layers([a.id, control.id])
    doc.set_locked(group.id, True)
    with pytest.raises(LayerLockedError, match="Group"):
        doc.check_editable(a)
    assert active_control_layers(doc) == [control]
    doc.set_visible(group.id, False)
    assert active_control_layers(doc) == []  # hidden with its group
