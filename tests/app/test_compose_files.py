"""Blend modes and groups in files written by another writer (psd-tools, a hand-written ORA),
compared with the scalar reference, and round trips through Impasto's .ora and .psd."""

from __future__ import annotations

import io
import zipfile
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from psd_tools import PSDImage
from psd_tools.api.layers import PixelLayer
from psd_tools.constants import BlendMode

from app import blend
from app.document import Document
from app.io.layer_data import flatten
from app.io.ora import open_ora, save_ora
from app.io.psd import open_psd, save_psd
from app.layers import Layer, LayerKind
from app.raster import Raster
from tests.app import blend_reference as ref

H, W = 12, 14


def pixels(seed: int, opaque: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    out[..., 3] = 255 if opaque else np.where(rng.random((H, W)) < 0.3, 0, out[..., 3])
    return out


BASE, P1, P2, P3, P4 = (pixels(0, opaque=True), pixels(1), pixels(2), pixels(3), pixels(4))

# the picture every test below builds, described for the reference
STACK = [
    ("layer", blend.NORMAL, 1.0, BASE),
    ("layer", "svg:multiply", 0.9, P1),
    ("group", blend.NORMAL, 128 / 255, [
        ("layer", "svg:screen", 1.0, P2),
        ("layer", "svg:overlay", 1.0, P3),
    ]),
    ("group", blend.PASS_THROUGH, 1.0, [("layer", "svg:difference", 200 / 255, P4)]),
    ("layer", "svg:luminosity", 0.5, P2),
]  # fmt: skip
EXPECTED = ref.flatten(STACK, H, W)


def test_psd_written_by_psd_tools(tmp_path):
    psd = PSDImage.new("RGBA", (W, H), color=(0, 0, 0, 0))

    def add(array, name, mode, opacity=255):
        layer = PixelLayer.frompil(Image.fromarray(array), psd, name)
        layer.blend_mode, layer.opacity = mode, opacity
        return layer

    add(BASE, "base", BlendMode.NORMAL)
    add(P1, "mul", BlendMode.MULTIPLY, round(0.9 * 255))
    screen = add(P2, "screen", BlendMode.SCREEN)
    overlay = add(P3, "overlay", BlendMode.OVERLAY)
    isolated = psd.create_group([screen, overlay], "isolated")
    isolated.blend_mode, isolated.opacity = BlendMode.NORMAL, 128
    difference = add(P4, "difference", BlendMode.DIFFERENCE, 200)
    passing = psd.create_group([difference], "passing")
    passing.blend_mode = BlendMode.PASS_THROUGH
    add(P2, "lum", BlendMode.LUMINOSITY, round(0.5 * 255))
    path = tmp_path / "psdtools.psd"
    psd.save(path)

    doc = open_psd(path)
    kinds = [(layer.name, layer.kind.value, layer.blend_mode) for layer in doc.layers]
    assert kinds[:8] == [
        ("base", "image", blend.NORMAL),
        ("mul", "image", "svg:multiply"),
        ("screen", "image", "svg:screen"),
        ("overlay", "image", "svg:overlay"),
        ("isolated", "group", blend.NORMAL),
        ("difference", "image", "svg:difference"),
        ("passing", "group", blend.PASS_THROUGH),
        ("lum", "image", "svg:luminosity"),
    ]
    ref.assert_close(flatten(doc.layers, doc.rect), EXPECTED)


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_hand_written_ora(tmp_path):
    xml = """<?xml version="1.0" encoding="UTF-8"?>
<image w="14" h="12" version="0.0.5">
 <stack>
  <layer name="lum" src="data/p2.png" opacity="0.5" composite-op="svg:luminosity"/>
  <stack name="passing" isolation="auto">
   <layer name="difference" src="data/p4.png" opacity="0.784313725" composite-op="svg:difference"/>
  </stack>
  <stack name="isolated" isolation="isolate" opacity="0.501960784">
   <layer name="overlay" src="data/p3.png" composite-op="svg:overlay"/>
   <layer name="screen" src="data/p2.png" composite-op="svg:screen"/>
  </stack>
  <layer name="mul" src="data/p1.png" opacity="0.9" composite-op="svg:multiply"/>
  <layer name="base" src="data/base.png"/>
 </stack>
</image>"""
    path = tmp_path / "hand.ora"
    files = {"data/base.png": BASE, "data/p1.png": P1, "data/p2.png": P2, "data/p3.png": P3}
    files["data/p4.png"] = P4
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", b"image/openraster", compress_type=zipfile.ZIP_STORED)
        archive.writestr("stack.xml", xml)
        for name, array in files.items():
            archive.writestr(name, _png(array))
    doc = open_ora(path)
    groups = {layer.name: layer for layer in doc.layers if layer.kind is LayerKind.GROUP}
    assert groups["passing"].blend_mode == blend.PASS_THROUGH
    assert groups["isolated"].blend_mode == blend.NORMAL
    assert groups["isolated"].opacity == pytest.approx(128 / 255)
    ref.assert_close(flatten(doc.layers, doc.rect), EXPECTED)


def impasto_doc() -> Document:
    doc = Document(W, H)

    def add(kind, name, array=None, **fields):
        layer = Layer(kind, name, Raster(4, array.copy()) if array is not None else None, **fields)
        doc._insert_layer(layer, len(doc.layers))
        return layer

    add(LayerKind.IMAGE, "base", BASE)
    add(LayerKind.IMAGE, "mul", P1, blend_mode="svg:multiply", opacity=0.9)
    isolated = Layer(LayerKind.GROUP, "isolated", opacity=128 / 255, collapsed=True)
    add(LayerKind.IMAGE, "screen", P2, blend_mode="svg:screen", parent_id=isolated.id)
    add(LayerKind.RESULT, "overlay", P3, blend_mode="svg:overlay", parent_id=isolated.id)
    doc._insert_layer(isolated, len(doc.layers))
    passing = Layer(LayerKind.GROUP, "passing", blend_mode=blend.PASS_THROUGH)
    add(LayerKind.IMAGE, "difference", P4, blend_mode="svg:difference", opacity=200 / 255)
    doc.layers[-1].parent_id = passing.id
    mask = add(LayerKind.MASK, "Inpaint mask")
    mask.parent_id = passing.id
    doc._insert_layer(passing, len(doc.layers))
    add(LayerKind.IMAGE, "lum", P2, blend_mode="svg:luminosity", opacity=0.5)
    add(LayerKind.IMAGE, "unknown", P1, blend_mode="krita:linear_burn", visible=False)
    add(LayerKind.IMAGE, "psd-only", P1, blend_mode="psd:lbrn", visible=False)
    return doc


def tree(doc: Document) -> list[tuple]:
    names = {layer.id: layer.name for layer in doc.layers}
    return [
        (layer.name, layer.kind.value, layer.blend_mode, names.get(layer.parent_id))
        for layer in doc.layers
    ]


def test_impasto_doc_matches_the_reference():
    doc = impasto_doc()
    ref.assert_close(flatten(doc.layers, doc.rect), EXPECTED)


def test_ora_round_trip_keeps_modes_groups_and_a_true_merged_image(tmp_path):
    doc = impasto_doc()
    path = tmp_path / "modes.ora"
    save_ora(doc, path)
    with zipfile.ZipFile(path) as archive:
        merged = np.asarray(Image.open(io.BytesIO(archive.read("mergedimage.png"))))
        root = ET.fromstring(archive.read("stack.xml"))
    ref.assert_close(merged, EXPECTED)
    stacks = {s.get("name"): s for s in root.iter("stack") if s.get("name")}
    assert stacks["isolated"].get("isolation") == "isolate"
    assert stacks["passing"].get("isolation") == "auto"
    assert [e.get("name") for e in stacks["isolated"]] == ["overlay", "screen"]  # top first
    ops = {e.get("name"): e.get("composite-op") for e in root.iter("layer")}
    assert ops["mul"] == "svg:multiply" and ops["unknown"] == "krita:linear_burn"
    back = open_ora(path)
    assert tree(back) == tree(doc)
    assert back.layer(back.layers[4].id).collapsed  # the folded group stays folded
    assert np.array_equal(flatten(back.layers, back.rect), flatten(doc.layers, doc.rect))
    assert back.mask_layer is not None and back.mask_layer.parent_id is not None
    assert back.unknown_blend_modes() == {"krita:linear_burn", "psd:lbrn"}


def test_psd_round_trip_keeps_modes_and_groups(tmp_path):
    doc = impasto_doc()
    path = tmp_path / "modes.psd"
    save_psd(doc, path)
    psd = PSDImage.open(path)  # another reader sees the modes and the groups
    by_name = {layer.name: layer for layer in psd.descendants()}
    assert by_name["mul"].blend_mode is BlendMode.MULTIPLY
    assert by_name["isolated"].is_group() and by_name["isolated"].blend_mode is BlendMode.NORMAL
    assert by_name["passing"].blend_mode is BlendMode.PASS_THROUGH
    assert by_name["psd-only"].blend_mode is BlendMode.LINEAR_BURN
    assert [layer.name for layer in by_name["isolated"]] == ["screen", "overlay"]
    merged = np.asarray(psd.topil().convert("RGBA"))
    assert np.abs(merged[..., 3].astype(int) - np.round(EXPECTED[..., 3] * 255)).max() <= 1

    back = open_psd(path)
    expected_tree = [  # roles survive (psd_roles); PSD has no key for Krita's own mode
        (name, kind, blend.NORMAL if mode == "krita:linear_burn" else mode, parent)
        for name, kind, mode, parent in tree(doc)
    ]
    assert tree(back)[: len(expected_tree)] == expected_tree
    ref.assert_close(flatten(back.layers, back.rect), EXPECTED)


def test_a_psd_only_mode_survives_psd_to_ora_to_psd(tmp_path):
    """Vivid Light has no svg: twin: kept as psd:vLit, drawn as normal, written back as vLit."""
    psd = PSDImage.new("RGBA", (W, H), color=(0, 0, 0, 0))
    PixelLayer.frompil(Image.fromarray(BASE), psd, "base")
    vivid = PixelLayer.frompil(Image.fromarray(P1), psd, "vivid")
    vivid.blend_mode = BlendMode.VIVID_LIGHT
    source = tmp_path / "vivid.psd"
    psd.save(source)
    doc = open_psd(source)
    assert doc.layers[1].blend_mode == "psd:vLit"
    assert doc.unknown_blend_modes() == {"psd:vLit"}
    normal = [("layer", blend.NORMAL, 1.0, BASE), ("layer", blend.NORMAL, 1.0, P1)]
    ref.assert_close(flatten(doc.layers, doc.rect), ref.flatten(normal, H, W))
    save_ora(doc, tmp_path / "vivid.ora")
    again = open_ora(tmp_path / "vivid.ora")
    assert again.layers[1].blend_mode == "psd:vLit"
    save_psd(again, tmp_path / "back.psd")
    by_name = {layer.name: layer for layer in PSDImage.open(tmp_path / "back.psd")}
    assert by_name["vivid"].blend_mode is BlendMode.VIVID_LIGHT


def test_a_faded_pass_through_group_stays_pass_through_in_our_ora(tmp_path):
    doc = impasto_doc()
    passing = next(layer for layer in doc.layers if layer.name == "passing")
    passing.opacity = 0.6
    before = flatten(doc.layers, doc.rect)
    save_ora(doc, tmp_path / "faded.ora")
    back = open_ora(tmp_path / "faded.ora")
    again = next(layer for layer in back.layers if layer.name == "passing")
    assert again.blend_mode == blend.PASS_THROUGH and again.opacity == pytest.approx(0.6)
    assert np.array_equal(flatten(back.layers, back.rect), before)
