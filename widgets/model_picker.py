"""Choose a checkpoint, VAE and ControlNet from the model library.

The library itself is the app service :class:`app.library.ModelLibrary` (it scans and hashes in
the background; the UI thread never reads a model file except the header of a file the user
drops). ``ModelCombo`` is one filtered combobox (reusable per control layer); ``ModelPicker`` puts a
checkpoint, a VAE and a ControlNet combo together, follows the settings and accepts dropped files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.library import Base, ModelEntry, ModelFormat, ModelKind, ModelLibrary, ScanProgress
from app.settings import Settings, SettingsStore

log = logging.getLogger(__name__)

CLASSIC_LABEL = "Built-in classic (no model)"
DROPPABLE_SUFFIXES = (".safetensors", ".sft")
ENTRY_ROLE = Qt.ItemDataRole.UserRole
_INDEX = QModelIndex | QPersistentModelIndex


# ---- the list model and combobox -----------------------------------------------------------


class ModelListModel(QAbstractListModel):
    """Library entries of some kinds, optionally filtered to a base, with a "none" row first.

    Entries with a problem are listed but disabled, their tooltip saying why."""

    def __init__(
        self,
        kinds: Iterable[ModelKind],
        none_label: str | None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._kinds = frozenset(kinds)
        self._none_label = none_label
        self._all: list[ModelEntry] = []
        self._rows: list[ModelEntry | None] = []
        self._base: Base | None = None
        self._allow_pickle = False
        self._refilter()

    def set_entries(self, entries: Iterable[ModelEntry]) -> None:
        self._all = [e for e in entries if e.kind in self._kinds]
        self._reset()

    def set_base(self, base: Base | None) -> None:
        if base != self._base:
            self._base = base
            self._reset()

    def set_allow_pickle(self, allow: bool) -> None:
        if allow != self._allow_pickle:
            self._allow_pickle = allow
            self._reset()

    def update_entry(self, entry: ModelEntry) -> None:
        self._all = [entry if e.path == entry.path else e for e in self._all]
        for row, current in enumerate(self._rows):
            if current is not None and current.path == entry.path:
                self._rows[row] = entry
                index = self.index(row)
                self.dataChanged.emit(index, index)

    def entry(self, row: int) -> ModelEntry | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, path: str | None) -> int:
        for row, entry in enumerate(self._rows):
            if (entry.path if entry is not None else None) == path:
                return row
        return -1

    def _reset(self) -> None:
        self.beginResetModel()
        self._refilter()
        self.endResetModel()

    def _refilter(self) -> None:
        rows: list[ModelEntry | None] = [None] if self._none_label is not None else []
        shown = [
            e.with_pickle_allowed() if self._allow_pickle else e
            for e in self._all
            if (self._base is None or e.works_with(self._base))
            and (self._allow_pickle or e.format is not ModelFormat.PICKLE)
        ]
        shown.sort(key=lambda e: (not e.usable, e.display_name.lower(), e.path))
        self._rows = rows + shown

    # -- Qt model API

    def rowCount(self, parent: _INDEX = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _INDEX, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        entry = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            if entry is None:
                return self._none_label
            return f"{entry.display_name}  —  {entry.summary()}"
        if role == Qt.ItemDataRole.ToolTipRole and entry is not None:
            lines = [entry.path]
            if entry.hash:
                lines.append(f"hash {entry.hash}")
            if entry.problem:
                lines.append(f"cannot be used: {entry.problem}")
            return "\n".join(lines)
        if role == ENTRY_ROLE:
            return entry
        return None

    def flags(self, index: _INDEX) -> Qt.ItemFlag:
        flags = super().flags(index)
        entry = self._rows[index.row()] if index.isValid() else None
        if entry is not None and not entry.usable:
            flags &= ~Qt.ItemFlag.ItemIsEnabled & ~Qt.ItemFlag.ItemIsSelectable
        return flags


class ModelCombo(QComboBox):
    """One model choice (a checkpoint, a VAE, a ControlNet for one control layer).

    Keeps the chosen path across rescans; ``entry_changed`` fires only when the choice changes.
    """

    entry_changed = Signal(object)  # ModelEntry | None

    def __init__(
        self,
        scanner: ModelLibrary,
        kinds: ModelKind | Iterable[ModelKind],
        none_label: str | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        kinds = [kinds] if isinstance(kinds, ModelKind) else list(kinds)
        self._model = ModelListModel(kinds, none_label, self)
        self.setModel(self._model)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(24)
        self._chosen: str | None = None
        self._wanted: str | None = None  # a path asked for before the scan listed it
        self._model.set_entries(scanner.entries())
        scanner.entries_changed.connect(self._on_entries)
        scanner.entry_updated.connect(self._model.update_entry)
        self.currentIndexChanged.connect(self._on_index)

    # -- public

    def entry(self) -> ModelEntry | None:
        return self._model.entry(self.currentIndex())

    def path(self) -> str | None:
        entry = self.entry()
        return entry.path if entry is not None else None

    def set_path(self, path: str | None) -> bool:
        """Choose the entry at ``path`` (None = the "none" row). False if it is not listed
        (yet): it will be chosen as soon as a scan lists it."""
        if path and not path.startswith("remote:"):  # a server's model is a name, not a path
            path = os.path.abspath(path)
        path = path or None
        row = self._model.row_of(path)
        if row < 0 or (self._model.entry(row) is not None and not self._model.entry(row).usable):
            self._wanted = path
            return False
        self._wanted = None
        self.setCurrentIndex(row)
        return True

    def set_base(self, base: Base | None) -> None:
        """Show only entries compatible with ``base`` (None = all)."""
        self._keep_choice(lambda: self._model.set_base(base))

    def set_allow_pickle(self, allow: bool) -> None:
        self._keep_choice(lambda: self._model.set_allow_pickle(allow))

    def list_model(self) -> ModelListModel:
        return self._model

    # -- internals

    def _on_entries(self, entries: list[ModelEntry]) -> None:
        self._keep_choice(lambda: self._model.set_entries(entries))
        if self._wanted is not None:
            self.set_path(self._wanted)

    def _keep_choice(self, change) -> None:
        chosen = self._chosen
        self.blockSignals(True)
        try:
            change()
            row = self._model.row_of(chosen)
            self.setCurrentIndex(row if row >= 0 else 0)
        finally:
            self.blockSignals(False)
        self._on_index(self.currentIndex())

    def _on_index(self, _row: int) -> None:
        path = self.path()
        if path != self._chosen:
            self._chosen = path
            self.entry_changed.emit(self.entry())


class ModelPicker(QWidget):
    """Checkpoint, VAE and ControlNet choosers with a rescan button and a status line.

    With a ``SettingsStore`` the chosen checkpoint and VAE are remembered, pickle files are listed
    only when the settings allow them. Dropping a ``.safetensors`` file here adds it to the
    library and selects it."""

    checkpoint_changed = Signal(object)  # ModelEntry | None (None = built-in classic engine)
    vae_changed = Signal(object)  # ModelEntry | None (None = the checkpoint's own VAE)
    controlnet_changed = Signal(object)  # ModelEntry | None

    def __init__(
        self,
        scanner: ModelLibrary,
        store: SettingsStore | None = None,
        parent: QWidget | None = None,
        *,
        show_vae: bool = True,
        show_controlnet: bool = True,
    ) -> None:
        super().__init__(parent)
        self._scanner = scanner
        self._store = store
        self.checkpoint_combo = ModelCombo(scanner, ModelKind.CHECKPOINT, CLASSIC_LABEL, self)
        self.vae_combo = ModelCombo(
            scanner, ModelKind.VAE, "Automatic (checkpoint's own VAE)", self
        )
        self.controlnet_combo = ModelCombo(scanner, ModelKind.CONTROLNET, "No ControlNet", self)
        self.rescan_button = QToolButton(self)
        self.rescan_button.setText("Rescan")
        self.rescan_button.setToolTip("Look for new models in the model folders")
        self.status_label = QLabel(self)
        self.status_label.setObjectName("modelStatus")

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Model", self.checkpoint_combo)
        form.addRow("VAE", self.vae_combo)
        form.addRow("ControlNet", self.controlnet_combo)
        form.setRowVisible(1, show_vae)
        form.setRowVisible(2, show_controlnet)
        status = QHBoxLayout()
        status.addWidget(self.status_label, 1)
        status.addWidget(self.rescan_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addLayout(status)
        self.setAcceptDrops(True)

        self.checkpoint_combo.entry_changed.connect(self._on_checkpoint)
        self.vae_combo.entry_changed.connect(self._on_vae)
        self.controlnet_combo.entry_changed.connect(self.controlnet_changed)
        self.rescan_button.clicked.connect(scanner.rescan)
        scanner.scan_started.connect(self._show_status)
        scanner.scan_progress.connect(self._show_progress)
        scanner.scan_finished.connect(self._show_status)
        scanner.entries_changed.connect(self._show_status)
        self._unsubscribe = None
        if store is not None:
            self._apply_settings(store.settings)
            self._unsubscribe = store.subscribe(lambda s, _changed: self._apply_settings(s))
            self.destroyed.connect(self._unsubscribe)
            self.checkpoint_combo.set_path(store.settings.checkpoint or None)
            self.vae_combo.set_path(store.settings.vae or None)
        self._show_status()

    # -- what the generate panel reads

    def checkpoint(self) -> ModelEntry | None:
        return self.checkpoint_combo.entry()

    def checkpoint_path(self) -> str | None:
        """The checkpoint for ``Request.model_path``; None = the built-in classic engine."""
        return self.checkpoint_combo.path()

    def vae_path(self) -> str | None:
        return self.vae_combo.path()

    def controlnet_path(self) -> str | None:
        return self.controlnet_combo.path()

    def base(self) -> Base | None:
        """The chosen checkpoint's base (None for the classic engine)."""
        entry = self.checkpoint()
        return entry.base if entry is not None else None

    def set_checkpoint_path(self, path: str | None) -> bool:
        return self.checkpoint_combo.set_path(path)

    def add_dropped_file(self, path: str | Path) -> ModelEntry:
        """Add a model file to the library and select it in the matching combo."""
        entry = self._scanner.add_file(path)
        combo = {
            ModelKind.CHECKPOINT: self.checkpoint_combo,
            ModelKind.VAE: self.vae_combo,
            ModelKind.CONTROLNET: self.controlnet_combo,
        }.get(entry.kind)
        if combo is not None and entry.usable:
            combo.set_path(entry.path)
        return entry

    # -- drag and drop

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _dropped_model_files(event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        files = _dropped_model_files(event.mimeData().urls())
        for file in files:
            self.add_dropped_file(file)
        if files:
            event.acceptProposedAction()

    # -- internals

    def _on_checkpoint(self, entry: ModelEntry | None) -> None:
        base = entry.base if entry is not None else None
        self.controlnet_combo.set_base(base)
        self.vae_combo.set_base(base)
        if self._store is not None:
            self._store.update(checkpoint=entry.path if entry is not None else "")
        self.checkpoint_changed.emit(entry)

    def _on_vae(self, entry: ModelEntry | None) -> None:
        if self._store is not None:
            self._store.update(vae=entry.path if entry is not None else "")
        self.vae_changed.emit(entry)

    def _apply_settings(self, settings: Settings) -> None:
        for combo in (self.checkpoint_combo, self.vae_combo, self.controlnet_combo):
            combo.set_allow_pickle(settings.allow_pickle)

    def _show_progress(self, progress: ScanProgress) -> None:
        if progress.phase == "scan":
            self.status_label.setText(f"Scanning… {progress.done} files, {progress.models} models")
        elif progress.total:
            self.status_label.setText(f"Hashing models… {100 * progress.done // progress.total}%")

    def _show_status(self, *_args: object) -> None:
        if self._scanner.is_scanning() and not self._scanner.entries():
            self.status_label.setText("Scanning for models…")
            return
        if self._scanner.is_scanning():
            return  # progress messages are showing
        usable = [e for e in self._scanner.entries() if e.usable and e.kind is ModelKind.CHECKPOINT]
        if usable:
            self.status_label.setText(f"{len(usable)} checkpoints found")
        else:
            self.status_label.setText("No checkpoints found: add a model folder in Settings")


def _dropped_model_files(urls) -> list[str]:
    return [
        url.toLocalFile()
        for url in urls
        if url.isLocalFile() and url.toLocalFile().lower().endswith(DROPPABLE_SUFFIXES)
    ]
