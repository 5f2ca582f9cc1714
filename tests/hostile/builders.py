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
    return png_bytes(Image.fromarray(values.astype(np.uint16), "I;16"))
