"""LoRA costs: first load, cached re-apply, and generation time with a LoRA on / switched off.

Run by hand (CPU is fine; tiny random-weight model and LoRA built in code):

    python benchmarks/bench_loras.py [--size 256] [--steps 20] [--repeats 5]
    python benchmarks/bench_loras.py --model MODEL --lora LORA.safetensors   # real files

"switched off" = a request without LoRAs after one with (the adapters stay loaded but disabled,
so the next LoRA request loads nothing); its ratio to "never loaded" is the price of keeping them.

``--accuracy`` (tiny model only): 8-bit levels between a kohya LoRA applied by the engine and the
same factors merged into the weights by hand (W += weight * alpha/rank * up @ down), for a full
layer set and for partial sets (text-encoder q_proj of one layer beside every MLP, as pruned LoRAs
hold), and the number of layers applied of those in the file.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", help="a real model folder/.safetensors instead of the tiny one")
    parser.add_argument("--lora", help="a real LoRA file instead of the tiny one")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (steadier)")
    parser.add_argument("--accuracy", action="store_true", help="levels off a hand merge")
    args = parser.parse_args()
    if args.accuracy:
        return accuracy(args)

    import torch

    torch.set_num_threads(args.threads)

    from inference.api import EngineSettings, Mode
    from inference.engine import Engine
    from inference.loras import apply_loras, unload_loras
    from tests.tiny_loras import save_kohya_lora, tiny_lora_factors
    from tests.tiny_models import save_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(save_tiny_model(Path(tmp) / "tiny"))
        lora = args.lora or str(
            save_kohya_lora(Path(tmp) / "tiny.safetensors", tiny_lora_factors())
        )
        device = "cpu" if not torch.cuda.is_available() else "auto"
        pipe = Engine(EngineSettings(device=device)).load(model).pipeline(Mode.TXT2IMG)

        def generate() -> float:
            generator = torch.Generator("cpu").manual_seed(1)
            start = time.perf_counter()
            pipe(
                "a cat",
                num_inference_steps=args.steps,
                width=args.size,
                height=args.size,
                generator=generator,
                output_type="np",
            )
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            return time.perf_counter() - start

        generate()  # warm-up
        states = {
            "never loaded": lambda: unload_loras(pipe),
            "LoRA on (weight 1)": lambda: apply_loras(pipe, [(lora, 1.0)]),
            "switched off": lambda: (apply_loras(pipe, [(lora, 1.0)]), apply_loras(pipe, [])),
        }
        times: dict[str, list[float]] = {name: [] for name in states}
        loads, reapplies = [], []
        for _ in range(args.repeats):  # interleaved, so load from other jobs hits all alike
            unload_loras(pipe)
            start = time.perf_counter()
            apply_loras(pipe, [(lora, 1.0)])
            loads.append(time.perf_counter() - start)
            start = time.perf_counter()
            apply_loras(pipe, [(lora, 0.7)])
            apply_loras(pipe, [(lora, 1.0)])
            reapplies.append((time.perf_counter() - start) / 2)
            for name, prepare in states.items():
                prepare()
                times[name].append(generate())

    print(f"model {args.model or 'tiny'}, {args.size}px, {args.steps} steps, device {device}")
    print(f"first load        median {statistics.median(loads) * 1000:8.1f} ms")
    print(f"cached re-apply   median {statistics.median(reapplies) * 1000:8.1f} ms")
    base = min(times["never loaded"])
    for name, values in times.items():
        print(f"{name:<18} best {min(values):7.3f} s   ratio {min(values) / base:5.3f}")
    return 0


def accuracy(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from diffusers import StableDiffusionPipeline

    torch.set_num_threads(args.threads)
    from inference.api import EngineSettings, Mode
    from inference.engine import Engine
    from inference.loras import apply_loras, loaded_loras, unload_loras
    from tests.tiny_loras import (
        TEXT_MLP_TARGETS,
        TEXT_TARGETS,
        UNET_FF_TARGETS,
        UNET_TARGETS,
        merge_lora_into,
        only,
        save_kohya_lora,
        tiny_lora_factors,
    )
    from tests.tiny_models import save_tiny_model

    def render(pipe) -> np.ndarray:
        generator = torch.Generator("cpu").manual_seed(1)
        out = pipe(
            "a cat",
            num_inference_steps=args.steps,
            width=args.size,
            height=args.size,
            generator=generator,
            output_type="np",
        )
        return np.rint(np.clip(out.images[0], 0, 1) * 255).astype(np.int16)

    wide = tiny_lora_factors(
        seed=7,
        rank=4,
        alpha=3.0,
        unet_targets=UNET_TARGETS + UNET_FF_TARGETS,
        text_targets=TEXT_TARGETS + TEXT_MLP_TARGETS,
    )
    sets = {
        "full (attention + MLP, UNet + text)": wide,
        "text q_proj of layer 0 + text mlp.fc1 + UNet ff": only(
            wide, "text_encoder.encoder.layers.0.self_attn.q_proj", "mlp.fc1", "ff.net"
        ),
        "text q_proj of layer 0 only": only(wide, "text_encoder.encoder.layers.0.self_attn.q_proj"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        model = str(save_tiny_model(Path(tmp) / "tiny"))
        pipe = Engine(EngineSettings(device="cpu")).load(model).pipeline(Mode.TXT2IMG)
        for index, (name, factors) in enumerate(sets.items()):
            path = save_kohya_lora(Path(tmp) / f"set{index}.safetensors", factors)
            unload_loras(pipe)
            apply_loras(pipe, [(str(path), 0.8)])
            (adapter,) = loaded_loras(pipe)
            applied = sum(
                adapter in getattr(module, "lora_A", {})
                for part in (pipe.unet, pipe.text_encoder)
                for module in part.modules()
                if hasattr(module, "get_delta_weight")
            )
            ours = render(pipe)
            reference = StableDiffusionPipeline.from_pretrained(
                model, safety_checker=None, feature_extractor=None, local_files_only=True
            )
            reference.set_progress_bar_config(disable=True)
            merge_lora_into(reference, factors, 0.8)
            diff = np.abs(ours - render(reference))
            print(
                f"{name:<50} layers applied {applied}/{len(factors)}   levels off the hand "
                f"merge: mean {diff.mean():.3f}, max {diff.max()}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
