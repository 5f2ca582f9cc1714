"""How long building an outpaint request takes (it runs on the UI thread), by frame size.

    python benchmarks/bench_outpaint.py

For each frame side: a photo of side x side, a frame of the same size half past its right edge;
times ``build_request`` (composite + pre-fill + seam mask) and ``inference.outpaint.prepare``
alone, median of 5, against the same request without a frame (an inpaint of the same area) as
the baseline in the same process.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.document import Document
from app.generation.request import GenerationParams, build_request
from app.geometry import Rect
from inference.outpaint import prepare


def median_seconds(run, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(side: int, rng: np.random.Generator) -> None:
    pixels = rng.integers(0, 256, (side, side, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    doc = Document.from_rgba(pixels)
    framed = GenerationParams(seed=1, frame=Rect(side // 2, 0, side, side))
    mask = np.full((side, side // 2), 255, np.uint8)
    doc.mask_layer.raster.write(Rect(side // 2, 0, side // 2, side), mask)
    plain = GenerationParams(seed=1)
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[:, : side // 2] = pixels[:, side // 2 :]
    t_frame = median_seconds(lambda: build_request(doc, framed))
    t_prepare = median_seconds(lambda: prepare(rgba, 1))
    t_plain = median_seconds(lambda: build_request(doc, plain))
    print(
        f"{side:5d}  {t_frame * 1000:18.0f} ms  {t_prepare * 1000:6.0f} ms  "
        f"{t_plain * 1000:26.0f} ms  {t_frame / t_plain:5.1f}x"
    )


def main() -> None:
    rng = np.random.default_rng(0)
    print("side  build_request(frame)  prepare()  build_request(mask, no frame)  ratio")
    for side in (512, 1024, 2048):
        measure(side, rng)


if __name__ == "__main__":
    main()
