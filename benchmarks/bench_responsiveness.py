"""UI responsiveness while a real (tiny-model, CPU) generation runs, and the cost of one preview.

1. Heartbeat: a precise 5 ms timer on the UI thread records how late each tick fires while the
   job controller runs real diffusers jobs on its worker thread and synthetic brush strokes are
   painted on the mask (through the real brush tool, with a canvas attached so repaints happen).
   Reports max and p99 lateness. Targets: max <= 50 ms, p99 <= 17 ms.
2. Preview cost: UI-thread time to show one 1024x1024 step preview (the controller's handler:
   preview layer + signals), and the same plus the canvas's reaction and repaint. Target <= 4 ms.

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/bench_responsiveness.py [--jobs 3]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtWidgets import QApplication

HEARTBEAT_MS = 5
STROKE_MS = 16  # one brush dab per frame, as a fast pen would deliver


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def make_canvas(doc):
    try:
        from widgets.canvas import CanvasView
    except ImportError:
        return None
    canvas = CanvasView()
    canvas.resize(1024, 768)
    canvas.set_document(doc)
    canvas.show()
    return canvas


def heartbeat_run(app: QApplication, model: Path, jobs_count: int, steps: int, size: int) -> dict:
    from app.document import Document
    from app.generation.jobs import JobController
    from app.generation.request import GenerationParams, ResolutionPolicy, Workflow
    from app.geometry import Rect
    from app.tools import BrushSettings, BrushTarget, BrushTool, Phase, PointerEvent

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (1024, 1024, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    doc = Document.from_rgba(pixels)
    canvas = make_canvas(doc)
    controller = JobController()
    params = GenerationParams(
        prompt="a cat",
        model_path=str(model),
        model_name="tiny",
        native_size=64,
        steps=steps,
        strength=1.0,
        resolution=ResolutionPolicy.EXACT,
        workflow=Workflow.IMG2IMG_SELECTION,
    )
    from app.raster import Raster

    selection = Raster(1)
    selection.write(Rect(200, 200, size, size), np.full((size, size), 255, np.uint8))
    doc._set_selection(selection)

    # warm up: load the model once so the measurement covers sampling, not disk
    done = []
    controller.finished.connect(lambda *_: done.append(1))
    controller.failed.connect(lambda _id, msg: (print("FAILED:", msg), done.append(1)))
    controller.generate(doc, params)
    while not done:
        app.processEvents()
        time.sleep(0.005)
    doc.history.undo()

    lateness: list[float] = []
    clock = QElapsedTimer()
    last = [0.0]
    heartbeat = QTimer()
    heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
    heartbeat.setInterval(HEARTBEAT_MS)

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        lateness.append(max(0.0, now - last[0] - HEARTBEAT_MS))
        last[0] = now

    heartbeat.timeout.connect(tick)
    brush = BrushTool(doc, BrushTarget.MASK, BrushSettings(size=48), "Mask brush")
    dabs = [0]
    stroke_timer = QTimer()
    stroke_timer.setInterval(STROKE_MS)

    def paint() -> None:
        i = dabs[0]
        x = 100 + 7 * (i % 115)  # a stroke never jumps back across the canvas
        y = 700 + 60 * ((i // 115) % 4)
        phase = Phase.PRESS if i % 115 == 0 else Phase.MOVE
        brush.handle(PointerEvent(x, y, phase))
        if i % 115 == 114:
            brush.handle(PointerEvent(x, y, Phase.RELEASE))
        dabs[0] += 1

    stroke_timer.timeout.connect(paint)
    previews = []
    controller.preview.connect(lambda *_: previews.append(1))
    done.clear()
    for seed in range(jobs_count):
        controller.generate(doc, GenerationParams(**{**params.__dict__, "seed": seed}))
    clock.start()
    started = time.perf_counter()
    heartbeat.start()
    stroke_timer.start()
    while len(done) < jobs_count:
        app.processEvents()
        time.sleep(0.001)
    wall = time.perf_counter() - started
    heartbeat.stop()
    stroke_timer.stop()
    controller.shutdown(60)
    if canvas is not None:
        canvas.close()
    ticks = lateness[1:]
    return {
        "jobs": jobs_count,
        "steps": steps,
        "gen_size": size,
        "wall_s": wall,
        "previews": len(previews),
        "dabs": dabs[0],
        "ticks": len(ticks),
        "max_ms": max(ticks),
        "p99_ms": percentile(ticks, 99),
        "p50_ms": percentile(ticks, 50),
        "canvas": canvas is not None,
    }


def preview_cost(app: QApplication, repeats: int = 40) -> dict:
    from app.document import Document
    from app.generation.jobs import Job, JobController
    from app.generation.request import GenerationParams, Workflow, build_request
    from app.generation.results import PreviewFrame, scale_preview
    from app.geometry import Rect

    doc = Document.blank(2048, 2048)
    controller = JobController(engine_factory=lambda: None)
    plan = build_request(doc, GenerationParams(model_path="x", workflow=Workflow.IMG2IMG))
    job = Job(1, plan, doc)
    job.started_at = time.monotonic()
    controller._jobs.append(job)
    controller._running = job
    rect = Rect(512, 512, 1024, 1024)
    small = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    frames = [scale_preview(small, 1024, 1024) for _ in range(2)]  # worker-thread work

    def show(index: int) -> float:
        frame = PreviewFrame(1, index + 1, repeats, rect, frames[index % 2], time.monotonic())
        start = time.perf_counter()
        controller._show_frame(frame)
        return (time.perf_counter() - start) * 1000

    handler = [show(i) for i in range(repeats)]
    result = {"handler_median_ms": statistics.median(handler), "handler_max_ms": max(handler[1:])}
    canvas = make_canvas(doc)
    if canvas is not None:
        canvas.actual_pixels()  # 100%: the preview covers 1024x1024 screen pixels
        for _ in range(3):
            app.processEvents()
        with_canvas = []
        for i in range(repeats):
            start = time.perf_counter()
            show(i)
            canvas.repaint()
            with_canvas.append((time.perf_counter() - start) * 1000)
        result["with_canvas_median_ms"] = statistics.median(with_canvas)
        result["with_canvas_max_ms"] = max(with_canvas[1:])
        result["canvas_zoom"] = getattr(canvas, "zoom", None)
        canvas.close()
    result["overlay_draw_ms"] = overlay_draw_cost(frames[0], repeats)
    start = time.perf_counter()
    for _ in range(repeats):
        scale_preview(small, 1024, 1024)
    result["worker_scale_ms"] = (time.perf_counter() - start) * 1000 / repeats
    controller._jobs.clear()
    controller._running = None
    return result


def overlay_draw_cost(pixels: np.ndarray, repeats: int) -> float:
    """What a canvas would pay to draw the preview as an overlay image (wrap + drawImage)
    instead of re-compositing its tiles: the cost the 4 ms target is about."""
    from PySide6.QtGui import QImage, QPainter

    target = QImage(1024, 768, QImage.Format.Format_ARGB32_Premultiplied)
    height, width = pixels.shape[:2]
    start = time.perf_counter()
    for _ in range(repeats):
        image = QImage(pixels.data, width, height, 4 * width, QImage.Format.Format_RGBA8888)
        painter = QPainter(target)
        painter.drawImage(0, 0, image)
        painter.end()
    return (time.perf_counter() - start) * 1000 / repeats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--size", type=int, default=256, help="generation size in pixels")
    parser.add_argument(
        "--canvas",
        choices=("both", "with", "without"),
        default="both",
        help="run the heartbeat with a canvas attached, without one, or both",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch intra-op threads for the engine (0 = torch's default, one per core)",
    )
    args = parser.parse_args(argv)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    app = QApplication.instance() or QApplication([])
    cost = preview_cost(app)
    print(
        "preview cost (1024x1024):",
        {k: round(v, 2) if isinstance(v, float) else v for k, v in cost.items()},
    )
    from tests.tiny_models import save_tiny_model

    global make_canvas
    real_canvas = make_canvas
    modes = {"both": (True, False), "with": (True,), "without": (False,)}[args.canvas]
    with tempfile.TemporaryDirectory() as tmp:
        model = save_tiny_model(Path(tmp) / "tiny")
        for with_canvas in modes:
            make_canvas = real_canvas if with_canvas else (lambda doc: None)
            beat = heartbeat_run(app, model, args.jobs, args.steps, args.size)
            shown = {k: round(v, 2) if isinstance(v, float) else v for k, v in beat.items()}
            print("heartbeat:", shown)
            ok = beat["max_ms"] <= 50 and beat["p99_ms"] <= 17
            print("  targets max <= 50 ms, p99 <= 17 ms:", "met" if ok else "NOT met")
    make_canvas = real_canvas
    return 0


if __name__ == "__main__":
    sys.exit(main())
