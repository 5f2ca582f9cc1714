"""Hub download dialog: progress, cancel, offline and bad ids, with a fake in-memory hub."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QMessageBox

from app.library import ModelLibrary
from app.settings import SettingsStore
from inference.hub import OFFLINE_MESSAGE, HubOfflineError, RemoteFile
from inference.library import Base, ModelKind
from inference.library.entry import format_size
from tests.inference import test_library_fakes as fakes
from widgets.hub_dialog import HubDialog, RepoIdError, parse_repo_id

REPO = "someone/tiny-model"
WAIT_MS = 10_000


class FakeTransport:
    """An in-memory repository. With ``pause_after`` it stops before the chunk that would pass
    that many bytes until ``resume`` is set, so a test can act mid-download."""

    def __init__(self, files: dict[str, bytes], chunk: int = 4096) -> None:
        self.files = files
        self.chunk = chunk
        self.listed = 0
        self.opened: list[str] = []
        self.closed: list[str] = []
        self.sent = 0
        self.pause_after: int | None = None
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.sent_after_resume = 0
        self.fail_after: int | None = None

    def list_files(self, repo_id: str, revision: str | None) -> list[RemoteFile]:
        self.listed += 1
        return [
            RemoteFile(path, len(data), hashlib.sha256(data).hexdigest())
            for path, data in self.files.items()
        ]

    def stream(self, repo_id: str, path: str, revision: str | None) -> Iterator[bytes]:
        self.opened.append(path)
        data = self.files[path]
        try:
            for start in range(0, len(data), self.chunk):
                if self.fail_after is not None and self.sent >= self.fail_after:
                    raise HubOfflineError
                if self.pause_after is not None and self.sent >= self.pause_after:
                    if not self.paused.is_set():
                        self.paused.set()
                        assert self.resume.wait(WAIT_MS / 1000), "the test never resumed"
                    self.sent_after_resume += min(self.chunk, len(data) - start)
                piece = data[start : start + self.chunk]
                self.sent += len(piece)
                yield piece
        finally:
            self.closed.append(path)


def checkpoint_bytes(tmp_path: Path) -> bytes:
    """A valid (tiny, zero-filled) SD1 checkpoint the library classifies from its header."""
    path = fakes.write_fake_safetensors(
        tmp_path / "src" / "sd15.safetensors", fakes.sd1_checkpoint()
    )
    data = path.read_bytes()
    path.unlink()
    path.parent.rmdir()
    return data


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture
def store(tmp_path: Path) -> SettingsStore:
    store = SettingsStore(tmp_path / "settings.json")
    store.update(include_hf_cache=False)
    return store


@pytest.fixture
def scanner(qtbot, tmp_path: Path, store: SettingsStore):
    scanner = ModelLibrary(store, cache_path=tmp_path / "cache.json")
    yield scanner
    assert scanner.shutdown()


def make_dialog(qtbot, store, root: Path, transport, scanner=None) -> HubDialog:
    dialog = HubDialog(store, scanner, transport=transport)
    qtbot.addWidget(dialog)
    dialog.folder_edit.setText(str(root))
    return dialog


def no_message_box() -> bool:
    return not any(
        isinstance(w, QMessageBox) and w.isVisible() for w in QApplication.topLevelWidgets()
    )


# ---- success ---------------------------------------------------------------------------------


def test_download_shows_progress_adds_the_folder_and_the_library_finds_it(
    qtbot, tmp_path: Path, store: SettingsStore, scanner: ModelLibrary
) -> None:
    files = {
        "sd15-tiny.safetensors": checkpoint_bytes(tmp_path),
        "README.md": b"# tiny\n",
        "sd15-tiny.bin": b"pickle!" * 10,  # never fetched
    }
    transport = FakeTransport(files, chunk=64 * 1024)
    root = tmp_path / "models"
    dialog = make_dialog(qtbot, store, root, transport, scanner)
    dialog.repo_edit.setText(REPO)
    assert dialog.dest_label.text() == str(root / "tiny-model")
    seen: list[tuple[int, int | None]] = []
    dialog.progress_changed.connect(lambda done, total: seen.append((done, total)))

    with qtbot.waitSignal(dialog.download_finished, timeout=WAIT_MS) as finished:
        dialog.download_button.click()
        assert dialog.is_downloading() and not dialog.repo_edit.isEnabled()

    dest = root / "tiny-model"
    assert finished.args == [dest]
    expected = {k: v for k, v in files.items() if not k.endswith(".bin")}
    assert tree(dest) == expected
    assert sorted(p.name for p in root.iterdir()) == ["tiny-model"]  # no staging folder
    total = sum(len(v) for v in expected.values())
    assert total > 10 * transport.chunk  # many chunks, so progress had something to show
    assert seen[0][1] == total and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum()
    assert f"{format_size(total)} of {format_size(total)}" in dialog.progress_label.text()
    assert "Downloaded someone/tiny-model" in dialog.status_label.text()
    assert store.settings.model_folders == (str(root),)
    assert SettingsStore(store.path).settings.model_folders == (str(root),)  # saved
    assert not dialog.is_downloading() and dialog.repo_edit.isEnabled()

    def library_has_it() -> bool:
        return any(
            Path(e.path) == dest / "sd15-tiny.safetensors"
            and e.kind is ModelKind.CHECKPOINT
            and e.base is Base.SD1
            for e in scanner.entries()
        )

    qtbot.waitUntil(library_has_it, timeout=WAIT_MS)
    assert scanner.wait()


def test_a_configured_folder_is_not_added_twice_and_the_library_rescans(
    qtbot, tmp_path: Path, store: SettingsStore, scanner: ModelLibrary
) -> None:
    root = tmp_path / "models"
    for folder in (root, tmp_path / "other"):
        folder.mkdir()
    with qtbot.waitSignal(scanner.scan_finished, timeout=WAIT_MS):
        store.update(model_folders=[str(root), str(tmp_path / "other")])
    assert scanner.entries() == []
    transport = FakeTransport({"sd15-tiny.safetensors": checkpoint_bytes(tmp_path)})
    dialog = HubDialog(store, scanner, transport=transport)
    qtbot.addWidget(dialog)
    assert dialog.folder_edit.text() == str(root)  # the first configured folder by default
    heard: list[frozenset[str]] = []
    store.subscribe(lambda _s, changed: heard.append(changed))
    dialog.repo_edit.setText("someone/inner")
    with qtbot.waitSignal(dialog.download_finished, timeout=WAIT_MS):
        dialog.start_download()
    assert heard == []  # nothing to add: the settings were left alone
    assert store.settings.model_folders == (str(root), str(tmp_path / "other"))
    new_file = root / "inner" / "sd15-tiny.safetensors"
    qtbot.waitUntil(
        lambda: [Path(e.path) for e in scanner.entries()] == [new_file], timeout=WAIT_MS
    )
    assert scanner.wait()


def test_single_file_choice_fetches_only_top_level_safetensors(qtbot, tmp_path, store) -> None:
    files = {
        "model_index.json": b"{}",
        "v1-tiny.safetensors": b"\x01" * 500,
        "v1-tiny-ema.safetensors": b"\x02" * 300,
        "unet/diffusion_pytorch_model.safetensors": b"\x03" * 700,
        "v1-tiny.ckpt": b"pickle",
    }
    transport = FakeTransport(files, chunk=64)
    dialog = make_dialog(qtbot, store, tmp_path / "models", transport)
    dialog.repo_edit.setText("https://huggingface.co/someone/tiny-model/tree/main")
    dialog.single_file_radio.setChecked(True)
    with qtbot.waitSignal(dialog.download_finished, timeout=WAIT_MS):
        dialog.download_button.click()
    assert tree(tmp_path / "models" / "tiny-model") == {
        "v1-tiny.safetensors": b"\x01" * 500,
        "v1-tiny-ema.safetensors": b"\x02" * 300,
    }
    assert sorted(transport.opened) == ["v1-tiny-ema.safetensors", "v1-tiny.safetensors"]


# ---- cancel ----------------------------------------------------------------------------------


def paused_download(qtbot, tmp_path: Path, store) -> tuple[HubDialog, FakeTransport, Path]:
    files = {
        "model_index.json": b'{"_class_name": "StableDiffusionPipeline"}',
        "unet/diffusion_pytorch_model.safetensors": bytes(range(256)) * 200,
        "vae/diffusion_pytorch_model.safetensors": b"\x01\x02" * 3000,
    }
    transport = FakeTransport(files, chunk=1024)
    transport.pause_after = 20_000
    root = tmp_path / "new" / "models"  # neither folder exists yet
    dialog = make_dialog(qtbot, store, root, transport)
    dialog.repo_edit.setText(REPO)
    assert dialog.start_download()
    qtbot.waitUntil(transport.paused.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: dialog.progress_bar.value() > 0, timeout=WAIT_MS)
    assert dialog.progress_bar.value() < dialog.progress_bar.maximum()
    assert " of " in dialog.progress_label.text()
    assert not dialog.download_button.isEnabled() and dialog.cancel_button.isEnabled()
    return dialog, transport, root


def test_cancel_mid_download_stops_within_a_chunk_and_leaves_nothing(
    qtbot, tmp_path: Path, store
) -> None:
    dialog, transport, root = paused_download(qtbot, tmp_path, store)
    finished: list[object] = []
    dialog.download_finished.connect(finished.append)
    with qtbot.waitSignal(dialog.download_cancelled, timeout=WAIT_MS):
        dialog.cancel_button.click()
        assert not dialog.cancel_button.isEnabled()
        transport.resume.set()
    assert transport.sent_after_resume <= transport.chunk  # stopped within one chunk
    assert transport.closed == transport.opened  # the transfer was closed, not abandoned
    assert not root.exists()
    assert not (tmp_path / "new").exists()  # staging and the parents made for it are gone
    assert finished == []
    assert store.settings.model_folders == ()
    assert "cancelled" in dialog.status_label.text().lower()
    assert dialog.progress_bar.value() == 0
    assert not dialog.is_downloading() and dialog.download_button.isEnabled()
    assert dialog.repo_edit.isEnabled()


def test_closing_mid_download_cancels_and_closes_once_cleaned_up(
    qtbot, tmp_path: Path, store
) -> None:
    dialog, transport, _root = paused_download(qtbot, tmp_path, store)
    dialog.show()
    dialog.reject()  # Close button, Escape or the window's close box
    assert dialog.isVisible() and dialog.is_downloading()  # waits for the worker to clean up
    with qtbot.waitSignal(dialog.download_cancelled, timeout=WAIT_MS):
        transport.resume.set()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT_MS)
    assert not (tmp_path / "new").exists()


# ---- offline and failures --------------------------------------------------------------------


def test_offline_says_so_in_one_line(qtbot, tmp_path: Path, store, no_network, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dialog = HubDialog(store)  # the real transport
    qtbot.addWidget(dialog)
    dialog.folder_edit.setText(str(tmp_path / "models"))
    dialog.repo_edit.setText(REPO)
    with qtbot.waitSignal(dialog.download_failed, timeout=WAIT_MS) as failed:
        dialog.download_button.click()
    assert failed.args == [OFFLINE_MESSAGE]
    assert dialog.status_label.text() == OFFLINE_MESSAGE and "\n" not in OFFLINE_MESSAGE
    assert no_message_box()
    assert not (tmp_path / "models").exists()
    assert store.settings.model_folders == ()
    assert dialog.download_button.isEnabled() and not dialog.is_downloading()  # can try again


def test_connection_lost_mid_download_reads_as_offline_and_cleans_up(
    qtbot, tmp_path: Path, store
) -> None:
    transport = FakeTransport({"a.safetensors": b"\x07" * 5000}, chunk=512)
    transport.fail_after = 2048
    dialog = make_dialog(qtbot, store, tmp_path / "models", transport)
    dialog.repo_edit.setText(REPO)
    with qtbot.waitSignal(dialog.download_failed, timeout=WAIT_MS):
        dialog.download_button.click()
    assert dialog.status_label.text() == OFFLINE_MESSAGE
    assert not (tmp_path / "models").exists()
    assert no_message_box()


# ---- refused before starting -----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["no-slash", "a/b/c", "../x", "owner/..", "-owner/name", "owner/na--me", "own er/x"]
)
def test_an_invalid_repo_id_is_refused_before_starting(qtbot, tmp_path: Path, store, bad) -> None:
    transport = FakeTransport({"a.safetensors": b"x"})
    dialog = make_dialog(qtbot, store, tmp_path / "models", transport)
    dialog.repo_edit.setText(bad)
    assert not dialog.download_button.isEnabled()
    assert "owner/name" in dialog.repo_problem.text()
    assert dialog.dest_label.text() == "—"
    assert dialog.start_download() is False
    assert "owner/name" in dialog.status_label.text()
    assert transport.listed == 0 and not dialog.is_downloading()
    assert not (tmp_path / "models").exists()


def test_an_empty_repo_id_or_folder_cannot_start(qtbot, tmp_path: Path, store) -> None:
    transport = FakeTransport({"a.safetensors": b"x"})
    dialog = make_dialog(qtbot, store, tmp_path / "models", transport)
    assert not dialog.download_button.isEnabled() and dialog.start_download() is False
    dialog.repo_edit.setText(REPO)
    dialog.folder_edit.setText("  ")
    assert not dialog.download_button.isEnabled() and dialog.start_download() is False
    assert transport.listed == 0


def test_a_non_empty_destination_is_refused_before_any_transfer(qtbot, tmp_path, store) -> None:
    dest = tmp_path / "models" / "tiny-model"
    dest.mkdir(parents=True)
    (dest / "mine.txt").write_text("keep me")
    transport = FakeTransport({"a.safetensors": b"x"})
    dialog = make_dialog(qtbot, store, tmp_path / "models", transport)
    dialog.repo_edit.setText(REPO)
    assert dialog.start_download() is False
    assert "already exists" in dialog.status_label.text()
    assert transport.listed == 0
    assert tree(dest) == {"mine.txt": b"keep me"}


def test_parse_repo_id_accepts_ids_and_hub_urls() -> None:
    assert parse_repo_id("  owner/name ") == "owner/name"
    assert parse_repo_id("stabilityai/sd-turbo/") == "stabilityai/sd-turbo"
    assert parse_repo_id("https://huggingface.co/owner/name.v1_5") == "owner/name.v1_5"
    assert parse_repo_id("hf.co/owner/name/blob/main/x.safetensors") == "owner/name"
    for bad in ("", "owner", "owner/", "/name", "owner/name/extra"):
        with pytest.raises(RepoIdError):
            parse_repo_id(bad)
