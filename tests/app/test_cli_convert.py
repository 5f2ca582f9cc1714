"""``impasto convert IN OUT`` between .ora, .psd and flattened images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from psd_tools import PSDImage

from app.cli_convert import main
from app.io.layer_data import flatten
from app.io.ora import open_ora, save_ora
from app.main import main as impasto
from inference.parameters import parse_parameters
from tests.app.io_samples import assert_same_layers, every_kind_document


@pytest.fixture
def project(tmp_path):
    path = tmp_path / "in.ora"
    save_ora(every_kind_document(), path)
    return path


def test_ora_to_psd_and_back(project, tmp_path, capsys):
    assert impasto(["convert", str(project), str(tmp_path / "out.psd")]) == 0
    assert "out.psd" in capsys.readouterr().out
    psd = PSDImage.open(tmp_path / "out.psd")
    assert [layer.name for layer in psd] == [layer.name for layer in open_ora(project).layers]
    assert main([str(tmp_path / "out.psd"), str(tmp_path / "again.ora")]) == 0
    back = open_ora(tmp_path / "again.ora")
    assert back.layers[0].name == "Background"
    assert np.array_equal(back.layers[0].raster.data, every_kind_document().layers[0].raster.data)


def test_ora_to_ora_keeps_everything(project, tmp_path):
    assert main([str(project), str(tmp_path / "copy.ora")]) == 0
    assert_same_layers(every_kind_document(), open_ora(tmp_path / "copy.ora"))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_ora_to_flat_with_parameters(project, tmp_path, suffix):
    out = tmp_path / f"flat{suffix}"
    assert main([str(project), str(out)]) == 0
    doc = every_kind_document()
    with Image.open(out) as image:
        assert image.size == (doc.width, doc.height)
        if suffix == ".png":
            assert np.array_equal(np.asarray(image), flatten(doc.layers, doc.rect))
            assert parse_parameters(image.text["parameters"]).seed == 1234567890123


def test_image_to_ora(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (6, 9, 4), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    assert main([str(tmp_path / "in.png"), str(tmp_path / "out.ora")]) == 0
    assert np.array_equal(open_ora(tmp_path / "out.ora").layers[0].raster.data, pixels)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_input_exits_2_with_one_line(tmp_path, capsys, project):
    assert main([str(tmp_path / "missing.ora"), str(tmp_path / "x.png")]) == 2
    assert "not found" in one_error_line(capsys)
    (tmp_path / "broken.ora").write_bytes(b"PK\x03\x04junk")
    assert main([str(tmp_path / "broken.ora"), str(tmp_path / "x.png")]) == 2
    assert "broken.ora" in one_error_line(capsys)
    assert main([str(project), str(tmp_path / "x.gif")]) == 2
    assert ".gif" in one_error_line(capsys)
    assert main([str(project)]) == 2
    assert "usage" in one_error_line(capsys)
    assert main([str(project), str(project)]) == 2
    assert "exists" in one_error_line(capsys)
    assert not (tmp_path / "x.png").exists()


def test_force_overwrites(project, tmp_path):
    out = tmp_path / "o.png"
    out.write_bytes(b"old")
    assert main([str(project), str(out)]) == 2
    assert main([str(project), str(out), "--force"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


A1111_TEXT = (
    "a lighthouse at dusk, ✓\nNegative prompt: blurry\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 16x12"
)


def test_png_recipe_is_carried_to_jpeg_webp_png_and_through_ora(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    source = tmp_path / "a1111.png"
    info = PngInfo()
    info.add_text("parameters", A1111_TEXT)
    Image.new("RGB", (16, 12), (10, 20, 30)).save(source, pnginfo=info)
    for suffix in (".jpg", ".webp", ".png"):
        out = tmp_path / f"out{suffix}"
        assert main([str(source), str(out)]) == 0
        from app.files import open_document

        carried = open_document(out).layers[0].extra["parameters"]
        assert carried == A1111_TEXT, suffix
        assert parse_parameters(carried).seed == 42
    assert main([str(source), str(tmp_path / "p.ora")]) == 0
    assert main([str(tmp_path / "p.ora"), str(tmp_path / "again.png")]) == 0
    with Image.open(tmp_path / "again.png") as image:
        assert image.text["parameters"] == A1111_TEXT


def test_a_picture_without_text_exports_without_text(tmp_path):
    source = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(source)
    assert main([str(source), str(tmp_path / "out.png")]) == 0
    with Image.open(tmp_path / "out.png") as image:
        assert "parameters" not in image.text


def test_verbose_shows_log_lines_and_quiet_hides_them(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from tests.hostile.builders import impasto_ora

    repo = Path(__file__).resolve().parents[2]
    source = tmp_path / "odd.ora"
    source.write_bytes(impasto_ora([{"meta": {"extra": {"ora_attrs": {"a b": "x"}}}}]))

    def run(*flags):
        out = tmp_path / f"out{len(flags)}.ora"
        args = [sys.executable, "-m", "app.main", *flags, "convert", str(source), str(out)]
        return subprocess.run(args, cwd=repo, capture_output=True, timeout=120)

    quiet, verbose = run(), run("--verbose")
    assert quiet.returncode == verbose.returncode == 0
    assert quiet.stderr == b""
    assert b"dropping the attribute" in verbose.stderr


def test_a_bug_in_a_command_is_one_line_not_a_traceback(monkeypatch, capsys):
    import inference.cli_upscale

    def broken(_argv):
        raise RuntimeError("cannot reshape tensor of 0 elements")

    monkeypatch.setattr(inference.cli_upscale, "main", broken)
    assert impasto(["upscale", "x.png", "--out", "y.png"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "impasto upscale: internal error: RuntimeError: cannot reshape tensor of 0 elements "
        "(run again with --verbose for the traceback)"
    )
