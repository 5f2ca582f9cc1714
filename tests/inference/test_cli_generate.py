"""``impasto generate`` end to end on tiny models, plus bad-input handling."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inference.cli_generate import main
from inference.models import file_sha256
from inference.parameters import parse_parameters, read_png_parameters


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
    assert recipe["prompt"] == "a red cat" and recipe["negative_prompt"] == "blurry"
    assert recipe["steps"] == 3 and recipe["cfg"] == 5.5 and recipe["seed"] == 42
    assert recipe["sampler"] == "DPM++ 2M Karras"
    assert recipe["size"] == (96, 64)  # generated at the 8-multiple, resized to 100x64
    assert recipe["model_hash"] == file_sha256(tiny_single_file)[:10]
    assert recipe["model"] == "tiny-sd"
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
    assert parse_parameters(read_png_parameters(second))["seed"] == 2
    source = np.asarray(Image.open(image))
    result = np.asarray(Image.open(out))
    from inference.cropping import feathered_alpha

    far = feathered_alpha(mask, 2) == 0
    np.testing.assert_array_equal(result[far], source[far])
    assert parse_parameters(read_png_parameters(out))["mode"] == "inpaint"


def test_classic_engine_without_model(tmp_path, scene):
    image, mask_path, _ = scene
    out = tmp_path / "classic.png"
    assert (
        main(["--prompt", "", "--out", str(out), "--image", image, "--mask", mask_path, "--quiet"])
        == 0
    )
    assert parse_parameters(read_png_parameters(out))["model"] == "classic:telea"


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
