"""Small documents for tests: a random opaque "photo" and a painted mask."""

from __future__ import annotations

import numpy as np

from app.document import Document
from app.geometry import Rect


def random_photo(width: int, height: int, seed: int = 0) -> Document:
    """A document whose one opaque image layer is random noise (seeded, so reproducible)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    return Document.from_rgba(pixels)


def paint_mask(doc: Document, rect: Rect) -> None:
    """Fill ``rect`` of the inpaint mask (outside the history: test setup)."""
    doc.mask_layer.raster.write(rect, np.full((rect.h, rect.w), 255, np.uint8))
