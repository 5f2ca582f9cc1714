"""Outpainting: pre-fill the empty part of a generation frame and mask it with a seam.

Where a frame reaches past the picture (or covers transparent pixels), there is nothing for the
model to start from. As A1111's outpainting scripts and Krita's "expand" do, the empty area is
pre-filled before denoising: each edge's colour is extended outwards (the nearest whole pixel),
blurred more the farther it reaches, and noise is added, growing from the edge into the empty
area. The inpaint mask covers the empty area plus a seam band of the known
picture, so the model repaints the join; the engine feathers that mask when it pastes, so known
pixels farther than ``seam + 2 * mask_blur`` from the empty area stay byte-identical.

Pure numpy/OpenCV. The request builder and ``impasto generate --frame`` make the mask and send
the frame as RGBA (transparent where empty); the engine pre-fills it on its worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from inference.api import Box

NOISE_LEVEL = 12.0  # standard deviation of the added noise, in 0..255 levels, far from the edge
NOISE_RAMP = 48  # pixels over which the noise grows from nothing at the edge to NOISE_LEVEL
SMEAR_REACHES = (16.0, 64.0, 192.0)  # distances (px) at which the smear is blurred more
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
    fill = _smear(rgb, alpha == 255)
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
    if seam > 0 and empty.any() and not empty.all():
        # distance to the nearest empty pixel: one pass, whatever the seam's width
        distance = cv2.distanceTransform((~empty).astype(np.uint8), cv2.DIST_L2, 5)
        grown = distance <= seam
    else:
        grown = empty
    mask = np.where(grown, 255, 0).astype(np.uint8)
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


def _smear(rgb: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill where ``known`` is False by extending the nearest known pixel's colour outwards
    (edge extension), blurred more the farther it reaches (a soft smear, not streaks)."""
    empty = ~known
    height, width = empty.shape
    if not known.any():
        return np.full((height, width, 3), 127.0, np.float32)
    distance, labels = cv2.distanceTransformWithLabels(
        empty.astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    sources = np.flatnonzero(known.ravel())  # label n is the n-th known pixel in scan order
    nearest = rgb.reshape(-1, 3)[sources[labels.ravel() - 1]].reshape(height, width, 3)
    out = nearest.astype(np.float32)
    # blend blurrier versions in with distance: sharp at the edge, a wash far from it
    previous_reach, previous = 0.0, out
    for reach in SMEAR_REACHES:
        blurred = _soft(out, reach / 2.0)
        t = np.clip((distance - previous_reach) / (reach - previous_reach), 0.0, 1.0)[..., None]
        previous = previous * (1.0 - t) + blurred * t
        previous_reach = reach
    previous[known] = rgb[known]
    return previous


def _soft(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of about ``sigma``, done small (downscale, blur, upscale) so that wide
    blurs of large frames stay cheap."""
    height, width = image.shape[:2]
    factor = max(1, int(sigma // 4))
    small = image
    if factor > 1:
        size = (max(1, width // factor), max(1, height // factor))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], 3)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=max(0.5, sigma / factor))
    small = small.reshape(small.shape[0], small.shape[1], 3)
    if factor > 1:
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR).reshape(
            height, width, 3
        )
    return small


def _edge_noise(empty: np.ndarray, seed: int) -> np.ndarray:
    """Noise over the empty area (2-pixel grain, mostly luminance), fading to nothing at its
    edge."""
    height, width = empty.shape
    if not empty.any():
        return np.zeros((height, width, 3), np.float32)
    distance = cv2.distanceTransform(empty.astype(np.uint8), cv2.DIST_L2, 5)
    ramp = np.clip(distance / NOISE_RAMP, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    small = ((height + 1) // 2, (width + 1) // 2)
    grain = rng.standard_normal((*small, 1), np.float32) + 0.5 * rng.standard_normal(
        (*small, 3), np.float32
    )
    grain = np.repeat(np.repeat(grain, 2, axis=0), 2, axis=1)[:height, :width]
    return grain * (NOISE_LEVEL * ramp)[..., None]


# ---- a frame over a single image (``impasto generate --frame``) ---------------------------


class FrameSpecError(ValueError):
    """A ``--frame`` that cannot be used; the message is one line."""


def parse_frame(text: str) -> Box:
    """``X,Y,W,H`` in whole pixels (X and Y may be negative) as a Box."""
    parts = [part.strip() for part in str(text).split(",")]
    try:
        if len(parts) != 4:
            raise ValueError
        x, y, w, h = (int(part) for part in parts)
    except ValueError:
        raise FrameSpecError(
            f"--frame must be X,Y,W,H in whole pixels (e.g. -128,0,768,512), not {text!r}"
        ) from None
    if w <= 0 or h <= 0:
        raise FrameSpecError(f"--frame {text} has no area: its width and height must be above 0")
    return Box(x, y, w, h)


@dataclass(frozen=True, eq=False)
class FramedImage:
    """An image with a generation frame over it, which may reach past its edges."""

    image: np.ndarray  # RGB or RGBA uint8
    frame: Box  # in image pixels

    @property
    def canvas(self) -> Box:
        """The grown canvas (image coordinates): the image and the frame together."""
        height, width = self.image.shape[:2]
        left, top = min(0, self.frame.x), min(0, self.frame.y)
        right, bottom = max(width, self.frame.right), max(height, self.frame.bottom)
        return Box(left, top, right - left, bottom - top)

    def frame_rgba(self) -> np.ndarray:
        """RGBA over the frame: the image where it is, transparent past it."""
        channels = self.image.shape[2]
        cut = self._cut(self.image)
        if channels == 4:
            return cut
        out = np.zeros((self.frame.height, self.frame.width, 4), np.uint8)
        out[..., :3] = cut
        out[..., 3] = self._cut(np.full(self.image.shape[:2], 255, np.uint8))
        return out

    def frame_mask(self, mask: np.ndarray | None) -> np.ndarray | None:
        """An image-sized mask cut to the frame (zero past the image)."""
        return None if mask is None else self._cut(mask)

    def _cut(self, array: np.ndarray) -> np.ndarray:
        out = np.zeros((self.frame.height, self.frame.width, *array.shape[2:]), array.dtype)
        height, width = array.shape[:2]
        x0, y0 = max(0, self.frame.x), max(0, self.frame.y)
        x1, y1 = min(width, self.frame.right), min(height, self.frame.bottom)
        if x1 > x0 and y1 > y0:
            fx, fy = self.frame.x, self.frame.y
            out[y0 - fy : y1 - fy, x0 - fx : x1 - fx] = array[y0:y1, x0:x1]
        return out

    def compose(self, result: np.ndarray) -> np.ndarray:
        """The grown canvas: the image, with the frame's ``result`` (RGB, frame-sized) on top.
        RGBA when some of the canvas is covered by neither (or the image had alpha)."""
        canvas = self.canvas
        out = np.zeros((canvas.height, canvas.width, 4), np.uint8)
        height, width = self.image.shape[:2]
        ix, iy = -canvas.x, -canvas.y
        placed = out[iy : iy + height, ix : ix + width]
        placed[..., : self.image.shape[2]] = self.image[..., :4]
        if self.image.shape[2] == 3:
            placed[..., 3] = 255
        fx, fy = self.frame.x - canvas.x, self.frame.y - canvas.y
        spot = out[fy : fy + self.frame.height, fx : fx + self.frame.width]
        spot[..., :3] = result[..., :3]
        spot[..., 3] = 255
        if (out[..., 3] == 255).all():
            return np.ascontiguousarray(out[..., :3])
        return out
