"""Pointer events and the tool interface shared by every tool."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from app.geometry import Rect


class Phase(Enum):
    PRESS = "press"
    MOVE = "move"
    RELEASE = "release"
    HOVER = "hover"  # moved with no button down


@dataclass(frozen=True)
class PointerEvent:
    x: float  # document pixels
    y: float
    phase: Phase
    pressure: float = 1.0  # 0..1, 1.0 for a mouse
    zoom: float = 1.0  # screen pixels per document pixel (for hit radii)
    shift: bool = False
    alt: bool = False
    ctrl: bool = False


class Tool(Protocol):
    name: str

    def handle(self, event: PointerEvent) -> Rect | None:
        """Act on the document; return the area that needs repainting, if any."""
        ...

    def cancel(self) -> None:
        """Abort a gesture in progress (Esc), leaving the document as before it."""
        ...
