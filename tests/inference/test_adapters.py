"""T2I-Adapters in the engine: equal to diffusers' adapter pipelines at txt2img, and the same
mechanism in img2img/inpaint; several adapters; adapters beside ControlNets; refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.api import ControlInput, InvalidRequestError, Mode, ModelLoadError, Request, Sampler


@pytest.fixture(scope="session")
def tiny_adapter_dir(tmp_path_factory) -> Path:
    from tests.tiny_adapters import save_tiny_adapter

    return save_tiny_adapter(tmp_path_factory.mktemp("adapters") / "tiny-t2i-adapter")


@pytest.fixture(scope="session")
def tiny_adapter_2_dir(tmp_path_factory) -> Path:
    from tests.tiny_adapters import save_tiny_adapter

    return save_tiny_adapter(tmp_path_factory.mktemp("adapters") / "tiny-t2i-adapter-2", seed=7)


@pytest.fixture(scope="session")
def tiny_sdxl_adapter_dir(tmp_path_factory) -> Path:
    from tests.tiny_adapters import save_tiny_adapter

    return save_tiny_adapter(tmp_path_factory.mktemp("adapters") / "tiny-t2i-adapter-xl", sdxl=True)


def _control_image(seed: int = 0, size: tuple[int, int] = (64, 64)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def _control(path, seed=0, size=(64, 64), **kw) -> ControlInput:
    return ControlInput(image=_control_image(seed, size), model_path=str(path), **kw)


def _txt2img(model_dir, controls=(), **kw) -> Request:
    fields = dict(
        prompt="a cat",
        steps=4,
        width=64,
        height=64,
        seed=11,
        sampler=Sampler.EULER,
        model_path=str(model_dir),
        controls=tuple(controls),
    )
    return Request(Mode.TXT2IMG, **{**fields, **kw})


def _reference(cls_name, model_dir, adapter, images, request, **extra):
    """diffusers' own adapter pipeline, called directly with the request's settings."""
    import diffusers
    import torch
    from PIL import Image

    from inference.schedulers import make_scheduler

    cls = getattr(diffusers, cls_name)
    pipe = cls.from_pretrained(str(model_dir), adapter=adapter, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = make_scheduler(request.sampler, dict(pipe.scheduler.config))
    pil = [Image.fromarray(image) for image in images]
    with torch.inference_mode():
        out = pipe(
            prompt=request.prompt,
            image=pil[0] if len(pil) == 1 else pil,
            num_inference_steps=request.steps,
            guidance_scale=request.guidance,
            width=request.width,
            height=request.height,
            generator=[torch.Generator("cpu").manual_seed(request.seed)],
            output_type="np",
            **extra,
        )
    return (np.asarray(out.images[0]) * 255).round().clip(0, 255).astype(np.uint8)


def _assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    diff = np.abs(actual.astype(np.int16) - expected.astype(np.int16))
    # measured: identical but for a rare 1-level rounding flip (mean 8e-5 of 255)
    assert diff.mean() <= 0.05 and diff.max() <= 1, (diff.mean(), diff.max())


def test_txt2img_with_one_adapter_equals_diffusers_adapter_pipeline(
    engine, tiny_model_dir, tiny_adapter_dir
):
    from diffusers import T2IAdapter

    request = _txt2img(tiny_model_dir, [_control(tiny_adapter_dir, weight=0.8)])
    ours = engine.run(request).variants[0].image
    adapter = T2IAdapter.from_pretrained(str(tiny_adapter_dir), local_files_only=True)
    theirs = _reference(
        "StableDiffusionAdapterPipeline",
        tiny_model_dir,
        adapter,
        [request.controls[0].image],
        request,
        adapter_conditioning_scale=0.8,
    )
    _assert_close(ours, theirs)
    plain = engine.run(_txt2img(tiny_model_dir)).variants[0].image
    assert np.abs(ours.astype(int) - plain).mean() > 2  # the adapter really steers


def test_sdxl_adapter_with_step_range_equals_diffusers_conditioning_factor(
    engine, tiny_sdxl_model_dir, tiny_sdxl_adapter_dir
):
    from diffusers import T2IAdapter

    control = _control(tiny_sdxl_adapter_dir, weight=1.5, end=0.5)
    request = _txt2img(tiny_sdxl_model_dir, [control])
    ours = engine.run(request).variants[0].image
    adapter = T2IAdapter.from_pretrained(str(tiny_sdxl_adapter_dir), local_files_only=True)
    theirs = _reference(
        "StableDiffusionXLAdapterPipeline",
        tiny_sdxl_model_dir,
        adapter,
        [control.image],
        request,
        adapter_conditioning_scale=1.5,
        adapter_conditioning_factor=0.5,
    )
    _assert_close(ours, theirs)
    whole = engine.run(_txt2img(tiny_sdxl_model_dir, [_control(tiny_sdxl_adapter_dir, weight=1.5)]))
    assert not np.array_equal(whole.variants[0].image, ours)  # the range is honoured


def test_two_adapters_equal_diffusers_multi_adapter(
    engine, tiny_model_dir, tiny_adapter_dir, tiny_adapter_2_dir
):
    from diffusers import MultiAdapter, T2IAdapter

    controls = [
        _control(tiny_adapter_dir, seed=1, weight=0.7),
        _control(tiny_adapter_2_dir, seed=2, weight=0.4),
    ]
    request = _txt2img(tiny_model_dir, controls)
    ours = engine.run(request).variants[0].image
    multi = MultiAdapter(
        [
            T2IAdapter.from_pretrained(str(p), local_files_only=True)
            for p in (tiny_adapter_dir, tiny_adapter_2_dir)
        ]
    )
    theirs = _reference(
        "StableDiffusionAdapterPipeline",
        tiny_model_dir,
        multi,
        [c.image for c in controls],
        request,
        adapter_conditioning_scale=[0.7, 0.4],
    )
    _assert_close(ours, theirs)
    one = engine.run(_txt2img(tiny_model_dir, controls[:1])).variants[0].image
    assert not np.array_equal(one, ours)


def _image() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (64, 96, 3), dtype=np.uint8)


def _mask() -> np.ndarray:
    mask = np.zeros((64, 96), np.uint8)
    mask[16:48, 24:72] = 255
    return mask


@pytest.mark.parametrize("mode", [Mode.IMG2IMG, Mode.INPAINT])
def test_img2img_and_inpaint_with_adapter(engine, tiny_model_dir, tiny_adapter_dir, mode):
    def run(*controls):
        request = Request(
            mode,
            prompt="x",
            steps=4,
            seed=2,
            strength=0.8,
            sampler=Sampler.EULER,
            image=_image(),
            mask=_mask() if mode is Mode.INPAINT else None,
            mask_blur=0,
            model_path=str(tiny_model_dir),
            controls=controls,
        )
        return engine.run(request).variants[0].image

    plain = run()
    adapted = run(_control(tiny_adapter_dir, size=(64, 96), weight=1.0))
    zero = run(_control(tiny_adapter_dir, size=(64, 96), weight=0.0))
    assert np.array_equal(zero, plain)  # weight 0 adds exact zeros
    assert np.abs(adapted.astype(int) - plain).mean() > 1
    if mode is Mode.INPAINT:
        outside = _mask() == 0
        assert np.array_equal(adapted[outside], _image()[outside])
        assert not np.array_equal(adapted[~outside], plain[~outside])


def test_adapter_beside_a_controlnet(engine, tiny_model_dir, tiny_adapter_dir, tiny_controlnet_dir):
    net = ControlInput(image=_control_image(3), model_path=str(tiny_controlnet_dir))
    with_net = engine.run(_txt2img(tiny_model_dir, [net])).variants[0].image
    result = engine.run(_txt2img(tiny_model_dir, [net, _control(tiny_adapter_dir)]))
    assert not np.array_equal(result.variants[0].image, with_net)
    models = [unit.model for unit in result.recipe.controls]
    assert models == ["tiny-controlnet", "tiny-t2i-adapter"]


def test_adapter_for_the_wrong_base_is_refused(engine, tiny_model_dir, tiny_sdxl_adapter_dir):
    with pytest.raises(ModelLoadError, match="is for SDXL models"):
        engine.run(_txt2img(tiny_model_dir, [_control(tiny_sdxl_adapter_dir)]))


def test_size_that_the_adapter_cannot_take_is_refused(engine, tiny_model_dir, tiny_adapter_dir):
    with pytest.raises(InvalidRequestError, match="multiple of 16"):
        engine.run(_txt2img(tiny_model_dir, [_control(tiny_adapter_dir)], width=72, height=64))


def test_adapter_whose_features_do_not_fit_the_unet_is_one_clear_error(
    engine, tiny_model_dir, tmp_path
):
    import torch
    from diffusers import T2IAdapter

    torch.manual_seed(0)
    wrong = T2IAdapter(channels=[64], num_res_blocks=1, downscale_factor=16)
    wrong.save_pretrained(tmp_path / "wide-adapter")
    with pytest.raises(ModelLoadError, match="does not fit this model's UNet"):
        engine.run(_txt2img(tiny_model_dir, [_control(tmp_path / "wide-adapter")]))
    plain = engine.run(_txt2img(tiny_model_dir)).variants[0].image  # the UNet is restored
    assert plain.shape == (64, 64, 3)
    assert "forward" not in engine.load(str(tiny_model_dir)).base.unet.__dict__


def test_pickle_only_adapter_folder_is_refused(engine, tiny_model_dir, tmp_path):
    from tests.tiny_adapters import build_tiny_adapter

    folder = tmp_path / "bin-adapter"
    build_tiny_adapter().save_pretrained(folder, safe_serialization=False)
    assert not any(folder.glob("*.safetensors"))
    with pytest.raises(ModelLoadError, match=r"no \.safetensors weights"):
        engine.run(_txt2img(tiny_model_dir, [_control(folder)]))


def test_batch_with_adapter_matches_single_runs(engine, tiny_model_dir, tiny_adapter_dir):
    control = _control(tiny_adapter_dir, weight=0.9)
    batch = engine.run(_txt2img(tiny_model_dir, [control], batch_size=2)).variants
    for variant in batch:
        single = engine.run(_txt2img(tiny_model_dir, [control], seed=variant.seed)).variants[0]
        _assert_close(variant.image, single.image)
    assert not np.array_equal(batch[0].image, batch[1].image)


def test_a_model_folder_with_only_pickle_weights_is_refused_unless_allowed(tmp_path):
    from inference.api import ModelLoadError
    from inference.models import require_safetensors

    (tmp_path / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelLoadError, match=r"T2I-Adapter x has no \.safetensors weights"):
        require_safetensors(tmp_path, "T2I-Adapter x", allow_pickle=False)
    require_safetensors(tmp_path, "T2I-Adapter x", allow_pickle=True)  # the user allowed it
    (tmp_path / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    require_safetensors(tmp_path, "T2I-Adapter x", allow_pickle=False)
