"""The staging strip: thumbnails of a batch's variants; click one to see it on the canvas, accept
the chosen ones into the layer stack, discard the rest. It only draws ``app.staging.Staging``."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.layers import Layer
from app.staging import Staging

THUMB = 96


class StagingStrip(QWidget):
    def __init__(self, staging: Staging, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stagingStrip")
        self.staging = staging
        self.title = QLabel(self)
        self.thumbs = QListWidget(self)
        self.thumbs.setViewMode(QListWidget.ViewMode.IconMode)
        self.thumbs.setFlow(QListWidget.Flow.LeftToRight)
        self.thumbs.setWrapping(False)
        self.thumbs.setIconSize(QSize(THUMB, THUMB))
        self.thumbs.setFixedHeight(THUMB + 44)
        self.thumbs.setMovement(QListWidget.Movement.Static)
        self.thumbs.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.previous_button = QToolButton(self)
        self.previous_button.setText("◀")
        self.previous_button.setToolTip("Previous variant")
        self.next_button = QToolButton(self)
        self.next_button.setText("▶")
        self.next_button.setToolTip("Next variant")
        self.accept_button = QPushButton("Accept", self)
        self.accept_button.setToolTip("Keep the selected variants as layers (Enter)")
        self.accept_all_button = QPushButton("Accept all", self)
        self.discard_button = QPushButton("Discard", self)
        self.discard_button.setToolTip("Drop all variants")

        buttons = QHBoxLayout()
        buttons.addWidget(self.title, 1)
        buttons.addWidget(self.previous_button)
        buttons.addWidget(self.next_button)
        buttons.addWidget(self.accept_button)
        buttons.addWidget(self.accept_all_button)
        buttons.addWidget(self.discard_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.thumbs)

        self.thumbs.itemClicked.connect(self._on_clicked)
        self.thumbs.currentRowChanged.connect(self._on_row)
        self.previous_button.clicked.connect(staging.previous)
        self.next_button.clicked.connect(staging.next)
        self.accept_button.clicked.connect(self.accept_selected)
        self.accept_all_button.clicked.connect(staging.accept_all)
        self.discard_button.clicked.connect(staging.discard)
        for key, slot in (
            ("Right", staging.next),
            ("Left", staging.previous),
            ("Return", self.accept_selected),
        ):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
        staging.changed.connect(self._rebuild)
        staging.current_changed.connect(self._show_current)
        self._rebuild()

    def accept_selected(self) -> None:
        rows = sorted(index.row() for index in self.thumbs.selectedIndexes())
        self.staging.accept(rows or None)

    def _rebuild(self) -> None:
        self.thumbs.blockSignals(True)
        self.thumbs.clear()
        for index, layer in enumerate(self.staging.layers):
            item = QListWidgetItem(QIcon(thumbnail(layer)), f"{index + 1} · {_seed(layer)}")
            item.setToolTip(layer.name)
            self.thumbs.addItem(item)
        self.thumbs.blockSignals(False)
        count = len(self.staging)
        self.title.setText(f"{count} variants: click one to see it on the canvas" if count else "")
        self.setVisible(count > 0)
        self._show_current(self.staging.current)

    def _show_current(self, index: int) -> None:
        if 0 <= index < self.thumbs.count() and self.thumbs.currentRow() != index:
            self.thumbs.blockSignals(True)
            self.thumbs.setCurrentRow(index)
            self.thumbs.blockSignals(False)

    def _on_clicked(self, item: QListWidgetItem) -> None:
        self.staging.show(self.thumbs.row(item))

    def _on_row(self, row: int) -> None:
        if row >= 0 and row != self.staging.current:
            self.staging.show(row)


def _seed(layer: Layer) -> str:
    seed = (layer.recipe or {}).get("seed")
    return f"seed {seed}" if seed is not None else layer.name


def thumbnail(layer: Layer, size: int = THUMB) -> QPixmap:
    """A small picture of a layer's pixels (transparent areas over a mid grey)."""
    assert layer.raster is not None
    data = layer.raster.data
    step = max(1, int(np.ceil(max(data.shape[:2]) / size)))
    small = np.ascontiguousarray(data[::step, ::step])
    alpha = small[..., 3:4].astype(np.float32) / 255.0
    rgb = (small[..., :3] * alpha + 128 * (1 - alpha)).astype(np.uint8)
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(image).scaled(
        size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
