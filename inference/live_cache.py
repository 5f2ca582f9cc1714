"""What the engine keeps on the device between jobs, so a stream of similar jobs (live painting,
"generate again") does not redo work whose inputs did not change.

- **Prompt embeddings**: encoded once per (text encoder, prompt, negative prompt, guidance on/off,
  LoRAs) and handed to the pipeline as ``prompt_embeds``/``negative_prompt_embeds``.
- **The encoded source** (img2img): the VAE's latent distribution of the last source image stays
  on the device; a job with the same pixels samples it with its own generator exactly as diffusers
  does (``latent_dist.sample(generator)``), so the result is bit-identical to a fresh encode.
- **Crop work** (``prepare_work``): the crop plan, the resized mask and the feathered paste alpha
  are reused while the mask and the crop box stay the same; only the source is cut again.

Only the pipelines whose ``__call__`` is known to take these inputs unchanged get them (SD1/SD2
and their ControlNet variants, batch of one); anything else runs the plain path. Every cache holds
one entry (the last job), so memory stays a few MB on the device. Not thread-safe: the engine's
worker thread is its only user. No Qt here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.api import Mode, Request

log = logging.getLogger(__name__)

# pipelines whose encode_prompt returns (prompt_embeds, negative_prompt_embeds)
PROMPT_EMBED_PIPELINES = frozenset(
    {
        "StableDiffusionPipeline",
        "StableDiffusionImg2ImgPipeline",
        "StableDiffusionInpaintPipeline",
        "StableDiffusionControlNetPipeline",
        "StableDiffusionControlNetImg2ImgPipeline",
        "StableDiffusionControlNetInpaintPipeline",
    }
)
# pipelines whose prepare_latents takes 4-channel ``image`` as already scaled latents
SOURCE_LATENT_PIPELINES = frozenset(
    {"StableDiffusionImg2ImgPipeline", "StableDiffusionControlNetImg2ImgPipeline"}
)


@dataclass
class CacheStats:
    """Counters and the last job's timings (seconds), read by tests and benchmarks."""

    prompt_hits: int = 0
    prompt_misses: int = 0
    source_hits: int = 0
    source_misses: int = 0
    work_hits: int = 0
    work_misses: int = 0
    prepare_s: float = 0.0  # crop/resize of the request's pixels
    encode_s: float = 0.0  # prompt + source encoding (0 when both came from the cache)
    encode_cpu_s: float = 0.0  # the same in this thread's CPU time (a busy machine inflates wall)
    encoded_at: float = 0.0  # time.perf_counter() when the pipeline call began


@dataclass
class _Entry:
    key: tuple
    value: Any
    pixels: np.ndarray | None = None  # the input it was made from, compared byte for byte


@dataclass
class EncodingCache:
    """The engine's between-jobs memory (one entry per kind)."""

    stats: CacheStats = field(default_factory=CacheStats)
    _prompt: _Entry | None = None
    _source: _Entry | None = None
    _work: _Entry | None = None

    def clear(self) -> None:
        self._prompt = self._source = self._work = None

    # ---- crop work ---------------------------------------------------------------------------

    def prepare_work(self, request: Request, native: int, prepare: Any) -> Any:
        """``prepare(request, native)`` (``engine.prepare_work``), reusing the crop plan, mask and
        feathered alpha of the last job when its mask, crop box and image size were the same."""
        started = time.perf_counter()
        key = (
            request.mode,
            None if request.image is None else request.image.shape,
            request.crop_box,
            native,
            request.mask_blur,
            request.width,
            request.height,
        )
        last = self._work
        reusable = (
            last is not None
            and last.key == key
            and request.mode is not Mode.TXT2IMG
            and _same(last.pixels, request.mask)
        )
        if reusable and last is not None:
            from inference import cropping

            old = last.value
            assert request.image is not None
            source = cropping.crop_for_generation(request.image[..., :3], old.plan)
            work = type(old)(old.plan, source, old.mask, old.alpha, old.out_width, old.out_height)
            self.stats.work_hits += 1
        else:
            work = prepare(request, native)
            self.stats.work_misses += 1
            mask = None if request.mask is None else request.mask.copy()
            self._work = _Entry(key, work, mask)
        self.stats.prepare_s = time.perf_counter() - started
        return work

    # ---- pipeline inputs -----------------------------------------------------------------------

    def pipeline_inputs(
        self, pipe: Any, request: Request, source: np.ndarray | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """``kwargs`` for ``pipe(**kwargs)`` with cached prompt embeddings and source latents put
        in where the pipeline takes them; returns new kwargs (the input is not changed)."""
        started, cpu = time.perf_counter(), time.thread_time()
        name = type(pipe).__name__
        kwargs = dict(kwargs)
        if request.batch_size == 1 and name in PROMPT_EMBED_PIPELINES:
            self._use_prompt_embeds(pipe, request, kwargs)
        if (
            request.batch_size == 1
            and name in SOURCE_LATENT_PIPELINES
            and source is not None
            and request.mode is Mode.IMG2IMG
        ):
            self._use_source_latents(pipe, source, kwargs)
        now = time.perf_counter()
        self.stats.encode_s = now - started
        self.stats.encode_cpu_s = time.thread_time() - cpu
        self.stats.encoded_at = now
        return kwargs

    def _use_prompt_embeds(self, pipe: Any, request: Request, kwargs: dict[str, Any]) -> None:
        import torch

        guided = float(request.guidance) > 1.0
        key = (
            id(pipe.text_encoder),
            str(pipe.device),
            request.prompt,
            request.negative_prompt,
            guided,
            tuple(request.loras),
        )
        if self._prompt is None or self._prompt.key != key:
            with torch.inference_mode():
                positive, negative = pipe.encode_prompt(
                    request.prompt,
                    pipe._execution_device,
                    1,
                    guided,
                    request.negative_prompt or None,
                )
            self._prompt = _Entry(key, (positive, negative))
            self.stats.prompt_misses += 1
        else:
            self.stats.prompt_hits += 1
        positive, negative = self._prompt.value
        kwargs.pop("prompt", None)
        kwargs.pop("negative_prompt", None)
        kwargs["prompt_embeds"] = positive
        if guided:
            kwargs["negative_prompt_embeds"] = negative

    def _use_source_latents(self, pipe: Any, source: np.ndarray, kwargs: dict[str, Any]) -> None:
        """Sample the cached latent distribution with the job's generator, as diffusers'
        ``prepare_latents`` would after encoding the same image (bit-identical results)."""
        import torch

        generators = kwargs.get("generator")
        generator = generators[0] if isinstance(generators, list) else generators
        vae = pipe.vae
        dtype = pipe.text_encoder.dtype if pipe.text_encoder is not None else pipe.unet.dtype
        key = (id(vae), str(pipe._execution_device), str(dtype), source.shape)
        if (
            self._source is None
            or self._source.key != key
            or not _same(self._source.pixels, source)
        ):
            from PIL import Image

            with torch.inference_mode():
                image = pipe.image_processor.preprocess(Image.fromarray(source))
                image = image.to(device=pipe._execution_device, dtype=dtype)
                distribution = vae.encode(image).latent_dist
            self._source = _Entry(key, distribution, source.copy())
            self.stats.source_misses += 1
        else:
            self.stats.source_hits += 1
        with torch.inference_mode():
            latents = self._source.value.sample(generator) * vae.config.scaling_factor
        kwargs["image"] = latents


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))
