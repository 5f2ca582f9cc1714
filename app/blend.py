"""Blend modes: names, file keys, and the W3C Compositing and Blending Level 1 formulas.

A layer's mode is stored as a string, the OpenRaster ``composite-op`` name (``svg:multiply``), so
a mode Impasto does not know (``krita:linear_burn``, a PSD key without an ``svg:`` twin, kept as
``psd:lbrn``) survives a round trip untouched; it is drawn as Normal. Groups have one more mode,
:data:`PASS_THROUGH` (not isolated: the children blend straight onto what is under the group).

The functions take straight (not premultiplied) float32 colours in 0..1, planar: shape (3, h, w)
(numpy broadcasts an alpha of shape (1, h, w) over planes ~6x faster than an (h, w, 1) alpha over
interleaved (h, w, 3) pixels, whose inner loop would be 3 long). ``cb`` is the backdrop, ``cs``
the source; they return B(cb, cs) per the spec (https://www.w3.org/TR/compositing-1/#blending).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

NORMAL = "svg:src-over"
PLUS = "svg:plus"
PASS_THROUGH = "pass-through"

# Menu order and labels, as Krita/Photoshop group them.
MODE_LABELS: dict[str, str] = {
    NORMAL: "Normal",
    "svg:darken": "Darken",
    "svg:multiply": "Multiply",
    "svg:color-burn": "Color Burn",
    "svg:lighten": "Lighten",
    "svg:screen": "Screen",
    "svg:color-dodge": "Color Dodge",
    PLUS: "Add (Plus)",
    "svg:overlay": "Overlay",
    "svg:soft-light": "Soft Light",
    "svg:hard-light": "Hard Light",
    "svg:difference": "Difference",
    "svg:exclusion": "Exclusion",
    "svg:hue": "Hue",
    "svg:saturation": "Saturation",
    "svg:color": "Color",
    "svg:luminosity": "Luminosity",
}
GROUP_MODE_LABELS: dict[str, str] = {PASS_THROUGH: "Pass Through", **MODE_LABELS}

# psd-tools BlendMode values (4-byte keys) <-> our names. Pass-through exists only on groups.
PSD_KEYS: dict[str, bytes] = {
    NORMAL: b"norm",
    "svg:multiply": b"mul ",
    "svg:screen": b"scrn",
    "svg:overlay": b"over",
    "svg:darken": b"dark",
    "svg:lighten": b"lite",
    "svg:color-dodge": b"div ",
    "svg:color-burn": b"idiv",
    "svg:hard-light": b"hLit",
    "svg:soft-light": b"sLit",
    "svg:difference": b"diff",
    "svg:exclusion": b"smud",
    "svg:hue": b"hue ",
    "svg:saturation": b"sat ",
    "svg:color": b"colr",
    "svg:luminosity": b"lum ",
    PLUS: b"lddg",  # Photoshop's Linear Dodge (Add)
    PASS_THROUGH: b"pass",
}
_MODE_OF_PSD_KEY = {key: mode for mode, key in PSD_KEYS.items()}
PSD_PREFIX = "psd:"


def is_known(mode: str) -> bool:
    return mode in MODE_LABELS or mode == PASS_THROUGH


def label(mode: str) -> str:
    return GROUP_MODE_LABELS.get(mode, f"Unknown ({mode})")


def mode_from_psd_key(key: bytes) -> str:
    """Our name for a PSD blend key; a key without an ``svg:`` twin is kept as ``psd:xxxx``."""
    mode = _MODE_OF_PSD_KEY.get(key)
    if mode is not None:
        return mode
    return PSD_PREFIX + key.decode("latin-1").rstrip()


def psd_key_of(mode: str) -> bytes:
    """The PSD blend key for ``mode``; modes PSD cannot hold are written as normal."""
    key = PSD_KEYS.get(mode)
    if key is not None:
        return key
    if mode.startswith(PSD_PREFIX) and 0 < len(mode) - len(PSD_PREFIX) <= 4:
        return mode[len(PSD_PREFIX) :].encode("latin-1", "replace").ljust(4)
    return PSD_KEYS[NORMAL]


# ---- separable modes ------------------------------------------------------------------------


def _multiply(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return cb * cs


def _screen(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return cb + cs - cb * cs


def _hard_light(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    doubled = cs * 2.0
    return np.where(cs <= 0.5, cb * doubled, _screen(cb, doubled - 1.0))


def _overlay(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return _hard_light(cs, cb)


def _darken(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return np.minimum(cb, cs)


def _lighten(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return np.maximum(cb, cs)


def _color_dodge(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.minimum(1.0, cb / np.maximum(1.0 - cs, 1e-12))
    return np.where(cb <= 0.0, 0.0, np.where(cs >= 1.0, 1.0, ratio)).astype(np.float32)


def _color_burn(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = 1.0 - np.minimum(1.0, (1.0 - cb) / np.maximum(cs, 1e-12))
    return np.where(cb >= 1.0, 1.0, np.where(cs <= 0.0, 0.0, ratio)).astype(np.float32)


def _soft_light(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    d = np.where(cb <= 0.25, ((16.0 * cb - 12.0) * cb + 4.0) * cb, np.sqrt(cb))
    low = cb - (1.0 - 2.0 * cs) * cb * (1.0 - cb)
    high = cb + (2.0 * cs - 1.0) * (d - cb)
    return np.where(cs <= 0.5, low, high)


def _difference(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return np.abs(cb - cs)


def _exclusion(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return cb + cs - 2.0 * cb * cs


# ---- non-separable modes (Lum / ClipColor / SetLum / Sat / SetSat) --------------------------


def _lum(c: np.ndarray) -> np.ndarray:
    return (np.float32(0.3) * c[0] + np.float32(0.59) * c[1] + np.float32(0.11) * c[2])[None]


def _clip_color(c: np.ndarray) -> np.ndarray:
    lum = _lum(c)
    low = c.min(axis=0, keepdims=True)
    high = c.max(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(low < 0.0, lum + (c - lum) * lum / (lum - low), c)
        c = np.where(high > 1.0, lum + (c - lum) * (1.0 - lum) / (high - lum), c)
    return c


def _set_lum(c: np.ndarray, lum: np.ndarray) -> np.ndarray:
    return _clip_color(c + (lum - _lum(c)))


def _sat(c: np.ndarray) -> np.ndarray:
    return c.max(axis=0, keepdims=True) - c.min(axis=0, keepdims=True)


def _set_sat(c: np.ndarray, sat: np.ndarray) -> np.ndarray:
    """The spec's Cmax/Cmid/Cmin rewrite: max -> s, min -> 0, mid scaled between."""
    low = c.min(axis=0, keepdims=True)
    span = c.max(axis=0, keepdims=True) - low
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(span > 0.0, (c - low) * sat / span, 0.0).astype(np.float32)


def _hue(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return _set_lum(_set_sat(cs, _sat(cb)), _lum(cb))


def _saturation(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return _set_lum(_set_sat(cb, _sat(cs)), _lum(cb))


def _color(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return _set_lum(cs, _lum(cb))


def _luminosity(cb: np.ndarray, cs: np.ndarray) -> np.ndarray:
    return _set_lum(cb, _lum(cs))


BlendFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]

BLEND_FUNCTIONS: dict[str, BlendFunction] = {
    "svg:multiply": _multiply,
    "svg:screen": _screen,
    "svg:overlay": _overlay,
    "svg:darken": _darken,
    "svg:lighten": _lighten,
    "svg:color-dodge": _color_dodge,
    "svg:color-burn": _color_burn,
    "svg:hard-light": _hard_light,
    "svg:soft-light": _soft_light,
    "svg:difference": _difference,
    "svg:exclusion": _exclusion,
    "svg:hue": _hue,
    "svg:saturation": _saturation,
    "svg:color": _color,
    "svg:luminosity": _luminosity,
}


def blend_over(
    premul: np.ndarray,
    alpha: np.ndarray,
    src_rgb: np.ndarray,
    src_alpha: np.ndarray,
    mode: str,
) -> None:
    """Composite a straight source (rgb (3, h, w), alpha (1, h, w), opacity already applied) onto
    a premultiplied backdrop (same shapes) in place, source-over with the mode's blending:
    ``cs' = (1 - ab)·cs + ab·B(cb, cs)``, ``co = as·cs' + (1 - as)·cb·ab``,
    ``ao = as + ab·(1 - as)``. ``svg:plus`` adds premultiplied colours (clamped); unknown modes
    are drawn as normal."""
    if mode == PLUS:
        np.minimum(premul + src_rgb * src_alpha, 1.0, out=premul)
        np.minimum(alpha + src_alpha, 1.0, out=alpha)
        return
    function = BLEND_FUNCTIONS.get(mode)
    if function is not None:
        # premultiplied colour is 0 where alpha is 0, so the guarded division gives 0 there
        backdrop = premul / np.maximum(alpha, np.float32(1e-12))
        np.clip(backdrop, 0.0, 1.0, out=backdrop)
        blended = function(backdrop, src_rgb)
        np.clip(blended, 0.0, 1.0, out=blended)
        blended -= src_rgb
        blended *= alpha
        src_rgb = blended + src_rgb  # (1 - ab)·cs + ab·B
    premul *= 1.0 - src_alpha
    premul += src_rgb * src_alpha
    alpha *= 1.0 - src_alpha
    alpha += src_alpha
