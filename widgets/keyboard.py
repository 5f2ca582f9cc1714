"""Single-key tool shortcuts that work wherever focus is, except while typing text (as in Krita).

A focused spin box or combo box would otherwise swallow B, E, M… (Qt lets the focused widget
claim a key before shortcuts run: the ``ShortcutOverride`` event). The filter sits only on the
focused widget of its window, so ordinary events pay nothing.
"""

from __future__ import annotations

import contextlib

import shiboken6
from PySide6.QtCore import QEvent, QKeyCombination, QObject, Qt
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)


def is_text_field(widget: QWidget | None) -> bool:
    """True for widgets where letters are typed as text (prompts, names, search boxes).

    Spin boxes take digits only, and a non-editable combo box takes no text, so neither counts.
    """
    if widget is None or not shiboken6.isValid(widget):
        return False
    if isinstance(widget, QTextEdit | QPlainTextEdit):
        return not widget.isReadOnly()
    if isinstance(widget, QComboBox):
        return widget.isEditable()
    if isinstance(widget, QLineEdit):
        return not widget.isReadOnly() and not isinstance(widget.parent(), QAbstractSpinBox)
    return False


def single_key_combinations(actions: list[QAction]) -> set[QKeyCombination]:
    """The shortcuts among ``actions`` that are one key with no Ctrl/Alt/Meta/Shift."""
    keys: set[QKeyCombination] = set()
    for action in actions:
        for sequence in action.shortcuts():
            if sequence.count() != 1:
                continue
            combination = sequence[0]
            if combination.keyboardModifiers() == Qt.KeyboardModifier.NoModifier:
                keys.add(combination)
    return keys


class ToolKeys(QObject):
    """Keeps ``keys`` reaching ``window``'s shortcuts while a non-text widget has focus."""

    def __init__(self, window: QWidget, keys: set[QKeyCombination]) -> None:
        super().__init__(window)
        self.window = window
        self.keys = keys
        self._watched: QWidget | None = None
        app = QApplication.instance()
        app.focusChanged.connect(self._focus_changed)
        self._app = app

    def detach(self) -> None:
        if shiboken6.isValid(self._app):
            with contextlib.suppress(RuntimeError, TypeError):
                self._app.focusChanged.disconnect(self._focus_changed)
        self._unwatch()

    def _unwatch(self) -> None:
        if self._watched is not None and shiboken6.isValid(self._watched):
            self._watched.removeEventFilter(self)
        self._watched = None

    def _focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        if not shiboken6.isValid(self) or not shiboken6.isValid(self.window):
            return
        self._unwatch()
        if new is None or not shiboken6.isValid(new) or new.window() is not self.window:
            return
        if not is_text_field(new):
            new.installEventFilter(self)
            self._watched = new

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            combination = QKeyCombination(
                event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier, Qt.Key(event.key())
            )
            if combination in self.keys and not is_text_field(watched):
                event.ignore()  # not claimed: the window's shortcut runs
                return True
        return False
