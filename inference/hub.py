"""Optional model download from the Hugging Face hub, for users who are online.

Impasto never needs the network; this is a convenience. Offline (no network, or
``HF_HUB_OFFLINE=1``) every call fails fast with one ``HubOfflineError`` whose message is a single
line. Files are streamed into a hidden staging folder next to the destination and moved into
place only when all of them arrived and were verified (size, and SHA-256 for LFS files), so a
cancelled or failed download leaves nothing behind. Blocking: run it off the UI thread.

The network side is a small ``HubTransport`` (list files, stream one file) so tests inject a fake;
:class:`HuggingFaceTransport` is the real one (huggingface_hub's HTTP session, short timeouts).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from inference.api import Cancelled, CancelToken, EngineError

if TYPE_CHECKING:
    import httpx2

log = logging.getLogger(__name__)

OFFLINE_MESSAGE = (
    "offline: cannot reach the Hugging Face hub; copy the model into a model folder instead"
)
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 20.0
CHUNK_BYTES = 1 << 20
# Pickle and non-PyTorch weights are never fetched: Impasto only loads safetensors.
DEFAULT_IGNORE_PATTERNS = (
    "*.bin",
    "*.ckpt",
    "*.pt",
    "*.pth",
    "*.pkl",
    "*.msgpack",
    "*.h5",
    "*.onnx",
    "*.onnx_data",
    "*.pb",
    "*.ot",
    ".gitattributes",
)
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")

ProgressCallback = Callable[[int, "int | None"], None]  # (bytes done, total bytes or None)


class HubError(EngineError):
    """A download from the hub failed; the message says why."""


class HubOfflineError(HubError):
    """The hub cannot be reached (no network, or offline mode)."""

    def __init__(self, message: str = OFFLINE_MESSAGE) -> None:
        super().__init__(message)


@dataclass(frozen=True)
class RemoteFile:
    path: str  # relative, "/"-separated, as in the repository
    size: int | None = None
    sha256: str | None = None  # known for LFS files


class HubTransport(Protocol):
    def list_files(self, repo_id: str, revision: str | None) -> list[RemoteFile]:
        """Every file of the repository; raises HubOfflineError / HubError."""
        ...

    def stream(self, repo_id: str, path: str, revision: str | None) -> Generator[bytes, None, None]:
        """The bytes of one file in chunks; closing the iterator must end the transfer."""
        ...


def download_model(
    repo_id: str,
    dest_dir: str | os.PathLike,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    allow_patterns: Sequence[str] | None = None,
    ignore_patterns: Sequence[str] | None = DEFAULT_IGNORE_PATTERNS,
    revision: str | None = None,
    transport: HubTransport | None = None,
) -> Path:
    """Download ``repo_id`` (or the files matching ``allow_patterns``) into ``dest_dir``.

    ``dest_dir`` must not exist or be empty. ``progress(done, total)`` is called after every
    chunk (total is None when the hub did not say every file's size). Raises ``Cancelled`` when
    ``cancel`` fires, ``HubOfflineError`` offline, ``HubError`` otherwise; in every failure case
    nothing is left on disk. Returns the destination folder.
    """
    if not _REPO_ID.match(repo_id or ""):
        raise HubError(f"{repo_id!r} is not a hub repository id (expected owner/name)")
    dest = Path(dest_dir).expanduser()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise HubError(f"{dest} already exists and is not empty; choose another folder")
    _check_cancel(cancel)
    transport = transport or HuggingFaceTransport()
    files = select_files(transport.list_files(repo_id, revision), allow_patterns, ignore_patterns)
    if not files:
        raise HubError(f"no files of {repo_id} match the requested patterns")
    total = None if any(f.size is None for f in files) else sum(f.size or 0 for f in files)
    _check_cancel(cancel)
    created = _missing_parents(dest.parent)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.download-", dir=dest.parent))
    except OSError as error:
        raise HubError(f"cannot create {dest.parent}: {error.strerror or error}") from None
    try:
        done = 0
        if progress is not None:
            progress(0, total)
        for remote in files:
            done = _fetch(
                transport, repo_id, revision, remote, staging, done, total, progress, cancel
            )
        _check_cancel(cancel)
        if dest.exists():
            dest.rmdir()  # empty, checked above
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # parents we made for this download, deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    log.info("downloaded %s (%d files) to %s", repo_id, len(files), dest)
    return dest


def select_files(
    files: Sequence[RemoteFile],
    allow_patterns: Sequence[str] | None = None,
    ignore_patterns: Sequence[str] | None = DEFAULT_IGNORE_PATTERNS,
) -> list[RemoteFile]:
    """The files to fetch (huggingface_hub's pattern rules); refuses paths that leave the folder."""
    chosen = []
    for remote in files:
        parts = PurePosixPath(remote.path).parts
        if not parts or remote.path.startswith("/") or ".." in parts or "\\" in remote.path:
            raise HubError(f"the hub listed an unsafe file name: {remote.path!r}")
        if allow_patterns is not None and not _matches(remote.path, allow_patterns):
            continue
        if ignore_patterns and _matches(remote.path, ignore_patterns):
            continue
        chosen.append(remote)
    return chosen


def dest_for(models_root: str | os.PathLike, repo_id: str) -> Path:
    """Default folder for a download: ``<root>/<name>`` (``owner/name`` -> ``name``)."""
    return Path(models_root).expanduser() / repo_id.rstrip("/").split("/")[-1]


def is_offline() -> bool:
    """True when offline mode is on (``HF_HUB_OFFLINE``, read now and at import)."""
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    if value in {"1", "ON", "YES", "TRUE"}:
        return True
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


# ---- one file --------------------------------------------------------------------------------


def _fetch(
    transport: HubTransport,
    repo_id: str,
    revision: str | None,
    remote: RemoteFile,
    staging: Path,
    done: int,
    total: int | None,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> int:
    target = staging.joinpath(*PurePosixPath(remote.path).parts)
    digest = hashlib.sha256()
    received = 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle = target.open("wb")
    except OSError as error:
        raise HubError(f"cannot write {target.name}: {error.strerror or error}") from None
    with handle, contextlib.closing(transport.stream(repo_id, remote.path, revision)) as chunks:
        for chunk in chunks:
            _check_cancel(cancel)
            try:
                handle.write(chunk)
            except OSError as error:
                raise HubError(f"cannot write {remote.path}: {error.strerror or error}") from None
            digest.update(chunk)
            received += len(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    _check_cancel(cancel)
    if remote.size is not None and received != remote.size:
        raise HubError(
            f"{remote.path} arrived incomplete ({received} of {remote.size} bytes); try again"
        )
    if remote.sha256 and digest.hexdigest() != remote.sha256.lower():
        raise HubError(f"{remote.path} arrived corrupted (SHA-256 mismatch); try again")
    return done


def _check_cancel(cancel: CancelToken | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise Cancelled("download cancelled")


def _matches(path: str, patterns: Sequence[str]) -> bool:
    return any(
        fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.rstrip("/") + "/*") for p in patterns
    )


def _missing_parents(folder: Path) -> list[Path]:
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing  # deepest first


# ---- the real transport ----------------------------------------------------------------------


class HuggingFaceTransport:
    """huggingface_hub's HTTP session with short timeouts; offline mode checked before any call."""

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        read_timeout: float = READ_TIMEOUT_S,
    ) -> None:
        self.endpoint = endpoint
        self.token = token
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    def _timeout(self) -> httpx2.Timeout:
        import httpx2

        return httpx2.Timeout(self.read_timeout, connect=self.connect_timeout)

    def list_files(self, repo_id: str, revision: str | None) -> list[RemoteFile]:
        if is_offline():
            raise HubOfflineError
        from huggingface_hub import HfApi

        with _hub_errors(repo_id, revision):
            api = HfApi(endpoint=self.endpoint, token=self.token)
            info = api.model_info(
                repo_id,
                revision=revision,
                files_metadata=True,
                timeout=self._timeout(),  # type: ignore[arg-type]  # httpx takes a Timeout too
            )
        return [
            RemoteFile(
                path=sibling.rfilename,
                size=sibling.size,
                sha256=sibling.lfs.sha256 if sibling.lfs is not None else None,
            )
            for sibling in info.siblings or []
        ]

    def stream(self, repo_id: str, path: str, revision: str | None) -> Generator[bytes, None, None]:
        if is_offline():
            raise HubOfflineError
        from huggingface_hub import get_session, hf_hub_url
        from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

        url = hf_hub_url(repo_id, path, revision=revision, endpoint=self.endpoint)
        with (
            _hub_errors(repo_id, revision, path),
            get_session().stream(
                "GET",
                url,
                headers=build_hf_headers(token=self.token),
                follow_redirects=True,
                timeout=self._timeout(),
            ) as response,
        ):
            hf_raise_for_status(response)
            yield from response.iter_bytes(CHUNK_BYTES)


@contextlib.contextmanager
def _hub_errors(repo_id: str, revision: str | None, path: str | None = None) -> Iterator[None]:
    """Turn huggingface_hub / httpx / socket errors into HubError, unreachable into offline."""
    import httpx2
    from huggingface_hub import errors

    try:
        yield
    except HubError:
        raise
    except errors.OfflineModeIsEnabled:
        raise HubOfflineError from None
    except errors.GatedRepoError:
        raise HubError(
            f"{repo_id} is gated: accept its licence on huggingface.co and log in (hf auth login)"
        ) from None
    except errors.RepositoryNotFoundError:
        raise HubError(
            f"{repo_id} was not found on the Hugging Face hub (or it is private)"
        ) from None
    except errors.RevisionNotFoundError:
        raise HubError(f"{repo_id} has no revision {revision!r}") from None
    except errors.EntryNotFoundError:
        raise HubError(f"{path} is not in {repo_id}") from None
    except errors.HfHubHTTPError as error:
        status = getattr(getattr(error, "response", None), "status_code", "?")
        raise HubError(f"the Hugging Face hub refused the request (HTTP {status})") from None
    except (httpx2.TransportError, ConnectionError, TimeoutError) as error:
        log.info("hub unreachable: %s", error)
        raise HubOfflineError from None
    except OSError as error:  # DNS failures and the like surface as plain OSError
        log.info("hub unreachable: %s", error)
        raise HubOfflineError from None
