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
