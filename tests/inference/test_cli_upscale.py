"""``impasto upscale``: outputs, recipes in the PNG, bad input as one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference.cli_upscale import main
from inference.parameters import parse_parameters
from tests.markers import needs_spandrel


def gradient_png(path: Path, width: int = 40, height: int = 30, alpha: bool = False) -> Path:
    x = np.linspace(30, 220, width)[None, :].repeat(height, 0)
    y = np.linspace(30, 220, height)[:, None].repeat(width, 1)
    channels = [x, y, (x + y) / 2] + ([x[::-1]] if alpha else [])
    Image.fromarray(np.rint(np.stack(channels, -1)).astype(np.uint8)).save(path)
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def test_lanczos_upscale_writes_the_bigger_png_with_its_recipe(tmp_path, capsys):
    source = gradient_png(tmp_path / "in.png", alpha=True)
    out = tmp_path / "out.png"
    assert main([str(source), "--out", str(out), "--scale", "1.5", "--seed", "3"]) == 0
    with Image.open(out) as image:
        assert image.size == (60, 45) and image.mode == "RGBA"  # transparency kept
        recipe = parse_parameters(image.text["parameters"])
    assert dict(recipe.extra)["Upscale"] == "1.5" and dict(recipe.extra)["Upscaler"] == "Lanczos"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


@needs_spandrel
def test_upscale_with_a_model_file_and_refine_with_a_model(tmp_path, capsys, tiny_model_dir):
    from tests.tiny_upscalers import save_tiny_esrgan

    esrgan = save_tiny_esrgan(tmp_path / "2x_tiny.safetensors", scale=2)
    source = gradient_png(tmp_path / "in.png", 48, 32)
    out = tmp_path / "big.png"
    args = [str(source), "--out", str(out), "--upscaler", str(esrgan), "--quiet"]
    refine = ["--model", str(tiny_model_dir), "--prompt", "a cat", "--steps", "4"]
    refine += ["--strength", "0.3", "--tile", "64", "--overlap", "16", "--seed", "8"]
    assert main([*args, *refine]) == 0
    with Image.open(out) as image:
        assert image.size == (96, 64)
        recipe = parse_parameters(image.text["parameters"])
    labels = dict(recipe.extra)
    assert labels["Upscaler"] == "2x_tiny.safetensors" and labels["Tile size"] == "64"
    assert recipe.prompt == "a cat" and recipe.seed == 8 and recipe.strength == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--scale", "4"], "makes 160x120 (0.0192 MP), above the 0.01 MP pixel limit"),
        (["--scale", "0"], "the upscale factor must be 1..8"),
        (["--prompt", "cat"], "--prompt needs --model"),
        (["--upscaler", "missing.safetensors"], "upscaler not found"),
        (["--model", "/no/such/model"], "model not found"),
        (["--model", "{tmp}", "--tile", "100"], "multiple of 8"),
        (["--scale", "1"], "changes nothing"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, monkeypatch, extra, expected):
    monkeypatch.setattr("inference.cli_upscale.DEFAULT_PIXEL_LIMIT", 10_000)
    source = gradient_png(tmp_path / "in.png")
    out = tmp_path / "out.png"
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    assert main([str(source), "--out", str(out), *args]) == 2
    assert expected in one_error_line(capsys)
    assert not out.exists()


@needs_spandrel
def test_an_upscaler_of_unknown_architecture_or_a_pickle_is_one_line(tmp_path, capsys):
    import torch
    from safetensors.torch import save_file

    from tests.tiny_upscalers import save_tiny_esrgan

    source = gradient_png(tmp_path / "in.png")
    out = tmp_path / "out.png"
    out.write_bytes(b"old")
    mystery = tmp_path / "mystery.safetensors"
    save_file({"w": torch.zeros(2, 2)}, str(mystery))
    assert main([str(source), "--out", str(out), "--upscaler", str(mystery)]) == 2
    assert "not a super-resolution model of a known architecture" in one_error_line(capsys)
    pickled = save_tiny_esrgan(tmp_path / "x2.pth", scale=2)
    assert main([str(source), "--out", str(out), "--upscaler", str(pickled)]) == 2
    assert "pickle" in one_error_line(capsys)
    assert out.read_bytes() == b"old"  # the old output is untouched
    assert main([str(source), "--out", str(out), "--upscaler", str(pickled), "--allow-pickle"]) == 0
    with Image.open(out) as image:
        assert image.size == (80, 60)


def test_the_impasto_command_dispatches_upscale(tmp_path):
    source = gradient_png(tmp_path / "in.png")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.main",
            "upscale",
            str(source),
            "--out",
            str(tmp_path / "o.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "o.png").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "app.main", "upscale", str(tmp_path / "nope.png"), "--out", "x.png"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"impasto upscale: error: image not found: {tmp_path / 'nope.png'}"
    ]
