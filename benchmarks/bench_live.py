"""Live painting: stroke end -> live frame latency, and the UI heartbeat while live mode runs.

1. Latency: a 512x512 picture, live mode on a tiny model named like an LCM checkpoint (so live
   applies the LCM preset: 4 steps, CFG 1.5; strength 0.5 -> 2 denoising steps), a canvas
   attached. Each isolated stroke is painted with the real brush tool; the time from its release
   to the live picture being shown is split into
   - queue: release -> the engine starts the job (history signal, request build, queue, thread),
   - crop: the engine's crop/resize of the request (``EncodingCache.stats.prepare_s``),
   - encode: prompt embeddings + VAE encode of the source (cached when unchanged),
   - denoise: the denoising steps (from the pipeline call to the last step's callback),
   - setup: the rest of the engine before the pipeline call (model lookup, ControlNets,
     LoRAs, scheduler),
   - decode: VAE decode + the engine's paste (last step -> ``Engine.run`` returns),
   - paste: result layer built on the worker + delivery + shown on the UI thread.
   Overhead = total - denoise. Target: <= 30 ms at 512² on the tiny model. The worker's CPU
   time per stage is reported too: on a shared, loaded machine wall times include waiting for
   a core.
   ``--resolution native`` generates at the model's size (64² for the tiny model, scaled into the
   512² frame, as SD1.5 at 512² would); ``exact`` generates at 512².
2. Heartbeat: a 5 ms timer on the UI thread while a pen paints continuously (a dab every 16 ms,
   strokes of 40 dabs) and live mode renders after each stroke. Targets: max <= 50 ms,
   p99 <= 17 ms (as ``bench_responsiveness.py``).

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/bench_live.py [--strokes 10]
[--resolution native|exact|both] [--seconds 8]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtWidgets import QApplication

HEARTBEAT_MS = 5
DAB_MS = 16
SIZE = 512


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class TimedEngine:
    """The real engine, with timestamps: run entered, each step's end, run returned; and the
    time spent in the VAE decode and in the engine's paste (``_variant``)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.entered = 0.0
        self.steps: list[float] = []
        self.returned = 0.0
        self.vae_decode_s = 0.0
        self.variant_s = 0.0
        self._patched_vae = None
        variant = engine._variant

        def timed_variant(*args, **kwargs):
            started = time.perf_counter()
            try:
                return variant(*args, **kwargs)
            finally:
                self.variant_s += time.perf_counter() - started

        engine._variant = timed_variant

    def _patch_vae(self) -> None:
        for loaded in self.engine._models.values():
            vae = loaded.base.vae
            if vae is self._patched_vae:
                return
            decode = vae.decode

            def timed_decode(*args, decode=decode, **kwargs):
                started = time.perf_counter()
                try:
                    return decode(*args, **kwargs)
                finally:
                    self.vae_decode_s += time.perf_counter() - started

            vae.decode = timed_decode
            self._patched_vae = vae

    def run(self, request, on_preview=None, cancel=None):
        self.entered = time.perf_counter()
        self.cpu_entered = time.thread_time()
        self.steps = []
        self.cpu_steps: list[float] = []
        self.vae_decode_s = self.variant_s = 0.0
        self._patch_vae()

        def preview(step, total, image, box=None, region=None):
            self.steps.append(time.perf_counter())
            self.cpu_steps.append(time.thread_time())
            if on_preview is not None:
                on_preview(step, total, image, box, region)

        result = self.engine.run(request, preview, cancel)
        self.returned = time.perf_counter()
        self.cpu_returned = time.thread_time()
        return result


def wait(app: QApplication, until, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while not until():
        app.processEvents()
        time.sleep(0.0005)
        if time.perf_counter() > deadline:
            raise SystemExit("timed out waiting for live mode")


def setup(model: Path, resolution: str):
    from app.document import Document
    from app.generation.jobs import JobController
    from app.generation.request import ResolutionPolicy
    from app.generation.session import GenerationSession, ModelChoice
    from inference.api import EngineSettings
    from inference.engine import Engine

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (SIZE, SIZE, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    doc = Document.from_rgba(pixels)
    engine = Engine(EngineSettings(device="cpu"), reserve_ui_core=True)  # as the GUI builds it
    timed = TimedEngine(engine)
    jobs = JobController(lambda: timed)
    session = GenerationSession(doc, jobs)
    policy = ResolutionPolicy.EXACT if resolution == "exact" else ResolutionPolicy.NATIVE
    session.update(
        prompt="a watercolour landscape",
        model=ModelChoice(str(model), model.name, None, 64),
        strength=0.5,
        random_seed=False,
        seed=5,
        resolution=policy,
    )
    return doc, engine, timed, jobs, session


def make_canvas(doc):
    from widgets.canvas import CanvasView

    canvas = CanvasView()
    canvas.resize(1024, 768)
    canvas.set_document(doc)
    canvas.show()
    return canvas


def latency_run(app: QApplication, model: Path, strokes: int, resolution: str) -> dict:
    from app.tools import BrushSettings, BrushTarget, BrushTool, Phase, PointerEvent

    doc, engine, timed, jobs, session = setup(model, resolution)
    canvas = make_canvas(doc)
    live = session.live
    frames: list[int] = []
    live.frame_shown.connect(frames.append)
    live.start()
    wait(app, lambda: len(frames) >= 1)  # model load and first frame: not measured
    brush = BrushTool(doc, BrushTarget.ACTIVE, BrushSettings(size=24, color=(200, 30, 30)), "Pen")
    rows = []
    for index in range(strokes + 1):
        y = 40 + 40 * (index % 11)
        brush.handle(PointerEvent(60, y, Phase.PRESS))
        for x in range(66, 300, 6):
            brush.handle(PointerEvent(x, y, Phase.MOVE))
        count = len(frames)
        ended = time.perf_counter()
        brush.handle(PointerEvent(300, y, Phase.RELEASE))
        wait(app, lambda count=count: len(frames) > count)
        frame = live.frame
        stats = engine.cache.stats
        assert frame is not None and timed.steps
        total = frame.shown_at - ended
        denoise = timed.steps[-1] - stats.encoded_at
        row = {
            "total_ms": total * 1000,
            "queue_ms": (timed.entered - ended) * 1000,
            "crop_ms": stats.prepare_s * 1000,
            "setup_ms": (stats.encoded_at - stats.encode_s - timed.entered - stats.prepare_s)
            * 1000,
            "encode_ms": stats.encode_s * 1000,
            "denoise_ms": denoise * 1000,
            "decode_ms": (timed.returned - timed.steps[-1]) * 1000,
            "of_which_vae_decode_ms": timed.vae_decode_s * 1000,
            "of_which_engine_paste_ms": timed.variant_s * 1000,
            "paste_ms": (frame.shown_at - timed.returned) * 1000,
            # worker CPU time (what the stages cost on an idle core): the whole run, and the
            # run without its denoising steps
            "worker_cpu_ms": (timed.cpu_returned - timed.cpu_entered) * 1000,
            "encode_cpu_ms": stats.encode_cpu_s * 1000,
            "decode_cpu_ms": (timed.cpu_returned - timed.cpu_steps[-1]) * 1000,
            "steps": len(timed.steps),
        }
        row["overhead_ms"] = row["total_ms"] - row["denoise_ms"]
        if index:  # the first stroke pays for the first source encode of this size
            rows.append(row)
        pause = time.perf_counter()
        wait(app, lambda pause=pause: time.perf_counter() - pause > 0.15)
    live.stop()
    jobs.shutdown(60)
    canvas.close()
    keys = [k for k in rows[0] if k.endswith("_ms")]
    summary = {k: round(statistics.median(r[k] for r in rows), 1) for k in keys}
    summary["overhead_max_ms"] = round(max(r["overhead_ms"] for r in rows), 1)
    summary["steps"] = rows[0]["steps"]
    summary["resolution"] = resolution
    summary["strokes"] = len(rows)
    summary["cache"] = {
        "prompt_hits": engine.cache.stats.prompt_hits,
        "source_misses": engine.cache.stats.source_misses,
    }
    return summary


def heartbeat_run(app: QApplication, model: Path, seconds: float, resolution: str) -> dict:
    from app.tools import BrushSettings, BrushTarget, BrushTool, Phase, PointerEvent

    doc, _engine, _timed, jobs, session = setup(model, resolution)
    canvas = make_canvas(doc)
    live = session.live
    frames: list[int] = []
    live.frame_shown.connect(frames.append)
    live.start()
    wait(app, lambda: len(frames) >= 1)
    brush = BrushTool(doc, BrushTarget.ACTIVE, BrushSettings(size=24, color=(30, 30, 200)), "Pen")
    lateness: list[float] = []
    clock = QElapsedTimer()
    last = [0.0]
    heartbeat = QTimer()
    heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
    heartbeat.setInterval(HEARTBEAT_MS)

    stamps: list[float] = []

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        lateness.append(max(0.0, now - last[0] - HEARTBEAT_MS))
        stamps.append(time.perf_counter())
        last[0] = now

    heartbeat.timeout.connect(tick)
    import threading
    from collections import Counter

    from bench_responsiveness import StackSampler

    sampler = StackSampler(threading.main_thread().ident)
    sampler.start()
    dabs = [0]
    pen = QTimer()
    pen.setTimerType(Qt.TimerType.PreciseTimer)
    pen.setInterval(DAB_MS)

    def paint() -> None:
        i = dabs[0]
        x = 40 + 10 * (i % 40)
        y = 30 + 23 * ((i // 40) % 20)
        phase = Phase.PRESS if i % 40 == 0 else Phase.MOVE
        brush.handle(PointerEvent(x, y, phase))
        if i % 40 == 39:
            brush.handle(PointerEvent(x, y, Phase.RELEASE))
        dabs[0] += 1

    pen.timeout.connect(paint)
    before = len(frames)
    clock.start()
    heartbeat.start()
    pen.start()
    started = time.perf_counter()
    wait(app, lambda: time.perf_counter() - started > seconds, timeout=seconds + 60)
    pen.stop()
    heartbeat.stop()
    sampler.stop()
    stalls = []
    for at, late in zip(stamps[1:], lateness[1:], strict=True):
        if late > 20:
            where = Counter(sampler.during(at - late / 1000, at)).most_common(1)
            stalls.append((round(late, 1), where[0][0] if where else "(no sample: GIL held)"))
    submitted = live.jobs_submitted
    live.stop()
    jobs.shutdown(60)
    canvas.close()
    ticks = lateness[1:]
    return {
        "resolution": resolution,
        "seconds": seconds,
        "dabs": dabs[0],
        "strokes": dabs[0] // 40,
        "live_jobs": submitted,
        "frames": len(frames) - before,
        "ticks": len(ticks),
        "max_ms": round(max(ticks), 1),
        "p99_ms": round(percentile(ticks, 99), 1),
        "p50_ms": round(percentile(ticks, 50), 2),
        "stalls_over_20ms": stalls[:8],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strokes", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--resolution", choices=("native", "exact", "both"), default="both")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    from tests.tiny_models import save_tiny_single_file

    resolutions = ("native", "exact") if args.resolution == "both" else (args.resolution,)
    with tempfile.TemporaryDirectory() as tmp:
        model = save_tiny_single_file(Path(tmp) / "tiny-lcm.safetensors")
        for resolution in resolutions:
            result = latency_run(app, model, args.strokes, resolution)
            print("LATENCY " + json.dumps(result))
        for resolution in resolutions:
            result = heartbeat_run(app, model, args.seconds, resolution)
            print("HEARTBEAT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
