"""Property: any sequence of strokes and layer operations, fully undone, restores every pixel and
the layer stack exactly; fully redone, reproduces the final state."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import mask_ops
from app.document import Document
from app.layers import LayerKind
from app.tools import BrushSettings, BrushTarget, BrushTool, Phase, PointerEvent

SIZE = 96

coords = st.floats(-10, SIZE + 10, allow_nan=False)
stroke = st.tuples(
    st.just("stroke"),
    st.sampled_from([BrushTarget.MASK, BrushTarget.SKETCH]),
    st.booleans(),
    st.floats(2, 40),
    st.lists(st.tuples(coords, coords), min_size=1, max_size=5),
)
layer_op = st.tuples(
    st.sampled_from(["add", "duplicate", "delete", "move", "opacity", "hide", "rename"]),
    st.integers(0, 10),
)
mask_op = st.tuples(st.sampled_from(["invert", "grow", "feather"]), st.integers(1, 5))
operations = st.lists(st.one_of(stroke, layer_op, mask_op), min_size=1, max_size=8)


def snapshot(doc):
    return [
        (layer.id, layer.name, layer.visible, layer.opacity, layer.raster.read(doc.rect).tobytes())
        for layer in doc.layers
    ]


def apply(doc, op):
    kind = op[0]
    if kind == "stroke":
        _, target, erase, size, points = op
        tool = BrushTool(
            doc, target, BrushSettings(size=size, erase=erase, color=(9, 99, 199)), "t"
        )
        for i, (x, y) in enumerate([*points, points[-1]]):
            phase = Phase.PRESS if i == 0 else Phase.RELEASE if i == len(points) else Phase.MOVE
            tool.handle(PointerEvent(x, y, phase))
        return
    if kind in {"invert", "grow", "feather"}:
        {
            "invert": lambda: mask_ops.invert_mask(doc),
            "grow": lambda: mask_ops.grow_mask(doc, op[1]),
            "feather": lambda: mask_ops.feather_mask(doc, op[1]),
        }[kind]()
        return
    if not doc.layers:
        return
    layer = doc.layers[op[1] % len(doc.layers)]
    if kind == "add":
        doc.add_layer(LayerKind.IMAGE)
    elif kind == "duplicate":
        doc.duplicate_layer(layer.id)
    elif kind == "delete" and layer.kind is not LayerKind.MASK:
        doc.remove_layer(layer.id)
    elif kind == "move":
        doc.move_layer(layer.id, op[1])
    elif kind == "opacity":
        doc.set_opacity(layer.id, op[1] / 10)
    elif kind == "hide":
        doc.set_visible(layer.id, not layer.visible)
    elif kind == "rename":
        doc.rename_layer(layer.id, f"n{op[1]}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_undo_all_then_redo_all_round_trips(ops):
    doc = Document.blank(SIZE, SIZE, fill=(1, 2, 3, 255))
    start = snapshot(doc)
    for op in ops:
        apply(doc, op)
    end = snapshot(doc)
    while doc.history.canUndo():
        doc.history.undo()
    assert snapshot(doc) == start
    while doc.history.canRedo():
        doc.history.redo()
    assert snapshot(doc) == end
    assert np.all([layer.raster is not None for layer in doc.layers])
