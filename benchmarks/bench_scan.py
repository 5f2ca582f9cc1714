"""Model library scan speed: a tree of 2,000 files holding 50 models, first scan vs rescan.

    python benchmarks/bench_scan.py [--files 2000] [--models 50] [--model-mb 20]

Models are header-faithful fakes (realistic tensor counts, so header parsing costs what it does
on real checkpoints) with sparse zero data; the other files are small non-model files in an
A1111/ComfyUI-like tree. Reports, each run in a fresh process state but the same cache file:
  scan (cold cache)  - walk + read every safetensors header
  scan (warm cache)  - walk only; classifications come from the cache
  hash (cold)        - SHA-256 of every model file (the background job)
  hash (warm)        - nothing left to hash
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference.library import LibraryCache, fill_hashes, scan_folders
from tests.inference import test_library_fakes as fakes

# (folder, key names and shapes, realistic tensor count, prefix of the padding tensors)
KINDS = [
    ("Stable-diffusion", fakes.sd1_checkpoint, 1100, "model.diffusion_model.pad"),
    ("Stable-diffusion", fakes.sdxl_checkpoint, 2500, "model.diffusion_model.pad"),
    ("ControlNet", fakes.ldm_controlnet, 340, "control_model.pad"),
    ("Lora", fakes.kohya_lora_sd1, 800, "lora_unet_pad"),
    ("VAE", fakes.ldm_vae, 250, "decoder.pad"),
]


def build_tree(root: Path, files: int, models: int, model_mb: int) -> None:
    for i in range(models):
        folder, make, tensors, pad = KINDS[i % len(KINDS)]
        spec = dict(make())
        # Pad to a realistic number of tensors (real SD1.5: ~1100, SDXL: ~2500).
        for j in range(tensors - len(spec)):
            spec[f"{pad}.{j}.weight"] = (8, 8)
        spec[f"{pad}.bulk.weight"] = (model_mb * 1024 * 512,)  # F16: model_mb MiB
        fakes.write_fake_safetensors(root / "models" / folder / f"model{i:03}.safetensors", spec)
    for i in range(files - models):
        folder = root / "models" / f"extras{i % 40}" / f"sub{i % 9}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{i}.{('txt', 'png', 'json', 'yaml')[i % 4]}").write_bytes(b"x" * 64)
    (root / "models" / "Stable-diffusion").mkdir(parents=True, exist_ok=True)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--model-mb", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="impasto-bench-scan-"))
    try:
        tree, cache_file = work / "webui", work / "cache.json"
        build_tree(tree, args.files, args.models, args.model_mb)
        count = sum(1 for p in tree.rglob("*") if p.is_file())
        cold_scan, result = timed(lambda: scan_folders([tree], cache=LibraryCache(cache_file)))
        assert len(result.entries) == args.models, len(result.entries)
        warm_scan, again = timed(lambda: scan_folders([tree], cache=LibraryCache(cache_file)))
        assert again.entries == result.entries
        cold_hash, hashed = timed(
            lambda: fill_hashes(result.entries, cache=LibraryCache(cache_file))
        )
        assert all(e.hash and e.usable for e in hashed), [e for e in hashed if not e.hash]
        rescanned = scan_folders([tree], cache=LibraryCache(cache_file)).entries
        warm_hash, _ = timed(lambda: fill_hashes(rescanned, cache=LibraryCache(cache_file)))
        total_mb = sum(e.size for e in hashed) / 1e6
        print(f"tree: {count} files, {args.models} models, {total_mb:.0f} MB of model data")
        print(f"scan (cold cache): {cold_scan * 1000:8.1f} ms")
        print(f"scan (warm cache): {warm_scan * 1000:8.1f} ms   ratio {cold_scan / warm_scan:.1f}x")
        print(f"hash (cold):       {cold_hash * 1000:8.1f} ms   ({total_mb / cold_hash:.0f} MB/s)")
        print(f"hash (warm):       {warm_hash * 1000:8.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
