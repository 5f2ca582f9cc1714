"""Session-wide test setup: headless Qt, offline Hugging Face, quiet threads."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


import threading
import time

import pytest

LIBRARY_THREADS = {"tqdm_monitor"}  # tqdm's own daemon, started by progress bars in diffusers


@pytest.fixture(autouse=True)
def no_thread_left_running():
    """Fail any test that leaves a Python thread running (as napari's conftest does)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        leftover = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and t.name not in LIBRARY_THREADS
        ]
        if not leftover or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leftover, f"test left threads running: {[t.name for t in leftover]}"


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("the code tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="session", autouse=True)
def collect_cycles_on_the_ui_thread(qapp):
    """As the app does (app/ui_gc.py): no automatic cyclic GC on worker threads; the UI thread
    collects on a timer and after every test."""
    from app.ui_gc import UiThreadCollector

    collector = UiThreadCollector()
    collector.start()
    yield
    collector.stop()


@pytest.fixture(autouse=True)
def collect_due_after_each_test():
    yield
    from app.ui_gc import collect_due

    collect_due()
