"""Pick any number of LoRAs from the model library, each with a weight, inside the generate panel.

Rows are keyed by file path, not by library entry: a LoRA restored from a saved document or a
recipe shows (by its file name) before the background scan has listed it, and gets its base and
hash as soon as the library knows them. The "Add LoRA" menu lists the library's LoRAs made for
the chosen checkpoint's base (LoRAs of unknown base are always listed).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.generation.request import recipe_loras
from app.library import Base, ModelEntry, ModelKind, ModelLibrary, lora_name

log = logging.getLogger(__name__)

DEFAULT_WEIGHT = 0.8
MIN_WEIGHT, MAX_WEIGHT, WEIGHT_STEP = -2.0, 2.0, 0.05
WARNING_STYLE = "color: #e0a040;"

LoraPair = tuple[str, float]


class LoraRow(QWidget):
    """One chosen LoRA: enable checkbox, name, weight and a remove button."""

    def __init__(self, path: str, weight: float, enabled: bool, parent: QWidget) -> None:
        super().__init__(parent)
        self.path = path
        self.mismatch = False  # made for another base than the chosen checkpoint's
        self.enable_check = QCheckBox(self)
        self.enable_check.setChecked(enabled)
        self.enable_check.setToolTip("Use this LoRA")
        self.name_label = QLabel(lora_name(path), self)
        self.name_label.setMinimumWidth(40)
        self.weight_spin = QDoubleSpinBox(self)
        self.weight_spin.setRange(MIN_WEIGHT, MAX_WEIGHT)
        self.weight_spin.setSingleStep(WEIGHT_STEP)
        self.weight_spin.setDecimals(2)
        self.weight_spin.setValue(weight)
        self.weight_spin.setToolTip("LoRA weight (-2 to 2)")
        self.remove_button = QToolButton(self)
        self.remove_button.setText("✕")
        self.remove_button.setToolTip("Remove this LoRA")
        line = QHBoxLayout(self)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.enable_check)
        line.addWidget(self.name_label, 1)
        line.addWidget(self.weight_spin)
        line.addWidget(self.remove_button)

    @property
    def enabled(self) -> bool:
        return self.enable_check.isChecked()

    @property
    def weight(self) -> float:
        return self.weight_spin.value()

    def show_entry(self, entry: ModelEntry | None, base: Base | None) -> None:
        """Name, tooltip and a warning colour when the LoRA is made for another base."""
        self.name_label.setText(lora_name(self.path))
        lines = [self.path]
        mismatch = False
        if entry is not None:
            lines.append(entry.summary())
            if entry.hash:
                lines.append(f"hash {entry.hash}")
            if entry.problem:
                lines.append(f"cannot be used: {entry.problem}")
            mismatch = base is not None and not entry.works_with(base)
            if mismatch:
                lines.append(
                    f"made for {entry.base.value} models; the chosen model is {base.value}"
                )
        tip = "\n".join(lines)
        self.name_label.setToolTip(tip)
        self.setToolTip(tip)
        self.name_label.setStyleSheet(WARNING_STYLE if mismatch or _bad(entry) else "")
        self.mismatch = mismatch


class LoraPicker(QWidget):
    """A compact list of chosen LoRAs with an "Add LoRA" menu fed by the model library."""

    changed = Signal()  # rows added/removed, a weight or an enable box changed

    def __init__(self, scanner: ModelLibrary | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("loraPicker")
        self._scanner = scanner
        self._entries: dict[str, ModelEntry] = {}
        self._base: Base | None = None
        self._ignored_reason: str | None = None
        self._missing: list[str] = []
        self.rows: list[LoraRow] = []

        self.title_label = QLabel("LoRA", self)
        self.add_button = QToolButton(self)
        self.add_button.setText("Add LoRA")
        self.add_button.setToolTip("Add a LoRA from the model library")
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.add_menu = QMenu(self.add_button)
        self.add_menu.setToolTipsVisible(True)
        self.add_button.setMenu(self.add_menu)
        self.add_menu.aboutToShow.connect(self.fill_menu)
        self.note_label = QLabel(self)
        self.note_label.setObjectName("loraNote")
        self.note_label.setWordWrap(True)
        self.note_label.setStyleSheet(WARNING_STYLE)
        self.note_label.hide()

        header = QHBoxLayout()
        header.addWidget(self.title_label, 1)
        header.addWidget(self.add_button)
        self._rows_layout = QVBoxLayout()
        self._rows_layout.setContentsMargins(0, 0, 0, 0)
        self._rows_layout.setSpacing(2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addLayout(self._rows_layout)
        layout.addWidget(self.note_label)

        if scanner is not None:
            self._take_entries(scanner.entries())
            scanner.entries_changed.connect(self._on_entries)
            scanner.entry_updated.connect(self._on_entry_updated)
        self._refresh()

    # ---- what the generate panel reads and sets -------------------------------------------

    def loras(self) -> tuple[LoraPair, ...]:
        """(path, weight) of the enabled rows, in the order they were added."""
        return tuple((row.path, round(row.weight, 4)) for row in self.rows if row.enabled)

    def rows_state(self) -> list[list[Any]]:
        """Every row as ``[path, weight, enabled]`` (JSON-safe; disabled rows included)."""
        return [[row.path, round(row.weight, 4), row.enabled] for row in self.rows]

    def set_loras(self, pairs: Iterable[Sequence[Any]]) -> None:
        """Replace the rows with ``(path, weight)`` pairs or ``(path, weight, enabled)``
        triples; malformed items are skipped. Emits ``changed`` once."""
        rows: list[tuple[str, float, bool]] = []
        for item in pairs:
            try:
                path, weight = _normal(str(item[0])), float(item[1])
                enabled = bool(item[2]) if len(item) > 2 else True
            except (TypeError, ValueError, IndexError):
                log.warning("ignoring a malformed LoRA entry: %r", item)
                continue
            if path and math.isfinite(weight):
                rows.append((path, weight, enabled))
        if [(p, round(w, 4), e) for p, w, e in rows] == [tuple(r) for r in self.rows_state()]:
            return
        self.blockSignals(True)
        try:
            for row in list(self.rows):
                self._remove_row(row)
            self._missing = []
            for path, weight, enabled in rows:
                self.add_lora(path, weight, enabled)
        finally:
            self.blockSignals(False)
        self._refresh()
        self.changed.emit()

    def add_lora(self, path: str, weight: float = DEFAULT_WEIGHT, enabled: bool = True) -> LoraRow:
        """Add a row (an already listed file is not added twice: its row is returned)."""
        path = _normal(path)
        for row in self.rows:
            if row.path == path:
                return row
        row = LoraRow(path, max(MIN_WEIGHT, min(MAX_WEIGHT, weight)), enabled, self)
        row.weight_spin.valueChanged.connect(lambda _value: self.changed.emit())
        row.enable_check.toggled.connect(self._on_toggled)
        row.remove_button.clicked.connect(lambda _=False, r=row: self.remove_lora(r.path))
        self.rows.append(row)
        self._rows_layout.addWidget(row)
        row.show_entry(self._entries.get(path), self._base)
        if self._scanner is not None:
            self._scanner.warm_lora_hash(path)
        self._refresh()
        self.changed.emit()
        return row

    def remove_lora(self, path: str) -> None:
        path = _normal(path)
        for row in list(self.rows):
            if row.path == path:
                self._remove_row(row)
                self._refresh()
                self.changed.emit()

    def set_base(self, base: Base | None) -> None:
        """Filter the menu (and mark rows) for a checkpoint of ``base`` (None: list all)."""
        self._base = None if base is Base.UNKNOWN else base
        self._refresh()

    def set_ignored_reason(self, reason: str | None) -> None:
        """Say (when rows exist) why the LoRAs will not be used, e.g. the classic engine."""
        self._ignored_reason = reason
        self._refresh()

    def resolve(self, entries: Any) -> tuple[list[LoraPair], list[str]]:
        """A recipe's LoRAs as (path, weight) pairs and the names not found (see
        :meth:`app.library.ModelLibrary.resolve_loras`)."""
        if self._scanner is None:
            return list(recipe_loras(entries)), []  # no library: the recorded paths only
        return self._scanner.resolve_loras(entries, self._base)

    def show_missing(self, names: Sequence[str]) -> None:
        """Tell the user which LoRAs of a recipe could not be found."""
        self._missing = list(names)
        self._refresh()

    def available(self) -> list[ModelEntry]:
        """Library LoRAs the menu offers for the current base, by name."""
        shown = [
            e
            for e in self._entries.values()
            if e.usable and (self._base is None or e.works_with(self._base))
        ]
        return sorted(shown, key=lambda e: (e.display_name.lower(), e.path))

    # ---- the menu -------------------------------------------------------------------------

    def fill_menu(self) -> None:
        self.add_menu.clear()
        entries = self.available()
        if not entries:
            text = "No LoRAs for this model" if self._entries else "No LoRAs in the model library"
            self.add_menu.addAction(text).setEnabled(False)
            return
        added = {row.path for row in self.rows}
        for entry in entries:
            action = self.add_menu.addAction(
                f"{lora_name(entry.path)}  —  {entry.summary()}".replace("&", "&&")
            )
            tip = entry.path + (f"\nhash {entry.hash}" if entry.hash else "")
            action.setToolTip(tip)
            action.setData(entry.path)
            if entry.path in added:
                action.setCheckable(True)
                action.setChecked(True)
                action.setEnabled(False)
            action.triggered.connect(lambda _=False, p=entry.path: self.add_lora(p))

    # ---- internals ------------------------------------------------------------------------

    def _on_toggled(self, _on: bool) -> None:
        self._refresh()
        self.changed.emit()

    def _remove_row(self, row: LoraRow) -> None:
        self.rows.remove(row)
        self._rows_layout.removeWidget(row)
        row.hide()
        row.deleteLater()

    def _take_entries(self, entries: Iterable[ModelEntry]) -> None:
        self._entries = {e.path: e for e in entries if e.kind is ModelKind.LORA}

    def _on_entries(self, entries: list[ModelEntry]) -> None:
        self._take_entries(entries)
        self._refresh()

    def _on_entry_updated(self, entry: ModelEntry) -> None:
        if entry.kind is ModelKind.LORA:
            self._entries[entry.path] = entry
            for row in self.rows:
                if row.path == entry.path:
                    row.show_entry(entry, self._base)

    def _refresh(self) -> None:
        for row in self.rows:
            row.show_entry(self._entries.get(row.path), self._base)
        count = len(self.loras())
        self.title_label.setText(f"LoRA ({count})" if count else "LoRA")
        notes = []
        if self._ignored_reason and self.rows:
            notes.append(self._ignored_reason)
        mismatched = [lora_name(r.path) for r in self.rows if r.enabled and r.mismatch]
        if mismatched and not self._ignored_reason:
            notes.append(f"Not made for this model: {', '.join(mismatched)}")
        if self._missing:
            notes.append(f"Not in the model library: {', '.join(self._missing)}")
        self.note_label.setText("\n".join(notes))
        self.note_label.setVisible(bool(notes))


def _normal(path: str) -> str:
    """Absolute paths, as the library lists them (so a row matches its library entry)."""
    with contextlib.suppress(ValueError, OSError):
        return os.path.abspath(os.path.expanduser(path))
    return path


def _bad(entry: ModelEntry | None) -> bool:
    return entry is not None and entry.problem is not None
