"""Remote engine (Ray Serve) vs the local engine: added latency per job, preview latency, and
throughput with 1, 2 and 4 replicas. Run by hand (CPU is fine; tiny random-weight model):

    python benchmarks/bench_remote.py [--size 128] [--steps 8] [--repeats 5] [--jobs 8]
                                      [--replicas 1 2 4] [--device cpu|cuda] [--model PATH]

It starts a local Ray instance (``ray.init(num_cpus=...)``) and deploys Impasto's gateway and
engine replicas on loopback exactly as ``impasto serve`` does; each replica runs torch with
``--threads`` threads. The local baseline runs the same request in this process.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
print = partial(print, flush=True)  # lines appear between Ray's own output
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=8, help="concurrent jobs per throughput run")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per replica")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--gpus-per-replica", type=float, default=0.0)
    parser.add_argument("--model", help="a real model folder/.safetensors instead of the tiny one")
    args = parser.parse_args()

    import numpy as np
    import ray
    import torch

    from inference.api import Box, EngineSettings, Mode, Request
    from inference.engine import Engine
    from inference.remote import RemoteEngine
    from inference.serve.deployment import ServeConfig, deploy
    from inference.serve.wire import remote_model_path
    from tests.tiny_models import save_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = (
            Path(args.model) if args.model else save_tiny_model(Path(tmp) / "tiny", inpaint=True)
        )
        rng = np.random.default_rng(0)
        size = args.size
        mask = np.zeros((size, size), np.uint8)
        mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
        request = Request(
            Mode.INPAINT,
            prompt="a bowl of fruit",
            steps=args.steps,
            strength=1.0,
            image=rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
            mask=mask,
            crop_box=Box(0, 0, size, size),
            model_size=size,
            model_path=str(model),
        )
        torch.set_num_threads(args.threads)
        local = Engine(EngineSettings(device=args.device))
        local.run(request)  # load + warm

        ray.init(
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}},
        )
        remote_request = replace(request, model_path=remote_model_path(model.name))
        print(
            f"machine: {os.cpu_count()} CPUs, device {args.device}; image {size}², "
            f"{args.steps} steps, torch threads per replica {args.threads}"
        )
        port = _free_port()  # Serve's proxy keeps its first port: every deployment uses it
        for count in args.replicas:
            config = ServeConfig(
                models=(str(model.parent),),
                token="bench",
                replicas=count,
                cpus_per_replica=0,
                gpus_per_replica=args.gpus_per_replica,
                device=args.device,
                torch_threads=args.threads,
            )
            url = deploy(config, "127.0.0.1", port)
            client = RemoteEngine(url, "bench")
            for _ in range(count):  # every replica loads the model once
                _concurrent(client, remote_request, count)
            if count == args.replicas[0]:
                _latency(client, remote_request, local, request, args.repeats)
            jobs = max(args.jobs, count)
            elapsed = _concurrent(client, remote_request, jobs)
            print(
                f"{count} replica(s): {jobs} concurrent jobs in {elapsed:.2f} s = "
                f"{jobs / elapsed * 60:.0f} jobs/min"
            )
        ray.shutdown()
    return 0


def _latency(client, remote_request, engine, local_request, repeats: int) -> None:
    """Local and remote runs interleaved (the machine's load hits both alike)."""
    local_times, remote_times, lags = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        engine.run(local_request, lambda *a: None)
        local_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        for event in client.events(remote_request):
            if event["type"] == "preview":
                lags.append(time.time() - event["at"])
        remote_times.append(time.perf_counter() - start)
    local, remote = statistics.median(local_times), statistics.median(remote_times)
    print(f"local job: median {local * 1000:.0f} ms (this process, interleaved)")
    print(
        f"remote job (1 replica): median {remote * 1000:.0f} ms, "
        f"added {(remote - local) * 1000:.0f} ms, ratio {remote / local:.2f}"
    )
    print(
        f"preview latency (replica -> client): median {statistics.median(lags) * 1000:.1f} ms, "
        f"max {max(lags) * 1000:.1f} ms over {len(lags)} previews"
    )


def _concurrent(client, request, jobs: int) -> float:
    from inference.remote import RemoteEngine

    errors: list[BaseException] = []

    def one(seed: int) -> None:
        try:
            RemoteEngine(client.url, "bench", idle_timeout=120).run(replace(request, seed=seed))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=one, args=(seed,)) for seed in range(jobs)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - start


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
