"""Every OpenRaster ``svg:`` mode through Impasto's compositor against the scalar reference."""

from __future__ import annotations

import numpy as np
import pytest

from app import blend
from app.compose import composite, flatten_rgb
from app.document import Document
from app.geometry import Rect
from app.layers import Layer, LayerKind
from app.raster import Raster
from tests.app import blend_reference as ref

ALL_MODES = [mode for mode in blend.MODE_LABELS]
H, W = 7, 9


def random_rgba(rng: np.random.Generator, alpha: str = "mixed") -> np.ndarray:
    pixels = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    pixels[0, :3, :3] = [[0, 0, 0], [255, 255, 255], [128, 64, 192]]  # edge values
    if alpha == "opaque":
        pixels[..., 3] = 255
    else:
        pixels[0, 0, 3], pixels[0, 1, 3], pixels[1, 0, 3] = 0, 255, 255
    return pixels


def doc_of(stack) -> Document:
    doc = Document(W, H)
    for index, (_kind, mode, opacity, pixels) in enumerate(stack):
        doc._insert_layer(
            Layer(
                LayerKind.IMAGE, f"L{index}", Raster(4, pixels), opacity=opacity, blend_mode=mode
            ),
            index,
        )
    return doc


def test_every_spec_mode_is_known_with_a_psd_key():
    spec = {
        "svg:src-over", "svg:multiply", "svg:screen", "svg:overlay", "svg:darken",
        "svg:lighten", "svg:color-dodge", "svg:color-burn", "svg:hard-light",
        "svg:soft-light", "svg:difference", "svg:exclusion", "svg:hue", "svg:saturation",
        "svg:color", "svg:luminosity", "svg:plus",
    }  # fmt: skip
    assert set(ALL_MODES) == spec
    for mode in spec:
        assert blend.mode_from_psd_key(blend.psd_key_of(mode)) == mode


@pytest.mark.parametrize("mode", ALL_MODES)
def test_mode_over_a_translucent_backdrop_matches_the_reference(mode):
    rng = np.random.default_rng(sum(map(ord, mode)))
    stack = [
        ("layer", blend.NORMAL, 1.0, random_rgba(rng)),
        ("layer", mode, 0.8, random_rgba(rng)),
    ]
    doc = doc_of(stack)
    got = composite(doc.layers, doc.rect)
    ref.assert_close(got, ref.flatten(stack, H, W))


@pytest.mark.parametrize("mode", ALL_MODES)
def test_mode_over_an_opaque_photo_matches_the_reference(mode):
    rng = np.random.default_rng(7 + len(mode))
    stack = [
        ("layer", blend.NORMAL, 1.0, random_rgba(rng, "opaque")),
        ("layer", mode, 1.0, random_rgba(rng)),
        ("layer", "svg:multiply", 0.6, random_rgba(rng)),
    ]
    doc = doc_of(stack)
    got = composite(doc.layers, doc.rect)
    ref.assert_close(got, ref.flatten(stack, H, W))
    # and the RGB a request starts from (over white: the root is an isolated group)
    rgb = flatten_rgb(doc.layers, doc.rect)
    assert rgb.shape == (H, W, 3) and rgb.flags["C_CONTIGUOUS"]
    assert np.abs(rgb.astype(int) - got[..., :3].astype(int)).max() <= 1  # opaque anyway


def test_multiply_actually_darkens_and_screen_lightens():
    base = np.full((H, W, 4), 128, np.uint8)
    base[..., 3] = 255
    top = base.copy()
    for mode, expected in (("svg:multiply", 64), ("svg:screen", 192), (blend.NORMAL, 128)):
        doc = doc_of([("layer", blend.NORMAL, 1.0, base), ("layer", mode, 1.0, top)])
        assert abs(int(composite(doc.layers, doc.rect)[3, 3, 0]) - expected) <= 1


def test_unknown_mode_is_drawn_as_normal_and_kept():
    rng = np.random.default_rng(11)
    base, top = random_rgba(rng, "opaque"), random_rgba(rng)
    unknown = doc_of([("layer", blend.NORMAL, 1.0, base), ("layer", "krita:burn", 1.0, top)])
    normal = doc_of([("layer", blend.NORMAL, 1.0, base), ("layer", blend.NORMAL, 1.0, top)])
    assert np.array_equal(
        composite(unknown.layers, unknown.rect), composite(normal.layers, normal.rect)
    )
    assert unknown.layers[1].blend_mode == "krita:burn"
    told: list[str] = []
    unknown.notice.connect(told.append)
    assert unknown.report_unknown_modes() is not None
    assert unknown.report_unknown_modes() is None  # once
    assert len(told) == 1 and "krita:burn" in told[0]


def test_normal_stacks_keep_the_fast_path_result():
    """A normal stack without groups must composite exactly as before blend modes existed."""
    rng = np.random.default_rng(5)
    stack = [("layer", blend.NORMAL, o, random_rgba(rng)) for o in (1.0, 0.7, 0.4)]
    doc = doc_of(stack)
    rect = Rect(1, 2, 5, 4)
    fast = composite(doc.layers, rect)
    doc.layers[1].blend_mode = "svg:darken"
    doc.layers[1].blend_mode = blend.NORMAL
    assert np.array_equal(fast, composite(doc.layers, rect))
    ref.assert_close(fast, ref.flatten(stack, H, W)[2:6, 1:6])


def test_blend_mode_change_is_one_undo_step_and_repaints():
    rng = np.random.default_rng(3)
    doc = doc_of([("layer", blend.NORMAL, 1.0, random_rgba(rng, "opaque"))] * 2)
    doc.history.clear()
    top = doc.layers[1]
    changed: list = []
    doc.pixels_changed.connect(lambda layer_id, rect: changed.append((layer_id, rect)))
    doc.set_blend_mode(top.id, "svg:difference")
    assert top.blend_mode == "svg:difference" and changed
    assert composite(doc.layers, doc.rect)[..., :3].max() == 0  # a layer minus itself
    doc.history.undo()
    assert top.blend_mode == blend.NORMAL
    doc.history.redo()
    assert top.blend_mode == "svg:difference"
