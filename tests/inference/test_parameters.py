"""A1111 parameters text: format, parse back, and PNG text chunks."""

from __future__ import annotations

import numpy as np
import pytest

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


# ---- LoRAs: <lora:name:weight> after the prompt, "Lora hashes" in the settings line ----------


@pytest.fixture(scope="module")
def lora_files(tmp_path_factory):
    from tests.tiny_loras import save_kohya_lora, tiny_lora_factors

    folder = tmp_path_factory.mktemp("loras")
    return (
        save_kohya_lora(folder / "ink-style.safetensors", tiny_lora_factors(seed=1, rank=2)),
        save_kohya_lora(folder / "detail.safetensors", tiny_lora_factors(seed=2, rank=2)),
    )


@pytest.mark.parametrize("prompt", ["a cat, sitting: on a sofa", "a castle\nat  night", ""])
def test_loras_round_trip_through_the_text(lora_files, prompt):
    from inference.loras import lora_hash, lora_recipe

    loras = ((str(lora_files[0]), 0.8), (str(lora_files[1]), -0.5))
    recipe = {**RECIPE, "prompt": prompt, **lora_recipe(loras)}
    text = format_parameters(recipe)
    prompt_part = text.split("\nNegative prompt:")[0]
    assert prompt_part.endswith("<lora:ink-style:0.8> <lora:detail:-0.5>")
    assert f'Lora hashes: "ink-style: {lora_hash(lora_files[0])}, detail: ' in text
    parsed = parse_parameters(text)
    assert parsed["prompt"] == prompt
    assert parsed["negative_prompt"] == RECIPE["negative_prompt"]
    assert parsed["lora_tags"] == recipe["lora_tags"]
    assert parsed["lora_hashes"] == recipe["lora_hashes"]
    assert parsed["loras"] == [
        {"name": e["name"], "weight": e["weight"], "hash": e["hash"]} for e in recipe["loras"]
    ]
    assert parsed["steps"] == 20 and parsed["seed"] == 1234


def test_tags_already_in_the_prompt_are_not_written_twice():
    recipe = {"prompt": "a dog <lora:x:1>", "lora_tags": "<lora:x:1>", "steps": 2, "seed": 1}
    assert format_parameters(recipe).splitlines()[0] == "a dog <lora:x:1>"


def test_a1111_text_with_tags_inside_the_prompt():
    text = (
        "<lora:x:0.5> a dog, <LORA:y:1.25> in snow\nNegative prompt: cold\n"
        'Steps: 20, Sampler: Euler a, Seed: 5, Lora hashes: "x: 12ab34cd56ef"'
    )
    parsed = parse_parameters(text)
    assert parsed["prompt"] == "a dog, in snow"
    assert parsed["loras"] == [
        {"name": "x", "weight": 0.5, "hash": "12ab34cd56ef"},
        {"name": "y", "weight": 1.25},
    ]
    assert parsed["lora_tags"] == "<lora:x:0.5> <lora:y:1.25>"


def test_prompt_without_tags_is_kept_exactly():
    text = format_parameters({**RECIPE, "prompt": "two  spaces\tand a tab"})
    parsed = parse_parameters(text)
    assert parsed["prompt"] == "two  spaces\tand a tab"
    assert "loras" not in parsed and "lora_tags" not in parsed


def test_controlnet_units_are_written_like_the_webui_extension():
    from inference.parameters import format_parameters, parse_parameters

    recipe = {
        "prompt": "a dancer",
        "steps": 20,
        "seed": 1,
        "controls": [
            {"type": "openpose", "model": "cn-pose", "weight": 0.8, "start": 0.0, "end": 0.9},
            {"type": "canny", "model": "cn-canny", "weight": 1.0, "image": "QUJD"},
        ],
    }
    text = format_parameters(recipe)
    assert "QUJD" not in text  # images stay in the recipe, not in the text
    parsed = parse_parameters(text)
    assert parsed["ControlNet 0"] == (
        "Module: openpose, Model: cn-pose, Weight: 0.8, Guidance Start: 0.0, Guidance End: 0.9"
    )
    assert parsed["ControlNet 1"].startswith("Module: canny, Model: cn-canny")
    assert parsed["steps"] == 20 and parsed["prompt"] == "a dancer"
