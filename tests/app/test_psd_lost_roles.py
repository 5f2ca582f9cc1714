"""A PSD of ours whose role data another program dropped (GIMP 2.10 does, see
test_psd_gimp.py) reopens as plain layers with its mask taken back, never a second mask."""

from __future__ import annotations

import numpy as np
from psd_tools import PSDImage
from psd_tools.constants import Tag

from app.io.psd import open_psd, save_psd
from app.layers import Layer, LayerKind
from app.raster import Raster
from tests.app.io_samples import every_kind_document


def _strip_roles(source, target) -> None:
    psd = PSDImage.open(source)
    for layer in psd:
        blocks = layer.tagged_blocks
        if Tag.METADATA_SETTING in blocks:
            del blocks[Tag.METADATA_SETTING]
    psd.save(target)


def test_without_role_data_the_hidden_mask_layer_becomes_the_mask_again(tmp_path):
    doc = every_kind_document()
    save_psd(doc, tmp_path / "ours.psd")
    _strip_roles(tmp_path / "ours.psd", tmp_path / "plain.psd")
    back = open_psd(tmp_path / "plain.psd")
    (mask,) = back.layers_of(LayerKind.MASK)
    assert mask.visible and np.array_equal(mask.raster.data, doc.mask_layer.raster.data)
    assert mask.raster.rect == doc.mask_layer.raster.rect
    assert {layer.kind for layer in back.layers} == {LayerKind.IMAGE, LayerKind.MASK}


def test_a_picture_merely_named_inpaint_mask_stays_a_picture(tmp_path):
    doc = every_kind_document()
    doc._remove_layer(doc.mask_layer.id)
    red = np.zeros((8, 8, 4), np.uint8)
    red[..., 0] = red[..., 3] = 255
    doc._insert_layer(Layer(LayerKind.IMAGE, "Inpaint mask", Raster(4, red), visible=False), 1)
    save_psd(doc, tmp_path / "ours.psd")
    _strip_roles(tmp_path / "ours.psd", tmp_path / "plain.psd")
    back = open_psd(tmp_path / "plain.psd")
    named = [layer for layer in back.layers if layer.name == "Inpaint mask"]
    assert [layer.kind for layer in named] == [LayerKind.IMAGE, LayerKind.MASK]
    assert back.mask_layer.raster.is_blank()  # a fresh, empty mask on top
