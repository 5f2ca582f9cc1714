"""One door for every file the app opens or writes: images, projects, exports.

Widgets call these; each raises :class:`FileError` (or a subclass) with a message fit for a person.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.compose import composite
from app.document import Document
from app.image_io import (
    DEFAULT_PIXEL_LIMIT,
    OPEN_FORMATS,
    ImageLoadError,
    ImageSaveError,
    load_rgba,
    save_flat,
)

FileError = (ImageLoadError, ImageSaveError)


def open_document(path: str | os.PathLike, pixel_limit: int = DEFAULT_PIXEL_LIMIT) -> Document:
    """Open an image as a new document (projects and PSD are added by app/io)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OPEN_FORMATS:
        raise ImageLoadError(f"{path.name}: unsupported file type {suffix or '(none)'}")
    pixels = load_rgba(path, pixel_limit)
    doc = Document.from_rgba(pixels, name=path.stem)
    doc.path = None  # an opened image is not a project: Save asks where
    return doc


def export_flat(doc: Document, path: str | os.PathLike, parameters: str | None = None) -> None:
    """Flattened PNG/JPEG/WebP of the visible picture layers."""
    save_flat(path, composite(doc.layers, doc.rect), parameters)
