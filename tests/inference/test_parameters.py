"""A1111 parameters text: format, parse back, and PNG text chunks."""

from __future__ import annotations

import numpy as np

from inference.parameters import (
    format_parameters,
    parse_parameters,
    read_png_parameters,
    write_png,
)

RECIPE = {
    "prompt": "a cat, sitting: on a sofa",
    "negative_prompt": "blurry, low quality",
    "steps": 20,
    "sampler": "DPM++ 2M Karras",
    "cfg": 7.5,
    "seed": 1234,
    "size": (512, 768),
    "model_hash": "0123456789",
    "model": "my model, v2",
    "strength": 0.75,
    "crop_box": (10, 20, 300, 400),
    "mode": "inpaint",
}


def test_format_matches_a1111_layout():
    text = format_parameters(RECIPE)
    lines = text.split("\n")
    assert lines[0] == "a cat, sitting: on a sofa"
    assert lines[1] == "Negative prompt: blurry, low quality"
    assert lines[2].startswith(
        "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 1234, Size: 512x768, "
        'Model hash: 0123456789, Model: "my model, v2", Denoising strength: 0.75'
    )


def test_round_trip():
    parsed = parse_parameters(format_parameters(RECIPE))
    for key, value in RECIPE.items():
        assert parsed[key] == value, key


def test_parse_real_a1111_text_with_multiline_prompt():
    text = (
        "masterpiece, a castle\nat night\nNegative prompt: ugly\n"
        "Steps: 28, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, "
        'Model hash: abcdef1234, Model: sd15, Lora hashes: "x: 12ab, y: 34cd", Version: v1.9.4'
    )
    parsed = parse_parameters(text)
    assert parsed["prompt"] == "masterpiece, a castle\nat night"
    assert parsed["negative_prompt"] == "ugly"
    assert parsed["steps"] == 28 and parsed["cfg"] == 7.0 and parsed["seed"] == 42
    assert parsed["size"] == (512, 512)
    assert parsed["lora_hashes"] == "x: 12ab, y: 34cd"
    assert parsed["Version"] == "v1.9.4"


def test_prompt_only_text_is_all_prompt():
    assert parse_parameters("just a prompt, with: colon") == {
        "prompt": "just a prompt, with: colon",
        "negative_prompt": "",
    }


def test_png_round_trip_latin1_and_unicode(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    for prompt in ("a cat", "猫の絵 — ünïcode"):
        path = write_png(
            tmp_path / "out.png", image, format_parameters({**RECIPE, "prompt": prompt})
        )
        assert parse_parameters(read_png_parameters(path))["prompt"] == prompt
    assert not list(tmp_path.glob(".*.tmp"))


def test_png_without_parameters_reads_none(tmp_path):
    path = write_png(tmp_path / "plain.png", np.zeros((4, 4, 4), np.uint8))
    assert read_png_parameters(path) is None
