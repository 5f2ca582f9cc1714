"""Layered PSD export (read back with psd-tools) and PSD import as layers."""

from __future__ import annotations

import contextlib
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from psd_tools import PSDImage
from psd_tools.api.layers import PixelLayer

from app.geometry import Rect
from app.io.errors import CorruptFileError, FileError, LayerBoundsError, OpenError
from app.io.layer_data import flatten
from app.io.psd import open_psd, save_psd
from app.layers import Layer, LayerKind
from app.raster import Raster
from inference.openpose_render import render_pose
from tests.app.io_samples import assert_same_layers, every_kind_document, random_rgba


@pytest.fixture
def doc():
    return every_kind_document()


@pytest.fixture
def exported(doc, tmp_path):
    path = tmp_path / "layers.psd"
    save_psd(doc, path)
    return path


def test_psd_is_an_rgba_document_with_every_layer(doc, exported):
    psd = PSDImage.open(exported)
    assert psd.size == (doc.width, doc.height)
    assert psd._record.header.channels == 4  # RGBA: layer alpha stays transparency
    names = [layer.name for layer in psd]
    assert names == [layer.name for layer in doc.layers]  # bottom first, Unicode kept
    for psd_layer, layer in zip(psd, doc.layers, strict=True):
        assert psd_layer.kind == "pixel"
        assert not psd_layer.has_mask()  # no alpha turned into a layer mask
        assert psd_layer.opacity == round(layer.opacity * 255)
        expected_visible = layer.visible and layer.kind in {
            LayerKind.IMAGE,
            LayerKind.SKETCH,
            LayerKind.RESULT,
        }
        assert psd_layer.visible == expected_visible


def test_psd_layer_pixels_and_offsets(doc, exported):
    psd = PSDImage.open(exported)
    by_name = {layer.name: layer for layer in psd}
    for layer in doc.layers:
        if layer.kind in (LayerKind.MASK, LayerKind.POSE) or layer.raster.rect.is_empty:
            continue
        psd_layer = by_name[layer.name]
        assert psd_layer.offset == (layer.raster.x, layer.raster.y)
        assert np.array_equal(np.asarray(psd_layer.topil()), layer.raster.data), layer.name
    mask = by_name["Inpaint mask"]
    assert mask.offset == (doc.mask_layer.raster.x, doc.mask_layer.raster.y)
    mask_rgba = np.asarray(mask.topil())
    assert np.array_equal(mask_rgba[..., 3], doc.mask_layer.raster.data)
    assert (mask_rgba[..., :3] == 255).all()
    assert by_name["Empty & <locked>"].size == (0, 0)


def test_psd_pose_layer_is_the_rendered_control_image(doc, exported):
    psd_layer = next(layer for layer in PSDImage.open(exported) if layer.name == "Pose")
    rendered = render_pose(doc.layers[4].pose, doc.width, doc.height)
    x, y = psd_layer.offset
    w, h = psd_layer.size
    pixels = np.asarray(psd_layer.topil())
    assert np.array_equal(pixels[..., :3], rendered[y : y + h, x : x + w])
    assert rendered[y : y + h, x : x + w].any(axis=2).sum() == (pixels[..., 3] == 255).sum()
    assert rendered.any(axis=2).sum() == (pixels[..., 3] == 255).sum()  # nothing cropped away


def test_psd_composite_matches_impasto(doc, exported):
    ours = flatten(doc.layers, doc.rect).astype(np.float64)
    theirs = np.asarray(PSDImage.open(exported).composite(), np.float64)  # the stored preview
    assert theirs.shape == ours.shape
    assert np.abs(theirs[..., 3] - ours[..., 3]).max() == 0
    alpha = ours[..., 3:] / 255
    # compare premultiplied colour: un-matting tiny alphas amplifies rounding
    assert np.abs(theirs[..., :3] * alpha - ours[..., :3] * alpha).max() <= 1.0
    recomposited = np.asarray(PSDImage.open(exported).composite(ignore_preview=True), np.float64)
    assert np.abs(recomposited[..., 3] - ours[..., 3]).max() <= 1


def test_psd_import_as_layers(doc, exported):
    back = open_psd(exported)
    assert back.path is None  # Save asks where to put the project
    assert not back.is_modified
    # Impasto's own PSD brings every role back, and no second mask
    assert [(layer.name, layer.kind) for layer in back.layers] == [
        (layer.name, layer.kind) for layer in doc.layers
    ]
    assert_same_layers(doc, back)  # pixels, offsets, opacity, recipes, controls, pose keypoints
    assert back.mask_layer is not None and back.mask_layer.kind is LayerKind.MASK
    alpha_back = flatten(back.layers, back.rect)[..., 3].astype(int)
    alpha_doc = flatten(doc.layers, doc.rect)[..., 3].astype(int)
    assert np.abs(alpha_back - alpha_doc).max() <= 1  # PSD opacity is 8-bit


def test_psd_from_elsewhere_with_group(tmp_path):
    rng = np.random.default_rng(5)
    a, b = random_rgba(rng, 10, 12), random_rgba(rng, 5, 6)
    psd = PSDImage.new("RGBA", (32, 24), color=(0, 0, 0, 0))
    bottom = PixelLayer.frompil(Image.fromarray(a), psd, "bottom", top=1, left=2)
    inner = PixelLayer.frompil(Image.fromarray(b), psd, "inner", top=4, left=3)
    group = psd.create_group([inner], "folder")
    group.opacity = 128
    group.visible = False
    path = tmp_path / "elsewhere.psd"
    psd.save(path)
    assert bottom.name == "bottom"
    doc = open_psd(path)
    names = [layer.name for layer in doc.layers]
    assert names == ["bottom", "inner", "folder", "Inpaint mask"]
    inner_layer, folder = doc.layers[1], doc.layers[2]
    assert inner_layer.raster.rect.x == 3 and inner_layer.raster.rect.y == 4
    assert np.array_equal(inner_layer.raster.data, b)
    assert inner_layer.visible and inner_layer.opacity == 1.0  # the group keeps its own
    assert folder.kind is LayerKind.GROUP and inner_layer.parent_id == folder.id
    assert not folder.visible and folder.opacity == pytest.approx(128 / 255)
    assert not doc.is_shown(inner_layer)


def test_psd_without_layers_uses_the_merged_image(tmp_path):
    pixels = random_rgba(np.random.default_rng(2), 9, 7)[..., :3].copy()
    path = tmp_path / "flat.psd"
    PSDImage.frompil(Image.fromarray(pixels)).save(path)
    doc = open_psd(path)
    assert np.array_equal(doc.layers[0].raster.data[..., :3], pixels)


def _header(width: int, height: int, version=1, channels=4, depth=8) -> bytes:
    return b"8BPS" + struct.pack(">H6xHIIHH", version, channels, height, width, depth, 3)


@pytest.mark.parametrize(
    "content,error",
    [
        (b"", CorruptFileError),
        (b"GIF89a" + b"\0" * 40, CorruptFileError),
        (_header(10**6, 10), LayerBoundsError),
        (_header(0, 10), LayerBoundsError),
        (_header(10, 10, version=7), CorruptFileError),
        (_header(10, 10) + b"\0\0", CorruptFileError),
    ],
)
def test_bad_psd(tmp_path, content, error):
    path = tmp_path / "bad.psd"
    path.write_bytes(content)
    with pytest.raises(error, match=r"bad\.psd"):
        open_psd(path)


def test_missing_psd(tmp_path):
    with pytest.raises(OpenError, match="not found"):
        open_psd(tmp_path / "none.psd")


def test_truncated_psd(exported, tmp_path):
    raw = exported.read_bytes()
    path = tmp_path / "cut.psd"
    for length in (30, 200, len(raw) // 2, len(raw) - 10):
        path.write_bytes(raw[:length])
        with contextlib.suppress(FileError):  # psd-tools may tolerate a cut in the pixel data
            open_psd(path)


@pytest.fixture(scope="module")
def real_psd(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("psd") / "real.psd"
    save_psd(every_kind_document(), path)
    return path.read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_mutated_psd(real_psd, tmp_path_factory, data):
    raw = bytearray(real_psd)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(raw) - 1))
        if data.draw(st.booleans()):
            raw[position] = data.draw(st.integers(0, 255))
        else:
            raw[position : position + 4] = data.draw(st.binary(min_size=4, max_size=4))
    path = tmp_path_factory.mktemp("fuzz") / "m.psd"
    path.write_bytes(bytes(raw))
    with contextlib.suppress(FileError):
        open_psd(path)


def test_psd_masked_hidden_layer_keeps_opacity_once(tmp_path):
    psd = PSDImage.new("RGBA", (20, 20), color=(0, 0, 0, 0))
    pixels = np.zeros((10, 10, 4), np.uint8)
    pixels[...] = (200, 100, 50, 255)
    layer = PixelLayer.frompil(Image.fromarray(pixels), psd, "masked", top=2, left=3)
    mask = np.zeros((10, 10), np.uint8)
    mask[:, 5:] = 255
    layer.create_mask(Image.fromarray(mask), top=2, left=3)
    layer.opacity = 128
    layer.visible = False
    path = tmp_path / "masked.psd"
    psd.save(path)
    imported = open_psd(path).layers[0]
    assert not imported.visible and imported.opacity == pytest.approx(128 / 255)
    data = imported.raster.read(imported.raster.rect)
    left_half = imported.raster.read(Rect(3, 2, 5, 10))
    right_half = imported.raster.read(Rect(8, 2, 5, 10))
    assert data.size and (right_half[..., 3] == 255).all()  # opacity not baked into the pixels
    assert (right_half[..., :3] == (200, 100, 50)).all()
    assert (left_half[..., 3] == 0).all()  # the mask is applied


def test_roles_survive_ora_psd_ora_and_stay_plain_pixels_elsewhere(doc, tmp_path):
    from app.cli_convert import main
    from app.io.ora import open_ora, save_ora

    save_ora(doc, tmp_path / "x.ora")
    assert main([str(tmp_path / "x.ora"), str(tmp_path / "x.psd")]) == 0
    assert main([str(tmp_path / "x.psd"), str(tmp_path / "back.ora")]) == 0
    back = open_ora(tmp_path / "back.ora")
    assert_same_layers(doc, back)
    assert len(back.layers_of(LayerKind.MASK)) == 1
    pose = back.layers_of(LayerKind.POSE)[0]
    assert pose.pose == doc.layers_of(LayerKind.POSE)[0].pose  # editable keypoints
    # elsewhere (psd-tools as any reader): plain pixel layers, the mask hidden white + alpha
    psd = PSDImage.open(tmp_path / "x.psd")
    assert all(layer.kind == "pixel" for layer in psd)
    mask = next(layer for layer in psd if layer.name == "Inpaint mask")
    assert not mask.visible and mask.topil().mode == "RGBA"


def test_tampered_role_data_falls_back_to_pixels(doc, exported, tmp_path):
    from psd_tools.constants import Tag

    psd = PSDImage.open(exported)
    for layer in psd:
        for item in layer.tagged_blocks.get_data(Tag.METADATA_SETTING) or []:
            if item.key == b"impa":
                item.data = b'{"kind": "pose", "pose": {"width": 1e308}, "visible": 3}'
    psd.save(tmp_path / "tampered.psd")
    back = open_psd(tmp_path / "tampered.psd")
    assert back.layers_of(LayerKind.POSE) == []  # unusable pose data: the pixels stay
    assert len(back.layers_of(LayerKind.MASK)) == 1


def test_role_opacity_below_zero_is_clamped_so_a_save_reopens_equal():
    """Found by the round-trip property: an 'impa' block saying opacity -1/256 for a layer
    whose PSD opacity is 0 came in as -0.0039 and went out as 0."""
    from app.io.psd_roles import apply_role

    layer = Layer(LayerKind.IMAGE, "ghost", Raster(4), opacity=0.0)
    role = apply_role(layer, {"kind": "sketch", "opacity": -0.00390625})
    assert role.kind is LayerKind.SKETCH and role.opacity == 0.0
    role = apply_role(layer, {"kind": "sketch", "opacity": float("nan")})
    assert role.opacity == 0.0
