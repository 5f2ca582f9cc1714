"""Property: every document that opens saves to a project that opens again, with equal layers.

Hypothesis writes .ora files with arbitrary stack.xml attribute values, layer kinds and
``impasto/layers/*.json`` content (extra attributes with any names and values, control settings
and poses of any JSON shape, recipes), and images in every Pillow mode; whatever Impasto opens
must survive save + open unchanged."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app import files
from tests.hostile.builders import IMPASTO_NS, ora_bytes, small_png

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
ATTR_NAMES = st.sampled_from(
    ["composite-op", "a b", "x\u0001", "1x", "selected", "krita:x", "{urn:x}y", "name", "ok-1"]
) | st.text(max_size=6)
ATTR_VALUES = (
    st.text(max_size=10)
    | st.integers()
    | st.none()
    | st.sampled_from(["svg:multiply", "svg:src-over", "svg:mul tiply", "bad\u0001op"])
)
KINDS = st.sampled_from(
    ["image", "mask", "sketch", "pose", "control", "result", "preview", "group", "x"]
)
XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10
).map(lambda t: "".join(c for c in t if c in "\t\n\r" or ord(c) >= 0x20))
NUMBER_TEXT = st.one_of(
    st.integers(-200, 200).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "abc", "1e308", "-0", "9" * 40]),
)
POSE_POINT = st.tuples(
    st.floats(allow_nan=True, allow_infinity=True) | st.integers(-100, 200),
    st.floats(-10, 100) | st.integers(-100, 200),
    st.booleans() | st.integers(0, 1),
).map(list)
POSE = st.fixed_dictionaries(
    {
        "width": st.sampled_from([64, 0, -5, 10**6, 64.0, "64"]),
        "height": st.just(48),
        "people": st.lists(
            st.fixed_dictionaries(
                {"pose_keypoints_2d": st.lists(POSE_POINT, min_size=18, max_size=18)}
            ),
            max_size=1,
        ),
    }
)


@st.composite
def ora_files(draw) -> bytes:
    rows, entries = [], {"impasto/document.json": {"format": 1}}
    for index in range(draw(st.integers(1, 3))):
        src = f"data/l{index}.png"
        w, h = draw(st.integers(1, 12)), draw(st.integers(1, 12))
        colour = (index * 70 % 256, 40, 200, draw(st.integers(0, 255)))
        entries[src] = small_png(w, h, colour)
        attrs = {
            "src": src,
            "name": draw(XML_TEXT),
            "x": draw(st.integers(-60, 60).map(str) if draw(st.integers(0, 4)) else NUMBER_TEXT),
            "y": draw(st.integers(-50, 50).map(str)),
            "opacity": draw(st.floats(0, 1).map(repr) if draw(st.integers(0, 4)) else NUMBER_TEXT),
            "visibility": draw(st.sampled_from(["visible", "hidden", "x"])),
            "impasto:kind": draw(KINDS),
        }
        if draw(st.booleans()):
            attrs["composite-op"] = draw(XML_TEXT | st.just("svg:multiply"))
        meta: dict = {}
        if draw(st.booleans()):
            ora_attrs = draw(st.dictionaries(ATTR_NAMES, ATTR_VALUES, max_size=4))
            meta["extra"] = {"ora_attrs": ora_attrs, "note": draw(JSON)}
        if draw(st.booleans()):
            meta["control"] = draw(
                st.dictionaries(
                    st.sampled_from(["weight", "start", "end", "enabled", "params", "model_path"]),
                    JSON,
                    max_size=4,
                )
            )
        if attrs["impasto:kind"] == "pose" and draw(st.booleans()):
            meta["pose"] = draw(POSE)
        if draw(st.booleans()):
            meta["recipe"] = draw(JSON)
        if meta:
            name = f"impasto/layers/l{index}.json"
            entries[name] = meta
            attrs["impasto:data"] = name
        rows.append("<layer " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + "/>")
    xml = (
        f'<?xml version="1.0"?><image xmlns:impasto="{IMPASTO_NS}" w="64" h="48">'
        f"<stack>{''.join(rows)}</stack></image>"
    )
    import json

    packed = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in entries.items()}
    return ora_bytes(xml, packed)


def _same(a, b, where: str) -> None:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    if isinstance(a, np.ndarray):
        assert np.array_equal(a, b), where
        return
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
        return
    if isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{index}]")
        return
    assert a == b, f"{where}: {a!r} != {b!r}"


def assert_round_trip(path: Path, folder: Path) -> None:
    try:
        doc = files.open_document(path)
    except files.FileError as err:
        assert "\n" not in str(err) and str(err)
        return
    from app.layers import LayerKind

    for layer in doc.layers:  # a consistent model: groups and poses hold no pixels
        if layer.kind in (LayerKind.GROUP, LayerKind.POSE):
            assert layer.raster is None or layer.raster.rect.is_empty, layer
    target = folder / "again.ora"
    files.save_project(doc, target)
    again = files.open_document(target)
    assert len(again.layers) == len(doc.layers)
    for x, y in zip(doc.layers, again.layers, strict=True):
        where = f"layer {x.name!r}"
        assert (x.kind, x.name, x.visible, x.locked) == (y.kind, y.name, y.visible, y.locked)
        assert x.opacity == y.opacity, where
        if x.raster is not None:
            assert x.raster.rect == y.raster.rect, where
            assert np.array_equal(x.raster.data, y.raster.data), where
        _same(x.extra, y.extra, f"{where}.extra")
        _same(x.recipe, y.recipe, f"{where}.recipe")
        assert x.control == y.control, where
        assert x.pose == y.pose, where


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=ora_files())
def test_every_ora_that_opens_saves_to_one_that_opens_equal(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.ora"
        path.write_bytes(data)
        assert_round_trip(path, Path(folder))


MODES = ["1", "L", "P", "LA", "PA", "RGB", "RGBA", "CMYK", "I", "F", "I;16", "LAB", "YCbCr"]


@settings(max_examples=40, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    fmt=st.sampled_from(["PNG", "TIFF", "WEBP", "JPEG", "BMP"]),
    seed=st.integers(0, 1000),
)
def test_every_image_that_opens_saves_to_one_that_opens_equal(mode, fmt, seed):
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 256, (6, 9, 3), dtype=np.uint8), "RGB")
    if mode == "I;16":
        image = Image.frombytes("I;16", (9, 6), rng.integers(0, 65536, (6, 9), "<u2").tobytes())
    elif mode in ("I", "F"):
        image = base.convert("L").convert(mode)
    elif mode == "LAB":
        from PIL import ImageCms

        transform = ImageCms.buildTransform(
            ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"
        )
        image = ImageCms.applyTransform(base, transform)
    else:
        image = base.convert(mode)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"in.{fmt.lower()}"
        try:
            image.save(path, format=fmt)
        except (OSError, ValueError, KeyError):
            return  # Pillow cannot write this mode in this format
        assert_round_trip(path, Path(folder))


ROLE_JSON = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(
            ["mask", "sketch", "pose", "control", "result", "image", "group", "preview", "x", 3]
        ),
        "visible": st.booleans() | st.integers(),
        "locked": st.booleans() | st.none(),
        "opacity": st.floats(allow_nan=True, allow_infinity=True),
        "recipe": JSON,
        "control": st.dictionaries(st.sampled_from(["weight", "start", "params"]), JSON),
        "pose": POSE,
        "arrays": st.dictionaries(st.text(max_size=4), st.text(max_size=8)),
    },
)


@st.composite
def psd_files(draw) -> bytes:
    import io
    import json

    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer
    from psd_tools.constants import Tag
    from psd_tools.psd.tagged_blocks import MetadataSetting, MetadataSettings, TaggedBlock

    psd = PSDImage.new("RGBA", (32, 24), color=(0, 0, 0, 0))
    for index in range(draw(st.integers(1, 3))):
        w, h = draw(st.integers(1, 10)), draw(st.integers(1, 10))
        image = Image.new("RGBA", (w, h), (index * 80 % 256, 50, 90, draw(st.integers(0, 255))))
        name = draw(st.text(max_size=8)) + draw(st.sampled_from(["", "\x00", "\x07"]))
        layer = PixelLayer.frompil(
            image, psd, "L", top=draw(st.integers(-8, 30)), left=draw(st.integers(-8, 30))
        )
        layer.name = name[:60]
        layer.opacity = draw(st.integers(0, 255))
        layer.visible = draw(st.booleans())
        if draw(st.booleans()):
            role = json.dumps(draw(ROLE_JSON)).encode()
            item = MetadataSetting(key=b"impa", copy_on_sheet=True, data=role)
            layer._record.tagged_blocks[Tag.METADATA_SETTING] = TaggedBlock(
                key=Tag.METADATA_SETTING, data=MetadataSettings([item])
            )
    buffer = io.BytesIO()
    psd.save(buffer)
    return buffer.getvalue()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=psd_files())
def test_every_psd_that_opens_saves_to_one_that_opens_equal(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.psd"
        path.write_bytes(data)
        assert_round_trip(path, Path(folder))
