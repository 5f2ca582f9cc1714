"""Documents with every layer kind, and deep comparison, for the persistence tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.document import Document
from app.layers import ControlSettings, Layer, LayerKind
from app.raster import Raster
from inference.openpose import Joint, Person, Pose

W, H = 96, 64


def random_rgba(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    pixels = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    pixels[: h // 3, :, 3] = 255  # opaque band
    pixels[-2:, :, 3] = 0  # fully transparent pixels that still carry colour
    return pixels


def sample_pose() -> Pose:
    person = Person.standing(20, 5, 40, 55).with_joint_visible(Joint.L_EAR, False)
    second = Person.standing(55, 10, 30, 50).mirrored()
    return Pose(W, H, (person, second))


def sample_recipe(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "prompt": "a red fox, “quoted”, 日本語",
        "negative_prompt": "blurry",
        "seed": 1234567890123,
        "steps": 20,
        "cfg": 7.5,
        "sampler": "Euler a",
        "size": (512, 768),
        "model_hash": "0123456789",
        "strength": 0.75,
        "controls": [
            {
                "type": "canny",
                "weight": 0.5,
                "image": rng.integers(0, 256, (8, 6, 3), dtype=np.uint8),
            }
        ],
        "crop_box": (0, 0, 64, 64),
    }


def every_kind_document(seed: int = 0) -> Document:
    rng = np.random.default_rng(seed)
    doc = Document(W, H)
    background = Layer(LayerKind.IMAGE, "Background", Raster(4, random_rgba(rng, H, W)))
    sketch = Layer(
        LayerKind.SKETCH,
        "Sketch",
        Raster(4, random_rgba(rng, 20, 30), 10, 5),
        opacity=0.5,
        control=ControlSettings(control_type="scribble", weight=0.8),
    )
    result = Layer(
        LayerKind.RESULT,
        "Result ★",
        Raster(4, random_rgba(rng, 30, 40), -8, -4),
        opacity=0.3333333333333333,
        recipe=sample_recipe(rng),
    )
    control = Layer(
        LayerKind.CONTROL,
        "Depth",
        Raster(4, random_rgba(rng, H, W)),
        visible=False,
        control=ControlSettings(
            control_type="depth",
            model_path="/models/cn-depth.safetensors",
            weight=0.7,
            start=0.1,
            end=0.9,
            enabled=False,
            resize_mode="just resize",
            params={"low": 100, "high": 200},
        ),
    )
    pose = Layer(
        LayerKind.POSE,
        "Pose",
        pose=sample_pose(),
        control=ControlSettings(control_type="openpose"),
        locked=True,
    )
    empty = Layer(LayerKind.IMAGE, "Empty & <locked>", locked=True, visible=False)
    mask_pixels = np.zeros((16, 24), np.uint8)
    mask_pixels[2:14, 3:20] = rng.integers(1, 256, (12, 17), dtype=np.uint8)
    mask = Layer(LayerKind.MASK, "Inpaint mask", Raster(1, mask_pixels, 40, 30))
    for index, layer in enumerate([background, sketch, result, control, pose, empty, mask]):
        doc._insert_layer(layer, index)
    doc.set_active(result.id)
    doc.generation_state = {
        "prompt": "a fox",
        "steps": 12,
        "loras": [("detail", 0.5)],
        "nested": {"a": [1, 2.5, None, True]},
    }
    doc.selection = Raster(1, np.full((5, 7), 255, np.uint8), 3, 4)
    return doc


def assert_same_value(a: Any, b: Any, where: str = "value") -> None:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same_value(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_value(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def stored_pixels(layer: Layer, canvas) -> tuple[Any, np.ndarray]:
    """What a file keeps of a layer's raster: canvas-bound kinds (mask, sketch, control) are
    cropped to the canvas, picture layers keep everything."""
    from app.geometry import Rect
    from app.io.layer_data import CANVAS_BOUND_KINDS, crop_to_canvas

    raster = layer.raster
    if layer.kind not in CANVAS_BOUND_KINDS or raster.rect.is_empty:
        return raster.rect, raster.data
    cropped = crop_to_canvas(raster.data, raster.x, raster.y, canvas)
    if cropped is None:
        return Rect(0, 0, 0, 0), np.zeros((0, 0, 4)[: raster.data.ndim], np.uint8)
    data, x, y = cropped
    return Rect(x, y, data.shape[1], data.shape[0]), data


def assert_same_layers(expected: Document, actual: Document, *, exact_kinds: bool = True) -> None:
    assert (actual.width, actual.height) == (expected.width, expected.height)
    assert len(actual.layers) == len(expected.layers)
    for want, got in zip(expected.layers, actual.layers, strict=True):
        where = want.name
        assert got.name == want.name
        if exact_kinds:
            assert got.kind is want.kind, where
            assert got.visible == want.visible, where
            assert got.locked == want.locked, where
        assert got.opacity == want.opacity, where
        if want.raster is not None and exact_kinds:
            rect, data = stored_pixels(want, expected.rect)
            assert got.raster.rect == rect, where
            assert np.array_equal(got.raster.data, data), where
        assert_same_value(want.recipe, got.recipe, f"{where}.recipe")
        assert got.control == want.control, where
        assert got.pose == want.pose, where
