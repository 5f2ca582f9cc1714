"""Reading raster images safely and writing flattened exports atomically.

Every failure becomes an :class:`ImageLoadError` or :class:`ImageSaveError` whose message a person
can act on; callers show it and keep the open document untouched.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import io
import logging
import os
import stat
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.io.atomic import atomic_save
from app.io.errors import OpenError, SaveError
from inference.limits import DEFAULT_PIXEL_LIMIT  # 100 MP: one limit for documents, CLI, poses

log = logging.getLogger(__name__)

OPEN_FORMATS = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
EXPORT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


MAX_SIDE = 32768  # the Document's own limit (app.document.MAX_SIDE)


class ImageLoadError(OpenError):
    pass


class ImageSaveError(SaveError):
    pass


_PILLOW_LIMIT_LOCK = threading.Lock()


def open_with_limit(source, pixel_limit: int) -> Image.Image:
    """``Image.open`` with Pillow's own bomb check agreeing with ours: it warns above
    ``MAX_IMAGE_PIXELS`` and refuses above twice that, at open time. Ours refuses above
    ``pixel_limit``, so for this open Pillow's threshold is our limit (restored afterwards, so
    other code in the process keeps Pillow's default): raising the limit in Settings works, and an
    image just under it opens (callers ignore the warning)."""
    with _PILLOW_LIMIT_LOCK:
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max(int(pixel_limit), 1)
        try:
            return Image.open(source)
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def too_big_message(name: str, width: int, height: int, pixel_limit: int) -> str:
    return (
        f"{name} is {width}x{height} ({width * height / 1e6:.0f} MP), above the "
        f"{pixel_limit / 1e6:.0f} MP limit; raise the limit in Settings if you trust this file"
    )


def check_readable_file(path: Path, what: str = "a file") -> None:
    """Refuse, in one sentence, what cannot be opened as a file before any reader touches it:
    missing, a folder, a FIFO/device/socket (reading one could block forever), a symbolic link
    loop, a name the system refuses, or a file we may not read."""
    try:
        info = os.stat(path)
    except ValueError:  # an embedded NUL
        raise OpenError(f"{str(path)[:60]!r} is not a valid file name") from None
    except FileNotFoundError:
        raise OpenError(f"{path.name}: file not found ({path})") from None
    except PermissionError:
        raise OpenError(f"{path.name}: permission denied") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OpenError(f"{path.name} is a symbolic link that loops") from None
        if err.errno == errno.ENAMETOOLONG:
            raise OpenError(f"{path.name[:40]}…: the file name is too long") from None
        raise OpenError(f"{path.name}: {err.strerror or err}") from None
    if stat.S_ISDIR(info.st_mode):
        raise OpenError(f"{path.name} is a folder, not {what}")
    if not stat.S_ISREG(info.st_mode):
        raise OpenError(f"{path.name} is not a regular file (a pipe, device or socket); refused")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise OpenError(f"{path.name}: permission denied") from None
    except OSError as err:
        raise OpenError(f"{path.name}: {err.strerror or err}") from None


def load_rgba(
    path: str | os.PathLike, pixel_limit: int = DEFAULT_PIXEL_LIMIT, info: dict | None = None
) -> np.ndarray:
    """Decode an image file into straight 8-bit sRGB RGBA (h, w, 4), honouring EXIF orientation
    and converting embedded colour profiles, CMYK, Lab, grey and 16/32-bit data to sRGB.
    ``info``, if given, receives ``"parameters"``: the A1111 text the file carries, if any."""
    path = Path(path)
    try:
        check_readable_file(path, "an image")
    except OpenError as err:
        raise ImageLoadError(str(err)) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with open_with_limit(path, pixel_limit) as image:
                width, height = image.size
                if width * height > pixel_limit:
                    raise ImageLoadError(too_big_message(path.name, width, height, pixel_limit))
                if width > MAX_SIDE or height > MAX_SIDE:
                    raise ImageLoadError(
                        f"{path.name} is {width}x{height} pixels; Impasto's canvas is at most "
                        f"{MAX_SIDE} pixels a side"
                    )
                check_memory(width * height * 12, path.name)  # decoded + converted + RGBA
                image.load()
                parameters = _parameters_of(image)
                image = ImageOps.exif_transpose(image)
                rgba = to_srgb_rgba(image, path.name)
                if parameters is not None and info is not None:
                    info["parameters"] = parameters
                return rgba
    except ImageLoadError:
        raise
    except UnidentifiedImageError as err:
        raise ImageLoadError(f"{path.name} is not an image format Impasto can read") from err
    except Image.DecompressionBombError as err:
        raise ImageLoadError(
            f"{path.name} is above the {pixel_limit / 1e6:.0f} MP limit; raise the limit in "
            "Settings if you trust this file"
        ) from err
    except PermissionError as err:
        raise ImageLoadError(f"{path.name}: permission denied") from err
    except MemoryError as err:
        raise ImageLoadError(f"{path.name} needs more memory than is available") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageLoadError(f"{path.name} is damaged or truncated ({err})") from err


MAX_PARAMETERS_CHARS = 65536


def _parameters_of(image: Image.Image) -> str | None:
    """The AUTOMATIC1111 ``parameters`` text: a PNG text chunk, or EXIF UserComment (JPEG/WebP).
    None when absent or unreadable."""
    text = None
    raw = getattr(image, "text", {}) if image.format == "PNG" else {}
    if isinstance(raw.get("parameters"), str):
        text = raw["parameters"]
    else:
        try:
            comment = image.getexif().get_ifd(0x8769).get(0x9286)
        except Exception:  # broken EXIF: no parameters, the picture still opens
            comment = None
        if isinstance(comment, bytes):
            text = _decode_user_comment(comment)
        elif isinstance(comment, str):
            text = comment
    if not text:
        return None
    text = validate_text(text)
    return text[:MAX_PARAMETERS_CHARS] if text.strip() else None


def _decode_user_comment(comment: bytes) -> str | None:
    from inference.parameters import decode_user_comment  # one decoder for the whole app

    try:
        return decode_user_comment(comment)
    except (UnicodeDecodeError, ValueError):
        return None


def validate_text(text: str) -> str:
    """Text without NULs and other control characters but newlines and tabs."""
    return "".join(c for c in text if c in "\n\t" or (ord(c) >= 0x20 and c != "\x7f"))


def check_memory(needed_bytes: int, name: str) -> None:
    """Refuse before allocating when the machine (or this process's address-space limit) clearly
    cannot hold ``needed_bytes``."""
    available = available_memory()
    if available is not None and needed_bytes > available:
        raise ImageLoadError(
            f"{name} needs about {needed_bytes / 2**30:.1f} GB of memory to open; "
            f"{available / 2**30:.1f} GB is available"
        )


def available_memory() -> int | None:
    """Bytes this process can still allocate, as far as can be told cheaply; None if unknown."""
    candidates = []
    try:
        import psutil

        candidates.append(psutil.virtual_memory().available)
    except Exception:  # not installed, or no /proc
        with contextlib.suppress(AttributeError, ValueError, OSError):
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            candidates.append(max(0, soft - _address_space_used()))
    except (ImportError, OSError, ValueError):
        pass
    return min(candidates) if candidates else None


def _address_space_used() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


# ---- colour ----------------------------------------------------------------------------------

_SRGB_PROFILE = None


def srgb_profile():
    global _SRGB_PROFILE
    if _SRGB_PROFILE is None:
        from PIL import ImageCms

        _SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return _SRGB_PROFILE


def srgb_icc_bytes() -> bytes:
    """The sRGB ICC profile exports carry."""
    return srgb_profile().tobytes()


_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}

# What an open converted (deep colour scaled, a profile applied, CMYK/Lab turned into sRGB), so
# the window can say it in one status line; collected per open by ``colour_notes()``.
_colour_notes: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "colour_notes", default=None
)


@contextlib.contextmanager
def colour_notes():
    """Collect, for the duration, what ``to_srgb_rgba`` converted (a set of short phrases)."""
    notes: set[str] = set()
    token = _colour_notes.set(notes)
    try:
        yield notes
    finally:
        _colour_notes.reset(token)


def _note(text: str) -> None:
    notes = _colour_notes.get()
    if notes is not None:
        notes.add(text)


def describe_colour_notes(notes: set[str]) -> str | None:
    """One sentence for the status line, or None when nothing was converted."""
    if not notes:
        return None
    return "Colour converted to 8-bit sRGB: " + ", ".join(sorted(notes)) + "."


def to_srgb_rgba(image: Image.Image, name: str, icc: bytes | None = None) -> np.ndarray:
    """Any image Pillow (or psd-tools) produces as straight 8-bit sRGB RGBA. High bit depths are
    scaled, not clipped; an embedded ICC profile (``icc`` or ``image.info``) is converted to sRGB
    with littleCMS; Lab goes through littleCMS's Lab profile. What cannot be converted is refused
    by naming the colour mode."""
    icc = icc if icc is not None else image.info.get("icc_profile")
    alpha: Image.Image | None = None
    mode = image.mode
    if mode in _SIXTEEN_BIT:
        _note("16-bit values scaled")
        values = np.asarray(image).astype(np.int64).clip(0, 65535)
        image = Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), "L")
    elif mode == "F":
        _note("32-bit float values scaled")
        values = np.nan_to_num(np.asarray(image, np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        image = Image.fromarray((values.clip(0.0, 1.0) * 255 + 0.5).astype(np.uint8), "L")
    elif mode in ("1", "P", "PA", "La", "RGBa", "HSV", "YCbCr", "RGBX", "LA"):
        target = {"1": "L", "HSV": "RGB", "YCbCr": "RGB", "RGBX": "RGB", "La": "LA"}.get(mode)
        target = target or ("RGBA" if mode != "LA" else "LA")
        image = image.convert(target)
    if image.mode in ("RGBA", "LA"):
        alpha = image.getchannel("A")
        image = image.convert("RGB" if image.mode == "RGBA" else "L")
    if image.mode not in ("L", "RGB", "CMYK", "LAB"):
        raise ImageLoadError(f"{name}: its colour mode {image.mode} is not supported")
    rgb = _profile_to_srgb(image, icc, name)
    out = np.empty((rgb.height, rgb.width, 4), np.uint8)
    out[..., :3] = np.asarray(rgb, np.uint8)
    out[..., 3] = 255 if alpha is None else np.asarray(alpha, np.uint8)
    return out


def _profile_to_srgb(image: Image.Image, icc: bytes | None, name: str) -> Image.Image:
    from PIL import ImageCms

    if icc and icc == srgb_icc_bytes():
        icc = None  # our own exports: already sRGB, keep the pixels bit-exact
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                image,
                source,
                srgb_profile(),
                outputMode="RGB",
                renderingIntent=ImageCms.Intent.PERCEPTUAL,
            )
            assert converted is not None  # None only when converting in place
            described = ImageCms.getProfileDescription(source).strip() or "embedded"
            _note(f"{described} profile applied")
            return converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as err:
            log.warning("%s: ignoring its colour profile, which cannot be used (%s)", name, err)
    if image.mode == "LAB":
        try:
            lab = ImageCms.createProfile("LAB")
            transform = ImageCms.buildTransform(lab, srgb_profile(), "LAB", "RGB")
            converted = ImageCms.applyTransform(image, transform)
            assert converted is not None  # None only when converting in place
            _note("Lab converted")
            return converted
        except (ImageCms.PyCMSError, OSError, ValueError) as err:
            raise ImageLoadError(f"{name}: Lab colour is not supported ({err})") from err
    if image.mode == "CMYK":
        _note("CMYK converted without a profile")
    return image.convert("RGB")


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
    kwargs: dict = {"icc_profile": srgb_icc_bytes()}
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
    """EXIF holding only UserComment as AUTOMATIC1111 writes it (piexif's ``UserComment.dump``
    with ``encoding="unicode"``): type UNDEFINED, ``UNICODE\\0`` then UTF-16BE. Written by hand
    because Pillow would type a bytes value as BYTE, which piexif cannot load."""
    comment = b"UNICODE\0" + text.encode("utf-16-be")
    exif_ifd = 8 + 2 + 12 + 4  # after the header and IFD0's one entry
    data_at = exif_ifd + 2 + 12 + 4
    tiff = (
        b"MM\x00\x2a" + struct.pack(">I", 8)
        + struct.pack(">HHHII", 1, 0x8769, 4, 1, exif_ifd) + struct.pack(">I", 0)
        + struct.pack(">HHHII", 1, 0x9286, 7, len(comment), data_at) + struct.pack(">I", 0)
        + comment
    )  # fmt: skip
    return b"Exif\x00\x00" + tiff
