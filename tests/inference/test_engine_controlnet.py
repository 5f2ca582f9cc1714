"""ControlNet in the engine: single and multi, txt2img/img2img/inpaint, offline loading."""

from __future__ import annotations

import numpy as np
import pytest

from inference import cropping
from inference.api import (
    Box,
    ControlInput,
    InvalidRequestError,
    Mode,
    ModelLoadError,
    Request,
    ResizeMode,
)
from inference.controlnets import fit_to


def _control(path, seed=0, size=(96, 128), **kw) -> ControlInput:
    image = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    return ControlInput(image=image, model_path=str(path), **kw)


def _image():
    return np.random.default_rng(5).integers(0, 256, (96, 128, 3), dtype=np.uint8)


def _mask():
    mask = np.zeros((96, 128), np.uint8)
    mask[30:60, 40:90] = 255
    return mask


def test_txt2img_with_controlnet_folder_changes_the_image(
    engine, tiny_model_dir, tiny_controlnet_dir
):
    base = Request(
        Mode.TXT2IMG,
        prompt="x",
        steps=2,
        width=64,
        height=64,
        seed=3,
        model_path=str(tiny_model_dir),
    )
    plain = engine.run(base).variants[0].image
    control = _control(tiny_controlnet_dir, size=(64, 64), weight=1.0)
    result = engine.run(Request(**{**base.__dict__, "controls": (control,)}))
    assert result.variants[0].image.shape == (64, 64, 3)
    assert not np.array_equal(result.variants[0].image, plain)
    (recipe_control,) = result.recipe.controls
    assert recipe_control.model == "tiny-controlnet" and recipe_control.weight == 1.0
    zero = engine.run(
        Request(
            **{
                **base.__dict__,
                "controls": (_control(tiny_controlnet_dir, size=(64, 64), weight=0.0),),
            }
        )
    )
    np.testing.assert_allclose(zero.variants[0].image, plain, atol=2)  # weight 0 = no control


@pytest.mark.parametrize("mode", [Mode.IMG2IMG, Mode.INPAINT])
def test_multi_controlnet_with_img2img_and_inpaint(
    engine, tiny_model_dir, tiny_controlnet_dir, tiny_controlnet_file, mode
):
    mask = _mask() if mode is Mode.INPAINT else None
    request = Request(
        mode,
        prompt="x",
        steps=2,
        strength=0.7,
        image=_image(),
        mask=mask,
        mask_blur=2,
        crop_box=cropping.crop_box_for_mask(mask, 4) if mask is not None else None,
        model_path=str(tiny_model_dir),
        controls=(
            _control(tiny_controlnet_dir, weight=0.8, start=0.0, end=0.5),
            _control(
                tiny_controlnet_file,
                seed=1,
                size=(48, 64),
                weight=1.2,
                resize_mode=ResizeMode.RESIZE_AND_FILL,
            ),
        ),
    )
    previews = []
    result = engine.run(request, lambda s, t, i, *_: previews.append(s))
    out = result.variants[0].image
    assert out.shape == request.image.shape and previews
    assert len(result.recipe.controls) == 2
    if mode is Mode.INPAINT:
        far = cropping.feathered_alpha(mask, 2) == 0
        np.testing.assert_array_equal(out[far], request.image[far])


def test_controlnet_with_inpainting_checkpoint(engine, tiny_inpaint_model_dir, tiny_controlnet_dir):
    mask = _mask()
    request = Request(
        Mode.INPAINT,
        prompt="x",
        steps=2,
        image=_image(),
        mask=mask,
        crop_box=Box(30, 20, 70, 50),
        model_path=str(tiny_inpaint_model_dir),
        controls=(_control(tiny_controlnet_dir),),
    )
    assert engine.run(request).variants[0].image.shape == (96, 128, 3)


def test_controlnet_for_another_base_is_refused(engine, tiny_model_dir, tmp_path):
    from diffusers import ControlNetModel

    other = ControlNetModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        in_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=8,
        norm_num_groups=8,
        conditioning_embedding_out_channels=(8, 8, 16, 16),
    )
    other.save_pretrained(tmp_path / "wide-controlnet")
    request = Request(
        Mode.TXT2IMG,
        prompt="x",
        steps=2,
        width=64,
        height=64,
        model_path=str(tiny_model_dir),
        controls=(_control(tmp_path / "wide-controlnet", size=(64, 64)),),
    )
    with pytest.raises(ModelLoadError, match="pick a ControlNet made for this model"):
        engine.run(request)


def test_bad_control_settings_are_refused(engine, tiny_model_dir, tiny_controlnet_dir):
    request = Request(
        Mode.TXT2IMG,
        prompt="x",
        model_path=str(tiny_model_dir),
        width=64,
        height=64,
        controls=(_control(tiny_controlnet_dir, start=0.8, end=0.2),),
    )
    with pytest.raises(InvalidRequestError, match="start"):
        engine.run(request)


def test_fit_modes():
    image = np.zeros((50, 100, 3), np.uint8)
    image[:, :50] = 255
    assert fit_to(image, 100, 100, ResizeMode.JUST_RESIZE).shape == (100, 100, 3)
    cropped = fit_to(image, 100, 100, ResizeMode.CROP_AND_RESIZE)
    assert cropped.shape == (100, 100, 3) and cropped[:, :40].min() == 255
    filled = fit_to(image, 100, 100, ResizeMode.RESIZE_AND_FILL)
    assert filled.shape == (100, 100, 3)
    assert (filled[:20] == 0).all() and (filled[30:70, :40] == 255).all()


def test_cli_accepts_repeatable_controls(
    tmp_path, tiny_model_dir, tiny_controlnet_dir, tiny_controlnet_file
):
    from PIL import Image

    from inference.cli_generate import main
    from inference.parameters import read_png_parameters

    control = tmp_path / "pose.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(control)
    out = tmp_path / "out.png"
    code = main(
        [
            "--prompt",
            "x",
            "--out",
            str(out),
            "--model",
            str(tiny_model_dir),
            "--steps",
            "2",
            "--width",
            "64",
            "--height",
            "64",
            "--quiet",
            "--device",
            "cpu",
            "--control",
            str(control),
            "--controlnet",
            str(tiny_controlnet_dir),
            "--control-weight",
            "0.5",
            "--control",
            str(control),
            "--controlnet",
            str(tiny_controlnet_file),
        ]
    )
    assert code == 0 and read_png_parameters(out)
