"""The engine's between-jobs cache: same pictures as a fresh engine, less work for repeats."""

from __future__ import annotations

import numpy as np
import pytest

from inference import cropping
from inference.api import EngineSettings, Mode, Request, Sampler
from inference.engine import Engine
from inference.live_cache import EncodingCache


def _photo(seed: int = 0, size: int = 96) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _img2img(model, image: np.ndarray, **kw) -> Request:
    base = dict(
        prompt="a red fox", negative_prompt="blurry", steps=4, seed=11, strength=0.6,
        guidance=2.0, image=image, model_path=str(model), sampler=Sampler.LCM,
    )  # fmt: skip
    base.update(kw)
    return Request(Mode.IMG2IMG, **base)


@pytest.fixture
def fresh_engine():
    engine = Engine(EngineSettings(device="cpu"))
    yield engine
    engine.close()


def _uncached(model, request: Request) -> np.ndarray:
    """The same request on an engine whose cache is bypassed (the plain diffusers path)."""
    engine = Engine(EngineSettings(device="cpu"))
    engine.cache.pipeline_inputs = lambda pipe, request, source, kwargs: kwargs  # type: ignore[method-assign]
    engine.cache.prepare_work = lambda request, native, prepare: prepare(request, native)  # type: ignore[method-assign]
    try:
        return engine.run(request).variants[0].image
    finally:
        engine.close()


def test_cached_prompt_and_source_give_the_same_pixels_as_a_fresh_encode(
    fresh_engine, tiny_model_dir
):
    photo = _photo()
    first = fresh_engine.run(_img2img(tiny_model_dir, photo)).variants[0].image
    stats = fresh_engine.cache.stats
    assert (stats.prompt_misses, stats.source_misses) == (1, 1)
    again = fresh_engine.run(_img2img(tiny_model_dir, photo)).variants[0].image
    assert (stats.prompt_hits, stats.source_hits) == (1, 1)  # nothing encoded the second time
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, _uncached(tiny_model_dir, _img2img(tiny_model_dir, photo)))


def test_a_changed_picture_is_encoded_again_and_a_changed_prompt_too(fresh_engine, tiny_model_dir):
    photo = _photo()
    fresh_engine.run(_img2img(tiny_model_dir, photo))
    painted = photo.copy()
    painted[20:40, 20:40] = (255, 0, 0)  # a stroke
    out = fresh_engine.run(_img2img(tiny_model_dir, painted)).variants[0].image
    stats = fresh_engine.cache.stats
    assert stats.source_misses == 2 and stats.prompt_hits == 1
    np.testing.assert_array_equal(out, _uncached(tiny_model_dir, _img2img(tiny_model_dir, painted)))
    other = _img2img(tiny_model_dir, painted, prompt="a blue bird")
    out = fresh_engine.run(other).variants[0].image
    assert stats.prompt_misses == 2 and stats.source_hits == 1
    np.testing.assert_array_equal(out, _uncached(tiny_model_dir, other))


def test_without_guidance_only_the_prompt_is_encoded(fresh_engine, tiny_model_dir):
    request = _img2img(tiny_model_dir, _photo(3), guidance=1.0)
    out = fresh_engine.run(request).variants[0].image
    np.testing.assert_array_equal(out, _uncached(tiny_model_dir, request))


def test_inpaint_reuses_the_feathered_mask_while_the_mask_stays(fresh_engine, tiny_model_dir):
    mask = np.zeros((96, 96), np.uint8)
    mask[30:60, 30:70] = 255
    photo = _photo(5)
    request = Request(
        Mode.INPAINT, prompt="a cat", steps=3, seed=2, strength=0.8, image=photo, mask=mask,
        crop_box=cropping.crop_box_for_mask(mask, 8), mask_blur=4, model_path=str(tiny_model_dir),
    )  # fmt: skip
    fresh_engine.run(request)
    painted = photo.copy()
    painted[:10] = 0
    second = Request(**{**request.__dict__, "image": painted})
    out = fresh_engine.run(second).variants[0].image
    stats = fresh_engine.cache.stats
    assert (stats.work_misses, stats.work_hits) == (1, 1)
    np.testing.assert_array_equal(out, _uncached(tiny_model_dir, second))
    moved = mask.copy()
    moved[5:10, 5:10] = 255
    fresh_engine.run(Request(**{**second.__dict__, "mask": moved}))
    assert stats.work_misses == 2  # a new mask is feathered again


def test_close_forgets_everything(tiny_model_dir):
    cache = EncodingCache()
    engine = Engine(EngineSettings(device="cpu"))
    engine.cache = cache
    engine.run(_img2img(tiny_model_dir, _photo()))
    engine.close()
    assert cache._prompt is None and cache._source is None and cache._work is None


@pytest.mark.parametrize("channels", [3, 4])
def test_a_paste_without_alpha_gives_the_bytes_of_a_blend_with_weight_one(channels):
    from inference.api import Box

    rng = np.random.default_rng(1)
    original = rng.integers(0, 256, (40, 50, channels), dtype=np.uint8)
    generated = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    box = Box(10, 5, 30, 20)
    fast = cropping.paste(original, generated, box)
    blended = cropping.paste(original, generated, box, np.ones((40, 50), np.float32))
    np.testing.assert_array_equal(fast, blended)
    assert not np.shares_memory(fast, original)


def test_controlnet_img2img_takes_the_cached_inputs_with_the_same_pixels(
    fresh_engine, tiny_model_dir, tiny_controlnet_dir
):
    from inference.api import ControlInput

    pose = np.zeros((96, 96, 3), np.uint8)
    pose[30:60, 45:50] = 255
    control = ControlInput(image=pose, model_path=str(tiny_controlnet_dir), control_type="openpose")
    request = _img2img(tiny_model_dir, _photo(7), controls=(control,))
    first = fresh_engine.run(request).variants[0].image
    again = fresh_engine.run(request).variants[0].image
    stats = fresh_engine.cache.stats
    assert stats.source_hits == 1 and stats.prompt_hits == 1
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, _uncached(tiny_model_dir, request))
