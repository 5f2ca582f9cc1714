"""Smooth (harmonic) hole filling: the membrane through the known pixels around the hole.

Each hole pixel's value minimises the squared gradient over the hole, i.e. solves Laplace's
equation with the rim as boundary. It never overshoots the rim's values (unlike a biharmonic fill,
which extrapolates gradients and leaves dark or bright blobs in textured holes) and has no
streaks (unlike Telea's marching, whose fronts meet in an X). Solved per channel by conjugate
gradients on ``-L`` restricted to the hole, coarse to fine so that a large hole needs few
iterations at full resolution; each step is one ``cv2.filter2D`` over the hole's bounding box.
Pure numpy/OpenCV.
"""

from __future__ import annotations

import cv2
import numpy as np

_NEGATIVE_LAPLACIAN = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float32)
MARGIN = 2  # rim kept fixed around the hole (the stencil reaches one pixel; one spare)
COARSE_DEPTH = 6.0  # holes at most this many pixels deep are solved at full resolution only
ITERATIONS_FINE = 80
ITERATIONS_COARSEST = 400
DEEP = 24.0  # at levels where the hole is deeper than this, few iterations are enough
ITERATIONS_DEEP = 15


def _negative_laplacian(image: np.ndarray) -> np.ndarray:
    return cv2.filter2D(image, cv2.CV_32F, _NEGATIVE_LAPLACIAN, borderType=cv2.BORDER_REPLICATE)


def _depth(hole: np.ndarray) -> float:
    """Distance from the deepest hole pixel to the nearest known pixel."""
    mask = np.where(hole, 255, 0).astype(np.uint8)
    return float(cv2.distanceTransform(mask, cv2.DIST_L2, 3).max())


def _solve(region: np.ndarray, hole: np.ndarray, iterations: int) -> np.ndarray:
    """CG on -L x = L known over the hole, from the hole values already in ``region``."""
    index = np.nonzero(hole)
    scratch = np.zeros_like(region)

    def apply(values: np.ndarray) -> np.ndarray:
        scratch[index] = values
        return _negative_laplacian(scratch)[index]

    def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->j", a, b)

    known = region.copy()
    known[index] = 0
    rhs = -_negative_laplacian(known)[index]
    x = region[index].astype(np.float32)
    residual = rhs - apply(x)
    direction = residual.copy()
    rs_old = dot(residual, residual)
    tolerance = 1e-4 * len(x)
    for _ in range(iterations):
        if float(rs_old.max()) < tolerance:
            break
        a_dir = apply(direction)
        alpha = rs_old / np.maximum(dot(direction, a_dir), 1e-12)
        x += direction * alpha
        residual -= a_dir * alpha
        rs_new = dot(residual, residual)
        direction = residual + direction * (rs_new / np.maximum(rs_old, 1e-12))
        rs_old = rs_new
    out = region.copy()
    out[index] = x
    return out


def _fill(region: np.ndarray, hole: np.ndarray, iterations: int = ITERATIONS_FINE) -> np.ndarray:
    """``region`` (float32, hole values = initial guess) with the hole solved; recursive."""
    h, w = hole.shape
    depth = _depth(hole)
    if depth <= COARSE_DEPTH or min(h, w) < 4 * MARGIN + 4:
        return _solve(region, hole, ITERATIONS_COARSEST)
    size = ((w + 1) // 2, (h + 1) // 2)
    known = (~hole).astype(np.float32)
    weighted = cv2.resize(region * known[..., None], size, interpolation=cv2.INTER_AREA)
    coverage = cv2.resize(known, size, interpolation=cv2.INTER_AREA)
    small_hole = coverage < 0.999
    guess = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
    small = np.where(
        small_hole[..., None], guess, weighted / np.maximum(coverage, 1e-6)[..., None]
    ).astype(np.float32)
    # The rim must be fixed: where the hole reaches it at this scale, the guess is held there.
    small_hole[:MARGIN] = small_hole[-MARGIN:] = False
    small_hole[:, :MARGIN] = small_hole[:, -MARGIN:] = False
    coarse = _fill(small, small_hole, min(2 * iterations, ITERATIONS_COARSEST))
    up = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
    start = np.where(hole[..., None], up, region).astype(np.float32)
    # Deep holes are smooth inside: the upsampled solution only needs its fine detail settled.
    return _solve(start, hole, iterations if depth <= DEEP else ITERATIONS_DEEP)


def push_pull_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """float32: ``image`` with the hole set to a blurry average of the nearest known pixels.

    Masked averages are pushed down a pyramid until nothing is missing, then pulled back up.
    Cheap (a few ``cv2.resize``); a starting guess, not a result. Needs one known pixel.
    """
    known = (~hole).astype(np.float32)
    values = image.astype(np.float32) * known[..., None]
    if known.all():
        return values
    h, w = hole.shape
    size = ((w + 1) // 2, (h + 1) // 2)
    small_weight = cv2.resize(known, size, interpolation=cv2.INTER_AREA)
    small_values = cv2.resize(values, size, interpolation=cv2.INTER_AREA)
    small_hole = small_weight <= 0
    small = small_values / np.maximum(small_weight, 1e-6)[..., None]
    if small_hole.any() and (h, w) != (1, 1):
        small = push_pull_fill(small, small_hole)
    up = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(hole[..., None], up, values).astype(np.float32)


def harmonic_fill(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """float32 HxWx3: ``rgb`` with the ``hole`` (bool) pixels replaced by the harmonic fill."""
    height, width = hole.shape
    ys, xs = np.nonzero(hole)
    out = rgb[..., :3].astype(np.float32)
    if len(ys) == 0:
        return out
    pad = 2 * MARGIN
    y0, y1 = ys.min() - pad, ys.max() + 1 + pad
    x0, x1 = xs.min() - pad, xs.max() + 1 + pad
    # Outside the image the region is padded by reflection of a rough fill, held fixed.
    rough = push_pull_fill(out, hole)
    top, left = max(0, -y0), max(0, -x0)
    bottom, right = max(0, y1 - height), max(0, x1 - width)
    cy0, cy1, cx0, cx1 = max(0, y0), min(height, y1), max(0, x0), min(width, x1)
    region = cv2.copyMakeBorder(
        rough[cy0:cy1, cx0:cx1], top, bottom, left, right, cv2.BORDER_REFLECT
    )
    region_hole = np.zeros(region.shape[:2], bool)
    region_hole[top : top + cy1 - cy0, left : left + cx1 - cx0] = hole[cy0:cy1, cx0:cx1]
    region_hole[:MARGIN] = region_hole[-MARGIN:] = False
    region_hole[:, :MARGIN] = region_hole[:, -MARGIN:] = False
    solved = _fill(region, region_hole)
    inner = solved[top : top + cy1 - cy0, left : left + cx1 - cx0]
    window = out[cy0:cy1, cx0:cx1]
    window_hole = hole[cy0:cy1, cx0:cx1]
    window[window_hole] = inner[window_hole]
    return out
