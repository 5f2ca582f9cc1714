"""Small writers of hand-made (often broken) files, so the corpus needs no checked-in binaries."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from typing import Any

import numpy as np
from PIL import Image


def png_bytes(image: Image.Image, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **params)
    return buffer.getvalue()


def small_png(w: int = 8, h: int = 8, colour=(200, 30, 40, 255)) -> bytes:
    return png_bytes(Image.new("RGBA", (w, h), colour))


def png_claiming(width: int, height: int, mode: int = 6) -> bytes:
    """A PNG header declaring ``width`` x ``height`` RGBA with a tiny (wrong) body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    body = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def ora_bytes(
    stack_xml: str | bytes,
    entries: dict[str, bytes | str | Any] | None = None,
    *,
    mimetype: bytes = b"image/openraster",
) -> bytes:
    """An OpenRaster zip with this stack.xml and extra entries (dicts/lists become JSON)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), mimetype, compress_type=zipfile.ZIP_STORED)
        archive.writestr("stack.xml", stack_xml)
        for name, value in (entries or {}).items():
            if isinstance(value, (dict, list)):
                value = json.dumps(value)
            archive.writestr(name, value)
    return buffer.getvalue()


IMPASTO_NS = "https://github.com/impasto/impasto/ns/openraster/1"


def impasto_ora(
    layers: list[dict[str, Any]], width: int = 64, height: int = 48, document: Any = None
) -> bytes:
    """An Impasto-style .ora. Each layer dict: ``name``, ``kind``, ``png`` (bytes), ``x``,
    ``y``, ``attrs`` (extra raw XML attribute text), ``meta`` (impasto/layers JSON)."""
    rows, entries = [], {}
    for index, layer in enumerate(layers):
        src = f"data/layer{index:03d}.png"
        entries[src] = layer.get("png", small_png())
        extra = layer.get("attrs", "")
        if "meta" in layer:
            meta_name = f"impasto/layers/layer{index:03d}.json"
            entries[meta_name] = layer["meta"]
            extra += f' impasto:data="{meta_name}"'
        rows.append(
            f'<layer name="{layer.get("name", f"L{index}")}" src="{src}" '
            f'x="{layer.get("x", 0)}" y="{layer.get("y", 0)}" '
            f'impasto:kind="{layer.get("kind", "image")}"{extra}/>'
        )
    entries["impasto/document.json"] = document if document is not None else {"format": 1}
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><image xmlns:impasto="{IMPASTO_NS}" '
        f'version="0.0.5" w="{width}" h="{height}"><stack>{"".join(reversed(rows))}</stack></image>'
    )
    return ora_bytes(xml, entries)


def grey16_png(values: np.ndarray) -> bytes:
    values = values.astype("<u2")
    return png_bytes(Image.frombytes("I;16", (values.shape[1], values.shape[0]), values.tobytes()))


# ---- ICC profiles written by hand (ICC v2 matrix/TRC), so colour tests need no profile files --


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)


def _curve(gamma: float) -> bytes:
    return b"curv" + b"\0" * 4 + struct.pack(">I", 1) + struct.pack(">H", round(gamma * 256))


def _desc(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return (
        b"desc"
        + b"\0" * 4
        + struct.pack(">I", len(ascii_text))
        + ascii_text
        + b"\0" * 8  # no Unicode description
        + b"\0" * 3  # no ScriptCode
        + b"\0" * 67
    )


def _profile(colour_space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table, data = struct.pack(">I", len(tags)), b""
    for signature, body in tags:
        while (offset + len(data)) % 4:
            data += b"\0"
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = 128 + table_size + len(data)
    header = (
        struct.pack(">I", size)
        + b"none"
        + bytes([2, 0x10, 0, 0])
        + b"mntr"
        + colour_space
        + b"XYZ "
        + b"\0" * 12  # date
        + b"acsp"
        + b"\0" * 28
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)  # D50 illuminant
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + table + data


def linear_rgb_icc() -> bytes:
    """sRGB primaries with a linear (gamma 1.0) tone curve: 50% linear is ~188 in sRGB."""
    d50_primaries = {
        b"rXYZ": (0.4361, 0.2225, 0.0139),
        b"gXYZ": (0.3851, 0.7169, 0.0971),
        b"bXYZ": (0.1431, 0.0606, 0.7141),
    }
    tags = [(b"desc", _desc("linear sRGB")), (b"wtpt", _xyz(0.9642, 1.0, 0.8249))]
    tags += [(sig, _xyz(*xyz)) for sig, xyz in d50_primaries.items()]
    tags += [(sig, _curve(1.0)) for sig in (b"rTRC", b"gTRC", b"bTRC")]
    return _profile(b"RGB ", tags)


def linear_grey_icc() -> bytes:
    """A grey profile with a linear tone curve."""
    tags = [
        (b"desc", _desc("linear grey")),
        (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
        (b"kTRC", _curve(1.0)),
    ]
    return _profile(b"GRAY", tags)
