"""Small tool icons drawn in code (crisp at any device pixel ratio, no files to ship)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap, QPolygonF

INK = QColor(225, 225, 228)
MASK_RED = QColor(235, 70, 90)
SIZE = 64


def _icon(draw: Callable[[QPainter], None]) -> QIcon:
    pixmap = QPixmap(SIZE, SIZE)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    draw(painter)
    painter.end()
    return QIcon(pixmap)


def _pen(color: QColor, width: float, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _pencil(p: QPainter, color: QColor) -> None:
    p.setPen(_pen(INK, 3))
    p.setBrush(color)
    body = QPolygonF(
        [QPointF(14, 42), QPointF(42, 14), QPointF(50, 22), QPointF(22, 50), QPointF(10, 54)]
    )
    p.drawPolygon(body)
    p.drawLine(QPointF(14, 42), QPointF(22, 50))


def sketch_pen() -> QIcon:
    return _icon(lambda p: _pencil(p, QColor(70, 140, 230)))


def _eraser(p: QPainter, color: QColor) -> None:
    p.setPen(_pen(INK, 3))
    p.setBrush(color)
    p.drawPolygon(QPolygonF([QPointF(8, 38), QPointF(32, 14), QPointF(52, 34), QPointF(28, 58)]))
    p.setBrush(INK)
    p.drawPolygon(QPolygonF([QPointF(8, 38), QPointF(20, 26), QPointF(40, 46), QPointF(28, 58)]))


def sketch_eraser() -> QIcon:
    return _icon(lambda p: _eraser(p, QColor(70, 140, 230)))


def mask_brush() -> QIcon:
    def draw(p: QPainter) -> None:
        tint = QColor(MASK_RED)
        tint.setAlpha(150)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(tint)
        p.drawEllipse(QRectF(6, 22, 36, 36))
        _pencil(p, MASK_RED)

    return _icon(draw)


def mask_eraser() -> QIcon:
    def draw(p: QPainter) -> None:
        p.setPen(_pen(MASK_RED, 3, Qt.PenStyle.DashLine))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawEllipse(QRectF(6, 22, 36, 36))
        _eraser(p, MASK_RED)

    return _icon(draw)


def rect_select() -> QIcon:
    def draw(p: QPainter) -> None:
        p.setPen(_pen(INK, 4, Qt.PenStyle.DashLine))
        p.drawRect(QRectF(10, 14, 44, 36))

    return _icon(draw)


def lasso_select() -> QIcon:
    def draw(p: QPainter) -> None:
        path = QPainterPath(QPointF(18, 46))
        path.cubicTo(QPointF(2, 30), QPointF(20, 8), QPointF(40, 12))
        path.cubicTo(QPointF(62, 16), QPointF(58, 40), QPointF(36, 44))
        path.cubicTo(QPointF(26, 46), QPointF(22, 46), QPointF(18, 46))
        p.setPen(_pen(INK, 4, Qt.PenStyle.DashLine))
        p.drawPath(path)
        p.setPen(_pen(INK, 3))
        p.drawLine(QPointF(18, 46), QPointF(22, 58))

    return _icon(draw)


def pose_figure() -> QIcon:
    def draw(p: QPainter) -> None:
        p.setPen(_pen(QColor(90, 200, 120), 4))
        joints = {
            "head": (32, 12),
            "neck": (32, 24),
            "hip": (32, 40),
            "lh": (18, 34),
            "rh": (46, 34),
            "lf": (22, 58),
            "rf": (42, 58),
        }
        for a, b in (
            ("head", "neck"),
            ("neck", "hip"),
            ("neck", "lh"),
            ("neck", "rh"),
            ("hip", "lf"),
            ("hip", "rf"),
        ):
            p.drawLine(QPointF(*joints[a]), QPointF(*joints[b]))
        p.setBrush(QColor(255, 200, 60))
        p.setPen(Qt.PenStyle.NoPen)
        for x, y in joints.values():
            p.drawEllipse(QPointF(x, y), 4, 4)

    return _icon(draw)


def app_icon() -> QIcon:
    def draw(p: QPainter) -> None:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(40, 42, 48))
        p.drawRoundedRect(QRectF(2, 2, 60, 60), 12, 12)
        for i, color in enumerate(
            (QColor(240, 170, 60), QColor(220, 80, 90), QColor(80, 150, 230))
        ):
            p.setBrush(color)
            p.drawEllipse(QRectF(10 + i * 12, 14 + (i % 2) * 12, 26, 26))

    return _icon(draw)


def add_layer() -> QIcon:
    def draw(p: QPainter) -> None:
        p.setPen(_pen(INK, 4))
        p.drawRect(QRectF(10, 14, 34, 38))
        p.setPen(_pen(QColor(110, 200, 120), 6))
        p.drawLine(QPointF(46, 8), QPointF(46, 32))
        p.drawLine(QPointF(34, 20), QPointF(58, 20))

    return _icon(draw)


def duplicate_layer() -> QIcon:
    def draw(p: QPainter) -> None:
        p.setPen(_pen(INK, 4))
        p.drawRect(QRectF(8, 20, 30, 34))
        p.setBrush(QColor(50, 51, 55))
        p.drawRect(QRectF(24, 8, 30, 34))

    return _icon(draw)


def lock() -> QIcon:
    def draw(p: QPainter) -> None:
        p.setPen(_pen(INK, 5))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawArc(QRectF(20, 8, 24, 30), 0, 180 * 16)
        p.drawLine(QPointF(20, 23), QPointF(20, 30))
        p.drawLine(QPointF(44, 23), QPointF(44, 30))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(INK)
        p.drawRoundedRect(QRectF(12, 30, 40, 26), 4, 4)

    return _icon(draw)
