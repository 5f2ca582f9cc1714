"""The first generation in a fresh process: the UI thread never imports torch, and the worker
loads with the cyclic collector paused (full collections over torch's objects stall the UI)."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from inference.device import gc_paused

ROOT = Path(__file__).resolve().parents[2]


def test_building_the_engine_imports_no_torch():
    code = (
        "import sys\n"
        "from app.generation.jobs import default_engine_factory\n"
        "engine = default_engine_factory()()\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


@pytest.mark.parametrize("enabled_before", [True, False])  # False: the UI-thread collector owns it
def test_gc_is_paused_while_loading_and_the_survivors_are_frozen(enabled_before):
    was_enabled = gc.isenabled()
    (gc.enable if enabled_before else gc.disable)()
    before = gc.get_freeze_count()
    try:
        with gc_paused():
            assert not gc.isenabled()
            survivors = [[i] for i in range(1000)]  # what a load leaves behind
        assert gc.isenabled() is enabled_before  # given back as it was
        assert gc.get_freeze_count() >= before + len(survivors)
    finally:
        gc.unfreeze()
        (gc.enable if was_enabled else gc.disable)()


def test_warm_up_imports_the_libraries_off_the_ui_thread_once():
    code = (
        "import sys, threading, time\n"
        "from PySide6.QtCore import QCoreApplication\n"
        "app = QCoreApplication([])\n"
        "from app.generation.jobs import JobController, default_engine_factory\n"
        "jobs = JobController(default_engine_factory())\n"
        "done = []\n"
        "jobs.warmed.connect(lambda: done.append(1))\n"
        "assert jobs.warm_up() and not jobs.warm_up()\n"
        "names = [t.name for t in threading.enumerate()]\n"
        "deadline = time.monotonic() + 120\n"
        "while not done and time.monotonic() < deadline:\n"
        "    app.processEvents(); time.sleep(0.01)\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "print('THREADS', 'impasto-warm-up' in names, 'HEAVY', heavy, 'DONE', bool(done))\n"
        "from app.generation.jobs import WORKER_THREAD_NAME\n"
        "ready = [t.name for t in threading.enumerate()].count(WORKER_THREAD_NAME)\n"
        "print('WORKER READY', ready)\n"
        "print('SHUT', jobs.shutdown(5))\n"
        "print('LEFT', [t.name for t in threading.enumerate()].count(WORKER_THREAD_NAME))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr
    assert "THREADS True HEAVY ['torch', 'diffusers', 'transformers'] DONE True" in out.stdout
    # the worker's thread was started by the warm-up, not inside the first Ctrl+Enter
    assert "WORKER READY 1" in out.stdout
    assert "SHUT True" in out.stdout and "LEFT 0" in out.stdout


def test_a_worker_premade_by_the_warm_up_is_dropped_when_the_engine_changed_meanwhile(qtbot):
    from app.generation.jobs import WORKER_THREAD_NAME, JobController

    made: list[str] = []

    def factory(name: str):
        def make():
            made.append(name)
            return object()

        return make

    jobs = JobController(factory("first"))
    with qtbot.waitSignal(jobs.warmed, timeout=120_000):
        assert jobs.warm_up()
        jobs.set_engine_factory(factory("second"))  # the settings changed while warming
    assert made == ["first"]
    assert jobs._worker is None  # the premade worker ran the old engine: not adopted
    qtbot.waitUntil(
        lambda: WORKER_THREAD_NAME not in [t.name for t in threading.enumerate()], timeout=3000
    )
    assert jobs.shutdown(5)
