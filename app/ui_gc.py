"""Cyclic garbage collection on the UI thread only.

Python's collector runs on whichever thread happens to allocate past its threshold: the
inference worker, a library scan, the autosave writer. A reference cycle holding a Qt wrapper (a
``QObject`` subclass, a widget, a callback bound to one) collected there deletes the C++ object on
the wrong thread, which Qt does not allow and which can corrupt memory that a later collection
trips over ("Garbage-collecting" in a segfault's traceback). So, as pyqtgraph's
``GarbageCollector`` does, the automatic collector is switched off while the application runs
and a timer on the UI thread runs exactly the generations the automatic collector would have
run. Plain reference counting, which frees almost everything, is untouched.
"""

from __future__ import annotations

import gc
import logging

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)

INTERVAL_MS = 500


def collect_due() -> int:
    """Run the oldest generation whose allocation count passed its threshold (what the automatic
    collector would have done by now); returns the number of unreachable objects found."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    generation = max(
        (index for index in range(3) if counts[index] > thresholds[index]), default=None
    )
    if generation is None:
        return 0
    return gc.collect(generation)


class UiThreadCollector(QObject):
    """Owns the cyclic collector while started: automatic collection off, ``collect_due`` every
    ``interval_ms`` on the thread this object lives on (create it on the UI thread)."""

    def __init__(self, interval_ms: int = INTERVAL_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(collect_due)
        self._was_enabled: bool | None = None

    @property
    def active(self) -> bool:
        return self._timer.isActive()

    def start(self) -> None:
        if self.active:
            return
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        """Stop the timer and give the collector back as it was before ``start``."""
        if not self.active:
            return
        self._timer.stop()
        collect_due()
        if self._was_enabled:
            gc.enable()
