"""The LoRA list: library LoRAs filtered by the checkpoint's base, rows with weights, rescans."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.library import ModelLibrary
from inference.library import Base
from tests.inference import test_library_fakes as fakes
from widgets.lora_picker import DEFAULT_WEIGHT, LoraPicker, lora_name

UNKNOWN_BASE_LORA = {
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (
        4,
        32,
    ),
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": (32, 4),
}


@pytest.fixture
def models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    fakes.write_fake_safetensors(root / "sd15.safetensors", fakes.sd1_checkpoint())
    fakes.write_fake_safetensors(root / "Lora" / "ink15.safetensors", fakes.kohya_lora_sd1())
    fakes.write_fake_safetensors(root / "Lora" / "paper21.safetensors", fakes.kohya_lora_sd2())
    fakes.write_fake_safetensors(root / "Lora" / "chromexl.safetensors", fakes.kohya_lora_sdxl())
    fakes.write_fake_safetensors(root / "Lora" / "mystery.safetensors", UNKNOWN_BASE_LORA)
    return root


@pytest.fixture
def scanner(qtbot, tmp_path: Path, models: Path):
    scanner = ModelLibrary(folders=[models], include_hf_cache=False, cache_path=tmp_path / "c")
    with qtbot.waitSignal(scanner.scan_finished, timeout=10_000):
        scanner.rescan()
    yield scanner
    assert scanner.shutdown()


@pytest.fixture
def picker(qtbot, scanner):
    widget = LoraPicker(scanner)
    qtbot.addWidget(widget)
    return widget


def menu_names(picker: LoraPicker) -> list[str]:
    picker.add_menu.aboutToShow.emit()
    return [a.text().split("  —  ")[0] for a in picker.add_menu.actions()]


def path_of(models: Path, name: str) -> str:
    return os.path.abspath(models / "Lora" / f"{name}.safetensors")


def test_menu_lists_loras_matching_the_base_and_unknown_ones_always(picker):
    assert menu_names(picker) == ["chromexl", "ink15", "mystery", "paper21"]  # no base: all
    picker.set_base(Base.SD1)
    assert menu_names(picker) == ["ink15", "mystery"]
    picker.set_base(Base.SDXL)
    assert menu_names(picker) == ["chromexl", "mystery"]
    picker.set_base(Base.UNKNOWN)  # a checkpoint of unknown base rules nothing out
    assert len(menu_names(picker)) == 4


def test_adding_from_the_menu_makes_a_row_with_default_weight(picker, models, qtbot):
    picker.set_base(Base.SD1)
    picker.add_menu.aboutToShow.emit()
    (ink,) = [a for a in picker.add_menu.actions() if a.text().startswith("ink15")]
    assert path_of(models, "ink15") in ink.toolTip()
    with qtbot.waitSignal(picker.changed):
        ink.trigger()
    assert picker.loras() == ((path_of(models, "ink15"), DEFAULT_WEIGHT),)
    (row,) = picker.rows
    assert row.name_label.text() == "ink15"
    spin = row.weight_spin
    assert (spin.minimum(), spin.maximum(), spin.singleStep()) == (-2.0, 2.0, 0.05)
    assert path_of(models, "ink15") in row.toolTip() and "SD1.x LoRA" in row.toolTip()
    assert picker.title_label.text() == "LoRA (1)"
    picker.add_menu.aboutToShow.emit()  # already added: shown checked, not offered again
    (again,) = [a for a in picker.add_menu.actions() if a.text().startswith("ink15")]
    assert again.isChecked() and not again.isEnabled()


def test_weight_enable_and_remove(picker, models, qtbot):
    ink, mystery = path_of(models, "ink15"), path_of(models, "mystery")
    picker.add_lora(ink)
    picker.add_lora(mystery, 1.0)
    first, second = picker.rows
    with qtbot.waitSignal(picker.changed):
        first.weight_spin.setValue(-1.25)
    assert picker.loras() == ((ink, -1.25), (mystery, 1.0))
    with qtbot.waitSignal(picker.changed):
        first.enable_check.setChecked(False)
    assert picker.loras() == ((mystery, 1.0),)
    assert picker.rows_state() == [[ink, -1.25, False], [mystery, 1.0, True]]
    with qtbot.waitSignal(picker.changed):
        qtbot.mouseClick(second.remove_button, Qt.MouseButton.LeftButton)
    assert picker.loras() == () and len(picker.rows) == 1
    second.weight_spin.setValue(3.0)  # a removed row no longer counts
    assert picker.loras() == ()
    assert picker.add_lora(ink) is first  # the same file is not listed twice


def test_set_loras_restores_rows_and_skips_bad_items(picker, models, qtbot):
    ink, paper = path_of(models, "ink15"), path_of(models, "paper21")
    with qtbot.waitSignal(picker.changed) as blocker:
        picker.set_loras([(ink, 0.5), [paper, "1.5", False], ("x",), (paper, "heavy")])
    assert blocker.signal_triggered
    assert picker.rows_state() == [[ink, 0.5, True], [paper, 1.5, False]]
    assert picker.loras() == ((ink, 0.5),)
    with qtbot.assertNotEmitted(picker.changed):
        picker.set_loras([(ink, 0.5), (paper, 1.5, False)])  # nothing changes
    picker.set_loras([])
    assert picker.rows == [] and picker.loras() == ()


def test_a_row_for_another_base_is_marked_with_a_note(picker, models):
    picker.add_lora(path_of(models, "chromexl"))
    picker.set_base(Base.SD1)
    (row,) = picker.rows
    assert row.mismatch and "made for SDXL" in row.toolTip()
    assert picker.note_label.isVisibleTo(picker)
    assert "Not made for this model: chromexl" in picker.note_label.text()
    picker.set_base(Base.SDXL)
    assert not row.mismatch and not picker.note_label.isVisibleTo(picker)


def test_ignored_reason_shows_only_when_loras_are_listed(picker, models):
    picker.set_ignored_reason("The classic engine ignores LoRAs.")
    assert not picker.note_label.isVisibleTo(picker)
    picker.add_lora(path_of(models, "ink15"))
    assert picker.note_label.isVisibleTo(picker)
    assert picker.note_label.text() == "The classic engine ignores LoRAs."
    picker.set_ignored_reason(None)
    assert not picker.note_label.isVisibleTo(picker)


def test_rows_follow_a_rescan(picker, scanner, models, qtbot):
    late = models / "Lora" / "late.safetensors"
    picker.add_lora(str(late), 0.3)  # restored before the library knows the file
    (row,) = picker.rows
    assert row.name_label.text() == "late" and "LoRA" not in row.toolTip()
    assert "late" not in menu_names(picker)
    fakes.write_fake_safetensors(late, fakes.kohya_lora_sdxl())
    with qtbot.waitSignal(scanner.scan_finished, timeout=10_000):
        scanner.rescan()
    assert "late" in menu_names(picker)
    assert "SDXL LoRA" in row.toolTip()
    qtbot.waitUntil(lambda: "hash " in row.toolTip(), timeout=5000)  # hashed in the background
    (entry,) = [e for e in scanner.entries() if e.path == row.path]
    assert f"hash {entry.hash}" in row.toolTip()


def test_empty_library_says_so(qtbot, tmp_path):
    scanner = ModelLibrary(folders=[tmp_path], include_hf_cache=False, cache_path=tmp_path / "c")
    picker = LoraPicker(scanner)
    qtbot.addWidget(picker)
    assert menu_names(picker) == ["No LoRAs in the model library"]
    assert not picker.add_menu.actions()[0].isEnabled()
    assert scanner.shutdown()


def test_resolve_recipe_entries_by_path_or_name(picker, models):
    ink = path_of(models, "ink15")
    recipe = [
        {"name": "ink15", "weight": 0.7, "hash": "abc", "path": ink},
        {"name": "mystery", "weight": -0.5},  # parsed from A1111 text: no path
        {"name": "paper21", "weight": 1, "path": "/moved/away/paper21.safetensors"},
        {"name": "gone", "weight": 1, "path": "/moved/away/gone.safetensors"},
        {"name": "bad", "weight": "x"},
    ]
    pairs, missing = picker.resolve(recipe)
    assert pairs == [
        (ink, 0.7),
        (path_of(models, "mystery"), -0.5),
        (path_of(models, "paper21"), 1.0),
    ]
    assert missing == ["gone"]
    picker.show_missing(missing)
    assert "Not in the model library: gone" in picker.note_label.text()


def test_lora_name_follows_a1111():
    assert lora_name("/x/Lora/ink15.safetensors") == "ink15"
    assert lora_name("/x/my_style/pytorch_lora_weights.safetensors") == "my_style"


def test_adding_a_row_hashes_the_file_off_the_ui_thread(picker, models, qtbot, monkeypatch):
    import threading

    import inference.loras

    calls = []
    monkeypatch.setattr(
        inference.loras,
        "lora_hash",
        lambda path: calls.append((path, threading.current_thread().name)),
    )
    ink = path_of(models, "ink15")
    picker.add_lora(ink)
    qtbot.waitUntil(lambda: bool(calls), timeout=2000)
    assert calls == [(ink, "lora-hash")]
