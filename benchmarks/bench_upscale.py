"""Tiled upscale-and-refine of a 4096x4096 picture: peak memory and time against one tile.

Run by hand (CPU is fine; it uses the tiny random-weight model built in code):

    python benchmarks/bench_upscale.py [--size 4096] [--scale 2] [--tile 512] [--overlap 64]

The picture is a ``size/scale`` square gradient with noise, upscaled by Lanczos to ``size`` and
refined tile by tile through ``Engine.run`` (the path the window, the CLI and the remote engine
use). Targets (issue 15):

- peak memory <= 1.5 x the upscaled picture's RGBA bytes + one tile's working set, measured two
  ways: tracemalloc (numpy and Python allocations, source included) and the process's peak RSS
  over its RSS before the job (``/proc/self/clear_refs`` resets the peak; Linux only);
- time ~ (number of tiles) x (one tile's time), within 10%: one tile is timed alone (a
  tile-sized img2img through the same engine) before and after the full run, in wall time and in
  the process's CPU time (steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MB = 1024 * 1024


def rss_bytes(field: str = "VmRSS") -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def picture(side: int):
    import numpy as np

    rng = np.random.default_rng(0)
    x = np.linspace(20, 230, side, dtype=np.float32)
    rgb = np.stack(np.broadcast_arrays(x[None, :], x[:, None], (x[None, :] + x[:, None]) / 2), -1)
    rgb = rgb + rng.normal(0, 6, rgb.shape).astype(np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="side of the upscaled picture")
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--strength", type=float, default=0.25)
    parser.add_argument("--tile-repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", help="a real model instead of the tiny one")
    args = parser.parse_args()

    from inference.api import EngineSettings, Mode, Request, UpscaleSpec
    from inference.engine import Engine
    from inference.tiled_refine import plan_tiles
    from tests.tiny_models import save_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(save_tiny_model(Path(tmp) / "tiny"))
        inside: list[tuple[float, float]] = []  # (wall, CPU) of each tile run inside the job

        class TimedEngine(Engine):
            def run(self, request, on_preview=None, cancel=None):  # type: ignore[no-untyped-def]
                if request.upscale is not None:
                    return super().run(request, on_preview, cancel)
                start, cpu = time.perf_counter(), time.process_time()
                try:
                    return super().run(request, on_preview, cancel)
                finally:
                    inside.append((time.perf_counter() - start, time.process_time() - cpu))

        engine = TimedEngine(EngineSettings(device=args.device))
        common = dict(
            mode=Mode.IMG2IMG,
            prompt="a cat",
            steps=args.steps,
            strength=args.strength,
            seed=1,
            model_path=model,
        )
        tile_image = picture(args.tile)

        shifts = iter(range(1, 1_000_000))

        def one_tile() -> tuple[float, float]:
            # a different picture each time, as each tile of the job is: the engine's cache
            # (inference/live_cache.py) would otherwise reuse the encoded source of the last run
            import numpy as np

            image = np.roll(tile_image, next(shifts), axis=1)
            request = Request(image=image, model_size=args.tile, **common)  # type: ignore[arg-type]
            start, cpu = time.perf_counter(), time.process_time()
            engine.run(request)
            return time.perf_counter() - start, time.process_time() - cpu

        one_tile()  # load the model, warm the allocator
        tracemalloc.start()
        base_traced = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        rss_before = rss_bytes()
        peak_reset = reset_peak_rss()
        tile_times = [one_tile() for _ in range(args.tile_repeats)]
        tile_traced = tracemalloc.get_traced_memory()[1] - base_traced
        tile_rss = rss_bytes("VmHWM") - rss_before if peak_reset else 0

        side = args.size
        source_side = round(side / args.scale)
        source = picture(source_side)  # the input: made first, its bytes counted below
        spec = UpscaleSpec(scale=args.scale, refine=True, tile=args.tile, overlap=args.overlap)
        request = Request(image=source, upscale=spec, **common)  # type: ignore[arg-type]
        plan = plan_tiles(side, side, args.tile, args.overlap)
        steps_seen: list[int] = []
        tracemalloc.reset_peak()
        base_traced = tracemalloc.get_traced_memory()[0]
        rss_before = rss_bytes()
        reset_peak_rss()
        inside.clear()
        start, cpu = time.perf_counter(), time.process_time()
        result = engine.run(request, lambda s, t, i, b=None, r=None: steps_seen.append(s))
        total, total_cpu = time.perf_counter() - start, time.process_time() - cpu
        job_traced = tracemalloc.get_traced_memory()[1] - base_traced + source.nbytes
        job_rss = rss_bytes("VmHWM") - rss_before + source.nbytes if peak_reset else 0
        out = result.variants[0].image
        del result, source, request
        job_tiles = list(inside)
        tile_times += [one_tile() for _ in range(args.tile_repeats)]
        tracemalloc.stop()

    rgba = side * side * 4
    print(
        f"picture {source_side}^2 x{args.scale:g} -> {out.shape[1]}x{out.shape[0]}, "
        f"{len(plan)} tiles of {args.tile} px (overlap {args.overlap}), "
        f"{args.steps} steps at strength {args.strength} (steps per tile: "
        f"{max(steps_seen) // len(plan) if steps_seen else 0})"
    )
    print(f"RGBA bytes of the picture: {rgba / MB:.1f} MB; 1.5x = {1.5 * rgba / MB:.1f} MB")
    print(
        f"one tile's working set: tracemalloc {tile_traced / MB:.1f} MB, "
        f"RSS peak {tile_rss / MB:.1f} MB"
    )
    for label, peak, tile_set in (
        ("tracemalloc", job_traced, tile_traced),
        ("RSS", job_rss, tile_rss),
    ):
        budget = 1.5 * rgba + tile_set
        verdict = "OK" if peak <= budget else "OVER"
        print(
            f"job peak ({label}): {peak / MB:.1f} MB vs budget {budget / MB:.1f} MB "
            f"= {peak / budget:.2f} of it  {verdict}"
        )
    for label, index, job_time in (("wall", 0, total), ("CPU", 1, total_cpu)):
        times = [t[index] for t in tile_times]
        tile_time = statistics.median(times)
        expected = len(plan) * tile_time
        ratio = job_time / expected
        verdict = "OK" if abs(ratio - 1) <= 0.10 else "OFF"
        shown = ", ".join(f"{t:.3f}" for t in times)
        print(f"one tile ({label}): median {tile_time:.3f} s of {shown}")
        print(
            f"job ({label}): {job_time:.1f} s vs {len(plan)} x {tile_time:.3f} s = "
            f"{expected:.1f} s, ratio {ratio:.3f}  {verdict}"
        )
    # the same check against the tiles as they ran inside the job (same load at the same time):
    # what the job spends beyond its tiles is the tiling's own cost
    for label, index, job_time in (("wall", 0, total), ("CPU", 1, total_cpu)):
        spent = sum(t[index] for t in job_tiles)
        print(
            f"job ({label}) vs its own {len(job_tiles)} tile runs: {job_time:.1f} s vs "
            f"{spent:.1f} s, ratio {job_time / spent:.3f}; tiling overhead "
            f"{job_time - spent:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
