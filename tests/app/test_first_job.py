"""The first generation in a fresh process: the UI thread never imports torch, and the worker
loads with the cyclic collector paused (full collections over torch's objects stall the UI)."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

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


def test_gc_is_paused_while_loading_and_the_survivors_are_frozen():
    assert gc.isenabled()
    before = gc.get_freeze_count()
    try:
        with gc_paused():
            assert not gc.isenabled()
            survivors = [[i] for i in range(1000)]  # what a load leaves behind
        assert gc.isenabled()
        assert gc.get_freeze_count() >= before + len(survivors)
    finally:
        gc.unfreeze()


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
        "print('SHUT', jobs.shutdown(5))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr
    assert "THREADS True HEAVY ['torch', 'diffusers', 'transformers'] DONE True" in out.stdout
    assert "SHUT True" in out.stdout
