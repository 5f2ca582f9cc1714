"""The remote engine's wire format: JSON requests and newline-delimited JSON events.

Images and masks travel as base64 PNG (lossless, so a remote result equals a local one byte for
byte); nothing is ever pickled over the wire. Everything the server reads is validated into typed
values (:func:`request_from_wire`) with the same limits as the local engine before it reaches a
replica. No Ray and no Qt here: the client (:mod:`inference.remote`) uses this module too.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from inference.api import (
    Box,
    ControlInput,
    EngineError,
    InvalidRequestError,
    Mode,
    ModelLoadError,
    ModelNotFoundError,
    OutOfMemoryError,
    Request,
    ResizeMode,
    Result,
    Sampler,
    Variant,
)
from inference.engine import MAX_BATCH, MAX_SIDE
from inference.limits import DEFAULT_PIXEL_LIMIT, MAX_MASK_BLUR
from inference.recipe import Recipe

API_VERSION = 1
REMOTE_PREFIX = "remote:"  # Request.model_path of a model that lives on the server
MAX_PROMPT_CHARS = 20_000
MAX_CONTROLS = 8
MAX_LORAS = 32


class WireError(InvalidRequestError):
    """Malformed or out-of-limit data on the wire; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """What one request may ask of a server (the local engine's limits by default)."""

    max_pixels: int = DEFAULT_PIXEL_LIMIT
    max_batch: int = MAX_BATCH
    max_steps: int = 1000
    max_body_bytes: int = 512 * 1024 * 1024

    def to_wire(self) -> dict[str, int]:
        return {
            "max_pixels": self.max_pixels,
            "max_batch": self.max_batch,
            "max_steps": self.max_steps,
            "max_body_bytes": self.max_body_bytes,
        }


@dataclass(frozen=True)
class ModelRef:
    """A model as a client names it: its name on the server and, when known, its A1111 hash."""

    name: str
    hash: str | None = None

    def to_wire(self) -> dict[str, str | None]:
        return {"name": self.name, "hash": self.hash}

    def describe(self) -> str:
        return f"{self.name!r}" + (f" (hash {self.hash})" if self.hash else "")


def remote_model_path(name: str, hash_: str | None = None) -> str:
    """The ``Request.model_path`` that names a server's model: ``remote:NAME[#HASH]``."""
    return f"{REMOTE_PREFIX}{name}" + (f"#{hash_}" if hash_ else "")


def model_ref(path: str) -> ModelRef:
    """The reference a client sends for ``path``: a ``remote:NAME#HASH`` path as it is, a local
    path by its file or folder name (the server must hold a model of that name)."""
    from pathlib import PurePath

    if path.startswith(REMOTE_PREFIX):
        name, _, hash_ = path[len(REMOTE_PREFIX) :].partition("#")
        return ModelRef(name, hash_ or None)
    return ModelRef(PurePath(path.rstrip("/\\")).name or path)


# ---- images -----------------------------------------------------------------------------------


def encode_png(pixels: np.ndarray) -> str:
    """Base64 PNG of a uint8 (H, W), (H, W, 3) or (H, W, 4) array (bool arrays: 0/255)."""
    from PIL import Image

    if pixels.dtype == np.bool_:
        pixels = pixels.astype(np.uint8) * 255
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_png(
    text: Any, what: str, channels: tuple[int, ...], max_pixels: int = DEFAULT_PIXEL_LIMIT
) -> np.ndarray:
    """A PNG from base64 as uint8; ``channels`` the allowed channel counts (1 = (H, W)).

    The size is checked from the header, before any pixel is decoded."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(text, str):
        raise WireError(f"{what} must be a base64 PNG string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise WireError(f"{what} is not valid base64") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise WireError(
                        f"{what} is {width}x{height} ({width * height / 1e6:.2f} MP), above this "
                        f"server's {max_pixels / 1e6:.2f} MP limit",
                        status=413,
                    )
                if max(width, height) > MAX_SIDE:
                    raise WireError(f"{what} must be at most {MAX_SIDE} pixels on each side", 413)
                image.load()
                pixels = np.asarray(_normalised(image, channels, what))
    except WireError:
        raise
    except UnidentifiedImageError:
        raise WireError(f"{what} is not a readable PNG (not a PNG image)") from None
    except Image.DecompressionBombError:
        raise WireError(
            f"{what} is above this server's {max_pixels / 1e6:.2f} MP limit", status=413
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise WireError(f"{what} is not a readable PNG ({error})") from None
    return np.ascontiguousarray(pixels)


def _normalised(image: Any, channels: tuple[int, ...], what: str) -> Any:
    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    if image.mode in (modes[c] for c in channels):
        return image
    if 1 in channels and image.mode in ("1", "P", "LA"):
        return image.convert("L")
    if 3 in channels and image.mode in ("P", "L", "1"):
        return image.convert("RGB")
    raise WireError(f"{what} has colour mode {image.mode}; send 8-bit RGB or RGBA")


def decode_region(text: Any, box: Box | None) -> np.ndarray | None:
    """A bool region (PNG, 255 = inside) of ``box``'s size, or None."""
    if text is None:
        return None
    region = decode_png(text, "region", (1,)) > 127
    if box is not None and region.shape != (box.height, box.width):
        raise WireError("a region does not match its box")
    return region


# ---- plain values -----------------------------------------------------------------------------


def _int(data: Mapping[str, Any], name: str, low: int, high: int, default: int) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError(f"{name} must be a whole number")
    if not low <= value <= high:
        raise WireError(f"{name} must be between {low} and {high}, not {value}", 413)
    return value


def _float(data: Mapping[str, Any], name: str, default: float) -> float:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WireError(f"{name} must be a finite number")
    return float(value)


def _text(data: Mapping[str, Any], name: str, limit: int = MAX_PROMPT_CHARS) -> str:
    value = data.get(name, "")
    if not isinstance(value, str):
        raise WireError(f"{name} must be text")
    if len(value) > limit:
        raise WireError(f"{name} is longer than {limit} characters", 413)
    return value


def _box(value: Any, name: str) -> Box | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 4
        or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
    ):
        raise WireError(f"{name} must be [x, y, width, height] in whole pixels")
    x, y, width, height = value
    if x < 0 or y < 0 or width <= 0 or height <= 0:
        raise WireError(f"{name} must have a positive size inside the image")
    return Box(x, y, width, height)


def _ref(value: Any, what: str) -> ModelRef:
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise WireError(f"{what} must be {{'name': ..., 'hash': ...}}")
    hash_ = value.get("hash")
    if hash_ is not None and not isinstance(hash_, str):
        raise WireError(f"{what}'s hash must be text")
    name = value["name"]
    if not name or len(name) > 512:
        raise WireError(f"{what} needs a name (at most 512 characters)")
    return ModelRef(name, hash_ or None)


def _box_list(box: Box | None) -> list[int] | None:
    return None if box is None else [box.x, box.y, box.width, box.height]


# ---- requests ---------------------------------------------------------------------------------

REQUEST_FIELDS = frozenset(
    {
        "mode",
        "prompt",
        "negative_prompt",
        "seed",
        "steps",
        "guidance",
        "strength",
        "sampler",
        "batch_size",
        "width",
        "height",
        "model",
        "model_size",
        "image",
        "mask",
        "crop_box",
        "mask_blur",
        "padding",
        "color_match",
        "controls",
        "loras",
        "vae",
    }
)
CONTROL_FIELDS = frozenset(
    {"image", "model", "control_type", "weight", "start", "end", "resize_mode"}
)


def request_to_wire(request: Request) -> dict[str, Any]:
    """The JSON body for ``POST /v1/jobs`` (model paths become name + hash references).

    Raises :class:`InvalidRequestError` for what the wire does not carry yet (reference images,
    upscale jobs): a remote job must never run silently without part of what was asked."""
    if request.references:
        raise InvalidRequestError(
            "reference images (IP-Adapter) are not supported on a remote server yet: "
            "switch Settings › Engine to Local, or hide the reference layers"
        )
    if request.upscale is not None:
        raise InvalidRequestError(
            "upscaling is not supported on a remote server yet: "
            "switch Settings › Engine to Local to upscale"
        )
    return {
        "mode": request.mode.value,
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "seed": int(request.seed),
        "steps": int(request.steps),
        "guidance": float(request.guidance),
        "strength": float(request.strength),
        "sampler": request.sampler.value,
        "batch_size": int(request.batch_size),
        "width": int(request.width),
        "height": int(request.height),
        "model": model_ref(request.model_path).to_wire() if request.model_path else None,
        "model_size": request.model_size,
        "image": encode_png(request.image) if request.image is not None else None,
        "mask": encode_png(request.mask) if request.mask is not None else None,
        "crop_box": _box_list(request.crop_box),
        "mask_blur": int(request.mask_blur),
        "padding": int(request.padding),
        "color_match": bool(request.color_match),
        "controls": [
            {
                "image": encode_png(control.image),
                "model": model_ref(control.model_path).to_wire(),
                "control_type": control.control_type,
                "weight": float(control.weight),
                "start": float(control.start),
                "end": float(control.end),
                "resize_mode": control.resize_mode.value,
            }
            for control in request.controls
        ],
        "loras": [
            {**model_ref(path).to_wire(), "weight": float(weight)} for path, weight in request.loras
        ],
        "vae": model_ref(request.vae_path).to_wire() if request.vae_path else None,
    }


Resolver = Callable[[ModelRef, str], str]  # (reference, kind) -> the server's path


def request_from_wire(data: Any, resolve: Resolver, limits: Limits) -> Request:
    """A validated ``Request`` from a client's JSON; raises :class:`WireError` (one sentence)
    or :class:`ModelNotFoundError` for a model this server lacks."""
    from inference.engine import validate_request

    if not isinstance(data, Mapping):
        raise WireError("the request must be a JSON object")
    unknown = sorted(set(data) - REQUEST_FIELDS)
    if unknown:
        raise WireError(f"unknown request field(s): {', '.join(unknown)}")
    try:
        mode = Mode(str(data.get("mode")))
    except ValueError:
        raise WireError(f"mode must be one of: {', '.join(m.value for m in Mode)}") from None
    sampler_text = data.get("sampler", Sampler.EULER_A.value)
    if not isinstance(sampler_text, str):
        raise WireError("sampler must be text")
    px = limits.max_pixels
    image = data.get("image")
    mask = data.get("mask")
    request = Request(
        mode=mode,
        prompt=_text(data, "prompt"),
        negative_prompt=_text(data, "negative_prompt"),
        seed=_int(data, "seed", 0, 2**63 - 1 - MAX_BATCH, 0),
        steps=_int(data, "steps", 1, limits.max_steps, 20),
        guidance=_float(data, "guidance", 7.0),
        strength=_float(data, "strength", 0.75),
        sampler=Sampler.parse(sampler_text),
        batch_size=_int(data, "batch_size", 1, limits.max_batch, 1),
        width=_int(data, "width", 64, MAX_SIDE, 512),
        height=_int(data, "height", 64, MAX_SIDE, 512),
        model_path=_model_path(data.get("model"), resolve, "checkpoint"),
        model_size=None
        if data.get("model_size") is None
        else _int(data, "model_size", 64, 4096, 512),
        image=None if image is None else decode_png(image, "the image", (3, 4), px),
        mask=None if mask is None else decode_png(mask, "the mask", (1,), px),
        crop_box=_box(data.get("crop_box"), "crop_box"),
        mask_blur=_int(data, "mask_blur", 0, MAX_MASK_BLUR, 4),
        padding=_int(data, "padding", 0, MAX_SIDE, 32),
        color_match=_bool(data, "color_match"),
        controls=_controls(data.get("controls", []), resolve, px),
        loras=_loras(data.get("loras", []), resolve),
        vae_path=_model_path(data.get("vae"), resolve, "vae"),
    )
    if mode is Mode.TXT2IMG and request.width * request.height * request.batch_size > px * 4:
        raise WireError("the requested images are above this server's pixel limit", 413)
    if mode is Mode.TXT2IMG and request.width * request.height > px:
        raise WireError(
            f"{request.width}x{request.height} is above this server's {px / 1e6:.2f} MP limit",
            413,
        )
    if request.crop_box is not None and request.image is not None:
        box, (height, width) = request.crop_box, request.image.shape[:2]
        if box.right > width or box.bottom > height:
            raise WireError("crop_box reaches outside the image")
    validate_request(request)
    return request


def _bool(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise WireError(f"{name} must be true or false")
    return value


def _model_path(value: Any, resolve: Resolver, kind: str) -> str | None:
    if value is None:
        return None
    return resolve(_ref(value, kind), kind)


def _controls(value: Any, resolve: Resolver, max_pixels: int) -> tuple[ControlInput, ...]:
    if not isinstance(value, list):
        raise WireError("controls must be a list")
    if len(value) > MAX_CONTROLS:
        raise WireError(f"at most {MAX_CONTROLS} controls", 413)
    controls = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or set(item) - CONTROL_FIELDS:
            raise WireError(f"control {index + 1} has unknown or missing fields")
        try:
            resize = ResizeMode(item.get("resize_mode", ResizeMode.CROP_AND_RESIZE.value))
        except ValueError:
            raise WireError(f"control {index + 1} has an unknown resize_mode") from None
        image = decode_png(item.get("image"), f"control image {index + 1}", (3,), max_pixels)
        controls.append(
            ControlInput(
                image=image,
                model_path=resolve(_ref(item.get("model"), "controlnet"), "controlnet"),
                control_type=_text(item, "control_type", 64) or "scribble",
                weight=_float(item, "weight", 1.0),
                start=_float(item, "start", 0.0),
                end=_float(item, "end", 1.0),
                resize_mode=resize,
            )
        )
    return tuple(controls)


def _loras(value: Any, resolve: Resolver) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, list):
        raise WireError("loras must be a list")
    if len(value) > MAX_LORAS:
        raise WireError(f"at most {MAX_LORAS} LoRAs", 413)
    loras = []
    for item in value:
        if not isinstance(item, Mapping):
            raise WireError("each LoRA must be {'name', 'hash', 'weight'}")
        ref = _ref({k: v for k, v in item.items() if k != "weight"}, "lora")
        loras.append((resolve(ref, "lora"), _float(item, "weight", 1.0)))
    return tuple(loras)


# ---- events (server -> client, one JSON object per line) ---------------------------------------


def line(event: Mapping[str, Any]) -> bytes:
    return (json.dumps(event, separators=(",", ":")) + "\n").encode()


def preview_event(
    step: int, total: int, image: np.ndarray, box: Box | None, region: np.ndarray | None
) -> dict[str, Any]:
    return {
        "type": "preview",
        "step": int(step),
        "total": int(total),
        "image": encode_png(image),
        "box": _box_list(box),
        "region": None if region is None else encode_png(region),
        "at": time.time(),  # when the replica made it (preview latency in the benchmark)
    }


def result_event(result: Result) -> dict[str, Any]:
    """Only each variant's box travels: outside it a variant equals the request image."""
    variants = []
    for variant in result.variants:
        box = variant.box
        crop = variant.image[box.y : box.bottom, box.x : box.right]
        variants.append(
            {
                "image": encode_png(crop),
                "seed": int(variant.seed),
                "box": _box_list(box),
                "region": None if variant.region is None else encode_png(variant.region),
                "size": [int(variant.image.shape[1]), int(variant.image.shape[0])],
            }
        )
    return {"type": "result", "variants": variants, "recipe": result.recipe.to_json()}


def result_from_event(event: Mapping[str, Any], request: Request) -> Result:
    """The ``Result`` a result event describes, each variant pasted over the request image."""
    variants = []
    for item in event.get("variants", []):
        box = _box(item.get("box"), "box")
        assert box is not None
        crop = decode_png(item["image"], "a result", (3, 4))
        if request.image is not None:
            full = request.image.copy()
            if crop.shape[2] != full.shape[2] or box.right > full.shape[1]:
                raise WireError("the server sent a result that does not fit the request image")
            full[box.y : box.bottom, box.x : box.right] = crop
        else:
            full = crop
        variants.append(
            Variant(
                image=full,
                seed=int(item["seed"]),
                box=box,
                region=decode_region(item.get("region"), box),
            )
        )
    return Result(variants=tuple(variants), recipe=Recipe.from_json(event.get("recipe") or {}))


# error kinds on the wire <-> the engine's typed errors
ERROR_KINDS: dict[str, type[EngineError]] = {
    "invalid_request": InvalidRequestError,
    "model_not_found": ModelNotFoundError,
    "model_load": ModelLoadError,
    "out_of_memory": OutOfMemoryError,
    "engine": EngineError,
}


def error_event(error: BaseException) -> dict[str, Any]:
    kind = "engine"
    for name, cls in ERROR_KINDS.items():
        if cls is not EngineError and isinstance(error, cls):
            kind = name
            break
    message = str(error).strip() if isinstance(error, EngineError) else f"unexpected: {error}"
    return {"type": "error", "kind": kind, "message": message or type(error).__name__}


def error_from_event(event: Mapping[str, Any]) -> EngineError:
    cls = ERROR_KINDS.get(str(event.get("kind")), EngineError)
    return cls(str(event.get("message") or "the server reported an error"))
