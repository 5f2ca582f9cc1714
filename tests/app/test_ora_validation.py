"""A project that opens must save to a project that opens: values read from a crafted .ora are
validated into typed values, and what cannot be written back is dropped."""

from __future__ import annotations

import logging
import zipfile
from xml.etree import ElementTree as ET

import pytest

from app.files import open_document, save_any
from app.io.ora import open_ora, save_ora
from app.layers import ControlSettings, LayerKind
from tests.hostile.builders import impasto_ora

BAD_ATTRS = {
    "a b": "space in the name",
    "x\u0001y": "control character in the name",
    "1abc": "starts with a digit",
    "number": 5,
    "list": ["a"],
    "composite-op": "svg:multiply\u0001",
    "{https://github.com/impasto/impasto/ns/openraster/1}empty": "true",
    "name": "a second name",
    "krita-ok": "kept",
}


def _reopen(tmp_path, data: bytes):
    source = tmp_path / "in.ora"
    source.write_bytes(data)
    doc = open_document(source)
    target = tmp_path / "out.ora"
    save_any(doc, target)
    with zipfile.ZipFile(target) as archive:
        ET.fromstring(archive.read("stack.xml"))  # well-formed
    return doc, open_ora(target)


def test_extra_ora_attrs_from_json_are_validated(tmp_path, caplog):
    data = impasto_ora([{"name": "paint", "meta": {"extra": {"ora_attrs": BAD_ATTRS}}}])
    with caplog.at_level(logging.WARNING):
        _doc, back = _reopen(tmp_path, data)
    attrs = back.layers[0].extra["ora_attrs"]
    assert attrs == {"krita-ok": "kept"}  # composite-op fell back to src-over, not kept
    assert back.layers[0].raster.data.size > 0  # not turned empty by a smuggled impasto:empty
    assert back.layers[0].name == "paint"
    assert "a b" in caplog.text


def test_composite_op_with_control_character_is_replaced(tmp_path):
    data = impasto_ora(
        [{"name": "m", "meta": {"extra": {"ora_attrs": {"composite-op": "svg:mul tiply"}}}}]
    )
    _doc, back = _reopen(tmp_path, data)
    assert "ora_attrs" not in back.layers[0].extra


def test_valid_foreign_attributes_survive_the_round_trip(tmp_path):
    data = impasto_ora(
        [{"name": "m", "attrs": ' composite-op="svg:multiply" selected="true" uuid="{1}"'}]
    )
    _doc, back = _reopen(tmp_path, data)
    assert back.layers[0].blend_mode == "svg:multiply"
    assert back.layers[0].extra["ora_attrs"] == {"selected": "true"}


def test_writer_refuses_nothing_a_model_can_hold(tmp_path):
    """Even a layer built in code with junk in extra saves to a file that opens."""
    doc = open_document(_write(tmp_path, impasto_ora([{"name": "n"}])))
    layer = doc.layers[0]
    layer.extra["ora_attrs"] = {"bad name": "v", "ok": 3, 7: "x", "fine": "yes\u0000"}
    layer.name = "nul\u0000name\u0007"
    target = tmp_path / "out.ora"
    save_ora(doc, target)
    back = open_ora(target)
    assert back.layers[0].extra["ora_attrs"] == {"fine": "yes"}
    assert back.layers[0].name == "nulname"


@pytest.mark.parametrize(
    "coordinate", [1e308, float("inf"), float("-inf"), float("nan"), 1e12, "12", None]
)
def test_pose_with_absurd_coordinates_opens_and_saves(tmp_path, coordinate, caplog):
    body = [[10.0, 10.0, True]] * 17 + [[coordinate, 5.0, True]]
    meta = {"pose": {"width": 64, "height": 48, "people": [{"pose_keypoints_2d": body}]}}
    data = impasto_ora([{"name": "p", "kind": "pose", "meta": meta}])
    with caplog.at_level(logging.WARNING):
        doc, back = _reopen(tmp_path, data)
    assert doc.layers[0].kind is LayerKind.POSE and doc.layers[0].pose is None
    assert back.layers[0].kind is LayerKind.POSE
    assert "dropping its pose data" in caplog.text


def test_valid_pose_data_is_kept(tmp_path):
    from app.io.layer_data import pose_to_data
    from tests.app.io_samples import sample_pose

    pose = sample_pose()
    data = impasto_ora(
        [{"name": "p", "kind": "pose", "meta": {"pose": pose_to_data(pose)}}], 96, 64
    )
    _doc, back = _reopen(tmp_path, data)
    assert back.layers[0].pose == pose


def test_control_settings_of_wrong_types_take_defaults(tmp_path):
    control = {
        "control_type": 5,
        "model_path": ["x"],
        "weight": "0.5",
        "start": float("nan"),
        "end": 0.5,
        "enabled": "yes",
        "resize_mode": None,
        "params": {
            "low": 100,
            "bad": {"deep": {"deeper": {"deepest": [1]}}},
            "inf": float("inf"),
            "\u0000": 1,
            "high": "200",
            "box": {"$tuple": [0, 0, 64, 64]},
            "sizes": {"w": 3},
        },
        "unknown": 1,
    }
    data = impasto_ora([{"name": "c", "kind": "control", "meta": {"control": control}}])
    doc, back = _reopen(tmp_path, data)
    default = ControlSettings()
    for got in (doc.layers[0].control, back.layers[0].control):
        assert got.control_type == default.control_type
        assert got.model_path is None
        assert got.weight == default.weight and got.start == default.start
        assert got.end == 0.5
        assert got.enabled is True
        assert got.params == {"low": 100, "high": "200", "box": (0, 0, 64, 64), "sizes": {"w": 3}}
    # the control panel formats weights with {:.2f}; that must work on what was read
    assert f"{back.layers[0].control.weight:.2f}" == "1.00"


def test_recipe_that_is_not_an_object_is_dropped(tmp_path):
    data = impasto_ora([{"name": "r", "kind": "result", "meta": {"recipe": [1, 2]}}])
    doc, back = _reopen(tmp_path, data)
    assert doc.layers[0].recipe is None and back.layers[0].kind is LayerKind.RESULT


def _write(tmp_path, data: bytes):
    path = tmp_path / "source.ora"
    path.write_bytes(data)
    return path


# ---- canvas-bound layers are stored within the canvas -------------------------------------


def _padded_document():
    import numpy as np

    from app.document import Document
    from app.layers import Layer
    from app.raster import Raster

    doc = Document(640, 480)
    photo = np.full((100, 120, 4), 200, np.uint8)
    doc._insert_layer(Layer(LayerKind.IMAGE, "moved", Raster(4, photo, -10, -5)), 0)
    mask = np.zeros((512, 640), np.uint8)  # a raster grown with slack past the canvas
    mask[100:200, 100:200] = 255
    mask[490:, :] = 255  # beyond the canvas: never used, never stored
    doc._insert_layer(Layer(LayerKind.MASK, "Inpaint mask", Raster(1, mask)), 1)
    sketch = np.full((40, 40, 4), 90, np.uint8)
    doc._insert_layer(Layer(LayerKind.SKETCH, "Sketch", Raster(4, sketch, 620, 470)), 2)
    return doc


def test_mask_and_sketch_are_stored_within_the_canvas_in_ora(tmp_path):
    from PIL import Image

    doc = _padded_document()
    path = tmp_path / "padded.ora"
    save_ora(doc, path)
    with zipfile.ZipFile(path) as archive:
        stack = ET.fromstring(archive.read("stack.xml"))
        sizes = {}
        for element in stack.iter("layer"):
            with Image.open(__import__("io").BytesIO(archive.read(element.get("src")))) as png:
                sizes[element.get("name")] = (png.size, element.get("x"), element.get("y"))
    assert sizes["Inpaint mask"] == ((640, 480), "0", "0")
    assert sizes["Sketch"] == ((20, 10), "620", "470")
    assert sizes["moved"] == ((120, 100), "-10", "-5")  # a picture layer keeps its real offset
    back = open_ora(path)
    mask = back.mask_layer.raster
    assert (mask.rect.w, mask.rect.h) == (640, 480) and mask.data[150, 150] == 255


def test_mask_and_sketch_are_stored_within_the_canvas_in_psd(tmp_path):
    from psd_tools import PSDImage

    from app.io.psd import save_psd

    path = tmp_path / "padded.psd"
    save_psd(_padded_document(), path)
    boxes = {layer.name: layer.bbox for layer in PSDImage.open(path)}
    assert boxes["Inpaint mask"] == (0, 0, 640, 480)
    assert boxes["Sketch"] == (620, 470, 640, 480)
    assert boxes["moved"] == (-10, -5, 110, 95)


def test_a_mask_beyond_the_canvas_in_a_file_is_cropped_on_open(tmp_path):
    from tests.hostile.builders import small_png

    data = impasto_ora([{"name": "m", "kind": "mask", "png": small_png(30, 30), "x": 50, "y": 40}])
    _doc, back = _reopen(tmp_path, data)
    mask = back.layers[0].raster
    assert (mask.x, mask.y, mask.rect.w, mask.rect.h) == (50, 40, 14, 8)


def test_json_nested_too_deeply_is_refused_with_a_sentence(tmp_path):
    from app.files import FileError

    value: list = []
    for _ in range(200):
        value = [value]
    path = _write(tmp_path, impasto_ora([{"name": "n", "meta": {"extra": {"note": value}}}]))
    with pytest.raises(FileError, match="nested more than 64 deep"):
        open_document(path)
