"""Reference layers: a picture from disk or any layer guiding the generation by IP-Adapter;
never part of the picture, sent whole as a ReferenceInput, kept in the result's recipe."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from app.control_layers import add_reference_layer, is_reference, set_layer_as_control
from app.generation.request import (
    GenerationParams,
    RequestBuildError,
    build_request,
    decode_image,
    encode_reference,
    picture_rgb,
)
from app.layers import LayerKind
from tests.documents import random_photo

MODEL = GenerationParams(model_path="/models/sd15.safetensors", model_name="sd15", prompt="x")


def _painting(tmp_path, size=(30, 50)):
    pixels = np.random.default_rng(3).integers(0, 256, (*size, 3), dtype=np.uint8)
    path = tmp_path / "painting.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


def test_a_reference_from_disk_guides_but_is_not_painted(tmp_path):
    doc = random_photo(120, 80, seed=1)
    before = picture_rgb(doc, doc.rect)
    path, pixels = _painting(tmp_path)
    layer = add_reference_layer(doc, path, model_path="/m/ip-adapter_sd15.safetensors")
    assert layer.kind is LayerKind.CONTROL and is_reference(layer)
    assert np.array_equal(picture_rgb(doc, doc.rect), before)  # not part of the picture
    plan = build_request(doc, MODEL)
    assert plan.request.controls == ()  # a reference is no ControlNet input
    (reference,) = plan.request.references
    assert np.array_equal(reference.image, pixels)  # all of it, at its own size
    assert reference.model_path == "/m/ip-adapter_sd15.safetensors"
    assert (reference.weight, reference.style_only, reference.image_encoder_path) == (
        1.0,
        False,
        None,
    )
    assert plan.recipe["references"] == [{"layer": layer.name}]
    doc.history.undo()
    assert all(x.id != layer.id for x in doc.layers)


def test_weight_style_only_and_encoder_come_from_the_layer(tmp_path):
    doc = random_photo(64, 64, seed=2)
    path, _ = _painting(tmp_path)
    layer = add_reference_layer(doc, path, model_path="/m/ip.safetensors")
    params = {"style_only": True, "image_encoder": "/m/image_encoder"}
    settings = replace(layer.control, weight=0.4, params=params)
    doc.set_layer_property(layer.id, "control", settings)
    (reference,) = build_request(doc, MODEL).request.references
    assert (reference.weight, reference.style_only) == (0.4, True)
    assert reference.image_encoder_path == "/m/image_encoder"
    doc.set_layer_property(layer.id, "control", replace(settings, params={"style_only": "yes"}))
    (reference,) = build_request(doc, MODEL).request.references
    assert reference.style_only is False  # only a real True counts (files are untrusted)


def test_any_layer_can_be_the_reference_and_switched_off(tmp_path):
    doc = random_photo(64, 48, seed=4)
    photo = doc.layers[0]
    set_layer_as_control(doc, photo.id, "reference")
    doc.set_layer_property(photo.id, "control", replace(photo.control, model_path="/m/ip"))
    (reference,) = build_request(doc, MODEL).request.references
    assert np.array_equal(reference.image, photo.raster.read(doc.rect)[..., :3])
    set_layer_as_control(doc, photo.id, None)
    assert build_request(doc, MODEL).request.references == ()


def test_a_reference_without_ip_adapter_says_so(tmp_path):
    doc = random_photo(64, 64, seed=5)
    path, _ = _painting(tmp_path)
    add_reference_layer(doc, path)
    with pytest.raises(RequestBuildError, match="has no IP-Adapter"):
        build_request(doc, MODEL)


def test_the_recipe_keeps_the_reference_image():
    small = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(encode_reference(small)), small)  # exact
    big = np.zeros((3000, 1500, 3), np.uint8)
    assert decode_image(encode_reference(big)).shape == (2048, 1024, 3)
