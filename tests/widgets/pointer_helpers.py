"""Helpers for the canvas/window tests: a photo-like document and synthetic pointer drags."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.document import Document


def photo_pixels(width: int = 320, height: int = 240) -> np.ndarray:
    """A smooth gradient 'photo' with an opaque alpha channel."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.empty((height, width, 4), np.uint8)
    pixels[..., 0] = (xs / width * 200 + 30).astype(np.uint8)
    pixels[..., 1] = (ys / height * 180 + 40).astype(np.uint8)
    pixels[..., 2] = 120
    pixels[..., 3] = 255
    return pixels


def make_photo_doc() -> Document:
    return Document.from_rgba(photo_pixels(), name="Photo")


def send_mouse(
    widget,
    kind,
    pos,
    button=Qt.MouseButton.LeftButton,
    buttons=Qt.MouseButton.LeftButton,
    modifiers=Qt.KeyboardModifier.NoModifier,
):
    """Send a real QMouseEvent (qtbot.mouseMove cannot carry pressed buttons)."""
    pos = QPointF(pos)
    global_pos = QPointF(widget.mapToGlobal(pos.toPoint()))
    event = QMouseEvent(kind, pos, global_pos, button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


def drag(
    widget, points, button=Qt.MouseButton.LeftButton, modifiers=Qt.KeyboardModifier.NoModifier
):
    """Press at the first point, move through the rest, release at the last."""
    points = [QPoint(*p) if isinstance(p, tuple) else p for p in points]
    send_mouse(widget, QMouseEvent.Type.MouseButtonPress, points[0], button, button, modifiers)
    for point in points[1:]:
        send_mouse(
            widget, QMouseEvent.Type.MouseMove, point, Qt.MouseButton.NoButton, button, modifiers
        )
    send_mouse(
        widget,
        QMouseEvent.Type.MouseButtonRelease,
        points[-1],
        button,
        Qt.MouseButton.NoButton,
        modifiers,
    )
