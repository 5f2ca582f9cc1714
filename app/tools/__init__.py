"""Tools turn plain pointer events into document changes, with no widgets involved."""

from app.tools.base import Phase, PointerEvent, Tool
from app.tools.brush import BrushSettings, BrushTarget, BrushTool
from app.tools.selection import LassoSelectTool, RectSelectTool, SelectionMode

__all__ = [
    "BrushSettings",
    "BrushTarget",
    "BrushTool",
    "LassoSelectTool",
    "Phase",
    "PointerEvent",
    "RectSelectTool",
    "SelectionMode",
    "Tool",
]
