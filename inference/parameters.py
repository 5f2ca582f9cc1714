"""AUTOMATIC1111-style ``parameters`` text: the one formatter and the one parser of a
:class:`~inference.recipe.Recipe`, and reading/writing that text in PNG, JPEG and WebP files.

Format (what A1111, ComfyUI importers and Civitai read)::

    a cat on a sofa <lora:ink:0.8>
    Negative prompt: blurry
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, Model hash: 0123456789,
    Model: sd15, Lora hashes: "ink: 0123456789ab", ControlNet 0: "Module: openpose, ..."
    (the settings are all on one line)

- Values that contain ``,``, ``:`` or ``"``, or are empty, padded or unprintable, are written
  JSON-quoted, as A1111 does.
- LoRAs follow A1111: ``<lora:name:weight>`` tags after the prompt (one space before them) and a
  ``Lora hashes`` field; the parser takes them back out of the prompt.
- ControlNet units are written as sd-webui-controlnet writes them (``ControlNet 0: "Module: ...,
  Model: ..., Weight: 1, Resize Mode: Crop and Resize, Low Vram: False, Guidance Start: 0,
  Guidance End: 1, Pixel Perfect: False, Control Mode: Balanced"``).
- Labels Impasto does not model (``Clip skip``, ``Version``, ``ENSD``...) are kept in
  ``Recipe.extra`` and written back in their order.
- The settings line is always written (empty when there is nothing to say), so a prompt's last
  line is never mistaken for settings.

``parse_parameters(format_parameters(r)) == r.portable()`` for every recipe whose prompt has no
line starting with ``Negative prompt:`` and no ``<lora:`` text of its own (the format cannot tell
those from the real thing; A1111 cannot either).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from inference.api import ResizeMode
from inference.loras import split_lora_tags
from inference.recipe import (
    ControlUnit,
    LoraUse,
    Recipe,
    ReferenceUnit,
    read_bool,
    read_float,
    read_int,
    read_ints,
    read_resize_mode,
)

PNG_KEY = "parameters"
_NEGATIVE = "Negative prompt:"
_PAIR = re.compile(r'\s*([\w ./+\-()\[\]]+?):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_TRAILING_TAGS = re.compile(r"<lora:[^<>\n]*>(?: <lora:[^<>\n]*>)*\Z", re.IGNORECASE)
_CONTROLNET = re.compile(r"ControlNet (\d+)")
_IP_ADAPTER = re.compile(r"IP-Adapter (\d+)")
# Impasto's own labels for a reference image (sd-webui-controlnet has no unit field for them)
_REFERENCE_LABELS = (
    ("model", "Model"),
    ("weight", "Weight"),
    ("style_only", "Style only"),
    ("image_encoder", "Image encoder"),
)
_REFERENCE_FIELD_OF = {label: name for name, label in _REFERENCE_LABELS}

# Recipe field -> A1111 label, in A1111's order (Impasto's own labels where A1111 has none)
_LABELS: tuple[tuple[str, str], ...] = (
    ("steps", "Steps"),
    ("sampler", "Sampler"),
    ("guidance", "CFG scale"),
    ("seed", "Seed"),
    ("size", "Size"),
    ("model_hash", "Model hash"),
    ("model", "Model"),
    ("vae", "VAE"),
    ("strength", "Denoising strength"),
    ("mask_blur", "Mask blur"),
    ("padding", "Masked area padding"),
    ("mode", "Mode"),
    ("crop_box", "Crop box"),
    ("batch_index", "Batch index"),
)
_FIELD_OF = {label: name for name, label in _LABELS}
_LORA_HASHES = "Lora hashes"
_READ = {
    "steps": read_int,
    "seed": read_int,
    "mask_blur": read_int,
    "padding": read_int,
    "batch_index": read_int,
    "guidance": read_float,
    "strength": read_float,
    "size": lambda v: read_ints(v, 2),
    "crop_box": lambda v: read_ints(v, 4),
}
_RESIZE_TEXT = {
    ResizeMode.JUST_RESIZE: "Just Resize",
    ResizeMode.CROP_AND_RESIZE: "Crop and Resize",
    ResizeMode.RESIZE_AND_FILL: "Resize and Fill",
}
# sd-webui-controlnet's labels (its field names, capitalised word by word)
_UNIT_LABELS = (
    ("control_type", "Module"),
    ("model", "Model"),
    ("weight", "Weight"),
    ("resize_mode", "Resize Mode"),
    ("low_vram", "Low Vram"),
    ("start", "Guidance Start"),
    ("end", "Guidance End"),
    ("pixel_perfect", "Pixel Perfect"),
    ("control_mode", "Control Mode"),
)
_UNIT_FIELD_OF = {label: name for name, label in _UNIT_LABELS}
_UNIT_READ = {
    "weight": read_float,
    "start": read_float,
    "end": read_float,
    "resize_mode": read_resize_mode,
    "low_vram": read_bool,
    "pixel_perfect": read_bool,
}


# ---- formatting -------------------------------------------------------------------------------


def format_parameters(recipe: Recipe | Mapping[str, Any]) -> str:
    """A recipe (or a stored recipe dict, read by ``Recipe.from_json``) -> the A1111 text."""
    recipe = Recipe.from_json(recipe)
    prompt = recipe.prompt
    tags = " ".join(f"<lora:{_alias(lora.name)}:{_number(lora.weight)}>" for lora in recipe.loras)
    if tags:
        prompt = f"{prompt} {tags}" if prompt else tags
    lines = [prompt]
    if recipe.negative_prompt:
        lines.append(f"{_NEGATIVE} {recipe.negative_prompt}")
    pairs = []
    for name, label in _LABELS:
        value = getattr(recipe, name)
        if value is not None:
            pairs.append((label, _value_text(value)))
    hashes = ", ".join(f"{_alias(lora.name)}: {lora.hash}" for lora in recipe.loras if lora.hash)
    if hashes:
        pairs.append((_LORA_HASHES, hashes))
    for index, unit in enumerate(recipe.controls):
        pairs.append((f"ControlNet {index}", _unit_text(unit)))
    for index, reference in enumerate(recipe.references):
        pairs.append((f"IP-Adapter {index}", _reference_text(reference)))
    pairs.extend(recipe.extra)
    lines.append(_pairs_text(pairs))
    return "\n".join(lines)


def _pairs_text(pairs: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{label}: {_quote(value)}" for label, value in pairs)


def _unit_text(unit: ControlUnit) -> str:
    pairs = []
    for name, label in _UNIT_LABELS:
        value = getattr(unit, name)
        text = _RESIZE_TEXT.get(value, value) if name == "resize_mode" else _value_text(value)
        pairs.append((label, text))
    pairs.extend(unit.extra)
    return _pairs_text(pairs)


def _reference_text(unit: ReferenceUnit) -> str:
    pairs = [(label, _value_text(getattr(unit, name))) for name, label in _REFERENCE_LABELS]
    return _pairs_text(pairs)


def _parse_reference(text: str) -> ReferenceUnit | None:
    pairs = _settings_pairs(text) or _loose_pairs(text)
    values: dict[str, Any] = {}
    for label, value in pairs:
        name = _REFERENCE_FIELD_OF.get(label)
        if name == "weight":
            values[name] = read_float(value)
        elif name == "style_only":
            values[name] = read_bool(value)
        elif name is not None:
            values[name] = value
    if not values.get("model") or values.get("weight") is None:
        return None
    return ReferenceUnit(**{k: v for k, v in values.items() if v is not None})


def _quote(value: str) -> str:
    """JSON-quoted when the bare value would not read back the same (A1111 quotes the same way
    for ``,`` ``:`` and newlines)."""
    if (
        not value
        or value != value.strip()
        or any(ch in value for ch in ',:"')
        or not value.isprintable()
    ):
        return json.dumps(value, ensure_ascii=False)
    return value


def _value_text(value: Any) -> str:
    if isinstance(value, tuple):
        return "x".join(str(int(v)) for v in value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    return str(value)


def _number(value: float) -> str:
    """Whole numbers without ``.0`` (A1111 writes ``CFG scale: 7``); others exactly (repr)."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _alias(name: str) -> str:
    return name.replace(":", "").replace(",", "").replace(">", "")  # A1111 strips these too


# ---- parsing ----------------------------------------------------------------------------------


def parse_parameters(text: str) -> Recipe:
    """The A1111 text (ours or another tool's) -> a Recipe. Known labels are typed (a value that
    does not read as its type is kept in ``extra`` under its label); unknown labels are kept in
    ``extra``; a text without a settings line is all prompt."""
    lines = text.split("\n")
    settings: list[tuple[str, str]] = []
    last = _settings_pairs(lines[-1], whole_line_is_enough=len(lines) >= 2)
    if (len(lines) >= 2 and (lines[-1] == "" or last is not None)) or len(last or ()) >= 3:
        lines.pop()  # a lone line of three or more pairs is settings (A1111 strips an empty prompt)
        settings = last or []
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    target = prompt_lines
    for line in lines:
        if target is prompt_lines and line.startswith(_NEGATIVE):
            target = negative_lines
            line = line[len(_NEGATIVE) :]
            line = line[1:] if line.startswith(" ") else line
        target.append(line)
    prompt, tags = _split_prompt("\n".join(prompt_lines))
    values: dict[str, Any] = {"prompt": prompt, "negative_prompt": "\n".join(negative_lines)}
    extra: list[tuple[str, str]] = []
    units: dict[int, ControlUnit] = {}
    references: dict[int, ReferenceUnit] = {}
    hashes: dict[str, str] = {}
    for label, value in settings:
        name = _FIELD_OF.get(label)
        unit_match = _CONTROLNET.fullmatch(label)
        reference_match = _IP_ADAPTER.fullmatch(label)
        if name is not None and name not in values:
            typed = _READ.get(name, str)(value)
            if typed is not None:
                values[name] = typed
                continue
        elif label == _LORA_HASHES and not hashes:
            hashes = _lora_hashes(value)
            if hashes:
                continue
        elif unit_match and int(unit_match.group(1)) not in units:
            unit = _parse_unit(value)
            if unit is not None:
                units[int(unit_match.group(1))] = unit
                continue
        elif reference_match and int(reference_match.group(1)) not in references:
            reference = _parse_reference(value)
            if reference is not None:
                references[int(reference_match.group(1))] = reference
                continue
        extra.append((label, value))
    values["loras"] = tuple(
        LoraUse(name=name, weight=weight, hash=hashes.get(name)) for name, weight in tags
    )
    values["controls"] = tuple(units[index] for index in sorted(units))
    values["references"] = tuple(references[index] for index in sorted(references))
    values["extra"] = tuple(extra)
    return Recipe(**values)


def _settings_pairs(line: str, whole_line_is_enough: bool = False) -> list[tuple[str, str]] | None:
    """The (label, value) pairs of a settings line, or None when the line is not one (some text
    between the pairs, or no known label and fewer than three pairs). With
    ``whole_line_is_enough`` (a last line below a prompt, as our formatter always writes one), a
    line made only of pairs is settings even with few unknown labels (``Clip skip: 2``)."""
    matches: list[re.Match[str]] = []
    position = 0
    while position < len(line):
        match = _PAIR.match(line, position)
        if match is None or match.end() == position:
            matches = []
            break
        matches.append(match)
        position = match.end()
    whole = bool(matches)
    if not matches:  # not all pairs: A1111 still reads a line with three pairs in it as settings
        matches = list(_PAIR.finditer(line))
        if len(matches) < 3:
            return None
    pairs = [(m.group(1).strip(), _unquote(m.group(2).strip())) for m in matches]
    if len(pairs) < 3 and not any(label in _FIELD_OF for label, _ in pairs):
        return pairs if whole and whole_line_is_enough else None
    return pairs


def _unquote(value: str) -> str:
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        try:
            return str(json.loads(value))
        except json.JSONDecodeError:
            return value[1:-1]
    return value


def _parse_unit(text: str) -> ControlUnit | None:
    pairs = _settings_pairs(text)
    if pairs is None and ":" in text:
        pairs = _loose_pairs(text)
    if not pairs:
        return None
    values: dict[str, Any] = {}
    extra = []
    for label, value in pairs:
        name = _UNIT_FIELD_OF.get(label)
        if name is not None and name not in values:
            typed = _UNIT_READ.get(name, str)(value)
            if typed is not None:
                values[name] = typed
                continue
        extra.append((label, value))
    return replace(ControlUnit(**values), extra=tuple(extra))


def _loose_pairs(text: str) -> list[tuple[str, str]]:
    """sd-webui-controlnet's own reading of a unit: split at ``,``, then at ``: ``."""
    pairs = []
    for item in text.split(","):
        label, sep, value = item.strip().partition(": ")
        if sep:
            pairs.append((label, value))
    return pairs


def _split_prompt(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """The prompt without its ``<lora:...>`` tags, and the tags' (name, weight) pairs.

    Tags trailing the prompt after one space (where ``format_parameters`` puts them) are cut off
    exactly, so the user's own text survives byte for byte; tags inside the text (typed there in
    A1111) go through ``split_lora_tags``, which also tidies the spaces they leave."""
    if "<lora:" not in prompt.lower():
        return prompt, []
    trailing = _TRAILING_TAGS.search(prompt)
    if trailing is not None:
        head = prompt[: trailing.start()]
        if "<lora:" not in head.lower() and (head == "" or head.endswith(" ")):
            _, tags = split_lora_tags(trailing.group(0))
            return head[:-1] if head else head, tags
    return split_lora_tags(prompt)


def _lora_hashes(text: str) -> dict[str, str]:
    """``"name: hash, name2: hash2"`` -> {name: hash}."""
    found: dict[str, str] = {}
    for item in text.split(","):
        name, sep, digest = item.rpartition(":")
        if sep and name.strip() and digest.strip():
            found[name.strip()] = digest.strip()
    return found


# ---- files --------------------------------------------------------------------------------------


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


# ---- JPEG / WebP: EXIF UserComment (A1111 writes it with piexif; app.image_io writes ours) ------

_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286
_UNICODE = b"UNICODE\0"
_ASCII = b"ASCII\0\0\0"


def decode_user_comment(comment: bytes) -> str:
    """An EXIF UserComment's text (``UNICODE\\0`` + UTF-16BE, ``ASCII`` or bare UTF-8)."""
    if comment.startswith(_UNICODE):  # big-endian, as piexif reads and writes it
        return comment[len(_UNICODE) :].decode("utf-16-be", errors="replace")
    if comment.startswith(_ASCII):
        return comment[len(_ASCII) :].decode("ascii", errors="replace")
    return comment.rstrip(b"\0").decode("utf-8", errors="replace")


def read_image_parameters(path: str | Path) -> str | None:
    """The ``parameters`` text of a PNG (text chunk) or JPEG/WebP (EXIF UserComment), or None."""
    from PIL import Image

    with Image.open(path) as image:
        text = getattr(image, "text", None) or {}
        value = text.get(PNG_KEY) or image.info.get(PNG_KEY)
        if value is not None:
            return str(value)
        comment = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    if isinstance(comment, bytes) and comment.strip(b"\0"):
        return decode_user_comment(comment)
    if isinstance(comment, str) and comment:
        return comment
    return None
