"""The document: size, an ordered layer stack, the active layer, a selection and one history.

All user-visible changes go through commands on ``history`` (see app/history.py); the underscore
methods are the raw mutators those commands call, and they emit the change signals views observe.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from app import blend, groups
from app.geometry import Rect
from app.history import (
    InsertLayer,
    MoveLayer,
    PaintPixels,
    PixelPatch,
    RemoveLayer,
    SetLayerProperty,
    SetSelection,
)
from app.layers import Layer, LayerKind
from app.raster import Raster

log = logging.getLogger(__name__)

MAX_SIDE = 32768


class LayerLockedError(Exception):
    """The target layer is locked; the message says which."""


class Document(QObject):
    layers_changed = Signal()  # stack order, membership or a layer property
    pixels_changed = Signal(int, object)  # layer id, Rect in document coordinates
    active_layer_changed = Signal(int)
    selection_changed = Signal()
    preview_changed = Signal(object)  # Rect that needs repainting
    notice = Signal(str)  # a short non-modal message for the status bar
    size_changed = Signal()  # width/height changed (canvas grown by an upscale, or undone)
    canvas_resized = Signal(int, int)  # emitted before size_changed: the content moved by dx, dy

    def __init__(self, width: int, height: int, parent: QObject | None = None):
        super().__init__(parent)
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise ValueError(f"document size {width}x{height} is outside 1..{MAX_SIDE} pixels")
        self.width, self.height = int(width), int(height)
        self.layers: list[Layer] = []  # bottom to top
        self.active_layer_id: int | None = None
        self.selection = Raster(1)
        self.preview: Layer | None = None  # transient, drawn on top, outside history
        self.preview_job: int | None = None
        self.history = QUndoStack(self)
        self.path: Path | None = None
        self.generation_state: dict[str, Any] = {}  # prompt panel state saved with the project
        self._told_modes: set[str] = set()  # unknown blend modes the user was told about
        self.colour_note: str | None = None  # what opening converted to sRGB (status line)

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def blank(
        cls, width: int, height: int, fill: tuple[int, int, int, int] = (255,) * 4
    ) -> Document:
        doc = cls(width, height)
        pixels = np.empty((height, width, 4), np.uint8)
        pixels[:] = fill
        doc._insert_layer(Layer(LayerKind.IMAGE, "Background", Raster(4, pixels)), 0)
        doc._insert_layer(Layer(LayerKind.MASK, LayerKind.MASK.default_name), 1)
        doc.set_active(doc.layers[0].id)
        return doc

    @classmethod
    def from_rgba(cls, pixels: np.ndarray, name: str = "Background") -> Document:
        height, width = pixels.shape[:2]
        doc = cls(width, height)
        doc._insert_layer(Layer(LayerKind.IMAGE, name, Raster(4, pixels)), 0)
        doc._insert_layer(Layer(LayerKind.MASK, LayerKind.MASK.default_name), 1)
        doc.set_active(doc.layers[0].id)
        return doc

    # ---- queries -------------------------------------------------------------------------

    @property
    def rect(self) -> Rect:
        return Rect(0, 0, self.width, self.height)

    def layer(self, layer_id: int) -> Layer:
        for layer in self.layers:
            if layer.id == layer_id:
                return layer
        if self.preview is not None and self.preview.id == layer_id:
            return self.preview
        raise KeyError(f"no layer with id {layer_id}")

    def index_of(self, layer_id: int) -> int:
        for index, layer in enumerate(self.layers):
            if layer.id == layer_id:
                return index
        raise KeyError(f"no layer with id {layer_id}")

    @property
    def active_layer(self) -> Layer | None:
        if self.active_layer_id is None:
            return None
        try:
            return self.layer(self.active_layer_id)
        except KeyError:
            return None

    def layers_of(self, kind: LayerKind) -> list[Layer]:
        return [layer for layer in self.layers if layer.kind is kind]

    @property
    def mask_layer(self) -> Layer | None:
        masks = self.layers_of(LayerKind.MASK)
        return masks[-1] if masks else None

    def ensure_mask_layer(self) -> Layer:
        mask = self.mask_layer
        if mask is None:
            mask = self.add_layer(LayerKind.MASK, activate=False)
        return mask

    def leaf_layers(self) -> list[Layer]:
        """Every layer that is not a group, bottom first, wherever it sits in the groups."""
        return list(groups.leaves(self.layers))

    def is_shown(self, layer: Layer) -> bool:
        """Visible, and inside visible groups only."""
        return groups.is_shown(self.layers, layer)

    def parent_of(self, layer: Layer) -> Layer | None:
        return self.layer(layer.parent_id) if layer.parent_id is not None else None

    def depth_of(self, layer: Layer) -> int:
        return groups.depth(self.layers, layer)

    def children_of(self, group_id: int | None) -> list[Layer]:
        return [layer for layer in self.layers if layer.parent_id == group_id]

    @property
    def is_modified(self) -> bool:
        return not self.history.isClean()

    def selection_mask(self) -> np.ndarray | None:
        """The selection over the whole canvas, or None when nothing is selected."""
        if self.selection.is_blank():
            return None
        return self.selection.read(self.rect)

    # ---- undoable operations -----------------------------------------------------------

    def add_layer(
        self,
        kind: LayerKind,
        name: str | None = None,
        raster: Raster | None = None,
        index: int | None = None,
        activate: bool = True,
        **fields: Any,
    ) -> Layer:
        layer = Layer(kind, name or self._unique_name(kind.default_name), raster, **fields)
        self.insert_layer(layer, index, activate=activate)
        return layer

    def insert_layer(
        self, layer: Layer, index: int | None = None, activate: bool = True, text: str = ""
    ) -> None:
        if index is None:
            index = self._default_insert_index(layer)
            self._adopt_active_parent(layer, index)
        self.history.push(InsertLayer(self, layer, index, text))
        if activate:
            self.set_active(layer.id)

    def remove_layer(self, layer_id: int) -> None:
        layer = self.layer(layer_id)
        if layer.kind is LayerKind.GROUP:
            self._remove_group(layer)
            return
        self.history.push(RemoveLayer(self, layer))

    def duplicate_layer(self, layer_id: int) -> Layer:
        if self.layer(layer_id).kind is LayerKind.GROUP:
            return self._duplicate_group(self.layer(layer_id))
        twin = self.layer(layer_id).clone()
        twin.name = self._unique_name(f"{twin.name} copy")
        self.history.beginMacro(f"Duplicate {twin.name}")
        self.history.push(InsertLayer(self, twin, self.index_of(layer_id) + 1))
        self.history.endMacro()
        self.set_active(twin.id)
        return twin

    def move_layer(self, layer_id: int, new_index: int) -> None:
        new_index = max(0, min(new_index, len(self.layers) - 1))
        if new_index != self.index_of(layer_id):
            self.history.push(MoveLayer(self, layer_id, new_index))

    def set_layer_property(self, layer_id: int, prop: str, value: Any, text: str = "") -> None:
        if getattr(self.layer(layer_id), prop) != value:
            self.history.push(SetLayerProperty(self, layer_id, prop, value, text))

    def rename_layer(self, layer_id: int, name: str) -> None:
        name = name.strip()
        if name:
            self.set_layer_property(layer_id, "name", name, "Rename layer")

    def set_visible(self, layer_id: int, visible: bool) -> None:
        self.set_layer_property(layer_id, "visible", bool(visible), "Show/hide layer")

    def set_opacity(self, layer_id: int, opacity: float) -> None:
        opacity = float(min(1.0, max(0.0, opacity)))
        self.set_layer_property(layer_id, "opacity", opacity, "Layer opacity")

    def set_locked(self, layer_id: int, locked: bool) -> None:
        self.set_layer_property(layer_id, "locked", bool(locked), "Lock layer")

    def set_blend_mode(self, layer_id: int, mode: str) -> None:
        self.set_layer_property(layer_id, "blend_mode", str(mode), "Blend mode")

    def set_collapsed(self, group_id: int, collapsed: bool) -> None:
        """Fold a group in the layers panel (view state: not an undo step)."""
        layer = self.layer(group_id)
        if layer.collapsed != bool(collapsed):
            layer.collapsed = bool(collapsed)
            self.layers_changed.emit()

    def unknown_blend_modes(self) -> set[str]:
        return {layer.blend_mode for layer in self.layers if not blend.is_known(layer.blend_mode)}

    def report_unknown_modes(self) -> str | None:
        """Tell the user once per document about modes drawn as Normal; returns the message."""
        new = self.unknown_blend_modes() - self._told_modes
        if not new:
            return None
        self._told_modes |= new
        names = ", ".join(sorted(new))
        message = (
            f"Blend mode {names} is not supported: drawn as Normal, kept when saved."
            if len(new) == 1
            else f"Blend modes {names} are not supported: drawn as Normal, kept when saved."
        )
        self.notice.emit(message)
        return message

    # ---- groups (see app/groups.py) ------------------------------------------------------

    def group_layers(self, layer_ids: list[int], name: str | None = None) -> Layer:
        """Put the layers (with their groups' contents) in a new group where the topmost was."""
        chosen = {self.layer(i).id for i in layer_ids}
        chosen = {
            i
            for i in chosen
            if not any(g.id in chosen for g in groups.ancestors(self.layers, self.layer(i)))
        }
        if not chosen:
            raise ValueError("nothing to group")
        top = max(chosen, key=self.index_of)
        group = Layer(LayerKind.GROUP, name or self._unique_name("Group"))
        group.parent_id = self.layer(top).parent_id
        self.history.beginMacro(f"Group into {group.name}")
        try:
            self.history.push(InsertLayer(self, group, self.index_of(top) + 1))
            roots = groups.build_tree(self.layers)
            where = groups.locate(roots)
            group_node = where[group.id][0]
            for layer_id in sorted(chosen, key=self.index_of):
                node, siblings, _ = where[layer_id]
                siblings.remove(node)
                group_node.children.append(node)
            order, parents = groups.flatten_tree(roots)
            self.history.push(groups.RestackLayers(self, order, parents, "Group layers"))
        finally:
            self.history.endMacro()
        self.set_active(group.id)
        return group

    def ungroup(self, group_id: int) -> None:
        """Move a group's children to where the group is, and remove the group."""
        group = self.layer(group_id)
        if group.kind is not LayerKind.GROUP:
            return
        roots = groups.build_tree(self.layers)
        node, siblings, _ = groups.locate(roots)[group_id]
        at = siblings.index(node)
        siblings[at : at + 1] = [*node.children, groups.Node(group)]
        order, parents = groups.flatten_tree(roots)
        self.history.beginMacro(f"Ungroup {group.name}")
        try:
            self.history.push(groups.RestackLayers(self, order, parents, "Ungroup"))
            self.history.push(RemoveLayer(self, group))
        finally:
            self.history.endMacro()

    def move_into(self, layer_id: int, parent_id: int | None, position: int) -> None:
        """Put a layer (a group with its contents) in ``parent_id`` (None: the root stack) at
        ``position`` among its children, bottom first."""
        layer = self.layer(layer_id)
        if parent_id is not None:
            parent = self.layer(parent_id)
            if parent.kind is not LayerKind.GROUP or parent_id == layer_id:
                raise ValueError(f"“{parent.name}” is not a group this layer can go into")
            if layer in groups.ancestors(self.layers, parent):
                raise ValueError("a group cannot go inside itself")
        roots = groups.build_tree(self.layers)
        where = groups.locate(roots)
        node, siblings, _ = where[layer_id]
        siblings.remove(node)
        target = roots if parent_id is None else where[parent_id][0].children
        target.insert(max(0, min(position, len(target))), node)
        order, parents = groups.flatten_tree(roots)
        if order != [item.id for item in self.layers] or parents != groups.parent_map(self.layers):
            self.history.push(groups.RestackLayers(self, order, parents, "Move layer"))

    def step_layer(self, layer_id: int, delta: int) -> None:
        """Move one step up (+1) or down (-1) as Krita does: past a sibling, into a group it
        meets, and out of its group at the group's edge."""
        if not any(layer.kind is LayerKind.GROUP for layer in self.layers):
            self.move_layer(layer_id, self.index_of(layer_id) + delta)
            return
        where = groups.locate(groups.build_tree(self.layers))
        node, siblings, parent = where[layer_id]
        at = siblings.index(node)
        up = delta > 0
        edge = at == len(siblings) - 1 if up else at == 0
        if edge:
            if parent is None:
                return
            _, outer, grand = where[parent]
            outer_at = outer.index(where[parent][0])
            self.move_into(layer_id, grand, outer_at + 1 if up else outer_at)
            return
        neighbour = siblings[at + 1 if up else at - 1]
        if neighbour.layer.kind is LayerKind.GROUP:
            self.move_into(layer_id, neighbour.layer.id, 0 if up else len(neighbour.children))
            return
        self.move_into(layer_id, parent, at + 1 if up else at - 1)

    def _remove_group(self, group: Layer) -> None:
        inside = groups.descendants(self.layers, group.id)
        self.history.beginMacro(f"Delete {group.name}")
        try:
            for layer in [group, *reversed(inside)]:
                self.history.push(RemoveLayer(self, layer))
        finally:
            self.history.endMacro()

    def _duplicate_group(self, group: Layer) -> Layer:
        inside = groups.descendants(self.layers, group.id)
        twins = {layer.id: layer.clone() for layer in [*inside, group]}
        for twin in twins.values():
            if twin.parent_id in twins:
                twin.parent_id = twins[twin.parent_id].id
        top = twins[group.id]
        top.name = self._unique_name(f"{group.name} copy")
        index = self.index_of(group.id) + 1
        self.history.beginMacro(f"Duplicate {top.name}")
        try:
            for offset, layer in enumerate([*inside, group]):
                self.history.push(InsertLayer(self, twins[layer.id], index + offset))
        finally:
            self.history.endMacro()
        self.set_active(top.id)
        return top

    def set_active(self, layer_id: int | None) -> None:
        if layer_id != self.active_layer_id:
            self.active_layer_id = layer_id
            self.active_layer_changed.emit(layer_id if layer_id is not None else -1)

    def replace_pixels(self, layer_id: int, rect: Rect, pixels: np.ndarray, text: str) -> None:
        """Set ``rect`` of a raster layer to ``pixels`` as one undoable step."""
        layer = self.layer(layer_id)
        self.check_editable(layer)
        assert layer.raster is not None, "only raster layers have pixels to replace"
        before = layer.raster.read(rect)
        self._write_pixels(layer_id, rect, pixels)
        self.history.push(PaintPixels(self, layer_id, [PixelPatch(rect, before, pixels)], text))

    def push_painted(self, layer_id: int, patches: list[PixelPatch], text: str) -> None:
        """Record pixels a tool already changed (the stroke was painted live)."""
        if patches:
            self.history.push(PaintPixels(self, layer_id, patches, text))

    def set_selection(self, selection: Raster, text: str = "Select") -> None:
        self.history.push(SetSelection(self, self.selection.copy(), selection.copy(), text))

    def clear_selection(self) -> None:
        if not self.selection.is_blank():
            self.set_selection(Raster(1), "Deselect")

    def check_editable(self, layer: Layer) -> None:
        if layer.locked:
            raise LayerLockedError(f"Layer “{layer.name}” is locked; unlock it to paint on it.")
        for group in groups.ancestors(self.layers, layer):
            if group.locked:
                raise LayerLockedError(
                    f"Group “{group.name}” is locked; unlock it to paint on “{layer.name}”."
                )

    # ---- transient preview (never in history, never saved) ------------------------------

    def show_preview(self, job_id: int, rect: Rect, pixels: np.ndarray) -> None:
        """Draw a step preview into the preview layer, scaled by the caller to ``rect``."""
        shown = self.preview.raster if self.preview is not None else None
        old = shown.rect if shown is not None else rect
        if self.preview is None:
            self.preview = Layer(LayerKind.PREVIEW, "Preview")
        if pixels.shape[2] == 3:
            alpha = np.full((*pixels.shape[:2], 1), 255, np.uint8)
            pixels = np.concatenate([pixels, alpha], axis=2)
        self.preview.raster = Raster(4, pixels, rect.x, rect.y)
        self.preview_job = job_id
        self.preview_changed.emit(old.united(rect))

    def clear_preview(self, job_id: int | None = None) -> None:
        if self.preview is None or (job_id is not None and job_id != self.preview_job):
            return
        assert self.preview.raster is not None  # a PREVIEW layer is a raster kind
        rect = self.preview.raster.rect
        self.preview, self.preview_job = None, None
        self.preview_changed.emit(rect)

    # ---- raw mutators (called by commands) ----------------------------------------------

    def _insert_layer(self, layer: Layer, index: int) -> None:
        self.layers.insert(index, layer)
        self.layers_changed.emit()
        self._emit_layer_area(layer)

    def _remove_layer(self, layer_id: int) -> None:
        layer = self.layers.pop(self.index_of(layer_id))
        if self.active_layer_id == layer_id:
            fallback = self.layers[-1].id if self.layers else None
            self.set_active(fallback)
        self.layers_changed.emit()
        self._emit_layer_area(layer)

    def _move_layer(self, layer_id: int, index: int) -> None:
        layer = self.layers.pop(self.index_of(layer_id))
        self.layers.insert(index, layer)
        self.layers_changed.emit()
        self._emit_layer_area(layer)

    def _set_layer_property(self, layer_id: int, prop: str, value: Any) -> None:
        layer = self.layer(layer_id)
        setattr(layer, prop, value)
        if prop != "pose":  # a pose drag changes only pixels; don't rebuild the layers panel
            self.layers_changed.emit()
        if prop in {"visible", "opacity", "pose", "control", "blend_mode"}:
            self._emit_layer_area(layer)

    def _restack(self, order: list[int], parents: dict[int, int | None]) -> None:
        by_id = {layer.id: layer for layer in self.layers}
        if sorted(order) != sorted(by_id):
            raise ValueError("a restack must keep the same layers")
        self.layers[:] = [by_id[layer_id] for layer_id in order]
        for layer_id, parent in parents.items():
            by_id[layer_id].parent_id = parent
        self.layers_changed.emit()
        self.pixels_changed.emit(-1, self.rect)

    def _write_pixels(self, layer_id: int, rect: Rect, pixels: np.ndarray) -> None:
        raster = self.layer(layer_id).raster
        assert raster is not None, "only raster layers have pixels to write"
        raster.write(rect, pixels)
        self.pixels_changed.emit(layer_id, rect)

    def _set_selection(self, selection: Raster) -> None:
        self.selection = selection.copy()
        self.selection_changed.emit()

    def _emit_layer_area(self, layer: Layer) -> None:
        rect = layer.raster.rect if layer.raster is not None else self.rect
        self.pixels_changed.emit(layer.id, rect if not rect.is_empty else self.rect)

    def _default_insert_index(self, layer: Layer) -> int:
        """Above the active layer, but never above the mask, which stays on top."""
        if layer.kind is LayerKind.MASK:
            return len(self.layers)
        index = len(self.layers)
        if self.active_layer is not None and self.active_layer.kind is not LayerKind.PREVIEW:
            index = self.index_of(self.active_layer.id) + 1
        while index > 0 and self.layers[index - 1].kind is LayerKind.MASK:
            index -= 1
        return index

    def _adopt_active_parent(self, layer: Layer, index: int) -> None:
        """A new layer placed right above the active one joins the active one's group."""
        active = self.active_layer
        if (
            layer.parent_id is None
            and active is not None
            and active.parent_id is not None
            and active in self.layers
            and index == self.index_of(active.id) + 1
        ):
            layer.parent_id = active.parent_id

    def _unique_name(self, base: str) -> str:
        names = {layer.name for layer in self.layers}
        if base not in names:
            return base
        n = 2
        while f"{base} {n}" in names:
            n += 1
        return f"{base} {n}"
