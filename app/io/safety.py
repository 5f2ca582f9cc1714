"""Limits that keep a hostile or broken file from harming the machine.

Archives are read in memory, never extracted, but entry paths that would escape a folder are
still refused (zip slip), as are archives whose declared or actual uncompressed size or entry
count is unreasonable (zip bomb), and canvases or layers with absurd sizes or offsets.
Every refusal is a typed :class:`~app.io.errors.UnsafeFileError`.
"""

from __future__ import annotations

import io
import re
import threading
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
from PIL import Image

from app.io.errors import CorruptFileError, LayerBoundsError, ZipBombError, ZipSlipError

MAX_CANVAS_SIDE = 32768  # the Document's own limit (app.document.MAX_SIDE)
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Limits:
    """What a file may ask of us. The defaults open an 8192x8192 project with dozens of layers."""

    max_entries: int = 10_000
    max_entry_bytes: int = 2 << 30  # one uncompressed archive entry
    max_total_bytes: int = 8 << 30  # all entries together, uncompressed
    max_text_bytes: int = 64 << 20  # stack.xml, JSON
    max_canvas_side: int = MAX_CANVAS_SIDE
    max_layer_pixels: int = 100_000_000  # the canvas and each layer: the pixel limit (Settings)
    max_total_pixels: int = 1_500_000_000  # all layers of one file (6 GB of RGBA)
    max_offset: int = 4 * MAX_CANVAS_SIDE  # |x|, |y| of a layer's top-left corner
    max_layers: int = 2_000


DEFAULT_LIMITS = Limits()


def limits_for(pixel_limit: int) -> Limits:
    """The limits of a file opened under the pixel limit of Settings: the canvas and every
    layer at most ``pixel_limit`` pixels, all layers together at most 15 times that."""
    if pixel_limit == DEFAULT_LIMITS.max_layer_pixels:
        return DEFAULT_LIMITS
    return Limits(
        max_layer_pixels=pixel_limit,
        max_total_pixels=max(DEFAULT_LIMITS.max_total_pixels, 15 * pixel_limit),
    )


def check_document_budget(
    canvas: tuple[int, int], layers: list[tuple[int, int]], limits: Limits, what: str = "it"
) -> None:
    """Refuse a document whose layers and canvas together need more pixels than the limits
    allow, or more memory than this machine has, before any of them is allocated."""
    width, height = canvas
    for w, h in layers:
        if w * h > limits.max_layer_pixels:
            raise LayerBoundsError(
                f"a layer is {w}x{h} pixels ({w * h / 1e6:.0f} MP), above the limit of "
                f"{limits.max_layer_pixels / 1e6:.0f} MP; raise the limit in Settings if you "
                "trust this file"
            )
    total = sum(w * h for w, h in layers)
    if total > limits.max_total_pixels:
        raise LayerBoundsError(
            f"its layers hold {total / 1e6:.0f} MP together, above the limit of "
            f"{limits.max_total_pixels / 1e6:.0f} MP"
        )
    # RGBA layers, plus the flattened picture and the canvas's own buffers
    needed = 4 * (total + 2 * width * height)
    from app.image_io import available_memory

    available = available_memory()
    if available is not None and needed > available:
        raise LayerBoundsError(
            f"{what} needs about {needed / 2**30:.1f} GB of memory to open; "
            f"{available / 2**30:.1f} GB is available"
        )


def entry_info(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo | None:
    """The entry ``name`` (checked), also when one writer stored it with a leading ``/`` and
    the stack names it without (or the other way round); None when absent."""
    check_entry_name(name)
    for candidate in (name, name[1:] if name.startswith("/") else "/" + name):
        try:
            return archive.getinfo(candidate)
        except KeyError:
            continue
    return None


def png_size(archive: zipfile.ZipFile, name: str) -> tuple[int, int] | None:
    """Width and height from a PNG entry's header (its first 24 bytes), or None when the entry
    is not a PNG (its size is then checked when it is decoded)."""
    info = entry_info(archive, name)
    if info is None:
        return None
    with archive.open(info) as stream:
        head = stream.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def check_entry_name(name: str) -> None:
    """Refuse entry paths that climb out of the archive or name another drive or host.

    One leading ``/`` is accepted as the archive root: some ORA writers (pyora) produce
    ``/data/layer0.png``, and since entries are read in memory, never extracted, it is harmless.
    """
    if not name or "\0" in name:
        raise ZipSlipError(f"archive entry {name!r} has an invalid name")
    posix = name.replace("\\", "/")
    posix = posix[1:] if posix.startswith("/") else posix
    if posix.startswith("/") or _DRIVE.match(posix) or ".." in PurePosixPath(posix).parts:
        raise ZipSlipError(
            f"archive entry {name!r} points outside the archive; the file was refused"
        )


def check_archive(archive: zipfile.ZipFile, limits: Limits = DEFAULT_LIMITS) -> None:
    """Check entry names, count and declared sizes before anything is decompressed."""
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise ZipBombError(
            f"the archive has {len(infos)} entries (at most {limits.max_entries} are accepted)"
        )
    total = 0
    seen: set[str] = set()
    for info in infos:
        check_entry_name(info.filename)
        if info.filename in seen:
            raise CorruptFileError(f"the archive holds {info.filename!r} twice")
        seen.add(info.filename)
        if info.file_size > limits.max_entry_bytes:
            raise ZipBombError(
                f"archive entry {info.filename!r} declares {info.file_size / 2**20:.0f} MB "
                f"uncompressed (at most {limits.max_entry_bytes / 2**20:.0f} MB)"
            )
        total += info.file_size
    if total > limits.max_total_bytes:
        raise ZipBombError(
            f"the archive declares {total / 2**30:.1f} GB uncompressed "
            f"(at most {limits.max_total_bytes / 2**30:.1f} GB)"
        )


def read_entry(
    archive: zipfile.ZipFile, name: str, max_bytes: int, budget: ReadBudget | None = None
) -> bytes:
    """Read one entry, counting what actually comes out of the decompressor."""
    info = entry_info(archive, name)
    if info is None:
        raise CorruptFileError(f"the archive has no entry {name!r}")
    limit = min(max_bytes, info.file_size)
    out = io.BytesIO()
    with archive.open(info) as stream:
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            out.write(chunk)
            if out.tell() > limit:
                raise ZipBombError(
                    f"archive entry {name!r} expands beyond "
                    f"{'its declared size' if limit == info.file_size else 'the size limit'}"
                )
    data = out.getvalue()
    if budget is not None:
        budget.spend_bytes(len(data), name)
    return data


class ReadBudget:
    """Running totals while reading one file: bytes decompressed, pixels decoded."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS):
        self.limits = limits
        self.bytes = 0
        self.pixels = 0
        self._lock = threading.Lock()  # layers are decoded on a few threads

    def spend_bytes(self, amount: int, what: str) -> None:
        with self._lock:
            self.bytes += amount
            total = self.bytes
        if total > self.limits.max_total_bytes:
            raise ZipBombError(f"the file expands beyond {self.limits.max_total_bytes} bytes")

    def spend_pixels(self, width: int, height: int, what: str) -> None:
        pixels = width * height
        if pixels > self.limits.max_layer_pixels:
            raise LayerBoundsError(
                f"{what} is {width}x{height} pixels, above the limit of "
                f"{self.limits.max_layer_pixels / 1e6:.0f} MP for one layer"
            )
        with self._lock:
            self.pixels += pixels
            total = self.pixels
        if total > self.limits.max_total_pixels:
            raise LayerBoundsError(
                f"the layers hold more than {self.limits.max_total_pixels / 1e6:.0f} MP together"
            )


def check_canvas(width: int, height: int, limits: Limits = DEFAULT_LIMITS) -> None:
    side = limits.max_canvas_side
    if not (0 < width <= side and 0 < height <= side):
        raise LayerBoundsError(f"the canvas size {width}x{height} is outside 1..{side} pixels")
    if width * height > limits.max_layer_pixels:
        raise LayerBoundsError(
            f"the canvas is {width}x{height} ({width * height / 1e6:.0f} MP), above the limit of "
            f"{limits.max_layer_pixels / 1e6:.0f} MP; raise the limit in Settings if you trust "
            "this file"
        )


def check_offset(x: int, y: int, what: str, limits: Limits = DEFAULT_LIMITS) -> None:
    if abs(x) > limits.max_offset or abs(y) > limits.max_offset:
        raise LayerBoundsError(f"{what} is placed at an absurd offset ({x}, {y})")


def _to_array(image: Image.Image, rows: int = 512) -> np.ndarray:
    """A writable RGBA array, copied band by band: ``np.array(image)`` would hold a second full
    copy (Pillow's ``tobytes``) at its peak, 256 MB more for an 8k layer."""
    width, height = image.size
    out = np.empty((height, width, 4), np.uint8)
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(height, top + rows)))
        out[top : top + band.height] = np.asarray(band)
    return out


def decode_png(data: bytes, what: str, budget: ReadBudget, *, mask: bool = False) -> np.ndarray:
    """Decode an image entry to RGBA (h, w, 4) or, with ``mask``, one channel (h, w).

    The size is checked from the header before any pixel is decompressed. A mask takes the alpha
    channel when the image has one (how Impasto stores masks), else the grey value.
    """
    from app.image_io import open_with_limit

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with open_with_limit(io.BytesIO(data), budget.limits.max_layer_pixels) as image:
                width, height = image.size
                budget.spend_pixels(width, height, what)
                image.load()
                if mask:
                    band = image.getchannel("A") if "A" in image.getbands() else image.convert("L")
                    return np.array(band, np.uint8)
                return _to_array(image if image.mode == "RGBA" else image.convert("RGBA"))
    except LayerBoundsError:
        raise
    except Image.DecompressionBombError as err:
        raise LayerBoundsError(f"{what} is too large to decode: {err}") from err
    except MemoryError as err:
        raise LayerBoundsError(f"{what} needs more memory than is available") from err
    except Exception as err:  # PIL raises many types for broken data
        raise CorruptFileError(f"{what} is damaged or not an image ({err})") from err
