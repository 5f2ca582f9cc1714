"""Optional: GIMP renders Impasto's PSD exports with blend modes and groups as Impasto does, and
Impasto reads GIMP's own PSDs as GIMP renders them. Skipped when ``gimp-console`` is absent
(Debian: ``apt-get install --no-install-recommends gimp``, ~390 MB). Krita has its own optional
test (test_compose_krita.py).

GIMP 2.10 reads and writes PSD modes as its "legacy" modes, which blend in sRGB like Photoshop,
so only the modes whose legacy formula is the W3C one are compared (normal, multiply, screen,
difference, darken, lighten), each over an opaque backdrop (a legacy mode over transparency is
GIMP's own), plus a normal group at 50% over overlapping children (isolated: the group opacity
is not multiplied into each child). GIMP's non-legacy Normal composites in linear light (a 50%
mix of sRGB 28 and 170 gives 126, not 99), so the group is set to Normal (legacy) as well.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app import blend
from app.document import Document
from app.io.layer_data import flatten
from app.io.psd import open_psd, save_psd
from app.layers import Layer, LayerKind
from app.raster import Raster

GIMP = shutil.which("gimp-console-2.10") or shutil.which("gimp-console")
pytestmark = pytest.mark.skipif(GIMP is None, reason="GIMP is not installed")

H, W = 40, 48
MODES = ["svg:multiply", "svg:screen", "svg:difference", "svg:darken", "svg:lighten"]
GIMP_LEGACY = {
    blend.NORMAL: "LAYER-MODE-NORMAL-LEGACY",
    "svg:multiply": "LAYER-MODE-MULTIPLY-LEGACY",
    "svg:screen": "LAYER-MODE-SCREEN-LEGACY",
    "svg:difference": "LAYER-MODE-DIFFERENCE-LEGACY",
    "svg:darken": "LAYER-MODE-DARKEN-ONLY-LEGACY",
    "svg:lighten": "LAYER-MODE-LIGHTEN-ONLY-LEGACY",
}


def run_gimp(scripts: list[str], tmp_path: Path) -> None:
    """One GIMP process for all ``scripts`` (it takes seconds to start)."""
    batch = [arg for script in scripts for arg in ("-b", script)]
    result = subprocess.run(
        [GIMP, "-i", "-d", "-f", "--no-shm", *batch, "-b", "(gimp-quit 0)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]


def render_script(psd: Path, png: Path) -> str:
    return f"""(let* ((image (car (gimp-file-load RUN-NONINTERACTIVE "{psd}" "{psd}")))
                      (merged (car (gimp-image-merge-visible-layers image CLIP-TO-IMAGE))))
                 (file-png-save RUN-NONINTERACTIVE image merged "{png}" "{png}" 0 0 0 0 0 0 0))"""


def photo(seed: int, opaque: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    if opaque:
        pixels[..., 3] = 255
    else:  # a shape per layer, placed so that the group's two children overlap
        pixels[..., 3] = 0
        pixels[5 + seed : 30 + seed, 4 + 2 * seed : 36 + seed, 3] = 255
    return pixels


def read_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGBA"))


def compare(ours: np.ndarray, theirs: np.ndarray, what: str, tolerance: int = 2) -> None:
    solid = theirs[..., 3] > 0
    alpha = np.abs(ours[..., 3].astype(int) - theirs[..., 3].astype(int)).max()
    colour = np.abs(ours[..., :3].astype(int) - theirs[..., :3].astype(int))[solid].max()
    assert alpha <= tolerance and colour <= tolerance, (what, alpha, colour)


def impasto_doc(mode: str) -> Document:
    """An opaque base, a layer in ``mode``, and a normal group at 50% of two overlapping
    layers."""
    doc = Document(W, H)
    doc._insert_layer(Layer(LayerKind.IMAGE, "base", Raster(4, photo(0, True))), 0)
    doc._insert_layer(Layer(LayerKind.IMAGE, "top", Raster(4, photo(1, False)), blend_mode=mode), 1)
    group = Layer(LayerKind.GROUP, "group", opacity=0.5)
    for index, seed in enumerate((2, 3)):
        child = Layer(LayerKind.IMAGE, f"child {seed}", Raster(4, photo(seed, False)))
        child.parent_id = group.id
        doc._insert_layer(child, 2 + index)
    doc._insert_layer(group, 4)
    return doc


def test_gimp_renders_our_psd_exports_like_impasto(tmp_path):
    docs, scripts = {}, []
    for mode in MODES:
        stem = mode.split(":")[1]
        docs[mode] = impasto_doc(mode)
        save_psd(docs[mode], tmp_path / f"{stem}.psd")
        scripts.append(render_script(tmp_path / f"{stem}.psd", tmp_path / f"{stem}.png"))
    run_gimp(scripts, tmp_path)
    for mode, doc in docs.items():
        theirs = read_png(tmp_path / f"{mode.split(':')[1]}.png")
        compare(flatten(doc.layers, doc.rect), theirs, mode)


def gimp_psd_script(mode: str, pngs: list[Path], psd: Path, render: Path) -> str:
    return f"""(let* ((image (car (gimp-image-new {W} {H} RGB)))
                      (base (car (gimp-file-load-layer RUN-NONINTERACTIVE image "{pngs[0]}")))
                      (top (car (gimp-file-load-layer RUN-NONINTERACTIVE image "{pngs[1]}")))
                      (group (car (gimp-layer-group-new image)))
                      (a (car (gimp-file-load-layer RUN-NONINTERACTIVE image "{pngs[2]}")))
                      (b (car (gimp-file-load-layer RUN-NONINTERACTIVE image "{pngs[3]}"))))
                 (gimp-image-insert-layer image base 0 0)
                 (gimp-image-insert-layer image top 0 0)
                 (gimp-layer-set-mode top {GIMP_LEGACY[mode]})
                 (gimp-image-insert-layer image group 0 0)
                 (gimp-image-insert-layer image a group 0)
                 (gimp-image-insert-layer image b group 0)
                 (gimp-layer-set-mode group LAYER-MODE-NORMAL-LEGACY)
                 (gimp-layer-set-opacity group 50)
                 (file-psd-save RUN-NONINTERACTIVE image base "{psd}" "{psd}" 0 0)
                 (let ((merged (car (gimp-image-merge-visible-layers image CLIP-TO-IMAGE))))
                   (file-png-save RUN-NONINTERACTIVE image merged "{render}" "{render}"
                                  0 0 0 0 0 0 0)))"""


def test_impasto_reads_gimps_psds_as_gimp_renders_them(tmp_path):
    pngs = []
    for seed, opaque in ((0, True), (1, False), (2, False), (3, False)):
        png = tmp_path / f"p{seed}.png"
        Image.fromarray(photo(seed, opaque)).save(png)
        pngs.append(png)
    scripts = []
    for mode in MODES:
        stem = mode.split(":")[1]
        psd, render = tmp_path / f"gimp-{stem}.psd", tmp_path / f"gimp-{stem}.png"
        scripts.append(gimp_psd_script(mode, pngs, psd, render))
    run_gimp(scripts, tmp_path)
    for mode in MODES:
        stem = mode.split(":")[1]
        doc = open_psd(tmp_path / f"gimp-{stem}.psd")
        by_name = {layer.name: layer for layer in doc.layers}
        group = next(layer for layer in doc.layers if layer.kind is LayerKind.GROUP)
        assert group.opacity == pytest.approx(0.5, abs=0.01) and group.blend_mode == blend.NORMAL
        assert by_name["p2.png"].parent_id == group.id and by_name["p3.png"].parent_id == group.id
        assert by_name["p1.png"].blend_mode == mode
        compare(flatten(doc.layers, doc.rect), read_png(tmp_path / f"gimp-{stem}.png"), mode)
