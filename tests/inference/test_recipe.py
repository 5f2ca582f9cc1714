"""The Recipe: one value, its JSON (old projects' dicts included) and its A1111 text round trip."""

from __future__ import annotations

import json
import string
from dataclasses import fields, replace

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from inference.api import ResizeMode
from inference.parameters import _LABELS, format_parameters, parse_parameters
from inference.recipe import ControlUnit, LoraUse, Recipe

# ---- strategies --------------------------------------------------------------------------------

_TEXT_CHARS = st.one_of(
    st.sampled_from(list(string.ascii_letters + string.digits + " ,:;\"'()[]{}<>\\/=+-_.!?#\t\n")),
    st.characters(codec="utf-8", exclude_categories=("Cs",)),  # any unicode, incl. controls
)
_KNOWN_LABELS = {label for _, label in _LABELS} | {"Lora hashes", "Negative prompt"}


def _no_ambiguity(text: str) -> bool:
    """What the format itself cannot tell apart (see inference.parameters)."""
    return "<lora:" not in text.lower() and not any(
        line.startswith("Negative prompt:") for line in text.split("\n")
    )


prompts = st.text(_TEXT_CHARS, max_size=60).filter(_no_ambiguity)
values = st.text(_TEXT_CHARS, max_size=20)
names = (
    st.text(st.sampled_from(list(string.ascii_letters + string.digits + " _-.()[]é猫")), min_size=1)
    .map(str.strip)
    .filter(bool)
)
labels = (
    st.text(st.sampled_from(list(string.ascii_letters + string.digits + " _-./+()")), min_size=1)
    .map(lambda s: " ".join(s.split()))
    .filter(lambda s: s and s not in _KNOWN_LABELS and not s.startswith("ControlNet"))
)
numbers = st.floats(-30, 30, allow_nan=False, allow_infinity=False)
fractions = st.floats(0, 1, allow_nan=False)
optional = st.none().__or__
loras = st.lists(
    st.builds(
        LoraUse,
        name=names,
        weight=numbers,
        hash=optional(st.text(st.sampled_from("0123456789abcdef"), min_size=10, max_size=12)),
    ),
    max_size=3,
    unique_by=lambda lora: lora.name,
).map(tuple)
units = st.lists(
    st.builds(
        ControlUnit,
        control_type=values,
        model=values,
        weight=numbers,
        start=fractions,
        end=fractions,
        resize_mode=st.sampled_from(list(ResizeMode)),
        control_mode=st.sampled_from(
            ["Balanced", "My prompt is more important", "ControlNet is more important"]
        ),
        pixel_perfect=st.booleans(),
        low_vram=st.booleans(),
        extra=st.lists(
            st.tuples(
                labels.filter(lambda s: s not in {"Module", "Weight", "Resize Mode"}), values
            ),
            max_size=2,
        ).map(tuple),
    ),
    max_size=3,
).map(tuple)
recipes = st.builds(
    Recipe,
    prompt=prompts,
    negative_prompt=values,
    steps=optional(st.integers(1, 200)),
    sampler=optional(values),
    guidance=optional(numbers),
    seed=optional(st.integers(0, 2**64)),
    size=optional(st.tuples(st.integers(8, 4096), st.integers(8, 4096))),
    model=optional(values),
    model_hash=optional(values),
    vae=optional(values),
    strength=optional(fractions),
    mode=optional(st.sampled_from(["txt2img", "img2img", "inpaint"])),
    mask_blur=optional(st.integers(0, 64)),
    padding=optional(st.integers(0, 256)),
    loras=loras,
    controls=units,
    crop_box=optional(st.tuples(*[st.integers(0, 8192)] * 4)),
    batch_index=optional(st.integers(0, 8)),
    extra=st.lists(st.tuples(labels, values), max_size=4).map(tuple),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recipes)
@example(Recipe(extra=(("0", ""),)))  # a settings line of one unknown label, under no prompt
@example(Recipe(prompt="a: b", extra=(("Clip skip", "2"),)))
def test_text_round_trip(recipe):
    assert parse_parameters(format_parameters(recipe)) == recipe


@settings(max_examples=60, deadline=None)
@given(recipes)
def test_json_round_trip(recipe):
    data = json.loads(json.dumps(recipe.to_json()))
    assert Recipe.from_json(data) == recipe


def test_attachments_stay_out_of_the_text():
    recipe = Recipe(
        prompt="a dancer",
        seed=1,
        workflow="Inpaint",
        mask="TUFTSw==",
        model_path="/models/sd15.safetensors",
        loras=(LoraUse("ink", 0.5, "abc", "/loras/ink.safetensors"),),
        controls=(ControlUnit("openpose", "cn-pose", model_path="/cn/pose", image="SU1BR0U="),),
    )
    text = format_parameters(recipe)
    assert "TUFTSw==" not in text and "SU1BR0U=" not in text and "/models" not in text
    assert parse_parameters(text) == recipe.portable()
    assert Recipe.from_json(recipe.to_json()) == recipe  # the .ora keeps them


# ---- sd-webui-controlnet: real infotext strings -------------------------------------------------

# written by A1111 1.6 with sd-webui-controlnet 1.1.4xx (as published alongside generated images)
REAL_CONTROLNET_TEXT = (
    "1girl, solo, <lora:JapaneseDollLikeness_v15:1>\n"
    "Negative prompt: disfigured, ugly\n"
    "Steps: 35, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 4219467701, Size: 1024x683, "
    "Model hash: 59ffe2243a, Model: Chilloutmix-Ni-pruned-fp16-fix, Denoising strength: 0.75, "
    'ControlNet 0: "Module: dw_openpose_full, Model: control_v11p_sd15_openpose [cab727d4], '
    "Weight: 1, Resize Mode: Crop and Resize, Low Vram: False, Processor Res: 512, "
    "Guidance Start: 0, Guidance End: 1, Pixel Perfect: True, Control Mode: Balanced, "
    'Save Detected Map: True", ControlNet 1: "Module: canny, Model: control_canny-fp16 '
    "[e3fe7712], Weight: 0.25, Resize Mode: Just Resize, Low Vram: False, Processor Res: 512, "
    "Threshold A: 100, Threshold B: 200, Guidance Start: 0, Guidance End: 0.77, Pixel Perfect: "
    'False, Control Mode: My prompt is more important", Lora hashes: '
    '"JapaneseDollLikeness_v15: 50b3f6a2ecf7", Clip skip: 2, ENSD: 31337, Version: v1.6.1'
)


def test_parses_sd_webui_controlnet_units():
    recipe = parse_parameters(REAL_CONTROLNET_TEXT)
    assert recipe.prompt == "1girl, solo,"
    assert recipe.loras == (LoraUse("JapaneseDollLikeness_v15", 1.0, "50b3f6a2ecf7"),)
    assert (recipe.steps, recipe.guidance, recipe.seed, recipe.size) == (
        35,
        7.0,
        4219467701,
        (1024, 683),
    )
    pose, canny = recipe.controls
    assert (pose.control_type, pose.model) == (
        "dw_openpose_full",
        "control_v11p_sd15_openpose [cab727d4]",
    )
    assert (pose.weight, pose.start, pose.end) == (1.0, 0.0, 1.0)
    assert pose.resize_mode is ResizeMode.CROP_AND_RESIZE and pose.pixel_perfect
    assert pose.control_mode == "Balanced"
    assert pose.extra == (("Processor Res", "512"), ("Save Detected Map", "True"))
    assert canny.resize_mode is ResizeMode.JUST_RESIZE and canny.end == 0.77
    assert canny.control_mode == "My prompt is more important"
    assert ("Threshold A", "100") in canny.extra
    assert recipe.extra == (("Clip skip", "2"), ("ENSD", "31337"), ("Version", "v1.6.1"))


def test_units_are_written_as_the_extension_writes_them():
    unit = ControlUnit("openpose", "control_v11p_sd15_openpose [cab727d4]", 1.0, 0.0, 1.0)
    text = format_parameters(Recipe(prompt="a dancer", steps=20, controls=(unit,)))
    assert text.endswith(
        'ControlNet 0: "Module: openpose, Model: control_v11p_sd15_openpose [cab727d4], '
        "Weight: 1, Resize Mode: Crop and Resize, Low Vram: False, Guidance Start: 0, "
        'Guidance End: 1, Pixel Perfect: False, Control Mode: Balanced"'
    )
    # the extension's own parser: split at ",", then at ": " (scripts/infotext.py parse_unit)
    inner = json.loads(text.split("ControlNet 0: ", 1)[1])
    fields = dict(item.strip().split(": ") for item in inner.split(","))
    assert fields["Resize Mode"] == "Crop and Resize" and fields["Guidance End"] == "1"


def test_unknown_labels_survive_a_round_trip_through_our_text():
    again = parse_parameters(format_parameters(parse_parameters(REAL_CONTROLNET_TEXT)))
    assert again == parse_parameters(REAL_CONTROLNET_TEXT)


# ---- old projects' recipe dicts --------------------------------------------------------------


def test_legacy_app_shaped_dict_loads():
    """What app/jobs.py stored on result layers before the Recipe (guidance from the app, the
    engine's own keys renamed engine_*)."""
    legacy = {
        "workflow": "Inpaint",
        "mode": "inpaint",
        "prompt": "a cat",
        "negative_prompt": "blurry",
        "model": "tiny-sd",
        "model_path": "/m/tiny.safetensors",
        "model_hash": "abcdef1234",
        "vae_path": None,
        "sampler": "Euler a",
        "steps": 4,
        "guidance": 6.5,
        "strength": 0.9,
        "seed": 4242,
        "batch_size": 1,
        "crop_box": [10, 20, 36, 32],
        "padding": 32,
        "mask_blur": 4,
        "resolution": "Model native (fast)",
        "native_size": 512,
        "mask": "TUFTSw==",
        "controls": [
            {
                "type": "openpose",
                "model": "cn-pose",
                "model_path": "/cn/cn-pose",
                "weight": 0.8,
                "start": 0.0,
                "end": 1.0,
                "resize_mode": "crop and resize",
                "image": "SU1H",
            }
        ],
        "engine_cfg": 6.5,
        "engine_size": [512, 448],
        "engine_seeds": [4242],
        "engine_output_size": [36, 32],
        "engine_color_match": False,
        "batch_index": 0,
        "target_box": [10, 20, 36, 32],
        "loras": [{"name": "ink", "weight": 0.8, "hash": "12ab", "path": "/l/ink.safetensors"}],
        "lora_tags": "<lora:ink:0.8>",
        "lora_hashes": "ink: 12ab",
    }
    recipe = Recipe.from_json(legacy)
    assert recipe.guidance == 6.5 and recipe.size == (512, 448)
    assert recipe.crop_box == (10, 20, 36, 32) and recipe.mask == "TUFTSw=="
    assert recipe.loras == (LoraUse("ink", 0.8, "12ab", "/l/ink.safetensors"),)
    (unit,) = recipe.controls
    assert unit.model == "cn-pose" and unit.image == "SU1H" and unit.weight == 0.8
    text = format_parameters(legacy)
    assert "CFG scale: 6.5" in text and "Size: 512x448" in text


def test_legacy_engine_shaped_and_parsed_dicts_load():
    engine = {"prompt": "x", "cfg": 7, "size": (512, 512), "seeds": [1, 2], "steps": "20"}
    assert Recipe.from_json(engine) == Recipe(prompt="x", guidance=7.0, size=(512, 512), steps=20)
    parsed = {"prompt": "y", "seed": 5, "Clip skip": "2", "Version": "v1"}
    assert Recipe.from_json(parsed).extra == (("Clip skip", "2"), ("Version", "v1"))


def test_bad_values_are_left_out_not_raised():
    recipe = Recipe.from_json(
        {
            "prompt": 5,
            "steps": "many",
            "guidance": float("nan"),
            "size": [1],
            "loras": [{"weight": 1}, "x", ["/l/a.safetensors", "heavy"]],
            "controls": "none",
            "crop_box": ["a", 1, 2, 3],
        }
    )
    assert recipe == Recipe()
    assert Recipe.from_json(None) == Recipe() and Recipe.from_json([1, 2]) == Recipe()


def test_an_array_control_image_from_an_old_project_becomes_png_text():
    from inference.recipe import read_image_text

    image = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3)
    recipe = Recipe.from_json({"controls": [{"type": "canny", "image": image}]})
    assert recipe.controls[0].image == read_image_text(image)
    assert isinstance(recipe.controls[0].image, str)


@settings(max_examples=200, deadline=None)
@given(st.text(_TEXT_CHARS, max_size=200))
def test_any_text_parses_without_raising(text):
    recipe = parse_parameters(text)
    assert isinstance(recipe, Recipe)
    assert parse_parameters(format_parameters(recipe)).extra == recipe.extra


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([f.name for f in fields(Recipe)] + ["cfg"]), json_values))
def test_any_stored_dict_loads_without_raising(data):
    recipe = Recipe.from_json(data)
    assert Recipe.from_json(recipe.to_json()) == recipe


def test_a_recipe_keeps_only_the_settings_its_mode_uses():
    full = Recipe(strength=0.75, mask_blur=4, padding=32)
    assert replace(full, mode="txt2img").for_mode() == Recipe(mode="txt2img")
    assert replace(full, mode="img2img").for_mode() == Recipe(mode="img2img", strength=0.75)
    assert replace(full, mode="inpaint").for_mode() == replace(full, mode="inpaint")


# ---- what A1111 and sd-webui-controlnet read from our text -------------------------------------

plain_values = st.text(
    st.sampled_from(list(string.ascii_letters + string.digits + " _-.[]()+")), min_size=1
).map(str.strip)


@settings(max_examples=150, deadline=None)
@given(
    recipes,
    st.integers(1, 200),
    plain_values.filter(bool),
    st.integers(0, 2**32),
    # sd-webui-controlnet's format has no empty value ("Model: " does not split at ": ")
    st.lists(
        st.builds(
            ControlUnit, control_type=plain_values.filter(bool), model=plain_values.filter(bool)
        ),
        max_size=2,
    ),
)
def test_a1111_reads_the_settings_we_write(recipe, steps, sampler, seed, units):
    from tests.a1111 import a1111_parse, controlnet_parse_unit

    recipe = replace(recipe, steps=steps, sampler=sampler, seed=seed, controls=tuple(units))
    read = a1111_parse(format_parameters(recipe))
    assert (read["Steps"], read["Sampler"], read["Seed"]) == (str(steps), sampler, str(seed))
    if recipe.guidance is not None:
        assert float(read["CFG scale"]) == recipe.guidance
    if recipe.size is not None:
        assert (int(read["Size-1"]), int(read["Size-2"])) == recipe.size
    for name, label in (("model", "Model"), ("model_hash", "Model hash"), ("vae", "VAE")):
        if getattr(recipe, name) is not None:
            assert read[label] == getattr(recipe, name), label
    for index, unit in enumerate(units):
        fields = controlnet_parse_unit(read[f"ControlNet {index}"])
        assert (fields["module"], fields["model"]) == (unit.control_type, unit.model)
        assert float(fields["weight"]) == unit.weight
        assert fields["resize_mode"] == "Crop and Resize"
        assert (float(fields["guidance_start"]), float(fields["guidance_end"])) == (0, 1)
        assert fields["control_mode"] == "Balanced" and fields["pixel_perfect"] == "False"


def test_completing_keeps_what_the_app_leaves_unset():
    engine = Recipe(prompt="a", guidance=7.0, size=(64, 64), loras=(LoraUse("ink", 0.5),))
    done = engine.completed(guidance=None, loras=(), workflow="Inpaint", seed=3)
    assert done == replace(engine, workflow="Inpaint", seed=3)
