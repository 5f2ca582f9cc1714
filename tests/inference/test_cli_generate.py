"""``impasto generate`` end to end on tiny models, plus bad-input handling."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inference.cli_generate import main
from inference.models import file_sha256
from inference.parameters import parse_parameters, read_png_parameters
from inference.recipe import LoraUse


def _write(path, array):
    Image.fromarray(array).save(path)
    return str(path)


@pytest.fixture
def scene(tmp_path):
    rng = np.random.default_rng(0)
    image = _write(tmp_path / "in.png", rng.integers(0, 256, (64, 80, 3), dtype=np.uint8))
    mask = np.zeros((64, 80), np.uint8)
    mask[20:40, 30:50] = 255
    return image, _write(tmp_path / "mask.png", mask), mask


def test_txt2img_writes_png_whose_parameters_parse_back(tmp_path, tiny_single_file, capsys):
    out = tmp_path / "out.png"
    previews = tmp_path / "previews"
    code = main(
        [
            "--prompt",
            "a red cat",
            "--negative",
            "blurry",
            "--out",
            str(out),
            "--model",
            str(tiny_single_file),
            "--steps",
            "3",
            "--cfg",
            "5.5",
            "--seed",
            "42",
            "--sampler",
            "dpm++2m",
            "--width",
            "100",
            "--height",
            "64",
            "--previews",
            str(previews),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    with Image.open(out) as image:
        assert image.size == (100, 64)
    recipe = parse_parameters(read_png_parameters(out))
    assert recipe.prompt == "a red cat" and recipe.negative_prompt == "blurry"
    assert recipe.steps == 3 and recipe.guidance == 5.5 and recipe.seed == 42
    assert recipe.sampler == "DPM++ 2M Karras"
    assert recipe.size == (96, 64)  # generated at the 8-multiple, resized to 100x64
    assert recipe.model_hash == file_sha256(tiny_single_file)[:10]
    assert recipe.model == "tiny-sd"
    assert sorted(p.name for p in previews.iterdir()) == [f"step_00{i}.png" for i in (1, 2, 3)]
    assert "3/3" in capsys.readouterr().out


def test_inpaint_with_batch_keeps_unmasked_pixels(tmp_path, scene, tiny_model_dir):
    image, mask_path, mask = scene
    out = tmp_path / "inpainted.png"
    code = main(
        [
            "--prompt",
            "x",
            "--out",
            str(out),
            "--image",
            image,
            "--mask",
            mask_path,
            "--model",
            str(tiny_model_dir),
            "--steps",
            "2",
            "--seed",
            "1",
            "--batch",
            "2",
            "--padding",
            "8",
            "--mask-blur",
            "2",
            "--quiet",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    second = tmp_path / "inpainted-2.png"
    assert out.is_file() and second.is_file()
    assert parse_parameters(read_png_parameters(second)).seed == 2
    source = np.asarray(Image.open(image))
    result = np.asarray(Image.open(out))
    from inference.cropping import feathered_alpha

    far = feathered_alpha(mask, 2) == 0
    np.testing.assert_array_equal(result[far], source[far])
    assert parse_parameters(read_png_parameters(out)).mode == "inpaint"


def test_classic_engine_without_model(tmp_path, scene):
    image, mask_path, _ = scene
    out = tmp_path / "classic.png"
    assert (
        main(["--prompt", "", "--out", str(out), "--image", image, "--mask", mask_path, "--quiet"])
        == 0
    )
    assert parse_parameters(read_png_parameters(out)).model == "classic:telea"


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--image", "missing.png", "--model", "M"], "image not found"),
        (["--image", "IMAGE", "--mask", "SMALL", "--model", "M"], "mask is 10x10"),
        (["--sampler", "heun++", "--model", "M"], "unknown sampler"),
        (["--image", "IMAGE", "--mask", "BROKEN", "--model", "M"], "cannot read mask"),
        (["--model", "nowhere/model.safetensors"], "model not found"),
        (["--steps", "many", "--model", "M"], "invalid int value"),
        ([], "only inpainting"),
        (["--model", "M", "--steps", "0"], "steps must be"),
        (["--model", "M", "--control", "IMAGE"], "--controlnet"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, scene, tiny_model_dir, capsys, args, message):
    image, _, _ = scene
    small = _write(tmp_path / "small.png", np.zeros((10, 10), np.uint8))
    broken = tmp_path / "broken.png"
    broken.write_text("not a png")
    names = {"IMAGE": image, "SMALL": small, "BROKEN": str(broken), "M": str(tiny_model_dir)}
    args = [names.get(a, a) for a in args]
    code = main(["--prompt", "x", "--out", str(tmp_path / "o.png"), "--quiet", *args])
    assert code == 2
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "o.png").exists()


def test_missing_prompt_exits_2(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "o.png")]) == 2
    assert "--prompt" in _one_error_line(capsys)


def test_pickle_model_exits_2(tmp_path, capsys):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"x")
    assert (
        main(
            [
                "--prompt",
                "x",
                "--out",
                str(tmp_path / "o.png"),
                "--model",
                str(ckpt),
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 2
    )
    assert "pickle" in capsys.readouterr().err


# ---- --lora PATH[:WEIGHT] -------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_file(tmp_path_factory):
    from tests.tiny_loras import save_kohya_lora, tiny_lora_factors

    folder = tmp_path_factory.mktemp("loras")
    return save_kohya_lora(folder / "ink-style.safetensors", tiny_lora_factors(seed=0, rank=4))


def _txt2img(out, model, *extra):
    args = ["--prompt", "a red cat", "--out", str(out), "--model", str(model)]
    args += ["--steps", "2", "--seed", "7", "--width", "64", "--height", "64"]
    return main([*args, "--quiet", "--device", "cpu", *extra])


def test_lora_changes_the_image_and_is_recorded(tmp_path, tiny_model_dir, lora_file):
    from inference.loras import lora_hash

    pytest.importorskip("peft")
    plain, styled, zero = tmp_path / "plain.png", tmp_path / "styled.png", tmp_path / "zero.png"
    assert _txt2img(plain, tiny_model_dir) == 0
    assert _txt2img(styled, tiny_model_dir, "--lora", f"{lora_file}:0.8") == 0
    assert _txt2img(zero, tiny_model_dir, "--lora", f"{lora_file}:0") == 0
    pixels = {p.stem: np.asarray(Image.open(p)) for p in (plain, styled, zero)}
    assert not np.array_equal(pixels["styled"], pixels["plain"])
    np.testing.assert_array_equal(pixels["zero"], pixels["plain"])  # weight 0 = no LoRA
    text = read_png_parameters(styled)
    assert text.splitlines()[0] == "a red cat <lora:ink-style:0.8>"
    recipe = parse_parameters(text)
    assert recipe.prompt == "a red cat"
    assert recipe.loras == (LoraUse("ink-style", 0.8, lora_hash(lora_file)),)
    assert f'Lora hashes: "ink-style: {lora_hash(lora_file)}"' in text
    assert parse_parameters(read_png_parameters(plain)).loras == ()


def test_lora_weight_defaults_to_one_and_repeats(tmp_path, tiny_model_dir, lora_file):
    from tests.tiny_loras import save_kohya_lora, tiny_lora_factors

    pytest.importorskip("peft")
    second = save_kohya_lora(tmp_path / "detail.safetensors", tiny_lora_factors(seed=5, rank=2))
    out = tmp_path / "two.png"
    assert _txt2img(out, tiny_model_dir, "--lora", str(lora_file), "--lora", f"{second}:-0.5") == 0
    recipe = parse_parameters(read_png_parameters(out))
    assert [(e.name, e.weight) for e in recipe.loras] == [
        ("ink-style", 1.0),
        ("detail", -0.5),
    ]


def test_parse_lora_argument():
    from inference.cli_generate import parse_lora_argument

    assert parse_lora_argument("a/b.safetensors") == ("a/b.safetensors", 1.0)
    assert parse_lora_argument("a/b.safetensors:0.25") == ("a/b.safetensors", 0.25)
    assert parse_lora_argument("C:/loras/b.safetensors:-1") == ("C:/loras/b.safetensors", -1.0)
    assert parse_lora_argument("C:/loras/b.safetensors") == ("C:/loras/b.safetensors", 1.0)


@pytest.mark.parametrize(
    "lora, message",
    [
        ("missing.safetensors", "LoRA not found: missing.safetensors"),
        ("missing.safetensors:0.5", "LoRA not found: missing.safetensors"),
        ("LORA:strong", "bad LoRA weight 'strong'"),
        ("LORA:", "bad LoRA weight ''"),
        ("LORA:nan", "must be a finite number"),
        ("LORA:1e999", "must be a finite number"),
        ("FOLDER", "without pytorch_lora_weights.safetensors"),
        ("FOLDER:0.5", "without pytorch_lora_weights.safetensors"),
    ],
)
def test_bad_lora_exits_2_with_one_line(tmp_path, tiny_model_dir, lora_file, capsys, lora, message):
    folder = tmp_path / "not-a-lora"
    folder.mkdir()
    lora = lora.replace("LORA", str(lora_file)).replace("FOLDER", str(folder))
    out = tmp_path / "o.png"
    assert _txt2img(out, tiny_model_dir, "--lora", lora) == 2
    assert message in _one_error_line(capsys)
    assert not out.exists()


def test_lora_needs_a_diffusion_model(tmp_path, scene, lora_file, capsys):
    image, mask_path, _ = scene
    out = tmp_path / "o.png"
    args = ["--prompt", "x", "--out", str(out), "--image", image, "--mask", mask_path]
    assert main([*args, "--lora", str(lora_file), "--quiet"]) == 2
    assert "--lora needs a diffusion --model" in _one_error_line(capsys)
    assert not out.exists()


def test_a_file_that_is_not_a_lora_exits_2(tmp_path, tiny_model_dir, capsys):
    pytest.importorskip("peft")
    fake = tmp_path / "notes.safetensors"
    fake.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    out = tmp_path / "o.png"
    assert _txt2img(out, tiny_model_dir, "--lora", str(fake)) == 2
    assert "notes.safetensors" in _one_error_line(capsys)
    assert not out.exists()
