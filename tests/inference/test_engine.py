"""Engine behaviour on tiny random-weight models loaded through the real loading path."""

from __future__ import annotations

import numpy as np
import pytest

from inference import cropping
from inference.api import (
    Box,
    Cancelled,
    CancelToken,
    InvalidRequestError,
    Mode,
    ModelLoadError,
    ModelNotFoundError,
    Request,
    Sampler,
)
from inference.library.entry import Base


def _image(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _mask(height: int = 96, width: int = 128) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[40:60, 50:80] = 255
    return mask


def _txt2img(model, **kw) -> Request:
    base = dict(prompt="a cat", steps=3, width=64, height=64, seed=7, model_path=str(model))
    base.update(kw)
    return Request(Mode.TXT2IMG, **base)


def _inpaint(model, **kw) -> Request:
    mask = _mask()
    base = dict(
        prompt="a cat",
        steps=3,
        seed=3,
        strength=0.8,
        image=_image(),
        mask=mask,
        crop_box=cropping.crop_box_for_mask(mask, 8),
        mask_blur=3,
        model_path=str(model),
    )
    base.update(kw)
    return Request(Mode.INPAINT, **base)


class Recorder:
    def __init__(self, cancel_at: int | None = None, token: CancelToken | None = None):
        self.calls: list[tuple[int, int, tuple]] = []
        self.boxes: list[Box] = []
        self.cancel_at, self.token = cancel_at, token

    def __call__(self, step: int, total: int, image: np.ndarray, box=None, region=None) -> None:
        assert image.dtype == np.uint8
        assert isinstance(box, Box), "every preview says where it goes"
        if region is not None:
            assert region.dtype == bool and region.shape == (box.height, box.width)
        self.calls.append((step, total, image.shape))
        self.boxes.append(box)
        if self.cancel_at is not None and step == self.cancel_at:
            self.token.cancel()


def test_txt2img_previews_once_per_step_at_latent_size(engine, tiny_model_dir):
    previews = Recorder()
    result = engine.run(_txt2img(tiny_model_dir, steps=4, width=96, height=64), previews)
    assert [c[:2] for c in previews.calls] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert all(shape == (8, 12, 3) for *_, shape in previews.calls)
    (variant,) = result.variants
    assert variant.image.shape == (64, 96, 3)
    assert variant.box == Box(0, 0, 96, 64)


def test_inpaint_preview_covers_crop_box_and_steps_follow_strength(engine, tiny_model_dir):
    previews = Recorder()
    request = _inpaint(tiny_model_dir, steps=4, strength=0.5)
    result = engine.run(request, previews)
    assert [c[:2] for c in previews.calls] == [(1, 2), (2, 2)]  # img2img-style: steps*strength
    plan = cropping.plan_crop(128, 96, request.crop_box, 64)
    assert set(previews.boxes) == {plan.box} and plan.box == result.variants[0].box
    assert previews.calls[0][2] == (plan.gen_height // 8, plan.gen_width // 8, 3)


def test_txt2img_equals_raw_diffusers_call(engine, tiny_model_dir):
    import torch
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline

    ours = engine.run(_txt2img(tiny_model_dir, sampler=Sampler.EULER_A)).variants[0].image
    pipe = StableDiffusionPipeline.from_pretrained(
        str(tiny_model_dir), local_files_only=True, safety_checker=None
    )
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    raw = pipe(
        "a cat",
        num_inference_steps=3,
        guidance_scale=7.0,
        width=64,
        height=64,
        generator=torch.Generator("cpu").manual_seed(7),
        output_type="np",
    ).images[0]
    expected = (raw * 255).round().clip(0, 255).astype(np.uint8)
    np.testing.assert_array_equal(ours, expected)


def test_same_seed_reproduces_and_other_seed_differs(engine, tiny_model_dir):
    first = engine.run(_txt2img(tiny_model_dir)).variants[0].image
    again = engine.run(_txt2img(tiny_model_dir)).variants[0].image
    other = engine.run(_txt2img(tiny_model_dir, seed=8)).variants[0].image
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_batch_uses_consecutive_seeds(engine, tiny_model_dir):
    result = engine.run(_txt2img(tiny_model_dir, batch_size=2, seed=10))
    assert [v.seed for v in result.variants] == [10, 11]
    assert result.recipe.seed == 10  # the first; each variant carries its own
    single = engine.run(_txt2img(tiny_model_dir, seed=11)).variants[0].image
    diff = np.abs(result.variants[1].image.astype(int) - single.astype(int))
    assert diff.max() <= 2  # same seed -> same image (batched matmuls may round differently)
    assert not np.array_equal(result.variants[0].image, result.variants[1].image)


@pytest.mark.parametrize("sampler", list(Sampler))
def test_every_sampler_runs(engine, tiny_model_dir, sampler):
    previews = Recorder()
    result = engine.run(_txt2img(tiny_model_dir, sampler=sampler, steps=2), previews)
    assert len(previews.calls) == 2
    assert result.recipe.sampler == sampler.value


def test_cancel_after_step_k_stops_without_decode(engine, tiny_model_dir, monkeypatch):
    loaded = engine.load(str(tiny_model_dir))
    decodes = []
    original = loaded.base.vae.decode
    monkeypatch.setattr(
        loaded.base.vae, "decode", lambda *a, **k: decodes.append(1) or original(*a, **k)
    )
    token = CancelToken()
    previews = Recorder(cancel_at=2, token=token)
    with pytest.raises(Cancelled):
        engine.run(_txt2img(tiny_model_dir, steps=6), previews, token)
    assert [c[0] for c in previews.calls] == [1, 2]
    assert decodes == []


def test_cancel_before_start_runs_nothing(engine, tiny_model_dir):
    token = CancelToken()
    token.cancel()
    previews = Recorder()
    with pytest.raises(Cancelled):
        engine.run(_txt2img(tiny_model_dir), previews, token)
    assert previews.calls == []


@pytest.mark.parametrize("model_fixture", ["tiny_model_dir", "tiny_inpaint_model_dir"])
def test_inpaint_keeps_unmasked_pixels_byte_identical(engine, request, model_fixture):
    model = request.getfixturevalue(model_fixture)
    job = _inpaint(model, batch_size=2)
    result = engine.run(job)
    alpha = cropping.feathered_alpha(job.mask, job.mask_blur)
    for variant in result.variants:
        out = variant.image
        assert out.shape == job.image.shape
        box = variant.box
        inside_box = np.zeros(job.mask.shape, bool)
        inside_box[box.y : box.bottom, box.x : box.right] = True
        untouched = (alpha == 0) | ~inside_box
        np.testing.assert_array_equal(out[untouched], job.image[untouched])
        assert (out[job.mask > 0] != job.image[job.mask > 0]).any()
        # the variant says where it may differ: every changed pixel lies inside its region
        changed = (out != job.image).any(axis=2)[box.y : box.bottom, box.x : box.right]
        assert variant.region is not None and variant.region.shape == changed.shape
        assert not (changed & ~variant.region).any() and variant.region.sum() < changed.size


def test_inpaint_with_color_match_still_keeps_unmasked_pixels(engine, tiny_model_dir):
    job = _inpaint(tiny_model_dir, color_match=True)
    out = engine.run(job).variants[0].image
    far = cropping.feathered_alpha(job.mask, job.mask_blur) == 0
    np.testing.assert_array_equal(out[far], job.image[far])


def test_img2img_with_crop_box_changes_only_the_box(engine, tiny_model_dir):
    image = _image()
    box = Box(16, 16, 64, 48)
    job = Request(
        Mode.IMG2IMG,
        prompt="x",
        steps=2,
        strength=0.6,
        image=image,
        crop_box=box,
        model_path=str(tiny_model_dir),
    )
    variant = engine.run(job).variants[0]
    outside = np.ones(image.shape[:2], bool)
    outside[variant.box.y : variant.box.bottom, variant.box.x : variant.box.right] = False
    np.testing.assert_array_equal(variant.image[outside], image[outside])
    assert variant.box.x <= box.x and variant.box.right >= box.right


def test_rgba_image_keeps_alpha_outside_mask(engine, tiny_model_dir):
    job = _inpaint(tiny_model_dir)
    rgba = np.dstack([job.image, np.full(job.image.shape[:2], 200, np.uint8)])
    out = engine.run(Request(**{**job.__dict__, "image": rgba})).variants[0].image
    assert out.shape == rgba.shape
    assert (out[..., 3][job.mask > 0] == 255).all()
    far = cropping.feathered_alpha(job.mask, job.mask_blur) == 0
    np.testing.assert_array_equal(out[far], rgba[far])


def test_single_file_gives_the_same_image_as_the_folder(engine, tiny_model_dir, tiny_single_file):
    from_folder = engine.run(_txt2img(tiny_model_dir)).variants[0].image
    from_file = engine.run(_txt2img(tiny_single_file))
    np.testing.assert_array_equal(from_file.variants[0].image, from_folder)
    assert from_file.recipe.model == "tiny-sd"


def test_inpainting_checkpoint_serves_every_mode(engine, tiny_inpaint_single_file):
    info = engine.load(str(tiny_inpaint_single_file)).info
    assert info.inpaint and info.family is Base.SD1 and info.format == "single_file"
    assert engine.run(_txt2img(tiny_inpaint_single_file)).variants[0].image.shape == (64, 64, 3)
    img2img = Request(
        Mode.IMG2IMG,
        prompt="x",
        steps=2,
        image=_image(64, 64),
        model_path=str(tiny_inpaint_single_file),
    )
    assert engine.run(img2img).variants[0].image.shape == (64, 64, 3)


def test_recipe_has_what_result_layers_store(engine, tiny_single_file):
    from inference.models import file_sha256

    job = _inpaint(tiny_single_file, sampler=Sampler.DDIM)
    recipe = engine.run(job).recipe
    for key in (
        "prompt",
        "negative_prompt",
        "steps",
        "sampler",
        "guidance",
        "seed",
        "size",
        "model",
        "model_hash",
        "strength",
        "crop_box",
        "mode",
    ):
        assert getattr(recipe, key) is not None, key
    assert recipe.guidance == job.guidance
    assert recipe.model_hash == file_sha256(tiny_single_file)[:10]
    assert recipe.mode == "inpaint" and recipe.sampler == "DDIM"
    assert recipe.size[0] % 8 == 0 and recipe.size[1] % 8 == 0


def test_pipelines_share_loaded_components(engine, tiny_model_dir):
    loaded = engine.load(str(tiny_model_dir))
    txt = loaded.pipeline(Mode.TXT2IMG)
    img = loaded.pipeline(Mode.IMG2IMG)
    inp = loaded.pipeline(Mode.INPAINT)
    assert txt.unet is img.unet is inp.unet
    assert txt.vae is inp.vae and txt.text_encoder is img.text_encoder
    assert engine.load(str(tiny_model_dir)) is loaded


def test_ckpt_is_refused_unless_allowed(tmp_path, tiny_single_file):
    import torch
    from safetensors.torch import load_file

    from inference.api import EngineSettings
    from inference.engine import Engine
    from inference.models import inspect_model

    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": load_file(str(tiny_single_file))}, ckpt)
    with pytest.raises(ModelLoadError, match="pickle"):
        Engine(EngineSettings(device="cpu")).run(_txt2img(ckpt))
    info = inspect_model(ckpt, allow_pickle=True)  # weights_only loading
    assert info.family is Base.SD1 and not info.inpaint


def test_missing_and_broken_models_are_typed_errors(engine, tmp_path):
    with pytest.raises(ModelNotFoundError):
        engine.run(_txt2img(tmp_path / "nope.safetensors"))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError):
        engine.run(_txt2img(broken))
    with pytest.raises(ModelLoadError, match=r"model_index\.json"):
        engine.run(_txt2img(tmp_path))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"mask": np.zeros((10, 10), np.uint8)}, "mask is 10x10"),
        ({"mask": np.zeros((96, 128), np.uint8)}, "mask is empty"),
        ({"steps": 0}, "steps"),
        ({"strength": 0.0}, "strength"),
        ({"batch_size": 0}, "batch"),
        ({"image": None}, "image"),
    ],
)
def test_bad_requests_are_refused_before_loading(engine, tiny_model_dir, change, message):
    job = _inpaint(tiny_model_dir)
    with pytest.raises(InvalidRequestError, match=message):
        engine.run(Request(**{**job.__dict__, **change}))


def test_oom_becomes_typed_error_with_advice():
    from inference.api import OutOfMemoryError
    from inference.device import oom_guard

    with pytest.raises(OutOfMemoryError, match="lower the size"), oom_guard():
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with pytest.raises(ValueError), oom_guard():
        raise ValueError("unrelated")


def test_loras_from_the_request_are_applied_and_recorded(engine, tiny_model_dir, tmp_path):
    from inference.parameters import format_parameters, parse_parameters
    from tests.tiny_loras import save_kohya_lora, tiny_lora_factors

    lora = save_kohya_lora(tmp_path / "style.safetensors", tiny_lora_factors(seed=0, rank=4))
    plain = engine.run(_txt2img(tiny_model_dir)).variants[0].image
    with_lora = engine.run(_txt2img(tiny_model_dir, loras=((str(lora), 1.0),)))
    assert not np.array_equal(with_lora.variants[0].image, plain)
    assert with_lora.recipe.loras[0].name == "style"
    text = format_parameters(with_lora.recipe)
    assert "<lora:style:1>" in text.splitlines()[0]
    assert parse_parameters(text).loras[0].hash == with_lora.recipe.loras[0].hash
    again = engine.run(_txt2img(tiny_model_dir)).variants[0].image  # LoRA switched off again
    np.testing.assert_array_equal(again, plain)
