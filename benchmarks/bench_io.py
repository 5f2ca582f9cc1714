"""Save and open an 8192x8192 project with 10 layers: seconds and peak memory.

Each measurement runs in a fresh child process so its peak RSS (``ru_maxrss``) belongs to that
operation alone. Two documents:

* ``full``:   10 layers that each cover the whole 8192x8192 canvas (2.5 GiB of RGBA pixels) —
              the worst case;
* ``sparse``: one full-canvas background + 9 layers of 1024x1024 (generated results, sketches,
              the mask), which is what Impasto's bounded layers make typical.

Operations: ``autosave`` (a save without ``mergedimage.png``/thumbnail, as AutosaveManager
writes), ``save`` (a full project save) and ``open``.

Pixels are photo-like (smooth gradients plus grain), tiled from a 512x512 patch, so PNG
compression does real work. Run by hand::

    python benchmarks/bench_io.py              # both documents
    python benchmarks/bench_io.py --only sparse

Memory: the ``full`` case peaks around 3.3 GB, one process at a time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIDE = 8192
LAYERS = 10


def photo_like(h: int, w: int, seed: int) -> np.ndarray:
    """Written tile by tile into one array, so building the document has no big temporaries."""
    rng = np.random.default_rng(seed)
    tile = 512
    y, x = np.mgrid[0:tile, 0:tile].astype(np.float32) / tile
    patch = np.empty((tile, tile, 4), np.uint8)
    for c, phase in enumerate((0.0, 2.0, 4.0)):
        wave = 0.5 + 0.4 * np.sin(6.28 * (x * (1 + seed % 3) + y * 0.7) + phase)
        grain = rng.normal(0, 0.03, (tile, tile))
        patch[..., c] = np.clip((wave + grain) * 255, 0, 255).astype(np.uint8)
    patch[..., 3] = 255
    out = np.empty((h, w, 4), np.uint8)
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            block = out[top : top + tile, left : left + tile]
            block[:] = patch[: block.shape[0], : block.shape[1]]
    return out


def build(kind: str):
    from app.document import Document
    from app.layers import Layer, LayerKind
    from app.raster import Raster

    doc = Document(SIDE, SIDE)
    doc._insert_layer(Layer(LayerKind.IMAGE, "Background", Raster(4, photo_like(SIDE, SIDE, 0))), 0)
    for i in range(1, LAYERS):
        if kind == "full":
            raster = Raster(4, photo_like(SIDE, SIDE, i))
        else:
            raster = Raster(4, photo_like(1024, 1024, i), 700 * i, 650 * i)
        kind_ = LayerKind.RESULT if i % 2 else LayerKind.SKETCH
        recipe = {"prompt": f"layer {i}", "seed": i} if kind_ is LayerKind.RESULT else None
        doc._insert_layer(Layer(kind_, f"Layer {i}", raster, opacity=0.9, recipe=recipe), i)
    return doc


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def child(phase: str, kind: str, path: Path) -> dict:
    from app.io.ora import open_ora, save_ora

    result: dict = {"phase": phase, "kind": kind}
    if phase in ("save", "autosave"):
        doc = build(kind)
        result["pixel_mb"] = sum(layer.raster.nbytes for layer in doc.layers) / 2**20
        result["before_mb"] = rss_mb()
        start, cpu = time.perf_counter(), cpu_seconds()
        save_ora(doc, path, merged=phase == "save")  # autosaves skip the flattened picture
        result["seconds"] = time.perf_counter() - start
        result["cpu_seconds"] = cpu_seconds() - cpu
        result["file_mb"] = path.stat().st_size / 2**20
    else:
        import app.document  # noqa: F401  (Qt and the model loaded before measuring)

        result["before_mb"] = rss_mb()
        start, cpu = time.perf_counter(), cpu_seconds()
        doc = open_ora(path)
        result["seconds"] = time.perf_counter() - start
        result["cpu_seconds"] = cpu_seconds() - cpu
        result["pixel_mb"] = (
            sum(layer.raster.nbytes for layer in doc.layers if layer.raster is not None) / 2**20
        )
    result["peak_mb"] = peak_mb()
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["full", "sparse"])
    parser.add_argument("--child", nargs=3, metavar=("PHASE", "KIND", "PATH"))
    args = parser.parse_args()
    if args.child:
        phase, kind, path = args.child
        print(json.dumps(child(phase, kind, Path(path))))
        return 0
    kinds = [args.only] if args.only else ["sparse", "full"]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in kinds:
            path = Path(folder) / f"{kind}.ora"
            for phase in ("autosave", "save", "open"):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", phase, kind, str(path)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                rows.append(json.loads(out.strip().splitlines()[-1]))
            path.unlink()
    print(
        "| document | operation | wall s | CPU s | layer pixels MB | RSS before MB | peak RSS MB "
        "| peak above before MB | file MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    sizes = {row["kind"]: row["file_mb"] for row in rows if row["phase"] == "save"}
    for row in rows:
        print(
            f"| {row['kind']} | {row['phase']} | {row['seconds']:.1f} | {row['cpu_seconds']:.1f} | "
            f"{row['pixel_mb']:.0f} | "
            f"{row['before_mb']:.0f} | {row['peak_mb']:.0f} | "
            f"{row['peak_mb'] - row['before_mb']:.0f} | "
            f"{sizes[row['kind']] if row['phase'] != 'autosave' else float('nan'):.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
