"""File › Import Pose…: what the pose file holds and the confidence threshold to import it with.

The threshold starts at the file's own convention (1.0 for ControlNet's JSON, whose tools draw
only points with confidence 1; 0 for OpenPose's output, where any detection above 0 is drawn);
the dialog says how many points that shows, and updates as the threshold changes.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from app.document import Document
from app.io.errors import OpenError
from app.pose_import import PoseFile, pose_for, visible_points


class PoseImportDialog(QDialog):
    def __init__(self, doc: Document, pose_file: PoseFile, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import Pose")
        self.setObjectName("poseImportDialog")
        self._doc, self._file = doc, pose_file
        people = pose_file.people_count
        about = QLabel(
            f"<b>{pose_file.path.name}</b>: {people} {'person' if people == 1 else 'people'}"
            f"<br>{pose_file.convention}.",
            self,
        )
        about.setWordWrap(True)
        self.threshold_spin = QDoubleSpinBox(self)
        self.threshold_spin.setObjectName("poseThreshold")
        self.threshold_spin.setRange(0.0, 1.0)
        self.threshold_spin.setDecimals(2)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setValue(pose_file.default_threshold)
        self.threshold_spin.setToolTip(
            "A point is drawn when its confidence is at least this (and above 0). "
            f"This file's convention: {pose_file.default_threshold:g}"
        )
        self.count_label = QLabel(self)
        self.count_label.setObjectName("posePointCount")
        form = QFormLayout()
        form.addRow("Confidence threshold:", self.threshold_spin)
        form.addRow("", self.count_label)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(about)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.threshold_spin.valueChanged.connect(self._count)
        self._count()

    @property
    def threshold(self) -> float:
        return float(self.threshold_spin.value())

    def _count(self) -> None:
        try:
            shown, total = visible_points(pose_for(self._doc, self._file, self.threshold))
        except OpenError as err:  # checked on reading; kept from crashing the dialog anyway
            self.count_label.setText(str(err))
            return
        self.count_label.setText(f"{shown} of {total} points shown")
