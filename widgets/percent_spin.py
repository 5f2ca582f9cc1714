"""A spin box that holds a fraction (0..1) and shows and takes it as a percentage."""

from __future__ import annotations

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QWidget


class PercentSpinBox(QDoubleSpinBox):
    """``value()`` is a fraction; the user sees and types whole percent ("35 %")."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRange(0.0, 1.0)
        self.setDecimals(2)
        self.setSingleStep(0.05)
        self.setSuffix(" %")

    def textFromValue(self, value: float) -> str:
        return f"{value * 100:.0f}"

    def valueFromText(self, text: str) -> float:
        digits = text.replace(self.suffix(), "").replace("%", "").strip()
        try:
            return max(0.0, min(1.0, float(digits) / 100))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        digits = text.replace(self.suffix(), "").replace("%", "").strip()
        if not digits:
            return QValidator.State.Intermediate, text, pos
        try:
            number = float(digits)
        except ValueError:
            return QValidator.State.Invalid, text, pos
        if 0 <= number <= 100:
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Invalid, text, pos
