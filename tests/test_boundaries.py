"""The one-way streets that import-linter cannot express: app/ never imports QtWidgets (only the
start-up wiring in app/main.py may), and starting the GUI module does not import torch."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_app_never_imports_qtwidgets():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "app").rglob("*.py")
        if path.name != "main.py"
        and any(name.startswith("PySide6.QtWidgets") for name in imported_modules(path))
    ]
    assert offenders == []


def test_gui_start_does_not_import_torch():
    code = (
        "import sys, app.main, app.document, app.tools, app.files\n"
        "import importlib.util\n"
        "if importlib.util.find_spec('widgets.main_window'):\n"
        "    import widgets.main_window, widgets.workspace\n"
        "print('torch' in sys.modules, 'diffusers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


# Widgets draw and turn gestures into calls; work off the UI thread goes through app/background.py.
THREAD_MODULES = ("threading", "_thread", "concurrent.futures", "multiprocessing")
QT_THREAD_NAMES = {"QThread", "QThreadPool", "QRunnable"}


def thread_starters(source: str) -> list[str]:
    """What in ``source`` could start a thread: thread modules, Qt's thread classes."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith(THREAD_MODULES)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(THREAD_MODULES):
                found.append(node.module)
            found += [a.name for a in node.names if a.name in QT_THREAD_NAMES]
        elif isinstance(node, ast.Attribute) and node.attr in QT_THREAD_NAMES:
            found.append(node.attr)
    return found


def test_the_thread_check_catches_each_way_of_starting_one():
    assert thread_starters("import threading\nthreading.Thread(target=print).start()")
    assert thread_starters("from concurrent.futures import ThreadPoolExecutor")
    assert thread_starters("from PySide6.QtCore import QThreadPool, Qt")
    assert thread_starters("from PySide6 import QtCore\npool = QtCore.QThread()")
    assert thread_starters("from PySide6.QtCore import QRunnable")
    assert not thread_starters("from app.background import Background\nimport time")


def test_widgets_start_no_threads():
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in (ROOT / "widgets").rglob("*.py")
        if (found := thread_starters(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, "widgets must use app.background, not threads of their own"
