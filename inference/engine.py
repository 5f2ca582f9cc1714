"""The diffusion engine: ``Engine.run(request, on_preview, cancel) -> Result``.

One call = one job: validate the request, load (or reuse) the model, crop the work area to the
model's size, run the diffusers pipeline with a preview + cancel check after every step, then paste
each variant back at full size through the feathered mask. Not thread-safe: call it from one
thread (``inference.worker`` does).
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference import cropping
from inference.api import (
    Box,
    Cancelled,
    CancelToken,
    EngineSettings,
    InvalidRequestError,
    Mode,
    PreviewCallback,
    Request,
    Result,
    Sampler,
    Variant,
)
from inference.classic import is_classic, run_classic
from inference.limits import MAX_MASK_BLUR
from inference.live_cache import EncodingCache
from inference.models import LoadedModel  # no torch at import: it loads inside load_model
from inference.recipe import ControlUnit, Recipe, ReferenceUnit, lora_uses

log = logging.getLogger(__name__)

MAX_SIDE = 8192
MAX_BATCH = 64


class _StopRequested(Exception):
    """Raised inside the step callback so diffusers never reaches the VAE decode."""


@dataclass(frozen=True)
class _Work:
    """Everything the pipeline call needs, prepared from a request (numpy/PIL only)."""

    plan: cropping.CropPlan
    source: np.ndarray | None  # RGB uint8 at generation size
    mask: np.ndarray | None  # uint8 at generation size (255 = regenerate)
    alpha: np.ndarray | None  # float32 full-size paste weight (inpaint only)
    out_width: int
    out_height: int

    @property
    def region(self) -> np.ndarray | None:
        """bool over the crop box: where the result may differ from the input (None: anywhere)."""
        if self.alpha is None:
            return None
        return cropping.cut(self.alpha, self.plan.box) > 0


def validate_request(request: Request) -> None:
    """Raise InvalidRequestError with a sentence the user can act on."""
    if not isinstance(request.mode, Mode):
        raise InvalidRequestError(f"unknown mode {request.mode!r}")
    if not isinstance(request.sampler, Sampler):
        raise InvalidRequestError(f"unknown sampler {request.sampler!r}")
    if not 1 <= request.steps <= 1000:
        raise InvalidRequestError(f"steps must be between 1 and 1000, not {request.steps}")
    if not 1 <= request.batch_size <= MAX_BATCH:
        raise InvalidRequestError(f"batch size must be between 1 and {MAX_BATCH}")
    if not 0 <= request.guidance <= 100:
        raise InvalidRequestError(
            f"guidance (CFG) must be between 0 and 100, not {request.guidance}"
        )
    if request.mode is not Mode.TXT2IMG and not 0 < request.strength <= 1:
        raise InvalidRequestError(f"strength must be in (0, 1], not {request.strength}")
    if request.mask_blur < 0 or request.padding < 0:
        raise InvalidRequestError("mask blur and padding cannot be negative")
    if request.mask_blur > MAX_MASK_BLUR:
        raise InvalidRequestError(f"mask blur must be at most {MAX_MASK_BLUR} pixels")
    if request.model_size is not None and not 64 <= request.model_size <= 4096:
        raise InvalidRequestError("model size must be between 64 and 4096 pixels")
    if request.mode is Mode.TXT2IMG:
        for side in (request.width, request.height):
            if not 64 <= side <= MAX_SIDE:
                raise InvalidRequestError(f"width and height must be 64..{MAX_SIDE} pixels")
    else:
        _check_image(request.image, "image")
    if request.mode is Mode.INPAINT:
        if request.mask is None:
            raise InvalidRequestError("inpainting needs a mask")
        mask = request.mask
        if mask.dtype != np.uint8 or mask.ndim != 2:
            raise InvalidRequestError("the mask must be a single-channel 8-bit image")
        assert request.image is not None
        if mask.shape != request.image.shape[:2]:
            raise InvalidRequestError(
                f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                f"{request.image.shape[1]}x{request.image.shape[0]}"
            )
        if not (mask > 127).any():
            raise InvalidRequestError("the mask is empty: paint over the area to regenerate")
    for control in request.controls:
        _check_image(control.image, "control image")
        if not 0 <= control.start < control.end <= 1:
            raise InvalidRequestError("a control's start must be below its end, both within 0..1")
        if not 0 <= control.weight <= 5:
            raise InvalidRequestError(f"control weight must be 0..5, not {control.weight}")
    if request.controls and is_classic(request.model_path):
        raise InvalidRequestError("ControlNet needs a diffusion model, not the classic engine")
    for reference in request.references:
        _check_image(reference.image, "reference image")
        if not 0 <= reference.weight <= 5:
            raise InvalidRequestError(f"reference weight must be 0..5, not {reference.weight}")
    if request.references and is_classic(request.model_path):
        raise InvalidRequestError("reference images need a diffusion model, not the classic engine")


def _check_image(image: np.ndarray | None, what: str) -> None:
    if image is None:
        raise InvalidRequestError(f"this mode needs an {what}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InvalidRequestError(f"the {what} must be 8-bit RGB or RGBA")
    if min(image.shape[:2]) < 8 or max(image.shape[:2]) > MAX_SIDE:
        raise InvalidRequestError(f"the {what} must be 8..{MAX_SIDE} pixels on each side")


def _round8(value: int) -> int:
    return max(cropping.MIN_SIDE, value // cropping.MULTIPLE * cropping.MULTIPLE)


def prepare_work(request: Request, native: int) -> _Work:
    """Crop/resize the request's pixels to what the pipeline will see."""
    if request.mode is Mode.TXT2IMG:
        box = Box(0, 0, request.width, request.height)
        plan = cropping.CropPlan(box, _round8(request.width), _round8(request.height))
        return _Work(plan, None, None, None, request.width, request.height)
    image = request.image
    assert image is not None
    height, width = image.shape[:2]
    plan = cropping.plan_crop(width, height, request.crop_box, native)
    source = _generation_source(image, plan, request.seed)
    mask = alpha = None
    if request.mode is Mode.INPAINT:
        assert request.mask is not None
        small = cropping.crop_for_generation(request.mask, plan)
        mask = np.where(small > 32, 255, 0).astype(np.uint8)  # thin strokes survive shrinking
        alpha = cropping.feathered_alpha(request.mask, request.mask_blur)
    return _Work(plan, source, mask, alpha, width, height)


def _generation_source(image: np.ndarray, plan: cropping.CropPlan, seed: int) -> np.ndarray:
    """The RGB the model starts from, at generation size. Transparent pixels of an RGBA image
    (outpainting past the canvas) are pre-filled first (``inference.outpaint``); the paste still
    uses the request's own pixels, so nothing outside the mask changes."""
    cut = cropping.cut(image, plan.box)
    if image.shape[2] != 4 or bool((cut[..., 3] == 255).all()):
        return cropping.crop_for_generation(image[..., :3], plan)
    from inference.outpaint import prefill

    filled = prefill(np.ascontiguousarray(cut), seed)
    return cropping.resize(filled, plan.gen_width, plan.gen_height)


def steps_for_strength(steps: int, strength: float) -> int:
    """Scheduler steps for an img2img/inpaint at ``strength``: diffusers denoises only
    ``int(steps * strength)`` of them, and none at all (an empty batch that crashes the VAE) when
    that is 0, so at least one step is kept (3 steps at strength 0.3 run as 4, denoising 1)."""
    needed = max(steps, math.ceil(1 / strength))
    while int(needed * strength) < 1:  # float rounding
        needed += 1
    return needed


class Engine:
    """Runs requests on local diffusers models; the classic engine when ``model_path`` is None.

    ``max_models`` loaded models stay cached (each with its txt2img/img2img/inpaint pipelines
    sharing one set of weights); loading another evicts the oldest.
    """

    def __init__(
        self,
        settings: EngineSettings | None = None,
        max_models: int = 1,
        reserve_ui_core: bool = False,
    ) -> None:
        self.settings = settings or EngineSettings()
        # an app with a UI asks for a core to be left free; torch is set up on the worker thread,
        # at the first model load, never where the UI thread would wait for the import
        self._reserve_ui_core = reserve_ui_core
        self.max_models = max(1, max_models)
        self._models: OrderedDict[tuple[str, str], LoadedModel] = OrderedDict()
        self._controlnets: OrderedDict[str, Any] = OrderedDict()
        self._previewers: dict[tuple, Any] = {}
        self._upscalers: OrderedDict[str, Any] = OrderedDict()  # super-resolution models
        self._lock = threading.RLock()
        self.cache = EncodingCache()  # prompt embeddings, encoded source, crop work between jobs

    # ---- models ------------------------------------------------------------------------------

    def load(self, model_path: str, vae_path: str | None = None) -> LoadedModel:
        """Load (or fetch from the cache) a model with its per-mode pipelines."""
        from inference import models

        path = Path(model_path).expanduser().resolve()
        stamp = path.stat().st_mtime_ns if path.exists() else 0  # a replaced file reloads
        key = (f"{path}|{stamp}", vae_path or "")
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            while len(self._models) >= self.max_models:
                _, old = self._models.popitem(last=False)
                old.close()
                self.cache.clear()
                self._controlnets.clear()
                self._previewers.clear()
                from inference.device import free_memory

                free_memory()
            from inference.device import oom_guard

            with oom_guard():
                loaded = models.load_model(model_path, self.settings, vae_path)
            self._models[key] = loaded
            return loaded

    def close(self) -> None:
        """Drop every cached model and free device memory."""
        with self._lock:
            for loaded in self._models.values():
                loaded.close()
            self._models.clear()
            self.cache.clear()
            self._controlnets.clear()
            self._previewers.clear()
            self._upscalers.clear()
        from inference.device import free_memory

        free_memory()

    # ---- running -----------------------------------------------------------------------------

    def run(
        self,
        request: Request,
        on_preview: PreviewCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> Result:
        validate_request(request)
        self._check_cancel(cancel)
        if request.upscale is not None:
            return self._run_upscale(request, on_preview, cancel)
        if is_classic(request.model_path):
            return run_classic(request, on_preview, cancel)
        assert request.model_path is not None
        from inference.device import gc_paused, reserve_ui_core
        from inference.models import refuse_pickles  # before the base model loads

        refuse_pickles(
            [c.model_path for c in request.controls]
            + [p for p, _ in request.loras]
            + [r.model_path for r in request.references],
            self.settings.allow_pickle,
        )

        with gc_paused():  # imports and loading: no collector pauses that stall the UI thread
            if self._reserve_ui_core:
                self._reserve_ui_core = False
                reserve_ui_core()
            loaded = self.load(request.model_path, request.vae_path)
            self._check_cancel(cancel)
            native = request.model_size or loaded.native_size
            work = self.cache.prepare_work(request, native, prepare_work)
            from inference import adapters  # T2I-Adapters leave the ControlNets to the code below

            nets, adapter_job = adapters.prepare(
                request, loaded, work.plan, self._controlnets, self.settings
            )
            controlnet, control_images = self._controls(nets, loaded, work)
            pipe = loaded.pipeline(request.mode, controlnet, self._control_key(nets))
            from inference.loras import apply_loras

            apply_loras(pipe, request.loras, allow_pickle=self.settings.allow_pickle)
            from inference import ip_adapter  # reference images (loaded, kept, or unloaded)

            reference_job = ip_adapter.prepare(request, loaded, self._controlnets, self.settings)
        images = self._generate(
            nets, loaded, pipe, work, control_images, on_preview, cancel, adapter_job, reference_job
        )
        variants = tuple(
            self._variant(request, work, images[i], request.seed + i) for i in range(len(images))
        )
        return Result(variants=variants, recipe=self._recipe(request, loaded, work))

    def _run_upscale(
        self, request: Request, on_preview: PreviewCallback | None, cancel: CancelToken | None
    ) -> Result:
        """Upscale (and refine tile by tile, each tile through ``run``): inference/tiled_refine."""
        from inference.tiled_refine import run_upscale, validate_upscale

        validate_upscale(request)
        assert request.upscale is not None
        path = request.upscale.upscaler_path
        upscaler = self._upscaler(path) if path else None
        return run_upscale(self, request, upscaler, on_preview, cancel)

    def _upscaler(self, path: str) -> Any:
        """A super-resolution model, loaded once (the newest two stay cached)."""
        from inference.device import choose_device, gc_paused
        from inference.upscale import load_upscaler

        file = Path(path).expanduser()
        key = f"{file}|{file.stat().st_mtime_ns if file.exists() else 0}"
        with self._lock:
            if key not in self._upscalers:
                with gc_paused():
                    loaded = load_upscaler(path, self.settings.allow_pickle)
                    loaded.descriptor.to(choose_device(self.settings))
                while len(self._upscalers) >= 2:
                    self._upscalers.popitem(last=False)
                self._upscalers[key] = loaded
            self._upscalers.move_to_end(key)
            return self._upscalers[key]

    @staticmethod
    def _check_cancel(cancel: CancelToken | None) -> None:
        if cancel is not None and cancel.cancelled:
            raise Cancelled("cancelled")

    def _previewer(self, loaded: LoadedModel) -> Any:
        from inference.previews import make_previewer

        key = (loaded.info.family, str(loaded.device), self.settings.preview_method)
        if key not in self._previewers:
            self._previewers[key] = make_previewer(
                self.settings.preview_method,
                loaded.info.family,
                loaded.device,
                loaded.dtype,
                self.settings.taesd_path,
            )
        return self._previewers[key]

    def _pipeline_kwargs(
        self, request: Request, loaded: LoadedModel, work: _Work
    ) -> dict[str, Any]:
        from PIL import Image

        plan = work.plan
        kwargs: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or None,
            "num_inference_steps": request.steps,
            "guidance_scale": request.guidance,
            "num_images_per_prompt": request.batch_size,
            "output_type": "np",
            "width": plan.gen_width,
            "height": plan.gen_height,
        }
        mode = request.mode
        if loaded.info.inpaint:  # dedicated inpainting UNet: every mode goes through inpaint
            if mode is Mode.TXT2IMG:
                source = np.full((plan.gen_height, plan.gen_width, 3), 127, np.uint8)
                strength = 1.0
            else:
                assert work.source is not None
                source, strength = work.source, request.strength
            mask = work.mask if mode is Mode.INPAINT else np.full(source.shape[:2], 255, np.uint8)
            assert mask is not None  # an inpaint request always has a mask
            kwargs.update(
                image=Image.fromarray(source), mask_image=Image.fromarray(mask), strength=strength
            )
        elif mode is Mode.IMG2IMG:
            assert work.source is not None
            kwargs.update(image=Image.fromarray(work.source), strength=request.strength)
            del kwargs["width"], kwargs["height"]
        elif mode is Mode.INPAINT:
            assert work.source is not None and work.mask is not None
            kwargs.update(
                image=Image.fromarray(work.source),
                mask_image=Image.fromarray(work.mask),
                strength=request.strength,
            )
        if "strength" in kwargs:
            kwargs["num_inference_steps"] = steps_for_strength(request.steps, kwargs["strength"])
        return kwargs

    def _generate(
        self,
        request: Request,
        loaded: LoadedModel,
        pipe: Any,
        work: _Work,
        control_images: list | None,
        on_preview: PreviewCallback | None,
        cancel: CancelToken | None,
        adapter_job: Any = None,
        reference_job: Any = None,
    ) -> np.ndarray:
        import torch

        from inference.adapters import attached
        from inference.device import oom_guard
        from inference.ip_adapter import reference_kwargs
        from inference.schedulers import make_scheduler

        pipe.scheduler = make_scheduler(request.sampler, loaded.scheduler_config)
        kwargs = self._pipeline_kwargs(request, loaded, work)
        if control_images is not None:
            kwargs.update(self._control_kwargs(request, pipe, control_images))
        kwargs["generator"] = [
            torch.Generator("cpu").manual_seed(request.seed + i) for i in range(request.batch_size)
        ]
        previewer = self._previewer(loaded) if on_preview is not None else None
        every = max(1, self.settings.preview_every)
        box, region = work.plan.box, work.region

        def on_step_end(pipeline: Any, index: int, timestep: Any, tensors: dict) -> dict:
            if cancel is not None and cancel.cancelled:
                raise _StopRequested
            step, total = index + 1, int(getattr(pipeline, "num_timesteps", 0) or request.steps)
            if (
                previewer is not None
                and on_preview is not None
                and (step % every == 0 or step == total)
            ):
                on_preview(step, total, previewer(tensors["latents"]), box, region)
            return tensors

        kwargs = self.cache.pipeline_inputs(pipe, request, work.source, kwargs)
        kwargs["callback_on_step_end"] = on_step_end
        kwargs["callback_on_step_end_tensor_inputs"] = ["latents"]
        try:
            with oom_guard(), torch.inference_mode(), attached(pipe, adapter_job, kwargs):
                reference_kwargs(pipe, reference_job, kwargs)
                output = pipe(**kwargs)
        except _StopRequested:
            log.info("job cancelled during sampling")
            raise Cancelled("cancelled") from None
        self._check_cancel(cancel)
        images = np.asarray(output.images)
        if not np.isfinite(images).all():
            from inference.api import EngineError

            raise EngineError(
                "the model produced an invalid image (NaN); try precision fp32 or bf16 in settings"
            )
        return (images * 255).round().clip(0, 255).astype(np.uint8)

    def _variant(self, request: Request, work: _Work, image: np.ndarray, seed: int) -> Variant:
        plan = work.plan
        if request.mode is Mode.TXT2IMG:
            full = cropping.resize(image, work.out_width, work.out_height)
            return Variant(image=np.ascontiguousarray(full), seed=seed, box=plan.box)
        assert request.image is not None
        region = cropping.resize(image, plan.box.width, plan.box.height)
        if request.color_match and work.alpha is not None:
            region = cropping.match_colors(
                region, cropping.cut(request.image, plan.box), cropping.cut(work.alpha, plan.box)
            )
        pasted = cropping.paste(request.image, region, plan.box, work.alpha)
        return Variant(image=pasted, seed=seed, box=plan.box, region=work.region)

    def _recipe(self, request: Request, loaded: LoadedModel, work: _Work) -> Recipe:
        box = work.plan.box
        crop = None if request.mode is Mode.TXT2IMG else (box.x, box.y, box.width, box.height)
        inpaint = request.mode is Mode.INPAINT
        return Recipe(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            steps=request.steps,
            sampler=request.sampler.value,
            guidance=float(request.guidance),
            seed=request.seed,
            size=(work.plan.gen_width, work.plan.gen_height),
            model=loaded.info.name,
            model_hash=loaded.hash,
            vae=Path(request.vae_path).name if request.vae_path else None,
            strength=None if request.mode is Mode.TXT2IMG else float(request.strength),
            mode=request.mode.value,
            mask_blur=request.mask_blur if inpaint else None,
            padding=request.padding if inpaint else None,
            loras=lora_uses(request.loras),
            controls=tuple(ControlUnit.of_input(c) for c in request.controls),
            references=tuple(ReferenceUnit.of_input(r) for r in request.references),
            crop_box=crop,
            model_path=str(request.model_path) if request.model_path else None,
            vae_path=str(request.vae_path) if request.vae_path else None,
        )

    # ---- ControlNet ----------------------------------------------------------------------------

    @staticmethod
    def _control_key(request: Request) -> str:
        return "|".join(c.model_path for c in request.controls)

    def _controls(
        self, request: Request, loaded: LoadedModel, work: _Work
    ) -> tuple[Any, list | None]:
        if not request.controls:
            return None, None
        from inference.controlnets import fit_control_image, load_controlnet

        nets = []
        for control in request.controls:
            path = str(Path(control.model_path).expanduser())
            key = f"{loaded.info.path}|{path}"
            if key not in self._controlnets:
                self._controlnets[key] = load_controlnet(path, loaded, self.settings)
            nets.append(self._controlnets[key])
        images = [fit_control_image(c, request, work.plan) for c in request.controls]
        if len(nets) == 1:
            return nets[0], images
        from diffusers.models import MultiControlNetModel

        return MultiControlNetModel(nets), images

    @staticmethod
    def _control_kwargs(request: Request, pipe: Any, images: list) -> dict[str, Any]:
        from PIL import Image

        pil = [Image.fromarray(image) for image in images]
        single = len(pil) == 1
        scales = [c.weight for c in request.controls]
        starts = [c.start for c in request.controls]
        ends = [c.end for c in request.controls]
        kwargs: dict[str, Any] = {
            "controlnet_conditioning_scale": scales[0] if single else scales,
            "control_guidance_start": starts[0] if single else starts,
            "control_guidance_end": ends[0] if single else ends,
        }
        key = "control_image" if "control_image" in _call_parameters(pipe) else "image"
        kwargs[key] = pil[0] if single else pil
        return kwargs


def _call_parameters(pipe: Any) -> set[str]:
    import inspect

    return set(inspect.signature(type(pipe).__call__).parameters)
