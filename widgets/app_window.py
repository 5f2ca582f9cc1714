"""Start-up of the desktop app: QApplication, HiDPI, dark style, error hook, qasync loop, window."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

import resources
from app.image_io import DEFAULT_PIXEL_LIMIT
from app.ui_gc import UiThreadCollector

log = logging.getLogger(__name__)

STYLE_SHEET = Path(resources.__file__).parent / "style.qss"
QUIT_WHEN_SHOWN_ENV = "IMPASTO_QUIT_WHEN_SHOWN"  # benchmarks: exit once the window is shown
ErrorSink = Callable[[str, str, str], object]  # (title, message, details)


def parse_args(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="impasto", description="Open the Impasto editor.")
    parser.add_argument("image", nargs="?", help="an image or project to open")
    parser.add_argument(
        "--pixel-limit",
        type=int,
        default=DEFAULT_PIXEL_LIMIT,
        help="refuse images with more pixels than this (decompression-bomb guard)",
    )
    return parser.parse_args(args)


def dark_palette() -> QPalette:
    palette = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    colors = {
        role.Window: QColor(50, 51, 55),
        role.WindowText: QColor(222, 222, 226),
        role.Base: QColor(36, 37, 40),
        role.AlternateBase: QColor(44, 45, 49),
        role.ToolTipBase: QColor(30, 30, 33),
        role.ToolTipText: QColor(230, 230, 230),
        role.PlaceholderText: QColor(130, 130, 136),
        role.Text: QColor(222, 222, 226),
        role.Button: QColor(58, 59, 64),
        role.ButtonText: QColor(222, 222, 226),
        role.BrightText: QColor(255, 90, 90),
        role.Link: QColor(90, 160, 240),
        role.Highlight: QColor(62, 120, 200),
        role.HighlightedText: QColor(255, 255, 255),
        role.Light: QColor(80, 81, 86),
        role.Midlight: QColor(66, 67, 72),
        role.Mid: QColor(44, 45, 49),
        role.Dark: QColor(28, 28, 31),
        role.Shadow: QColor(10, 10, 12),
    }
    for color_role, color in colors.items():
        palette.setColor(color_role, color)
    for color_role in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(group.Disabled, color_role, QColor(118, 118, 124))
    return palette


def apply_style(app: QApplication) -> None:
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    try:
        icons = (STYLE_SHEET.parent / "icons").as_posix()
        app.setStyleSheet(STYLE_SHEET.read_text(encoding="utf-8").replace("@ICONS@", icons))
    except OSError as err:  # the app still works with the palette alone
        log.warning("style sheet not loaded: %s", err)


class ErrorHook:
    """``sys.excepthook`` replacement: log the traceback, show a short non-modal message.

    The same error repeating (e.g. from a paint event) is shown once, not as a flood of boxes.
    """

    def __init__(self, sink: ErrorSink, previous=None):
        self.sink = sink
        self.previous = previous or sys.__excepthook__
        self._last: tuple[str, float] | None = None

    def __call__(self, exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self.previous(exc_type, exc, tb)
            return
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("unhandled error\n%s", details)
        summary = f"{exc_type.__name__}: {exc}"
        now = time.monotonic()
        if self._last is not None and self._last[0] == summary and now - self._last[1] < 5.0:
            return
        self._last = (summary, now)
        message = (
            f"That action stopped because of an internal error:\n{summary}\n\n"
            "Your document is still open and unchanged by the failed action. "
            "If this keeps happening, please report it with the details below."
        )
        try:
            self.sink("Something went wrong", message, details)
        except Exception:  # never let the hook itself raise
            self.previous(exc_type, exc, tb)


def install_error_hook(sink: ErrorSink) -> ErrorHook:
    hook = ErrorHook(sink, sys.excepthook)
    sys.excepthook = hook
    return hook


def create_application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        app = QApplication(sys.argv[:1])
    app.setApplicationName("Impasto")
    app.setOrganizationName("Impasto")
    app.setApplicationDisplayName("Impasto")
    apply_style(app)
    return app


def run_event_loop(app: QApplication, hook: ErrorHook | None = None) -> int:
    """Run Qt through qasync so later code can ``await`` on the UI thread (tasks must be started
    from inside the running loop, e.g. from a slot or QTimer, never in a constructor)."""
    try:
        import qasync
    except ImportError:  # pragma: no cover - qasync is a dependency; fall back to plain Qt
        log.warning("qasync missing: running the plain Qt event loop")
        return app.exec()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    if hook is not None:

        def on_async_error(_loop, context: dict) -> None:
            error = context.get("exception")
            if error is None:
                log.error("asyncio: %s", context.get("message"))
                return
            hook(type(error), error, error.__traceback__)

        loop.set_exception_handler(on_async_error)
    closed = asyncio.Event()
    app.aboutToQuit.connect(closed.set)
    with loop:
        loop.run_until_complete(closed.wait())
    return 0


def run_gui(args: list[str]) -> int:
    options = parse_args(args)
    app = create_application()
    collector = UiThreadCollector(parent=app)  # cycles (and the Qt objects in them) die here
    collector.start()
    from widgets.main_window import MainWindow  # after QApplication: widgets need it
    from widgets.workspace import Workspace

    window = MainWindow(pixel_limit=options.pixel_limit)
    hook = install_error_hook(window.show_error)
    workspace = Workspace(window)
    window.show()
    if not os.environ.get(QUIT_WHEN_SHOWN_ENV):
        # crash recovery comes first, also when a file was named: work is not lost to an argument
        QTimer.singleShot(0, lambda: startup_open(workspace, window, options.image))
    elif options.image:
        window.open_path(options.image)
    if os.environ.get(QUIT_WHEN_SHOWN_ENV):
        QTimer.singleShot(0, app.quit)
    return run_event_loop(app, hook)


def startup_open(workspace, window, image) -> None:
    """Offer recovery of a crashed session's work; open ``image`` unless work was recovered."""
    if workspace.offer_recovery():
        if image:
            message = f"Recovered unsaved work; {image} was not opened."
            window.statusBar().showMessage(message, 10000)
    elif image:
        window.open_path(image)
