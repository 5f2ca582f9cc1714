"""Full-size SD1.5 and SDXL, random weights from the bundled configs: it/s raw diffusers vs engine.

Needs a CUDA GPU (about 12 GB for SDXL in fp16) and ~8 GB of free disk for the temporary model
folders; no downloads (configs and tokenizer are bundled). Run whenever a GPU is lent:

    python benchmarks/gpu_bench.py [--families sd15 sdxl] [--steps 20] [--repeats 3]

Random weights give noise images but exactly the real compute, which is what it/s measures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NATIVE = {"sd15": 512, "sdxl": 1024}


def build_random_model(family: str, folder: Path, dtype) -> Path:
    """Instantiate every component from resources/configs/<family> and save a diffusers folder."""
    import diffusers
    import torch
    import transformers

    from inference.models import CONFIGS_DIR, bundled_tokenizers

    config_dir = CONFIGS_DIR / family
    index = diffusers.DiffusionPipeline.load_config(str(config_dir))
    parts = {}
    torch.manual_seed(0)
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        library, class_name = spec
        cls = getattr(diffusers if library == "diffusers" else transformers, class_name)
        if name.startswith("tokenizer"):
            continue
        if name == "scheduler":
            parts[name] = cls.from_pretrained(str(config_dir), subfolder=name)
        elif library == "diffusers":
            parts[name] = cls.from_config(cls.load_config(str(config_dir), subfolder=name))
        else:
            config = cls.config_class.from_pretrained(str(config_dir), subfolder=name)
            parts[name] = cls(config)
        if hasattr(parts[name], "to") and name != "scheduler":
            parts[name] = parts[name].to(dtype)
    parts.update(bundled_tokenizers(config_dir))
    pipeline_cls = getattr(diffusers, index["_class_name"])
    extra = (
        {}
        if family == "sdxl"
        else {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    )
    pipe = pipeline_cls(**parts, **extra)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def bench(family: str, steps: int, repeats: int, tmp: Path) -> dict:
    import torch

    from inference.api import EngineSettings, Mode, Request, Sampler
    from inference.engine import Engine
    from inference.schedulers import make_scheduler

    folder = build_random_model(family, tmp / family, torch.float16)
    size = NATIVE[family]
    engine = Engine(EngineSettings(device="cuda", precision="fp16"))
    loaded = engine.load(str(folder))
    pipe = loaded.pipeline(Mode.TXT2IMG)
    request = Request(
        Mode.TXT2IMG,
        prompt="a cat",
        steps=steps,
        width=size,
        height=size,
        seed=1,
        sampler=Sampler.EULER_A,
        model_path=str(folder),
    )

    def raw() -> None:
        pipe.scheduler = make_scheduler(Sampler.EULER_A, loaded.scheduler_config)
        pipe(
            "a cat",
            num_inference_steps=steps,
            width=size,
            height=size,
            generator=torch.Generator("cpu").manual_seed(1),
            output_type="np",
        )

    def ours() -> None:
        engine.run(request, lambda step, total, image, *_: None)

    def timed(fn) -> float:
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        return time.perf_counter() - start

    raw(), ours()  # warm-up (cuDNN autotune, allocator)
    raw_t, our_t = [], []
    for _ in range(repeats):
        raw_t.append(timed(raw))
        our_t.append(timed(ours))
    engine.close()
    r, o = statistics.median(raw_t), statistics.median(our_t)
    return {
        "family": family,
        "size": size,
        "raw_its": steps / r,
        "engine_its": steps / o,
        "ratio": o / r,
        "gpu": torch.cuda.get_device_name(0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["sd15", "sdxl"], choices=list(NATIVE))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU: this benchmark needs one")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families:
            row = bench(family, args.steps, args.repeats, Path(tmp))
            print(
                f"{row['gpu']} {row['family']} {row['size']}px {args.steps} steps fp16: "
                f"raw {row['raw_its']:.2f} it/s, engine {row['engine_its']:.2f} it/s "
                f"(time ratio {row['ratio']:.3f}; it/s include text encoding and VAE decode)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
