"""The recipe of a generated image: one frozen value, one vocabulary.

The engine makes a :class:`Recipe` for every run (what it actually did: prompt, steps, sampler,
guidance, generation size, model and hash, LoRAs, ControlNet units...); the app completes it with
what only the document knows (the crop box in document pixels, the inpaint mask, the control
images over the result, the workflow, file paths) and stores it on the result layer as
:meth:`Recipe.to_json`. Every reader goes back through :meth:`Recipe.from_json`, which also reads
the dicts older Impasto versions wrote (app-shaped with ``guidance``/``engine_cfg``/
``engine_size``, or engine-shaped with ``cfg``/``size``).

The A1111 ``parameters`` text lives in :mod:`inference.parameters` (one formatter, one parser).
Fields marked *attachment* never go into that text (images and local paths); everything else
does, so ``parse_parameters(format_parameters(r)) == r.portable()``.

Names: ``guidance`` is the classifier-free guidance scale (A1111's "CFG scale", diffusers'
``guidance_scale``, ``Request.guidance``); ``size`` is the (width, height) the model generated at.
"""

from __future__ import annotations

import base64
import io
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from inference.api import ControlInput, ReferenceInput

log = logging.getLogger(__name__)

Pairs = tuple[tuple[str, str], ...]

CONTROL_MODES = ("Balanced", "My prompt is more important", "ControlNet is more important")


@dataclass(frozen=True)
class LoraUse:
    """One LoRA as applied: its name (file stem, as A1111's ``<lora:name:weight>``), weight,
    A1111 short hash, and (attachment) the file it was loaded from."""

    name: str
    weight: float = 1.0
    hash: str | None = None
    path: str | None = None  # attachment


@dataclass(frozen=True)
class ControlUnit:
    """One ControlNet unit, with the fields sd-webui-controlnet writes (``Module``, ``Model``,
    ``Weight``, ``Resize Mode``, ``Low Vram``, ``Guidance Start/End``, ``Pixel Perfect``,
    ``Control Mode``); labels we do not model (``Processor Res``, ``Threshold A``...) are kept
    in ``extra``."""

    control_type: str = ""  # "Module": openpose, canny, scribble...
    model: str = ""  # the ControlNet's name, as A1111 shows it
    weight: float = 1.0
    start: float = 0.0
    end: float = 1.0
    resize_mode: str = "crop and resize"  # an inference.api.ResizeMode value
    control_mode: str = "Balanced"
    pixel_perfect: bool = False
    low_vram: bool = False
    extra: Pairs = ()
    model_path: str | None = None  # attachment
    layer: str | None = None  # attachment: the control layer's name
    image: str | None = None  # attachment: base64 PNG of the control image over the result

    @classmethod
    def of_input(
        cls, control: ControlInput, layer: str | None = None, image: str | None = None
    ) -> ControlUnit:
        """The unit a request's control input ran as (the app adds its layer and image)."""
        return cls(
            control_type=control.control_type,
            model=PurePath(control.model_path).stem,
            model_path=str(control.model_path),
            weight=float(control.weight),
            start=float(control.start),
            end=float(control.end),
            resize_mode=str(control.resize_mode.value),
            layer=layer,
            image=image,
        )


@dataclass(frozen=True)
class ReferenceUnit:
    """One reference image as applied through an IP-Adapter (the A1111 text names it
    ``IP-Adapter N: "Model: ..., Weight: ..., Style only: ..."``)."""

    model: str = ""  # the IP-Adapter's name (file stem)
    weight: float = 1.0
    style_only: bool = False
    image_encoder: str = ""  # the encoder folder's name
    model_path: str | None = None  # attachment
    image_encoder_path: str | None = None  # attachment
    layer: str | None = None  # attachment: the reference layer's name
    image: str | None = None  # attachment: base64 PNG of the reference image

    @classmethod
    def of_input(
        cls, reference: ReferenceInput, layer: str | None = None, image: str | None = None
    ) -> ReferenceUnit:
        encoder = reference.image_encoder_path
        return cls(
            model=PurePath(reference.model_path).stem,
            weight=float(reference.weight),
            style_only=bool(reference.style_only),
            image_encoder=PurePath(encoder).name if encoder else "",
            model_path=str(reference.model_path),
            image_encoder_path=str(encoder) if encoder else None,
            layer=layer,
            image=image,
        )


@dataclass(frozen=True)
class Recipe:
    prompt: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    sampler: str | None = None
    guidance: float | None = None  # "CFG scale"
    seed: int | None = None
    size: tuple[int, int] | None = None  # (width, height) generated at
    model: str | None = None
    model_hash: str | None = None
    vae: str | None = None
    strength: float | None = None  # "Denoising strength"
    mode: str | None = None  # txt2img | img2img | inpaint
    mask_blur: int | None = None
    padding: int | None = None
    loras: tuple[LoraUse, ...] = ()
    controls: tuple[ControlUnit, ...] = ()
    references: tuple[ReferenceUnit, ...] = ()
    crop_box: tuple[int, int, int, int] | None = None  # x, y, width, height in the document
    batch_index: int | None = None
    extra: Pairs = ()  # A1111 labels from other tools (Clip skip, Version, ENSD...), in order
    workflow: str | None = None  # attachment: the app's workflow ("Inpaint", "Sketch to image")
    mask: str | None = None  # attachment: base64 PNG of the inpaint mask over crop_box
    model_path: str | None = None  # attachment
    vae_path: str | None = None  # attachment

    def portable(self) -> Recipe:
        """This recipe without its attachments: exactly what the A1111 text carries."""
        return replace(
            self,
            workflow=None,
            mask=None,
            model_path=None,
            vae_path=None,
            loras=tuple(replace(lora, path=None) for lora in self.loras),
            controls=tuple(
                replace(unit, model_path=None, layer=None, image=None) for unit in self.controls
            ),
            references=tuple(
                replace(unit, model_path=None, image_encoder_path=None, layer=None, image=None)
                for unit in self.references
            ),
        )

    def completed(self, **changes: Any) -> Recipe:
        """A copy with ``changes`` applied where they are set (not None, not an empty tuple):
        the app completing the engine's recipe."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None and v != ()})

    def for_mode(self) -> Recipe:
        """Without the settings its mode does not use, as A1111 writes them: no denoising
        strength for txt2img, no mask blur or padding without an inpaint mask."""
        inpaint = self.mode == "inpaint"
        return replace(
            self,
            strength=None if self.mode == "txt2img" else self.strength,
            mask_blur=self.mask_blur if inpaint else None,
            padding=self.padding if inpaint else None,
        )

    # ---- JSON ----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (lists, not tuples); unset fields are left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == ():
                continue
            if f.name == "loras":
                value = [_drop_none(lora.__dict__) for lora in value]
            elif f.name == "controls":
                value = [_unit_json(unit) for unit in value]
            elif f.name == "references":
                value = [_drop_none(unit.__dict__) for unit in value]
            elif f.name == "extra":
                value = [list(pair) for pair in value]
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | Recipe | None) -> Recipe:
        """A recipe from a stored dict, tolerant of every shape Impasto ever wrote: values of
        the wrong type are left out (logged), unknown keys ignored, ``cfg``/``engine_cfg`` read
        as ``guidance``, ``engine_size`` as ``size``, ``[path, weight]`` LoRA pairs as LoRAs."""
        if isinstance(data, Recipe):
            return data
        if not isinstance(data, Mapping):
            return cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = _first(data, f.name, *_ALIASES.get(f.name, ()))
            if raw is None:
                continue
            value = _READERS[f.name](raw)
            if value is None:
                log.info("recipe: ignoring %s=%r (not a valid value)", f.name, raw)
                continue
            values[f.name] = value
        if "extra" not in values:
            # dicts from the old parser kept unknown A1111 labels as keys ("Clip skip": "2")
            found = tuple(
                (key, value)
                for key, value in data.items()
                if isinstance(key, str)
                and key[:1].isupper()
                and isinstance(value, str)
                and not key.startswith("ControlNet")
            )
            if found:
                values["extra"] = found
        return cls(**values)


_ALIASES: dict[str, tuple[str, ...]] = {
    "guidance": ("cfg", "engine_cfg", "engine_guidance", "cfg_scale"),
    "size": ("engine_size",),
    "model_hash": ("engine_model_hash",),
    "vae": ("engine_vae",),
    "steps": ("engine_steps",),
    "sampler": ("engine_sampler",),
    "strength": ("engine_strength",),
    "mode": ("engine_mode",),
    "mask_blur": ("engine_mask_blur",),
    "padding": ("engine_padding",),
    "model": ("engine_model",),
    "controls": ("engine_controls",),
    "loras": ("engine_loras",),
}


def _first(data: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if data.get(key) is not None:
            return data[key]
    return None


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _unit_json(unit: ControlUnit) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": unit.control_type,
        "model": unit.model,
        "weight": unit.weight,
        "start": unit.start,
        "end": unit.end,
        "resize_mode": str(unit.resize_mode),
        "control_mode": unit.control_mode,
        "pixel_perfect": unit.pixel_perfect,
        "low_vram": unit.low_vram,
    }
    if unit.extra:
        out["extra"] = [list(pair) for pair in unit.extra]
    for key in ("model_path", "layer", "image"):
        if getattr(unit, key) is not None:
            out[key] = getattr(unit, key)
    return out


# ---- typed readers (None = not valid) -------------------------------------------------------


def read_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def read_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def read_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value) if isinstance(value, int | float | np.number | str) else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def read_bool(value: Any) -> bool | None:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if value in ("True", "true"):
        return True
    if value in ("False", "false"):
        return False
    return None


def read_ints(value: Any, count: int) -> tuple[int, ...] | None:
    if isinstance(value, str):
        value = value.lower().replace(",", "x").split("x")
    if not isinstance(value, list | tuple | np.ndarray) or len(value) != count:
        return None
    numbers = [read_int(v) for v in value]
    if any(n is None for n in numbers):
        return None
    return tuple(n for n in numbers if n is not None)


def read_pairs(value: Any) -> Pairs | None:
    if isinstance(value, Mapping):
        value = list(value.items())
    if not isinstance(value, list | tuple):
        return None
    pairs = []
    for item in value:
        if isinstance(item, list | tuple) and len(item) == 2:
            pairs.append((str(item[0]), str(item[1])))
    return tuple(pairs)


def read_image_text(value: Any) -> str | None:
    """Base64 PNG text, or an array (an older project's control image) encoded as one."""
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim in (2, 3):
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(value)).save(buffer, "PNG")
        return base64.b64encode(buffer.getvalue()).decode("ascii")
    return None


def read_resize_mode(value: Any) -> str | None:
    """A ``ResizeMode`` from our values ("crop and resize"), A1111's ("Crop and Resize") and its
    old names."""
    from inference.api import ResizeMode  # api imports this module

    if isinstance(value, ResizeMode):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    for mode in ResizeMode:
        if text == mode.value:
            return mode
    legacy = {
        "inner fit (scale to fit)": ResizeMode.CROP_AND_RESIZE,
        "outer fit (shrink to fit)": ResizeMode.RESIZE_AND_FILL,
        "envelope (outer fit)": ResizeMode.RESIZE_AND_FILL,
        "scale to fit (inner fit)": ResizeMode.CROP_AND_RESIZE,
    }
    return legacy.get(text)


def read_lora(value: Any) -> LoraUse | None:
    if isinstance(value, list | tuple) and len(value) == 2:  # a saved panel state's [path, weight]
        path, weight = value
        number = read_float(weight)
        if not isinstance(path, str) or not path or number is None:
            return None
        return LoraUse(name=PurePath(path).stem, weight=number, path=path)
    if not isinstance(value, Mapping):
        return None
    name = read_text(value.get("name"))
    path = read_text(value.get("path"))
    if not name and path:
        name = PurePath(path).stem
    weight = read_float(value.get("weight", 1.0))
    if not name or weight is None:
        return None
    return LoraUse(name=name, weight=weight, hash=read_text(value.get("hash")) or None, path=path)


def read_control(value: Any) -> ControlUnit | None:
    if not isinstance(value, Mapping):
        return None
    model = read_text(value.get("model")) or ""
    model_path = read_text(value.get("model_path"))
    unit = ControlUnit(
        control_type=read_text(value.get("type", value.get("control_type"))) or "",
        model=model,
        model_path=model_path,
        layer=read_text(value.get("layer")),
        image=read_image_text(value.get("image")),
        extra=read_pairs(value.get("extra", ())) or (),
    )
    changes: dict[str, Any] = {}
    for key, reader in (
        ("weight", read_float),
        ("start", read_float),
        ("end", read_float),
        ("resize_mode", read_resize_mode),
        ("pixel_perfect", read_bool),
        ("low_vram", read_bool),
        ("control_mode", read_text),
    ):
        if value.get(key) is not None:
            typed = reader(value[key])
            if typed is not None:
                changes[key] = typed
    return replace(unit, **changes)


def read_reference(value: Any) -> ReferenceUnit | None:
    if not isinstance(value, Mapping):
        return None
    weight = read_float(value.get("weight", 1.0))
    style_only = read_bool(value.get("style_only", False))
    return ReferenceUnit(
        model=read_text(value.get("model")) or "",
        weight=1.0 if weight is None else weight,
        style_only=bool(style_only),
        image_encoder=read_text(value.get("image_encoder")) or "",
        model_path=read_text(value.get("model_path")),
        image_encoder_path=read_text(value.get("image_encoder_path")),
        layer=read_text(value.get("layer")),
        image=read_image_text(value.get("image")),
    )


def _read_many(reader: Any) -> Any:
    def read(value: Any) -> tuple | None:
        if not isinstance(value, list | tuple):
            return None
        items = [reader(item) for item in value]
        return tuple(item for item in items if item is not None)

    return read


_READERS: dict[str, Any] = {
    "prompt": read_text,
    "negative_prompt": read_text,
    "steps": read_int,
    "sampler": read_text,
    "guidance": read_float,
    "seed": read_int,
    "size": lambda v: read_ints(v, 2),
    "model": read_text,
    "model_hash": read_text,
    "vae": read_text,
    "strength": read_float,
    "mode": read_text,
    "mask_blur": read_int,
    "padding": read_int,
    "loras": _read_many(read_lora),
    "controls": _read_many(read_control),
    "references": _read_many(read_reference),
    "crop_box": lambda v: read_ints(v, 4),
    "batch_index": read_int,
    "extra": read_pairs,
    "workflow": read_text,
    "mask": read_image_text,
    "model_path": read_text,
    "vae_path": read_text,
}


def lora_uses(loras: tuple[tuple[str, float], ...]) -> tuple[LoraUse, ...]:
    """A request's (path, weight) LoRAs as the recipe records them (name, weight, A1111 hash,
    path). The hash reads the file once; it is cached by path, size and mtime afterwards."""
    if not loras:
        return ()
    from inference.loras import lora_recipe

    uses = (read_lora(entry) for entry in lora_recipe(loras)["loras"])
    return tuple(use for use in uses if use is not None)
