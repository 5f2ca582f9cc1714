"""Classic (no-model) inpainting quality and speed: our fill vs OpenCV Telea and Navier-Stokes.

Run by hand (needs scikit-image from the dev extra, for its sample photos):

    python benchmarks/bench_classic.py [--size 512] [--repeats 3] [--per-image] [--seed 0]

Real photos that ship with scikit-image are cut square and resized to ``--size``; each gets four
holes: a 3 px scratch, an 18 px thick stroke, an elliptical blob and a large rectangle. The hole
is filled by each method and compared with the original photo inside the hole only (PSNR over the
hole's pixels, mean SSIM map over the hole's pixels). Then the speed line: a 512x512 hole in a
768x768 photo through the real engine path (``run_classic``), best and median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")
HOLES = ("scratch", "stroke", "blob", "rectangle")
METHODS = ("fill", "telea", "ns")


def load_photo(name: str, size: int) -> np.ndarray:
    from skimage import data

    photo = getattr(data, name)()[..., :3]
    h, w = photo.shape[:2]
    side = min(h, w)
    y, x = (h - side) // 2, (w - side) // 2
    square = np.ascontiguousarray(photo[y : y + side, x : x + side])
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)


def make_hole(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A bool hole of ``kind``, placed at random (seeded) so photos get different spots."""
    mask = np.zeros((size, size), np.uint8)
    s = size / 512

    def point() -> tuple[int, int]:
        return int(rng.uniform(0.15, 0.85) * size), int(rng.uniform(0.15, 0.85) * size)

    if kind == "scratch":
        cv2.polylines(
            mask, [np.array([point() for _ in range(3)])], False, 255, max(1, round(3 * s))
        )
    elif kind == "stroke":
        cv2.polylines(mask, [np.array([point() for _ in range(3)])], False, 255, round(18 * s))
    elif kind == "blob":
        axes = (round(rng.uniform(35, 55) * s), round(rng.uniform(25, 40) * s))
        cv2.ellipse(mask, point(), axes, rng.uniform(0, 180), 0, 360, 255, -1)
    else:
        w, h = round(rng.uniform(100, 150) * s), round(rng.uniform(100, 150) * s)
        x, y = int(rng.uniform(0.1, 0.9) * (size - w)), int(rng.uniform(0.1, 0.9) * (size - h))
        mask[y : y + h, x : x + w] = 255
    return mask > 0


def scores(result: np.ndarray, original: np.ndarray, hole: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import structural_similarity

    diff = result.astype(np.float64)[hole] - original.astype(np.float64)[hole]
    psnr = 10 * np.log10(255.0**2 / max(float(np.mean(diff**2)), 1e-10))
    _, ssim_map = structural_similarity(
        original, result, channel_axis=-1, data_range=255, full=True
    )
    return psnr, float(ssim_map[hole].mean())


def quality(size: int, per_image: bool, seed: int) -> None:
    from inference.classic import inpaint_region

    table: dict[tuple[str, str], list[tuple[float, float]]] = {}
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for index, name in enumerate(PHOTOS):
        photo = load_photo(name, size)
        rng = np.random.default_rng(seed + index)
        for kind in HOLES:
            hole = make_hole(kind, size, rng)
            row = []
            for method in METHODS:
                start = time.perf_counter()
                result = inpaint_region(photo, hole, method, 3)
                times[method].append(time.perf_counter() - start)
                assert np.array_equal(result[~hole], photo[~hole])
                psnr, ssim = scores(result, photo, hole)
                table.setdefault((kind, method), []).append((psnr, ssim))
                row.append(f"{method} {psnr:5.2f} dB {ssim:.3f}")
            if per_image:
                print(f"{name:22s} {kind:9s} {hole.sum():6d} px  " + "  ".join(row))
    print()
    print("| hole | " + " | ".join(f"{m} PSNR / SSIM" for m in METHODS) + " | fill − telea |")
    print("| --- |" + " --- |" * (len(METHODS) + 1))
    for kind in (*HOLES, "average"):
        kinds = HOLES if kind == "average" else (kind,)
        cells, means = [], {}
        for method in METHODS:
            values = [v for k in kinds for v in table[(k, method)]]
            means[method] = float(np.mean([p for p, _ in values]))
            cells.append(f"{means[method]:.2f} dB / {np.mean([s for _, s in values]):.3f}")
        delta = means["fill"] - means["telea"]
        label = f"**{kind}**" if kind == "average" else kind
        print(f"| {label} | " + " | ".join(cells) + f" | {delta:+.2f} dB |")
    print()
    print(
        "mean time per hole: "
        + ", ".join(f"{m} {1000 * statistics.mean(t):.0f} ms" for m, t in times.items())
    )


def speed(repeats: int) -> None:
    from inference.api import Mode, Request
    from inference.classic import run_classic

    photo = load_photo("astronaut", 768)
    mask = np.zeros((768, 768), np.uint8)
    mask[128:640, 128:640] = 255
    for model in ("classic:fill", "classic:telea"):
        runs, cpu = [], []
        for _ in range(repeats):
            request = Request(Mode.INPAINT, image=photo, mask=mask, model_path=model)
            start, start_cpu = time.perf_counter(), time.process_time()
            run_classic(request)
            runs.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        print(
            f"512x512 hole in 768x768, {model}: wall best {min(runs):.2f} s, "
            f"median {statistics.median(runs):.2f} s; CPU time (all threads) best "
            f"{min(cpu):.2f} s ({repeats} runs)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--per-image", action="store_true", help="print every photo x hole")
    parser.add_argument("--seed", type=int, default=0, help="where the holes go (0: tuning set)")
    parser.add_argument("--speed-only", action="store_true")
    args = parser.parse_args()
    print(f"nproc {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} (1 min)")
    if not args.speed_only:
        quality(args.size, args.per_image, args.seed)
    speed(args.repeats)
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
