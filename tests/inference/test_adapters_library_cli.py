"""T2I-Adapters are recognised from their files: by the model library and by the CLI, and named in
the recipe and the A1111 text."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from inference.adapters import is_adapter
from inference.cli_generate import main
from inference.library import Base, ModelKind, inspect_path
from inference.parameters import parse_parameters, read_png_parameters


def test_library_recognises_adapter_folders_and_their_base(tmp_path):
    from tests.tiny_adapters import save_tiny_adapter

    sd1 = save_tiny_adapter(tmp_path / "t2iadapter_canny_sd15v2")
    xl = save_tiny_adapter(tmp_path / "t2i-adapter-lineart-sdxl-1.0", sdxl=True)
    entry, xl_entry = inspect_path(sd1), inspect_path(xl)
    assert (entry.kind, entry.base, entry.usable) == (ModelKind.CONTROLNET, Base.SD1, True)
    assert (xl_entry.kind, xl_entry.base) == (ModelKind.CONTROLNET, Base.SDXL)
    assert entry.works_with(Base.SD1) and not entry.works_with(Base.SDXL)
    assert is_adapter(sd1) and is_adapter(xl)


def test_incomplete_adapter_folder_is_flagged(tmp_path):
    folder = tmp_path / "t2iadapter_depth"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"_class_name": "T2IAdapter"}))
    entry = inspect_path(folder)
    assert entry.kind is ModelKind.CONTROLNET and not entry.usable
    assert "no weights" in (entry.problem or "")


def test_controlnet_folder_is_not_an_adapter(tiny_controlnet_dir, tmp_path):
    assert not is_adapter(tiny_controlnet_dir)
    assert not is_adapter(tmp_path / "missing")


def test_cli_adapter_given_like_a_controlnet_is_used_and_named(tmp_path, tiny_model_dir):
    from tests.tiny_adapters import save_tiny_adapter

    adapter = save_tiny_adapter(tmp_path / "t2iadapter_sketch")
    control = tmp_path / "sketch.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        control
    )
    common = ["--prompt", "x", "--model", str(tiny_model_dir), "--steps", "3", "--seed", "5"]
    common += ["--width", "64", "--height", "64", "--device", "cpu", "--quiet"]
    plain_out, adapted_out = tmp_path / "plain.png", tmp_path / "adapted.png"
    assert main([*common, "--out", str(plain_out)]) == 0
    args = ["--control", str(control), "--controlnet", str(adapter), "--control-weight", "0.9"]
    assert main([*common, "--out", str(adapted_out), *args]) == 0
    text = read_png_parameters(adapted_out)
    assert text is not None and "Model: t2iadapter_sketch" in text
    (unit,) = parse_parameters(text).controls
    assert unit.model == "t2iadapter_sketch" and unit.weight == 0.9
    plain, adapted = (
        np.asarray(Image.open(p).convert("RGB"), int) for p in (plain_out, adapted_out)
    )
    assert np.abs(plain - adapted).mean() > 1
