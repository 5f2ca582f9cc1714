"""Upscaling (Lanczos, tiny ESRGAN through spandrel) and the tiled refine with feathered seams."""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest

from inference import tiled_refine
from inference.api import (
    Box,
    Cancelled,
    CancelToken,
    ControlInput,
    InvalidRequestError,
    Mode,
    ModelLoadError,
    Request,
    Result,
    UpscalerLoadError,
    UpscaleSpec,
    Variant,
)
from inference.engine import Engine
from inference.recipe import Recipe
from inference.tiled_refine import blend_weights, plan_tiles, refine
from inference.upscale import check_scale, import_spandrel, load_upscaler
from tests.markers import needs_spandrel


def gradient(width: int, height: int, low: int = 40, high: int = 200) -> np.ndarray:
    """A smooth RGB gradient (horizontal in red, vertical in green, diagonal in blue)."""
    x = np.linspace(low, high, width, dtype=np.float32)[None, :]
    y = np.linspace(low, high, height, dtype=np.float32)[:, None]
    rgb = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1)
    return np.rint(rgb).astype(np.uint8)


def upscale_request(image: np.ndarray, **spec) -> Request:
    fields = {k: spec.pop(k) for k in list(spec) if k in {"model_path", "steps", "strength"}}
    return Request(mode=Mode.IMG2IMG, image=image, seed=5, upscale=UpscaleSpec(**spec), **fields)


# ---- sizes and limits ---------------------------------------------------------------------------


def test_a_scale_beyond_the_pixel_limit_is_one_clear_sentence():
    with pytest.raises(InvalidRequestError) as error:
        check_scale(6000, 5000, 2.0, 100_000_000)
    assert str(error.value) == (
        "upscaling 6000x5000 by 2 makes 12000x10000 (120 MP), above the 100 MP pixel limit"
    )
    assert check_scale(6000, 5000, 1.5, 100_000_000) == (9000, 7500)
    for bad in (0.5, 9.0, float("nan")):
        with pytest.raises(InvalidRequestError, match="upscale factor"):
            check_scale(10, 10, bad, 100_000_000)


def test_lanczos_upscale_by_each_factor_keeps_a_gradient_smooth():
    image = gradient(40, 30)
    engine = Engine()
    for scale, size in ((1.5, (60, 45)), (2.0, (80, 60)), (4.0, (160, 120))):
        result = engine.run(upscale_request(image, scale=scale))
        out = result.variants[0].image
        assert (out.shape[1], out.shape[0]) == size and out.dtype == np.uint8
        assert result.variants[0].box == Box(0, 0, *size)
        # a smooth source stays smooth: neighbours differ by about the gradient's own step
        assert np.abs(np.diff(out.astype(int), axis=1)).max() <= 6
        assert dict(result.recipe.extra) == {"Upscale": f"{scale:g}", "Upscaler": "Lanczos"}


def test_engine_refuses_bad_upscale_requests_before_any_work(tmp_path):
    engine = Engine()
    image = gradient(64, 64)
    with pytest.raises(InvalidRequestError, match="pixel limit"):
        engine.run(upscale_request(image, scale=4, pixel_limit=10_000))
    with pytest.raises(InvalidRequestError, match="changes nothing"):
        engine.run(upscale_request(image, scale=1))
    with pytest.raises(InvalidRequestError, match="Stable Diffusion model"):
        engine.run(upscale_request(image, refine=True))
    model = str(tmp_path)
    with pytest.raises(InvalidRequestError, match="multiple of 8"):
        engine.run(upscale_request(image, refine=True, tile=100, model_path=model))
    with pytest.raises(InvalidRequestError, match="overlap"):
        engine.run(upscale_request(image, refine=True, tile=64, overlap=40, model_path=model))


# ---- tiles ---------------------------------------------------------------------------------------


def test_tiles_cover_the_picture_and_overlap_at_least_as_asked():
    plan = plan_tiles(1000, 700, 256, 64)
    covered = np.zeros((700, 1000), bool)
    for box in plan.boxes:
        assert (box.width, box.height) == (256, 256)
        assert box.x >= 0 and box.right <= 1000 and box.y >= 0 and box.bottom <= 700
        covered[box.y : box.bottom, box.x : box.right] = True
    assert covered.all()
    xs = sorted({b.x for b in plan.boxes})
    assert all(b - a <= 256 - 64 for a, b in itertools.pairwise(xs))
    small = plan_tiles(100, 40, 256, 64)
    assert small.boxes == (Box(0, 0, 100, 40),)


def test_blend_weights_ramp_only_where_earlier_tiles_lie():
    plan = plan_tiles(384, 384, 256, 128)  # 2 x 2 tiles, 128 px overlaps
    first, right, below = (blend_weights(plan, i) for i in (0, 1, 2))
    assert (first == 1).all()  # nothing there yet
    assert right[:, 0].max() < 0.01 and (right[:, 128:] == 1).all()  # ramps in from the left
    assert (np.diff(right[0]) >= 0).all()
    assert below[0].max() < 0.01 and (below[128:] == 1).all()  # ramps in from the top


class ShiftingEngine:
    """Returns each tile brighter or darker by turns: the worst case for a seam."""

    def __init__(self) -> None:
        self.tiles: list[Box] = []

    def run(self, request: Request, on_preview=None, cancel=None) -> Result:
        assert request.image is not None and request.upscale is None
        shift = 30 if len(self.tiles) % 2 == 0 else -30
        self.tiles.append(Box(0, 0, request.image.shape[1], request.image.shape[0]))
        out = np.clip(request.image.astype(int) + shift, 0, 255).astype(np.uint8)
        box = Box(0, 0, out.shape[1], out.shape[0])
        return Result((Variant(out, request.seed, box),), Recipe(mode="img2img"))


def _refined_by_shifting_tiles(overlap: int) -> np.ndarray:
    picture = gradient(352, 352, 60, 190)
    request = upscale_request(picture[:8, :8], refine=True, tile=128, overlap=overlap)
    refine(ShiftingEngine(), request, picture)
    return picture.astype(int)


def test_feathered_overlaps_spread_a_tile_difference_instead_of_showing_a_seam(monkeypatch):
    overlap = 48
    out = _refined_by_shifting_tiles(overlap)
    step = 2  # the gradient's own step between neighbours
    largest = max(np.abs(np.diff(out, axis=a)).max() for a in (0, 1))
    assert largest <= step + 60 / overlap + 2  # a 60-level jump spread over the overlap
    # the same tiles pasted without feathering show the seam: the check above can fail
    monkeypatch.setattr(
        tiled_refine, "blend_weights", lambda plan, i: np.ones((128, 128), np.float32)
    )
    hard = _refined_by_shifting_tiles(overlap)
    assert max(np.abs(np.diff(hard, axis=a)).max() for a in (0, 1)) >= 55


def _boundaries(plan, axis_len: int, starts, ends) -> list[int]:
    return sorted({s for s in starts if s > 0} | {e for e in ends if e < axis_len})


def test_tiled_refine_of_a_gradient_with_the_tiny_model_has_no_seam(tiny_model_dir):
    source = gradient(96, 96)
    request = upscale_request(
        source,
        scale=2,
        refine=True,
        tile=128,
        overlap=32,
        model_path=str(tiny_model_dir),
        steps=4,
        strength=0.3,
    )
    previews: list[tuple[int, int, Box]] = []
    result = Engine().run(
        request, lambda s, t, image, box=None, region=None: previews.append((s, t, box))
    )
    assert result.variants[0].image.shape == (192, 192, 4)
    assert (result.variants[0].image[..., 3] == 255).all()
    out = result.variants[0].image[..., :3].astype(np.float32)
    plan = plan_tiles(192, 192, 128, 32)
    assert len(plan) == 4
    # previews stream tile by tile, each placed on its tile, the step counted over all tiles
    assert [box for _, _, box in previews] == list(plan.boxes)
    assert [s for s, _, _ in previews] == [1, 2, 3, 4] and {t for _, t, _ in previews} == {4}
    for axis in (0, 1):
        diffs = np.abs(np.diff(out, axis=1 - axis)).mean(axis=(axis, 2))  # per column / row
        starts = {b.x if axis == 0 else b.y for b in plan.boxes}
        ends = {b.right if axis == 0 else b.bottom for b in plan.boxes}
        edges = _boundaries(plan, 192, starts, ends)
        inside = [i for i in range(len(diffs)) if all(abs(i + 1 - e) > 3 for e in edges)]
        across = [diffs[e - 1] for e in edges]  # between pixel e-1 and e
        assert max(across) <= max(diffs[i] for i in inside)
    labels = dict(result.recipe.extra)
    assert labels["Tile size"] == "128" and labels["Tile overlap"] == "32"
    assert result.recipe.strength == pytest.approx(0.3) and result.recipe.prompt == ""


def test_cancel_mid_tile_stops_within_a_step_and_returns_nothing(tiny_model_dir):
    token = CancelToken()
    seen: list[Box] = []

    def on_preview(step, total, image, box=None, region=None):
        seen.append(box)
        if len(seen) == 2:  # the second tile's first step
            token.cancel()

    request = upscale_request(
        gradient(96, 96),
        scale=2,
        refine=True,
        tile=128,
        overlap=32,
        model_path=str(tiny_model_dir),
        steps=8,
        strength=0.5,
    )
    with pytest.raises(Cancelled):
        Engine().run(request, on_preview, token)
    assert len(seen) == 2  # nothing ran after the step that saw the cancel


def test_each_tile_gets_its_part_of_a_control_image_and_a_tile_control_the_tile():
    control = np.zeros((50, 100, 3), np.uint8)
    control[:, 50:] = 255  # right half white, in source coordinates
    units = (
        ControlInput(control, "canny.safetensors", control_type="canny"),
        ControlInput(control, "tile.safetensors", control_type="tile"),
    )
    seen: list[tuple[ControlInput, ...]] = []

    class Recording(ShiftingEngine):
        def run(self, request, on_preview=None, cancel=None):
            seen.append(request.controls)
            return super().run(request, on_preview, cancel)

    picture = gradient(200, 100)
    request = Request(
        mode=Mode.IMG2IMG,
        image=np.zeros((50, 100, 3), np.uint8),
        controls=units,
        upscale=UpscaleSpec(scale=2, refine=True, tile=64, overlap=0),
    )
    tiles = plan_tiles(200, 100, 64, 0)
    before = picture.copy()
    refine(Recording(), request, picture)
    for box, (canny, tile) in zip(tiles.boxes, seen, strict=True):
        assert canny.image.shape[:2] == (box.height, box.width)
        expected = 255 if box.x >= 100 else 0 if box.right <= 100 else None
        if expected is not None:
            assert (canny.image == expected).all()
        assert tile.image.shape[:2] == (box.height, box.width)
    np.testing.assert_array_equal(seen[0][1].image, before[:64, :64])  # the first tile itself


# ---- super-resolution models -----------------------------------------------------------------


@needs_spandrel
def test_a_tiny_esrgan_upscales_by_its_own_or_another_factor(tmp_path):
    from tests.tiny_upscalers import build_tiny_esrgan, save_tiny_esrgan

    path = save_tiny_esrgan(tmp_path / "4x_tiny_esrgan.safetensors", scale=4)
    upscaler = load_upscaler(str(path))
    assert (upscaler.scale, upscaler.architecture) == (4, "ESRGAN")
    image = gradient(300, 40)  # two model tiles side by side
    result = Engine().run(upscale_request(image, scale=2, upscaler_path=str(path)))
    out = result.variants[0].image[..., :3]
    assert result.variants[0].image.shape == (80, 600, 4)
    assert dict(result.recipe.extra)["Upscaler"] == "4x_tiny_esrgan.safetensors"
    # tiling is invisible: the same as the model over the whole picture at once, resized
    import cv2
    import torch

    model = build_tiny_esrgan(4)
    with torch.inference_mode():
        whole = model(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)
    whole_np = (whole[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    expected = cv2.resize(whole_np, (600, 80), interpolation=cv2.INTER_AREA)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 3


@needs_spandrel
def test_an_upscaler_of_unknown_architecture_is_one_clear_sentence(tmp_path):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "mystery.safetensors"
    save_file({"encoder.weight": torch.zeros(4, 4)}, str(path))
    with pytest.raises(UpscalerLoadError) as error:
        load_upscaler(str(path))
    assert str(error.value).startswith(
        "mystery.safetensors is not a super-resolution model of a known architecture"
    )
    assert "\n" not in str(error.value)
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(UpscalerLoadError, match="not an upscaler model file"):
        load_upscaler(str(tmp_path / "notes.txt"))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 20)
    with pytest.raises(UpscalerLoadError, match="not a readable safetensors file"):
        load_upscaler(str(broken))


@needs_spandrel
def test_pth_upscalers_are_refused_unless_pickles_are_allowed(tmp_path):
    from tests.tiny_upscalers import save_tiny_esrgan

    path = save_tiny_esrgan(tmp_path / "RealESRGAN_x2.pth", scale=2)
    with pytest.raises(ModelLoadError, match="pickle"):
        load_upscaler(str(path))
    request = upscale_request(gradient(32, 32), scale=2, upscaler_path=str(path))
    with pytest.raises(ModelLoadError, match="pickle"):
        Engine().run(request)
    assert load_upscaler(str(path), allow_pickle=True).scale == 2  # weights only


@needs_spandrel
def test_spandrel_import_leaves_no_torchvision_placeholder_behind():
    spandrel = import_spandrel()
    assert spandrel.ModelLoader is not None
    module = sys.modules.get("torchvision")
    assert module is None or getattr(module, "__file__", None) is not None  # only a real one


def test_an_upscale_request_travels_to_a_remote_engine_and_its_bigger_result_back():
    import json

    from inference.serve.wire import (
        Limits,
        request_from_wire,
        request_to_wire,
        result_event,
        result_from_event,
    )

    request = Request(
        mode=Mode.IMG2IMG,
        image=gradient(40, 30),
        model_path="/models/sd.safetensors",
        strength=0.3,
        upscale=UpscaleSpec(scale=2, refine=True, tile=64, overlap=16, pixel_limit=10**9),
    )
    wire = json.loads(json.dumps(request_to_wire(request)))
    served = request_from_wire(
        wire, lambda ref, kind: f"/server/{ref.name}", Limits(max_pixels=4000)
    )
    assert served.upscale == UpscaleSpec(
        scale=2, refine=True, tile=64, overlap=16, pixel_limit=4000
    )
    result = Engine().run(replace_upscale(request, refine=False))  # Lanczos: no model needed
    back = result_from_event(json.loads(json.dumps(result_event(result))), request)
    np.testing.assert_array_equal(back.variants[0].image, result.variants[0].image)
    assert back.variants[0].image.shape == (60, 80, 4)
    with pytest.raises(InvalidRequestError, match="upscaler model file"):
        request_to_wire(replace_upscale(request, upscaler_path="/m/4x.safetensors"))


def replace_upscale(request: Request, **changes) -> Request:
    from dataclasses import replace

    assert request.upscale is not None
    return replace(request, upscale=replace(request.upscale, **changes))
