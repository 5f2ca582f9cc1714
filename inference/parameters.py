"""AUTOMATIC1111-style ``parameters`` text: format, parse, and read/write it in PNG files.

Format (what A1111, ComfyUI importers and Civitai read)::

    a cat on a sofa
    Negative prompt: blurry
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, Model hash: 0123456789,
    Model: sd15          (all on one line)

Values containing ``,``, ``:`` or ``"`` are written JSON-quoted, as A1111 does. LoRAs follow
A1111 too: ``<lora:name:weight>`` tags after the prompt and a ``Lora hashes`` field; parsing takes
the tags back out of the prompt into ``lora_tags`` and ``loras``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from inference.loras import split_lora_tags

PNG_KEY = "parameters"

# recipe key -> A1111 label, in A1111's order
_LABELS: tuple[tuple[str, str], ...] = (
    ("steps", "Steps"),
    ("sampler", "Sampler"),
    ("cfg", "CFG scale"),
    ("seed", "Seed"),
    ("size", "Size"),
    ("model_hash", "Model hash"),
    ("model", "Model"),
    ("strength", "Denoising strength"),
    ("mask_blur", "Mask blur"),
    ("padding", "Masked area padding"),
    ("mode", "Mode"),
    ("crop_box", "Crop box"),
    ("vae", "VAE"),
    ("lora_hashes", "Lora hashes"),
)
_INT_KEYS = {"steps", "seed", "mask_blur", "padding"}
_FLOAT_KEYS = {"cfg", "strength"}
_PARAM_RE = re.compile(r'\s*([\w ./+\-()]+):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_NEGATIVE = "Negative prompt:"
_TRAILING_TAGS = re.compile(r"(?:\s*<lora:[^<>]*>)+\s*$", re.IGNORECASE)


def _quote(value: str) -> str:
    if any(ch in value for ch in ',:"\n'):
        return json.dumps(value, ensure_ascii=False)
    return value


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _format_value(key: str, value: Any) -> str:
    if key == "size" and isinstance(value, (tuple, list)):
        return f"{value[0]}x{value[1]}"
    if key == "crop_box" and isinstance(value, (tuple, list)):
        return "x".join(str(int(v)) for v in value)
    if isinstance(value, float):
        return _number(round(value, 4))
    return str(value)


def format_parameters(recipe: dict[str, Any]) -> str:
    """A recipe (see ``inference.engine``) -> the A1111 text (keys without an A1111 label are left
    out: batch size, seeds and control images live in the recipe, not in this text; ControlNet
    units are written as the sd-webui-controlnet extension does)."""
    prompt = str(recipe.get("prompt", ""))
    tags = recipe.get("lora_tags")
    if tags and tags not in prompt:  # A1111 records LoRAs as <lora:name:weight> in the prompt
        prompt = f"{prompt} {tags}".strip()
    lines = [prompt]
    negative = recipe.get("negative_prompt", "")
    if negative:
        lines.append(f"{_NEGATIVE} {negative}")
    pairs = []
    for key, label in _LABELS:
        value = recipe.get(key)
        if value is None or value == "":
            continue
        pairs.append(f"{label}: {_quote(_format_value(key, value))}")
    for index, control in enumerate(recipe.get("controls") or ()):
        pairs.append(f"ControlNet {index}: {_quote(_control_text(control))}")
    lines.append(", ".join(pairs))
    return "\n".join(lines)


def _control_text(control: dict[str, Any]) -> str:
    """One ControlNet unit the way the sd-webui-controlnet extension writes it."""
    return ", ".join(
        f"{label}: {control[key]}"
        for key, label in (
            ("type", "Module"),
            ("model", "Model"),
            ("weight", "Weight"),
            ("resize_mode", "Resize Mode"),
            ("start", "Guidance Start"),
            ("end", "Guidance End"),
        )
        if control.get(key) is not None
    )


def parse_parameters(text: str) -> dict[str, Any]:
    """The A1111 text -> a recipe dict (typed where the key is known; unknown labels kept as text).

    Always has ``prompt`` and ``negative_prompt``; ``size`` becomes ``(width, height)``.
    """
    lines = text.strip("\n").split("\n")
    settings_line = ""
    if lines and _PARAM_RE.findall(lines[-1]) and len(_PARAM_RE.findall(lines[-1])) >= 3:
        settings_line = lines.pop()
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    target = prompt_lines
    for line in lines:
        if line.startswith(_NEGATIVE):
            target = negative_lines
            line = line[len(_NEGATIVE) :].lstrip()
        target.append(line)
    prompt, loras = _split_prompt("\n".join(prompt_lines).strip())
    recipe: dict[str, Any] = {
        "prompt": prompt,
        "negative_prompt": "\n".join(negative_lines).strip(),
    }
    by_label = {label: key for key, label in _LABELS}
    for label, raw in _PARAM_RE.findall(settings_line):
        label = label.strip()
        value = raw.strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = value[1:-1]
        key = by_label.get(label, label)
        recipe[key] = _typed(key, value)
    if loras:
        recipe.update(_lora_entries(loras, recipe.get("lora_hashes")))
    return recipe


def _split_prompt(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """The prompt without its ``<lora:...>`` tags, and the tags' (name, weight) pairs.

    Tags trailing the prompt (where ``format_parameters`` puts them) are cut off exactly, so the
    user's own spacing survives; tags inside the text (typed there in A1111) go through
    ``split_lora_tags``, which also tidies the spaces they leave."""
    without_tags, loras = split_lora_tags(prompt)
    if not loras:
        return prompt, []
    trailing = _TRAILING_TAGS.search(prompt)
    head = prompt[: trailing.start()] if trailing else prompt
    if trailing and not split_lora_tags(head)[1] and "<lora:" not in head.lower():
        return head.rstrip(), loras
    return without_tags, loras


def _lora_entries(loras: list[tuple[str, float]], hashes: Any) -> dict[str, Any]:
    """``lora_tags`` and ``loras`` ([{name, weight, hash?}]) from the prompt's tags, with each
    hash taken from the ``Lora hashes`` text (``"name: hash, name2: hash2"``) when present."""
    by_name: dict[str, str] = {}
    if isinstance(hashes, str):
        for item in hashes.split(","):
            name, sep, digest = item.rpartition(":")
            if sep and name.strip() and digest.strip():
                by_name[name.strip()] = digest.strip()
    entries = []
    for name, weight in loras:
        entry: dict[str, Any] = {"name": name, "weight": weight}
        if name in by_name:
            entry["hash"] = by_name[name]
        entries.append(entry)
    tags = " ".join(f"<lora:{name}:{_number(round(weight, 4))}>" for name, weight in loras)
    return {"lora_tags": tags, "loras": entries}


def _typed(key: str, value: str) -> Any:
    try:
        if key in _INT_KEYS:
            return int(value)
        if key in _FLOAT_KEYS:
            return float(value)
        if key == "size":
            width, height = value.lower().split("x")
            return (int(width), int(height))
        if key == "crop_box":
            return tuple(int(v) for v in value.lower().split("x"))
    except ValueError:
        return value
    return value


def write_png(path: str | Path, image: np.ndarray, parameters: str | None = None) -> Path:
    """Write an RGB/RGBA uint8 image as PNG with a ``parameters`` text chunk, atomically."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    path = Path(path)
    info = PngInfo()
    if parameters:
        info.add_text(PNG_KEY, parameters)  # Pillow writes iTXt when the text is not Latin-1
    mode = "RGBA" if image.ndim == 3 and image.shape[2] == 4 else "RGB"
    if image.ndim == 2:
        mode = "L"
    from inference.atomic_write import write_atomic

    picture = Image.fromarray(np.ascontiguousarray(image), mode)
    write_atomic(path, lambda handle: picture.save(handle, "PNG", pnginfo=info))
    return path


def read_png_parameters(path: str | Path) -> str | None:
    """The ``parameters`` text of a PNG (tEXt, zTXt or iTXt), or None."""
    from PIL import Image

    with Image.open(path) as image:
        text = getattr(image, "text", None) or {}
        value = text.get(PNG_KEY) or image.info.get(PNG_KEY)
    return str(value) if value is not None else None
