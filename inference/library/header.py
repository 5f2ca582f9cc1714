"""Read a safetensors header (tensor names, dtypes, shapes) without touching the weights.

Format: 8-byte little-endian header length, then that many bytes of JSON mapping each tensor name
to ``{"dtype", "shape", "data_offsets"}`` plus an optional ``__metadata__`` entry.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from inference import safe_json

# Real headers of SDXL checkpoints are a few hundred KB; anything near this is not a header.
MAX_HEADER_BYTES = 100 * 1024 * 1024
MAX_HEADER_DEPTH = 8  # tensor entries are two levels deep; metadata values are strings
MAX_RANK = 8
MAX_COUNT = 2**53  # any size or offset beyond this is not a real file


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
        data = safe_json.loads(raw, max_depth=MAX_HEADER_DEPTH)
    except safe_json.JSONError as exc:
        raise HeaderError(f"not a safetensors file (header is not JSON we accept: {exc})") from None
    if not isinstance(data, dict):
        raise HeaderError("not a safetensors file (header is not a JSON object)")
    metadata = data.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise HeaderError(f"malformed safetensors header: __metadata__ is {_json_type(metadata)}")
    tensors: dict[str, TensorInfo] = {}
    data_end = 0
    for name, info in data.items():
        shape, _start, end, dtype = _tensor_entry(name, info)
        tensors[str(name)] = TensorInfo(dtype, shape)
        data_end = max(data_end, end)
    if 8 + length + data_end > file_size:
        raise HeaderError(
            f"truncated safetensors file: tensors need {8 + length + data_end} bytes, "
            f"file has {file_size}"
        )
    return SafetensorsHeader(tensors, {str(k): _text(v) for k, v in metadata.items()})


def _tensor_entry(name: str, info: object) -> tuple[tuple[int, ...], int, int, str]:
    """(shape, start, end, dtype) of one header entry, every value checked."""
    where = f"malformed safetensors header entry {name[:80]!r}"
    if not isinstance(info, dict):
        raise HeaderError(f"{where}: not an object")
    shape, offsets, dtype = info.get("shape"), info.get("data_offsets"), info.get("dtype")
    if not isinstance(shape, list) or len(shape) > MAX_RANK:
        raise HeaderError(f"{where}: shape is not a list of at most {MAX_RANK} sizes")
    if not all(_count(n) for n in shape):
        raise HeaderError(f"{where}: shape {_clip(shape)} is not whole non-negative numbers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_count(n) for n in offsets):
        raise HeaderError(f"{where}: data_offsets {_clip(offsets)} is not two byte offsets")
    if offsets[0] > offsets[1]:
        raise HeaderError(f"{where}: data_offsets run backwards")
    if not isinstance(dtype, str) or not dtype or len(dtype) > 16:
        raise HeaderError(f"{where}: dtype {_clip(dtype)} is not a type name")
    return tuple(shape), offsets[0], offsets[1], dtype


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)[:1000]


def _clip(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_type(value: object) -> str:
    return {list: "a list", str: "a string", bool: "a boolean"}.get(type(value), "not an object")
