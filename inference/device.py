"""Device and precision choice, memory options, and CUDA out-of-memory handling."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

from inference.api import EngineSettings, OutOfMemoryError

log = logging.getLogger(__name__)

OOM_ADVICE = (
    "the graphics card ran out of memory; lower the size or batch count, or turn on "
    "'model CPU offload', VAE tiling or attention slicing in the settings"
)


def choose_device(settings: EngineSettings) -> Any:
    """``auto`` picks CUDA, then Apple MPS, then the CPU."""
    import torch

    wanted = settings.device.strip().lower()
    if wanted != "auto":
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def reserve_ui_core() -> None:
    """Leave one CPU core to an interactive UI: torch's intra-op threads otherwise take every
    core and starve the UI thread during CPU inference. OMP_NUM_THREADS, when set, wins."""
    preload_torch_library()
    if os.environ.get("OMP_NUM_THREADS"):
        return
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))


def warm_imports() -> None:
    """Import torch, diffusers and transformers (what the first model load needs) with the
    collector paused: run on a background thread while the user is idle, so the first Generate
    does not pay the 3-10 s import, and its GIL-holding C initialisation, on the key press."""
    import inference.engine  # noqa: F401  (no torch; what the first Generate builds on the UI thread)

    preload_torch_library()
    with gc_paused():
        import diffusers
        import torch  # noqa: F401

        # diffusers imports lazily: touch what every first job uses
        _ = diffusers.StableDiffusionPipeline, diffusers.AutoencoderKL
        import transformers

        _ = transformers.CLIPTextModel


_preloaded: list[int] = []  # dlopen handles, kept for the life of the process


def preload_torch_library() -> None:
    """Map torch's big native library (libtorch_cpu.so) with the GIL released, before
    ``import torch`` (Linux; call it on a background thread).

    ``import torch`` loads it as a dependency of ``torch._C`` inside the import machinery, which
    holds the GIL through the dlopen, and dlopen runs the library's static initialisers (every
    operator registration): 200-350 ms with the UI thread stopped. Called through libc's
    ``dlopen`` via ctypes (a foreign call, so the GIL is released), the same work runs beside
    the UI thread; the import then finds the library already loaded. ``ctypes.CDLL`` itself
    keeps the GIL (Python 3.11). Any failure only means the import does the loading itself.
    """
    if _preloaded or "torch" in sys.modules or not sys.platform.startswith("linux"):
        return
    try:
        spec = importlib.util.find_spec("torch")
        if spec is None or spec.origin is None:
            return
        library = os.path.join(os.path.dirname(spec.origin), "lib", "libtorch_cpu.so")
        if not os.path.exists(library):
            return
        dlopen = ctypes.CDLL(None).dlopen
        dlopen.restype = ctypes.c_void_p
        dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
        handle = dlopen(os.fsencode(library), os.RTLD_NOW)  # local: as the import would
    except (OSError, AttributeError, ImportError, ValueError) as error:
        log.debug("torch library not preloaded: %s", error)
        return
    if handle:
        _preloaded.append(handle)
    else:
        log.debug("torch library not preloaded: dlopen failed for %s", library)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while importing torch/diffusers and loading a model.

    Those create millions of objects; each full collection on this thread then holds the GIL
    for 200-500 ms and the UI thread stalls. Afterwards the survivors are frozen (moved out of
    the collector's reach) so later full collections stay short too.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def choose_dtype(device: Any, precision: str = "auto") -> Any:
    """fp32 on the CPU; fp16 on CUDA/MPS (bf16 when asked and supported)."""
    import torch

    precision = precision.strip().lower()
    if device.type == "cpu":
        return torch.bfloat16 if precision == "bf16" else torch.float32
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            log.warning("bf16 is not supported on this GPU; using fp16")
            return torch.float16
        return torch.bfloat16
    return torch.float16


def place_pipeline(pipe: Any, settings: EngineSettings, device: Any) -> None:
    """Move a pipeline to the device, honouring the memory options in the settings."""
    mode = settings.memory_mode
    if device.type == "cuda" and mode == "model_offload":
        pipe.enable_model_cpu_offload(device=device)
    elif device.type == "cuda" and mode == "sequential_offload":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    if settings.vae_tiling:
        pipe.vae.enable_tiling()
        pipe.vae.enable_slicing()
    if settings.attention_slicing:
        pipe.enable_attention_slicing()


def free_memory() -> None:
    import torch

    # Not gc.unfreeze(): the freeze after a load (gc_paused) also froze every Qt wrapper the
    # process had; unfreezing and collecting them here segfaulted the interpreter
    # ("Garbage-collecting" in this function, seen in the test suite). An evicted model's own
    # reference cycles stay frozen (a leak of those cycles only); plain refcounting frees the rest.
    # Collect only on the main thread: a collection on the inference worker would delete the
    # Qt objects of any garbage cycle there (the app collects on its UI thread: app/ui_gc.py).
    if threading.current_thread() is threading.main_thread():
        gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if (
        mps is not None
        and getattr(torch.backends, "mps", None)
        and torch.backends.mps.is_available()
    ):
        mps.empty_cache()


def is_oom(error: BaseException) -> bool:
    import torch

    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


@contextlib.contextmanager
def oom_guard() -> Iterator[None]:
    """Turn a device out-of-memory error into ``OutOfMemoryError`` after freeing the cache."""
    try:
        yield
    except Exception as error:
        if not is_oom(error):
            raise
        log.warning("out of memory: %s", error)
        del error
        free_memory()
        raise OutOfMemoryError(OOM_ADVICE) from None
