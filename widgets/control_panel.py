"""Control panel: the active layer's ControlNet settings and the control-layer actions.

Edits the active control / pose / sketch layer's :class:`app.layers.ControlSettings` — type,
on/off, ControlNet model, weight, start/end of the step range, resize mode and, for Canny layers
made from the picture, the two thresholds. Every change is one ``doc.set_layer_property(id,
"control", …)`` (or an ``app.control_layers`` call), so Ctrl+Z undoes it. Slider drags commit
once, on release.

Canny thresholds preview live through :class:`app.control_layers.CannyPreview`, an interactive
command: a drag begins it, every pause in the drag updates it (edges found off the UI thread, the
newest thresholds win), the release commits it as one undo step, and switching documents
reverts it. The panel itself writes no pixels and starts no thread.

Actions (also in ``panel.control_actions`` for menus): add a pose figure, Canny from the
picture, import a control image, use the active sketch as scribble control. Errors appear in a
message line in the panel, never as a traceback.

The panel holds no document: it asks ``document()`` for the current one and reconnects when it
changes (call :meth:`ControlPanel.sync_document` when the window replaces its document).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import shiboken6
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.background import Background
from app.control_layers import (
    CONTROL_TYPES,
    REFERENCE,
    CannyPreview,
    DepthEstimate,
    add_canny_layer,
    add_control_image_layer,
    add_figure_layer,
    add_reference_layer,
    is_reference,
    locked_message,
    set_layer_as_control,
    with_model,
)
from app.document import Document, LayerLockedError
from app.image_io import OPEN_FORMATS
from app.io.errors import OpenError
from app.layers import ControlSettings, Layer, LayerKind
from inference.api import InvalidRequestError, ResizeMode
from widgets.percent_spin import PercentSpinBox

log = logging.getLogger(__name__)

T = TypeVar("T")

CONTROL_KINDS = frozenset({LayerKind.CONTROL, LayerKind.POSE, LayerKind.SKETCH})
DEFAULT_TYPE = {
    LayerKind.CONTROL: "canny",
    LayerKind.POSE: "openpose",
    LayerKind.SKETCH: "scribble",
}
RESIZE_MODES = tuple(mode.value for mode in ResizeMode)
MODEL_SUFFIXES = (".safetensors", ".sft")
WEIGHT_STEPS = 100  # slider ticks per 1.0 of weight
MAX_WEIGHT = 2.0
THRESHOLD_RANGE = (1, 255)  # as sd-webui-controlnet's Canny sliders
PREVIEW_DELAY_MS = 120  # pause in a threshold drag before the edges are recomputed
COMMIT_DELAY_MS = 500  # keyboard / wheel threshold changes: commit after this pause
CANNY_THREAD_NAME = "canny-preview"
DEPTH_THREAD_NAME = "depth-estimate"
EXPECTED_ERRORS = (
    OpenError,
    InvalidRequestError,
    LayerLockedError,
    ValueError,
    KeyError,
    OSError,
)
# words in a file name that tell what kind of control map it is (checked in this order)
TYPE_HINTS = (
    ("openpose", "openpose"),
    ("pose", "openpose"),
    ("softedge", "softedge"),
    ("hed", "softedge"),
    ("lineart", "lineart"),
    ("scribble", "scribble"),
    ("canny", "canny"),
    ("normal", "normal"),
    ("depth", "depth"),
    ("seg", "seg"),
)


def guess_control_type(path: str | Path) -> str:
    """The control type a file name suggests ("…_depth.png" -> depth); depth when none does."""
    name = Path(path).stem.lower()
    for word, control_type in TYPE_HINTS:
        if word in name:
            return control_type
    return "depth"


def model_path_problem(path: str) -> str | None:
    """Why ``path`` cannot be a ControlNet model (None when it looks usable)."""
    candidate = Path(path).expanduser()
    if not candidate.exists():
        return f"ControlNet model not found: {candidate}"
    if candidate.is_dir():
        if not (candidate / "config.json").is_file():
            return f"{candidate.name} is not a diffusers ControlNet folder (it has no config.json)"
        return None
    if candidate.suffix.lower() not in MODEL_SUFFIXES:
        return f"{candidate.name}: choose a .safetensors file or a diffusers ControlNet folder"
    return None


def control_settings_of(layer: Layer) -> ControlSettings:
    """The layer's settings, or the defaults it would get (a sketch starts switched off)."""
    if layer.control is not None:
        return layer.control
    return ControlSettings(
        DEFAULT_TYPE.get(layer.kind, "canny"), enabled=layer.kind is not LayerKind.SKETCH
    )


def has_canny_thresholds(layer: Layer) -> bool:
    """A Canny layer computed from the picture (an imported edge map has no thresholds)."""
    settings = layer.control
    return (
        layer.kind is LayerKind.CONTROL
        and settings is not None
        and settings.control_type == "canny"
        and "low" in settings.params
        and "high" in settings.params
    )


class ControlPanel(QWidget):
    """ControlNet settings of the active layer plus control-layer actions.

    ``document`` returns the current Document (or None). ``scanner`` (a
    ``app.library.ModelLibrary``) adds a library combo of ControlNet models next to
    the path field. ``tool_requested`` asks the window to switch tools ("pose" after a figure
    was added).
    """

    tool_requested = Signal(str)

    def __init__(
        self,
        document: Callable[[], Document | None],
        scanner: Any = None,
        parent: QWidget | None = None,
        *,
        preview_delay_ms: int = PREVIEW_DELAY_MS,
        commit_delay_ms: int = COMMIT_DELAY_MS,
    ):
        super().__init__(parent)
        self.setObjectName("control_panel")
        self._document = document
        self._doc: Document | None = None
        self._layer_id: int | None = None  # the layer the fields show
        self._updating = False  # filling fields from the model: their signals are not edits
        self._canny: CannyPreview | None = None  # the threshold change going on
        self._edges = Background(CANNY_THREAD_NAME, parent=self)  # finds edges off the UI thread
        edges = self._edges
        self.destroyed.connect(lambda *_: edges.shutdown(5))
        self._depth: DepthEstimate | None = None  # a depth estimate waiting to be kept
        self._depth_worker = Background(DEPTH_THREAD_NAME, parent=self)
        depth_worker = self._depth_worker
        self.destroyed.connect(lambda *_: depth_worker.shutdown(30))
        self._depth_folder: str | None = None
        self._preview_timer = QTimer(self, singleShot=True, interval=preview_delay_ms)
        self._preview_timer.timeout.connect(self._preview_canny)
        self._commit_timer = QTimer(self, singleShot=True, interval=commit_delay_ms)
        self._commit_timer.timeout.connect(self._commit_canny)

        self.control_actions: dict[str, QAction] = {}
        self._build_actions()
        self._build(scanner)
        self.sync_document()

    # ---- public ------------------------------------------------------------------------------

    @property
    def doc(self) -> Document | None:
        return self._doc

    def sync_document(self, *_args: object) -> Document | None:
        """Follow ``document()``: reconnect when it returns another document."""
        doc = self._document()
        if doc is not None and not shiboken6.isValid(doc):
            doc = None
        if doc is not self._doc:
            self._drop_canny_preview()
            self.discard_depth()
            self._disconnect()
            self._doc = doc
            if doc is not None:
                doc.active_layer_changed.connect(self._refresh)
                doc.layers_changed.connect(self._refresh)
                doc.history.indexChanged.connect(self._on_history_changed)
            self._refresh()
        return doc

    def _begin_action(self) -> Document | None:
        """The current document, with a pending threshold change recorded first (so the
        action's own undo step does not end the preview and lose it)."""
        doc = self.sync_document()
        if self._canny is not None:
            self._commit_canny()
        return doc

    def active_layer(self) -> Layer | None:
        doc = self._doc
        return doc.active_layer if doc is not None else None

    def show_message(self, text: str, error: bool = True) -> None:
        self.message.setProperty("error", error)
        self.message.setStyleSheet("color: #e0605e;" if error else "")
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def clear_message(self) -> None:
        self.show_message("", error=False)

    # -- actions (each one undo step; errors go to the message line)

    def add_pose_figure(self) -> Layer | None:
        doc = self._begin_action()
        if doc is None:
            return None
        ok, layer = self._attempt("Add pose figure", lambda: add_figure_layer(doc))
        if ok:
            self.tool_requested.emit("pose")
        return layer

    def canny_from_picture(self) -> Layer | None:
        doc = self._begin_action()
        if doc is None:
            return None
        return self._attempt("Canny from picture", lambda: add_canny_layer(doc))[1]

    def import_control_image(
        self, path: str | Path, control_type: str | None = None
    ) -> Layer | None:
        """Add ``path`` as a control layer of ``control_type`` (guessed from the name if None)."""
        doc = self._begin_action()
        if doc is None:
            return None
        kind = control_type or guess_control_type(path)
        return self._attempt(
            "Import control image", lambda: add_control_image_layer(doc, path, kind)
        )[1]

    def depth_from_picture(self, folder: str | None = None) -> bool:
        """Estimate the picture's depth off the UI thread with a local depth model (``folder``,
        else the library's first, else one chosen in a dialog); the map is previewed until
        :meth:`keep_depth` or :meth:`discard_depth`. With a depth layer active, that layer is
        re-estimated."""
        doc = self._begin_action()
        if doc is None:
            return False
        folder = folder or self._depth_model()
        if not folder:
            self.show_message("Choose a depth model folder (DPT, Depth Anything) for depth.")
            return False
        self.discard_depth()
        layer = self.active_layer()
        target = None
        if layer is not None and layer.kind is LayerKind.CONTROL and layer.control is not None:
            target = layer.id if layer.control.control_type == "depth" else None
        self._depth_folder = folder
        self._depth = DepthEstimate(
            doc, folder, self._depth_worker, target, self.show_message, self._depth_ready
        )
        self.show_message("Estimating depth…", error=False)
        self._depth.start()
        return True

    def keep_depth(self) -> Layer | None:
        """Keep the depth preview: one undo step."""
        estimate, self._depth = self._depth, None
        self.depth_box.hide()
        if estimate is None or not shiboken6.isValid(estimate.doc):
            return None
        return self._attempt("Depth from picture", estimate.commit)[1]

    def discard_depth(self) -> None:
        estimate, self._depth = self._depth, None
        self.depth_box.hide()
        if estimate is not None and shiboken6.isValid(estimate.doc):
            estimate.revert()

    def _depth_ready(self) -> None:
        self.clear_message()
        self.depth_box.show()

    def _depth_model(self) -> str | None:
        found = self._library_paths("depth estimator")
        if found:
            return found[0]
        if self._depth_folder:
            return self._depth_folder
        path = QFileDialog.getExistingDirectory(self, "Choose a depth model folder", "")
        return path or None

    def use_sketch_as_scribble(self) -> bool:
        doc = self._begin_action()
        layer = self.active_layer()
        if doc is None or layer is None or layer.kind is not LayerKind.SKETCH:
            self.show_message("Choose a sketch layer to use it as scribble control.")
            return False
        ok, _ = self._attempt(
            "Use sketch as control", lambda: set_layer_as_control(doc, layer.id, "scribble")
        )
        return ok

    def set_model_path(self, path: str | None) -> bool:
        """Use the ControlNet, T2I-Adapter or IP-Adapter at ``path`` (a .safetensors file or
        diffusers folder; None: none). An IP-Adapter makes the layer a reference layer."""
        path = path.strip() if path else None
        if path:
            problem = model_path_problem(path)
            if problem is not None:
                self.show_message(problem)
                self._refresh()  # the field goes back to the layer's value
                return False
            path = str(Path(path).expanduser().resolve())
        return self._use_model(path or None)

    def add_reference_image(self, path: str | Path) -> Layer | None:
        """``path`` as a reference layer (with the library's first fitting IP-Adapter)."""
        doc = self._begin_action()
        if doc is None:
            return None
        return self._attempt(
            "Add reference image", lambda: add_reference_layer(doc, path, self._first_ip_adapter())
        )[1]

    def use_layer_as_reference(self) -> bool:
        """The active raster layer becomes a reference image (its pixels stay editable)."""
        doc = self._begin_action()
        layer = self.active_layer()
        if doc is None or layer is None or layer.raster is None or layer.kind is LayerKind.MASK:
            self.show_message("Choose a picture layer to use it as a reference image.")
            return False

        def use() -> None:
            base = control_settings_of(layer)
            settings = replace(base, control_type=REFERENCE, enabled=True)
            if not is_reference(layer) and self._first_ip_adapter():
                settings = with_model(settings, self._first_ip_adapter(), self._encoders())
            doc.set_layer_property(layer.id, "control", settings, "Use as reference")

        ok, _ = self._attempt("Use as reference", use)
        return ok

    # -- dialogs (thin wrappers over the methods above)

    def import_control_image_dialog(self) -> None:
        """A file dialog whose file-type filter also chooses the control type."""
        patterns = " ".join(f"*{suffix}" for suffix in sorted(OPEN_FORMATS))
        guess = f"Any control image, type from its name ({patterns})"
        by_type = {f"{kind} map ({patterns})": kind for kind in CONTROL_TYPES}
        path, chosen = QFileDialog.getOpenFileName(
            self, "Import control image", "", ";;".join([guess, *by_type]), guess
        )
        if path:
            self.import_control_image(path, by_type.get(chosen))

    def add_reference_image_dialog(self) -> None:
        patterns = " ".join(f"*{suffix}" for suffix in sorted(OPEN_FORMATS))
        path, _ = QFileDialog.getOpenFileName(
            self, "Add reference image", "", f"Images ({patterns})"
        )
        if path:
            self.add_reference_image(path)

    def choose_model_file(self) -> None:
        patterns = " ".join(f"*{suffix}" for suffix in MODEL_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a ControlNet model", self._model_folder(), f"ControlNet ({patterns})"
        )
        if path:
            self._remember_in_library(path)
            self.set_model_path(path)

    def choose_model_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Choose a diffusers ControlNet folder", self._model_folder()
        )
        if path:
            self.set_model_path(path)

    # ---- building ----------------------------------------------------------------------------

    def _build_actions(self) -> None:
        def action(key: str, text: str, slot: Callable[[], object], tip: str) -> None:
            act = QAction(text, self)
            act.setIconText(text)  # tool buttons would strip the "…" of a dialog action
            act.setToolTip(tip)
            act.setStatusTip(tip)
            act.triggered.connect(lambda _checked=False: slot())
            self.control_actions[key] = act

        action(
            "add_pose_figure",
            "Add pose figure",
            self.add_pose_figure,
            "A new pose layer with a standing figure in the selection (or the middle)",
        )
        action(
            "canny_from_picture",
            "Canny from picture",
            self.canny_from_picture,
            "Edges of the visible picture as a Canny control layer",
        )
        action(
            "depth_from_picture",
            "Depth from picture",
            self.depth_from_picture,
            "A depth map of the visible picture, by a local depth model (DPT, Depth Anything)",
        )
        action(
            "import_control_image",
            "Import control image…",
            self.import_control_image_dialog,
            "A depth map, line art or other control image from a file",
        )
        action(
            "add_reference_image",
            "Add reference image…",
            self.add_reference_image_dialog,
            "A picture whose style (and content) guides the generation through an IP-Adapter",
        )
        action(
            "use_as_reference",
            "Use layer as reference",
            self.use_layer_as_reference,
            "The active layer's picture guides the generation through an IP-Adapter",
        )
        action(
            "sketch_as_scribble",
            "Use sketch as scribble control",
            self.use_sketch_as_scribble,
            "Feed the active sketch layer to ControlNet as a scribble (white strokes on black)",
        )

    def _build(self, scanner: Any) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)

        self.title = QLabel(self)
        self.title.setObjectName("control_title")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.hint = QLabel(
            "Select a control, pose or sketch layer to set how it guides the generation.", self
        )
        self.hint.setWordWrap(True)
        self.hint.setEnabled(False)
        layout.addWidget(self.hint)

        self.settings_box = QGroupBox("ControlNet", self)
        form = QFormLayout(self.settings_box)
        self.enabled_check = QCheckBox("Use as ControlNet input", self.settings_box)
        self.enabled_check.toggled.connect(self._on_enabled)
        form.addRow(self.enabled_check)

        self.type_combo = QComboBox(self.settings_box)
        self.type_combo.addItems(CONTROL_TYPES)
        self.type_combo.activated.connect(self._on_type)
        form.addRow("Type", self.type_combo)

        form.addRow("Model", self._build_model_row(scanner))

        self.weight_slider = QSlider(Qt.Orientation.Horizontal, self.settings_box)
        self.weight_slider.setRange(0, round(MAX_WEIGHT * WEIGHT_STEPS))
        self.weight_slider.setPageStep(10)
        self.weight_label = QLabel("1.00", self.settings_box)
        self.weight_label.setMinimumWidth(32)
        self.weight_slider.valueChanged.connect(self._on_weight_moved)
        self.weight_slider.sliderReleased.connect(self._commit_weight)
        form.addRow("Weight", _row(self.weight_slider, self.weight_label))

        self.start_spin = _fraction_spin(self.settings_box)
        self.end_spin = _fraction_spin(self.settings_box)
        self.start_spin.valueChanged.connect(self._on_start)
        self.end_spin.valueChanged.connect(self._on_end)
        self.start_spin.setToolTip("Fraction of the steps after which this control starts")
        self.end_spin.setToolTip("Fraction of the steps after which this control stops")
        form.addRow("Steps", _row(self.start_spin, QLabel("to"), self.end_spin))

        self.resize_combo = QComboBox(self.settings_box)
        self.resize_combo.addItems(RESIZE_MODES)
        self.resize_combo.setToolTip(
            "How a control image of another size or shape is fitted to the generated area"
        )
        self.resize_combo.activated.connect(self._on_resize_mode)
        form.addRow("Resize", self.resize_combo)
        self.style_only_check = QCheckBox("Style only (not the content)", self.settings_box)
        self.style_only_check.setToolTip(
            "The reference acts in the style blocks only (InstantStyle): its colours, brushwork "
            "and mood transfer, its subject and layout do not"
        )
        self.style_only_check.toggled.connect(self._on_style_only)
        form.addRow(self.style_only_check)
        layout.addWidget(self.settings_box)

        self.canny_box = QGroupBox("Canny thresholds", self)
        canny_form = QFormLayout(self.canny_box)
        self.low_slider, self.low_label = self._threshold_slider()
        self.high_slider, self.high_label = self._threshold_slider()
        canny_form.addRow("Low", _row(self.low_slider, self.low_label))
        canny_form.addRow("High", _row(self.high_slider, self.high_label))
        layout.addWidget(self.canny_box)

        self.depth_box = QGroupBox("Depth estimate", self)
        depth_row = QHBoxLayout(self.depth_box)
        self.keep_depth_button = QToolButton(self.depth_box)
        self.keep_depth_button.setText("Keep")
        self.keep_depth_button.setToolTip("Keep the depth map shown (one undo step)")
        self.keep_depth_button.clicked.connect(self.keep_depth)
        self.discard_depth_button = QToolButton(self.depth_box)
        self.discard_depth_button.setText("Discard")
        self.discard_depth_button.clicked.connect(self.discard_depth)
        depth_row.addWidget(self.keep_depth_button)
        depth_row.addWidget(self.discard_depth_button)
        self.depth_box.hide()
        layout.addWidget(self.depth_box)

        actions_box = QGroupBox("Add control", self)
        actions_layout = QVBoxLayout(actions_box)
        self.buttons: dict[str, QToolButton] = {}
        for key, act in self.control_actions.items():
            button = QToolButton(actions_box)
            button.setDefaultAction(act)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            actions_layout.addWidget(button)
            self.buttons[key] = button
        layout.addWidget(actions_box)

        self.message = QLabel(self)
        self.message.setObjectName("control_message")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()
        layout.addWidget(self.message)
        layout.addStretch(1)

    def _build_model_row(self, scanner: Any) -> QWidget:
        box = QWidget(self.settings_box)
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        self.model_combo = None
        if scanner is not None:
            from app.library import ModelKind
            from widgets.model_picker import ModelCombo

            kinds = (ModelKind.CONTROLNET, ModelKind.IP_ADAPTER)
            self.model_combo = ModelCombo(scanner, kinds, "None / custom path", box)
            self.model_combo.activated.connect(self._on_model_chosen)
            column.addWidget(self.model_combo)
        self._scanner = scanner
        self.model_edit = QLineEdit(box)
        self.model_edit.setPlaceholderText("ControlNet .safetensors or diffusers folder")
        self.model_edit.setClearButtonEnabled(True)
        self.model_edit.editingFinished.connect(self._on_model_edited)
        self.model_browse = QToolButton(box)
        self.model_browse.setText("…")
        self.model_browse.setToolTip("Choose a ControlNet model file or folder")
        self.model_browse.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.model_browse)
        menu.addAction("Model file (.safetensors)…", self.choose_model_file)
        menu.addAction("Diffusers folder…", self.choose_model_folder)
        self.model_browse.setMenu(menu)
        column.addLayout(_row(self.model_edit, self.model_browse))
        return box

    def _threshold_slider(self) -> tuple[QSlider, QLabel]:
        slider = QSlider(Qt.Orientation.Horizontal, self.canny_box)
        slider.setRange(*THRESHOLD_RANGE)
        label = QLabel(self.canny_box)
        label.setMinimumWidth(32)
        slider.valueChanged.connect(self._on_threshold_moved)
        slider.sliderReleased.connect(self._commit_canny)
        return slider, label

    # ---- document and layer following -------------------------------------------------------

    def _disconnect(self) -> None:
        doc = self._doc
        if doc is None or not shiboken6.isValid(doc):
            return
        for signal in (doc.active_layer_changed, doc.layers_changed):
            with contextlib.suppress(RuntimeError, TypeError):  # gone with the document
                signal.disconnect(self._refresh)
        if shiboken6.isValid(doc.history):
            with contextlib.suppress(RuntimeError, TypeError):
                doc.history.indexChanged.disconnect(self._on_history_changed)

    def _refresh(self, *_args: object) -> None:
        """Show the active layer's settings (called on every layer or active-layer change)."""
        layer = self.active_layer()
        if self._canny is not None and (layer is None or layer.id != self._canny.layer_id):
            self._commit_canny()  # the user moved on in the middle of a threshold change
            layer = self.active_layer()
        can_control = layer is not None and layer.kind in CONTROL_KINDS
        self._layer_id = layer.id if can_control and layer is not None else None
        self.title.setText(_title(layer))
        self.hint.setVisible(not can_control)
        self.settings_box.setEnabled(can_control)
        for key in (
            "add_pose_figure",
            "canny_from_picture",
            "import_control_image",
            "add_reference_image",
            "depth_from_picture",
        ):
            self.control_actions[key].setEnabled(self._doc is not None)
        sketch_free = (
            layer is not None
            and layer.kind is LayerKind.SKETCH
            and not (layer.control is not None and layer.control.enabled)
        )
        self.control_actions["sketch_as_scribble"].setEnabled(sketch_free)
        self.control_actions["use_as_reference"].setEnabled(
            layer is not None and layer.raster is not None and layer.kind is not LayerKind.MASK
        )
        reference = layer is not None and can_control and is_reference(layer)
        self.style_only_check.setVisible(reference)
        show_canny = layer is not None and has_canny_thresholds(layer)
        self.canny_box.setVisible(show_canny)
        if not can_control or layer is None:
            return
        settings = control_settings_of(layer)
        self._updating = True
        try:
            self.enabled_check.setChecked(settings.enabled)
            if self.type_combo.findText(settings.control_type) < 0:
                self.type_combo.addItem(settings.control_type)
            self.type_combo.setCurrentText(settings.control_type)
            self.type_combo.setEnabled(layer.kind is not LayerKind.POSE)
            self._show_model(settings.model_path)
            if not self.weight_slider.isSliderDown():
                self.weight_slider.setValue(round(settings.weight * WEIGHT_STEPS))
            self.weight_label.setText(f"{settings.weight:.2f}")
            self.start_spin.setValue(settings.start)
            self.end_spin.setValue(settings.end)
            if self.resize_combo.findText(settings.resize_mode) < 0:
                self.resize_combo.addItem(settings.resize_mode)
            self.resize_combo.setCurrentText(settings.resize_mode)
            self.style_only_check.setChecked(settings.params.get("style_only") is True)
            if show_canny and self._canny is None and not self._threshold_dragging():
                self.low_slider.setValue(round(settings.params["low"]))
                self.high_slider.setValue(round(settings.params["high"]))
            self._show_thresholds()
        finally:
            self._updating = False

    def _show_model(self, path: str | None) -> None:
        self.model_edit.setText(path or "")
        self.model_edit.setToolTip(path or "")
        if self.model_combo is not None and not self.model_combo.set_path(path):
            self.model_combo.setCurrentIndex(0)  # not in the library (yet): "none / custom"

    # ---- edits -------------------------------------------------------------------------------

    def _target(self) -> tuple[Document, Layer] | None:
        doc = self._doc
        if doc is None or self._layer_id is None or not shiboken6.isValid(doc):
            return None
        try:
            return doc, doc.layer(self._layer_id)
        except KeyError:
            return None

    def _change(self, text: str, **fields: Any) -> bool:
        """Replace fields of the shown layer's settings as one undo step."""
        if self._canny is not None:
            self._commit_canny()
        target = self._target()
        if target is None:
            return False
        doc, layer = target
        new = replace(control_settings_of(layer), **fields)
        if new == layer.control:
            return True
        ok, _ = self._attempt(text, lambda: doc.set_layer_property(layer.id, "control", new, text))
        return ok

    def _on_enabled(self, checked: bool) -> None:
        if not self._updating:
            self._change("Use as control" if checked else "Stop using as control", enabled=checked)

    def _on_type(self, _row: int) -> None:
        if not self._updating:
            self._change("Control type", control_type=self.type_combo.currentText())

    def _on_model_chosen(self, _row: int) -> None:
        if self._updating or self.model_combo is None:
            return
        path = self.model_combo.path()
        if path is None and self.model_edit.text().strip():
            return  # "none / custom": keep the typed path
        self._use_model(path)

    def _use_model(self, path: str | None) -> bool:
        target = self._target()
        if target is None:
            return False
        settings = with_model(control_settings_of(target[1]), path, self._encoders())
        fields = {f: getattr(settings, f) for f in ("model_path", "control_type", "params")}
        return self._change("Control model", **fields)

    def _on_style_only(self, checked: bool) -> None:
        target = self._target()
        if self._updating or target is None:
            return
        params = {**control_settings_of(target[1]).params, "style_only": checked}
        self._change("Style only" if checked else "Style and content", params=params)

    def _library_paths(self, kind_name: str) -> list[str]:
        if self._scanner is None:
            return []
        from app.library import ModelKind

        kind = ModelKind(kind_name)
        return [e.path for e in self._scanner.entries() if e.kind is kind and e.usable]

    def _encoders(self) -> list[str]:
        return self._library_paths("image encoder")

    def _first_ip_adapter(self) -> str | None:
        paths = self._library_paths("ip-adapter")
        return paths[0] if paths else None

    def _on_model_edited(self) -> None:
        if self._updating:
            return
        target = self._target()
        text = self.model_edit.text().strip() or None
        if target is not None and text != control_settings_of(target[1]).model_path:
            self.set_model_path(text)

    def _on_weight_moved(self, value: int) -> None:
        self.weight_label.setText(f"{value / WEIGHT_STEPS:.2f}")
        if not self._updating and not self.weight_slider.isSliderDown():
            self._commit_weight()  # keyboard, wheel or a click on the groove: one step each

    def _commit_weight(self) -> None:
        self._change("ControlNet weight", weight=self.weight_slider.value() / WEIGHT_STEPS)

    def _on_start(self, value: float) -> None:
        if self._updating:
            return
        end = max(value, self.end_spin.value())
        self._change("Control step range", start=round(value, 4), end=round(end, 4))

    def _on_end(self, value: float) -> None:
        if self._updating:
            return
        start = min(value, self.start_spin.value())
        self._change("Control step range", start=round(start, 4), end=round(value, 4))

    def _on_resize_mode(self, _row: int) -> None:
        if not self._updating:
            self._change("Control resize mode", resize_mode=self.resize_combo.currentText())

    # ---- Canny thresholds --------------------------------------------------------------------

    def _threshold_dragging(self) -> bool:
        return self.low_slider.isSliderDown() or self.high_slider.isSliderDown()

    def _thresholds(self) -> tuple[int, int]:
        return self.low_slider.value(), self.high_slider.value()

    def _show_thresholds(self) -> None:
        low, high = self._thresholds()
        self.low_label.setText(str(low))
        self.high_label.setText(str(high))

    def _on_threshold_moved(self, _value: int) -> None:
        if self._updating:
            return
        self._updating = True
        try:  # keep low <= high by pushing the other slider along
            low, high = self._thresholds()
            if low > high:
                if self.sender() is self.high_slider:
                    self.low_slider.setValue(high)
                else:
                    self.high_slider.setValue(low)
        finally:
            self._updating = False
        self._show_thresholds()
        self._preview_timer.start()
        if self._threshold_dragging():
            self._commit_timer.stop()  # the release commits
        else:
            self._commit_timer.start()

    def _preview_canny(self) -> None:
        """Show the edges for the thresholds shown (the drag is still going on)."""
        target = self._target()
        if target is None or not has_canny_thresholds(target[1]):
            return
        doc, layer = target
        if layer.locked:
            self.show_message(locked_message(layer))
            return
        preview = self._canny
        if preview is None or (preview.doc, preview.layer_id) != (doc, layer.id):
            if preview is not None:
                self._commit_canny()
            preview = self._canny = CannyPreview(doc, layer.id, self._edges, self.show_message)
        preview.update(*self._thresholds())

    def _commit_canny(self) -> None:
        """One undo step for the thresholds now shown (on slider release or after a pause)."""
        self._preview_timer.stop()
        self._commit_timer.stop()
        preview, self._canny = self._canny, None
        if preview is None:
            target = self._target()
            if target is None or not has_canny_thresholds(target[1]):
                return
            preview = CannyPreview(target[0], target[1].id, self._edges, self.show_message)
        if not shiboken6.isValid(preview.doc):
            return
        layer = next((x for x in preview.doc.layers if x.id == preview.layer_id), None)
        if layer is not None and layer.locked and has_canny_thresholds(layer):
            preview.revert()
            self.show_message(locked_message(layer))
            return
        low, high = self._thresholds()
        self._attempt("Canny thresholds", lambda: preview.commit(low, high))

    def _drop_canny_preview(self) -> None:
        """Forget a threshold change in progress, putting its layer's pixels back."""
        self._preview_timer.stop()
        self._commit_timer.stop()
        preview, self._canny = self._canny, None
        if preview is not None and shiboken6.isValid(preview.doc):
            preview.revert()

    def _on_history_changed(self, _index: int) -> None:
        """Undo / redo / another edit while edges are previewed: the preview ends (see
        :meth:`app.control_layers.CannyPreview.history_moved`); so does a depth estimate of
        the picture as it was."""
        self.discard_depth()
        preview = self._canny
        if preview is None:
            return
        self._preview_timer.stop()
        self._commit_timer.stop()
        self._canny = None
        preview.history_moved()
        self._refresh()  # the sliders show the layer's thresholds again

    # ---- helpers -----------------------------------------------------------------------------

    def _attempt(self, what: str, action: Callable[[], T]) -> tuple[bool, T | None]:
        """Run an edit: (True, its result), or (False, None) with the failure shown as the
        panel's message. The app calls check their input before changing the document, so a
        failed edit leaves nothing half done."""
        try:
            result = action()
        except EXPECTED_ERRORS as err:
            log.info("%s failed: %s", what, err)
            self.show_message(str(err) or f"{what} failed")
            return False, None
        except Exception as err:  # never a traceback in the user's face
            log.exception("%s failed", what)
            self.show_message(f"{what} failed: {err}")
            return False, None
        self.clear_message()
        return True, result

    def _model_folder(self) -> str:
        current = self.model_edit.text().strip()
        return str(Path(current).parent) if current else ""

    def _remember_in_library(self, path: str) -> None:
        if self._scanner is None:
            return
        try:
            self._scanner.add_file(path)
        except Exception as err:  # the path field still works without the library
            log.info("could not add %s to the model library: %s", path, err)


def _title(layer: Layer | None) -> str:
    if layer is None:
        return "No layer"
    kind = {
        LayerKind.CONTROL: "control layer",
        LayerKind.POSE: "pose layer",
        LayerKind.SKETCH: "sketch layer",
    }.get(layer.kind, f"{layer.kind.value} layer")
    return f"<b>{layer.name}</b> — {kind}"


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        row.addWidget(widget)
    return row


def _fraction_spin(parent: QWidget) -> QDoubleSpinBox:
    spin = PercentSpinBox(parent)  # a fraction of the steps, shown as "35 %"
    spin.setKeyboardTracking(False)  # typing "0.35" is one change, not four
    return spin
