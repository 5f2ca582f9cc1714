"""Engine overhead vs a raw diffusers pipe() call, preview cost, and cancel latency.

Run by hand (CPU is fine; it uses a tiny random-weight model built in code):

    python benchmarks/bench_engine.py [--size 256] [--steps 20] [--repeats 5] [--adapter-only]
    python benchmarks/bench_engine.py --references-only [--size 256] [--steps 20] [--repeats 5]

Targets (issue 3): engine/raw time ratio <= 1.05 with previews on; linear preview <= 1% of the
step time; steps run after a cancel request <= 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", help="a real model folder/.safetensors instead of the tiny one")
    parser.add_argument(
        "--references-only",
        "--adapter-only",  # the adapter rows are part of the references run
        action="store_true",
        help="only the T2I-Adapter and IP-Adapter reference overhead rows (issue 14)",
    )
    args = parser.parse_args()
    if args.references_only:
        return _print_reference_costs(args)

    import torch

    from inference.api import Cancelled, CancelToken, EngineSettings, Mode, Request, Sampler
    from inference.engine import Engine
    from inference.schedulers import make_scheduler
    from tests.tiny_models import save_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(save_tiny_model(Path(tmp) / "tiny"))
        engine = Engine(EngineSettings(device="cpu" if not torch.cuda.is_available() else "auto"))
        request = Request(
            Mode.TXT2IMG,
            prompt="a cat",
            steps=args.steps,
            width=args.size,
            height=args.size,
            seed=1,
            sampler=Sampler.EULER_A,
            model_path=model,
        )
        loaded = engine.load(model)
        pipe = loaded.pipeline(Mode.TXT2IMG)
        previews: list[float] = []

        def on_preview(step, total, image, box=None, region=None):
            previews.append(time.perf_counter())

        def raw_call() -> None:
            pipe.scheduler = make_scheduler(Sampler.EULER_A, loaded.scheduler_config)
            pipe(
                "a cat",
                num_inference_steps=args.steps,
                guidance_scale=7.0,
                width=args.size,
                height=args.size,
                generator=torch.Generator("cpu").manual_seed(1),
                output_type="np",
            )

        def raw_inference_mode() -> None:
            with torch.inference_mode():
                raw_call()

        def engine_call() -> None:
            engine.run(request, on_preview)

        raw_call(), engine_call()  # warm-up
        raw_times, raw_im_times, engine_times = [], [], []
        for _ in range(args.repeats):  # interleaved so drift hits all equally
            for fn, times in (
                (raw_call, raw_times),
                (raw_inference_mode, raw_im_times),
                (engine_call, engine_times),
            ):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
        raw, ours = statistics.median(raw_times), statistics.median(engine_times)
        raw_im = statistics.median(raw_im_times)

        # preview cost: the linear preview alone on this run's latent shape
        from inference.previews import LinearPreview

        preview = LinearPreview(loaded.info.family, loaded.device)
        latents = torch.randn(1, 4, args.size // 8, args.size // 8, device=loaded.device)
        preview(latents)
        start = time.perf_counter()
        for _ in range(200):
            preview(latents)
        preview_cost = (time.perf_counter() - start) / 200
        step_time = ours / args.steps

        # cancel latency: count UNet calls after the cancel request
        calls = {"n": 0, "at_cancel": None}
        unet = loaded.base.unet
        hook = unet.register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
        token = CancelToken()
        cancel_step = args.steps // 2

        def cancel_preview(step, total, image, *_):
            if step == cancel_step:
                token.cancel()
                calls["at_cancel"] = calls["n"]

        with contextlib.suppress(Cancelled):
            engine.run(request, cancel_preview, token)
        hook.remove()
        # one UNet call per step (CFG batches cond+uncond into one call)
        steps_after_cancel = calls["n"] - calls["at_cancel"]
        control_times = (
            _controlnet_costs(engine, request, Path(tmp), args.repeats) if (not args.model) else []
        )

    print(
        f"model: {'tiny random' if not args.model else args.model}, {args.size}px, "
        f"{args.steps} steps, Euler a, median of {args.repeats}"
    )
    print(f"raw diffusers pipe(): {raw:.3f} s   engine.run (previews on): {ours:.3f} s")
    print(f"raw pipe() inside torch.inference_mode (as the engine runs it): {raw_im:.3f} s")
    print(f"overhead ratio engine/raw: {ours / raw:.3f}   (target <= 1.05)")
    print(f"overhead ratio engine/raw-in-inference_mode: {ours / raw_im:.3f}")
    print(
        f"best-of-{args.repeats} ratio engine/raw: {min(engine_times) / min(raw_times):.3f} "
        f"(fastest runs; robust when other jobs share the CPU)"
    )
    print(
        f"linear preview: {preview_cost * 1e3:.3f} ms = {100 * preview_cost / step_time:.2f}% "
        f"of a {step_time * 1e3:.1f} ms step   (target <= 1%)"
    )
    print(f"steps run after cancel: {steps_after_cancel}   (target <= 1)")
    print(f"previews received: {len(previews)} over {args.repeats + 1} engine runs")
    for count, seconds in control_times:
        print(
            f"{count} ControlNet(s): {seconds:.3f} s = {seconds / control_times[0][1]:.2f}x "
            f"the time without ControlNet"
        )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    return 0


def _controlnet_costs(engine, request, tmp: Path, repeats: int) -> list[tuple[int, float]]:
    """Median engine time with 0, 1 and 2 tiny ControlNets (issue 5: cost per added ControlNet)."""
    import numpy as np

    from inference.api import ControlInput, Request
    from tests.tiny_models import save_tiny_controlnet

    paths = [save_tiny_controlnet(tmp / f"cn{i}", seed=i) for i in range(2)]
    image = np.zeros((request.height, request.width, 3), np.uint8)
    rows = []
    for count in (0, 1, 2):
        controls = tuple(ControlInput(image=image, model_path=str(p)) for p in paths[:count])
        job = Request(**{**request.__dict__, "controls": controls})
        engine.run(job)  # warm-up (loads the ControlNets)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            engine.run(job)
            times.append(time.perf_counter() - start)
        rows.append((count, statistics.median(times)))
    return rows


def _print_reference_costs(args: argparse.Namespace) -> int:
    """Engine time of the plain job, with one T2I-Adapter and with one reference image
    (IP-Adapter, loaded once and kept), same process, each repeat running the three in turn;
    then what switching a reference on and off between jobs costs (load + unload)."""
    import numpy as np
    import torch

    from inference.api import ControlInput, EngineSettings, Mode, ReferenceInput, Request, Sampler
    from inference.engine import Engine
    from tests.tiny_adapters import save_tiny_adapter, save_tiny_ip_adapter
    from tests.tiny_models import build_tiny_unet, save_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(save_tiny_model(Path(tmp) / "tiny"))
        adapter = save_tiny_adapter(Path(tmp) / "adapter")
        ip = save_tiny_ip_adapter(Path(tmp) / "ip", build_tiny_unet())
        engine = Engine(EngineSettings(device="cpu" if not torch.cuda.is_available() else "auto"))
        image = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), np.uint8)
        plain = Request(
            Mode.TXT2IMG,
            prompt="a cat",
            steps=args.steps,
            width=args.size,
            height=args.size,
            seed=1,
            sampler=Sampler.EULER_A,
            model_path=model,
        )
        jobs = {
            "plain": plain,
            "adapter": replace(plain, controls=(ControlInput(image, str(adapter), "sketch"),)),
            "reference": replace(plain, references=(ReferenceInput(image, str(ip)),)),
        }
        times: dict[str, list[float]] = {name: [] for name in (*jobs, "switching", "unloading")}
        cpu: dict[str, list[float]] = {name: [] for name in times}

        def timed(name: str, job: Request) -> None:
            start, start_cpu = time.perf_counter(), time.process_time()
            engine.run(job)
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)

        for job in jobs.values():
            engine.run(job)  # warm-up: loads the model, the adapter, the IP-Adapter and encoder
        for _ in range(args.repeats):
            engine.run(jobs["plain"])  # nothing loaded in the UNet from here
            timed("plain", jobs["plain"])
            timed("adapter", jobs["adapter"])
            engine.run(jobs["reference"])  # loads the IP-Adapter
            timed("reference", jobs["reference"])  # it stays loaded
            timed("unloading", jobs["plain"])  # a plain job after a reference unloads it
            timed("switching", jobs["reference"])  # and the next reference loads it again
    base, base_cpu = statistics.median(times["plain"]), statistics.median(cpu["plain"])
    print(
        f"model: {'tiny random' if not args.model else args.model}, {args.size}px, "
        f"{args.steps} steps, Euler a, median of {args.repeats}"
    )
    labels = {
        "adapter": "one T2I-Adapter",
        "reference": "one reference (IP-Adapter kept loaded)",
        "switching": "one reference, loaded for the job",
        "unloading": "a plain job unloading the reference",
    }
    print(f"plain: {base:.3f} s (CPU {base_cpu:.3f} s)")
    for name, label in labels.items():
        ours, ours_cpu = statistics.median(times[name]), statistics.median(cpu[name])
        best = min(times[name]) / min(times["plain"])
        print(
            f"{label}: {ours:.3f} s  ratio {ours / base:.3f}  best-of {best:.3f}  "
            f"CPU-time ratio {ours_cpu / base_cpu:.3f}"
        )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
