"""The no-model "classic" engine (OpenCV inpainting) behind the same Request/Result contract."""

from __future__ import annotations

import numpy as np
import pytest

from inference import cropping
from inference.api import Box, InvalidRequestError, Mode, Request
from inference.engine import Engine


def _scene():
    image = np.zeros((80, 100, 3), np.uint8)
    image[:] = (40, 120, 200)
    image[30:45, 40:60] = (255, 0, 0)  # the object to remove
    mask = np.zeros((80, 100), np.uint8)
    mask[28:47, 38:62] = 255
    return image, mask


@pytest.mark.parametrize("model_path", [None, "classic:fill", "classic:telea", "classic:ns"])
def test_classic_removes_object_and_keeps_the_rest(model_path):
    image, mask = _scene()
    previews = []
    request = Request(
        Mode.INPAINT,
        image=image,
        mask=mask,
        model_path=model_path,
        mask_blur=2,
        crop_box=cropping.crop_box_for_mask(mask, 8),
    )
    result = Engine().run(request, lambda s, t, i, *_: previews.append((s, t, i.shape)))
    out = result.variants[0].image
    assert out.shape == image.shape
    filled = out[30:45, 40:60].astype(int)
    assert np.abs(filled - np.array([40, 120, 200])).max() < 25
    far = cropping.feathered_alpha(mask, 2) == 0
    np.testing.assert_array_equal(out[far], image[far])
    assert previews and previews[-1][:2] == (1, 1)
    assert result.recipe.model.startswith("classic:")


def test_classic_without_crop_box_uses_mask_bbox():
    image, mask = _scene()
    result = Engine().run(Request(Mode.INPAINT, image=image, mask=mask, padding=4))
    assert result.variants[0].box == Box(34, 24, 32, 27)


@pytest.mark.parametrize("mode", [Mode.TXT2IMG, Mode.IMG2IMG])
def test_classic_refuses_generation_modes(mode):
    image, _ = _scene()
    with pytest.raises(InvalidRequestError, match="classic engine"):
        Engine().run(Request(mode, image=image if mode is Mode.IMG2IMG else None))
