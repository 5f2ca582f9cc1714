"""Tool options bar: size, hardness, opacity, colour, pressure, selection mode of the current tool;
the pose actions (add person, mirror, hands and face, delete) for the pose tool.

The bar edits the tool object it is given (``BrushTool.settings`` is replaced by a changed copy,
``*SelectTool.mode`` set); it keeps no settings of its own.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolBar,
    QToolButton,
    QWidget,
)

from app.document import LayerLockedError
from app.tools import BrushTarget, BrushTool, LassoSelectTool, RectSelectTool, SelectionMode
from app.tools.brush import MAX_SIZE, MIN_SIZE

SELECT_TOOLS = (RectSelectTool, LassoSelectTool)  # the tools with a selection mode
POSE_HINT = "Click the canvas to add a person · drag joints · drag the box to move"
POSE_SELECT_FIRST = "Click a figure first to select it"

SELECTION_MODES = [
    ("Replace", SelectionMode.REPLACE),
    ("Add (Shift)", SelectionMode.ADD),
    ("Subtract (Alt)", SelectionMode.SUBTRACT),
]


def _group(*widgets: QWidget) -> QWidget:
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(6, 0, 6, 0)
    layout.setSpacing(6)
    for widget in widgets:
        layout.addWidget(widget)
    box.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
    return box


def _percent_slider(tip: str) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    slider.setFixedWidth(110)
    slider.setToolTip(tip)
    return slider


class ToolOptionsBar(QToolBar):
    options_changed = Signal()  # the current tool's settings changed (brush outline may change)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Tool options", parent)
        self.setObjectName("tool_options")
        self.setMovable(False)
        self.tool = None

        self.tool_label = QLabel("No tool")
        self.tool_label.setObjectName("tool_label")
        self.tool_label.setMinimumWidth(110)
        self.addWidget(_group(self.tool_label))

        self.size_spin = QSpinBox()
        self.size_spin.setRange(int(MIN_SIZE), int(MAX_SIZE))
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Brush diameter in image pixels ([ and ] to resize)")
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(1, 500)
        self.size_slider.setFixedWidth(130)
        self.size_slider.setToolTip(self.size_spin.toolTip())
        self.size_group = _group(QLabel("Size"), self.size_slider, self.size_spin)

        self.hardness_slider = _percent_slider("Edge hardness: 0% soft, 100% hard")
        self.hardness_value = QLabel()
        self.hardness_group = _group(QLabel("Hardness"), self.hardness_slider, self.hardness_value)

        self.opacity_slider = _percent_slider("Maximum opacity of one stroke")
        self.opacity_value = QLabel()
        self.opacity_group = _group(QLabel("Opacity"), self.opacity_slider, self.opacity_value)

        self.color_button = QToolButton()
        self.color_button.setObjectName("color_button")
        self.color_button.setToolTip("Pen colour")
        self.color_group = _group(QLabel("Colour"), self.color_button)

        self.pressure_size = QCheckBox("Pressure → size")
        self.pressure_opacity = QCheckBox("Pressure → opacity")
        self.pressure_group = _group(self.pressure_size, self.pressure_opacity)

        self.mode_combo = QComboBox()
        for label, mode in SELECTION_MODES:
            self.mode_combo.addItem(label, mode)
        self.mode_combo.setToolTip("How a new selection combines with the current one")
        self.mode_group = _group(QLabel("Mode"), self.mode_combo)

        self.pose_buttons: dict[str, QPushButton] = {}
        for key, label, tip in (
            ("add", "Add person", "A standing figure in the selection (or the whole canvas)"),
            ("mirror", "Mirror", "Flip the selected figure left to right"),
            ("details", "Hands && face", "Add or remove hands and a face"),
            ("delete", "Delete", "Remove the selected figure"),
        ):
            button = QPushButton(label)
            button.setToolTip(tip)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(lambda _c=False, k=key: self._pose_action(k))
            self.pose_buttons[key] = button
        self.pose_hint = QLabel(POSE_HINT)
        self.pose_hint.setObjectName("pose_hint")
        self.pose_group = _group(*self.pose_buttons.values(), self.pose_hint)

        self.brush_groups = [
            self.size_group,
            self.hardness_group,
            self.opacity_group,
            self.color_group,
            self.pressure_group,
        ]
        self._actions = {}
        for group in [*self.brush_groups, self.mode_group, self.pose_group]:
            self._actions[group] = self.addWidget(group)

        self.size_spin.valueChanged.connect(self._size_from_spin)
        self.size_slider.valueChanged.connect(self._size_from_slider)
        self.hardness_slider.valueChanged.connect(lambda v: self._set_brush(hardness=v / 100.0))
        self.opacity_slider.valueChanged.connect(lambda v: self._set_brush(opacity=v / 100.0))
        self.pressure_size.toggled.connect(lambda on: self._set_brush(pressure_size=on))
        self.pressure_opacity.toggled.connect(lambda on: self._set_brush(pressure_opacity=on))
        self.color_button.clicked.connect(self._choose_color)
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        self.set_tool(None, "No tool")

    # ---- public ----------------------------------------------------------------------------

    def set_tool(self, tool, label: str) -> None:
        self.tool = tool
        self.tool_label.setText(label)
        is_brush = isinstance(tool, BrushTool)
        is_select = isinstance(tool, SELECT_TOOLS)
        for group in self.brush_groups:
            self._actions[group].setVisible(is_brush)
        painting = isinstance(tool, BrushTool) and not tool.settings.erase
        self._actions[self.color_group].setVisible(painting and tool.target is not BrushTarget.MASK)
        self._actions[self.mode_group].setVisible(is_select)
        self._actions[self.pose_group].setVisible(getattr(tool, "name", "") == "pose")
        self.pose_hint.setText(POSE_HINT)
        self.sync_from_tool()

    def sync_from_tool(self) -> None:
        """Show the tool's current values (after [ / ] or a tool switch)."""
        if isinstance(self.tool, BrushTool):
            settings = self.tool.settings
            widgets = [
                self.size_spin,
                self.size_slider,
                self.hardness_slider,
                self.opacity_slider,
                self.pressure_size,
                self.pressure_opacity,
            ]
            blockers = [QSignalBlocker(w) for w in widgets]
            self.size_spin.setValue(round(settings.size))
            self.size_slider.setValue(round(settings.size))
            self.hardness_slider.setValue(round(settings.hardness * 100))
            self.opacity_slider.setValue(round(settings.opacity * 100))
            self.pressure_size.setChecked(settings.pressure_size)
            self.pressure_opacity.setChecked(settings.pressure_opacity)
            del blockers
            self._show_values(settings)
        if isinstance(self.tool, SELECT_TOOLS):
            with QSignalBlocker(self.mode_combo):
                for index, (_label, mode) in enumerate(SELECTION_MODES):
                    if mode is self.tool.mode:
                        self.mode_combo.setCurrentIndex(index)

    def set_color(self, color: QColor) -> None:
        self._set_brush(color=(color.red(), color.green(), color.blue()))

    # ---- internals -------------------------------------------------------------------------

    def _show_values(self, settings) -> None:
        self.hardness_value.setText(f"{settings.hardness * 100:.0f}%")
        self.opacity_value.setText(f"{settings.opacity * 100:.0f}%")
        pixmap = QPixmap(22, 14)
        pixmap.fill(QColor(*settings.color))
        self.color_button.setIcon(QIcon(pixmap))

    def _set_brush(self, **changes) -> None:
        if not isinstance(self.tool, BrushTool):
            return
        self.tool.settings = replace(self.tool.settings, **changes)
        self.sync_from_tool()
        self.options_changed.emit()

    def _size_from_spin(self, value: int) -> None:
        self._set_brush(size=float(value))

    def _size_from_slider(self, value: int) -> None:
        self._set_brush(size=float(value))

    def _choose_color(self) -> None:
        if not isinstance(self.tool, BrushTool):
            return
        color = QColorDialog.getColor(QColor(*self.tool.settings.color), self, "Pen colour")
        if color.isValid():
            self.set_color(color)

    def _pose_action(self, key: str) -> None:
        tool = self.tool
        if getattr(tool, "name", "") != "pose":
            return
        method = {
            "add": lambda: tool.add_person() is not None,
            "mirror": tool.mirror_selected,
            "details": tool.toggle_hands_and_face_selected,
            "delete": tool.delete_selected,
        }[key]
        try:
            done = method()
        except LayerLockedError as err:
            self.pose_hint.setText(str(err))
        else:
            self.pose_hint.setText(POSE_HINT if done else POSE_SELECT_FIRST)
        self.options_changed.emit()

    def _mode_changed(self, index: int) -> None:
        if isinstance(self.tool, SELECT_TOOLS):
            self.tool.mode = self.mode_combo.itemData(index)
            self.options_changed.emit()
