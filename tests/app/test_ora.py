"""OpenRaster project files: round trips of every layer kind and conformance to the spec."""

from __future__ import annotations

import io
import json
import zipfile
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.compose import composite
from app.document import Document
from app.geometry import Rect
from app.io.ora import NS, open_ora, save_ora
from app.layers import LayerKind
from inference.openpose import parse_pose_json
from tests.app.io_samples import (
    assert_same_layers,
    assert_same_value,
    every_kind_document,
    random_rgba,
    stored_pixels,
)


@pytest.fixture
def doc():
    return every_kind_document()


@pytest.fixture
def saved(doc, tmp_path):
    path = tmp_path / "project.ora"
    save_ora(doc, path)
    return path


def test_round_trip_keeps_every_layer_kind(doc, saved):
    back = open_ora(saved)
    assert [layer.kind for layer in back.layers] == [
        LayerKind.IMAGE,
        LayerKind.SKETCH,
        LayerKind.RESULT,
        LayerKind.CONTROL,
        LayerKind.POSE,
        LayerKind.IMAGE,
        LayerKind.MASK,
    ]
    assert_same_layers(doc, back)
    assert_same_value(doc.generation_state, back.generation_state, "generation_state")
    assert back.active_layer.name == "Result ★"
    assert back.selection.rect == doc.selection.rect
    assert np.array_equal(back.selection.data, doc.selection.data)
    assert back.path == saved
    assert not back.is_modified


def test_recipe_arrays_and_tuples_come_back_typed(doc, saved):
    recipe = open_ora(saved).layers[2].recipe
    assert recipe["size"] == (512, 768)
    image = recipe["controls"][0]["image"]
    assert image.dtype == np.uint8 and image.shape == (8, 6, 3)
    assert np.array_equal(image, doc.layers[2].recipe["controls"][0]["image"])


def test_pose_keeps_hidden_joint_positions(doc, saved):
    original = doc.layers[4].pose
    back = open_ora(saved).layers[4].pose
    assert back == original  # hidden points keep their place (OpenPose JSON would lose it)
    hidden = [p for person in back.people for p in person.body if not p.visible]
    assert hidden and all(p.x != 0 or p.y != 0 for p in hidden)


def test_saving_twice_gives_the_same_layers(doc, saved, tmp_path):
    again = tmp_path / "again.ora"
    save_ora(open_ora(saved), again)
    assert_same_layers(doc, open_ora(again))


def test_preview_layer_is_never_saved(doc, tmp_path):
    doc.show_preview(7, Rect(0, 0, 8, 8), np.zeros((8, 8, 3), np.uint8))
    path = tmp_path / "p.ora"
    save_ora(doc, path)
    back = open_ora(path)
    assert back.preview is None
    assert all(layer.kind is not LayerKind.PREVIEW for layer in back.layers)


# ---- the spec, checked with plain zipfile + ElementTree ----------------------------------------


def test_mimetype_is_first_and_stored(saved):
    with zipfile.ZipFile(saved) as archive:
        first = archive.infolist()[0]
        assert first.filename == "mimetype"
        assert first.compress_type == zipfile.ZIP_STORED
        assert archive.read("mimetype") == b"image/openraster"
    raw = saved.read_bytes()
    assert raw[30:38] == b"mimetype" and raw[38:54] == b"image/openraster"  # magic at offset 38


def test_stack_xml_describes_layers_top_first(doc, saved):
    with zipfile.ZipFile(saved) as archive:
        root = ET.fromstring(archive.read("stack.xml"))
        assert root.tag == "image"
        assert (int(root.get("w")), int(root.get("h"))) == (doc.width, doc.height)
        layers = root.find("stack").findall("layer")
        assert [e.get("name") for e in layers] == [layer.name for layer in reversed(doc.layers)]
        for element, layer in zip(layers, reversed(doc.layers), strict=True):
            assert float(element.get("opacity")) == layer.opacity
            assert element.get(f"{{{NS}}}kind") == layer.kind.value
            png = Image.open(io.BytesIO(archive.read(element.get("src"))))
            assert png.format == "PNG"
            if layer.raster is not None and not layer.raster.rect.is_empty:
                assert (int(element.get("x")), int(element.get("y"))) == (
                    layer.raster.x,
                    layer.raster.y,
                )
                assert png.size == (layer.raster.rect.w, layer.raster.rect.h)
        by_name = {e.get("name"): e for e in layers}
        # picture layers keep their visibility; helper layers are hidden for other apps
        assert by_name["Background"].get("visibility") == "visible"
        assert by_name["Result ★"].get("visibility") == "visible"
        assert by_name["Inpaint mask"].get("visibility") == "hidden"
        assert by_name["Pose"].get("visibility") == "hidden"
        assert by_name["Empty & <locked>"].get("visibility") == "hidden"


def test_layer_pngs_hold_the_exact_pixels(doc, saved):
    with zipfile.ZipFile(saved) as archive:
        root = ET.fromstring(archive.read("stack.xml"))
        src = {e.get("name"): e.get("src") for e in root.iter("layer")}
        result = np.asarray(Image.open(io.BytesIO(archive.read(src["Result ★"]))))
        assert np.array_equal(result, doc.layers[2].raster.data)
        mask = Image.open(io.BytesIO(archive.read(src["Inpaint mask"])))
        assert np.array_equal(np.asarray(mask.getchannel("A")), doc.mask_layer.raster.data)


def test_merged_image_and_thumbnail(doc, saved):
    with zipfile.ZipFile(saved) as archive:
        merged = np.asarray(Image.open(io.BytesIO(archive.read("mergedimage.png"))))
        thumb = Image.open(io.BytesIO(archive.read("Thumbnails/thumbnail.png")))
    assert np.array_equal(merged, composite(doc.layers, doc.rect))
    assert thumb.size == (doc.width, doc.height)  # already small: not enlarged


def test_thumbnail_fits_256(tmp_path):
    doc = Document.blank(600, 300)
    path = tmp_path / "big.ora"
    save_ora(doc, path)
    with zipfile.ZipFile(path) as archive:
        thumb = Image.open(io.BytesIO(archive.read("Thumbnails/thumbnail.png")))
    assert thumb.size == (256, 128)


def test_openpose_json_is_written_for_other_tools(doc, saved):
    with zipfile.ZipFile(saved) as archive:
        data = json.loads(archive.read("impasto/layers/layer004.openpose.json"))
    assert data["canvas_width"] == doc.width and len(data["people"]) == 2
    pose = parse_pose_json(data)
    original = doc.layers[4].pose
    for person, want in zip(pose.people, original.people, strict=True):
        visible = [(p.x, p.y) for p in want.body if p.visible]
        assert [(p.x, p.y) for p in person.body if p.visible] == visible


# ---- files written by other apps ----------------------------------------------------------------


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_foreign_ora(path, stack_xml: str, files: dict[str, bytes], mimetype=True) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        if mimetype:
            archive.writestr("mimetype", b"image/openraster", compress_type=zipfile.ZIP_STORED)
        archive.writestr("stack.xml", stack_xml)
        for name, data in files.items():
            archive.writestr(name, data)


def test_krita_style_file_with_groups_and_unknown_things(tmp_path):
    rng = np.random.default_rng(3)
    a, b, c = random_rgba(rng, 10, 12), random_rgba(rng, 6, 5), random_rgba(rng, 4, 4)
    xml = """<?xml version="1.0" encoding="UTF-8"?>
<image w="40" h="30" xres="72" yres="72" version="0.0.1">
 <stack>
  <layer name="top" src="data/c.png" x="1.0" y="2.0" opacity="0.5" visibility="visible"
         composite-op="svg:multiply" selected="true"/>
  <stack name="Group" x="5" y="6" opacity="0.5" visibility="hidden">
   <layer name="inner" src="data/b.png" x="2" y="3" opacity="0.8" visibility="visible"/>
  </stack>
  <filter name="blur" type="gaussian"/>
  <layer name="vector" src="data/a.png" x="-3" y="4"/>
  <layer name="no pixels"/>
 </stack>
</image>"""
    path = tmp_path / "krita.ora"
    write_foreign_ora(
        path, xml, {"data/a.png": _png(a), "data/b.png": _png(b), "data/c.png": _png(c)}
    )
    doc = open_ora(path)
    names = [layer.name for layer in doc.layers]
    # mask added, like a new image; the group is a group, after its contents
    assert names == ["vector", "inner", "Group", "top", "Inpaint mask"]
    vector, inner, group, top, mask = doc.layers
    assert all(layer.kind is LayerKind.IMAGE for layer in (vector, inner, top))
    assert mask.kind is LayerKind.MASK and mask.raster.is_blank()
    assert vector.raster.rect == Rect(-3, 4, 12, 10)
    assert np.array_equal(vector.raster.data, a)
    assert inner.raster.rect == Rect(7, 9, 5, 6)  # group offset added
    assert inner.opacity == pytest.approx(0.8) and inner.visible  # the group keeps its own
    assert group.kind is LayerKind.GROUP and inner.parent_id == group.id
    assert group.opacity == pytest.approx(0.5) and not group.visible
    assert not doc.is_shown(inner)
    assert top.raster.rect == Rect(1, 2, 4, 4) and top.opacity == 0.5
    assert top.blend_mode == "svg:multiply"

    resaved = tmp_path / "resaved.ora"
    save_ora(doc, resaved)
    with zipfile.ZipFile(resaved) as archive:
        root = ET.fromstring(archive.read("stack.xml"))
    top_element = next(e for e in root.iter("layer") if e.get("name") == "top")
    assert top_element.get("composite-op") == "svg:multiply"
    assert top_element.get("selected") == "true"


def test_file_without_mimetype_but_with_stack_is_read(tmp_path):
    pixels = random_rgba(np.random.default_rng(1), 4, 4)
    xml = '<image w="4" h="4"><stack><layer name="x" src="data/x.png"/></stack></image>'
    path = tmp_path / "lenient.ora"
    write_foreign_ora(path, xml, {"data/x.png": _png(pixels)}, mimetype=False)
    assert np.array_equal(open_ora(path).layers[0].raster.data, pixels)


def test_generation_state_with_odd_values(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class Lora:
        name: str
        weight: float

    doc = Document.blank(8, 8)
    doc.generation_state = {
        "by_index": {1: "one", 2: (3, 4)},
        "lora": Lora("detail", 0.5),
        "mask": np.arange(12, dtype=np.float32).reshape(3, 4),
        "seed": np.int64(7),
    }
    path = tmp_path / "state.ora"
    save_ora(doc, path)
    state = open_ora(path).generation_state
    assert state["by_index"] == {1: "one", 2: (3, 4)}
    assert state["lora"]["$type"].endswith("Lora")  # loads back as plain data, with its type name
    assert state["lora"]["value"] == {"name": "detail", "weight": 0.5}
    assert state["mask"].dtype == np.float32 and np.array_equal(
        state["mask"], np.arange(12).reshape(3, 4)
    )
    assert state["seed"] == 7


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    props=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    LayerKind.IMAGE,
                    LayerKind.SKETCH,
                    LayerKind.RESULT,
                    LayerKind.MASK,
                    LayerKind.CONTROL,
                ]
            ),
            st.text(max_size=12),
            st.floats(0, 1),
            st.booleans(),
            st.booleans(),
            st.integers(-300, 300),
            st.integers(-300, 300),
            st.integers(0, 9),
            st.integers(0, 9),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_layer_properties_round_trip(tmp_path_factory, props):
    from app.io.ora import xml_safe
    from app.layers import Layer
    from app.raster import Raster

    rng = np.random.default_rng(len(props))
    doc = Document(40, 30)
    for index, (kind, name, opacity, visible, locked, x, y, w, h) in enumerate(props):
        shape = (h, w) if kind is LayerKind.MASK else (h, w, 4)
        raster = Raster(kind.channels, rng.integers(0, 256, shape, dtype=np.uint8), x, y)
        layer = Layer(kind, name, raster, visible=visible, opacity=opacity, locked=locked)
        doc._insert_layer(layer, index)
    path = tmp_path_factory.mktemp("props") / "p.ora"
    save_ora(doc, path)
    back = open_ora(path)
    assert len(back.layers) == len(doc.layers)
    for want, got in zip(doc.layers, back.layers, strict=True):
        assert got.name == xml_safe(want.name)
        assert (got.kind, got.opacity, got.visible, got.locked) == (
            want.kind,
            want.opacity,
            want.visible,
            want.locked,
        )
        rect, data = stored_pixels(want, doc.rect)  # mask/sketch/control: cropped to canvas
        if rect.is_empty:
            assert got.raster.rect.is_empty
        else:
            assert got.raster.rect == rect
            assert np.array_equal(got.raster.data, data)


def test_doctype_without_entities_is_accepted(tmp_path):
    pixels = random_rgba(np.random.default_rng(4), 3, 3)
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE image>\n'
        '<image w="3" h="3"><stack><layer name="x" src="data/x.png"/></stack></image>'
    )
    path = tmp_path / "doctype.ora"
    write_foreign_ora(path, xml, {"data/x.png": _png(pixels)})
    assert np.array_equal(open_ora(path).layers[0].raster.data, pixels)


def test_entries_with_a_leading_slash_as_pyora_writes_them(tmp_path):
    """pyora writes ``/data/layer0.png`` entries (and src attributes); they are root-relative."""
    rng = np.random.default_rng(6)
    a, b = random_rgba(rng, 4, 5), random_rgba(rng, 3, 2)
    xml = (
        '<image w="20" h="10"><stack name="root"><layer name="b" src="/data/layer1.png" x="1" '
        'y="2" visibility="hidden" uuid="u1"/><stack name="grp" x="0" y="0" isolation="isolate">'
        '<layer name="a" src="data/layer0.png" x="5" y="6" opacity="0.5"/></stack></stack></image>'
    )
    path = tmp_path / "pyora.ora"
    write_foreign_ora(path, xml, {"/data/layer0.png": _png(a), "/data/layer1.png": _png(b)})
    doc = open_ora(path)
    first, group, second = doc.layers[0], doc.layers[1], doc.layers[2]
    assert group.kind is LayerKind.GROUP and first.parent_id == group.id
    assert (first.name, first.raster.rect, first.opacity) == ("a", Rect(5, 6, 5, 4), 0.5)
    assert np.array_equal(first.raster.data, a)
    assert (second.name, second.visible, second.raster.rect) == ("b", False, Rect(1, 2, 2, 3))
    assert "uuid" not in second.extra.get("ora_attrs", {})  # an identity, not copied along
