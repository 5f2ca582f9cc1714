"""Tool options bar edits the current tool's settings."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor

from app.document import Document
from app.tools import BrushSettings, BrushTarget, BrushTool, RectSelectTool, SelectionMode
from widgets.tool_options import ToolOptionsBar


@pytest.fixture
def bar(qtbot) -> ToolOptionsBar:
    widget = ToolOptionsBar()
    qtbot.addWidget(widget)
    widget.show()
    return widget


@pytest.fixture
def doc() -> Document:
    return Document.blank(64, 64)


def test_brush_controls_change_the_tool_settings(bar, doc, qtbot):
    pen = BrushTool(doc, BrushTarget.SKETCH, BrushSettings(size=10), "pen")
    bar.set_tool(pen, "Sketch pen")
    assert bar.size_spin.value() == 10 and bar.tool_label.text() == "Sketch pen"
    with qtbot.waitSignal(bar.options_changed):
        bar.size_spin.setValue(42)
    bar.hardness_slider.setValue(25)
    bar.opacity_slider.setValue(60)
    bar.pressure_opacity.setChecked(True)
    bar.pressure_size.setChecked(False)
    bar.set_color(QColor(10, 20, 30))
    assert pen.settings == BrushSettings(
        size=42,
        hardness=0.25,
        opacity=0.6,
        color=(10, 20, 30),
        pressure_size=False,
        pressure_opacity=True,
    )
    assert bar.size_slider.value() == 42 and bar.opacity_value.text() == "60%"


def test_colour_only_for_the_sketch_pen(bar, doc):
    bar.set_tool(BrushTool(doc, BrushTarget.SKETCH, BrushSettings(), "pen"), "Pen")
    assert bar._actions[bar.color_group].isVisible()
    bar.set_tool(BrushTool(doc, BrushTarget.MASK, BrushSettings(), "mask"), "Mask")
    assert not bar._actions[bar.color_group].isVisible()
    assert bar._actions[bar.size_group].isVisible()
    assert not bar._actions[bar.mode_group].isVisible()


def test_selection_mode(bar, doc):
    tool = RectSelectTool(doc)
    bar.set_tool(tool, "Rectangle selection")
    assert bar._actions[bar.mode_group].isVisible()
    assert not bar._actions[bar.size_group].isVisible()
    bar.mode_combo.setCurrentIndex(2)
    assert tool.mode is SelectionMode.SUBTRACT
    tool.mode = SelectionMode.ADD
    bar.sync_from_tool()
    assert bar.mode_combo.currentData() is SelectionMode.ADD


def test_sync_reflects_external_resize(bar, doc):
    tool = BrushTool(doc, BrushTarget.MASK, BrushSettings(size=50), "mask")
    bar.set_tool(tool, "Mask")
    tool.settings = tool.settings.resized(2.0)
    bar.sync_from_tool()
    assert bar.size_spin.value() == 100
