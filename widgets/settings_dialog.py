"""The settings dialog: edits a copy of ``Settings`` and hands it to the ``SettingsStore``.

OK and Apply validate first (bad values are named in the dialog and nothing is saved);
Cancel leaves the store untouched. Listeners of the store apply the changes live.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractButton,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.engine_choice import ServerProbe
from app.library import hf_hub_cache
from app.settings import (
    ENGINES,
    MEMORY_MODES,
    PRECISIONS,
    PREVIEW_METHODS,
    SettingsError,
    SettingsStore,
)
from inference.api import Sampler

DEFAULT_DEVICES = ("auto", "cpu", "cuda", "mps")
MEMORY_LABELS = {
    "none": "Keep everything on the device",
    "model_offload": "Model CPU offload (less VRAM)",
    "sequential_offload": "Sequential CPU offload (least VRAM, slow)",
}
PREVIEW_LABELS = {"linear": "Fast (linear)", "taesd": "TAESD (sharper)", "off": "Off"}
PRECISION_LABELS = {"auto": "Automatic", "fp32": "fp32", "fp16": "fp16", "bf16": "bf16"}
ENGINE_LABELS = {"local": "Local (this computer)", "remote": "Remote (an impasto serve server)"}


class SettingsDialog(QDialog):
    def __init__(
        self,
        store: SettingsStore,
        parent: QWidget | None = None,
        devices: Sequence[str] = DEFAULT_DEVICES,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._store = store
        self._mask_color = QColor(store.settings.mask_color)
        tabs = QTabWidget(self)
        tabs.addTab(self._models_tab(), "Models")
        tabs.addTab(self._performance_tab(devices), "Performance")
        tabs.addTab(self._previews_tab(), "Previews")
        tabs.addTab(self._editor_tab(), "Editor")
        tabs.addTab(self._generation_tab(), "Generation")
        self._probe = ServerProbe(self)
        tabs.addTab(self._engine_tab(), "Engine")
        self.error_label = QLabel(self)
        self.error_label.setObjectName("settingsError")
        self.error_label.setStyleSheet("color: #d33;")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.Apply,
            self,
        )
        self.buttons.clicked.connect(self._on_button)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self.load(store)

    # -- tabs

    def _models_tab(self) -> QWidget:
        page = QWidget()
        self.folder_list = QListWidget(page)
        self.add_folder_button = QPushButton("Add folder…", page)
        self.remove_folder_button = QPushButton("Remove", page)
        self.add_folder_button.clicked.connect(self._browse_folder)
        self.remove_folder_button.clicked.connect(self._remove_selected_folders)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_folder_button)
        buttons.addWidget(self.remove_folder_button)
        buttons.addStretch(1)
        self.hf_cache_check = QCheckBox(f"Also look in the Hugging Face cache ({hf_hub_cache()})")
        self.pickle_check = QCheckBox("Allow pickle files (.ckpt): they can run code; only trusted")
        hint = QLabel(
            "AUTOMATIC1111 and ComfyUI folders are recognised: add the install folder or its "
            "models folder."
        )
        hint.setWordWrap(True)
        layout = QVBoxLayout(page)
        layout.addWidget(QLabel("Model folders"))
        layout.addWidget(self.folder_list)
        layout.addLayout(buttons)
        layout.addWidget(hint)
        layout.addWidget(self.hf_cache_check)
        layout.addWidget(self.pickle_check)
        return page

    def _performance_tab(self, devices: Sequence[str]) -> QWidget:
        page = QWidget()
        self.device_combo = QComboBox(page)
        self.device_combo.setEditable(True)
        self.device_combo.addItems(list(devices))
        self.device_combo.setToolTip("auto, cpu, mps, cuda or cuda:N (N = GPU number)")
        self.precision_combo = _choice_combo(page, PRECISIONS, PRECISION_LABELS)
        self.memory_combo = _choice_combo(page, MEMORY_MODES, MEMORY_LABELS)
        self.vae_tiling_check = QCheckBox("VAE tiling (large images with less memory)")
        self.attention_slicing_check = QCheckBox("Attention slicing (less memory, slower)")
        form = QFormLayout(page)
        form.addRow("Device", self.device_combo)
        form.addRow("Precision", self.precision_combo)
        form.addRow("Memory", self.memory_combo)
        form.addRow("", self.vae_tiling_check)
        form.addRow("", self.attention_slicing_check)
        return page

    def _previews_tab(self) -> QWidget:
        page = QWidget()
        self.preview_combo = _choice_combo(page, PREVIEW_METHODS, PREVIEW_LABELS)
        self.preview_every_spin = QSpinBox(page)
        self.preview_every_spin.setRange(1, 100)
        self.preview_every_spin.setSuffix(" steps")
        self.taesd_edit = QLineEdit(page)
        self.taesd_edit.setPlaceholderText("automatic: a TAESD found in the model folders")
        form = QFormLayout(page)
        form.addRow("Preview", self.preview_combo)
        form.addRow("Every", self.preview_every_spin)
        form.addRow("TAESD model", self.taesd_edit)
        return page

    def _editor_tab(self) -> QWidget:
        page = QWidget()
        self.autosave_spin = QSpinBox(page)
        self.autosave_spin.setRange(0, 240)
        self.autosave_spin.setSuffix(" min")
        self.autosave_spin.setSpecialValueText("Off")
        self.mask_color_button = QPushButton(page)
        self.mask_color_button.clicked.connect(self._pick_mask_color)
        self.mask_opacity_spin = QSpinBox(page)
        self.mask_opacity_spin.setRange(0, 100)
        self.mask_opacity_spin.setSuffix(" %")
        self.pixel_limit_spin = QSpinBox(page)
        self.pixel_limit_spin.setRange(1, 2000)
        self.pixel_limit_spin.setSuffix(" megapixels")
        form = QFormLayout(page)
        form.addRow("Autosave every", self.autosave_spin)
        form.addRow("Mask colour", self.mask_color_button)
        form.addRow("Mask opacity", self.mask_opacity_spin)
        form.addRow("Largest image to open", self.pixel_limit_spin)
        return page

    def _generation_tab(self) -> QWidget:
        page = QWidget()
        self.sampler_combo = QComboBox(page)
        self.sampler_combo.addItems([s.value for s in Sampler])
        self.steps_spin = QSpinBox(page)
        self.steps_spin.setRange(1, 500)
        self.guidance_spin = QDoubleSpinBox(page)
        self.guidance_spin.setRange(0.0, 50.0)
        self.guidance_spin.setSingleStep(0.5)
        self.guidance_spin.setDecimals(1)
        form = QFormLayout(page)
        form.addRow("Sampler", self.sampler_combo)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Guidance (CFG)", self.guidance_spin)
        return page

    def _engine_tab(self) -> QWidget:
        page = QWidget()
        self.engine_combo = _choice_combo(page, ENGINES, ENGINE_LABELS)
        self.remote_url_edit = QLineEdit(page)
        self.remote_url_edit.setPlaceholderText("http://gpu-box:8470")
        self.remote_token_edit = QLineEdit(page)
        self.remote_token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.remote_token_edit.setPlaceholderText("the content of the server's token file")
        self.test_connection_button = QPushButton("Test connection", page)
        self.test_connection_button.clicked.connect(self._test_connection)
        self.connection_label = QLabel(page)
        self.connection_label.setWordWrap(True)
        self.connection_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._probe.answered.connect(self.connection_label.setText)
        self._probe.failed.connect(lambda text: self.connection_label.setText(f"Failed: {text}"))
        self.engine_combo.currentIndexChanged.connect(self._show_engine_fields)
        form = QFormLayout(page)
        form.addRow("Engine", self.engine_combo)
        form.addRow("Server", self.remote_url_edit)
        form.addRow("Token", self.remote_token_edit)
        form.addRow("", self.test_connection_button)
        form.addRow("", self.connection_label)
        return page

    # -- values in and out

    def load(self, store: SettingsStore | None = None) -> None:
        """Show the store's current settings."""
        settings = (store or self._store).settings
        self.folder_list.clear()
        for folder in settings.model_folders:
            self._add_folder_item(folder)
        self.hf_cache_check.setChecked(settings.include_hf_cache)
        self.pickle_check.setChecked(settings.allow_pickle)
        self.device_combo.setCurrentText(settings.device)
        _select(self.precision_combo, settings.precision)
        _select(self.memory_combo, settings.memory_mode)
        self.vae_tiling_check.setChecked(settings.vae_tiling)
        self.attention_slicing_check.setChecked(settings.attention_slicing)
        _select(self.preview_combo, settings.preview_method)
        self.preview_every_spin.setValue(settings.preview_every)
        self.taesd_edit.setText(settings.taesd_path)
        self.autosave_spin.setValue(settings.autosave_minutes)
        self.set_mask_color(QColor(settings.mask_color))
        self.mask_opacity_spin.setValue(round(settings.mask_opacity * 100))
        self.pixel_limit_spin.setValue(settings.max_image_megapixels)
        self.sampler_combo.setCurrentText(settings.default_sampler)
        self.steps_spin.setValue(settings.default_steps)
        self.guidance_spin.setValue(settings.default_guidance)
        _select(self.engine_combo, settings.engine)
        self.remote_url_edit.setText(settings.remote_url)
        self.remote_token_edit.setText(settings.remote_token)
        self._show_engine_fields()
        self._show_errors({})

    def values(self) -> dict[str, Any]:
        """The dialog's values as settings fields (not yet validated)."""
        return {
            "model_folders": [
                self.folder_list.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.folder_list.count())
            ],
            "include_hf_cache": self.hf_cache_check.isChecked(),
            "allow_pickle": self.pickle_check.isChecked(),
            "device": self.device_combo.currentText(),
            "precision": self.precision_combo.currentData(),
            "memory_mode": self.memory_combo.currentData(),
            "vae_tiling": self.vae_tiling_check.isChecked(),
            "attention_slicing": self.attention_slicing_check.isChecked(),
            "preview_method": self.preview_combo.currentData(),
            "preview_every": self.preview_every_spin.value(),
            "taesd_path": self.taesd_edit.text().strip(),
            "autosave_minutes": self.autosave_spin.value(),
            "mask_color": self._mask_color.name(),
            "mask_opacity": self.mask_opacity_spin.value() / 100,
            "max_image_megapixels": self.pixel_limit_spin.value(),
            "default_sampler": self.sampler_combo.currentText(),
            "default_steps": self.steps_spin.value(),
            "default_guidance": self.guidance_spin.value(),
            "engine": self.engine_combo.currentData(),
            "remote_url": self.remote_url_edit.text().strip(),
            "remote_token": self.remote_token_edit.text().strip(),
        }

    def apply(self) -> bool:
        """Validate and save; on a bad value show what is wrong and save nothing."""
        try:
            settings = self._store.settings.with_changes(**self.values())
            if settings.engine == "remote" and not settings.remote_url:
                raise SettingsError({"remote_url": "the remote engine needs the server's address"})
        except SettingsError as exc:
            self._show_errors(exc.problems)
            return False
        self._show_errors({})
        self._store.update(settings)
        return True

    def add_folder(self, path: str) -> None:
        existing = {
            self.folder_list.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.folder_list.count())
        }
        if path and path not in existing:
            self._add_folder_item(path)

    def set_mask_color(self, color: QColor) -> None:
        if color.isValid():
            self._mask_color = QColor(color)
            self.mask_color_button.setText(color.name())
            self.mask_color_button.setStyleSheet(f"background-color: {color.name()};")

    # -- internals

    def _add_folder_item(self, path: str) -> None:
        item = QListWidgetItem(path)
        item.setData(Qt.ItemDataRole.UserRole, path)
        if not os.path.isdir(os.path.expanduser(path)):
            item.setText(f"{path}  (not found)")
            item.setToolTip("This folder does not exist right now; it is kept in case it returns.")
        self.folder_list.addItem(item)

    def _browse_folder(self) -> None:
        start = getattr(self, "start_folder", "")  # set by the workspace: the document's folder
        folder = QFileDialog.getExistingDirectory(self, "Add a model folder", start)
        if folder:
            self.add_folder(folder)

    def _remove_selected_folders(self) -> None:
        for item in self.folder_list.selectedItems():
            self.folder_list.takeItem(self.folder_list.row(item))

    def _pick_mask_color(self) -> None:
        self.set_mask_color(QColorDialog.getColor(self._mask_color, self, "Mask colour"))

    def _show_errors(self, problems: dict[str, str]) -> None:
        labels = {
            "device": "Device",
            "taesd_path": "TAESD model",
            "remote_url": "Server",
            "remote_token": "Token",
        }
        text = "\n".join(f"{labels.get(name, name)}: {reason}" for name, reason in problems.items())
        self.error_label.setText(text)
        self.error_label.setVisible(bool(problems))

    def _show_engine_fields(self, *_args: object) -> None:
        remote = self.engine_combo.currentData() == "remote"
        for widget in (self.remote_url_edit, self.remote_token_edit, self.test_connection_button):
            widget.setEnabled(remote)

    def _test_connection(self) -> None:
        """Ask the server for its models and GPUs off the UI thread; the answer fills the label."""
        url = self.remote_url_edit.text().strip()
        if not url:
            self.connection_label.setText("Failed: enter the server's address first")
            return
        self.connection_label.setText(f"Connecting to {url}…")
        self._probe.probe(url, self.remote_token_edit.text().strip())

    def done(self, result: int) -> None:
        self._probe.shutdown()
        super().done(result)

    def _on_button(self, button: QAbstractButton) -> None:
        role = self.buttons.buttonRole(button)
        if role == QDialogButtonBox.ButtonRole.ApplyRole:
            self.apply()
        elif role == QDialogButtonBox.ButtonRole.AcceptRole:
            if self.apply():
                self.accept()
        elif role == QDialogButtonBox.ButtonRole.RejectRole:
            self.reject()


def _choice_combo(parent: QWidget, values: Sequence[str], labels: dict[str, str]) -> QComboBox:
    combo = QComboBox(parent)
    for value in values:
        combo.addItem(labels.get(value, value), value)
    return combo


def _select(combo: QComboBox, value: str) -> None:
    index = combo.findData(value)
    combo.setCurrentIndex(max(index, 0))
