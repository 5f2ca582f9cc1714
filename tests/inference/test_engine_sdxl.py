"""The SDXL code path (two text encoders, SDXL pipelines and preview factors) on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from inference import cropping
from inference.api import Mode, Request
from inference.library.entry import Base


def test_sdxl_folder_is_detected(tiny_sdxl_model_dir):
    from inference.models import inspect_model

    info = inspect_model(tiny_sdxl_model_dir)
    assert (info.family, info.inpaint) == (Base.SDXL, False)


@pytest.mark.parametrize("mode", list(Mode))
def test_sdxl_every_mode(engine, tiny_sdxl_model_dir, mode):
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    mask = np.zeros((64, 96), np.uint8)
    mask[20:40, 30:60] = 255
    request = Request(
        mode,
        prompt="x",
        steps=2,
        strength=0.8,
        width=64,
        height=64,
        image=None if mode is Mode.TXT2IMG else image,
        mask=mask if mode is Mode.INPAINT else None,
        crop_box=cropping.crop_box_for_mask(mask, 4) if mode is Mode.INPAINT else None,
        mask_blur=2,
        model_path=str(tiny_sdxl_model_dir),
    )
    previews = []
    result = engine.run(request, lambda s, t, i, *_: previews.append(i.shape))
    assert previews
    out = result.variants[0].image
    if mode is Mode.INPAINT:
        far = cropping.feathered_alpha(mask, 2) == 0
        np.testing.assert_array_equal(out[far], image[far])
    assert (
        engine.load(str(tiny_sdxl_model_dir))
        .pipeline(mode)
        .__class__.__name__.startswith("StableDiffusionXL")
    )


def test_sdxl_linear_preview_uses_sdxl_factors():
    import torch

    from inference.previews import SD1_FACTORS, SDXL_BIAS, LinearPreview

    latents = torch.zeros(1, 4, 2, 2)
    sdxl = LinearPreview("sdxl", torch.device("cpu"))(latents)
    sd1 = LinearPreview("sd1", torch.device("cpu"))(latents)
    assert sd1.shape == (2, 2, 3) and (sd1 == 127).all()
    assert tuple(sdxl[0, 0]) == tuple(int((b + 1) * 127.5) for b in SDXL_BIAS)
    ones = LinearPreview("sd1", torch.device("cpu"))(torch.ones(1, 4, 1, 1))
    expected = [(sum(row[c] for row in SD1_FACTORS) + 1) * 127.5 for c in range(3)]
    assert np.allclose(ones[0, 0], np.clip(expected, 0, 255), atol=1)


def test_sdxl_single_file_loads_and_matches_the_folder(
    engine, tiny_sdxl_model_dir, tiny_sdxl_single_file
):
    import torch

    folder = engine.load(str(tiny_sdxl_model_dir)).base
    single = engine.load(str(tiny_sdxl_single_file))
    assert (single.info.family, single.info.format) == (Base.SDXL, "single_file")
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        a = getattr(folder, name).state_dict()
        b = getattr(single.base, name).state_dict()
        assert a.keys() <= b.keys(), name
        assert all(torch.equal(a[k], b[k]) for k in a), name
    request = Request(Mode.TXT2IMG, prompt="x", steps=2, width=64, height=64, seed=4)
    via_folder = engine.run(Request(**{**request.__dict__, "model_path": str(tiny_sdxl_model_dir)}))
    via_file = engine.run(Request(**{**request.__dict__, "model_path": str(tiny_sdxl_single_file)}))
    diff = np.abs(via_file.variants[0].image.astype(int) - via_folder.variants[0].image)
    assert diff.max() <= 1  # same weights; the text encoders may pick another attention kernel
