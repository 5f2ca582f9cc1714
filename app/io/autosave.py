"""Autosave and crash recovery, like Krita's.

Every N minutes (default 5) each watched document with changes since its last autosave is written
as an .ora into ``<user data>/autosave/<session>/`` (platformdirs; the folder is injectable for
tests), without the flattened ``mergedimage.png`` and re-encoding only layers whose pixels changed.
It runs on the UI thread: a first autosave of a big document takes seconds, later ones little.

A clean save or closing the document removes its autosave; a clean exit
(:meth:`AutosaveManager.shutdown`) removes the session folder. A session folder whose process is
gone was left by a crash: :meth:`AutosaveManager.recoverable` lists its documents.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from app.document import Document
from app.io.atomic import atomic_save
from app.io.errors import FileError, SaveError
from app.io.ora import PngCache, open_ora, save_ora

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_MINUTES = 5.0
SESSION_FILE = "session.json"


def default_autosave_folder() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("Impasto", appauthor=False)) / "autosave"


@dataclass(frozen=True)
class RecoverableFile:
    """A document autosaved by a session that ended without closing it (a crash)."""

    path: Path  # the autosaved .ora
    original_path: Path | None  # where the document was last saved, if ever
    title: str
    saved_at: datetime

    @property
    def meta_path(self) -> Path:
        return self.path.with_suffix(".json")


@dataclass
class _Watched:
    doc: Document
    key: str
    changed: bool = False
    slots: tuple = ()
    png_cache: PngCache = field(default_factory=PngCache)  # unchanged layers are not re-encoded


class AutosaveManager(QObject):
    """Owned by the main window: ``watch`` each opened document, ``unwatch`` on close,
    ``shutdown`` on a clean exit. Signals carry the autosave path or the error message."""

    autosaved = Signal(object)  # Path written
    autosave_failed = Signal(str)  # a person-readable message (autosave keeps trying)

    def __init__(
        self,
        folder: str | os.PathLike | None = None,
        interval_minutes: float = DEFAULT_INTERVAL_MINUTES,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.folder = Path(folder) if folder is not None else default_autosave_folder()
        self.session_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.session_dir = self.folder / self.session_id
        self._watched: dict[int, _Watched] = {}
        self._counter = 0
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.autosave_now)
        self.set_interval_minutes(interval_minutes)

    # ---- configuration -------------------------------------------------------------------

    @property
    def interval_minutes(self) -> float:
        return self._timer.interval() / 60_000

    def set_interval_minutes(self, minutes: float) -> None:
        if not minutes > 0:
            raise ValueError(f"autosave interval must be positive, not {minutes}")
        self._timer.setInterval(max(1, round(minutes * 60_000)))

    def start(self) -> None:
        """Start the timer (call once the event loop runs)."""
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    # ---- documents -----------------------------------------------------------------------

    def watch(self, doc: Document) -> None:
        if id(doc) in self._watched:
            return
        self._counter += 1
        entry = _Watched(doc, f"doc-{self._counter:03d}", changed=doc.is_modified)
        self._watched[id(doc)] = entry

        def on_index(_index: int) -> None:
            entry.changed = True

        def on_clean(clean: bool) -> None:
            if clean:  # saved, or undone back to the saved state: the autosave is stale
                self._remove_files(entry.key)
                entry.changed = False

        def on_destroyed(_obj: object = None, key: int = id(doc)) -> None:
            self._forget(key)

        doc.history.indexChanged.connect(on_index)
        doc.history.cleanChanged.connect(on_clean)
        doc.destroyed.connect(on_destroyed)
        doc.pixels_changed.connect(entry.png_cache.invalidate)
        entry.slots = (on_index, on_clean, on_destroyed, entry.png_cache.invalidate)

    def unwatch(self, doc: Document) -> None:
        """The document was closed (saved or discarded): drop it and its autosave."""
        entry = self._watched.pop(id(doc), None)
        if entry is None:
            return
        signals = (
            doc.history.indexChanged,
            doc.history.cleanChanged,
            doc.destroyed,
            doc.pixels_changed,
        )
        for signal, slot in zip(signals, entry.slots, strict=True):
            with contextlib.suppress(RuntimeError, TypeError):
                signal.disconnect(slot)
        self._remove_files(entry.key)

    def autosave_path(self, doc: Document) -> Path | None:
        entry = self._watched.get(id(doc))
        return None if entry is None else self.session_dir / f"{entry.key}.ora"

    def autosave_now(self) -> list[Path]:
        """Write every watched document changed since its last autosave. Never raises: failures
        are logged and reported through ``autosave_failed``."""
        written = []
        for entry in list(self._watched.values()):
            if not (entry.changed and entry.doc.is_modified):
                continue
            try:
                written.append(self._write(entry))
                entry.changed = False
            except (FileError, OSError) as err:
                log.warning("autosave of %s failed: %s", entry.key, err)
                self.autosave_failed.emit(f"Autosave failed: {err}")
        for path in written:
            self.autosaved.emit(path)
        return written

    def shutdown(self) -> None:
        """A clean exit: stop, and remove this session's autosaves (the user has decided about
        every unsaved document by now)."""
        self.stop()
        self._watched.clear()
        shutil.rmtree(self.session_dir, ignore_errors=True)

    # ---- recovery ------------------------------------------------------------------------

    def recoverable(self) -> list[RecoverableFile]:
        """Documents autosaved by sessions that crashed, newest first. Empty folders of crashed
        sessions are cleaned up on the way."""
        found: list[RecoverableFile] = []
        if not self.folder.is_dir():
            return found
        for session in self.folder.iterdir():
            if not session.is_dir() or session == self.session_dir or _session_alive(session):
                continue
            items = [_read_meta(meta) for meta in sorted(session.glob("doc-*.json"))]
            items = [item for item in items if item is not None]
            if not items:
                shutil.rmtree(session, ignore_errors=True)
            found.extend(items)
        return sorted(found, key=lambda item: item.saved_at, reverse=True)

    def recover(self, item: RecoverableFile) -> Document:
        """Open a recoverable document. It comes back modified, with its original path (or
        none), watched by this session, which takes over its autosave file.
        Raises :class:`OpenError` if the autosave is damaged (it is kept; use ``discard``)."""
        doc = open_ora(item.path)
        doc.path = item.original_path
        doc.history.resetClean()
        self.watch(doc)
        entry = self._watched[id(doc)]
        self._ensure_session_dir()
        try:
            os.replace(item.path, self.session_dir / f"{entry.key}.ora")
            os.replace(item.meta_path, self.session_dir / f"{entry.key}.json")
            entry.changed = False
        except OSError as err:
            log.warning("could not adopt autosave %s: %s", item.path, err)
            entry.changed = True  # write a fresh one at the next tick
        _remove_if_only_session_file(item.path.parent)
        return doc

    def discard(self, item: RecoverableFile) -> None:
        item.path.unlink(missing_ok=True)
        item.meta_path.unlink(missing_ok=True)
        _remove_if_only_session_file(item.path.parent)

    # ---- internals -----------------------------------------------------------------------

    def _forget(self, key: int) -> None:
        entry = self._watched.pop(key, None)
        if entry is not None:
            self._remove_files(entry.key)

    def _ensure_session_dir(self) -> None:
        if (self.session_dir / SESSION_FILE).exists():
            return
        self.session_dir.mkdir(parents=True, exist_ok=True)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now().isoformat()}
        (self.session_dir / SESSION_FILE).write_text(json.dumps(info))

    def _write(self, entry: _Watched) -> Path:
        try:
            self._ensure_session_dir()
        except OSError as err:
            raise SaveError(f"cannot create the autosave folder {self.session_dir}: {err}") from err
        target = self.session_dir / f"{entry.key}.ora"
        save_ora(entry.doc, target, backup=False, merged=False, png_cache=entry.png_cache)
        doc = entry.doc
        meta = {
            "original_path": str(doc.path) if doc.path is not None else None,
            "title": doc.path.name if doc.path is not None else "Untitled",
            "saved_at": _now().isoformat(),
            "width": doc.width,
            "height": doc.height,
        }
        text = json.dumps(meta, indent=1).encode("utf-8")
        atomic_save(target.with_suffix(".json"), lambda tmp: tmp.write_bytes(text), backup=False)
        return target

    def _remove_files(self, key: str) -> None:
        for suffix in (".ora", ".json"):
            (self.session_dir / f"{key}{suffix}").unlink(missing_ok=True)


def _now() -> datetime:
    return datetime.now(UTC)


def _read_meta(meta_path: Path) -> RecoverableFile | None:
    ora = meta_path.with_suffix(".ora")
    if not ora.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
        original = meta.get("original_path")
        return RecoverableFile(
            path=ora,
            original_path=Path(original) if original else None,
            title=str(meta.get("title") or "Untitled"),
            saved_at=datetime.fromisoformat(meta["saved_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        log.warning("unreadable autosave metadata %s: %s", meta_path, err)
        stamp = datetime.fromtimestamp(ora.stat().st_mtime, UTC)
        return RecoverableFile(ora, None, "Untitled", stamp)


def _session_alive(session: Path) -> bool:
    try:
        info = json.loads((session / SESSION_FILE).read_text("utf-8"))
        pid, host = int(info["pid"]), str(info["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname():
        return True  # another machine's session (a synced folder): not ours to judge
    return _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000 | 0x00100000, False, pid)  # query + synchronize
        if not handle:
            return False
        try:
            return kernel32.WaitForSingleObject(handle, 0) == 0x102  # WAIT_TIMEOUT: running
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _remove_if_only_session_file(session: Path) -> None:
    try:
        rest = [p for p in session.iterdir() if p.name != SESSION_FILE]
    except OSError:
        return
    if not rest:
        shutil.rmtree(session, ignore_errors=True)
