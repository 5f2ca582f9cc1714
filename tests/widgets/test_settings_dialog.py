"""The settings dialog edits the store: Apply/OK save validated values, Cancel saves nothing."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QDialogButtonBox

from app.settings import Settings, SettingsStore
from widgets.settings_dialog import SettingsDialog


def make(qtbot, tmp_path: Path, **initial) -> tuple[SettingsDialog, SettingsStore]:
    store = SettingsStore(tmp_path / "settings.json")
    if initial:
        store.update(**initial)
    dialog = SettingsDialog(store)
    qtbot.addWidget(dialog)
    return dialog, store


def click(dialog: SettingsDialog, which: QDialogButtonBox.StandardButton) -> None:
    dialog.buttons.button(which).click()


def test_dialog_shows_current_settings(qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    dialog, _ = make(
        qtbot,
        tmp_path,
        model_folders=[str(folder), "/gone"],
        device="cuda:1",
        memory_mode="model_offload",
        preview_method="taesd",
        autosave_minutes=9,
        mask_color="#123456",
        mask_opacity=0.3,
        default_steps=33,
    )
    assert dialog.values()["model_folders"] == [str(folder), "/gone"]
    assert dialog.folder_list.item(1).text().endswith("(not found)")
    assert dialog.device_combo.currentText() == "cuda:1"
    assert dialog.memory_combo.currentData() == "model_offload"
    assert dialog.preview_combo.currentData() == "taesd"
    assert dialog.autosave_spin.value() == 9 and dialog.steps_spin.value() == 33
    assert dialog.mask_color_button.text() == "#123456" and dialog.mask_opacity_spin.value() == 30


def test_apply_saves_and_notifies(qtbot, tmp_path: Path) -> None:
    dialog, store = make(qtbot, tmp_path)
    heard = []
    store.subscribe(lambda s, changed: heard.append(changed))
    folder = tmp_path / "sd"
    folder.mkdir()
    dialog.add_folder(str(folder))
    dialog.add_folder(str(folder))  # no duplicates
    dialog.device_combo.setCurrentText("mps")
    dialog.precision_combo.setCurrentIndex(dialog.precision_combo.findData("fp16"))
    dialog.vae_tiling_check.setChecked(True)
    dialog.pickle_check.setChecked(True)
    dialog.preview_every_spin.setValue(4)
    dialog.autosave_spin.setValue(0)
    dialog.set_mask_color(QColor("#00ff00"))
    dialog.pixel_limit_spin.setValue(50)
    dialog.sampler_combo.setCurrentText("DDIM")
    dialog.guidance_spin.setValue(4.5)
    click(dialog, QDialogButtonBox.StandardButton.Apply)
    saved = store.settings
    assert saved.model_folders == (str(folder),)
    assert (saved.device, saved.precision, saved.vae_tiling, saved.allow_pickle) == (
        "mps",
        "fp16",
        True,
        True,
    )
    assert (saved.preview_every, saved.autosave_minutes, saved.mask_color) == (4, 0, "#00ff00")
    assert (saved.max_image_megapixels, saved.default_sampler, saved.default_guidance) == (
        50,
        "DDIM",
        4.5,
    )
    on_disk = json.loads((tmp_path / "settings.json").read_text())
    assert on_disk["device"] == "mps" and on_disk["model_folders"] == [str(folder)]
    assert heard and "model_folders" in heard[0] and "device" in heard[0]


def test_invalid_device_blocks_ok_and_says_why(qtbot, tmp_path: Path) -> None:
    dialog, store = make(qtbot, tmp_path)
    dialog.show()
    dialog.device_combo.setCurrentText("cuda:zero")
    dialog.steps_spin.setValue(42)
    click(dialog, QDialogButtonBox.StandardButton.Ok)
    assert dialog.isVisible()  # not closed
    assert not dialog.error_label.isHidden() and "Device" in dialog.error_label.text()
    assert store.settings == Settings()  # nothing saved, not even the valid steps
    assert not (tmp_path / "settings.json").exists()
    dialog.device_combo.setCurrentText("cuda:0")
    click(dialog, QDialogButtonBox.StandardButton.Ok)
    assert not dialog.isVisible() and dialog.error_label.isHidden()
    assert (store.settings.device, store.settings.default_steps) == ("cuda:0", 42)


def test_cancel_saves_nothing(qtbot, tmp_path: Path) -> None:
    dialog, store = make(qtbot, tmp_path, default_steps=12)
    dialog.show()
    dialog.steps_spin.setValue(99)
    dialog.hf_cache_check.setChecked(False)
    click(dialog, QDialogButtonBox.StandardButton.Cancel)
    assert not dialog.isVisible()
    assert store.settings.default_steps == 12 and store.settings.include_hf_cache


def test_remove_folder(qtbot, tmp_path: Path) -> None:
    dialog, store = make(qtbot, tmp_path, model_folders=["/a", "/b"])
    dialog.folder_list.item(0).setSelected(True)
    dialog.remove_folder_button.click()
    assert dialog.apply()
    assert store.settings.model_folders == ("/b",)
    assert dialog.folder_list.item(0).data(Qt.ItemDataRole.UserRole) == "/b"
