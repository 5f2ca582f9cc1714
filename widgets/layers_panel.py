"""Layers panel: thumbnails, visibility, opacity, blend mode, lock, groups (Ctrl+G, fold
arrows, drag in and out), reorder by drag, rename, add/delete/copy.

The list shows the stack top first (as every editor does); the document keeps it bottom first.
Every change is a call on the Document, so it lands on the one undo history; the list is rebuilt
from the document whenever ``layers_changed`` fires.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPoint, QSignalBlocker, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QMouseEvent, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QSlider,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import blend
from app.document import Document
from app.generation.live import LIVE_PREVIEW_ID
from app.layers import Layer, LayerKind
from app.staging import STAGING_PREVIEW_ID
from widgets import icons

THUMB = 44
ID_ROLE = Qt.ItemDataRole.UserRole
DEPTH_ROLE = Qt.ItemDataRole.UserRole + 1  # nesting depth: rows are indented by it
GROUP_ROLE = Qt.ItemDataRole.UserRole + 2  # None for layers, else "open" or "closed"
INDENT = 16  # pixels per nesting level; a group's fold arrow sits in its first INDENT pixels

KIND_BADGES: dict[LayerKind, tuple[str, QColor]] = {
    LayerKind.IMAGE: ("", QColor(0, 0, 0, 0)),
    LayerKind.MASK: ("M", QColor(220, 50, 70)),
    LayerKind.SKETCH: ("S", QColor(60, 140, 230)),
    LayerKind.POSE: ("P", QColor(40, 180, 90)),
    LayerKind.CONTROL: ("C", QColor(200, 140, 30)),
    LayerKind.RESULT: ("R", QColor(150, 90, 220)),
    LayerKind.PREVIEW: ("…", QColor(120, 120, 120)),
    LayerKind.GROUP: ("G", QColor(90, 90, 100)),
}
KIND_LABELS = {
    LayerKind.IMAGE: "Image layer",
    LayerKind.MASK: "Inpaint mask",
    LayerKind.SKETCH: "Sketch layer",
    LayerKind.POSE: "Pose layer",
    LayerKind.CONTROL: "Control layer",
    LayerKind.RESULT: "Generated result",
    LayerKind.PREVIEW: "Preview",
    LayerKind.GROUP: "Group",
}


def layer_thumbnail(doc: Document, layer: Layer, size: int = THUMB) -> QPixmap:
    """The layer's pixels over the whole document, sampled (not read in full: an 8k layer costs
    a thumbnail's worth of work), on a checkerboard, with a kind badge and a lock mark."""
    step = max(1, math.ceil(max(doc.width, doc.height) / size))
    tw, th = max(1, doc.width // step), max(1, doc.height // step)
    thumb = np.zeros((th, tw, 4), np.uint8)
    raster = layer.raster
    if raster is not None and not raster.rect.is_empty:
        xs = np.arange(tw) * step
        ys = np.arange(th) * step
        in_x = (xs >= raster.x) & (xs < raster.rect.right)
        in_y = (ys >= raster.y) & (ys < raster.rect.bottom)
        if in_x.any() and in_y.any():
            sampled = raster.data[np.ix_(ys[in_y] - raster.y, xs[in_x] - raster.x)]
            if raster.channels == 1:  # masks: white where painted
                rgba = np.zeros((*sampled.shape, 4), np.uint8)
                rgba[..., :3] = 255
                rgba[..., 3] = sampled
                sampled = rgba
            thumb[np.ix_(in_y, in_x)] = sampled
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    left, top = (size - tw) // 2, (size - th) // 2
    cell = 5
    for cy in range(0, th, cell):
        for cx in range(0, tw, cell):
            shade = 200 if (cx // cell + cy // cell) % 2 == 0 else 150
            if layer.kind is LayerKind.MASK:
                shade = 30 if shade == 200 else 45
            painter.fillRect(
                left + cx,
                top + cy,
                min(cell, tw - cx),
                min(cell, th - cy),
                QColor(shade, shade, shade),
            )
    image = QImage(thumb.data, tw, th, tw * 4, QImage.Format.Format_RGBA8888)
    painter.drawImage(left, top, image)
    painter.setPen(QColor(20, 20, 20))
    painter.drawRect(left, top, tw - 1, th - 1)
    badge, color = KIND_BADGES.get(layer.kind, ("", QColor(0, 0, 0, 0)))
    if badge:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(color)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawRoundedRect(size - 16, size - 15, 16, 15, 3, 3)
        font = QFont(painter.font())
        font.setPixelSize(10)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(size - 16, size - 15, 16, 15, Qt.AlignmentFlag.AlignCenter, badge)
    if layer.locked:
        _draw_padlock(painter, 1, 1)
    painter.end()
    return pixmap


def _draw_padlock(painter: QPainter, x: int, y: int) -> None:
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(0, 0, 0, 170))
    painter.drawRoundedRect(x, y, 14, 15, 3, 3)
    painter.setBrush(QColor(250, 210, 80))
    painter.drawRect(x + 3, y + 7, 8, 6)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.setPen(QColor(250, 210, 80))
    painter.drawArc(x + 4, y + 2, 6, 9, 0, 180 * 16)


PREVIEW_LABELS = {  # the preview row's text and tooltip by who shows it (else a running job)
    STAGING_PREVIEW_ID: ("Variant (not accepted yet)", "A variant waiting in the Variants strip"),
    LIVE_PREVIEW_ID: ("Live picture (not applied yet)", "Live painting's picture: Apply keeps it"),
}


class _NestingDelegate(QStyledItemDelegate):
    """Indents rows by their group depth and draws a fold arrow before each group."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        depth = index.data(DEPTH_ROLE) or 0
        fold = index.data(GROUP_ROLE)
        shifted = QStyleOptionViewItem(option)
        offset = depth * INDENT + (INDENT if fold else 0)
        shifted.rect = option.rect.adjusted(offset, 0, 0, 0)
        super().paint(painter, shifted, index)
        if fold:
            painter.save()
            painter.setPen(option.palette.text().color())
            arrow = "▾" if fold == "open" else "▸"
            box = option.rect.adjusted(depth * INDENT, 0, 0, 0)
            box.setWidth(INDENT)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, arrow)
            painter.restore()


class LayerList(QListWidget):
    """The list widget itself; dragging an item reorders the document's stack."""

    fold_clicked = Signal(int)  # a group's id: its fold arrow was clicked

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("layer_list")
        self.setItemDelegate(_NestingDelegate(self))
        self.setIconSize(QSize(THUMB, THUMB))
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        # Ctrl/Shift-click selects several rows (for grouping); the current row is the active layer
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.setSpacing(1)
        self.setUniformItemSizes(True)

    def startDrag(self, actions) -> None:
        """A drag moves the current row only (a group moves with its contents)."""
        current = self.currentItem()
        if current is not None and len(self.selectedItems()) > 1:
            self.clearSelection()
            current.setSelected(True)
        super().startDrag(actions)

    def fold_arrow_rect(self, item: QListWidgetItem):
        """Where a group row's fold arrow is drawn (viewport coordinates)."""
        rect = self.visualItemRect(item)
        rect.setLeft(rect.left() + (item.data(DEPTH_ROLE) or 0) * INDENT)
        rect.setWidth(INDENT)
        return rect

    def mousePressEvent(self, event: QMouseEvent) -> None:
        item = self.itemAt(event.position().toPoint())
        if (
            item is not None
            and item.data(GROUP_ROLE)
            and self.fold_arrow_rect(item).contains(event.position().toPoint())
        ):
            self.fold_clicked.emit(item.data(ID_ROLE))
            event.accept()
            return
        super().mousePressEvent(event)


class LayersPanel(QWidget):
    add_requested = Signal(object)  # LayerKind, for a main window that wants to do more

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("layers_panel")
        self.doc: Document | None = None
        self._dirty_thumbs: set[int] = set()
        self._in_item_change = False
        self._preview_id: int | None = None
        self._preview_owner = 0  # whose picture the preview row shows (a job, staging, live)
        self._thumb_timer = QTimer(self)
        self._thumb_timer.setSingleShot(True)
        self._thumb_timer.setInterval(250)
        self._thumb_timer.timeout.connect(self._refresh_thumbnails)

        self.list = LayerList(self)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setToolTip("Opacity of the active layer")
        self.opacity_value = QLabel("100%")
        self.opacity_value.setMinimumWidth(36)
        self.mode_combo = QComboBox(self)
        self.mode_combo.setObjectName("blend_mode")
        self.mode_combo.setToolTip("Blend mode of the active layer or group")

        style = self.style()
        self.add_button = self._button("Add a layer", icons.add_layer())
        add_menu = QMenu(self.add_button)
        for kind, text in (
            (LayerKind.IMAGE, "Image layer"),
            (LayerKind.SKETCH, "Sketch layer"),
            (LayerKind.MASK, "Inpaint mask layer"),
        ):
            add_menu.addAction(text, lambda k=kind: self.add_layer(k))
        self.add_button.setMenu(add_menu)
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.duplicate_button = self._button("Duplicate layer", icons.duplicate_layer())
        self.delete_button = self._button(
            "Delete layer", style.standardIcon(QStyle.StandardPixmap.SP_TrashIcon)
        )
        self.lock_button = self._button("Lock / unlock layer", icons.lock())
        self.lock_button.setCheckable(True)
        self.up_button = self._button(
            "Move layer up", style.standardIcon(QStyle.StandardPixmap.SP_ArrowUp)
        )
        self.down_button = self._button(
            "Move layer down", style.standardIcon(QStyle.StandardPixmap.SP_ArrowDown)
        )
        del style

        self.group_button = self._button("Group layer (Ctrl+G)", icons.add_layer())
        self.group_button.setText("G")
        self.group_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)

        mode_row = QHBoxLayout()
        mode_row.addWidget(QLabel("Mode"))
        mode_row.addWidget(self.mode_combo, 1)
        opacity_row = QHBoxLayout()
        opacity_row.addWidget(QLabel("Opacity"))
        opacity_row.addWidget(self.opacity_slider, 1)
        opacity_row.addWidget(self.opacity_value)
        buttons = QHBoxLayout()
        buttons.setSpacing(2)
        for button in (
            self.add_button,
            self.group_button,
            self.duplicate_button,
            self.delete_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)
        for button in (self.lock_button, self.up_button, self.down_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addLayout(mode_row)
        layout.addLayout(opacity_row)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)

        self.list.currentItemChanged.connect(self._current_changed)
        self.list.itemChanged.connect(self._item_changed)
        self.list.model().rowsMoved.connect(self._rows_moved)
        self.opacity_slider.valueChanged.connect(self._opacity_changed)
        self.mode_combo.activated.connect(self._mode_chosen)
        self.group_button.clicked.connect(self.group_active)
        self.list.fold_clicked.connect(self.toggle_collapsed)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.duplicate_button.clicked.connect(self.duplicate_active)
        self.delete_button.clicked.connect(self.delete_active)
        self.lock_button.clicked.connect(self._lock_clicked)
        self.up_button.clicked.connect(lambda: self.move_active(+1))
        self.down_button.clicked.connect(lambda: self.move_active(-1))
        self._update_controls()

    def _button(self, tip: str, icon: QIcon) -> QToolButton:
        button = QToolButton(self)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.setIcon(icon)
        button.setIconSize(QSize(18, 18))
        return button

    # ---- document ------------------------------------------------------------------------

    def set_document(self, doc: Document | None) -> None:
        if self.doc is not None:
            self.doc.layers_changed.disconnect(self.rebuild)
            self.doc.active_layer_changed.disconnect(self._active_changed)
            self.doc.pixels_changed.disconnect(self._pixels_changed)
            self.doc.preview_changed.disconnect(self._preview_changed)
        self.doc = doc
        if doc is not None:
            doc.layers_changed.connect(self.rebuild)
            doc.active_layer_changed.connect(self._active_changed)
            doc.pixels_changed.connect(self._pixels_changed)
            doc.preview_changed.connect(self._preview_changed)
        self.rebuild()

    def rebuild(self) -> None:
        if self._in_item_change:  # never clear the list under Qt's feet while it reports an edit
            QTimer.singleShot(0, self.rebuild)
            return
        with QSignalBlocker(self.list):
            self.list.clear()
            self._preview_id = None
            if self.doc is not None:
                if self.doc.preview is not None:  # the generation in progress, on top
                    self.list.addItem(self._make_preview_item(self.doc.preview))
                for layer in self._rows():
                    self.list.addItem(self._make_item(layer))
            self._select_active()
        self.list.viewport().update()
        self._update_controls()

    def _rows(self) -> list[Layer]:
        """Top first, a group before its contents, folded groups' contents left out."""
        rows = []
        layers = self.doc.layers
        for layer in reversed(layers):
            folded = any(group.collapsed for group in self._ancestors(layer))
            if not folded:
                rows.append(layer)
        del layers
        return rows

    def _ancestors(self, layer: Layer) -> list[Layer]:
        out, parent = [], layer
        while parent.parent_id is not None:
            try:
                parent = self.doc.layer(parent.parent_id)
            except KeyError:
                break
            if parent in out:
                break
            out.append(parent)
        return out

    def _make_preview_item(self, layer: Layer) -> QListWidgetItem:
        self._preview_owner = self._preview_owner_now()
        text, tip = PREVIEW_LABELS.get(
            self._preview_owner,
            ("Generating… (preview)", "Step preview of the running generation"),
        )
        item = QListWidgetItem(QIcon(layer_thumbnail(self.doc, layer)), text)
        item.setData(ID_ROLE, layer.id)
        item.setFlags(Qt.ItemFlag.ItemIsEnabled)  # not selectable, editable or movable
        item.setForeground(QColor(160, 190, 240))
        item.setToolTip(f"{tip}; it is not part of the picture")
        self._preview_id = layer.id
        return item

    def _preview_owner_now(self) -> int:
        """Who shows the preview layer: a job id, staging or live painting."""
        job = self.doc.preview_job if self.doc is not None else None
        return job if job is not None else 0

    def _make_item(self, layer: Layer) -> QListWidgetItem:
        item = QListWidgetItem(QIcon(layer_thumbnail(self.doc, layer)), layer.name)
        item.setData(ID_ROLE, layer.id)
        item.setFlags(
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemIsEditable
            | Qt.ItemFlag.ItemIsUserCheckable
            | Qt.ItemFlag.ItemIsDragEnabled
        )
        item.setCheckState(Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked)
        item.setData(DEPTH_ROLE, len(self._ancestors(layer)))
        if layer.kind is LayerKind.GROUP:
            item.setData(GROUP_ROLE, "closed" if layer.collapsed else "open")
        tip = KIND_LABELS.get(layer.kind, layer.kind.value)
        if layer.blend_mode != blend.NORMAL:
            tip += f", {blend.label(layer.blend_mode)}"
        if layer.locked:
            tip += " (locked)"
        item.setToolTip(f"{layer.name}\n{tip}\nDouble-click to rename; tick to show/hide")
        if not layer.visible:
            item.setForeground(QColor(130, 130, 130))
        return item

    def item_for(self, layer_id: int) -> QListWidgetItem | None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(ID_ROLE) == layer_id:
                return item
        return None

    def _select_active(self) -> None:
        if self.doc is None or self.doc.active_layer_id is None:
            return
        item = self.item_for(self.doc.active_layer_id)
        if item is not None and item is not self.list.currentItem():  # keep a Ctrl-click set
            with QSignalBlocker(self.list):
                self.list.setCurrentItem(item)

    def _update_controls(self) -> None:
        layer = self.doc.active_layer if self.doc is not None else None
        has_layer = layer is not None and layer.kind is not LayerKind.PREVIEW
        for widget in (
            self.opacity_slider,
            self.mode_combo,
            self.group_button,
            self.duplicate_button,
            self.delete_button,
            self.lock_button,
            self.up_button,
            self.down_button,
        ):
            widget.setEnabled(has_layer)
        self.add_button.setEnabled(self.doc is not None)
        if has_layer:
            with QSignalBlocker(self.opacity_slider):
                self.opacity_slider.setValue(round(layer.opacity * 100))
            self.opacity_value.setText(f"{layer.opacity * 100:.0f}%")
            self.lock_button.setChecked(layer.locked)
            self._fill_modes(layer)

    def _fill_modes(self, layer: Layer) -> None:
        labels = blend.GROUP_MODE_LABELS if layer.kind is LayerKind.GROUP else blend.MODE_LABELS
        with QSignalBlocker(self.mode_combo):
            self.mode_combo.clear()
            for mode, text in labels.items():
                self.mode_combo.addItem(text, mode)
            if self.mode_combo.findData(layer.blend_mode) < 0:  # kept from a file, drawn normal
                self.mode_combo.addItem(
                    f"{blend.label(layer.blend_mode)}: drawn as Normal", layer.blend_mode
                )
            self.mode_combo.setCurrentIndex(self.mode_combo.findData(layer.blend_mode))

    # ---- reactions to the document --------------------------------------------------------

    def _active_changed(self, _layer_id: int) -> None:
        self._select_active()
        self._update_controls()

    def _pixels_changed(self, layer_id: int, _rect) -> None:
        self._dirty_thumbs.add(layer_id)
        if not self._thumb_timer.isActive():
            self._thumb_timer.start()

    def _preview_changed(self, _rect) -> None:
        preview = self.doc.preview if self.doc is not None else None
        if (
            (preview is None) != (self._preview_id is None)
            or (preview is not None and preview.id != self._preview_id)
            or (preview is not None and self._preview_owner_now() != self._preview_owner)
        ):
            self.rebuild()
        elif preview is not None:
            self._pixels_changed(preview.id, _rect)

    def _refresh_thumbnails(self) -> None:
        if self.doc is None:
            return
        for layer_id in self._dirty_thumbs:
            item = self.item_for(layer_id)
            try:
                layer = self.doc.layer(layer_id)
            except KeyError:  # removed since; the list is being rebuilt
                continue
            if item is not None:
                with QSignalBlocker(self.list):
                    item.setIcon(QIcon(layer_thumbnail(self.doc, layer)))
        self._dirty_thumbs.clear()

    # ---- user actions -> document --------------------------------------------------------

    def _current_changed(self, current: QListWidgetItem | None, _previous) -> None:
        if self.doc is not None and current is not None:
            self.doc.set_active(current.data(ID_ROLE))
            self._update_controls()

    def _item_changed(self, item: QListWidgetItem) -> None:
        if self.doc is None:
            return
        layer = self.doc.layer(item.data(ID_ROLE))
        visible = item.checkState() == Qt.CheckState.Checked
        name = item.text().strip()
        self._in_item_change = True
        try:
            if visible != layer.visible:
                self.doc.set_visible(layer.id, visible)
            elif name and name != layer.name:
                self.doc.rename_layer(layer.id, name)
            elif not name:
                self.rebuild()
        finally:
            self._in_item_change = False

    def _rows_moved(self, _parent, start: int, _end: int, _dest, row: int) -> None:
        if self.doc is None:
            return
        new_row = row if row < start else row - 1
        item = self.list.item(new_row)
        if item is None:
            return
        layer_id = item.data(ID_ROLE)
        if any(layer.kind is LayerKind.GROUP for layer in self.doc.layers):
            above = self.list.item(new_row - 1) if new_row > 0 else None
            above_id = above.data(ID_ROLE) if above is not None else None
            QTimer.singleShot(0, lambda: self._apply_nested_move(layer_id, above_id))
            return
        layer_rows = new_row - (1 if self._preview_id is not None else 0)
        target = max(0, len(self.doc.layers) - 1 - layer_rows)
        # rebuild after Qt finishes its own bookkeeping of the drop
        QTimer.singleShot(0, lambda: self._apply_move(layer_id, target))

    def _apply_move(self, layer_id: int, target: int) -> None:
        if self.doc is None:
            return
        self.doc.move_layer(layer_id, target)
        self.doc.set_active(layer_id)
        self.rebuild()

    def _apply_nested_move(self, layer_id: int, above_id: int | None) -> None:
        """Dropped under the row ``above_id``: into it if it is an open group, else next to it
        (below it, in its group)."""
        if self.doc is None:
            return
        try:
            above = self.doc.layer(above_id) if above_id not in (None, self._preview_id) else None
            if above is None or above.id == layer_id:
                parent, position = None, len(self.doc.children_of(None))
            elif above.kind is LayerKind.GROUP and not above.collapsed:
                parent, position = above.id, len(self.doc.children_of(above.id))
            else:
                parent = above.parent_id
                siblings = [x for x in self.doc.children_of(parent) if x.id != layer_id]
                position = siblings.index(above)
            self.doc.move_into(layer_id, parent, position)
        except (KeyError, ValueError) as err:
            self.doc.notice.emit(str(err))
        self.doc.set_active(layer_id)
        self.rebuild()

    def _mode_chosen(self, index: int) -> None:
        layer = self.doc.active_layer if self.doc is not None else None
        mode = self.mode_combo.itemData(index)
        if layer is not None and isinstance(mode, str):
            self.doc.set_blend_mode(layer.id, mode)

    def set_active_mode(self, mode: str) -> None:
        layer = self.doc.active_layer if self.doc is not None else None
        if layer is not None:
            self.doc.set_blend_mode(layer.id, mode)

    def selected_layer_ids(self) -> list[int]:
        """The selected rows' layers (the preview row never), or the active layer alone."""
        ids = [
            item.data(ID_ROLE)
            for item in self.list.selectedItems()
            if item.data(ID_ROLE) != self._preview_id
        ]
        active = self.doc.active_layer if self.doc is not None else None
        if not ids and active is not None and active.kind is not LayerKind.PREVIEW:
            ids = [active.id]
        return ids

    def group_active(self) -> None:
        """Ctrl+G: put the selected layers (or the active one) in a new group."""
        if self.doc is None:
            return
        ids = self.selected_layer_ids()
        if ids:
            self.doc.group_layers(ids)

    def ungroup_active(self) -> None:
        layer = self.doc.active_layer if self.doc is not None else None
        if layer is None:
            return
        if layer.kind is LayerKind.GROUP:
            self.doc.ungroup(layer.id)
        elif layer.parent_id is not None:  # take the layer out of its group
            parent = self.doc.layer(layer.parent_id)
            outer = self.doc.children_of(parent.parent_id)
            self.doc.move_into(layer.id, parent.parent_id, outer.index(parent) + 1)

    def toggle_collapsed(self, group_id: int) -> None:
        if self.doc is not None:
            group = self.doc.layer(group_id)
            self.doc.set_collapsed(group_id, not group.collapsed)

    def _context_menu(self, pos: QPoint) -> None:
        layer = self.doc.active_layer if self.doc is not None else None
        if layer is None or layer.kind is LayerKind.PREVIEW:
            return
        menu = self.context_menu(layer)
        menu.exec(self.list.viewport().mapToGlobal(pos))

    def context_menu(self, layer: Layer) -> QMenu:
        menu = QMenu(self)
        modes = menu.addMenu("Blend Mode")
        labels = blend.GROUP_MODE_LABELS if layer.kind is LayerKind.GROUP else blend.MODE_LABELS
        for mode, text in labels.items():
            action = modes.addAction(text, lambda m=mode: self.set_active_mode(m))
            action.setCheckable(True)
            action.setChecked(mode == layer.blend_mode)
        menu.addAction("Group Layer", self.group_active)
        if layer.kind is LayerKind.GROUP:
            menu.addAction("Ungroup", self.ungroup_active)
            menu.addAction(
                "Expand Group" if layer.collapsed else "Collapse Group",
                lambda: self.toggle_collapsed(layer.id),
            )
        elif layer.parent_id is not None:
            menu.addAction("Remove from Group", self.ungroup_active)
        return menu

    def _opacity_changed(self, value: int) -> None:
        layer = self.doc.active_layer if self.doc is not None else None
        if layer is not None:
            self.opacity_value.setText(f"{value}%")
            self.doc.set_opacity(layer.id, value / 100.0)  # successive changes merge into one step

    def _lock_clicked(self, checked: bool) -> None:
        layer = self.doc.active_layer if self.doc is not None else None
        if layer is not None:
            self.doc.set_locked(layer.id, checked)

    def add_layer(self, kind: LayerKind) -> Layer | None:
        if self.doc is None:
            return None
        layer = self.doc.add_layer(kind)
        self.add_requested.emit(kind)
        return layer

    def duplicate_active(self) -> None:
        layer = self.doc.active_layer if self.doc is not None else None
        if layer is not None:
            self.doc.duplicate_layer(layer.id)

    def delete_active(self) -> None:
        layer = self.doc.active_layer if self.doc is not None else None
        if layer is not None:
            self.doc.remove_layer(layer.id)

    def move_active(self, delta: int) -> None:
        """One step up or down; with groups, into a group met and out at a group's edge."""
        layer = self.doc.active_layer if self.doc is not None else None
        if layer is not None:
            self.doc.step_layer(layer.id, delta)

    def rename_active(self) -> None:
        layer = self.doc.active_layer if self.doc is not None else None
        item = self.item_for(layer.id) if layer is not None else None
        if item is not None:
            self.list.editItem(item)
