"""Undoable commands on the document's one history (a QUndoStack).

Commands address layers by id, never by index, so the transient preview layer and other commands
cannot shift what an older command refers to. A pixel command keeps only the regions it changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtGui import QUndoCommand

from app.geometry import Rect
from app.layers import Layer
from app.raster import Raster

if TYPE_CHECKING:
    from app.document import Document

MERGE_LAYER_PROPERTY = 1001


@dataclass(frozen=True, eq=False)
class PixelPatch:
    rect: Rect
    before: np.ndarray
    after: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.before.nbytes + self.after.nbytes


class PaintPixels(QUndoCommand):
    """Pixels of one layer changed in some regions. Created after the change is already applied
    (a stroke paints live), so the first ``redo`` does nothing."""

    def __init__(self, doc: Document, layer_id: int, patches: Sequence[PixelPatch], text: str):
        super().__init__(text)
        self.doc, self.layer_id, self.patches = doc, layer_id, tuple(patches)
        self._applied = True

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.patches)

    def _apply(self, attr: str) -> None:
        for patch in self.patches:
            self.doc._write_pixels(self.layer_id, patch.rect, getattr(patch, attr))

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self._apply("after")

    def undo(self) -> None:
        self._apply("before")


class InsertLayer(QUndoCommand):
    def __init__(self, doc: Document, layer: Layer, index: int, text: str = ""):
        super().__init__(text or f"Add {layer.name}")
        self.doc, self.layer, self.index = doc, layer, index

    def redo(self) -> None:
        self.doc._insert_layer(self.layer, self.index)

    def undo(self) -> None:
        self.doc._remove_layer(self.layer.id)


class RemoveLayer(QUndoCommand):
    def __init__(self, doc: Document, layer: Layer, text: str = ""):
        super().__init__(text or f"Delete {layer.name}")
        self.doc, self.layer = doc, layer
        self.index = doc.index_of(layer.id)

    def redo(self) -> None:
        self.doc._remove_layer(self.layer.id)

    def undo(self) -> None:
        self.doc._insert_layer(self.layer, self.index)


class MoveLayer(QUndoCommand):
    def __init__(self, doc: Document, layer_id: int, new_index: int):
        super().__init__("Move layer")
        self.doc, self.layer_id = doc, layer_id
        self.old_index, self.new_index = doc.index_of(layer_id), new_index

    def redo(self) -> None:
        self.doc._move_layer(self.layer_id, self.new_index)

    def undo(self) -> None:
        self.doc._move_layer(self.layer_id, self.old_index)


class SetLayerProperty(QUndoCommand):
    """name / visible / opacity / locked / recipe / control / pose. Successive changes of the same
    property of the same layer merge into one step (a slider drag is one undo)."""

    def __init__(self, doc: Document, layer_id: int, prop: str, value: Any, text: str = ""):
        super().__init__(text or f"Change {prop}")
        self.doc, self.layer_id, self.prop = doc, layer_id, prop
        self.old = getattr(doc.layer(layer_id), prop)
        self.new = value

    def id(self) -> int:
        return MERGE_LAYER_PROPERTY if self.prop == "opacity" else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetLayerProperty):
            return False
        if (other.layer_id, other.prop) != (self.layer_id, self.prop):
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        self.doc._set_layer_property(self.layer_id, self.prop, self.new)

    def undo(self) -> None:
        self.doc._set_layer_property(self.layer_id, self.prop, self.old)


class SetSelection(QUndoCommand):
    def __init__(self, doc: Document, before: Raster, after: Raster, text: str = "Select"):
        super().__init__(text)
        self.doc, self.before, self.after = doc, before, after

    def redo(self) -> None:
        self.doc._set_selection(self.after)

    def undo(self) -> None:
        self.doc._set_selection(self.before)
