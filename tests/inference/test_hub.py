"""Hub download: offline in one line, cancel and failures leave nothing behind (fake transport)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference.api import Cancelled, CancelToken, EngineError
from inference.hub import (
    OFFLINE_MESSAGE,
    HubError,
    HubOfflineError,
    HuggingFaceTransport,
    RemoteFile,
    dest_for,
    download_model,
    select_files,
)

REPO = "someone/tiny-model"


class FakeTransport:
    """An in-memory repository; ``fail_after`` bytes of a file it raises ``fail_with``."""

    def __init__(self, files: dict[str, bytes], chunk: int = 7, sizes: bool = True) -> None:
        self.files = files
        self.chunk = chunk
        self.sizes = sizes
        self.fail_after: int | None = None
        self.fail_with: Exception = HubOfflineError()
        self.corrupt: str | None = None
        self.listed = 0
        self.opened: list[str] = []
        self.closed: list[str] = []

    def list_files(self, repo_id: str, revision: str | None) -> list[RemoteFile]:
        self.listed += 1
        return [
            RemoteFile(
                path,
                len(data) if self.sizes else None,
                hashlib.sha256(data).hexdigest(),
            )
            for path, data in self.files.items()
        ]

    def stream(self, repo_id: str, path: str, revision: str | None) -> Iterator[bytes]:
        self.opened.append(path)
        data = self.files[path]
        if path == self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])
        sent = 0
        try:
            for start in range(0, len(data), self.chunk):
                if self.fail_after is not None and sent >= self.fail_after:
                    raise self.fail_with
                piece = data[start : start + self.chunk]
                sent += len(piece)
                yield piece
        finally:
            self.closed.append(path)


FILES = {
    "model_index.json": b'{"_class_name": "StableDiffusionPipeline"}',
    "unet/config.json": b'{"sample_size": 8}',
    "unet/diffusion_pytorch_model.safetensors": bytes(range(256)) * 40,
    "unet/diffusion_pytorch_model.bin": b"pickle!" * 10,
    "vae/diffusion_pytorch_model.safetensors": b"\x01\x02" * 300,
}


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


# ---- offline ---------------------------------------------------------------------------------


def test_offline_mode_fails_at_once_in_one_line(tmp_path, no_network, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dest = tmp_path / "models" / "tiny"
    with pytest.raises(HubOfflineError) as caught:
        download_model(REPO, dest)
    assert str(caught.value) == OFFLINE_MESSAGE
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, EngineError)
    assert list(tmp_path.iterdir()) == []  # not even the parent folder was made


def test_unreachable_hub_reads_as_offline(tmp_path, monkeypatch):
    """With offline mode off and nothing listening, the real transport gives the same error."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for proxy in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    transport = HuggingFaceTransport(
        endpoint="http://127.0.0.1:9", connect_timeout=1.0, read_timeout=1.0
    )
    with pytest.raises(HubOfflineError, match=r"^offline: cannot reach the Hugging Face hub"):
        download_model(REPO, tmp_path / "tiny", transport=transport)
    with pytest.raises(HubOfflineError):
        list(transport.stream(REPO, "model_index.json", None))
    assert list(tmp_path.iterdir()) == []


# ---- a download that works -----------------------------------------------------------------


def test_download_writes_the_selected_files_and_reports_progress(tmp_path):
    transport = FakeTransport(FILES)
    seen: list[tuple[int, int | None]] = []
    dest = download_model(
        REPO,
        tmp_path / "models" / "tiny",
        progress=lambda d, t: seen.append((d, t)),
        transport=transport,
    )
    expected = {k: v for k, v in FILES.items() if not k.endswith(".bin")}  # pickle never fetched
    assert tree(dest) == expected
    total = sum(len(v) for v in expected.values())
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["tiny"]  # no staging folder left
    assert transport.closed == transport.opened


def test_allow_patterns_and_unknown_sizes(tmp_path):
    transport = FakeTransport(FILES, sizes=False)
    seen: list[tuple[int, int | None]] = []
    dest = download_model(
        REPO,
        tmp_path / "unet-only",
        progress=lambda d, t: seen.append((d, t)),
        allow_patterns=["unet/*", "model_index.json"],
        transport=transport,
    )
    assert sorted(tree(dest)) == [
        "model_index.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
    ]
    assert all(t is None for _, t in seen)


def test_an_existing_empty_folder_is_used(tmp_path):
    dest = tmp_path / "tiny"
    dest.mkdir()
    download_model(REPO, dest, allow_patterns=["*.json"], transport=FakeTransport(FILES))
    assert sorted(tree(dest)) == ["model_index.json", "unet/config.json"]


# ---- cancel and failures leave nothing -------------------------------------------------------


def test_cancel_mid_file_leaves_no_partial_files(tmp_path):
    transport = FakeTransport(FILES)
    cancel = CancelToken()
    calls = []

    def progress(done, total):
        calls.append(done)
        if done > 1000:
            cancel.cancel()

    parent = tmp_path / "models"
    parent.mkdir()
    with pytest.raises(Cancelled):
        download_model(REPO, parent / "tiny", progress=progress, cancel=cancel, transport=transport)
    assert list(parent.iterdir()) == []
    assert transport.closed == transport.opened  # the transfer was closed, not abandoned
    assert calls[-1] < sum(len(v) for v in FILES.values())


def test_cancel_before_start_lists_nothing(tmp_path):
    transport = FakeTransport(FILES)
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        download_model(REPO, tmp_path / "tiny", cancel=cancel, transport=transport)
    assert transport.listed == 0
    assert list(tmp_path.iterdir()) == []


def test_connection_lost_mid_download_cleans_up_new_parents(tmp_path):
    transport = FakeTransport(FILES)
    transport.fail_after = 100
    with pytest.raises(HubOfflineError):
        download_model(REPO, tmp_path / "a" / "b" / "tiny", transport=transport)
    assert list(tmp_path.iterdir()) == []  # a/ and a/b/ were made for this download: gone


def test_corrupted_file_is_rejected(tmp_path):
    transport = FakeTransport(FILES)
    transport.corrupt = "unet/diffusion_pytorch_model.safetensors"
    with pytest.raises(HubError, match="corrupted"):
        download_model(REPO, tmp_path / "tiny", transport=transport)
    assert list(tmp_path.iterdir()) == []


def test_a_non_empty_destination_is_refused_before_any_transfer(tmp_path):
    dest = tmp_path / "tiny"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep me")
    transport = FakeTransport(FILES)
    with pytest.raises(HubError, match="already exists"):
        download_model(REPO, dest, transport=transport)
    assert transport.listed == 0
    assert tree(dest) == {"mine.txt": b"keep me"}


@pytest.mark.parametrize("bad", ["../evil.txt", "/etc/passwd", "a/../../b", "a\\b"])
def test_unsafe_remote_names_are_refused(tmp_path, bad):
    transport = FakeTransport({"model_index.json": b"{}", bad: b"x"})
    with pytest.raises(HubError, match="unsafe"):
        download_model(REPO, tmp_path / "tiny", transport=transport)
    assert list(tmp_path.iterdir()) == []


def test_nothing_matching_and_bad_repo_ids(tmp_path):
    with pytest.raises(HubError, match="no files"):
        download_model(
            REPO, tmp_path / "t", allow_patterns=["*.gguf"], transport=FakeTransport(FILES)
        )
    for bad in ("", "no-slash", "a/b/c", "../x"):
        with pytest.raises(HubError, match="repository id"):
            download_model(bad, tmp_path / "t", transport=FakeTransport(FILES))
    assert list(tmp_path.iterdir()) == []


def test_select_files_and_dest_for(tmp_path):
    files = [RemoteFile(p) for p in FILES]
    assert [f.path for f in select_files(files, ["vae/"], None)] == [
        "vae/diffusion_pytorch_model.safetensors"
    ]
    assert dest_for(tmp_path, "owner/name") == tmp_path / "name"
