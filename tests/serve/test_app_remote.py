"""The desktop app as a client of the real deployment: the job queue with a remote engine,
Settings › Engine's "Test connection", the model library listing the server's models, and a
connection cut mid-job (through a proxy we can cut) that leaves the document as it was."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.compose import composite
from app.engine_choice import engine_factory
from app.generation.jobs import JobController
from app.generation.request import GenerationParams
from app.geometry import Rect
from app.layers import LayerKind
from app.settings import Settings, SettingsStore
from app.staging import Staging
from inference.serve.wire import remote_model_path
from tests.documents import paint_mask, random_photo

MODEL = "tiny-sd-inpaint"


def params(model_path: str) -> GenerationParams:
    return GenerationParams(
        prompt="a cat",
        model_path=model_path,
        model_name=MODEL,
        native_size=64,
        steps=3,
        seed=5,
        padding=8,
        mask_blur=2,
        strength=0.9,
    )


def masked_photo():
    doc = random_photo(96, 80, seed=11)
    paint_mask(doc, Rect(30, 20, 24, 24))
    return doc


def remote_settings(url: str, token: str) -> Settings:
    return Settings(engine="remote", remote_url=url, remote_token=token)


@pytest.fixture
def controllers(qtbot):
    made: list[JobController] = []

    def make(factory) -> JobController:
        jobs = JobController(factory, staging=Staging())
        made.append(jobs)
        return jobs

    yield make
    for jobs in made:
        assert jobs.shutdown(60)


def run_job(qtbot, jobs: JobController, doc, p: GenerationParams):
    steps: list[int] = []
    jobs.preview.connect(lambda _job, step, _total: steps.append(step))
    with qtbot.waitSignal(jobs.finished, timeout=120_000) as blocker:
        jobs.generate(doc, p)
    return blocker.args[1], steps


def test_the_job_queue_with_the_remote_engine_lands_what_the_local_engine_lands(
    qtbot, server, controllers
):
    remote = controllers(engine_factory(remote_settings(server.url, server.token)))
    local = controllers(engine_factory(Settings()))
    remote_doc, local_doc = masked_photo(), masked_photo()
    (remote_layer,), steps = run_job(qtbot, remote, remote_doc, params(remote_model_path(MODEL)))
    (local_layer,), _ = run_job(qtbot, local, local_doc, params(str(server.models / MODEL)))
    assert steps == [1, 2]  # previews drawn as they arrived (strength 0.9 of 3 steps)
    assert remote_layer.raster.rect == local_layer.raster.rect
    rect = remote_layer.raster.rect
    assert np.array_equal(remote_layer.raster.read(rect), local_layer.raster.read(rect))
    assert remote_layer.recipe["model"] == MODEL and remote_layer.recipe["workflow"] == "Inpaint"
    assert np.array_equal(
        composite(remote_doc.layers, remote_doc.rect), composite(local_doc.layers, local_doc.rect)
    )


def test_a_wrong_server_address_or_token_fails_the_job_in_one_line_and_changes_nothing(
    qtbot, server, controllers
):
    jobs = controllers(engine_factory(remote_settings(server.url, "wrong")))
    doc = masked_photo()
    before = composite(doc.layers, doc.rect)
    with qtbot.waitSignal(jobs.failed, timeout=30_000) as blocker:
        jobs.generate(doc, params(remote_model_path(MODEL)))
    message = blocker.args[1]
    assert "refused the access token" in message and "\n" not in message
    assert not doc.layers_of(LayerKind.RESULT)
    assert np.array_equal(composite(doc.layers, doc.rect), before)


class CuttableProxy:
    """A loopback TCP proxy to the server whose connections the test can cut (a lost network)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._target = (parts.hostname, parts.port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._spawn(self._accept)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name="test-proxy", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._stop.set()
        self.cut()
        self._listener.close()
        for thread in list(self._threads):
            thread.join(5)


def test_a_connection_lost_mid_job_leaves_the_document_as_it_was_and_a_retry_works(
    qtbot, server, controllers
):
    proxy = CuttableProxy(server.url)
    try:
        jobs = controllers(engine_factory(remote_settings(proxy.url, server.token)))
        doc = masked_photo()
        before = composite(doc.layers, doc.rect)
        long_job = GenerationParams(**{**params(remote_model_path(MODEL)).__dict__, "steps": 200})
        cuts: list[int] = []

        def cut_once(job_id: int, step: int, _total: int) -> None:
            if step >= 2 and not cuts:  # previews coalesce: step 2 itself may be skipped
                cuts.append(job_id)
                proxy.cut()

        jobs.preview.connect(cut_once)
        with qtbot.waitSignal(jobs.failed, timeout=60_000) as blocker:
            jobs.generate(doc, long_job)
        message = blocker.args[1]
        assert "lost the connection" in message and "try again" in message
        assert "\n" not in message
        qtbot.waitUntil(lambda: doc.preview is None)
        assert not doc.layers_of(LayerKind.RESULT)
        assert np.array_equal(composite(doc.layers, doc.rect), before)
        (layer,), _ = run_job(qtbot, jobs, doc, params(remote_model_path(MODEL)))  # retry
        assert layer.kind is LayerKind.RESULT
    finally:
        proxy.close()


def test_the_model_library_lists_the_servers_models_when_remote(qtbot, server, tmp_path):
    from app.library import ModelLibrary

    store = SettingsStore(tmp_path / "settings.json")
    store.update(engine="remote", remote_url=server.url, remote_token=server.token)
    library = ModelLibrary(store, cache_path=tmp_path / "cache.json")
    try:
        with qtbot.waitSignal(library.scan_finished, timeout=30_000):
            library.rescan()
        (entry,) = library.entries()
        assert entry.path == remote_model_path(MODEL) and entry.display_name == MODEL
        assert entry.inpaint and entry.base.value == "SD1.x" and entry.usable
    finally:
        library.shutdown()


def test_settings_engine_page_tests_the_connection_and_saves_the_choice(qtbot, server, tmp_path):
    from widgets.settings_dialog import SettingsDialog

    store = SettingsStore(tmp_path / "settings.json")
    dialog = SettingsDialog(store)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.test_connection_button.isEnabled()  # local by default
    dialog.engine_combo.setFocus()
    qtbot.keyClick(dialog.engine_combo, Qt.Key.Key_Down)
    assert dialog.engine_combo.currentData() == "remote"
    qtbot.keyClicks(dialog.remote_url_edit, server.url)
    qtbot.keyClicks(dialog.remote_token_edit, "wrong-token")
    qtbot.mouseClick(dialog.test_connection_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Failed" in dialog.connection_label.text(), timeout=30_000)
    assert "refused the access token" in dialog.connection_label.text()
    dialog.remote_token_edit.clear()
    qtbot.keyClicks(dialog.remote_token_edit, server.token)
    qtbot.mouseClick(dialog.test_connection_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Connected" in dialog.connection_label.text(), timeout=30_000)
    text = dialog.connection_label.text()
    assert "1 model, 0 GPUs on 1 node, 2 replica(s)" in text and MODEL in text
    qtbot.mouseClick(
        dialog.buttons.button(dialog.buttons.StandardButton.Ok), Qt.MouseButton.LeftButton
    )
    settings = store.settings
    assert (settings.engine, settings.remote_url, settings.remote_token) == (
        "remote",
        server.url,
        server.token,
    )


def test_switching_the_workspace_to_the_server_picks_its_model_and_generate_lands_a_result(
    qtbot, server, tmp_path
):
    from widgets.main_window import MainWindow
    from widgets.workspace import Workspace

    window = MainWindow()
    window.ask_unsaved = lambda action: "discard"
    qtbot.addWidget(window)
    workspace = Workspace(
        window,
        SettingsStore(tmp_path / "settings.json"),
        autosave_folder=tmp_path / "autosave",
        library_cache=tmp_path / "library.json",
        scan_models=False,
    )
    try:
        window.set_document(masked_photo())
        doc = window.doc
        workspace.store.update(  # what Settings › Engine's OK does
            engine="remote", remote_url=server.url, remote_token=server.token, default_steps=4
        )
        qtbot.waitUntil(lambda: workspace.picker.checkpoint() is not None, timeout=30_000)
        assert workspace.picker.checkpoint().path == remote_model_path(MODEL)
        with qtbot.waitSignal(workspace.jobs.finished, timeout=120_000):
            qtbot.mouseClick(workspace.generate_panel.generate_button, Qt.MouseButton.LeftButton)
        (layer,) = doc.layers_of(LayerKind.RESULT)
        assert layer.recipe["model"] == MODEL and layer.recipe["workflow"] == "Inpaint"
        assert layer.raster.rect.contains(Rect(30, 20, 24, 24))
    finally:
        workspace.shutdown()
