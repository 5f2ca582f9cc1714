"""Outpainting: pre-fill the empty part of a generation frame and mask it with a seam.

Where a frame reaches past the picture (or covers transparent pixels), there is nothing for the
model to start from. As A1111's outpainting scripts and Krita's "expand" do, the empty area is
pre-filled before denoising: the known colours are smeared outwards (a pull-push pyramid, which
extends each edge's colour and blurs it with distance) and noise is added, growing from the edge
into the empty area. The inpaint mask covers the empty area plus a seam band of the known
picture, so the model repaints the join; the engine feathers that mask when it pastes, so known
pixels farther than ``seam + 2 * mask_blur`` from the empty area stay byte-identical.

Pure numpy/OpenCV: used by the app's request builder and by ``impasto generate --frame``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

NOISE_LEVEL = 18.0  # standard deviation of the added noise, in 0..255 levels, far from the edge
NOISE_RAMP = 32  # pixels over which the noise grows from nothing at the edge to NOISE_LEVEL
MIN_SEAM, MAX_SEAM = 16, 64


@dataclass(frozen=True)
class Outpaint:
    """A frame's pixels ready for inpainting: ``image`` RGB with the empty area pre-filled,
    ``mask`` uint8 (255 = regenerate: the empty area, the seam, and any given mask)."""

    image: np.ndarray
    mask: np.ndarray
    empty: np.ndarray  # bool: the pixels that had nothing (alpha below 255)

    @property
    def has_empty(self) -> bool:
        return bool(self.empty.any())


def seam_width(width: int, height: int) -> int:
    """How far into the known picture the mask reaches: ~3% of the frame, 16..64 pixels."""
    return int(min(MAX_SEAM, max(MIN_SEAM, round(max(width, height) / 32))))


def prefill(rgba: np.ndarray, seed: int = 0) -> np.ndarray:
    """RGB: ``rgba`` composited over a smeared, noisy extension of its own colours.

    Fully opaque pixels are returned unchanged (byte for byte); transparent ones get the fill;
    partly transparent ones are blended over it as a picture over a background would be."""
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError("prefill needs an RGBA uint8 image")
    alpha = rgba[..., 3]
    rgb = rgba[..., :3]
    if (alpha == 255).all():
        return np.ascontiguousarray(rgb).copy()
    weight = alpha.astype(np.float32) / 255.0
    fill = _pull_push(rgb.astype(np.float32), weight)
    empty = alpha < 255
    fill += _edge_noise(empty, seed)
    a = weight[..., None]
    blended = rgb.astype(np.float32) * a + fill * (1.0 - a)
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    opaque = alpha == 255
    out[opaque] = rgb[opaque]  # exact bytes where the picture is whole
    return out


def outpaint_mask(empty: np.ndarray, seam: int, extra: np.ndarray | None = None) -> np.ndarray:
    """uint8 mask: ``empty`` grown by ``seam`` pixels into the picture, plus ``extra`` (a user's
    inpaint mask over the same area, > 127 = regenerate)."""
    binary = empty.astype(np.uint8)
    if seam > 0 and binary.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * seam + 1, 2 * seam + 1))
        binary = cv2.dilate(binary, kernel)
    mask = np.where(binary > 0, 255, 0).astype(np.uint8)
    if extra is not None:
        mask[extra > 127] = 255
    return mask


def prepare(
    rgba: np.ndarray, seed: int = 0, seam: int | None = None, extra: np.ndarray | None = None
) -> Outpaint:
    """The request image and mask for a frame whose picture is ``rgba`` (transparent where
    there is nothing: past the canvas, or transparent layers)."""
    height, width = rgba.shape[:2]
    empty = rgba[..., 3] < 255
    seam = seam_width(width, height) if seam is None else seam
    return Outpaint(prefill(rgba, seed), outpaint_mask(empty, seam, extra), empty)


def _pull_push(rgb: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill where ``weight`` is 0 from the weighted colours around, smoother with distance.

    Pull: halve colour*weight and weight down to one pixel. Push: from the coarsest level up,
    each level keeps what it knows and takes the upsampled coarser fill where it knows less."""
    levels: list[tuple[np.ndarray, np.ndarray]] = []
    colour = rgb * weight[..., None]
    known = weight.copy()
    while True:
        levels.append((colour, known))
        h, w = known.shape
        if h <= 1 and w <= 1:
            break
        size = (max(1, (w + 1) // 2), max(1, (h + 1) // 2))
        colour = cv2.resize(colour, size, interpolation=cv2.INTER_AREA)
        known = cv2.resize(known, size, interpolation=cv2.INTER_AREA)
        if known.ndim == 1 or colour.ndim == 2:  # OpenCV drops axes of 1-pixel images
            known = known.reshape(size[1], size[0])
            colour = colour.reshape(size[1], size[0], 3)
    colour, known = levels[-1]
    total = float(known.sum())
    mean = colour.sum(axis=(0, 1)) / total if total > 0 else np.full(3, 127.0, np.float32)
    fill = np.where(known[..., None] > 1e-6, colour / np.maximum(known, 1e-6)[..., None], mean)
    for colour, known in reversed(levels[:-1]):
        h, w = known.shape
        up = cv2.resize(fill.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        up = up.reshape(h, w, 3)
        k = np.clip(known, 0.0, 1.0)[..., None]
        fill = colour + up * (1.0 - k)  # colour is premultiplied by known
    return fill.astype(np.float32)


def _edge_noise(empty: np.ndarray, seed: int) -> np.ndarray:
    """Grey-ish noise over the empty area, fading to nothing at its edge."""
    if not empty.any():
        return np.zeros((*empty.shape, 3), np.float32)
    distance = cv2.distanceTransform(empty.astype(np.uint8), cv2.DIST_L2, 5)
    ramp = np.clip(distance / NOISE_RAMP, 0.0, 1.0)[..., None]
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((*empty.shape, 1), np.float32)  # luminance grain
    colour = rng.standard_normal((*empty.shape, 3), np.float32) * 0.5
    return (shared + colour) * NOISE_LEVEL * ramp
