"""Painting performance of the canvas (issue 2, "Performance"). Run by hand:

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_paint.py

1. Cost per dab of a 200-dab stroke at size 64 on 8192x8192 vs 1024x1024, through the real
   canvas (the stroke's pixels_changed signals re-render dirty tiles; paint events are processed).
2. Repaint area: rendered document pixels and painted screen pixels vs the dirty rectangles.
3. Memory of an 8192x8192 document with an image layer and 10 painted 768x768 layers vs the raw
   pixel bytes; undo memory of 100 small strokes.
4. Time from `impasto` to a shown window vs a bare PySide6 window (offscreen, separate processes).
5. Blend modes and groups in play (issue 13): the sketch layer inside a Multiply group at 80%
   over a Screen layer, the stroke crossing both; per-dab cost vs the plain sketch stroke in the
   same process, and the first fitted paint of such an 8192² document.

``--modes`` runs only the blend-mode/group parts (5: the group strokes interleaved with the plain
sketch strokes they are compared with, and the first paint).
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.document import Document  # noqa: E402
from app.geometry import Rect  # noqa: E402
from app.layers import LayerKind  # noqa: E402
from app.raster import Raster  # noqa: E402
from app.tools import BrushSettings, BrushTarget, BrushTool, Phase, PointerEvent  # noqa: E402
from widgets.canvas import CanvasView  # noqa: E402

DABS = 200
SIZE = 64
RUNS = 9


def circle_points(cx: float, cy: float, dabs: int, size: float) -> list[tuple[float, float]]:
    """Points on a circle whose length makes ``dabs`` dabs at the brush spacing."""
    spacing = max(1.0, size * BrushSettings().spacing)
    radius = dabs * spacing / (2 * math.pi)
    count = dabs * 2
    return [
        (
            cx + radius * math.cos(2 * math.pi * i / count),
            cy + radius * math.sin(2 * math.pi * i / count),
        )
        for i in range(count + 1)
    ]


def stroke(tool: BrushTool, points, app: QApplication | None = None) -> None:
    last = len(points) - 1
    for i, (x, y) in enumerate(points):
        phase = Phase.PRESS if i == 0 else Phase.RELEASE if i == last else Phase.MOVE
        tool.handle(PointerEvent(x, y, phase))
        if app is not None and i % 4 == 0:  # a mouse delivers a few points per frame
            app.processEvents()
    if app is not None:
        app.processEvents()


def add_modes_and_groups(doc: Document) -> None:
    """A 1024² Screen layer at the centre, and the active sketch layer inside a Multiply group at
    80% (an isolated group: every re-render composites the group, then blends it)."""
    side = doc.width
    rng = np.random.default_rng(1)
    patch = rng.integers(0, 256, (1024, 1024, 4), dtype=np.uint8)
    patch[..., 3] = 200
    x = y = side // 2 - 512
    doc.add_layer(LayerKind.IMAGE, "screen", Raster(4, patch, x, y), blend_mode="svg:screen")
    sketch = doc.add_layer(LayerKind.SKETCH)
    group = doc.group_layers([sketch.id])
    doc.set_blend_mode(group.id, "svg:multiply")
    doc.set_opacity(group.id, 0.8)
    doc.set_active(sketch.id)
    doc.history.clear()


class DabBench:
    """One canvas + document + brush; ``run_once`` paints the stroke, times it, undoes it."""

    def __init__(
        self,
        app: QApplication,
        side: int,
        target: BrushTarget,
        zoom: float | None,
        modes: bool = False,
    ):
        self.app, self.side = app, side
        self.doc = Document.blank(side, side, fill=(120, 130, 140, 255))
        if modes:
            add_modes_and_groups(self.doc)
        elif target is BrushTarget.SKETCH:
            self.doc.add_layer(LayerKind.SKETCH)
        self.view = CanvasView()
        self.view.resize(1200, 800)
        self.view.set_document(self.doc)
        self.view.show()
        app.processEvents()
        center = side / 2
        if zoom is not None:
            self.view.set_zoom(zoom, self.view.doc_to_widget(center, center))
        self.view.repaint()
        self.dirty: list[Rect] = []
        self.doc.pixels_changed.connect(lambda _id, rect: self.dirty.append(rect))
        self.tool = BrushTool(self.doc, target, BrushSettings(size=SIZE, hardness=0.8), "bench")
        self.points = circle_points(center, center, DABS, SIZE)
        self.times: list[float] = []

    def run_once(self) -> None:
        self.dirty.clear()
        self.view.stats.reset()
        start = time.perf_counter()
        stroke(self.tool, self.points, self.app)
        self.times.append(time.perf_counter() - start)
        self.dabs = len(self.dirty)
        self.dirty_px = sum(r.area for r in self.dirty)
        self.stats = (
            self.view.stats.rendered_doc_px,
            self.view.stats.painted_screen_px,
            self.view.stats.paint_events,
        )
        self.doc.history.undo()
        self.app.processEvents()

    @property
    def per_dab_ms(self) -> float:
        return min(self.times) / self.dabs * 1000  # min: the VM is shared, noise only adds

    def close(self) -> None:
        self.view.close()
        self.view.deleteLater()
        self.app.processEvents()


def report_dabs(app: QApplication, modes_only: bool = False) -> None:
    print(f"## Cost per dab: {DABS}-dab stroke, size {SIZE}, best of {RUNS} interleaved strokes")
    targets = [] if modes_only else [BrushTarget.MASK, BrushTarget.SKETCH]
    for target in targets:
        for zoom, label in ((1.0, "100%"), (None, "fit")):
            small = DabBench(app, 1024, target, zoom)
            large = DabBench(app, 8192, target, zoom)
            for _ in range(RUNS):  # interleaved, so load spikes hit both sizes alike
                small.run_once()
                large.run_once()
            print_pair(target.value, label, small, large)
    print(
        "## Blend modes and groups: the sketch inside a Multiply group at 80% over a Screen "
        "layer, interleaved with the plain sketch stroke"
    )
    for zoom, label in ((1.0, "100%"), (None, "fit")):
        benches = {
            (modes, side): DabBench(app, side, BrushTarget.SKETCH, zoom, modes)
            for modes in (False, True)
            for side in (1024, 8192)
        }
        for _ in range(RUNS):
            for bench in benches.values():
                bench.run_once()
        small, large = benches[(True, 1024)], benches[(True, 8192)]
        print_pair("groups", label, small, large)
        plain_small, plain_large = benches[(False, 1024)], benches[(False, 8192)]
        print(
            f"    vs the plain sketch stroke: {small.per_dab_ms / plain_small.per_dab_ms:.2f}x"
            f" (1024²), {large.per_dab_ms / plain_large.per_dab_ms:.2f}x (8192²)"
        )
        for bench in benches.values():
            if bench not in (small, large):
                bench.close()


def print_pair(name: str, label: str, small: DabBench, large: DabBench) -> None:
    ratio = large.per_dab_ms / small.per_dab_ms
    print(
        f"{name:6s} view {label:4s}: 1024² {small.per_dab_ms:.3f} ms/dab, "
        f"8192² {large.per_dab_ms:.3f} ms/dab (zoom {large.view.zoom:.3f}) "
        f"-> ratio {ratio:.2f}"
    )
    for bench in (small, large):
        rendered, painted, events = bench.stats
        widget_px = bench.view.width() * bench.view.height()
        per_event = painted / max(1, events)
        print(
            f"    {bench.side}²: {bench.dabs} dabs, re-rendered {rendered:,} doc px "
            f"for {bench.dirty_px:,} dirty px ({rendered / bench.dirty_px:.2f}x); "
            f"{events} paints of {per_event:,.0f} screen px = "
            f"{per_event / widget_px * 100:.2f}% of the {widget_px:,} px view"
        )
    small.close()
    large.close()


def report_first_paint(app: QApplication, modes: bool = False) -> None:
    what = "modes and a group" if modes else "image + empty sketch layer"
    print(f"## First paint of a fitted 8192² document ({what}), 1200x800 view")
    doc = Document.blank(8192, 8192, fill=(100, 120, 140, 255))
    if modes:
        add_modes_and_groups(doc)
    else:
        doc.add_layer(LayerKind.SKETCH)
    view = CanvasView()
    view.resize(1200, 800)
    view.set_document(doc)
    view.show()
    app.processEvents()
    results = []
    for zoom in (None, 0.3, 1.0):
        if zoom is None:
            view.fit()
        else:
            view.set_zoom(zoom)
        view._tiles.clear()  # cold cache
        start = time.perf_counter()
        view.grab()
        results.append(
            f"zoom {view.zoom:.3f} (level {view.level()}) {time.perf_counter() - start:.3f} s"
        )
    print("; ".join(results))
    view.close()


def report_memory() -> None:
    print("## Memory: 8192² document, image layer + 10 painted 768² layers")
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    doc = Document.blank(8192, 8192, fill=(90, 100, 110, 255))
    rng = np.random.default_rng(0)
    for i in range(10):
        layer = doc.add_layer(LayerKind.IMAGE)
        x, y = 640 * i, 512 + 640 * (i % 3)
        pixels = rng.integers(0, 256, (768, 768, 4), dtype=np.uint8)
        doc.replace_pixels(layer.id, Rect(x, y, 768, 768), pixels, "paint")
    doc.history.clear()  # document only; history measured below
    used = tracemalloc.get_traced_memory()[0] - base
    raw = 8192 * 8192 * 4 + 10 * 768 * 768 * 4
    stored = sum(layer.raster.nbytes for layer in doc.layers if layer.raster is not None)
    print(
        f"raw pixel bytes {raw / 2**20:.1f} MiB; layer arrays {stored / 2**20:.1f} MiB; "
        f"traced allocations {used / 2**20:.1f} MiB -> {used / raw:.3f}x raw"
    )

    print("## Undo memory: 100 small mask strokes (size 64, ~100 px long) on that canvas")
    before = tracemalloc.get_traced_memory()[0]
    tool = BrushTool(doc, BrushTarget.MASK, BrushSettings(size=64), "mask")
    for i in range(100):
        x0, y0 = 300 + (i % 10) * 700, 300 + (i // 10) * 700
        stroke(tool, [(x0 + t * 10, y0 + t * 3) for t in range(11)])
    history_bytes = sum(doc.history.command(i).nbytes for i in range(doc.history.count()))
    grown = tracemalloc.get_traced_memory()[0] - before
    mask = doc.mask_layer.raster
    print(
        f"{doc.history.count()} undo steps hold {history_bytes / 2**20:.2f} MiB of patches; "
        f"traced growth {grown / 2**20:.2f} MiB (incl. the mask layer's own "
        f"{mask.nbytes / 2**20:.2f} MiB, bounds {mask.rect.w}x{mask.rect.h})"
    )
    tracemalloc.stop()


BARE = (
    "from PySide6.QtCore import QTimer\n"
    "from PySide6.QtWidgets import QApplication, QMainWindow\n"
    "app = QApplication([])\n"
    "w = QMainWindow(); w.resize(1400, 900); w.show()\n"
    "QTimer.singleShot(0, app.quit)\n"
    "app.exec()\n"
)
IMPASTO = "import sys; from app.main import main; sys.exit(main([]))"


def time_process(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def report_startup() -> None:
    print("## Start-up: process start to a shown window, then quit (offscreen), median of 5")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", IMPASTO_QUIT_WHEN_SHOWN="1")
    time_process(BARE, env)  # warm the file cache
    time_process(IMPASTO, env)
    bare = statistics.median(time_process(BARE, env) for _ in range(5))
    impasto = statistics.median(time_process(IMPASTO, env) for _ in range(5))
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from app.main import main; main([]); "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    print(
        f"bare PySide6 window {bare * 1000:.0f} ms; impasto {impasto * 1000:.0f} ms "
        f"({impasto / bare:.2f}x); heavy modules loaded at start: {probe.stdout.strip()}"
    )


def main() -> None:
    app = QApplication.instance() or QApplication([])
    modes_only = "--modes" in sys.argv[1:]
    report_dabs(app, modes_only)
    if not modes_only:
        report_first_paint(app)
    report_first_paint(app, modes=True)
    if not modes_only:
        report_memory()
        report_startup()


if __name__ == "__main__":
    main()
