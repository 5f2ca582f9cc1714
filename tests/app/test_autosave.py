"""Autosave every N minutes into the user data folder, and recovery after a crash."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from app import files
from app.document import Document
from app.geometry import Rect
from app.io.autosave import (
    DEFAULT_INTERVAL_MINUTES,
    AutosaveManager,
    _lock_handle,
    default_autosave_folder,
)
from app.io.ora import open_ora
from app.layers import LayerKind
from tests.app.io_samples import assert_same_layers, every_kind_document

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def manager(tmp_path):
    manager = AutosaveManager(tmp_path / "autosave")
    yield manager
    manager.shutdown()


def paint(doc: Document, value: int = 200) -> None:
    doc.replace_pixels(doc.layers[0].id, Rect(1, 1, 3, 3), np.full((3, 3, 4), value, np.uint8), "p")


def test_defaults_and_configuration(tmp_path):
    manager = AutosaveManager(tmp_path)
    assert manager.interval_minutes == DEFAULT_INTERVAL_MINUTES == 5
    manager.set_interval_minutes(0.5)
    assert manager.interval_minutes == 0.5
    with pytest.raises(ValueError):
        manager.set_interval_minutes(0)
    assert "Impasto" in str(default_autosave_folder())


def test_only_documents_with_unsaved_changes_are_written(manager):
    untouched, changed = Document.blank(8, 8), every_kind_document()
    manager.watch(untouched)
    manager.watch(changed)
    assert manager.autosave_now() == []  # nothing changed yet
    paint(changed)
    written = manager.autosave_now()
    assert written == [manager.autosave_path(changed)]
    assert_same_layers(changed, open_ora(written[0]))
    with zipfile.ZipFile(written[0]) as archive:  # the costly flattened picture is skipped
        assert "mergedimage.png" not in archive.namelist()
    assert manager.autosave_now() == []  # no change since the last autosave
    paint(changed, 100)
    assert manager.autosave_now() == written


def test_clean_save_and_close_remove_the_autosave(manager, tmp_path):
    doc = Document.blank(8, 8)
    manager.watch(doc)
    paint(doc)
    (path,) = manager.autosave_now()
    files.save_project(doc, tmp_path / "saved.ora")
    assert not path.exists()
    paint(doc, 10)
    (path,) = manager.autosave_now()
    doc.history.undo()  # back to the saved state: clean again
    assert not path.exists()
    paint(doc, 20)
    (path,) = manager.autosave_now()
    manager.unwatch(doc)
    assert not path.exists()
    assert manager.autosave_now() == []


def test_unwatch_leaves_other_listeners_connected(manager):
    doc = Document.blank(8, 8)
    seen = []
    doc.history.cleanChanged.connect(seen.append)
    manager.watch(doc)
    manager.unwatch(doc)
    paint(doc)
    assert seen == [False]


def test_timer_autosaves(qtbot, manager):
    doc = Document.blank(8, 8)
    manager.watch(doc)
    paint(doc)
    manager.set_interval_minutes(0.001)  # 60 ms
    with qtbot.waitSignal(manager.autosaved, timeout=5000) as blocker:
        manager.start()
    assert blocker.args[0] == manager.autosave_path(doc) and blocker.args[0].exists()


def test_failure_is_reported_not_raised(manager, monkeypatch):
    doc = Document.blank(8, 8)
    manager.watch(doc)
    paint(doc)
    messages = []
    manager.autosave_failed.connect(messages.append)
    from app.io import ora

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ora, "write_ora", broken)
    assert manager.autosave_now() == []
    assert messages and "disk is full" in messages[0]
    monkeypatch.undo()
    assert len(manager.autosave_now()) == 1  # still pending, written at the next tick


def test_clean_exit_leaves_nothing_to_recover(tmp_path):
    folder = tmp_path / "autosave"
    first = AutosaveManager(folder)
    doc = Document.blank(8, 8)
    first.watch(doc)
    paint(doc)
    first.autosave_now()
    assert AutosaveManager(folder).recoverable() == []  # its session is alive
    first.shutdown()
    assert AutosaveManager(folder).recoverable() == []
    assert not any(folder.iterdir())


CRASHING_SESSION = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import numpy as np
    from app.document import Document
    from app.geometry import Rect
    from app.io.autosave import AutosaveManager
    from tests.app.io_samples import every_kind_document

    manager = AutosaveManager(sys.argv[1])
    saved = every_kind_document()
    saved.path = Path(sys.argv[2])
    untitled = Document.blank(16, 8, fill=(9, 9, 9, 255))
    for doc in (saved, untitled):
        manager.watch(doc)
        doc.replace_pixels(doc.layers[0].id, Rect(0, 0, 2, 2), np.zeros((2, 2, 4), np.uint8), "p")
    manager.autosave_now()
    os._exit(3)  # crash: no shutdown, no cleanup
    """
)


def test_recovery_after_a_crash(tmp_path):
    folder = tmp_path / "autosave"
    original = tmp_path / "work" / "mine.ora"
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_SESSION, str(folder), str(original)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr.decode()[-2000:]

    manager = AutosaveManager(folder)
    items = manager.recoverable()
    assert sorted(item.title for item in items) == ["Untitled", "mine.ora"]
    item = next(item for item in items if item.title == "mine.ora")
    assert item.original_path == original

    doc = manager.recover(item)
    expected = every_kind_document()
    expected.replace_pixels(
        expected.layers[0].id, Rect(0, 0, 2, 2), np.zeros((2, 2, 4), np.uint8), "p"
    )
    assert_same_layers(expected, doc)
    assert doc.path == original and doc.is_modified  # Save writes to the original place
    assert manager.autosave_path(doc).exists()  # the autosave now belongs to this session
    assert [i.title for i in manager.recoverable()] == ["Untitled"]

    manager.discard(manager.recoverable()[0])
    assert manager.recoverable() == []
    assert [p.name for p in folder.iterdir()] == [manager.session_id]
    manager.shutdown()


def test_damaged_autosave_is_reported_and_can_be_discarded(tmp_path):
    folder = tmp_path / "autosave"
    dead = folder / "1-dead"
    dead.mkdir(parents=True)
    (dead / "session.json").write_text("{broken")  # unreadable: does not matter
    (dead / "doc-001.ora").write_bytes(b"garbage")
    (dead / "doc-001.json").write_text("not json")
    manager = AutosaveManager(folder)
    with open(dead / "session.lock", "a+b") as held:  # a live session holds its lock
        assert _lock_handle(held)
        assert manager.recoverable() == []
    (item,) = manager.recoverable()  # released: the session is dead
    with pytest.raises(files.OpenError):
        manager.recover(item)
    assert item.path.exists()
    manager.discard(item)
    assert not dead.exists()


def test_unchanged_layers_are_not_encoded_again(manager, monkeypatch):
    from app.io import ora

    doc = every_kind_document()
    manager.watch(doc)
    paint(doc)
    encoded = []
    real = ora._layer_png
    monkeypatch.setattr(
        ora, "_layer_png", lambda layer, canvas: encoded.append(layer.name) or real(layer, canvas)
    )
    manager.autosave_now()
    assert len(encoded) == len(doc.layers)  # first autosave: everything
    encoded.clear()
    sketch = doc.layers[1]
    doc.replace_pixels(sketch.id, Rect(12, 6, 2, 2), np.full((2, 2, 4), 9, np.uint8), "p")
    (path,) = manager.autosave_now()
    assert encoded == ["Sketch"]  # only the edited layer
    assert_same_layers(doc, open_ora(path))
    encoded.clear()
    doc.history.undo()  # undo writes pixels back: that layer is re-encoded, the file is right
    doc.remove_layer(doc.layers[2].id)  # a deleted layer simply disappears
    (path,) = manager.autosave_now()
    assert encoded == ["Sketch"]
    assert_same_layers(doc, open_ora(path))
    mask = doc.mask_layer
    doc.replace_pixels(mask.id, Rect(0, 0, 90, 60), np.full((60, 90), 77, np.uint8), "grow")
    encoded.clear()
    (path,) = manager.autosave_now()
    assert encoded == ["Inpaint mask"]  # the raster grew into a new array
    assert_same_layers(doc, open_ora(path))
    manager.unwatch(doc)
    paint(doc, 5)  # no slot left behind on the document's signals


# ---- writing in the background -------------------------------------------------------------


@pytest.fixture
def held_encoder(monkeypatch):
    """Layer encoding blocks until ``release`` is set, so a test can act while a background
    autosave is in flight. Records the names of the layers encoded."""
    import threading

    from app.io import ora

    started, release, encoded = threading.Event(), threading.Event(), []
    real = ora._layer_png

    def held(layer, canvas):
        encoded.append(layer.name)
        started.set()
        release.wait(10)
        return real(layer, canvas)

    monkeypatch.setattr(ora, "_layer_png", held)
    yield started, release, encoded
    release.set()


def test_background_autosave_writes_the_snapshot_not_later_edits(qtbot, manager, held_encoder):
    started, release, encoded = held_encoder
    doc = every_kind_document()
    manager.watch(doc)
    paint(doc, 200)
    snapshot = every_kind_document()
    paint(snapshot, 200)
    assert manager.autosave_in_background()
    assert manager.writing
    qtbot.waitUntil(started.is_set, timeout=5000)  # the snapshot is taken in the event loop
    paint(doc, 50)  # edited while the writer encodes: not in this autosave
    sketch = doc.layers[1]
    doc.replace_pixels(sketch.id, Rect(12, 6, 2, 2), np.full((2, 2, 4), 9, np.uint8), "p")
    with qtbot.waitSignal(manager.autosaved, timeout=10_000) as blocker:
        release.set()
    assert blocker.args == [manager.autosave_path(doc)]
    assert not manager.writing
    assert_same_layers(snapshot, open_ora(blocker.args[0]))

    encoded.clear()  # layers edited during the write are encoded again, the others reused
    assert manager.autosave_in_background()
    with qtbot.waitSignal(manager.autosaved, timeout=10_000) as blocker:
        pass
    assert sorted(encoded) == ["Background", "Sketch"]
    assert_same_layers(doc, open_ora(blocker.args[0]))


def test_a_tick_during_a_write_is_coalesced_into_one_more(qtbot, manager, held_encoder):
    started, release, _ = held_encoder
    doc = Document.blank(8, 8)
    manager.watch(doc)
    paint(doc, 1)
    written = []
    manager.autosaved.connect(written.append)
    assert manager.autosave_in_background()
    qtbot.waitUntil(started.is_set, timeout=5000)  # the snapshot is taken in the event loop
    paint(doc, 2)
    assert not manager.autosave_in_background()  # one in flight at a time
    assert not manager.autosave_in_background()
    release.set()
    qtbot.waitUntil(lambda: len(written) == 2 and not manager.writing, timeout=10_000)
    qtbot.wait(50)
    assert len(written) == 2  # the two ticks made one follow-up write, not two
    assert open_ora(written[-1]).layers[0].raster.read(Rect(1, 1, 1, 1)).ravel()[0] == 2


def test_autosave_now_waits_for_the_write_in_flight(qtbot, manager, held_encoder):
    started, release, _ = held_encoder
    doc = Document.blank(8, 8)
    manager.watch(doc)
    paint(doc, 1)
    assert manager.autosave_in_background()
    qtbot.waitUntil(started.is_set, timeout=5000)  # the snapshot is taken in the event loop
    paint(doc, 3)
    release.set()
    written = manager.autosave_now()
    assert written == [manager.autosave_path(doc)] * 2 and not manager.writing
    assert open_ora(written[-1]).layers[0].raster.read(Rect(1, 1, 1, 1)).ravel()[0] == 3


def test_shutdown_cancels_the_write_and_removes_the_session(qtbot, tmp_path, held_encoder):
    import threading

    started, release, _ = held_encoder
    folder = tmp_path / "autosave"
    manager = AutosaveManager(folder)
    doc = every_kind_document()
    manager.watch(doc)
    paint(doc)
    assert manager.autosave_in_background()
    qtbot.waitUntil(started.is_set, timeout=5000)  # the snapshot is taken in the event loop
    threading.Timer(0.2, release.set).start()  # the layer being encoded finishes, then stop
    manager.shutdown()
    assert not manager.writing
    assert not any(folder.iterdir())


def test_saving_during_a_write_leaves_no_stale_autosave(qtbot, manager, held_encoder, tmp_path):
    started, release, _ = held_encoder
    doc = Document.blank(8, 8)
    manager.watch(doc)
    paint(doc)
    failures = []
    manager.autosave_failed.connect(failures.append)
    assert manager.autosave_in_background()
    qtbot.waitUntil(started.is_set, timeout=5000)  # the snapshot is taken in the event loop
    release.set()
    files.save_project(doc, tmp_path / "saved.ora")  # clean now: its autosave must go
    qtbot.waitUntil(lambda: not manager.writing, timeout=10_000)
    assert not manager.autosave_path(doc).exists()
    assert not manager.autosave_path(doc).with_suffix(".json").exists()
    assert failures == []


def test_background_failure_is_reported_and_retried(qtbot, manager, monkeypatch):
    from app.io import ora

    doc = Document.blank(8, 8)
    manager.watch(doc)
    paint(doc)

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ora, "write_ora", broken)
    with qtbot.waitSignal(manager.autosave_failed, timeout=10_000) as blocker:
        assert manager.autosave_in_background()
    assert "disk is full" in blocker.args[0]
    qtbot.waitUntil(lambda: not manager.writing, timeout=10_000)
    monkeypatch.undo()
    with qtbot.waitSignal(manager.autosaved, timeout=10_000):
        assert manager.autosave_in_background()  # still pending after the failure


def test_edits_while_layers_are_copied_ahead_are_in_the_snapshot(qtbot, manager, monkeypatch):
    """Layers are copied one per event-loop turn; one edited after its copy is copied again,
    so the file is the document at one moment."""
    doc = every_kind_document()
    manager.watch(doc)
    paint(doc)
    copy_ahead, steps = manager._copy_ahead, []

    def edit_after_the_first_copy(flight) -> None:
        copy_ahead(flight)
        steps.append(len(flight.to_copy))
        if len(steps) > 1:
            return
        for i, layer in enumerate(doc.layers):  # every layer, the one just copied included
            if (
                layer.kind in (LayerKind.IMAGE, LayerKind.SKETCH, LayerKind.RESULT)
                and not layer.locked
            ):
                pixels = np.full((2, 2, 4), 30 + i, np.uint8)
                doc.replace_pixels(layer.id, Rect(14, 8, 2, 2), pixels, "p")
        mask = doc.mask_layer
        doc.replace_pixels(mask.id, Rect(3, 3, 2, 2), np.full((2, 2), 99, np.uint8), "m")

    monkeypatch.setattr(manager, "_copy_ahead", edit_after_the_first_copy)
    with qtbot.waitSignal(manager.autosaved, timeout=10_000) as blocker:
        assert manager.autosave_in_background()
    assert len(steps) > 2 and steps[0] > 0  # really one layer per turn
    assert_same_layers(doc, open_ora(blocker.args[0]))


def test_a_writer_never_answered_gives_up_and_the_document_stays_due(qtbot, manager, monkeypatch):
    from app.io import autosave

    monkeypatch.setattr(autosave, "SNAPSHOT_WAIT_SECONDS", 0.05)
    doc = Document.blank(8, 8)
    manager.watch(doc)
    paint(doc)
    written = []
    manager.autosaved.connect(written.append)
    assert manager.autosave_in_background()
    time.sleep(0.5)  # the UI thread is busy for longer than the writer waits
    qtbot.waitUntil(lambda: not manager.writing, timeout=5000)
    assert written == [] and not manager.autosave_path(doc).exists()
    assert manager.autosave_now() == [manager.autosave_path(doc)]  # still due, written now


# ---- "dead" is decided by the session's lock, not by PID or host name ----------------------

LIVING_SESSION = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from app.document import Document
    from app.geometry import Rect
    from app.io.autosave import AutosaveManager

    manager = AutosaveManager(sys.argv[1])
    doc = Document.blank(16, 8, fill=(9, 9, 9, 255))
    manager.watch(doc)
    doc.replace_pixels(doc.layers[0].id, Rect(0, 0, 2, 2), np.zeros((2, 2, 4), np.uint8), "p")
    manager.autosave_now()
    print("saved", flush=True)
    time.sleep(300)
    """
)


def _start_living_session(folder: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", LIVING_SESSION, str(folder)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    line = process.stdout.readline()
    assert line == b"saved\n", line if line else process.stderr.read().decode()[-2000:]
    return process


def _pretend(session: Path, pid: int, host: str) -> None:
    """Rewrite what the session recorded, as after PID reuse or a restarted container."""
    import json

    info = json.loads((session / "session.json").read_text())
    info.update(pid=pid, host=host)
    (session / "session.json").write_text(json.dumps(info))


@pytest.mark.parametrize(
    "recorded", ["this pid, this host", "this pid, another host", "pid 1, another host"]
)
def test_kill_9_is_recovered_under_pid_reuse_and_a_new_host_name(tmp_path, recorded):
    import signal
    import socket

    folder = tmp_path / "autosave"
    process = _start_living_session(folder)
    (session,) = [p for p in folder.iterdir() if p.is_dir()]
    pid = 1 if recorded.startswith("pid 1") else os.getpid()
    host = socket.gethostname() if recorded.endswith("this host") else "restarted-container-7f3a"
    _pretend(session, pid, host)
    manager = AutosaveManager(folder)
    try:
        # alive, whatever its PID and host say: nothing to recover, nothing removed
        assert manager.recoverable() == []
        assert (session / "doc-001.ora").exists()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        (item,) = manager.recoverable()  # dead: the OS dropped its lock with the process
        doc = manager.recover(item)
        assert doc.width == 16 and doc.is_modified
        assert doc.layers[0].raster.read(Rect(0, 0, 1, 1))[0, 0, 3] == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
        manager.shutdown()


def test_a_session_folder_being_created_is_not_taken_for_dead(tmp_path):
    folder = tmp_path / "autosave"
    starting = folder / "123-starting"
    starting.mkdir(parents=True)
    (starting / "doc-001.json").write_text('{"saved_at": "2026-01-01T00:00:00+00:00"}')
    (starting / "doc-001.ora").write_bytes(b"x")
    manager = AutosaveManager(folder)
    assert manager.recoverable() == []  # no lock file yet, and young: a session starting
    old = time.time() - 3600
    os.utime(starting, (old, old))
    assert len(manager.recoverable()) == 1  # an old folder without a lock: left by a crash


def test_stale_parts_of_a_dead_session_are_removed(tmp_path):
    folder = tmp_path / "autosave"
    dead = folder / "9-dead"
    dead.mkdir(parents=True)
    (dead / "session.lock").touch()
    (dead / "doc-001.ora").write_bytes(b"x")
    (dead / "doc-001.json").write_text('{"saved_at": "2026-01-01T00:00:00+00:00"}')
    part = dead / ".doc-001.ora.abcd1234.part"
    part.write_bytes(b"\0" * 1000)
    other = dead / "notes.part"  # not our naming: left alone
    other.write_bytes(b"x")
    AutosaveManager(folder).recoverable()
    assert not part.exists() and other.exists()


def test_a_folder_without_file_locks_never_takes_a_session_for_dead(tmp_path, monkeypatch, caplog):
    import errno

    def unsupported(_handle):
        raise OSError(errno.ENOLCK, "No locks available")

    folder = tmp_path / "autosave"
    crashed = AutosaveManager(folder)
    doc = Document.blank(8, 8)
    crashed.watch(doc)
    paint(doc)
    crashed.autosave_now()
    crashed._lock.release()
    import fcntl

    monkeypatch.setattr(fcntl, "flock", lambda *_a: unsupported(None))
    manager = AutosaveManager(folder)
    assert manager.recoverable() == []  # unknown: left alone, not stolen
    doc2 = Document.blank(8, 8)
    manager.watch(doc2)
    paint(doc2)
    assert len(manager.autosave_now()) == 1  # this session still autosaves
    assert "cannot be locked" in caplog.text
    manager.shutdown()
