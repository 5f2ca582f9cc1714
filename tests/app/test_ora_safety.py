"""Hostile and broken project files: only our typed errors come out, nothing is half-read."""

from __future__ import annotations

import contextlib
import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.io.errors import (
    CorruptFileError,
    FileError,
    LayerBoundsError,
    OpenError,
    UnsafeFileError,
    ZipBombError,
    ZipSlipError,
)
from app.io.ora import open_ora, save_ora
from app.io.safety import Limits, check_entry_name
from tests.app.io_samples import every_kind_document
from tests.app.test_ora import _png, write_foreign_ora

ONE_LAYER = '<image w="8" h="8"><stack><layer name="x" src="{src}" x="{x}" y="0"/></stack></image>'


@pytest.fixture(scope="module")
def real_file(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("real") / "real.ora"
    save_ora(every_kind_document(), path)
    return path.read_bytes()


def small_png(w=8, h=8) -> bytes:
    return _png(np.zeros((h, w, 4), np.uint8))


@pytest.mark.parametrize(
    "name",
    [
        "../evil.png",
        "/../etc/passwd",
        "//host/share/x",
        "data/../../x",
        "C:/windows/x",
        "..\\..\\x",
        "a\0b",
    ],
)
def test_entry_names_that_escape_are_refused(name):
    with pytest.raises(ZipSlipError):
        check_entry_name(name)


def test_zip_slip_entry_in_archive(tmp_path):
    path = tmp_path / "slip.ora"
    write_foreign_ora(
        path,
        ONE_LAYER.format(src="data/x.png", x=0),
        {"data/x.png": small_png(), "../../outside.png": small_png()},
    )
    with pytest.raises(ZipSlipError, match="outside the archive"):
        open_ora(path)


def test_zip_slip_layer_source(tmp_path):
    path = tmp_path / "slip2.ora"
    write_foreign_ora(path, ONE_LAYER.format(src="../x.png", x=0), {"data/x.png": small_png()})
    with pytest.raises(ZipSlipError):
        open_ora(path)


def test_too_many_entries(tmp_path):
    path = tmp_path / "many.ora"
    files = {f"junk/{i}.txt": b"" for i in range(20)} | {"data/x.png": small_png()}
    write_foreign_ora(path, ONE_LAYER.format(src="data/x.png", x=0), files)
    with pytest.raises(ZipBombError, match="entries"):
        open_ora(path, Limits(max_entries=10))


def test_declared_uncompressed_size_too_big(tmp_path):
    path = tmp_path / "bomb.ora"
    zeros = b"\0" * (4 << 20)  # deflates to a few KB
    write_foreign_ora(
        path,
        ONE_LAYER.format(src="data/x.png", x=0),
        {"data/x.png": small_png(), "junk.bin": zeros},
    )
    assert path.stat().st_size < 100_000
    with pytest.raises(ZipBombError, match="declares"):
        open_ora(path, Limits(max_entry_bytes=1 << 20))
    with pytest.raises(ZipBombError, match="declares"):
        open_ora(path, Limits(max_total_bytes=2 << 20))


def test_entry_expanding_beyond_its_declared_size(tmp_path):
    """A lying header: the central directory says 100 bytes, the data inflates to 1 MB."""
    path = tmp_path / "liar.ora"
    big_xml = ONE_LAYER.format(src="data/x.png", x=0) + " " * (1 << 20)
    write_foreign_ora(path, big_xml, {"data/x.png": small_png()})
    raw = bytearray(path.read_bytes())
    actual = len(big_xml)
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local and central headers
        start = 0
        while (start := raw.find(sig, start)) >= 0:
            if struct.unpack_from("<I", raw, start + offset)[0] == actual:
                struct.pack_into("<I", raw, start + offset, 100)
            start += 4
    path.write_bytes(bytes(raw))
    with pytest.raises((ZipBombError, CorruptFileError)):
        open_ora(path)


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size (valid CRC), with a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = zlib.compress(b"\0" * 64)
    idat = b"IDAT" + data
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(data))
        + idat
        + struct.pack(">I", zlib.crc32(idat))
        + struct.pack(">I", 0)
        + b"IEND"
        + struct.pack(">I", zlib.crc32(b"IEND"))
    )


def test_layer_with_absurd_size_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.ora"
    write_foreign_ora(
        path,
        ONE_LAYER.format(src="data/x.png", x=0),
        {"data/x.png": _png_claiming(100_000, 100_000)},
    )
    with pytest.raises(LayerBoundsError, match=r"too large|100000x100000"):
        open_ora(path)


def test_total_pixel_budget(tmp_path):
    path = tmp_path / "budget.ora"
    xml = (
        '<image w="64" h="64"><stack>'
        + "".join(f'<layer name="l{i}" src="data/x.png"/>' for i in range(5))
        + "</stack></image>"
    )
    write_foreign_ora(path, xml, {"data/x.png": _png(np.zeros((64, 64, 4), np.uint8))})
    assert len(open_ora(path).layers) == 6
    with pytest.raises(LayerBoundsError, match="together"):
        open_ora(path, Limits(max_total_pixels=64 * 64 * 4))


@pytest.mark.parametrize("w,h", [(0, 10), (10, -1), (10**9, 10), (40000, 40000)])
def test_absurd_canvas(tmp_path, w, h):
    path = tmp_path / "canvas.ora"
    xml = f'<image w="{w}" h="{h}"><stack><layer name="x" src="data/x.png"/></stack></image>'
    write_foreign_ora(path, xml, {"data/x.png": small_png()})
    with pytest.raises(LayerBoundsError):
        open_ora(path)


@pytest.mark.parametrize("x", ["10000000", "1e300", "nan", "inf", "abc"])
def test_absurd_or_bad_offsets(tmp_path, x):
    path = tmp_path / "offset.ora"
    write_foreign_ora(path, ONE_LAYER.format(src="data/x.png", x=x), {"data/x.png": small_png()})
    with pytest.raises((LayerBoundsError, UnsafeFileError, CorruptFileError)):
        open_ora(path)


def test_xml_entity_bomb(tmp_path):
    xml = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        '<image w="8" h="8"><stack><layer name="&lol2;" src="data/x.png"/></stack></image>'
    )
    path = tmp_path / "xml.ora"
    write_foreign_ora(path, xml, {"data/x.png": small_png()})
    with pytest.raises(UnsafeFileError, match="entities"):
        open_ora(path)


@pytest.mark.parametrize(
    "content,error",
    [
        (b"", CorruptFileError),
        (b"not a zip at all", CorruptFileError),
        (b"PK\x03\x04" + b"\0" * 40, CorruptFileError),
    ],
)
def test_not_an_ora(tmp_path, content, error):
    path = tmp_path / "bad.ora"
    path.write_bytes(content)
    with pytest.raises(error, match=r"bad\.ora"):
        open_ora(path)


def test_wrong_mimetype_missing_stack_missing_layer(tmp_path):
    path = tmp_path / "x.ora"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", b"application/zip")
        archive.writestr("stack.xml", ONE_LAYER.format(src="data/x.png", x=0))
    with pytest.raises(CorruptFileError, match="mimetype"):
        open_ora(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", b"image/openraster")
    with pytest.raises(CorruptFileError, match=r"stack\.xml"):
        open_ora(path)
    write_foreign_ora(path, ONE_LAYER.format(src="data/missing.png", x=0), {})
    with pytest.raises(CorruptFileError, match=r"missing\.png"):
        open_ora(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(OpenError, match="not found"):
        open_ora(tmp_path / "nope.ora")
    with pytest.raises(OpenError, match="folder"):
        open_ora(tmp_path)


def test_truncated_files(real_file, tmp_path):
    path = tmp_path / "cut.ora"
    for length in (10, 100, len(real_file) // 3, len(real_file) // 2, len(real_file) - 30):
        path.write_bytes(real_file[:length])
        with pytest.raises(FileError):
            open_ora(path)


def test_damaged_layer_png(tmp_path):
    png = bytearray(small_png(32, 32))
    png[40:60] = b"\xff" * 20
    path = tmp_path / "png.ora"
    write_foreign_ora(path, ONE_LAYER.format(src="data/x.png", x=0), {"data/x.png": bytes(png)})
    with pytest.raises(CorruptFileError, match="layer 'x'"):
        open_ora(path)


# ---- fuzzing ----------------------------------------------------------------------------------

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_real_file(real_file, tmp_path_factory, data):
    raw = bytearray(real_file)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            raw[position] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del raw[position : position + data.draw(st.integers(1, 64))]
        else:
            raw[position:position] = data.draw(st.binary(min_size=1, max_size=16))
        if not raw:
            raw = bytearray(b"\0")
    path = tmp_path_factory.mktemp("fuzz") / "m.ora"
    path.write_bytes(bytes(raw))
    with contextlib.suppress(FileError):
        open_ora(path)


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_entries(real_file, tmp_path_factory, data):
    """Repack the real file with one entry's content mutated, so the parsers behind the zip layer
    (XML, JSON, PNG, npy, pose) see the damage rather than the zip CRC check."""
    with zipfile.ZipFile(io.BytesIO(real_file)) as archive:
        entries = {info.filename: archive.read(info) for info in archive.infolist()}
    name = data.draw(st.sampled_from(sorted(entries)))
    content = bytearray(entries[name])
    if content and data.draw(st.booleans()):
        for _ in range(data.draw(st.integers(1, 6))):
            position = data.draw(st.integers(0, len(content) - 1))
            content[position] = data.draw(st.integers(0, 255))
    else:
        content = content[: data.draw(st.integers(0, max(0, len(content) - 1)))]
    entries[name] = bytes(content)
    path = tmp_path_factory.mktemp("fuzz") / "e.ora"
    with zipfile.ZipFile(path, "w") as archive:
        for entry, value in entries.items():
            archive.writestr(entry, value)
    with contextlib.suppress(FileError):
        open_ora(path)


@FUZZ
@given(
    w=st.one_of(st.integers(-5, 70), st.text(max_size=4)),
    x=st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=True), st.text(max_size=5)),
    opacity=st.one_of(st.floats(allow_nan=True), st.text(max_size=4)),
    name=st.text(max_size=10),
    kind=st.sampled_from(["image", "mask", "pose", "preview", "result", "bogus", ""]),
)
def test_fuzz_stack_attributes(tmp_path_factory, w, x, opacity, name, kind):
    from xml.sax.saxutils import quoteattr

    xml = (
        f'<image xmlns:impasto="https://github.com/impasto/impasto/ns/openraster/1" '
        f'w={quoteattr(str(w))} h="8"><stack><layer name={quoteattr(name)} src="data/x.png" '
        f"x={quoteattr(str(x))} opacity={quoteattr(str(opacity))} "
        f'impasto:kind={quoteattr(kind)} impasto:data="impasto/none.json"/></stack></image>'
    )
    path = tmp_path_factory.mktemp("fuzz") / "s.ora"
    files = {"data/x.png": _png(np.zeros((3, 3, 4), np.uint8)), "impasto/none.json": b"[1]"}
    write_foreign_ora(path, xml, files)
    with contextlib.suppress(FileError):
        open_ora(path)


def test_png_helper_is_a_png():
    assert Image.open(io.BytesIO(_png_claiming(3, 3))).size == (3, 3)
