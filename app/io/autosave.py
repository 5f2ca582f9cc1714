"""Autosave and crash recovery, like Krita's.

Every N minutes (default 5) each watched document with changes since its last autosave is written
as an .ora into ``<user data>/autosave/<session>/`` (platformdirs; the folder is injectable for
tests), without the flattened ``mergedimage.png`` and re-encoding only layers whose pixels changed.

The UI thread only takes a snapshot: the layers whose pixels changed since the last autosave
(``Document.pixels_changed``) are copied, the others keep the PNG bytes encoded last time. Fresh
memory costs a page fault per 4 KiB on first write (~0.6 s for an 8192² RGBA layer, against 0.02 s
to copy into memory already touched), so a background thread first allocates and touches the
buffers, the UI thread copies into them when they are ready (a queued signal), one layer per
event-loop turn so no single stall is long (a layer edited after its copy is copied again at the
end, so the snapshot is the document at one moment), and the same writer thread then encodes and
writes the snapshot and reports back through another queued signal. One autosave is in flight at
a time; a timer tick during one is coalesced into a single follow-up.
:meth:`AutosaveManager.autosave_now` does the same work but blocks until it is written.

A clean save or closing the document removes its autosave; a clean exit
(:meth:`AutosaveManager.shutdown`) removes the session folder. A session folder whose process is
gone was left by a crash: :meth:`AutosaveManager.recoverable` lists its documents.

"Gone" is decided by an advisory lock on ``<session>/session.lock`` (``fcntl.flock`` on Linux and
macOS, ``msvcrt.locking`` on Windows) that the session holds from creating its folder until it
exits: the operating system drops it when the process dies, however it dies. PIDs and host names
are not trusted (a container restarts as PID 1 under a new host name; a PID is reused).
"""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import logging
import os
import shutil
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from app.background import Relay
from app.document import Document
from app.geometry import Rect
from app.io import layer_data, ora
from app.io.atomic import atomic_save, remove_stale_parts
from app.io.errors import FileError
from app.io.ora import PngCache, open_ora
from app.layers import Layer
from app.raster import Raster

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_MINUTES = 5.0
SESSION_FILE = "session.json"
LOCK_FILE = "session.lock"
STARTING_GRACE_SECONDS = 60.0  # a session folder without a lock file yet may be starting
SNAPSHOT_WAIT_SECONDS = 120.0  # the writer gives up if the UI thread never takes its snapshot


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


Encoded = tuple[bytes, int, int, bool]  # PNG bytes, x, y, empty (as ora._layer_png returns)


@dataclass
class _Watched:
    doc: Document
    key: str
    changed: bool = False
    slots: tuple = ()
    # layer id -> (content key of the live layer when it was copied, its encoded PNG)
    encoded: dict[int, tuple[tuple, Encoded]] = field(default_factory=dict)
    # layer id -> how many pixel changes it has seen; a result encoded from older pixels is
    # not kept
    generations: dict[int, int] = field(default_factory=dict)
    epoch: int = 0  # bumped when the autosave files are removed: a write in flight is stale

    def pixels_changed(self, layer_id: int, *_args: object) -> None:
        self.encoded.pop(layer_id, None)
        self.generations[layer_id] = self.generations.get(layer_id, 0) + 1


@dataclass
class _DocSnapshot:
    """What :func:`app.io.ora.write_ora` reads from a document, frozen at one moment and owned
    by the writer thread (no QObject)."""

    width: int
    height: int
    layers: list[Layer]
    active_layer_id: int | None
    selection: Raster
    generation_state: dict[str, Any]

    @property
    def rect(self) -> Rect:
        return Rect(0, 0, self.width, self.height)


@dataclass
class _Job:
    """One document to write: everything the writer thread needs, nothing it shares."""

    key: str
    target: Path
    snapshot: _DocSnapshot
    meta: dict[str, Any]
    to_encode: list[Layer]  # snapshot layers with their own copy of the pixels
    reused: dict[int, Encoded]  # layer id -> PNG kept from an earlier autosave
    live_keys: dict[int, tuple]  # layer id -> content key of the live layer at snapshot time
    generations: dict[int, int]  # layer id -> its generation at snapshot time
    epoch: int


@dataclass
class _Outcome:
    job: _Job
    path: Path | None = None
    error: str | None = None
    cancelled: bool = False
    encoded: dict[int, Encoded] = field(default_factory=dict)


@dataclass
class _Precopy:
    """A layer's pixels copied ahead of the snapshot, and what they were copied from."""

    buffer: np.ndarray  # prepared (touched) by the writer thread
    source: np.ndarray | None = None  # the live array copied, None while not copied yet
    x: int = 0
    y: int = 0
    generation: int = -1

    def copy_from(self, raster: Raster, generation: int) -> Raster:
        """The raster's pixels in this buffer, copied unless they are there already."""
        fresh = (
            self.source is raster.data
            and (self.x, self.y) == (raster.x, raster.y)
            and self.generation == generation
        )
        if not fresh:
            np.copyto(self.buffer, raster.data)
            self.source, self.x, self.y, self.generation = (
                raster.data,
                raster.x,
                raster.y,
                generation,
            )
        return Raster(raster.channels, self.buffer, raster.x, raster.y)


@dataclass
class _Flight:
    """The autosave in the background: buffers prepared (writer thread), snapshot taken (UI
    thread), then encoded and written (writer thread)."""

    plan: dict[tuple[str, int], tuple[int, ...]]  # (doc key, layer id) -> pixel array shape
    precopies: dict[tuple[str, int], _Precopy] = field(default_factory=dict)
    to_copy: list[tuple[str, int]] = field(default_factory=list)
    jobs: list[_Job] = field(default_factory=list)
    snapshot_taken: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)
    outcomes: list[_Outcome] = field(default_factory=list)
    thread: threading.Thread | None = None


class AutosaveManager(QObject):
    """Owned by the main window: ``watch`` each opened document, ``unwatch`` on close,
    ``shutdown`` on a clean exit. Signals carry the autosave path or the error message; they are
    emitted on the UI thread."""

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
        self._lock: _SessionLock | None = None
        self._counter = 0
        self._flight: _Flight | None = None
        self._pending = False  # a tick came while writing: autosave again when it is done
        self._relay = Relay(self)  # the writer thread's news, delivered on the UI thread
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.autosave_in_background)
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

    @property
    def writing(self) -> bool:
        """An autosave is being written in the background."""
        return self._flight is not None

    # ---- documents -----------------------------------------------------------------------

    def watched_documents(self) -> list[Document]:
        return [entry.doc for entry in self._watched.values()]

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
                self._remove_files(entry)
                entry.changed = False

        def on_destroyed(_obj: object = None, key: int = id(doc)) -> None:
            self._forget(key)

        doc.history.indexChanged.connect(on_index)
        doc.history.cleanChanged.connect(on_clean)
        doc.destroyed.connect(on_destroyed)
        doc.pixels_changed.connect(entry.pixels_changed)
        entry.slots = (on_index, on_clean, on_destroyed, entry.pixels_changed)

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
        self._remove_files(entry)

    def autosave_path(self, doc: Document) -> Path | None:
        entry = self._watched.get(id(doc))
        return None if entry is None else self.session_dir / f"{entry.key}.ora"

    def autosave_in_background(self) -> bool:
        """The timer's tick: snapshot every watched document changed since its last autosave
        and write them on a background thread. Returns True when a write started; while one is
        in flight, the request is remembered and served (once) when it finishes."""
        if self._flight is not None:
            self._pending = True
            return False
        entries = self._due_entries()
        if not entries:
            return False
        plan = {
            (entry.key, layer.id): layer.raster.data.shape
            for entry in entries
            for layer in layer_data.saved_layers(entry.doc.layers)
            if layer.raster is not None and self._reusable(entry, layer) is None
        }
        flight = _Flight(plan)
        flight.thread = threading.Thread(
            target=self._write_in_background, args=(flight,), name="autosave-writer", daemon=True
        )
        self._flight = flight
        flight.thread.start()
        return True

    def autosave_now(self) -> list[Path]:
        """Write every watched document changed since its last autosave and return when done
        (after a background write in flight, if any). Never raises: failures are logged and
        reported through ``autosave_failed``."""
        written = self._collect_flight()
        outcomes = _write_jobs(self._snapshot_all({}), threading.Event())
        return written + self._finish(outcomes)

    def shutdown(self) -> None:
        """A clean exit: stop, cancel a write in flight (waiting for the layer it is encoding),
        and remove this session's autosaves (the user has decided about every unsaved document
        by now)."""
        self.stop()
        self._pending = False
        flight, self._flight = self._flight, None
        if flight is not None:
            flight.cancel.set()
            flight.snapshot_taken.set()
            if flight.thread is not None:
                flight.thread.join()
        self._watched.clear()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
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
                continue  # a running session (or one starting right now)
            remove_stale_parts(session, min_age_seconds=0)  # its writer is dead
            read = [_read_meta(meta) for meta in sorted(session.glob("doc-*.json"))]
            items = [item for item in read if item is not None]
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

    # ---- internals: UI thread ------------------------------------------------------------

    def _forget(self, key: int) -> None:
        entry = self._watched.pop(key, None)
        if entry is not None:
            self._remove_files(entry)

    def _ensure_session_dir(self) -> None:
        if self._lock is not None and (self.session_dir / SESSION_FILE).exists():
            return
        self.session_dir.mkdir(parents=True, exist_ok=True)
        if self._lock is None:
            self._lock = _SessionLock.try_acquire(self.session_dir, own=True)
            if self._lock is None:
                raise OSError(f"the session folder {self.session_dir} is locked by another process")
        # for people looking at the folder; liveness is the lock, not these
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now().isoformat()}
        (self.session_dir / SESSION_FILE).write_text(json.dumps(info))

    def _due_entries(self) -> list[_Watched]:
        return [e for e in self._watched.values() if e.changed and e.doc.is_modified]

    def _reusable(self, entry: _Watched, layer: Layer) -> Encoded | None:
        """The PNG of an earlier autosave, if the layer did not change since."""
        hit = entry.encoded.get(layer.id)
        return hit[1] if hit is not None and ora._same_content(hit[0], layer) else None

    def _snapshot_all(self, precopies: dict[tuple[str, int], _Precopy]) -> list[_Job]:
        entries = self._due_entries()
        if not entries:
            return []
        try:
            self._ensure_session_dir()
        except OSError as err:
            message = f"cannot create the autosave folder {self.session_dir}: {err}"
            log.warning("autosave failed: %s", message)
            self.autosave_failed.emit(f"Autosave failed: {message}")
            return []
        jobs = [self._snapshot(entry, precopies) for entry in entries]
        for entry in entries:
            entry.changed = False  # edits from now on set it again
        return jobs

    def _snapshot(self, entry: _Watched, precopies: dict[tuple[str, int], _Precopy]) -> _Job:
        """Copy what the writer needs. Pixels are copied only for layers with no PNG left
        from an earlier autosave (into a prepared buffer when one fits, not again if they were
        copied ahead and did not change since); the other layers get an empty stand-in."""
        doc = entry.doc
        layers = layer_data.saved_layers(doc.layers)
        live_ids = {layer.id for layer in layers}
        for gone in set(entry.encoded) - live_ids:
            del entry.encoded[gone]
        snapshot_layers, to_encode = [], []
        reused: dict[int, Encoded] = {}
        live_keys: dict[int, tuple] = {}
        generations: dict[int, int] = {}
        for layer in layers:
            twin = copy.copy(layer)
            twin.recipe = copy.deepcopy(layer.recipe)
            twin.control = copy.deepcopy(layer.control)
            twin.extra = copy.deepcopy(layer.extra)
            png = self._reusable(entry, layer)
            if png is not None:
                if layer.raster is not None:
                    twin.raster = Raster(layer.raster.channels)  # stand-in, never read
                reused[layer.id] = png
            else:
                if layer.raster is not None:
                    twin.raster = self._copy_raster(
                        entry, layer, precopies.pop((entry.key, layer.id), None)
                    )
                to_encode.append(twin)
                live_keys[layer.id] = ora._content_key(layer)
                generations[layer.id] = entry.generations.get(layer.id, 0)
            snapshot_layers.append(twin)
        snapshot = _DocSnapshot(
            doc.width,
            doc.height,
            snapshot_layers,
            doc.active_layer_id,
            doc.selection,  # replaced, never changed in place, by Document._set_selection
            copy.deepcopy(doc.generation_state),
        )
        meta = {
            "original_path": str(doc.path) if doc.path is not None else None,
            "title": doc.path.name if doc.path is not None else "Untitled",
            "width": doc.width,
            "height": doc.height,
        }
        return _Job(
            entry.key,
            self.session_dir / f"{entry.key}.ora",
            snapshot,
            meta,
            to_encode,
            reused,
            live_keys,
            generations,
            entry.epoch,
        )

    def _copy_raster(self, entry: _Watched, layer: Layer, precopy: _Precopy | None) -> Raster:
        raster = layer.raster
        assert raster is not None, "only raster layers are copied"
        if precopy is None or precopy.buffer.shape != raster.data.shape:
            return raster.copy()  # no buffer prepared, or the layer grew since the plan
        return precopy.copy_from(raster, entry.generations.get(layer.id, 0))

    def _on_buffers_ready(self, flight: _Flight) -> None:
        if flight is not self._flight or flight.cancel.is_set():
            return  # cancelled meanwhile
        flight.to_copy = list(flight.precopies)
        self._copy_ahead(flight)

    def _copy_ahead(self, flight: _Flight) -> None:
        """Copy one layer into its buffer, then yield to the event loop; when all are copied,
        take the snapshot (which copies again only layers changed meanwhile)."""
        if flight is not self._flight or flight.cancel.is_set():
            return  # cancelled meanwhile
        by_key = {entry.key: entry for entry in self._watched.values()}
        while flight.to_copy:
            key, layer_id = flight.to_copy.pop()
            entry = by_key.get(key)
            layer = _find_layer(entry.doc, layer_id) if entry is not None else None
            precopy = flight.precopies[(key, layer_id)]
            if (
                entry is None
                or layer is None
                or layer.raster is None
                or precopy.buffer.shape != layer.raster.data.shape
            ):
                continue
            precopy.copy_from(layer.raster, entry.generations.get(layer_id, 0))
            if flight.to_copy:
                QTimer.singleShot(0, self, partial(self._copy_ahead, flight))
                return
        try:
            flight.jobs = self._snapshot_all(flight.precopies)
        finally:
            flight.precopies = {}  # unused buffers are freed; the jobs hold the others
            flight.snapshot_taken.set()

    def _on_writer_done(self, flight: _Flight) -> None:
        if flight is not self._flight:
            return  # already collected by autosave_now or shutdown
        self._collect_flight()
        if self._pending:
            self._pending = False
            self.autosave_in_background()

    def _collect_flight(self) -> list[Path]:
        """Wait for the write in flight (if any) and take in its results."""
        flight, self._flight = self._flight, None
        if flight is None:
            return []
        if not flight.snapshot_taken.is_set():  # still preparing: nothing taken, just stop it
            flight.cancel.set()
            flight.snapshot_taken.set()
        if flight.thread is not None:
            flight.thread.join()
        done = {id(outcome.job) for outcome in flight.outcomes}
        skipped = [_Outcome(job, cancelled=True) for job in flight.jobs if id(job) not in done]
        return self._finish(flight.outcomes + skipped)

    def _finish(self, outcomes: list[_Outcome]) -> list[Path]:
        """Keep the new PNGs, report what was written or failed. UI thread."""
        by_key = {entry.key: entry for entry in self._watched.values()}
        written: list[Path] = []
        for outcome in outcomes:
            job = outcome.job
            entry = by_key.get(job.key)
            if entry is None or entry.epoch != job.epoch:
                # closed, or saved cleanly, while it was being written: it is stale
                if outcome.path is not None:
                    self._remove_key_files(job.key)
                continue
            if outcome.error is not None or outcome.cancelled:
                entry.changed = True  # still to be written, at the next tick
                if outcome.error is not None:
                    log.warning("autosave of %s failed: %s", job.key, outcome.error)
                    self.autosave_failed.emit(f"Autosave failed: {outcome.error}")
                continue
            for layer_id, encoded in outcome.encoded.items():
                if entry.generations.get(layer_id, 0) == job.generations[layer_id]:
                    entry.encoded[layer_id] = (job.live_keys[layer_id], encoded)
            assert outcome.path is not None  # set by a write that neither failed nor was cancelled
            written.append(outcome.path)
        for path in written:
            self.autosaved.emit(path)
        return written

    def _remove_files(self, entry: _Watched) -> None:
        entry.epoch += 1
        self._remove_key_files(entry.key)

    def _remove_key_files(self, key: str) -> None:
        for suffix in (".ora", ".json"):
            (self.session_dir / f"{key}{suffix}").unlink(missing_ok=True)

    # ---- internals: writer thread --------------------------------------------------------

    def _write_in_background(self, flight: _Flight) -> None:
        for key, shape in flight.plan.items():
            if flight.cancel.is_set():
                break
            buffer = np.empty(shape, np.uint8)
            buffer.fill(0)  # the page faults happen here, not in the UI thread's copy
            flight.precopies[key] = _Precopy(buffer)
        if not self._relay.post(partial(self._on_buffers_ready, flight)):
            return  # the manager is gone
        if not flight.snapshot_taken.wait(SNAPSHOT_WAIT_SECONDS):
            log.warning("autosave skipped: the UI thread did not take its snapshot")
            flight.cancel.set()  # (what it takes after this is written at the next tick)
        if not flight.cancel.is_set():
            flight.outcomes = _write_jobs(flight.jobs, flight.cancel)
        self._relay.post(partial(self._on_writer_done, flight))


def _find_layer(doc: Document, layer_id: int) -> Layer | None:
    try:
        return doc.layer(layer_id)
    except KeyError:
        return None


def _write_jobs(jobs: list[_Job], cancel: threading.Event) -> list[_Outcome]:
    """Encode and write each job's snapshot. Runs on the writer thread (or the caller's, for
    ``autosave_now``); touches no QObject. Never raises."""
    outcomes = []
    for job in jobs:
        outcome = _Outcome(job)
        try:
            _write_job(job, cancel, outcome)
        except (FileError, OSError) as err:
            outcome.error = str(err)
        except Exception as err:  # a bug must not kill the writer silently
            log.exception("autosave of %s failed", job.key)
            outcome.error = f"{type(err).__name__}: {err}"
        outcomes.append(outcome)
    return outcomes


def _write_job(job: _Job, cancel: threading.Event, outcome: _Outcome) -> None:
    canvas = job.snapshot.rect
    encoders = [partial(_encode_layer, layer, canvas) for layer in job.to_encode]
    with contextlib.closing(ora._in_order(encoders)) as results:
        for layer, encoded in zip(job.to_encode, results, strict=True):
            if cancel.is_set():
                outcome.cancelled = True
                return
            outcome.encoded[layer.id] = encoded
    if cancel.is_set():
        outcome.cancelled = True
        return
    cache = PngCache()
    for layer in job.snapshot.layers:
        fresh = outcome.encoded.get(layer.id)
        cache[layer.id] = (ora._content_key(layer), fresh or job.reused[layer.id])
    ora.save_ora(job.snapshot, job.target, backup=False, merged=False, png_cache=cache)
    meta = {**job.meta, "saved_at": _now().isoformat()}
    text = json.dumps(meta, indent=1).encode("utf-8")
    atomic_save(job.target.with_suffix(".json"), lambda tmp: tmp.write_bytes(text), backup=False)
    outcome.path = job.target


def _encode_layer(layer: Layer, canvas: Rect) -> Encoded:
    return ora._layer_png(layer, canvas)  # looked up at call time (tests count the calls)


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


class _SessionLock:
    """An exclusive advisory lock on ``<session>/session.lock``, held while the handle is open.
    The operating system releases it when the process ends, crash or ``kill -9`` included."""

    def __init__(self, handle):
        self._handle = handle

    @classmethod
    def try_acquire(cls, session: Path, *, own: bool = False) -> _SessionLock | None:
        """The lock, or None when a live process holds it. A folder with no lock file counts as
        held while it is young (a session is creating it), as dead once older."""
        path = session / LOCK_FILE
        if not own and not path.exists():
            try:
                age = time.time() - session.stat().st_mtime
            except OSError:
                return None
            if age < STARTING_GRACE_SECONDS:
                return None
        try:
            handle = open(path, "a+b")  # noqa: SIM115 - held for the session's life
        except OSError as err:
            log.warning("cannot open the session lock %s: %s", path, err)
            return None
        locked = _lock_handle(handle)
        if locked is None:
            if own:  # autosave still works; a crash of this session cannot be told apart
                log.warning("the autosave folder cannot be locked; recovery may not be offered")
                return cls(handle)
            log.warning("cannot tell whether the session %s is alive (no file locks)", session)
            locked = False  # never take the work of a session that may be running
        if not locked:
            handle.close()
            return None
        return cls(handle)

    def release(self) -> None:
        if self._handle.closed:
            return
        with contextlib.suppress(OSError):
            _unlock_handle(self._handle)
        self._handle.close()


_HELD = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK}


def _lock_handle(handle) -> bool | None:
    """True: locked. False: another process holds it. None: this file system cannot lock."""
    try:
        if sys.platform == "win32":  # (not os.name: type checkers understand only this test)
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        return False if err.errno in _HELD else None
    return True


def _unlock_handle(handle) -> None:
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _session_alive(session: Path) -> bool:
    """Whether the session that owns this folder still runs (its lock is held)."""
    lock = _SessionLock.try_acquire(session)
    if lock is None:
        return True
    lock.release()
    return False


def _remove_if_only_session_file(session: Path) -> None:
    try:
        rest = [p for p in session.iterdir() if p.name not in (SESSION_FILE, LOCK_FILE)]
    except OSError:
        return
    if not rest:
        shutil.rmtree(session, ignore_errors=True)
