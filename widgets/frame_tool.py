"""The generation frame on the canvas, its tool icon, and the Canvas Size dialog.

The frame itself lives in the document's generation state (``app.frame``); this module only
draws it: the outline (always), the part past the canvas tinted (it will be outpainted), and,
while the frame tool is active, its eight handles and a label with its size and the size the
model generates it at.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.canvas_size import Anchor, CanvasSizeError, check_canvas_size
from app.document import MAX_SIDE, Document
from app.frame import frame_of, handle_points
from app.geometry import Rect
from widgets import icons

FRAME_COLOUR = QColor(74, 163, 255)
OUTSIDE_TINT = QColor(74, 163, 255, 46)
HANDLE_SIZE = 7.0
ANCHOR_MARK, OTHER_MARK = "●", "·"  # the picture stays at the ● (Photoshop's anchor grid)

Describe = Callable[[Rect], str]


def frame_icon() -> QIcon:
    """A frame with corner handles (the toolbox icon, drawn like widgets/icons.py's)."""
    pixmap = QPixmap(icons.SIZE, icons.SIZE)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(QPen(icons.INK, 3))
    p.drawRect(QRectF(12, 16, 40, 32))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(FRAME_COLOUR)
    for x, y in ((12, 16), (52, 16), (12, 48), (52, 48)):
        p.drawRect(QRectF(x - 5, y - 5, 10, 10))
    p.end()
    return QIcon(pixmap)


def plain_description(rect: Rect) -> str:
    return f"{rect.w} × {rect.h}"


class FrameOverlay:
    """An overlay painter for ``CanvasView.overlay_painters``."""

    def __init__(self, document: Callable[[], Document | None], active: Callable[[], bool]):
        self.document = document
        self.active = active
        self.describe: Describe = plain_description  # the workspace adds the model's scale

    def __call__(self, painter: QPainter, canvas) -> None:
        doc = self.document()
        if doc is None:
            return
        rect = frame_of(doc).rect
        if rect is None:
            return
        painter.setTransform(canvas.view_transform())
        outline = QRectF(rect.x, rect.y, rect.w, rect.h)
        self._tint_outside(painter, rect, doc.rect)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for colour, width in ((QColor(0, 0, 0, 150), 3.0), (FRAME_COLOUR, 1.5)):
            pen = QPen(colour, width)
            pen.setCosmetic(True)
            if colour == FRAME_COLOUR and not self.active():
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawRect(outline)
        painter.resetTransform()
        if not self.active():
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor(0, 0, 0, 180), 1))
        painter.setBrush(QBrush(FRAME_COLOUR))
        half = HANDLE_SIZE / 2
        for x, y in handle_points(rect).values():
            point = canvas.doc_to_widget(x, y)
            painter.drawRect(QRectF(point.x() - half, point.y() - half, HANDLE_SIZE, HANDLE_SIZE))
        self._label(painter, canvas, rect)

    @staticmethod
    def _tint_outside(painter: QPainter, rect: Rect, canvas_rect: Rect) -> None:
        inside = rect.intersected(canvas_rect)
        if inside == rect:
            return
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QBrush(OUTSIDE_TINT))
        top, bottom = max(rect.y, canvas_rect.y), min(rect.bottom, canvas_rect.bottom)
        bands = [
            Rect.from_edges(rect.x, rect.y, rect.right, min(rect.bottom, canvas_rect.y)),
            Rect.from_edges(rect.x, max(rect.y, canvas_rect.bottom), rect.right, rect.bottom),
            Rect.from_edges(rect.x, top, min(rect.right, canvas_rect.x), bottom),
            Rect.from_edges(max(rect.x, canvas_rect.right), top, rect.right, bottom),
        ]
        for band in bands:
            if not band.is_empty:
                painter.drawRect(QRectF(band.x, band.y, band.w, band.h))

    def _label(self, painter: QPainter, canvas, rect: Rect) -> None:
        text = self.describe(rect)
        font = QFont(painter.font())
        font.setPointSizeF(max(8.0, font.pointSizeF()))
        painter.setFont(font)
        metrics = QFontMetrics(font)
        width, height = metrics.horizontalAdvance(text) + 12, metrics.height() + 6
        corner = canvas.doc_to_widget(rect.x, rect.y)
        x = corner.x()
        y = corner.y() - height - 6
        if y < 2:  # no room above: inside the frame's top edge
            y = corner.y() + 6
        box = QRectF(max(2.0, x), y, width, height)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 22, 26, 210))
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(QColor(235, 238, 242))
        painter.drawText(box.adjusted(6, 0, -6, 0), Qt.AlignmentFlag.AlignVCenter, text)


# ---- Image › Canvas Size ------------------------------------------------------------------


class CanvasSizeDialog(QDialog):
    """New width and height, and the 3×3 anchor: where the old picture stays."""

    def __init__(self, doc: Document, pixel_limit: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Canvas Size")
        self.setObjectName("canvas_size_dialog")
        self.pixel_limit = pixel_limit
        self.old = (doc.width, doc.height)
        form = QFormLayout()
        form.addRow("Current:", QLabel(f"{doc.width} × {doc.height}"))
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        sizes = ((self.width_box, doc.width, "width"), (self.height_box, doc.height, "height"))
        for box, value, name in sizes:
            box.setRange(1, MAX_SIDE)
            box.setValue(value)
            box.setSuffix(" px")
            box.setObjectName(f"canvas_{name}")
            box.valueChanged.connect(self._check)
        form.addRow("Width:", self.width_box)
        form.addRow("Height:", self.height_box)
        grid = QGridLayout()
        grid.setSpacing(2)
        self.anchor_buttons = QButtonGroup(self)
        self.anchor_buttons.setExclusive(True)
        self._anchors: dict[int, Anchor] = {}
        for index, anchor in enumerate(Anchor):
            button = QPushButton()
            button.setCheckable(True)
            button.setFixedSize(30, 30)
            button.setStyleSheet("padding: 0px; font-size: 14px;")
            button.setObjectName(f"anchor_{anchor.name.lower()}")
            button.setToolTip(anchor.name.replace("_", " ").capitalize())
            button.setText(ANCHOR_MARK if anchor is Anchor.CENTER else OTHER_MARK)
            grid.addWidget(button, anchor.row, anchor.column)
            self.anchor_buttons.addButton(button, index)
            self._anchors[index] = anchor
            button.setChecked(anchor is Anchor.CENTER)
        self.anchor_buttons.idClicked.connect(self._anchor_clicked)
        holder = QWidget()
        holder.setLayout(grid)
        form.addRow("Anchor:", holder)
        self.problem = QLabel("")
        self.problem.setObjectName("canvas_size_problem")
        self.problem.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self._check()

    @property
    def anchor(self) -> Anchor:
        return self._anchors[self.anchor_buttons.checkedId()]

    def values(self) -> tuple[int, int, Anchor]:
        return self.width_box.value(), self.height_box.value(), self.anchor

    def _anchor_clicked(self, index: int) -> None:
        for button_id, button in enumerate(self.anchor_buttons.buttons()):
            button.setText(ANCHOR_MARK if button_id == index else OTHER_MARK)

    def _check(self) -> None:
        try:
            check_canvas_size(self.width_box.value(), self.height_box.value(), self.pixel_limit)
        except CanvasSizeError as error:
            self.problem.setText(str(error))
            self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
            return
        self.problem.setText("")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(True)
