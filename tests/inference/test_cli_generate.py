"""``impasto generate`` end to end on tiny models, plus bad-input handling."""

from __future__ import annotations

from pathlib import Path

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
    assert parse_parameters(read_png_parameters(out)).model == "classic:fill"


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


# ---- hardening ------------------------------------------------------------------------------


def _classic_args(scene, out) -> list[str]:
    image, mask_path, _ = scene
    return ["--prompt", "", "--out", str(out), "--image", image, "--mask", mask_path, "--quiet"]


def test_a_failed_write_keeps_the_result_and_says_where(tmp_path, scene, monkeypatch, capsys):
    """Disk full on --out: one line, exit 2, and the finished result is kept in the user cache
    (with its recipe), not lost."""
    import errno

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "out.png"
    real_replace = __import__("os").replace

    def disk_full(src, dst, *args, **kwargs):
        if str(dst) == str(out):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr("os.replace", disk_full)
    assert main(_classic_args(scene, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"cannot write {out}: No space left on device" in err[0]
    kept = Path(err[0].split("the result was kept in ")[1])
    assert kept.parent == tmp_path / "cache" / "impasto" / "unsaved"
    assert np.asarray(Image.open(kept)).shape == (64, 80, 3)
    assert parse_parameters(read_png_parameters(kept)).mode == "inpaint"
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # no temp left


def test_when_no_fallback_works_either_the_line_says_so(tmp_path, scene, monkeypatch, capsys):
    import errno

    def always_full(src, dst, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("os.replace", always_full)
    assert main(_classic_args(scene, tmp_path / "out.png")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not be kept anywhere else" in err[0]


def test_outputs_respect_the_umask(tmp_path, scene):
    """Written like any new file (0666 less the umask), not mkstemp's private 0600."""
    import subprocess
    import sys

    out = tmp_path / "out.png"
    code = (
        "import os, sys; os.umask(0o027); from app.main import main; sys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "generate", *_classic_args(scene, out)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_mode & 0o777 == 0o640


def test_exif_orientation_is_honoured(tmp_path, capsys):
    """A JPEG stored 80x64 with orientation 6 is shown 64x80: the mask is drawn on what is shown,
    and the result comes out upright."""
    rng = np.random.default_rng(3)
    stored = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(image, exif=exif.tobytes(), quality=95)
    mask = np.zeros((80, 64), np.uint8)
    mask[30:50, 20:40] = 255
    mask_path = _write(tmp_path / "mask.png", mask)
    out = tmp_path / "out.png"
    args = ["--prompt", "", "--out", str(out), "--image", str(image), "--mask", mask_path]
    assert main([*args, "--quiet"]) == 0
    result = np.asarray(Image.open(out))
    assert result.shape == (80, 64, 3)
    upright = np.asarray(Image.open(image).transpose(Image.Transpose.ROTATE_270))
    far = np.ones((80, 64), bool)
    far[20:60, 10:50] = False
    assert np.abs(result[far].astype(int) - upright[far].astype(int)).max() <= 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mask-blur", "100000"], "--mask-blur must be 0..512"),
        (["--mask-blur", "-3"], "--mask-blur must be 0..512"),
        (["--seed", str(2**40)], "--seed must be"),
        (["--cfg", "nan"], "--cfg must be a finite number"),
    ],
)
def test_numbers_out_of_range_are_refused(tmp_path, scene, capsys, extra, message):
    assert main([*_classic_args(scene, tmp_path / "o.png"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_previews_naming_an_existing_file_is_refused(tmp_path, scene, capsys):
    taken = tmp_path / "taken.txt"
    taken.write_text("keep me")
    assert main([*_classic_args(scene, tmp_path / "o.png"), "--previews", str(taken)]) == 2
    assert "--previews must name a folder" in capsys.readouterr().err
    assert taken.read_text() == "keep me"


@pytest.mark.parametrize("kind", ["folder", "long", "missing"])
def test_unwritable_out_is_refused_before_any_work(tmp_path, scene, capsys, kind):
    out = {
        "folder": tmp_path,
        "long": tmp_path / ("x" * 300 + ".png"),
        "missing": tmp_path / "nowhere" / "o.png",
    }[kind]
    assert main(_classic_args(scene, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("impasto generate: error: cannot write")


def test_images_over_the_pixel_limit_are_refused_from_their_header(tmp_path, scene, capsys):
    from tests.hostile_cli.generators import png_header_only

    _image, mask_path, _ = scene
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(30000, 30000))  # 900 MP declared in 60 bytes
    args = ["--prompt", "", "--out", str(tmp_path / "o.png"), "--image", str(bomb)]
    assert main([*args, "--mask", mask_path]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "too large to open safely" in err[0]


def test_classic_path_imports_neither_torch_nor_diffusers(tmp_path, scene):
    import subprocess
    import sys

    code = (
        "import sys; from app.main import main; code = main(sys.argv[1:]); "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules)); "
        "sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "generate", *_classic_args(scene, tmp_path / "o.png")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_pickle_lora_is_refused_before_the_base_model_loads(tmp_path, scene, monkeypatch, capsys):
    import inference.models

    def no_loading(*args, **kwargs):
        raise AssertionError("the base model was loaded before the pickle LoRA was refused")

    monkeypatch.setattr(inference.models, "load_model", no_loading)
    lora = tmp_path / "style.pt"
    lora.write_bytes(b"\x80\x04N.")
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"\0" * 16)
    args = [*_classic_args(scene, tmp_path / "o.png"), "--model", str(model), "--lora", str(lora)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "style.pt is a pickle" in err[0]
