"""Optional: what GIMP does to Impasto's role data (PSD ``shmd`` item ``impa``) when it re-saves
one of our PSDs, and how Impasto reopens the result. Skipped without ``gimp-console``.

Found with GIMP 2.10: it keeps names, offsets, pixels, opacity and visibility but drops every
``shmd`` item, so the roles are gone. Impasto then opens plain picture layers, takes the hidden
"Inpaint mask" layer back as the mask (no second, empty one beside it), and shows the same
picture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from psd_tools import PSDImage
from psd_tools.constants import Tag

from app.io.layer_data import flatten
from app.io.psd import open_psd, save_psd
from app.layers import LayerKind
from tests.app.io_samples import every_kind_document
from tests.app.test_compose_gimp import GIMP, run_gimp

pytestmark = pytest.mark.skipif(GIMP is None, reason="GIMP is not installed")


def resave_with_gimp(source: Path, target: Path, tmp_path: Path) -> None:
    script = f"""(let* ((image (car (gimp-file-load RUN-NONINTERACTIVE "{source}" "{source}")))
                        (layer (car (gimp-image-get-active-layer image))))
                   (file-psd-save RUN-NONINTERACTIVE image layer "{target}" "{target}" 0 0))"""
    run_gimp([script], tmp_path)


def test_gimp_drops_our_role_data_and_the_reopen_degrades_to_plain_layers(tmp_path):
    doc = every_kind_document()
    ours, theirs = tmp_path / "ours.psd", tmp_path / "gimp.psd"
    save_psd(doc, ours)
    resave_with_gimp(ours, theirs, tmp_path)

    psd = PSDImage.open(theirs)
    assert [layer.name for layer in psd] == [layer.name for layer in doc.layers]
    kept = [
        item
        for layer in psd
        for item in layer.tagged_blocks.get_data(Tag.METADATA_SETTING) or []
        if getattr(item, "key", None) == b"impa"
    ]
    assert kept == [], "GIMP kept Impasto's role data: update docs/architecture.md (PSD roles)"

    back = open_psd(theirs)
    masks = back.layers_of(LayerKind.MASK)
    assert len(masks) == 1  # the old mask, not a plain copy plus a new empty one
    (mask,) = masks
    want = doc.mask_layer.raster
    assert mask.visible and mask.raster.rect == want.rect
    assert np.array_equal(mask.raster.data, want.data)
    others = [layer for layer in back.layers if layer.kind is not LayerKind.MASK]
    assert all(layer.kind is LayerKind.IMAGE for layer in others)  # roles gone: plain pixels
    assert [layer.name for layer in others] == [
        layer.name for layer in doc.layers if layer.kind is not LayerKind.MASK
    ]
    assert all(layer.recipe is None and layer.pose is None for layer in others)
    # the same picture (pose and control images come back hidden, as exported); opacity is
    # 8-bit in a PSD without our exact value (the sketch's 0.5 is 128/255 now): 1 level
    difference = flatten(back.layers, back.rect).astype(int) - flatten(doc.layers, doc.rect)
    assert np.abs(difference).max() <= 1
