"""Model picker: background scanning, filtering by base, drops, settings, remembered choices."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from app.library import ModelLibrary
from app.settings import SettingsStore
from inference.library import Base, ModelKind, sha256_file
from tests.inference import test_library_fakes as fakes
from widgets.model_picker import CLASSIC_LABEL, ModelCombo, ModelPicker


@pytest.fixture
def models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    fakes.write_fake_safetensors(root / "sd15.safetensors", fakes.sd1_checkpoint())
    fakes.write_fake_safetensors(root / "sdxl.safetensors", fakes.sdxl_checkpoint())
    fakes.write_fake_safetensors(root / "flux.safetensors", fakes.flux_transformer())
    fakes.write_fake_safetensors(root / "cn" / "canny15.safetensors", fakes.ldm_controlnet(768))
    fakes.write_fake_safetensors(root / "cn" / "depth21.safetensors", fakes.ldm_controlnet(1024))
    fakes.write_fake_safetensors(
        root / "cn" / "cannyxl.safetensors", fakes.diffusers_controlnet(True)
    )
    fakes.write_fake_safetensors(root / "vae" / "sdxl_vae.safetensors", fakes.diffusers_vae())
    fakes.write_fake_safetensors(root / "vae" / "vae-ft-mse.safetensors", fakes.ldm_vae())
    return root


@pytest.fixture
def store(tmp_path: Path, models: Path) -> SettingsStore:
    store = SettingsStore(tmp_path / "settings.json")
    store.update(model_folders=[str(models)], include_hf_cache=False)
    return store


@pytest.fixture
def scanner(qtbot, tmp_path: Path, store: SettingsStore):
    scanner = ModelLibrary(store, cache_path=tmp_path / "cache.json")
    yield scanner
    assert scanner.shutdown()


def scan(qtbot, scanner: ModelLibrary) -> None:
    with qtbot.waitSignal(scanner.scan_finished, timeout=10_000):
        scanner.rescan()


def texts(combo) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def names(combo) -> list[str]:
    return [combo.itemText(i).split("  —  ")[0] for i in range(combo.count())]


def test_scan_and_hash_run_off_the_ui_thread(qtbot, tmp_path: Path, models: Path) -> None:
    release = threading.Event()
    hash_threads: list[int] = []

    def slow_hash(path, cancel=None, on_bytes=None) -> str:
        hash_threads.append(threading.get_ident())
        release.wait(10)
        return sha256_file(path, cancel=cancel, on_bytes=on_bytes)

    scanner = ModelLibrary(
        folders=[models],
        include_hf_cache=False,
        cache_path=tmp_path / "c.json",
        hash_function=slow_hash,
    )
    try:
        with qtbot.waitSignal(scanner.entries_changed, timeout=10_000) as listed:
            scanner.rescan()
        # The list arrived while the worker is still stuck hashing: the UI thread was free.
        assert scanner.is_scanning() and len(listed.args[0]) == 8
        assert all(e.hash is None for e in listed.args[0])
        updates = []
        scanner.entry_updated.connect(updates.append)
        with qtbot.waitSignal(scanner.scan_finished, timeout=10_000):
            release.set()
        assert hash_threads and threading.get_ident() not in hash_threads
        assert len(updates) == 7  # every usable single file (the Flux one has a problem)
        assert all(len(e.hash) == 10 for e in updates)
        assert {e.path: e.hash for e in scanner.entries() if e.hash} == {
            e.path: e.hash for e in updates
        }
    finally:
        release.set()
        scanner.shutdown()


def test_picker_lists_classic_first_with_type_base_and_size(qtbot, scanner, store) -> None:
    picker = ModelPicker(scanner, store)
    qtbot.addWidget(picker)
    scan(qtbot, scanner)
    items = texts(picker.checkpoint_combo)
    assert items[0] == CLASSIC_LABEL
    assert names(picker.checkpoint_combo) == [CLASSIC_LABEL, "sd15", "sdxl", "flux"]
    size = picker.checkpoint_combo.list_model().entry(1).size_text
    assert items[1] == f"sd15  —  SD1.x checkpoint, {size}" and size.endswith("KB")
    assert picker.checkpoint_path() is None and picker.base() is None
    # Flux is listed (so the user sees it was found) but cannot be chosen; the tooltip says why.
    model = picker.checkpoint_combo.model()
    flux = model.index(3, 0)
    assert not model.flags(flux) & Qt.ItemFlag.ItemIsEnabled
    assert "not supported" in model.data(flux, Qt.ItemDataRole.ToolTipRole)
    assert picker.status_label.text() == "2 checkpoints found"


def test_controlnets_follow_the_checkpoint_base(qtbot, scanner, store, models: Path) -> None:
    picker = ModelPicker(scanner, store)
    qtbot.addWidget(picker)
    scan(qtbot, scanner)
    assert names(picker.controlnet_combo) == ["No ControlNet", "canny15", "cannyxl", "depth21"]
    with qtbot.waitSignal(picker.checkpoint_changed) as changed:
        assert picker.set_checkpoint_path(str(models / "sdxl.safetensors"))
    assert changed.args[0].base is Base.SDXL and picker.base() is Base.SDXL
    assert names(picker.controlnet_combo) == ["No ControlNet", "cannyxl"]
    assert names(picker.vae_combo)[1:] == ["sdxl_vae"]  # VAEs follow the base too
    picker.controlnet_combo.setCurrentIndex(1)
    assert picker.controlnet_path() == str(models / "cn" / "cannyxl.safetensors")
    # Switching to SD1.5 drops the SDXL ControlNet choice (it would not work) and says so.
    with qtbot.waitSignal(picker.controlnet_changed) as cn_changed:
        picker.set_checkpoint_path(str(models / "sd15.safetensors"))
    assert cn_changed.args[0] is None
    assert names(picker.controlnet_combo) == ["No ControlNet", "canny15"]
    assert names(picker.vae_combo)[1:] == ["vae-ft-mse"]
    picker.set_checkpoint_path(None)
    assert len(names(picker.controlnet_combo)) == 4  # classic: no filter


def test_choice_is_remembered_and_kept_across_rescans(qtbot, scanner, store, models) -> None:
    picker = ModelPicker(scanner, store)
    qtbot.addWidget(picker)
    scan(qtbot, scanner)
    picker.set_checkpoint_path(str(models / "sdxl.safetensors"))
    picker.vae_combo.set_path(str(models / "vae" / "sdxl_vae.safetensors"))
    assert store.settings.checkpoint == str(models / "sdxl.safetensors")
    assert store.settings.vae == str(models / "vae" / "sdxl_vae.safetensors")
    seen = []
    picker.checkpoint_changed.connect(seen.append)
    scan(qtbot, scanner)
    assert picker.checkpoint_path() == str(models / "sdxl.safetensors") and seen == []
    # A new picker (next start of the app) restores the saved choice once the scan lists it.
    again = ModelPicker(scanner, store)
    qtbot.addWidget(again)
    assert again.checkpoint_path() == str(models / "sdxl.safetensors")
    fresh = ModelLibrary(store, cache_path=Path(store.path).parent / "cache.json")
    try:
        later = ModelPicker(fresh, store)
        qtbot.addWidget(later)
        assert later.checkpoint_path() is None  # not scanned yet
        scan(qtbot, fresh)
        assert later.checkpoint_path() == str(models / "sdxl.safetensors")
        assert later.vae_path() == str(models / "vae" / "sdxl_vae.safetensors")
    finally:
        fresh.shutdown()


def test_settings_change_rescans_and_pickles_need_permission(
    qtbot, scanner, store, tmp_path
) -> None:
    picker = ModelPicker(scanner, store)
    qtbot.addWidget(picker)
    scan(qtbot, scanner)
    more = tmp_path / "more"
    fakes.write_fake_safetensors(more / "sd21.safetensors", fakes.sd2_checkpoint())
    (more / "old.ckpt").write_bytes(b"PK pickle")
    with qtbot.waitSignal(scanner.scan_finished, timeout=10_000):
        store.update(model_folders=[*store.settings.model_folders, str(more)])
    assert "sd21" in names(picker.checkpoint_combo)
    assert "old" not in names(picker.checkpoint_combo)
    store.update(allow_pickle=True)
    assert "old" in names(picker.checkpoint_combo)


def _drop(widget, path: Path) -> tuple[bool, bool]:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(
        QPoint(5, 5),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, enter)
    drop = QDropEvent(
        QPointF(5, 5),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, drop)
    return enter.isAccepted(), drop.isAccepted()


def test_dropping_a_safetensors_adds_and_selects_it(qtbot, scanner, store, tmp_path) -> None:
    picker = ModelPicker(scanner, store)
    qtbot.addWidget(picker)
    scan(qtbot, scanner)
    dropped = fakes.write_fake_safetensors(
        tmp_path / "Downloads" / "dreamy-inpaint.safetensors", fakes.sd1_checkpoint(inpaint=True)
    )
    rescans = []
    scanner.scan_started.connect(lambda: rescans.append(1))
    with qtbot.waitSignal(scanner.entry_updated, timeout=10_000) as hashed:
        assert _drop(picker, dropped) == (True, True)
    assert picker.checkpoint_path() == str(dropped) and picker.checkpoint().inpaint
    assert hashed.args[0].path == str(dropped) and len(hashed.args[0].hash) == 10
    assert store.settings.extra_model_files == (str(dropped),)
    assert store.settings.checkpoint == str(dropped)
    scanner.wait()
    assert len(rescans) == 1  # only the background hash: no full rescan for our own change
    # Other files are refused at the door.
    text = tmp_path / "notes.txt"
    text.write_text("hi")
    assert _drop(picker, text)[0] is False
    # After a restart the dropped file is still in the library.
    scan(qtbot, scanner)
    assert str(dropped) in {e.path for e in scanner.entries()}


def test_model_combo_alone_for_a_control_layer(qtbot, scanner, models) -> None:
    combo = ModelCombo(scanner, ModelKind.CONTROLNET, "None")
    qtbot.addWidget(combo)
    scan(qtbot, scanner)
    combo.set_base(Base.SD2)
    assert names(combo) == ["None", "depth21"]
    with qtbot.waitSignal(combo.entry_changed) as changed:
        combo.setCurrentIndex(1)
    assert changed.args[0].path == str(models / "cn" / "depth21.safetensors")
    assert combo.path() == str(models / "cn" / "depth21.safetensors")


def test_rescan_replaces_a_running_scan(qtbot, scanner) -> None:
    lists = []
    scanner.entries_changed.connect(lists.append)
    with qtbot.waitSignal(scanner.scan_finished, timeout=10_000):
        scanner.rescan()
        scanner.rescan()
        scanner.rescan()
    assert scanner.wait()
    assert 1 <= len(lists) <= 3 and len(lists[-1]) == 8
