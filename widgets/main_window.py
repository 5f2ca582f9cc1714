"""The main window: menus, tools, canvas, layers dock, tool options and status bar.

Wiring points for other parts of the app:
- ``add_dock(widget, title)`` puts a panel in the right dock area (generate panel, etc.).
- ``window.doc`` is the current Document, ``window.canvas`` the CanvasView; ``document_changed``
  fires with the new Document whenever it is replaced (New, Open, Paste as new document).
- ``window.menus["file"]`` etc. are the menus; ``window.file_save_anchor`` is the File-menu action
  before which Save / Save As / Recent belong. ``window.save_handler`` (a callable returning True
  when the document was saved) lets the unsaved-changes question offer "Save".
- ``window.pixel_limit`` is the decompression-bomb limit used for opening images.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

import numpy as np
import shiboken6
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QImage,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QApplication,
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSpinBox,
    QToolBar,
    QWidget,
)

from app import canvas_size, files, mask_ops
from app.document import MAX_SIDE, Document, LayerLockedError
from app.frame import FrameTool, frame_of
from app.image_io import DEFAULT_PIXEL_LIMIT, OPEN_FORMATS, ImageLoadError
from app.layers import LayerKind
from app.pose_edit import PoseTool
from app.raster import Raster, full_raster
from app.tools import (
    BrushSettings,
    BrushTarget,
    BrushTool,
    LassoSelectTool,
    RectSelectTool,
    SelectionMode,
)
from widgets import icons
from widgets.canvas import CanvasView
from widgets.frame_tool import CanvasSizeDialog, FrameOverlay, frame_icon
from widgets.keyboard import ToolKeys, single_key_combinations
from widgets.layers_panel import LayersPanel
from widgets.tool_options import ToolOptionsBar

log = logging.getLogger(__name__)

APP_NAME = "Impasto"
BRUSH_RESIZE_STEP = 1.2


class ToolId(StrEnum):
    SKETCH_PEN = "sketch_pen"
    SKETCH_ERASER = "sketch_eraser"
    MASK_BRUSH = "mask_brush"
    MASK_ERASER = "mask_eraser"
    RECT_SELECT = "rect_select"
    LASSO_SELECT = "lasso_select"
    POSE = "pose"
    FRAME = "frame"


TOOL_INFO: dict[ToolId, tuple[str, str, Callable[[], QIcon]]] = {
    ToolId.SKETCH_PEN: ("Sketch pen", "B", icons.sketch_pen),
    ToolId.SKETCH_ERASER: ("Sketch eraser", "", icons.sketch_eraser),
    ToolId.MASK_BRUSH: ("Mask brush", "M", icons.mask_brush),
    ToolId.MASK_ERASER: ("Mask eraser", "", icons.mask_eraser),
    ToolId.RECT_SELECT: ("Rectangle selection", "S", icons.rect_select),
    ToolId.LASSO_SELECT: ("Lasso selection", "", icons.lasso_select),
    ToolId.POSE: ("Pose figure", "P", icons.pose_figure),
    ToolId.FRAME: ("Generation frame", "F", frame_icon),
}
SWAPS = {
    ToolId.MASK_BRUSH: ToolId.MASK_ERASER,
    ToolId.MASK_ERASER: ToolId.MASK_BRUSH,
    ToolId.SKETCH_PEN: ToolId.SKETCH_ERASER,
    ToolId.SKETCH_ERASER: ToolId.SKETCH_PEN,
}
DEFAULT_SETTINGS = {
    ToolId.SKETCH_PEN: BrushSettings(size=8, hardness=0.9, opacity=1.0, color=(20, 20, 20)),
    ToolId.SKETCH_ERASER: BrushSettings(size=32, hardness=0.8, erase=True),
    ToolId.MASK_BRUSH: BrushSettings(size=64, hardness=0.7),
    ToolId.MASK_ERASER: BrushSettings(size=64, hardness=0.7, erase=True),
}
SIZE_PRESETS = [
    (512, 512),
    (768, 768),
    (1024, 1024),
    (1024, 768),
    (768, 1024),
    (1216, 832),
    (1920, 1080),
    (2048, 2048),
]
BACKGROUNDS = {
    "White": (255, 255, 255, 255),
    "Black": (0, 0, 0, 255),
    "Transparent": (0, 0, 0, 0),
}


def qimage_to_rgba(image: QImage) -> np.ndarray:
    """A straight-alpha RGBA uint8 copy of a QImage."""
    image = image.convertToFormat(QImage.Format.Format_RGBA8888)
    width, height = image.width(), image.height()
    stride = image.bytesPerLine()
    buffer = np.frombuffer(image.constBits(), np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, : width * 4].reshape(height, width, 4).copy()


def open_filter() -> str:
    suffixes = sorted(set(getattr(files, "OPENABLE_SUFFIXES", OPEN_FORMATS)))
    patterns = " ".join(f"*{s}" for s in suffixes)
    return f"Images and projects ({patterns});;All files (*)"


class NewDocumentDialog(QDialog):
    def __init__(self, parent: QWidget | None = None, size: tuple[int, int] = (1024, 1024)):
        super().__init__(parent)
        self.setWindowTitle("New image")
        self.preset = QComboBox()
        self.preset.addItem("Custom", None)
        for w, h in SIZE_PRESETS:
            self.preset.addItem(f"{w} × {h}", (w, h))
        self.width_spin, self.height_spin = QSpinBox(), QSpinBox()
        for spin, value in ((self.width_spin, size[0]), (self.height_spin, size[1])):
            spin.setRange(1, MAX_SIDE)
            spin.setSuffix(" px")
            spin.setValue(value)
        self.background = QComboBox()
        self.background.addItems(list(BACKGROUNDS))
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Preset", self.preset)
        form.addRow("Width", self.width_spin)
        form.addRow("Height", self.height_spin)
        form.addRow("Background", self.background)
        form.addRow(buttons)
        self.preset.currentIndexChanged.connect(self._preset_chosen)

    def _preset_chosen(self, index: int) -> None:
        size = self.preset.itemData(index)
        if size:
            self.width_spin.setValue(size[0])
            self.height_spin.setValue(size[1])

    def values(self) -> tuple[int, int, tuple[int, int, int, int]]:
        return (
            self.width_spin.value(),
            self.height_spin.value(),
            BACKGROUNDS[self.background.currentText()],
        )


class MainWindow(QMainWindow):
    document_changed = Signal(object)  # the new Document
    tool_changed = Signal(str)  # ToolId value
    closed = Signal()  # the user confirmed closing: background services should stop
    mask_overlay_changed = Signal(str, float)  # "#rrggbb", opacity 0..1 (chosen in View menu)

    def __init__(self, doc: Document | None = None, pixel_limit: int = DEFAULT_PIXEL_LIMIT):
        super().__init__()
        self.setObjectName("main_window")
        self.setWindowIcon(icons.app_icon())
        self.setAcceptDrops(True)
        self.pixel_limit = pixel_limit
        self.save_handler: Callable[[], bool] | None = None
        self.drop_handlers: list[Callable[[Path], bool]] = []  # see handle_dropped_path
        self.doc: Document | None = None
        self.document_name = "Untitled"
        self.document_source: Path | None = None  # the file the document was opened from
        self.tools: dict[ToolId, object] = {}
        self.current_tool_id: ToolId = ToolId.MASK_BRUSH
        self._last_brush_family = ToolId.MASK_BRUSH
        self._error_boxes: list[QMessageBox] = []
        self.action_map: dict[str, QAction] = {}
        self.menus: dict[str, object] = {}

        self.canvas = CanvasView(self)
        self.setCentralWidget(self.canvas)
        self.frame_overlay = FrameOverlay(
            lambda: self.doc, lambda: self.current_tool_id is ToolId.FRAME
        )
        self.canvas.overlay_painters.append(self.frame_overlay)
        self.tool_options = ToolOptionsBar(self)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.tool_options)
        self.layers_panel = LayersPanel(self)
        self.layers_dock = self.add_dock(self.layers_panel, "Layers")

        self._build_status_bar()
        self._build_actions()
        self._build_menus()
        self._build_toolbox()
        self.tool_keys = ToolKeys(self, single_key_combinations(list(self.action_map.values())))
        self.canvas.zoom_changed.connect(self._zoom_changed)
        self.canvas.cursor_moved.connect(self._cursor_moved)
        self.tool_options.options_changed.connect(self.canvas.update)

        self.resize(1400, 900)
        self.set_document(doc if doc is not None else Document.blank(1024, 1024), "Untitled")
        self.canvas.setFocus()

    # ---- wiring points ---------------------------------------------------------------------

    def add_dock(
        self,
        widget: QWidget,
        title: str,
        area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
    ) -> QDockWidget:
        """Put ``widget`` in a dock (right side by default); it appears in View > Panels."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower().replace(' ', '_')}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        panels = self.menus.get("panels")
        if panels is not None:
            panels.addAction(dock.toggleViewAction())
        return dock

    def set_document(self, doc: Document, name: str | None = None) -> None:
        self._disconnect_document()
        self.doc = doc
        self.document_source = doc.path
        if name is not None:
            self.document_name = name
        doc.notice.connect(self._show_notice)
        doc.history.cleanChanged.connect(self.update_title)
        doc.history.canUndoChanged.connect(self._update_undo_actions)
        doc.history.canRedoChanged.connect(self._update_undo_actions)
        doc.history.indexChanged.connect(self._update_undo_actions)
        doc.size_changed.connect(self._canvas_resized)
        frame_of(doc).changed.connect(self._frame_changed)
        self._make_tools(doc)
        self.canvas.set_document(doc)
        self.layers_panel.set_document(doc)
        self.select_tool(self.current_tool_id)
        self.size_label.setText(f"{doc.width} × {doc.height}")
        self.update_title()
        self._update_undo_actions()
        # the old document is not deleteLater()'d: Python owns it, and it goes when the last
        # holder (a job, a panel) lets go
        self.document_changed.emit(doc)

    def _disconnect_document(self) -> None:
        """Stop listening to the current document (its history emits while it is destroyed)."""
        doc = self.doc
        if doc is None or not shiboken6.isValid(doc) or not shiboken6.isValid(doc.history):
            return
        doc.notice.disconnect(self._show_notice)
        doc.history.cleanChanged.disconnect(self.update_title)
        doc.history.canUndoChanged.disconnect(self._update_undo_actions)
        doc.history.canRedoChanged.disconnect(self._update_undo_actions)
        doc.history.indexChanged.disconnect(self._update_undo_actions)
        doc.size_changed.disconnect(self._canvas_resized)
        frame_of(doc).changed.disconnect(self._frame_changed)

    def update_title(self, *_args) -> None:
        if self.doc is None or not shiboken6.isValid(self.doc.history):
            return
        name = self.doc.path.name if self.doc.path is not None else self.document_name
        self.setWindowTitle(f"{name}[*] — {APP_NAME}")
        self.setWindowModified(self.doc.is_modified)

    def show_error(self, title: str, message: str, details: str | None = None) -> QMessageBox:
        """A non-modal message: the user can read it while going on working."""
        log.warning("%s: %s", title, message)
        box = QMessageBox(
            QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self
        )
        box.setWindowModality(Qt.WindowModality.NonModal)
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _=0, b=box: self._forget_box(b))
        self._error_boxes.append(box)
        box.show()
        self.statusBar().showMessage(message, 8000)
        return box

    def _forget_box(self, box: QMessageBox) -> None:
        if box in self._error_boxes:
            self._error_boxes.remove(box)

    # ---- tools -----------------------------------------------------------------------------

    def _make_tools(self, doc: Document) -> None:
        old = self.tools
        settings = {
            tool_id: getattr(old.get(tool_id), "settings", default)
            for tool_id, default in DEFAULT_SETTINGS.items()
        }
        mode = getattr(old.get(ToolId.RECT_SELECT), "mode", SelectionMode.REPLACE)
        self.tools = {
            ToolId.SKETCH_PEN: BrushTool(
                doc, BrushTarget.SKETCH, settings[ToolId.SKETCH_PEN], ToolId.SKETCH_PEN.value
            ),
            ToolId.SKETCH_ERASER: BrushTool(
                doc, BrushTarget.SKETCH, settings[ToolId.SKETCH_ERASER], ToolId.SKETCH_ERASER.value
            ),
            ToolId.MASK_BRUSH: BrushTool(
                doc, BrushTarget.MASK, settings[ToolId.MASK_BRUSH], ToolId.MASK_BRUSH.value
            ),
            ToolId.MASK_ERASER: BrushTool(
                doc, BrushTarget.MASK, settings[ToolId.MASK_ERASER], ToolId.MASK_ERASER.value
            ),
            ToolId.RECT_SELECT: RectSelectTool(doc, mode),
            ToolId.LASSO_SELECT: LassoSelectTool(doc, mode),
            ToolId.POSE: PoseTool(doc),
            ToolId.FRAME: FrameTool(frame_of(doc)),
        }

    @property
    def current_tool(self):
        return self.tools[self.current_tool_id]

    def select_tool(self, tool_id: ToolId | str) -> None:
        tool_id = ToolId(tool_id)
        self.current_tool_id = tool_id
        if tool_id in SWAPS:
            self._last_brush_family = tool_id
        tool = self.tools[tool_id]
        self.canvas.set_tool(tool)
        self.tool_options.set_tool(tool, TOOL_INFO[tool_id][0])
        action = self.action_map.get(f"tool_{tool_id.value}")
        if action is not None:
            action.setChecked(True)
        if tool_id in (ToolId.MASK_BRUSH, ToolId.MASK_ERASER):
            self.canvas.set_mask_shown(True)
        self.tool_changed.emit(tool_id.value)

    def _tool_eraser(self) -> None:
        family = self.current_tool_id if self.current_tool_id in SWAPS else self._last_brush_family
        mask_family = family in (ToolId.MASK_BRUSH, ToolId.MASK_ERASER)
        self.select_tool(ToolId.MASK_ERASER if mask_family else ToolId.SKETCH_ERASER)

    def _tool_selection(self) -> None:
        if self.current_tool_id is ToolId.RECT_SELECT:
            self.select_tool(ToolId.LASSO_SELECT)
        else:
            self.select_tool(ToolId.RECT_SELECT)

    def swap_add_subtract(self) -> None:
        """X: mask brush <-> mask eraser, pen <-> eraser, selection add <-> subtract."""
        if self.current_tool_id in SWAPS:
            self.select_tool(SWAPS[self.current_tool_id])
            return
        tool = self.current_tool
        tool.mode = (
            SelectionMode.SUBTRACT if tool.mode is not SelectionMode.SUBTRACT else SelectionMode.ADD
        )
        for select_id in (ToolId.RECT_SELECT, ToolId.LASSO_SELECT):
            self.tools[select_id].mode = tool.mode
        self.tool_options.sync_from_tool()

    def resize_brush(self, factor: float) -> None:
        tool = self.current_tool
        settings = getattr(tool, "settings", None)
        if settings is None:
            return
        tool.settings = settings.resized(factor)
        if tool.settings.size == settings.size and factor != 1.0:  # small sizes: step by 1 px
            step = 1.0 if factor > 1 else -1.0
            tool.settings = settings.resized((settings.size + step) / settings.size)
        self.tool_options.sync_from_tool()
        self.canvas.update()

    # ---- actions and menus ----------------------------------------------------------------

    def _action(self, key: str, text: str, slot: Callable, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        self.action_map[key] = action
        self.addAction(action)  # shortcuts work even with the menu bar hidden
        return action

    def _build_actions(self) -> None:
        a = self._action
        std = QKeySequence.StandardKey
        a("new", "&New…", self.new_document_dialog, std.New, "Create a blank image")
        a("open", "&Open…", self.open_dialog, std.Open, "Open an image")
        a("paste_document", "Paste as New &Image", self.paste_as_document, "Ctrl+Shift+V")
        a("paste_layer", "&Paste as New Layer", self.paste_as_layer, std.Paste)
        a(
            "export_png",
            "&Export PNG…",
            self.export_dialog,
            "Ctrl+E",
            "Save the visible picture as a flat PNG",
        )
        a("quit", "&Quit", self.close, std.Quit)

        a("undo", "&Undo", self.undo, "Ctrl+Z")
        a("redo", "&Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        a("select_all", "Select &All", self.select_all, "Ctrl+A")
        a("deselect", "&Deselect", self.deselect, ["Ctrl+Shift+A", "Ctrl+D"])
        a(
            "selection_to_mask",
            "Add Selection to Mask",
            lambda: self._mask_op(mask_ops.selection_to_mask),
            "Ctrl+M",
        )
        a(
            "selection_from_mask",
            "Subtract Selection from Mask",
            lambda: self._mask_op(lambda d: mask_ops.selection_to_mask(d, subtract=True)),
            "Ctrl+Shift+M",
        )
        a(
            "fill_mask",
            "&Fill Mask",
            lambda: self._mask_op(mask_ops.fill_mask),
            tip="Mask the selection (or everything)",
        )
        a("clear_mask", "&Clear Mask", lambda: self._mask_op(mask_ops.clear_mask), "Shift+Del")
        a("invert_mask", "&Invert Mask", lambda: self._mask_op(mask_ops.invert_mask), "Ctrl+I")
        a("grow_mask", "&Grow Mask…", lambda: self.grow_mask())
        a("shrink_mask", "&Shrink Mask…", lambda: self.shrink_mask())
        a("feather_mask", "F&eather Mask…", lambda: self.feather_mask())

        a("zoom_in", "Zoom &In", self.canvas.zoom_in, ["Ctrl++", "Ctrl+="])
        a("zoom_out", "Zoom &Out", self.canvas.zoom_out, "Ctrl+-")
        a("zoom_fit", "&Fit in Window", self.canvas.fit, "Ctrl+0")
        a("zoom_100", "&100%", self.canvas.actual_pixels, "Ctrl+1")
        a("mask_color", "Mask Overlay &Colour…", self.choose_mask_color)

        a(
            "new_image_layer",
            "New &Image Layer",
            lambda: self.add_layer(LayerKind.IMAGE),
            "Ctrl+Shift+N",
        )
        a("new_sketch_layer", "New &Sketch Layer", lambda: self.add_layer(LayerKind.SKETCH))
        a("new_mask_layer", "New Inpaint &Mask Layer", lambda: self.add_layer(LayerKind.MASK))
        a("duplicate_layer", "&Duplicate Layer", self.layers_panel.duplicate_active, "Ctrl+J")
        a("delete_layer", "De&lete Layer", self.layers_panel.delete_active)
        a("rename_layer", "&Rename Layer…", self.rename_layer_dialog, "F2")
        a("layer_up", "Move Layer &Up", lambda: self.layers_panel.move_active(+1), "Ctrl+]")
        a("layer_down", "Move Layer Do&wn", lambda: self.layers_panel.move_active(-1), "Ctrl+[")
        a("group_layer", "&Group Layer", self.layers_panel.group_active, "Ctrl+G")
        a("ungroup_layer", "&Ungroup", self.layers_panel.ungroup_active, "Ctrl+Shift+G")

        group = QActionGroup(self)
        group.setExclusive(True)
        for tool_id, (label, key, make_icon) in TOOL_INFO.items():
            action = a(f"tool_{tool_id.value}", label, lambda t=tool_id: self.select_tool(t))
            action.setCheckable(True)
            action.setIcon(make_icon())
            action.setToolTip(f"{label} ({key})" if key else label)
            group.addAction(action)
        # single-key shortcuts; text fields (prompts) still receive their letters
        a("key_brush", "Sketch Pen", lambda: self.select_tool(ToolId.SKETCH_PEN), "B")
        a("key_eraser", "Eraser", self._tool_eraser, "E")
        a("key_mask", "Mask Brush", lambda: self.select_tool(ToolId.MASK_BRUSH), "M")
        a("key_select", "Selection (again: lasso)", self._tool_selection, "S")
        a("key_pose", "Pose Figure", lambda: self.select_tool(ToolId.POSE), "P")
        a("key_frame", "Generation Frame", lambda: self.select_tool(ToolId.FRAME), "F")
        a("clear_frame", "Clear &Frame", self.clear_frame, tip="Generate picks its area again")
        a("canvas_size", "&Canvas Size…", self.canvas_size_dialog, "Ctrl+Alt+C")
        a("crop_to_selection", "Crop to &Selection", self.crop_to_selection)
        a("crop_to_frame", "Crop to Generation F&rame", self.crop_to_frame)
        a("key_swap", "Swap Add/Subtract", self.swap_add_subtract, "X")
        a("brush_smaller", "Smaller Brush", lambda: self.resize_brush(1 / BRUSH_RESIZE_STEP), "[")
        a("brush_bigger", "Bigger Brush", lambda: self.resize_brush(BRUSH_RESIZE_STEP), "]")

    def _build_menus(self) -> None:
        bar = self.menuBar()
        act = self.action_map
        file_menu = bar.addMenu("&File")
        for key in ("new", "open"):
            file_menu.addAction(act[key])
        file_menu.addSeparator()
        self.file_save_anchor = file_menu.addSeparator()  # Save / Save As / Recent go here
        file_menu.addAction(act["paste_document"])
        file_menu.addAction(act["export_png"])
        file_menu.addSeparator()
        file_menu.addAction(act["quit"])

        edit = bar.addMenu("&Edit")
        for key in ("undo", "redo", None, "paste_layer", None, "select_all", "deselect"):
            edit.addAction(act[key]) if key else edit.addSeparator()
        mask_menu = edit.addMenu("&Mask")
        for key in (
            "selection_to_mask",
            "selection_from_mask",
            None,
            "fill_mask",
            "clear_mask",
            "invert_mask",
            None,
            "grow_mask",
            "shrink_mask",
            "feather_mask",
        ):
            mask_menu.addAction(act[key]) if key else mask_menu.addSeparator()

        image = self._build_image_menu()

        view = bar.addMenu("&View")
        for key in ("zoom_in", "zoom_out", "zoom_fit", "zoom_100"):
            view.addAction(act[key])
        view.addSeparator()
        self.show_mask_action = view.addAction("Show &Mask Overlay")
        self.show_mask_action.setCheckable(True)
        self.show_mask_action.setChecked(self.canvas.mask_shown)
        self.show_mask_action.setShortcut(QKeySequence("Alt+M"))
        self.show_mask_action.toggled.connect(self.canvas.set_mask_shown)
        self.canvas.mask_shown_changed.connect(self.show_mask_action.setChecked)
        view.addAction(act["mask_color"])
        opacity_menu = view.addMenu("Mask Overlay &Opacity")
        opacity_group = QActionGroup(self)
        self._opacity_actions: dict[int, QAction] = {}
        for percent in (20, 35, 50, 65, 80, 100):
            action = opacity_menu.addAction(f"{percent}%")
            action.setCheckable(True)
            action.triggered.connect(lambda _c=False, p=percent: self.set_mask_opacity(p / 100))
            opacity_group.addAction(action)
            self._opacity_actions[percent] = action
        self._check_opacity_action()
        view.addSeparator()
        panels = view.addMenu("&Panels")
        panels.addAction(self.layers_dock.toggleViewAction())
        panels.addAction(self.tool_options.toggleViewAction())

        layer = bar.addMenu("&Layer")
        for key in (
            "new_image_layer",
            "new_sketch_layer",
            "new_mask_layer",
            None,
            "duplicate_layer",
            "delete_layer",
            "rename_layer",
            None,
            "layer_up",
            "layer_down",
            "group_layer",
            "ungroup_layer",
        ):
            layer.addAction(act[key]) if key else layer.addSeparator()

        tools = bar.addMenu("&Tools")
        for tool_id in TOOL_INFO:
            tools.addAction(act[f"tool_{tool_id.value}"])
        tools.addSeparator()
        for key in ("key_swap", "brush_smaller", "brush_bigger"):
            tools.addAction(act[key])
        self.menus = {
            "file": file_menu,
            "edit": edit,
            "mask": mask_menu,
            "view": view,
            "panels": panels,
            "layer": layer,
            "tools": tools,
            "image": image,
        }

    def _build_image_menu(self):
        image = self.menuBar().addMenu("&Image")
        for key in ("canvas_size", "crop_to_selection", "crop_to_frame", None, "clear_frame"):
            image.addAction(self.action_map[key]) if key else image.addSeparator()
        return image

    def _build_toolbox(self) -> None:
        box = QToolBar("Tools", self)
        box.setObjectName("toolbox")
        box.setMovable(False)
        box.setOrientation(Qt.Orientation.Vertical)
        for tool_id in TOOL_INFO:
            box.addAction(self.action_map[f"tool_{tool_id.value}"])
        self.addToolBar(Qt.ToolBarArea.LeftToolBarArea, box)
        self.toolbox = box

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.cursor_label = QLabel("")
        self.cursor_label.setMinimumWidth(110)
        self.size_label = QLabel("")
        self.zoom_label = QLabel("100%")
        self.zoom_label.setMinimumWidth(60)
        for label in (self.cursor_label, self.size_label, self.zoom_label):
            label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            bar.addPermanentWidget(label)

    def _zoom_changed(self, zoom: float) -> None:
        self.zoom_label.setText(f"{zoom * 100:.0f}%" if zoom >= 0.1 else f"{zoom * 100:.1f}%")

    def _cursor_moved(self, point) -> None:
        self.cursor_label.setText("" if point is None else f"{int(point[0])}, {int(point[1])}")

    def _show_notice(self, message: str) -> None:
        self.statusBar().showMessage(message, 6000)

    def _update_undo_actions(self, *_args) -> None:
        history = self.doc.history
        if not shiboken6.isValid(history):
            return
        self.action_map["undo"].setEnabled(history.canUndo())
        self.action_map["redo"].setEnabled(history.canRedo())
        self.action_map["undo"].setText(f"&Undo {history.undoText()}".rstrip())
        self.action_map["redo"].setText(f"&Redo {history.redoText()}".rstrip())

    # ---- image: canvas size, crop, the generation frame -------------------------------------

    def canvas_size_dialog(self) -> bool:
        dialog = CanvasSizeDialog(self.doc, self.pixel_limit, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return False
        width, height, anchor = dialog.values()
        return self.resize_canvas(width, height, anchor)

    def resize_canvas(self, width: int, height: int, anchor=canvas_size.Anchor.CENTER) -> bool:
        try:
            canvas_size.resize_canvas(self.doc, width, height, anchor, self.pixel_limit)
        except canvas_size.CanvasSizeError as error:
            self._show_notice(str(error))
            return False
        return True

    def crop_to_selection(self) -> None:
        if self.doc.selection.is_blank():
            self._show_notice("Nothing is selected: select the area to crop to first.")
            return
        area = self.doc.selection.content_rect().intersected(self.doc.rect)
        self._crop(area, "Crop to selection")

    def crop_to_frame(self) -> None:
        rect = frame_of(self.doc).rect
        if rect is None:
            self._show_notice("There is no generation frame: draw one with the frame tool (F).")
            return
        self._crop(rect, "Crop to frame")

    def _crop(self, area, text: str) -> None:
        try:
            canvas_size.crop_canvas(self.doc, area, text, self.pixel_limit)
        except canvas_size.CanvasSizeError as error:
            self._show_notice(str(error))

    def clear_frame(self) -> None:
        frame_of(self.doc).clear()

    def _canvas_resized(self) -> None:
        self.size_label.setText(f"{self.doc.width} × {self.doc.height}")

    def _frame_changed(self, _rect) -> None:
        self.canvas.update()

    # ---- edit ------------------------------------------------------------------------------

    def undo(self) -> None:
        if self.canvas.tool is not None:
            self.canvas.tool.cancel()  # a gesture in progress is dropped, not half-undone
        self.doc.history.undo()

    def redo(self) -> None:
        self.doc.history.redo()

    def select_all(self) -> None:
        self.doc.set_selection(full_raster(self.doc.width, self.doc.height, 1, 255), "Select all")

    def deselect(self) -> None:
        self.doc.clear_selection()

    def _mask_op(self, operation: Callable[[Document], None]) -> None:
        try:
            operation(self.doc)
        except LayerLockedError as err:
            self._show_notice(str(err))

    def _ask_pixels(self, title: str, default: int) -> int | None:
        value, ok = QInputDialog.getInt(self, title, "Pixels:", default, 1, 1000)
        return value if ok else None

    def grow_mask(self, pixels: int | None = None) -> None:
        pixels = pixels if pixels is not None else self._ask_pixels("Grow mask", 8)
        if pixels:
            self._mask_op(lambda d: mask_ops.grow_mask(d, pixels))

    def shrink_mask(self, pixels: int | None = None) -> None:
        pixels = pixels if pixels is not None else self._ask_pixels("Shrink mask", 8)
        if pixels:
            self._mask_op(lambda d: mask_ops.shrink_mask(d, pixels))

    def feather_mask(self, pixels: int | None = None) -> None:
        pixels = pixels if pixels is not None else self._ask_pixels("Feather mask", 8)
        if pixels:
            self._mask_op(lambda d: mask_ops.feather_mask(d, pixels))

    # ---- view ------------------------------------------------------------------------------

    def choose_mask_color(self) -> None:
        color = QColorDialog.getColor(self.canvas.mask_color, self, "Mask overlay colour")
        if color.isValid():
            self.set_mask_overlay(color=color)

    def set_mask_opacity(self, opacity: float) -> None:
        self.set_mask_overlay(opacity=opacity)

    def set_mask_overlay(self, color: QColor | None = None, opacity: float | None = None) -> None:
        """Change the mask tint; ``mask_overlay_changed`` tells whoever persists settings."""
        self.canvas.set_mask_overlay(color, opacity)
        self._check_opacity_action()
        self.mask_overlay_changed.emit(self.canvas.mask_color.name(), self.canvas.mask_opacity)

    def _check_opacity_action(self) -> None:
        percent = round(self.canvas.mask_opacity * 100)
        for value, action in self._opacity_actions.items():
            action.setChecked(value == percent)

    def apply_settings(self, settings) -> None:
        """Take the editor part of app.settings.Settings (mask tint, image size limit)."""
        color = QColor(getattr(settings, "mask_color", self.canvas.mask_color.name()))
        opacity = float(getattr(settings, "mask_opacity", self.canvas.mask_opacity))
        self.canvas.set_mask_overlay(color if color.isValid() else None, opacity)
        self._check_opacity_action()
        megapixels = getattr(settings, "max_image_megapixels", None)
        if megapixels:
            self.pixel_limit = int(megapixels * 1_000_000)

    # ---- layers ----------------------------------------------------------------------------

    def add_layer(self, kind: LayerKind) -> None:
        self.doc.add_layer(kind)

    def rename_layer_dialog(self) -> None:
        layer = self.doc.active_layer
        if layer is None:
            return
        name, ok = QInputDialog.getText(self, "Rename layer", "Name:", text=layer.name)
        if ok:
            self.doc.rename_layer(layer.id, name)

    # ---- files -----------------------------------------------------------------------------

    def ask_unsaved(self, action: str) -> str:
        """'save', 'discard' or 'cancel' for unsaved work before ``action`` (e.g. 'quit')."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(APP_NAME)
        box.setText(f"“{self.document_name}” has unsaved changes.")
        box.setInformativeText(f"Discard them and {action}?")
        buttons = QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel
        if self.save_handler is not None:
            buttons |= QMessageBox.StandardButton.Save
        box.setStandardButtons(buttons)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        answer = box.exec()
        return {
            QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard",
        }.get(QMessageBox.StandardButton(answer), "cancel")

    def confirm_discard(self, action: str) -> bool:
        """True when it is fine to drop the current document."""
        if self.doc is None or not self.doc.is_modified:
            return True
        answer = self.ask_unsaved(action)
        if answer == "save":
            return bool(self.save_handler and self.save_handler())
        return answer == "discard"

    def new_document_dialog(self) -> None:
        size = (self.doc.width, self.doc.height) if self.doc is not None else (1024, 1024)
        dialog = NewDocumentDialog(self, size)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            width, height, fill = dialog.values()
            self.new_document(width, height, fill)

    def new_document(self, width: int, height: int, fill=(255, 255, 255, 255)) -> bool:
        if not self.confirm_discard("create a new image"):
            return False
        try:
            doc = Document.blank(width, height, fill)
        except (ValueError, MemoryError) as err:
            self.show_error("Cannot create the image", str(err))
            return False
        self.set_document(doc, "Untitled")
        return True

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open image", self._last_folder(), open_filter()
        )
        if path:
            self.open_path(path)

    def _last_folder(self) -> str:
        return str(self.document_folder())

    def document_folder(self) -> Path:
        """Where file dialogs start: the folder of the document's file, else the home folder."""
        source = self.doc.path if self.doc is not None and self.doc.path else self.document_source
        return Path(source).parent if source is not None else Path.home()

    def suggested_path(self, suffix: str) -> Path:
        """A file name for Save As / Export: ``photo.ora`` for a document opened from
        ``photo.png``, in that file's folder."""
        source = self.doc.path if self.doc is not None and self.doc.path else self.document_source
        stem = Path(source).stem if source is not None else Path(self.document_name).stem
        path = self.document_folder() / f"{stem or 'untitled'}{suffix}"
        if source is not None and path == Path(source) and suffix != ".ora":
            path = path.with_name(f"{path.stem}_edited{suffix}")  # never the original by default
        return path

    def open_path(self, path: str | Path) -> bool:
        """Open an image (or project) as the current document. Any failure is shown and leaves
        the open document untouched."""
        path = Path(path)
        try:
            doc = files.open_document(path, pixel_limit=self.pixel_limit)
        except files.FileError as err:
            self.show_error("Cannot open file", str(err))
            return False
        except (ValueError, MemoryError) as err:
            self.show_error("Cannot open file", f"{path.name}: {err}")
            return False
        if not self.confirm_discard(f"open {path.name}"):
            return False
        self.set_document(doc, path.name)
        self.document_source = path
        opened = f"Opened {path.name} ({doc.width} × {doc.height})"
        self._show_notice(f"{opened}. {doc.colour_note}" if doc.colour_note else opened)
        doc.report_unknown_modes()  # blend modes kept but drawn as Normal: said once
        return True

    def clipboard_image(self) -> np.ndarray | None:
        mime = QApplication.clipboard().mimeData()
        if mime is not None and mime.hasImage():
            image = QApplication.clipboard().image()
            if not image.isNull():
                return qimage_to_rgba(image)
        if mime is not None and mime.hasUrls():
            for url in mime.urls():
                if url.isLocalFile():
                    from app.image_io import load_rgba

                    try:
                        return load_rgba(url.toLocalFile(), self.pixel_limit)
                    except ImageLoadError as err:
                        self.show_error("Cannot paste", str(err))
                        return None
        self._show_notice("The clipboard holds no image.")
        return None

    def paste_as_document(self) -> bool:
        pixels = self.clipboard_image()
        if pixels is None:
            return False
        if not self.confirm_discard("paste a new image"):
            return False
        try:
            doc = Document.from_rgba(pixels, name="Pasted")
        except ValueError as err:
            self.show_error("Cannot paste", str(err))
            return False
        self.set_document(doc, "Pasted image")
        return True

    def paste_as_layer(self) -> bool:
        pixels = self.clipboard_image()
        if pixels is None:
            return False
        height, width = pixels.shape[:2]
        x = max(0, (self.doc.width - width) // 2)
        y = max(0, (self.doc.height - height) // 2)
        self.doc.add_layer(LayerKind.IMAGE, "Pasted", Raster(4, pixels, x, y))
        return True

    def export_dialog(self) -> None:
        suggestion = str(self.suggested_path(".png"))
        path, _ = QFileDialog.getSaveFileName(self, "Export PNG", suggestion, "PNG image (*.png)")
        if path:
            if not Path(path).suffix:
                path += ".png"
            self.export_png(path)

    def export_png(self, path: str | Path) -> bool:
        try:
            files.export_flat(self.doc, path)
        except files.FileError as err:
            self.show_error("Export failed", str(err))
            return False
        self._show_notice(f"Exported {Path(path).name}")
        return True

    # ---- drag and drop, closing ------------------------------------------------------------

    @staticmethod
    def _dropped_file(event: QDragEnterEvent | QDropEvent) -> str | None:
        mime = event.mimeData()
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile():
                return url.toLocalFile()
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_file(event) is not None or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._dropped_file(event)
        if path is not None:
            event.acceptProposedAction()
            # open after the drop returns, so the drag source is not kept waiting by dialogs
            QTimer.singleShot(0, lambda: self.handle_dropped_path(path))

    def handle_dropped_path(self, path: str) -> bool:
        """A dropped file: the first drop handler that takes it (e.g. a model file for the
        model library) wins; anything else is opened as a document."""
        for handler in self.drop_handlers:
            if handler(Path(path)):
                return True
        return self.open_path(path)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.confirm_discard("quit"):
            for box in list(self._error_boxes):
                box.close()
            self._disconnect_document()
            self.tool_keys.detach()
            self.closed.emit()
            event.accept()
        else:
            event.ignore()
