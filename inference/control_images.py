"""Control images for ControlNet: Canny edges, scribbles from sketches, and fitting to a size.

Every function takes and returns uint8 numpy arrays and returns RGB (H, W, 3), the form
ControlNet pipelines take. Fitting follows sd-webui-controlnet's resize modes so a control image
of another size or aspect lands where A1111 users expect it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from inference.api import InvalidRequestError, ResizeMode

MAX_SIDE = 32768


class ControlImageError(InvalidRequestError):
    """A control image (or its parameters) cannot be used; the message says why."""


def as_rgb(image: np.ndarray, *, what: str = "control image") -> np.ndarray:
    """Gray, RGB or RGBA uint8 as RGB. RGBA is composited over white (as the annotators' HWC3)."""
    image = _check_image(image, what)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    channels = image.shape[2]
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 3:
        return image
    if image[:, :, 3].min() == 255:  # opaque: compositing over white changes nothing
        return np.ascontiguousarray(image[:, :, :3])
    color = image[:, :, :3].astype(np.float32)
    alpha = image[:, :, 3:4].astype(np.float32) / 255.0
    return (color * alpha + 255.0 * (1.0 - alpha)).clip(0, 255).astype(np.uint8)


def canny_edges(
    image: np.ndarray, low_threshold: float = 100, high_threshold: float = 200
) -> np.ndarray:
    """White one-pixel edges on black, as ControlNet's Canny annotator (``cv2.Canny`` on RGB)."""
    for name, value in (("low", low_threshold), ("high", high_threshold)):
        if not math.isfinite(value) or value < 0:
            raise ControlImageError(f"Canny {name} threshold must be a number >= 0, not {value}")
    if low_threshold > high_threshold:
        raise ControlImageError(
            f"Canny low threshold {low_threshold:g} is above the high threshold {high_threshold:g}"
        )
    rgb = np.ascontiguousarray(as_rgb(image, what="image for Canny edges"))
    edges = cv2.Canny(rgb, float(low_threshold), float(high_threshold))
    return np.repeat(edges[:, :, None], 3, axis=2)


def scribble_from_sketch(
    sketch: np.ndarray, *, threshold: int = 127, binary: bool = True
) -> np.ndarray:
    """White strokes on black from a sketch, as scribble / line-art ControlNets expect.

    Stroke strength is the alpha channel when the sketch has transparency (strokes on a clear
    layer, whatever their colour); for an opaque image (or RGB / gray) it is the darkness, so
    dark lines on white paper work too. ``binary`` thresholds at ``threshold`` (0..255);
    otherwise the strength is kept as gray levels.
    """
    sketch = _check_image(sketch, "sketch")
    if not 0 <= threshold <= 255:
        raise ControlImageError(f"scribble threshold must be within 0..255, not {threshold}")
    if sketch.ndim == 3 and sketch.shape[2] == 4 and sketch[:, :, 3].min() < 255:
        strength = sketch[:, :, 3]
    else:
        gray = cv2.cvtColor(as_rgb(sketch), cv2.COLOR_RGB2GRAY)
        strength = 255 - gray
    if binary:
        strength = np.where(strength > threshold, 255, 0).astype(np.uint8)
    return np.repeat(strength[:, :, None], 3, axis=2)


def fit_control_image(
    image: np.ndarray,
    width: int,
    height: int,
    mode: ResizeMode | str = ResizeMode.CROP_AND_RESIZE,
) -> np.ndarray:
    """Fit a control image to ``width`` x ``height`` as sd-webui-controlnet does.

    - just resize: stretch to the target size, ignoring aspect;
    - crop and resize: scale to cover the target, then crop the centre;
    - resize and fill: scale to fit inside, centre, and fill the rest with the median colour of
      the image's border (black for most control maps, white for white-background line art).

    Maps with few colours (segmentation, poses drawn flat) are resized with nearest-neighbour so no
    new colours appear; two-colour maps (edges, scribbles) are re-thresholded to stay binary.
    """
    try:
        mode = ResizeMode(mode)
    except ValueError as err:
        names = ", ".join(m.value for m in ResizeMode)
        raise ControlImageError(f"unknown resize mode {mode!r}; choose one of: {names}") from err
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ControlImageError(f"target size {width}x{height} is outside 1..{MAX_SIDE}")
    rgb = as_rgb(image)
    old_h, old_w = rgb.shape[:2]
    if (old_w, old_h) == (width, height):
        return rgb.copy()
    if mode is ResizeMode.JUST_RESIZE:
        return _resize_map(rgb, width, height)

    k_h, k_w = height / old_h, width / old_w
    if mode is ResizeMode.RESIZE_AND_FILL:
        k = min(k_h, k_w)
        borders = np.concatenate([rgb[0, :], rgb[-1, :], rgb[:, 0], rgb[:, -1]], axis=0)
        fill = np.median(borders, axis=0).astype(np.uint8)
        out = np.empty((height, width, 3), np.uint8)
        out[:] = fill
        inner = _resize_map(rgb, _round_side(old_w * k), _round_side(old_h * k))
        new_h, new_w = inner.shape[:2]
        top, left = max(0, (height - new_h) // 2), max(0, (width - new_w) // 2)
        out[top : top + new_h, left : left + new_w] = inner[:height, :width]
        return out

    k = max(k_h, k_w)
    outer = _resize_map(rgb, _round_side(old_w * k), _round_side(old_h * k))
    new_h, new_w = outer.shape[:2]
    top, left = max(0, (new_h - height) // 2), max(0, (new_w - width) // 2)
    return np.ascontiguousarray(outer[top : top + height, left : left + width])


def _round_side(value: float) -> int:
    return max(1, round(value))


def _resize_map(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """sd-webui-controlnet's control-map resize without its edge thinning step."""
    old_h, old_w = image.shape[:2]
    if (old_w, old_h) == (width, height):
        return image.copy()
    packed = (
        image[:, :, 0].astype(np.uint32) << 16
        | image[:, :, 1].astype(np.uint32) << 8
        | image[:, :, 2].astype(np.uint32)
    )
    color_count = len(np.unique(packed))
    is_binary = color_count == 2 and image.min() < 16 and image.max() > 240
    if 2 < color_count < 200:
        interpolation = cv2.INTER_NEAREST
    elif width * height < old_w * old_h:
        interpolation = cv2.INTER_AREA
    else:
        interpolation = cv2.INTER_CUBIC
    resized = cv2.resize(image, (width, height), interpolation=interpolation)
    if is_binary:
        gray = resized.astype(np.float32).mean(axis=2).clip(0, 255).astype(np.uint8)
        _, gray = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        resized = np.repeat(gray[:, :, None], 3, axis=2)
    return resized


def _check_image(image: np.ndarray, what: str) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ControlImageError(f"{what} must be a numpy array, not {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ControlImageError(f"{what} must be 8-bit (uint8), not {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ControlImageError(f"{what} must be gray, RGB or RGBA, not shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ControlImageError(f"{what} is empty ({image.shape[1]}x{image.shape[0]})")
    if max(image.shape[:2]) > MAX_SIDE:
        raise ControlImageError(f"{what} is larger than {MAX_SIDE} pixels on a side")
    return image
