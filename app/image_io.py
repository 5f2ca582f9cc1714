"""Reading raster images safely and writing flattened exports atomically.

Every failure becomes an :class:`ImageLoadError` or :class:`ImageSaveError` whose message a person
can act on; callers show it and keep the open document untouched.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.io.atomic import atomic_save
from app.io.errors import OpenError, SaveError

log = logging.getLogger(__name__)

DEFAULT_PIXEL_LIMIT = 100_000_000  # 100 megapixels (10k x 10k)
OPEN_FORMATS = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
EXPORT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


class ImageLoadError(OpenError):
    pass


class ImageSaveError(SaveError):
    pass


def load_rgba(path: str | os.PathLike, pixel_limit: int = DEFAULT_PIXEL_LIMIT) -> np.ndarray:
    """Decode an image file into straight RGBA uint8 (h, w, 4), honouring EXIF orientation."""
    path = Path(path)
    if not path.exists():
        raise ImageLoadError(f"{path.name}: file not found ({path})")
    if path.is_dir():
        raise ImageLoadError(f"{path.name} is a folder, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > pixel_limit:
                    raise ImageLoadError(
                        f"{path.name} is {width}x{height} ({width * height / 1e6:.0f} MP), above "
                        f"the {pixel_limit / 1e6:.0f} MP limit; raise the limit in Settings "
                        "if you trust this file"
                    )
                image.load()
                image = ImageOps.exif_transpose(image)
                return np.asarray(image.convert("RGBA"), dtype=np.uint8).copy()
    except ImageLoadError:
        raise
    except UnidentifiedImageError as err:
        raise ImageLoadError(f"{path.name} is not an image format Impasto can read") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageLoadError(f"{path.name} looks like a decompression bomb: {err}") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageLoadError(f"{path.name} is damaged or truncated ({err})") from err
    except PermissionError as err:
        raise ImageLoadError(f"{path.name}: permission denied") from err


def save_flat(path: str | os.PathLike, rgba: np.ndarray, parameters: str | None = None) -> None:
    """Write a flattened PNG/JPEG/WebP. ``parameters`` (A1111 text) goes into a PNG text chunk,
    or EXIF UserComment for JPEG/WebP."""
    path = Path(path)
    fmt = EXPORT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageSaveError(
            f"cannot export to {path.suffix or 'a file without extension'}; use .png, .jpg or .webp"
        )
    image = Image.fromarray(rgba, "RGBA")
    kwargs: dict = {}
    if fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        if parameters:
            info = PngInfo()
            info.add_text("parameters", parameters)
            kwargs["pnginfo"] = info
    else:
        image = _flatten_on_white(image)
        kwargs["quality"] = 95
        if parameters:
            kwargs["exif"] = _exif_user_comment(parameters)
    atomic_save(path, lambda tmp: image.save(tmp, format=fmt, **kwargs), backup=False)


def _flatten_on_white(image: Image.Image) -> Image.Image:
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background


def _exif_user_comment(text: str) -> bytes:
    from inference.parameters import exif_with_parameters  # UNDEFINED type, as A1111/piexif

    return exif_with_parameters(text)
