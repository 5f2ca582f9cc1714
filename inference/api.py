"""The engine's public contract: requests, events, results and errors.

Everything here is plain data (numpy arrays and frozen dataclasses) so a request can be built by
``app/`` without torch, pickled, logged, or sent to another process. Nothing here imports torch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np

from inference.limits import DEFAULT_PIXEL_LIMIT
from inference.recipe import (  # noqa: F401 (part of the contract)
    ControlUnit,
    LoraUse,
    Recipe,
    ReferenceUnit,
)


class Mode(StrEnum):
    TXT2IMG = "txt2img"
    IMG2IMG = "img2img"
    INPAINT = "inpaint"


class Sampler(StrEnum):
    EULER_A = "Euler a"
    EULER = "Euler"
    DPMPP_2M_KARRAS = "DPM++ 2M Karras"
    DDIM = "DDIM"
    UNIPC = "UniPC"
    LCM = "LCM"

    @classmethod
    def parse(cls, text: str) -> Sampler:
        """Accept the display name or a loose spelling ("euler_a", "dpm++2m")."""
        wanted = _squash(text)
        for sampler in cls:
            if _squash(sampler.value) == wanted or _squash(sampler.name) == wanted:
                return sampler
        if wanted in {"dpmpp2m", "dpm2m", "dpmpppp2m", "dpmpp2mkarras", "dpm2mkarras"}:
            return cls.DPMPP_2M_KARRAS
        names = ", ".join(s.value for s in cls)
        raise InvalidRequestError(f"unknown sampler {text!r}; choose one of: {names}")


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum() or ch == "+").replace("++", "pp")


class ResizeMode(StrEnum):
    """How a control image whose size differs from the output is fitted (as A1111's ControlNet)."""

    JUST_RESIZE = "just resize"
    CROP_AND_RESIZE = "crop and resize"
    RESIZE_AND_FILL = "resize and fill"


@dataclass(frozen=True)
class Box:
    """Integer rectangle in document pixels."""

    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height


@dataclass(frozen=True, eq=False)
class ControlInput:
    """One ControlNet input. ``image`` is RGB uint8 (H, W, 3) covering the same area as the request
    image (the whole document, or ``Request.image`` when there is no document)."""

    image: np.ndarray
    model_path: str
    control_type: str = "scribble"  # openpose, scribble, lineart, canny, depth, ...
    weight: float = 1.0
    start: float = 0.0
    end: float = 1.0
    resize_mode: ResizeMode = ResizeMode.CROP_AND_RESIZE


@dataclass(frozen=True)
class UpscaleSpec:
    """Upscale the request image by ``scale`` (Lanczos, or the super-resolution model file
    ``upscaler_path``); with ``refine``, regenerate the result in overlapping ``tile`` px tiles
    (img2img at the request's strength, prompt, LoRAs and controls) blended over ``overlap`` px.
    The upscaled size may not exceed ``pixel_limit`` pixels. See inference/tiled_refine.py."""

    scale: float = 2.0
    upscaler_path: str | None = None  # None = Lanczos
    refine: bool = False
    tile: int = 512
    overlap: int = 64
    pixel_limit: int = DEFAULT_PIXEL_LIMIT


@dataclass(frozen=True, eq=False)
class ReferenceInput:
    """One reference image guiding the generation through an IP-Adapter (inference.ip_adapter).

    ``image`` is RGB(A) uint8 of any size (the CLIP image encoder sees all of it); ``model_path``
    an ``ip-adapter*.safetensors``; ``image_encoder_path`` the CLIP image encoder folder (None:
    the ``image_encoder/`` folder next to the adapter). ``style_only`` applies the weight in the
    style blocks only (InstantStyle), so a painting's style transfers without its content."""

    image: np.ndarray
    model_path: str
    image_encoder_path: str | None = None
    weight: float = 1.0
    style_only: bool = False


@dataclass(frozen=True, eq=False)
class Request:
    """An immutable, self-contained generation job.

    ``image`` is RGB(A) uint8 (H, W, 3|4) of the source area (the full document composite, or None
    for txt2img); ``mask`` is uint8 (H, W), 255 = regenerate. ``crop_box`` (document coordinates
    relative to ``image``) limits generation to that area ("only masked"); None = whole image.
    The result is always returned at the size of ``image`` (or width x height for txt2img).
    """

    mode: Mode
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 20
    guidance: float = 7.0
    strength: float = 0.75
    sampler: Sampler = Sampler.EULER_A
    batch_size: int = 1
    width: int = 512  # txt2img output size (ignored when image is given)
    height: int = 512
    model_path: str | None = None  # None = built-in classic (OpenCV) engine
    model_size: int | None = None  # native generation resolution; None = from the model (512/1024)
    image: np.ndarray | None = None
    mask: np.ndarray | None = None
    crop_box: Box | None = None
    mask_blur: int = 4
    padding: int = 32
    color_match: bool = False
    controls: tuple[ControlInput, ...] = ()
    loras: tuple[tuple[str, float], ...] = ()
    vae_path: str | None = None
    upscale: UpscaleSpec | None = None  # set: an upscale (and refine) job, see UpscaleSpec
    references: tuple[ReferenceInput, ...] = ()


@dataclass(frozen=True, eq=False)
class Variant:
    """One generated image, pasted back at full request size, plus where it changed."""

    image: np.ndarray  # RGB(A) uint8, same size as the request image (or width x height)
    seed: int
    box: Box  # area of ``image`` that may differ from the input (crop box, or the whole image)
    # bool (box.height, box.width): where inside ``box`` the image may differ from the input
    # (an inpaint's feathered mask); None = anywhere in the box
    region: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Result:
    variants: tuple[Variant, ...]
    recipe: Recipe  # what the engine did (see inference.recipe); the app completes it


# ---- events a worker emits (all carry the job id) -------------------------------------------


@dataclass(frozen=True)
class JobQueued:
    job_id: int


@dataclass(frozen=True)
class JobStarted:
    job_id: int


@dataclass(frozen=True, eq=False)
class JobPreview:
    job_id: int
    step: int  # 1-based
    total: int
    image: np.ndarray  # small RGB uint8 preview of the crop box area
    box: Box  # where the preview goes in request-image coordinates
    region: np.ndarray | None = None  # bool over ``box``: where the result may change (inpaint)


@dataclass(frozen=True, eq=False)
class JobFinished:
    job_id: int
    result: Result


@dataclass(frozen=True)
class JobCancelled:
    job_id: int


@dataclass(frozen=True)
class JobFailed:
    job_id: int
    error: EngineError


JobEvent = JobQueued | JobStarted | JobPreview | JobFinished | JobCancelled | JobFailed


# ---- cancel token, callbacks, engine protocol ----------------------------------------------


class CancelToken:
    """Thread-safe flag checked by the engine after every step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class PreviewCallback(Protocol):
    """Called after a step with a small RGB preview of ``box`` (request-image coordinates) and,
    for an inpaint, ``region``: bool over ``box``, where the result may change. An engine that
    passes no box previews the request's crop box (or the whole image)."""

    def __call__(
        self,
        step: int,
        total: int,
        image: np.ndarray,
        box: Box | None = None,
        region: np.ndarray | None = None,
    ) -> None: ...


class EngineProtocol(Protocol):
    def run(
        self,
        request: Request,
        on_preview: PreviewCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> Result: ...


# ---- errors: every failure the UI or CLI must explain is one of these -----------------------


class EngineError(Exception):
    """Base of all typed engine errors; ``str(err)`` is a sentence a user can act on."""


class InvalidRequestError(EngineError):
    """The request itself is wrong (mask size, unknown sampler, bad numbers)."""


class ModelNotFoundError(EngineError):
    pass


class ModelLoadError(EngineError):
    """A model file exists but cannot be loaded (corrupt, wrong kind, pickle refused...)."""


class UpscalerLoadError(ModelLoadError):
    """A super-resolution model file cannot be used (unknown architecture, not an upscaler...)."""


class OutOfMemoryError(EngineError):
    """The device ran out of memory; the message says what to lower."""


class Cancelled(EngineError):
    """Raised by ``Engine.run`` when the cancel token fires; nothing was produced."""


@dataclass(frozen=True)
class EngineSettings:
    """Machine settings the engine honours (issue "Models and settings" edits these)."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto | fp32 | fp16 | bf16
    memory_mode: str = "none"  # none | model_offload | sequential_offload
    vae_tiling: bool = False
    attention_slicing: bool = False
    preview_method: str = "linear"  # linear | taesd | off
    preview_every: int = 1
    taesd_path: str | None = None
    allow_pickle: bool = False
    extra: dict = field(default_factory=dict)
