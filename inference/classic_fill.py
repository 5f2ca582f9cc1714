"""The classic engine's default fill: a smooth membrane inside, OpenCV FSR near the rim.

Telea and Navier-Stokes march inward from the rim, so fronts meeting in a large hole leave
X-shaped streaks. This fill instead:

1. solves the smooth harmonic membrane through the known pixels for the whole hole
   (``classic_smooth``: no streaks, no overshoot, coarse to fine);
2. re-fills the hole's outer band (up to ``BAND`` px from known pixels) with OpenCV contrib's
   frequency-selective reconstruction (FSR, ``cv2.xphoto.inpaint``), which continues edges and
   texture from the surroundings; the smooth surface deeper inside serves it as known context;
3. blends the two by depth: pure FSR up to ``FULL_FSR`` px, the smooth surface from ``BAND`` on
   (in PSNR, FSR wins near known pixels and the membrane wins deeper in: bench_classic.py).

Thin holes (scratches, strokes) are thus pure FSR, large ones keep detail at the rim and a smooth
fill in the middle. ``benchmarks/bench_classic.py`` measures it against Telea and NS
(docs/benchmarks.md). Without the contrib module (plain opencv-python) step 2 is skipped.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from inference.classic_smooth import harmonic_fill

log = logging.getLogger(__name__)

FULL_FSR = 6.0  # px from the nearest known pixel where FSR is used alone
BAND = 12.0  # px beyond which the smooth surface is used alone
MIN_SIDE = 8  # smaller pictures get Telea
FSR_MIN_SIDE = 32  # FSR's blocks need room: on smaller pictures it leaves wrong colours
FSR_CONTEXT = 32  # px of surroundings around each tile that FSR gets to look at
TILE = 128  # FSR runs tile by tile, in parallel


class NothingToCopyError(ValueError):
    """The hole covers every pixel: there is nothing to fill it from."""


def has_fsr() -> bool:
    xphoto = getattr(cv2, "xphoto", None)
    return xphoto is not None and hasattr(xphoto, "INPAINT_FSR_FAST")


def _fsr_tile(
    image: np.ndarray, missing: np.ndarray, core: tuple[int, int, int, int]
) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """FSR of the ``missing`` pixels inside ``core`` (y0, y1, x0, x1), with context around it."""
    y0, y1, x0, x1 = core
    height, width = missing.shape
    wy0, wy1 = max(0, y0 - FSR_CONTEXT), min(height, y1 + FSR_CONTEXT)
    wx0, wx1 = max(0, x0 - FSR_CONTEXT), min(width, x1 + FSR_CONTEXT)
    window = np.ascontiguousarray(image[wy0:wy1, wx0:wx1])
    todo = np.zeros(window.shape[:2], bool)
    todo[y0 - wy0 : y1 - wy0, x0 - wx0 : x1 - wx0] = missing[y0:y1, x0:x1]
    known = np.where(todo, 0, 255).astype(np.uint8)
    filled = np.zeros_like(window)
    cv2.xphoto.inpaint(window, known, filled, cv2.xphoto.INPAINT_FSR_FAST)
    return core, filled[y0 - wy0 : y1 - wy0, x0 - wx0 : x1 - wx0]


def _fsr(image: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """FSR of the ``missing`` pixels, tile by tile on all cores (OpenCV releases the GIL)."""
    ys, xs = np.nonzero(missing)
    cores = []
    for y0 in range(int(ys.min()), int(ys.max()) + 1, TILE):
        for x0 in range(int(xs.min()), int(xs.max()) + 1, TILE):
            y1, x1 = min(y0 + TILE, missing.shape[0]), min(x0 + TILE, missing.shape[1])
            if missing[y0:y1, x0:x1].any():
                cores.append((y0, y1, x0, x1))
    out = image.copy()
    workers = min(len(cores), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for (y0, y1, x0, x1), filled in pool.map(lambda c: _fsr_tile(image, missing, c), cores):
            out[y0:y1, x0:x1] = filled
    return out


def fill(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``rgb`` (uint8 HxWx3) with the ``hole`` (bool HxW) pixels filled; others byte-identical.

    Raises NothingToCopyError when every pixel is in the hole.
    """
    rgb = np.ascontiguousarray(rgb[..., :3])
    if not hole.any():
        return rgb.copy()
    if hole.all():
        raise NothingToCopyError("the mask covers every pixel: nothing to fill the hole from")
    if min(hole.shape) < MIN_SIDE:
        return cv2.inpaint(rgb, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
    smooth = harmonic_fill(rgb, hole)
    result = smooth
    if has_fsr() and min(hole.shape) >= FSR_MIN_SIDE:
        depth = cv2.distanceTransform(np.where(hole, 255, 0).astype(np.uint8), cv2.DIST_L2, 3)
        band = hole & (depth <= BAND)
        context = np.clip(np.rint(smooth), 0, 255).astype(np.uint8)
        detailed = _fsr(context, band).astype(np.float32)
        weight = np.clip((BAND - depth) / (BAND - FULL_FSR), 0.0, 1.0)[..., None]
        result = detailed * weight + smooth * (1.0 - weight)
    elif not has_fsr():
        log.info("OpenCV contrib (xphoto) is missing: classic fill without FSR detail")
    out = rgb.copy()
    out[hole] = np.clip(np.rint(result[hole]), 0, 255).astype(np.uint8)
    return out
