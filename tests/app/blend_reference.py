"""An independent, per-pixel scalar reference of W3C Compositing and Blending Level 1.

Written straight from the spec's pseudo-code with Python floats, one pixel at a time, sharing no
code with app/blend.py or app/compose.py, so the tests compare two implementations.

A stack is a list of entries bottom first: ``("layer", mode, opacity, rgba_array)`` where the
array is straight uint8 (h, w, 4) over the whole canvas, or ``("group", mode, opacity, children)``
with ``mode == "pass-through"`` for a non-isolated group.
"""

from __future__ import annotations

import math

import numpy as np


def _separable(mode: str, cb: float, cs: float) -> float:
    if mode == "svg:multiply":
        return cb * cs
    if mode == "svg:screen":
        return cb + cs - cb * cs
    if mode == "svg:overlay":
        return _separable("svg:hard-light", cs, cb)
    if mode == "svg:darken":
        return min(cb, cs)
    if mode == "svg:lighten":
        return max(cb, cs)
    if mode == "svg:color-dodge":
        if cb == 0:
            return 0.0
        if cs == 1:
            return 1.0
        return min(1.0, cb / (1 - cs))
    if mode == "svg:color-burn":
        if cb == 1:
            return 1.0
        if cs == 0:
            return 0.0
        return 1 - min(1.0, (1 - cb) / cs)
    if mode == "svg:hard-light":
        if cs <= 0.5:
            return _separable("svg:multiply", cb, 2 * cs)
        return _separable("svg:screen", cb, 2 * cs - 1)
    if mode == "svg:soft-light":
        if cs <= 0.5:
            return cb - (1 - 2 * cs) * cb * (1 - cb)
        d = ((16 * cb - 12) * cb + 4) * cb if cb <= 0.25 else math.sqrt(cb)
        return cb + (2 * cs - 1) * (d - cb)
    if mode == "svg:difference":
        return abs(cb - cs)
    if mode == "svg:exclusion":
        return cb + cs - 2 * cb * cs
    raise KeyError(mode)


def _lum(c):
    return 0.3 * c[0] + 0.59 * c[1] + 0.11 * c[2]


def _clip_color(c):
    lum = _lum(c)
    n, x = min(c), max(c)
    if n < 0:
        c = [lum + (v - lum) * lum / (lum - n) for v in c]
    if x > 1:
        c = [lum + (v - lum) * (1 - lum) / (x - lum) for v in c]
    return c


def _set_lum(c, lum):
    d = lum - _lum(c)
    return _clip_color([v + d for v in c])


def _sat(c):
    return max(c) - min(c)


def _set_sat(c, s):
    order = sorted(range(3), key=lambda i: c[i])  # min, mid, max channel indices
    lo, mid, hi = order
    out = [0.0, 0.0, 0.0]
    if c[hi] > c[lo]:
        out[mid] = (c[mid] - c[lo]) * s / (c[hi] - c[lo])
        out[hi] = s
    return out


def _non_separable(mode: str, cb, cs):
    if mode == "svg:hue":
        return _set_lum(_set_sat(cs, _sat(cb)), _lum(cb))
    if mode == "svg:saturation":
        return _set_lum(_set_sat(cb, _sat(cs)), _lum(cb))
    if mode == "svg:color":
        return _set_lum(cs, _lum(cb))
    if mode == "svg:luminosity":
        return _set_lum(cb, _lum(cs))
    raise KeyError(mode)


NON_SEPARABLE = {"svg:hue", "svg:saturation", "svg:color", "svg:luminosity"}


def blend_pixel(mode: str, cb, cs):
    if mode in NON_SEPARABLE:
        return _non_separable(mode, list(cb), list(cs))
    if mode in ("svg:src-over", "pass-through") or not mode.startswith("svg:"):
        return list(cs)
    return [_separable(mode, b, s) for b, s in zip(cb, cs, strict=True)]


def over(backdrop, source, mode: str):
    """Straight (r, g, b, a) floats: ``source`` composited on ``backdrop`` with ``mode``."""
    cb, ab = backdrop[:3], backdrop[3]
    cs, a_s = source[:3], source[3]
    if mode == "svg:plus":
        ao = min(1.0, a_s + ab)
        co = [min(1.0, s * a_s + b * ab) for s, b in zip(cs, cb, strict=True)]
    else:
        mixed = blend_pixel(mode, cb, cs)
        mixed = [min(1.0, max(0.0, v)) for v in mixed]
        ao = a_s + ab * (1 - a_s)
        co = [
            a_s * (1 - ab) * s + a_s * ab * m + (1 - a_s) * ab * b
            for s, m, b in zip(cs, mixed, cb, strict=True)
        ]
    if ao <= 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [v / ao for v in co] + [ao]


def _stack_pixel(stack, y: int, x: int, backdrop):
    for kind, mode, opacity, content in stack:
        if kind == "layer":
            r, g, b, a = (float(v) / 255 for v in content[y, x])
            backdrop = over(backdrop, [r, g, b, a * opacity], mode)
        elif mode == "pass-through":
            inside = _stack_pixel(content, y, x, backdrop)
            backdrop = _lerp(backdrop, inside, opacity)
        else:
            inside = _stack_pixel(content, y, x, [0.0, 0.0, 0.0, 0.0])
            backdrop = over(backdrop, [*inside[:3], inside[3] * opacity], mode)
    return backdrop


def _lerp(before, after, t: float):
    pb = [v * before[3] for v in before[:3]] + [before[3]]
    pa = [v * after[3] for v in after[:3]] + [after[3]]
    mixed = [b + (a - b) * t for b, a in zip(pb, pa, strict=True)]
    if mixed[3] <= 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [v / mixed[3] for v in mixed[:3]] + [mixed[3]]


def flatten(stack, height: int, width: int) -> np.ndarray:
    """The reference picture as straight float RGBA (h, w, 4) in 0..1."""
    out = np.zeros((height, width, 4))
    for y in range(height):
        for x in range(width):
            out[y, x] = _stack_pixel(stack, y, x, [0.0, 0.0, 0.0, 0.0])
    return out


def assert_close(actual_uint8: np.ndarray, expected: np.ndarray, tolerance: float = 1.0) -> None:
    """Alpha within ``tolerance`` everywhere; colour within it wherever alpha is not tiny (a
    colour under 2% alpha is not defined to a unit in 8 bits)."""
    actual = actual_uint8.astype(np.float64)
    want = expected * 255.0
    alpha_error = np.abs(actual[..., 3] - want[..., 3])
    assert alpha_error.max() <= tolerance, f"alpha off by {alpha_error.max():.2f}"
    solid = want[..., 3] >= 5.0
    colour_error = np.abs(actual[..., :3] - want[..., :3])[solid]
    if colour_error.size:
        assert colour_error.max() <= tolerance, f"colour off by {colour_error.max():.2f}"
