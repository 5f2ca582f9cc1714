"""Image › Upscale…: factor, upscaler (Lanczos or a model file), refine with strength/tile/overlap.

A view only: it shows the new size, asks ``check`` (the app's validation) before it closes, and
hands back :class:`app.generation.upscale.UpscaleOptions`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.generation.upscale import SCALES, UpscaleOptions

LANCZOS = "Lanczos"
UPSCALER_FILTER = "Upscaler models (*.safetensors *.pth *.pt);;All files (*)"


class UpscaleDialog(QDialog):
    def __init__(
        self,
        size: tuple[int, int],
        upscalers: list[Path],
        check: Callable[[UpscaleOptions], str | None],
        tile: int = 512,
        can_refine: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Upscale")
        self._size = size
        self._check = check
        self.scale_combo = QComboBox()
        for scale in SCALES:
            self.scale_combo.addItem(f"×{scale:g}", scale)
        self.scale_combo.setCurrentIndex(SCALES.index(2.0))
        self.upscaler_combo = QComboBox()
        self.upscaler_combo.addItem(LANCZOS, None)
        for path in upscalers:
            self.upscaler_combo.addItem(path.name, str(path))
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._browse)
        upscaler_row = QHBoxLayout()
        upscaler_row.addWidget(self.upscaler_combo, 1)
        upscaler_row.addWidget(self.browse_button)
        self.size_label = QLabel()
        self.refine_check = QCheckBox("Refine with the model (tiled image to image)")
        self.refine_check.setEnabled(can_refine)
        if not can_refine:
            self.refine_check.setToolTip("Choose a Stable Diffusion model to refine")
        self.strength_spin = QDoubleSpinBox(minimum=0.05, maximum=1.0, singleStep=0.05, value=0.3)
        self.tile_spin = QSpinBox(minimum=64, maximum=2048, singleStep=64, value=tile)
        self.tile_spin.setSuffix(" px")
        self.overlap_spin = QSpinBox(minimum=0, maximum=1024, singleStep=16, value=64)
        self.overlap_spin.setSuffix(" px")
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setStyleSheet("color: #d04040")
        self.message_label.setVisible(False)

        form = QFormLayout()
        form.addRow("Scale", self.scale_combo)
        form.addRow("New size", self.size_label)
        form.addRow("Upscaler", upscaler_row)
        form.addRow(self.refine_check)
        form.addRow("Strength", self.strength_spin)
        form.addRow("Tile", self.tile_spin)
        form.addRow("Overlap", self.overlap_spin)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Upscale")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message_label)
        layout.addWidget(buttons)

        self.scale_combo.currentIndexChanged.connect(self._show_size)
        self.refine_check.toggled.connect(self._enable_refine_fields)
        self._show_size()
        self._enable_refine_fields(False)

    def options(self) -> UpscaleOptions:
        return UpscaleOptions(
            scale=float(self.scale_combo.currentData()),
            upscaler_path=self.upscaler_combo.currentData(),
            refine=self.refine_check.isChecked(),
            strength=round(self.strength_spin.value(), 3),
            tile=self.tile_spin.value(),
            overlap=self.overlap_spin.value(),
        )

    def accept(self) -> None:
        message = self._check(self.options())
        if message:
            self.message_label.setText(message)
            self.message_label.setVisible(True)
            return
        super().accept()

    def _show_size(self) -> None:
        scale = float(self.scale_combo.currentData())
        width, height = (max(1, round(side * scale)) for side in self._size)
        self.size_label.setText(f"{width} × {height} px ({width * height / 1e6:.1f} MP)")
        self.message_label.setVisible(False)

    def _enable_refine_fields(self, on: bool) -> None:
        for field in (self.strength_spin, self.tile_spin, self.overlap_spin):
            field.setEnabled(on)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose an upscaler model", "", UPSCALER_FILTER)
        if path:
            self.add_upscaler(Path(path))

    def add_upscaler(self, path: Path) -> None:
        index = self.upscaler_combo.findData(str(path))
        if index < 0:
            self.upscaler_combo.addItem(path.name, str(path))
            index = self.upscaler_combo.count() - 1
        self.upscaler_combo.setCurrentIndex(index)
