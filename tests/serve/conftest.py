"""One real Ray Serve deployment (CPU, tiny models, loopback) shared by this folder's tests."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789"
MAX_PIXELS = 128 * 128  # small, so an oversized request is cheap to build


@dataclass(frozen=True)
class Server:
    url: str
    token: str
    models: Path  # the folder the server serves (the same tiny models the local engine runs)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ray_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if _is_ray_thread(t)}


def _is_ray_thread(thread: threading.Thread) -> bool:
    target = getattr(thread, "_target", None)
    module = getattr(target, "__module__", "") or ""
    return module.startswith("ray") or thread.name.startswith(("ray_", "PythonGCThread"))


@pytest.fixture(autouse=True)
def no_thread_left_running():
    """The suite's thread check, minus the Ray driver's own daemon threads (Ray starts and
    keeps them for the session; they are not ours to join)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        leftover = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and not _is_ray_thread(t)
        ]
        if not leftover or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leftover, f"test left threads running: {[t.name for t in leftover]}"


@pytest.fixture(scope="session")
def served_models(tmp_path_factory) -> Path:
    from tests.tiny_models import save_tiny_model

    folder = tmp_path_factory.mktemp("served")
    save_tiny_model(folder / "tiny-sd-inpaint", inpaint=True)
    return folder


@pytest.fixture(scope="package")
def server(served_models: Path) -> Iterator[Server]:
    """Two CPU engine replicas behind the gateway on 127.0.0.1 (about 20 s to start), shut
    down when this folder's tests are done (the rest of the suite runs without Ray)."""
    import ray

    from inference.serve.deployment import ServeConfig, deploy
    from inference.serve.wire import Limits

    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=80 * 2**20,
        log_to_driver=False,
        runtime_env={"env_vars": env},
        configure_logging=False,
    )
    try:
        config = ServeConfig(
            models=(str(served_models),),
            token=TOKEN,
            limits=Limits(max_pixels=MAX_PIXELS, max_batch=4, max_steps=200, max_body_bytes=2**22),
            replicas=2,
            cpus_per_replica=0,  # the 2-core machine: both replicas fit beside the gateway
            device="cpu",
            torch_threads=1,
            heartbeat_s=0.25,
        )
        url = deploy(config, "127.0.0.1", _free_port())
        yield Server(url, TOKEN, served_models)
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()
        os.environ.pop("RAY_ADDRESS", None)
