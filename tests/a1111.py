"""AUTOMATIC1111's readers restated for tests: its infotext parser, piexif's reading of an EXIF
UserComment, and sd-webui-controlnet's reading of a unit. Written from their behaviour, so tests
can check that what Impasto writes reads back in those tools."""

from __future__ import annotations

import json
import re
import struct

# ---- AUTOMATIC1111's reader, restated (modules/infotext_utils.py, parse_generation_parameters) --

A1111_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
A1111_SIZE = re.compile(r"^(\d+)x(\d+)$")


def a1111_parse(text: str) -> dict[str, str]:
    result: dict[str, str] = {}
    prompt, negative, done_with_prompt = "", "", False
    *lines, lastline = text.strip().split("\n")
    if len(A1111_PARAM.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ""
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative += ("" if negative == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    result["Prompt"], result["Negative prompt"] = prompt, negative
    for key, value in A1111_PARAM.findall(lastline):
        if value and value[0] == '"' and value[-1] == '"':
            value = json.loads(value)
        size = A1111_SIZE.match(value)
        if size is not None:
            result[f"{key}-1"], result[f"{key}-2"] = size.group(1), size.group(2)
        else:
            result[key] = value
    return result


# ---- piexif's reading of EXIF UserComment (piexif.load + piexif.helper.UserComment.load) --------


def piexif_user_comment(exif: bytes) -> str:
    """Raises where piexif does: a UserComment typed BYTE comes back as a tuple of ints, which
    ``UserComment.load`` cannot read (A1111's fallback ``.decode`` fails on it too)."""
    tiff = exif[6:] if exif.startswith(b"Exif\0\0") else exif
    order = {b"MM": ">", b"II": "<"}[tiff[:2]]

    def entries(offset: int) -> dict[int, tuple[int, int, bytes]]:
        (count,) = struct.unpack_from(order + "H", tiff, offset)
        found = {}
        for index in range(count):
            start = offset + 2 + 12 * index
            tag, kind, length = struct.unpack_from(order + "HHI", tiff, start)
            raw = tiff[start + 8 : start + 12]
            found[tag] = (kind, length, raw)
        return found

    def pointer(raw: bytes) -> int:
        return struct.unpack(order + "I", raw)[0]

    (ifd0,) = struct.unpack_from(order + "I", tiff, 4)
    kind, length, raw = entries(pointer(entries(ifd0)[0x8769][2]))[0x9286]
    data = raw[:length] if length <= 4 else tiff[pointer(raw) : pointer(raw) + length]
    value = data if kind == 7 else tuple(data)  # piexif: UNDEFINED -> bytes, BYTE -> ints
    if not isinstance(value, bytes):
        raise ValueError("UserComment is not UNDEFINED: piexif cannot read it")
    prefix, body = value[:8], value[8:]
    assert prefix == b"UNICODE\0", prefix
    return body.decode("utf-16-be")


# ---- sd-webui-controlnet's reading of a unit (scripts/infotext.py parse_unit) -------------------


def controlnet_parse_unit(text: str) -> dict[str, str]:
    """``"Module: x, Model: y, ..."`` split at ``,`` then at ``: `` (values stay text here)."""
    fields = {}
    for item in text.split(","):
        key, value = item.strip().split(": ")
        fields["_".join(word.lower() for word in key.split(" "))] = value
    return fields
