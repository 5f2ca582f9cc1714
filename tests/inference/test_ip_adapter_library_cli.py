"""IP-Adapters and their image encoders in the model library, and reference images from the
CLI (``--reference IMAGE --ip-adapter PATH[:WEIGHT] [--image-encoder PATH] [--style-only]``)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from inference.cli_generate import main
from inference.ip_adapter import pick_image_encoder
from inference.library import Base, ModelKind, inspect_path, scan_folders
from inference.parameters import parse_parameters, read_png_parameters


@pytest.fixture(scope="module")
def ip_files(tmp_path_factory):
    from tests.tiny_adapters import save_tiny_ip_adapter
    from tests.tiny_models import build_tiny_unet

    folder = tmp_path_factory.mktemp("ipcli") / "IP-Adapter" / "models"
    return save_tiny_ip_adapter(folder, build_tiny_unet())


def _picture(path, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(path)
    return path


def test_library_recognises_ip_adapters_and_image_encoders(ip_files, tmp_path):
    import torch
    from safetensors.torch import save_file

    entry = inspect_path(ip_files)
    assert entry.kind is ModelKind.IP_ADAPTER and entry.usable
    assert entry.base is Base.UNKNOWN  # the tiny model's 32-wide context is no real base
    encoder = inspect_path(ip_files.parent / "image_encoder")
    assert encoder.kind is ModelKind.IMAGE_ENCODER and encoder.usable
    # a real-width SD1.5 / SDXL adapter is paired with its base from the key projections
    for width, base in ((768, Base.SD1), (2048, Base.SDXL)):
        state = {
            "image_proj.proj.weight": torch.zeros(4 * width, 8),
            "image_proj.norm.weight": torch.zeros(width),
            "ip_adapter.1.to_k_ip.weight": torch.zeros(320, width),
            "ip_adapter.1.to_v_ip.weight": torch.zeros(320, width),
        }
        path = tmp_path / f"ip-adapter_{width}.safetensors"
        save_file(state, str(path))
        found = inspect_path(path)
        assert (found.kind, found.base) == (ModelKind.IP_ADAPTER, base)
        assert found.works_with(base) and not found.works_with(
            Base.SDXL if base is Base.SD1 else Base.SD1
        )
        assert "IP-Adapter" in found.summary()
    result = scan_folders([ip_files.parent.parent])
    kinds = {e.kind for e in result.entries}
    assert {ModelKind.IP_ADAPTER, ModelKind.IMAGE_ENCODER} <= kinds


def test_the_fitting_encoder_is_picked_for_a_lone_adapter(ip_files, tmp_path):
    from tests.tiny_adapters import save_tiny_image_encoder

    assert pick_image_encoder(ip_files, []) is None  # its own image_encoder/ is beside it
    lone = tmp_path / "lone" / ip_files.name
    lone.parent.mkdir()
    shutil.copy(ip_files, lone)
    wrong = tmp_path / "wrong"
    save_tiny_image_encoder(wrong)
    config = (
        (wrong / "config.json").read_text().replace('"projection_dim": 16', '"projection_dim": 24')
    )
    (wrong / "config.json").write_text(config)
    right = str(ip_files.parent / "image_encoder")
    assert pick_image_encoder(lone, [str(wrong), right]) == right
    assert pick_image_encoder(lone, [str(wrong)]) is None


def test_cli_reference_image_is_used_and_named(tmp_path, tiny_model_dir, ip_files):
    reference = _picture(tmp_path / "painting.png", 1)
    common = ["--prompt", "x", "--model", str(tiny_model_dir), "--steps", "3", "--seed", "5"]
    common += ["--width", "64", "--height", "64", "--device", "cpu", "--quiet"]
    plain_out, styled_out = tmp_path / "plain.png", tmp_path / "styled.png"
    assert main([*common, "--out", str(plain_out)]) == 0
    args = ["--reference", str(reference), "--ip-adapter", f"{ip_files}:0.8", "--style-only"]
    args += ["--image-encoder", str(ip_files.parent / "image_encoder")]
    assert main([*common, "--out", str(styled_out), *args]) == 0
    text = read_png_parameters(styled_out)
    assert text is not None and "IP-Adapter 0:" in text
    (unit,) = parse_parameters(text).references
    assert (unit.model, unit.weight, unit.style_only) == ("ip-adapter_tiny", 0.8, True)
    plain, styled = (np.asarray(Image.open(p).convert("RGB"), int) for p in (plain_out, styled_out))
    assert np.abs(plain - styled).mean() > 0.5


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--ip-adapter", "{ip}"], "need a --reference"),
        (["--reference", "{ref}"], "one --ip-adapter"),
        (["--reference", "{ref}", "--ip-adapter", "{ip}:heavy"], "bad IP-Adapter weight"),
        (["--reference", "{ref}", "--ip-adapter", "/nowhere/ip.safetensors"], "not found"),
        (["--reference", "{ref}", "--ip-adapter", "{ip}", "--image-encoder", "/no"], "encoder"),
        (["--reference", "/no/such.png", "--ip-adapter", "{ip}"], "reference image not found"),
        (["--reference", "{ref}", "--ip-adapter", "{ip}", "--server", "http://h:1"], "--server"),
    ],
)
def test_cli_bad_reference_arguments_say_one_line(
    tmp_path, tiny_model_dir, ip_files, capsys, extra, words
):
    reference = _picture(tmp_path / "ref.png", 2)
    extra = [a.format(ip=ip_files, ref=reference) for a in extra]
    args = ["--prompt", "x", "--model", str(tiny_model_dir), "--out", str(tmp_path / "o.png")]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
