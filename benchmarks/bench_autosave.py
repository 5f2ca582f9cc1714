"""How long an autosave holds the UI thread: before (the whole .ora written on the UI thread)
and after (a snapshot on the UI thread, encoding and writing on a background thread).

Documents as in ``bench_io.py`` (8192x8192, 10 layers): ``full`` (every layer covers the canvas,
2.5 GiB of pixels) and ``sparse`` (one full background + 9 layers of 1024x1024). For each, two
autosaves: the first one (every layer encoded) and one after a small stroke on one layer.

* ``before``: what ``AutosaveManager`` did on the UI thread until 2026-11-25 —
  ``save_ora(merged=False, png_cache=...)`` with the cache invalidated by ``pixels_changed``.
* ``after``: ``AutosaveManager.autosave_in_background()``; "UI s" is all the time the UI thread
  spends on it: the call (plans which layers to copy) plus the steps that copy one layer each
  into buffers the writer thread prepared, the last one taking the snapshot; "longest step s" is
  the longest of those; "written after s" is when ``autosaved`` arrived, and "UI stall s" the
  longest gap between ticks of a 5 ms QTimer meanwhile (the GIL is shared with the writer).

Run by hand (one process per document; ``full`` needs ~6 GB of memory)::

    python benchmarks/bench_autosave.py --only sparse
    python benchmarks/bench_autosave.py --only full
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def stroke(doc, value: int) -> None:
    from app.geometry import Rect

    layer = doc.layers[len(doc.layers) // 2]
    pixels = np.full((64, 64, 4), value, np.uint8)
    doc.replace_pixels(layer.id, Rect(3000, 3000, 64, 64), pixels, "stroke")


def before(doc, folder: Path) -> list[float]:
    from app.io.ora import PngCache, save_ora

    cache = PngCache()
    doc.pixels_changed.connect(cache.invalidate)
    times = []
    for value in (10, 20):
        stroke(doc, value)
        start = time.perf_counter()
        save_ora(doc, folder / "before.ora", backup=False, merged=False, png_cache=cache)
        times.append(time.perf_counter() - start)
    doc.pixels_changed.disconnect(cache.invalidate)
    return times


def after(doc, folder: Path) -> list[tuple[float, float, float]]:
    from PySide6.QtCore import QEventLoop, QTimer

    from app.io.autosave import AutosaveManager

    manager = AutosaveManager(folder / "autosave")
    manager.watch(doc)
    snapshot_seconds: list[float] = []  # each UI-thread step: one layer copied, then the snapshot
    copy_ahead = manager._copy_ahead

    def timed_copy_ahead(flight):
        start = time.perf_counter()
        try:
            return copy_ahead(flight)
        finally:
            snapshot_seconds.append(time.perf_counter() - start)

    manager._copy_ahead = timed_copy_ahead
    ticks: list[float] = []
    timer = QTimer(interval=5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    rows = []
    for value in (30, 40):
        stroke(doc, value)
        loop = QEventLoop()
        manager.autosaved.connect(loop.quit)
        timer.start()
        ticks.clear()
        snapshot_seconds.clear()
        start = time.perf_counter()
        assert manager.autosave_in_background()
        ui = time.perf_counter() - start
        ticks.append(time.perf_counter())
        loop.exec()
        done = time.perf_counter() - start
        timer.stop()
        manager.autosaved.disconnect(loop.quit)
        stall = max(b - a for a, b in itertools.pairwise(ticks))
        rows.append((ui + sum(snapshot_seconds), max(snapshot_seconds), done, stall))
    manager.shutdown()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["full", "sparse"], default="sparse")
    args = parser.parse_args()
    from bench_io import build
    from PySide6.QtCore import QCoreApplication

    app = QCoreApplication.instance() or QCoreApplication([])
    doc = build(args.only)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        old = before(doc, folder)
        new = after(doc, folder)
    print(
        "| document | autosave | before: UI s | after: UI s | longest step s | written after s "
        "| UI stall s |"
    )
    print("|---|---|---|---|---|---|---|")
    labels = ("first", "after a stroke")
    for label, old_s, (ui, step, done, stall) in zip(labels, old, new, strict=True):
        print(
            f"| {args.only} | {label} | {old_s:.2f} | {ui:.3f} | {step:.3f} | {done:.2f} "
            f"| {stall:.3f} |"
        )
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
