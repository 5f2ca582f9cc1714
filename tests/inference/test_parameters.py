"""A1111 parameters text: format, parse back, and PNG text chunks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from inference.parameters import (
    format_parameters,
    parse_parameters,
    read_png_parameters,
    write_png,
)
from inference.recipe import LoraUse, Recipe

RECIPE = Recipe(
    prompt="a cat, sitting: on a sofa",
    negative_prompt="blurry, low quality",
    steps=20,
    sampler="DPM++ 2M Karras",
    guidance=7.5,
    seed=1234,
    size=(512, 768),
    model_hash="0123456789",
    model="my model, v2",
    strength=0.75,
    crop_box=(10, 20, 300, 400),
    mode="inpaint",
)


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
    assert parse_parameters(format_parameters(RECIPE)) == RECIPE


def test_a_stored_recipe_dict_formats_the_same():
    assert format_parameters(RECIPE.to_json()) == format_parameters(RECIPE)


def test_parse_real_a1111_text_with_multiline_prompt():
    text = (
        "masterpiece, a castle\nat night\nNegative prompt: ugly\n"
        "Steps: 28, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, "
        'Model hash: abcdef1234, Model: sd15, Lora hashes: "x: 12ab, y: 34cd", Version: v1.9.4'
    )
    parsed = parse_parameters(text)
    assert parsed.prompt == "masterpiece, a castle\nat night"
    assert parsed.negative_prompt == "ugly"
    assert parsed.steps == 28 and parsed.guidance == 7.0 and parsed.seed == 42
    assert parsed.size == (512, 512)
    assert parsed.loras == ()  # hashes without tags in the prompt name no LoRA
    assert parsed.extra == (("Version", "v1.9.4"),)


def test_prompt_only_text_is_all_prompt():
    assert parse_parameters("just a prompt, with: colon") == Recipe(
        prompt="just a prompt, with: colon"
    )
    assert parse_parameters("a: b, c: d\n") == Recipe(prompt="a: b, c: d")


def test_png_round_trip_latin1_and_unicode(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    for prompt in ("a cat", "猫の絵 — ünïcode"):
        path = write_png(
            tmp_path / "out.png", image, format_parameters(replace(RECIPE, prompt=prompt))
        )
        assert parse_parameters(read_png_parameters(path)) == replace(RECIPE, prompt=prompt)
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
    from inference.loras import lora_hash
    from inference.recipe import lora_uses

    loras = lora_uses(((str(lora_files[0]), 0.8), (str(lora_files[1]), -0.5)))
    recipe = replace(RECIPE, prompt=prompt, loras=loras)
    text = format_parameters(recipe)
    prompt_part = text.split("\nNegative prompt:")[0]
    assert prompt_part.endswith("<lora:ink-style:0.8> <lora:detail:-0.5>")
    assert f'Lora hashes: "ink-style: {lora_hash(lora_files[0])}, detail: ' in text
    assert parse_parameters(text) == recipe.portable()
    assert [(lora.name, lora.weight) for lora in parse_parameters(text).loras] == [
        ("ink-style", 0.8),
        ("detail", -0.5),
    ]


def test_a1111_text_with_tags_inside_the_prompt():
    text = (
        "<lora:x:0.5> a dog, <LORA:y:1.25> in snow\nNegative prompt: cold\n"
        'Steps: 20, Sampler: Euler a, Seed: 5, Lora hashes: "x: 12ab34cd56ef"'
    )
    parsed = parse_parameters(text)
    assert parsed.prompt == "a dog, in snow"
    assert parsed.loras == (LoraUse("x", 0.5, "12ab34cd56ef"), LoraUse("y", 1.25))


def test_prompt_without_tags_is_kept_exactly():
    text = format_parameters(replace(RECIPE, prompt="two  spaces\tand a tab"))
    parsed = parse_parameters(text)
    assert parsed.prompt == "two  spaces\tand a tab" and parsed.loras == ()


def test_a_value_that_is_not_its_type_is_kept_under_its_label():
    parsed = parse_parameters("x\nSteps: many, Sampler: Euler, Seed: 3, Clip skip: 2")
    assert parsed.steps is None and parsed.seed == 3
    assert parsed.extra == (("Steps", "many"), ("Clip skip", "2"))
    assert "Steps: many" in format_parameters(parsed)


@pytest.mark.parametrize(
    ("comment", "text"),
    [
        (b"UNICODE\0" + "Āb 猫".encode("utf-16-be"), "Āb 猫"),
        (b"ASCII\0\0\0steps", "steps"),
        ("plain, ünï".encode(), "plain, ünï"),
    ],
)
def test_user_comment_text(comment, text):
    from inference.parameters import decode_user_comment

    assert decode_user_comment(comment) == text
