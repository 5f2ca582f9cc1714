"""Reference images through IP-Adapters: equal to diffusers' own ``load_ip_adapter`` pipelines,
style only (InstantStyle) on the style blocks, several references, every mode, beside ControlNets
and T2I-Adapters, and refusals in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.api import (
    ControlInput,
    Mode,
    ModelLoadError,
    ModelNotFoundError,
    ReferenceInput,
    Request,
    Sampler,
)


@pytest.fixture(scope="session")
def ip_dir(tmp_path_factory) -> Path:
    """SD1 adapters (plain and plus, two seeds) beside one tiny image encoder folder."""
    from tests.tiny_adapters import save_tiny_ip_adapter
    from tests.tiny_models import build_tiny_unet

    folder = tmp_path_factory.mktemp("ip") / "models"
    unet = build_tiny_unet()
    save_tiny_ip_adapter(folder, unet)
    save_tiny_ip_adapter(folder, unet, seed=5, name="ip-adapter_tiny_2.safetensors")
    save_tiny_ip_adapter(folder, unet, plus=True)
    return folder


@pytest.fixture(scope="session")
def sdxl_ip_dir(tmp_path_factory) -> Path:
    from tests.tiny_adapters import save_tiny_ip_adapter
    from tests.tiny_models import build_tiny_sdxl_pipeline

    folder = tmp_path_factory.mktemp("ip") / "sdxl_models"
    save_tiny_ip_adapter(
        folder, build_tiny_sdxl_pipeline().unet, name="ip-adapter_sdxl_tiny.safetensors"
    )
    return folder


def _picture(seed: int = 0, size: tuple[int, int] = (48, 40)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def _txt2img(model_dir, references=(), **kw) -> Request:
    fields = dict(
        prompt="a cat",
        steps=4,
        width=64,
        height=64,
        seed=11,
        sampler=Sampler.EULER,
        model_path=str(model_dir),
        references=tuple(references),
    )
    return Request(Mode.TXT2IMG, **{**fields, **kw})


def _diffusers(cls_name, model_dir, folder, weights, images, scales, request, **load):
    """diffusers' own pipeline with ``load_ip_adapter`` from the same local files."""
    import diffusers
    import torch
    from PIL import Image

    from inference.schedulers import make_scheduler

    cls = getattr(diffusers, cls_name)
    extra = {} if "XL" in cls_name else {"safety_checker": None, "requires_safety_checker": False}
    pipe = cls.from_pretrained(str(model_dir), local_files_only=True, **extra)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_ip_adapter(
        str(folder),
        subfolder="",
        weight_name=weights,
        image_encoder_folder="image_encoder",
        local_files_only=True,
        **load,
    )
    pipe.set_ip_adapter_scale(scales)
    pipe.scheduler = make_scheduler(request.sampler, dict(pipe.scheduler.config))
    with torch.inference_mode():
        out = pipe(
            prompt=request.prompt,
            ip_adapter_image=[Image.fromarray(image) for image in images],
            num_inference_steps=request.steps,
            guidance_scale=request.guidance,
            width=request.width,
            height=request.height,
            generator=[torch.Generator("cpu").manual_seed(request.seed)],
            output_type="np",
        )
    return (np.asarray(out.images[0]) * 255).round().clip(0, 255).astype(np.uint8)


def _assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """Byte-identical, or within 1/255 on average (one level), as the issue asks (measured:
    identical on every test here)."""
    diff = np.abs(actual.astype(np.int16) - expected.astype(np.int16))
    assert diff.mean() <= 1.0 and diff.max() <= 2, (diff.mean(), diff.max())


def test_one_reference_equals_diffusers_load_ip_adapter(engine, tiny_model_dir, ip_dir):
    picture = _picture()
    reference = ReferenceInput(picture, str(ip_dir / "ip-adapter_tiny.safetensors"), weight=0.7)
    request = _txt2img(tiny_model_dir, [reference])
    ours = engine.run(request).variants[0].image
    theirs = _diffusers(
        "StableDiffusionPipeline",
        tiny_model_dir,
        ip_dir,
        "ip-adapter_tiny.safetensors",
        [picture],
        0.7,
        request,
    )
    _assert_close(ours, theirs)
    plain = engine.run(_txt2img(tiny_model_dir)).variants[0].image
    assert np.abs(ours.astype(int) - plain).mean() > 2  # the reference really steers


def test_plus_adapter_and_two_references_equal_diffusers(engine, tiny_model_dir, ip_dir):
    first, second = _picture(1), _picture(2, (30, 60))
    references = [
        ReferenceInput(first, str(ip_dir / "ip-adapter-plus_tiny.safetensors"), weight=0.9),
        ReferenceInput(second, str(ip_dir / "ip-adapter_tiny_2.safetensors"), weight=0.4),
    ]
    request = _txt2img(tiny_model_dir, references)
    ours = engine.run(request).variants[0].image
    theirs = _diffusers(
        "StableDiffusionPipeline",
        tiny_model_dir,
        ip_dir,
        ["ip-adapter-plus_tiny.safetensors", "ip-adapter_tiny_2.safetensors"],
        [first, second],
        [0.9, 0.4],
        request,
    )
    _assert_close(ours, theirs)
    alone = engine.run(_txt2img(tiny_model_dir, references[:1])).variants[0].image
    assert np.abs(ours.astype(int) - alone).mean() > 1  # the second reference counts


def test_sdxl_style_only_equals_instantstyle_scales(engine, tiny_sdxl_model_dir, sdxl_ip_dir):
    picture = _picture(3)
    path = str(sdxl_ip_dir / "ip-adapter_sdxl_tiny.safetensors")
    request = _txt2img(tiny_sdxl_model_dir, [ReferenceInput(picture, path, style_only=True)])
    ours = engine.run(request).variants[0].image
    # InstantStyle: the second transformer of the first up block only (of two in the tiny UNet)
    style = {"up": {"block_0": [0.0, 1.0]}}
    theirs = _diffusers(
        "StableDiffusionXLPipeline",
        tiny_sdxl_model_dir,
        sdxl_ip_dir,
        "ip-adapter_sdxl_tiny.safetensors",
        [picture],
        style,
        request,
    )
    _assert_close(ours, theirs)
    whole = engine.run(_txt2img(tiny_sdxl_model_dir, [ReferenceInput(picture, path)]))
    assert np.abs(ours.astype(int) - whole.variants[0].image).mean() > 0.5


def test_style_only_scales_only_the_style_blocks(engine, tiny_model_dir, ip_dir):
    from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0

    from inference import ip_adapter

    reference = ReferenceInput(
        _picture(), str(ip_dir / "ip-adapter_tiny.safetensors"), weight=0.6, style_only=True
    )
    loaded = engine.load(str(tiny_model_dir))
    ip_adapter.prepare(_txt2img(tiny_model_dir, [reference]), loaded, {}, engine.settings)
    try:
        scales = {
            name: processor.scale[0]
            for name, processor in loaded.base.unet.attn_processors.items()
            if isinstance(processor, IPAdapterAttnProcessor2_0)
        }
        assert len(scales) == 4  # down 1, mid, up 0 (two transformers): the tiny UNet's four
        for name, scale in scales.items():
            assert scale == (0.6 if name.startswith("up_blocks.0.") else 0.0), name
        assert ip_adapter.style_scale(loaded.base.unet, 0.6) == {"up": {"block_0": 0.6}}
    finally:
        ip_adapter.unload(loaded.base)


def test_weight_zero_equals_no_reference_and_unload_restores(engine, tiny_model_dir, ip_dir):
    plain = engine.run(_txt2img(tiny_model_dir)).variants[0].image
    path = str(ip_dir / "ip-adapter_tiny.safetensors")
    zero = engine.run(_txt2img(tiny_model_dir, [ReferenceInput(_picture(), path, weight=0.0)]))
    assert np.array_equal(zero.variants[0].image, plain)
    engine.run(_txt2img(tiny_model_dir, [ReferenceInput(_picture(), path)]))
    after = engine.run(_txt2img(tiny_model_dir)).variants[0].image
    assert np.array_equal(after, plain)  # the UNet got its own attention back
    unet = engine.load(str(tiny_model_dir)).base.unet
    assert unet.encoder_hid_proj is None


def test_the_reference_picture_matters(engine, tiny_model_dir, ip_dir):
    path = str(ip_dir / "ip-adapter_tiny.safetensors")
    one = engine.run(_txt2img(tiny_model_dir, [ReferenceInput(_picture(4), path)]))
    two = engine.run(_txt2img(tiny_model_dir, [ReferenceInput(_picture(5), path)]))
    assert np.abs(one.variants[0].image.astype(int) - two.variants[0].image).mean() > 0.5
    unit = one.recipe.references[0]
    assert (unit.model, unit.weight, unit.style_only) == ("ip-adapter_tiny", 1.0, False)


@pytest.mark.parametrize("mode", [Mode.IMG2IMG, Mode.INPAINT])
def test_every_mode_with_controlnet_and_adapter(
    engine, tiny_model_dir, ip_dir, tiny_controlnet_dir, tmp_path_factory, mode
):
    from tests.tiny_adapters import save_tiny_adapter

    adapter = save_tiny_adapter(tmp_path_factory.mktemp("t2i") / "tiny-t2i")
    image = _picture(6, (64, 64))
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    controls = (
        ControlInput(_picture(7, (64, 64)), str(tiny_controlnet_dir)),
        ControlInput(_picture(8, (64, 64)), str(adapter)),
    )
    fields = dict(
        prompt="a cat",
        steps=3,
        seed=3,
        sampler=Sampler.EULER,
        model_path=str(tiny_model_dir),
        image=image,
        mask=mask if mode is Mode.INPAINT else None,
        mask_blur=0,
        controls=controls,
        strength=0.9,
    )
    path = str(ip_dir / "ip-adapter_tiny.safetensors")
    without = engine.run(Request(mode, **fields)).variants[0].image
    result = engine.run(Request(mode, references=(ReferenceInput(_picture(9), path),), **fields))
    with_reference = result.variants[0].image
    assert with_reference.shape == image.shape
    changed = np.abs(with_reference.astype(int) - without).mean()
    assert changed > 0.5
    if mode is Mode.INPAINT:  # outside the mask nothing moves
        assert np.array_equal(with_reference[mask == 0], image[mask == 0])
    assert len(result.recipe.references) == 1 and len(result.recipe.controls) == 2


def test_sdxl_adapter_on_sd1_model_is_refused_in_one_line(engine, tiny_model_dir, sdxl_ip_dir):
    path = str(sdxl_ip_dir / "ip-adapter_sdxl_tiny.safetensors")
    with pytest.raises(ModelLoadError) as error:
        engine.run(_txt2img(tiny_model_dir, [ReferenceInput(_picture(), path)]))
    assert "IP-Adapter ip-adapter_sdxl_tiny" in str(error.value) and "\n" not in str(error.value)


def test_missing_encoder_and_pickles_are_refused(engine, tiny_model_dir, ip_dir, tmp_path):
    import shutil

    lone = tmp_path / "lone" / "ip-adapter_tiny.safetensors"
    lone.parent.mkdir()
    shutil.copy(ip_dir / "ip-adapter_tiny.safetensors", lone)
    with pytest.raises(ModelNotFoundError, match="image encoder"):
        engine.run(_txt2img(tiny_model_dir, [ReferenceInput(_picture(), str(lone))]))
    # the encoder given by path works from anywhere
    given = ReferenceInput(_picture(), str(lone), image_encoder_path=str(ip_dir / "image_encoder"))
    assert engine.run(_txt2img(tiny_model_dir, [given])).variants
    pickle = tmp_path / "ip-adapter.bin"
    pickle.write_bytes(b"not even a pickle")
    with pytest.raises(ModelLoadError, match="pickle"):
        engine.run(_txt2img(tiny_model_dir, [ReferenceInput(_picture(), str(pickle))]))
    wrong = ReferenceInput(_picture(), str(lone), image_encoder_path=str(tiny_model_dir / "unet"))
    with pytest.raises(ModelLoadError, match="not a CLIP image encoder"):
        engine.run(_txt2img(tiny_model_dir, [wrong]))


def test_a_batch_with_a_reference_gives_each_seed_its_variant(engine, tiny_model_dir, ip_dir):
    path = str(ip_dir / "ip-adapter_tiny.safetensors")
    reference = ReferenceInput(_picture(), path, weight=0.8)
    batch = engine.run(_txt2img(tiny_model_dir, [reference], batch_size=2))
    single = engine.run(_txt2img(tiny_model_dir, [reference], seed=12))
    assert len(batch.variants) == 2
    assert np.abs(batch.variants[1].image.astype(int) - single.variants[0].image).max() <= 1
