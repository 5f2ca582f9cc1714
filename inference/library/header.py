"""Read a safetensors header (tensor names, dtypes, shapes) without touching the weights.

Format: 8-byte little-endian header length, then that many bytes of JSON mapping each tensor name
to ``{"dtype", "shape", "data_offsets"}`` plus an optional ``__metadata__`` entry.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass

# Real headers of SDXL checkpoints are a few hundred KB; anything near this is not a header.
MAX_HEADER_BYTES = 100 * 1024 * 1024


class HeaderError(ValueError):
    """The file is not a readable safetensors file; the message says why."""


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]

    def shape(self, name: str) -> tuple[int, ...] | None:
        info = self.tensors.get(name)
        return None if info is None else info.shape


def read_header(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """Parse the header of ``path``; raises ``HeaderError`` for anything that is not safetensors.

    ``OSError`` (missing file, permission) propagates so callers can report it as such."""
    with open(path, "rb") as handle:
        file_size = os.fstat(handle.fileno()).st_size
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise HeaderError(f"file too short to be safetensors ({len(prefix)} bytes)")
        (length,) = struct.unpack("<Q", prefix)
        if length < 2 or length > MAX_HEADER_BYTES:
            raise HeaderError("not a safetensors file (implausible header length)")
        if 8 + length > file_size:
            raise HeaderError("truncated safetensors file (header runs past the end)")
        raw = handle.read(length)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HeaderError(f"not a safetensors file (header is not JSON: {exc})") from None
    if not isinstance(data, dict):
        raise HeaderError("not a safetensors file (header is not a JSON object)")
    metadata = data.pop("__metadata__", None) or {}
    tensors: dict[str, TensorInfo] = {}
    data_end = 0
    for name, info in data.items():
        try:
            shape = tuple(int(n) for n in info["shape"])
            start, end = (int(n) for n in info["data_offsets"])
            dtype = str(info["dtype"])
        except (KeyError, TypeError, ValueError):
            raise HeaderError(f"malformed safetensors header entry {name!r}") from None
        tensors[str(name)] = TensorInfo(dtype, shape)
        data_end = max(data_end, end, start)
    if 8 + length + data_end > file_size:
        raise HeaderError(
            f"truncated safetensors file: tensors need {8 + length + data_end} bytes, "
            f"file has {file_size}"
        )
    return SafetensorsHeader(tensors, {str(k): str(v) for k, v in dict(metadata).items()})
