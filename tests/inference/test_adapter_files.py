"""Single-file T2I-Adapters: diffusers-keyed ``.safetensors``, TencentARC's original layout, and
``.pth`` pickles (refused unless allowed); each the same model as its diffusers folder."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from inference.adapters import adapter_layout, is_adapter, original_to_diffusers
from inference.api import ControlInput, EngineSettings, Mode, ModelLoadError, Request, Sampler
from inference.library import Base, ModelKind, inspect_path


@pytest.fixture(scope="module")
def adapter_files(tmp_path_factory):
    from tests.tiny_adapters import save_tiny_adapter_file

    folder = tmp_path_factory.mktemp("adapter-files")
    return {
        "diffusers": save_tiny_adapter_file(folder / "t2i-adapter_tiny.safetensors"),
        "original": save_tiny_adapter_file(
            folder / "t2iadapter_tiny_orig.safetensors", layout="original"
        ),
        "pickle": save_tiny_adapter_file(folder / "t2iadapter_tiny.pth", layout="original"),
        "grey": save_tiny_adapter_file(
            folder / "t2iadapter_sketch_tiny.safetensors", layout="original", in_channels=1
        ),
    }


def _request(model_dir, path, image=None) -> Request:
    image = image if image is not None else _control()
    return Request(
        Mode.TXT2IMG,
        prompt="a cat",
        steps=3,
        width=64,
        height=64,
        seed=2,
        sampler=Sampler.EULER,
        model_path=str(model_dir),
        controls=(ControlInput(image, str(path), weight=0.9),),
    )


def _control():
    return np.random.default_rng(4).integers(0, 256, (64, 64, 3), dtype=np.uint8)


def test_every_file_layout_is_the_same_adapter(engine, tiny_model_dir, adapter_files, tmp_path):
    from diffusers import T2IAdapter
    from safetensors.torch import load_file

    from inference.engine import Engine

    plain = engine.run(replace(_request(tiny_model_dir, "x"), controls=()))
    folder = tmp_path / "folder"
    state = load_file(str(adapter_files["diffusers"]))
    model = T2IAdapter(channels=[32], num_res_blocks=2, downscale_factor=16)
    model.load_state_dict(state)
    model.save_pretrained(folder, safe_serialization=True)
    reference = engine.run(_request(tiny_model_dir, folder)).variants[0].image
    assert np.abs(reference.astype(int) - plain.variants[0].image).mean() > 1  # it steers
    for name in ("diffusers", "original"):
        ours = engine.run(_request(tiny_model_dir, adapter_files[name])).variants[0].image
        assert np.array_equal(ours, reference), name
    with pytest.raises(ModelLoadError, match="pickle"):
        engine.run(_request(tiny_model_dir, adapter_files["pickle"]))
    trusting = Engine(EngineSettings(device="cpu", allow_pickle=True))
    try:
        ours = trusting.run(_request(tiny_model_dir, adapter_files["pickle"])).variants[0].image
    finally:
        trusting.close()
    assert np.array_equal(ours, reference)


def test_a_one_channel_adapter_reads_the_grey_picture(engine, tiny_model_dir, adapter_files):
    from PIL import Image

    colour = _control()
    grey = np.repeat(np.asarray(Image.fromarray(colour).convert("L"))[..., None], 3, axis=2)
    a = engine.run(_request(tiny_model_dir, adapter_files["grey"], colour)).variants[0].image
    b = engine.run(_request(tiny_model_dir, adapter_files["grey"], grey)).variants[0].image
    assert np.array_equal(a, b)


def test_layouts_are_told_apart_and_converted(adapter_files):
    from diffusers import T2IAdapter

    from tests.tiny_adapters import diffusers_to_original

    assert is_adapter(adapter_files["diffusers"]) and is_adapter(adapter_files["original"])
    assert not is_adapter(adapter_files["pickle"])  # unread unless pickles are allowed
    assert is_adapter(adapter_files["pickle"], allow_pickle=True)
    # an SD1.5-shaped adapter (four levels, two blocks each) survives the round trip
    full = T2IAdapter(channels=[8, 16, 32, 32], num_res_blocks=2, downscale_factor=8)
    state = full.state_dict()
    original = diffusers_to_original(state, 2)
    assert adapter_layout(list(original)) == "original"
    assert "body.2.in_conv.weight" in original and "body.3.block2.bias" in original
    back = original_to_diffusers(original, 2)
    assert set(back) == set(state)
    assert all(back[k] is state[k] for k in state)


def test_the_library_lists_single_file_adapters(adapter_files):
    for name in ("diffusers", "original", "grey"):
        entry = inspect_path(adapter_files[name])
        assert entry.kind is ModelKind.CONTROLNET and entry.usable, (name, entry)
        assert entry.base is Base.SDXL  # pixel unshuffle 16: how SDXL adapters read pictures
