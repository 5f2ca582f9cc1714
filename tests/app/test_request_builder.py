"""The request builder: mode from the document, crop box, image, mask, controls, snapshot."""

from __future__ import annotations

import numpy as np
import pytest

from app.document import Document
from app.generation.request import (
    GenerationParams,
    RequestBuildError,
    ResolutionPolicy,
    Workflow,
    build_request,
    decode_mask,
    detect_workflow,
    params_from_recipe,
    picture_is_blank,
)
from app.geometry import Rect
from app.layers import ControlSettings, LayerKind
from app.raster import Raster
from inference.api import Box, Mode, Sampler
from inference.parameters import format_parameters
from tests.documents import paint_mask, random_photo

MODEL = GenerationParams(
    model_path="/models/sd15.safetensors",
    model_name="sd15",
    native_size=512,
    prompt="  a red barn  ",
    seed=42,
    padding=16,
)


def photo(width: int = 400, height: int = 300) -> Document:
    return random_photo(width, height, seed=0)


def select(doc: Document, rect: Rect) -> None:
    selection = Raster(1)
    selection.write(rect, np.full((rect.h, rect.w), 255, np.uint8))
    doc.set_selection(selection)


def add_sketch(doc: Document, rect: Rect, active: bool = True):
    layer = doc.add_layer(LayerKind.SKETCH, activate=active)
    strokes = np.zeros((rect.h, rect.w, 4), np.uint8)
    strokes[..., :3] = (10, 20, 200)
    strokes[rect.h // 2, :, 3] = 255  # a horizontal line
    layer.raster.write(rect, strokes)
    return layer


def test_mode_follows_the_document():
    assert detect_workflow(Document.blank(256, 256)) is Workflow.TXT2IMG
    doc = photo()
    assert detect_workflow(doc) is Workflow.IMG2IMG
    select(doc, Rect(10, 10, 50, 50))
    assert detect_workflow(doc) is Workflow.IMG2IMG_SELECTION
    sketch = add_sketch(doc, Rect(100, 100, 64, 64))
    assert detect_workflow(doc) is Workflow.SKETCH
    doc.set_active(doc.layers[0].id)  # sketch no longer active
    assert detect_workflow(doc) is Workflow.IMG2IMG_SELECTION
    doc.set_active(sketch.id)
    paint_mask(doc, Rect(5, 5, 10, 10))
    assert detect_workflow(doc) is Workflow.INPAINT  # the mask wins over everything


def test_blank_canvas_detection():
    doc = Document.blank(128, 96, fill=(40, 50, 60, 255))
    assert picture_is_blank(doc)
    doc.layers[0].raster.data[50, 60, 0] = 41
    assert not picture_is_blank(doc)


def test_inpaint_request_crops_to_mask_plus_padding_and_copies_pixels():
    doc = photo(400, 300)
    paint_mask(doc, Rect(200, 100, 40, 30))
    job = build_request(doc, MODEL)
    request = job.request
    assert job.workflow is Workflow.INPAINT and request.mode is Mode.INPAINT
    assert job.target == Rect(184, 84, 72, 62)  # mask bounds + 16 px padding
    # the request image covers the target plus context, never the whole 8k canvas
    assert job.origin.contains(job.target) and job.origin != doc.rect
    assert request.image.shape == (job.origin.h, job.origin.w, 3)
    assert request.crop_box == Box(job.target.x - job.origin.x, job.target.y - job.origin.y, 72, 62)
    expected = doc.layers[0].raster.read(job.origin)[..., :3]
    assert np.array_equal(request.image, expected)
    assert request.mask.shape == (job.origin.h, job.origin.w)
    local = Rect(200 - job.origin.x, 100 - job.origin.y, 40, 30)
    assert (request.mask[local.slices(Rect(0, 0, job.origin.w, job.origin.h))] == 255).all()
    assert request.mask.sum() == 255 * 40 * 30
    assert request.prompt == "a red barn" and request.seed == 42
    assert request.model_path == "/models/sd15.safetensors"
    # a snapshot: painting after building does not reach the request
    before = request.image.copy()
    doc.layers[0].raster.data[:] = 0
    paint_mask(doc, Rect(0, 0, 400, 300))
    assert np.array_equal(request.image, before) and request.mask.sum() == 255 * 40 * 30


def test_request_image_is_the_picture_never_the_preview_or_mask():
    doc = photo(128, 128)
    doc.show_preview(7, Rect(0, 0, 128, 128), np.zeros((128, 128, 3), np.uint8))
    paint_mask(doc, Rect(10, 10, 20, 20))
    top = doc.add_layer(LayerKind.IMAGE)
    top.raster.write(Rect(0, 0, 8, 8), np.full((8, 8, 4), (255, 0, 0, 255), np.uint8))
    request = build_request(doc, MODEL.__class__(**{**MODEL.__dict__, "padding": 200})).request
    assert request.image.shape == (128, 128, 3)
    assert (request.image[:8, :8] == (255, 0, 0)).all()
    assert np.array_equal(request.image[20:, 20:], doc.layers[0].raster.data[20:, 20:, :3])


def test_sketch_to_image_is_img2img_of_image_plus_sketch():
    doc = photo(200, 200)
    add_sketch(doc, Rect(50, 50, 64, 64))
    job = build_request(doc, MODEL)
    assert job.workflow is Workflow.SKETCH and job.request.mode is Mode.IMG2IMG
    assert job.target == doc.rect and job.request.mask is None
    assert (job.request.image[82, 50:114] == (10, 20, 200)).all()  # the stroke is in the image


def test_img2img_on_selection_and_txt2img_sizes():
    doc = photo(400, 300)
    select(doc, Rect(100, 100, 50, 60))
    job = build_request(doc, MODEL)
    assert job.workflow is Workflow.IMG2IMG_SELECTION and job.request.mode is Mode.IMG2IMG
    assert job.target == Rect(84, 84, 82, 92)

    blank = Document.blank(768, 512)
    job = build_request(blank, MODEL)
    assert job.workflow is Workflow.TXT2IMG and job.request.image is None
    assert job.target == blank.rect
    w, h = job.request.width, job.request.height
    assert (
        w % 8 == 0 and h % 8 == 0 and abs(w / h - 1.5) < 0.05 and abs(w * h - 512**2) < 0.1 * 512**2
    )
    exact = build_request(
        blank, GenerationParams(**{**MODEL.__dict__, "resolution": ResolutionPolicy.EXACT})
    )
    assert (exact.request.width, exact.request.height) == (768, 512)


def test_override_and_errors():
    doc = photo(128, 128)
    paint_mask(doc, Rect(10, 10, 20, 20))
    job = build_request(doc, GenerationParams(**{**MODEL.__dict__, "workflow": Workflow.IMG2IMG}))
    assert job.request.mode is Mode.IMG2IMG and job.request.mask is None
    with pytest.raises(RequestBuildError, match="classic engine"):
        build_request(photo(64, 64), GenerationParams(model_path=None))
    with pytest.raises(RequestBuildError, match="inpaint mask"):
        build_request(
            photo(64, 64), GenerationParams(**{**MODEL.__dict__, "workflow": Workflow.INPAINT})
        )
    with pytest.raises(RequestBuildError, match="steps"):
        build_request(doc, GenerationParams(**{**MODEL.__dict__, "steps": 0}))
    classic = build_request(doc, GenerationParams(model_path=None))
    assert classic.request.model_path is None and classic.request.mode is Mode.INPAINT


def test_control_layers_become_control_inputs():
    from inference.openpose import Person, Pose

    doc = photo(128, 128)
    canny = doc.add_layer(LayerKind.CONTROL, control=ControlSettings("canny", "/cn/canny"))
    canny.raster.write(Rect(0, 0, 128, 1), np.full((1, 128, 4), 255, np.uint8))
    pose = doc.add_layer(
        LayerKind.POSE, control=ControlSettings("openpose", "/cn/pose", 0.5, 0.1, 0.9)
    )
    pose.pose = Pose(128, 128, (Person.standing(30, 10, 60, 110),))
    sketch = add_sketch(doc, Rect(0, 64, 128, 32), active=False)
    sketch.control = ControlSettings("scribble", "/cn/scribble")
    off = doc.add_layer(LayerKind.CONTROL, control=ControlSettings("depth", "/cn/d", enabled=False))
    off.raster.write(Rect(0, 0, 4, 4), np.full((4, 4, 4), 255, np.uint8))
    job = build_request(doc, MODEL)
    kinds = [c.control_type for c in job.request.controls]
    assert kinds == ["canny", "openpose", "scribble"]
    canny_in, pose_in, scribble_in = job.request.controls
    assert canny_in.image.shape == (128, 128, 3)
    assert (canny_in.image[0] == 255).all() and (canny_in.image[1:] == 0).all()
    assert pose_in.weight == 0.5 and (pose_in.start, pose_in.end) == (0.1, 0.9)
    assert pose_in.image.any() and pose_in.model_path == "/cn/pose"
    assert (scribble_in.image[80] == 255).all() and scribble_in.image[:79].max() == 0
    assert [c["type"] for c in job.recipe["controls"]] == ["canny", "openpose", "scribble"]
    # the pose rendered over a crop equals the same crop of a full-canvas render
    from inference.openpose_render import render_pose

    paint_mask(doc, Rect(40, 40, 20, 20))
    cropped = build_request(doc, GenerationParams(**{**MODEL.__dict__, "padding": 0}))
    o = cropped.origin
    full = render_pose(pose.pose)
    assert np.array_equal(cropped.request.controls[1].image, full[o.y : o.bottom, o.x : o.right])


def test_control_layer_without_model_is_refused():
    doc = photo(64, 64)
    doc.add_layer(LayerKind.CONTROL, control=ControlSettings("canny", None))
    with pytest.raises(RequestBuildError, match="no ControlNet model"):
        build_request(doc, MODEL)


def test_recipe_round_trip_and_parameters_text():
    doc = photo(128, 128)
    paint_mask(doc, Rect(10, 10, 20, 20))
    params = GenerationParams(
        **{
            **MODEL.__dict__,
            "sampler": Sampler.DDIM,
            "steps": 12,
            "negative_prompt": "blurry",
            "model_hash": "abcdef1234",
        }
    )
    job = build_request(doc, params)
    again = params_from_recipe(job.recipe, GenerationParams())
    assert (again.prompt, again.sampler, again.steps, again.seed, again.model_path) == (
        "a red barn",
        Sampler.DDIM,
        12,
        42,
        "/models/sd15.safetensors",
    )
    text = format_parameters(job.recipe)
    assert text.splitlines()[0] == "a red barn"
    assert "Negative prompt: blurry" in text and "Seed: 42" in text and "Sampler: DDIM" in text
    assert "Model hash: abcdef1234" in text
    mask = np.zeros((5, 7), np.uint8)
    mask[1:3, 2:5] = 255
    from app.generation.request import encode_mask

    assert np.array_equal(decode_mask(encode_mask(mask)), mask)


def test_an_imported_control_map_of_another_size_is_fitted_to_the_canvas():
    from app.layers import Layer

    doc = photo(200, 100)
    depth = np.zeros((50, 50, 4), np.uint8)
    depth[..., 3] = 255
    depth[:, 25:, :3] = 255  # right half white
    layer = Layer(
        LayerKind.CONTROL,
        "Depth",
        Raster(4, depth),
        control=ControlSettings("depth", "/cn/depth", resize_mode="just resize"),
    )
    doc.insert_layer(layer)
    (control,) = build_request(doc, MODEL).request.controls
    assert control.image.shape == (100, 200, 3)
    assert (control.image[:, :95] == 0).all() and (control.image[:, 105:] == 255).all()


def test_any_raster_layer_can_be_used_as_control():
    doc = photo(64, 64)
    doc.layers[0].control = ControlSettings("lineart", "/cn/lineart")
    (control,) = build_request(doc, MODEL).request.controls
    assert control.control_type == "lineart"
    assert np.array_equal(control.image, doc.layers[0].raster.data[..., :3])


def test_picture_fast_path_equals_the_composite():
    from app.compose import flatten_rgb
    from app.generation.request import picture_rgb

    doc = photo(64, 48)
    area = Rect(5, 6, 40, 30)
    fast = picture_rgb(doc, area)
    assert np.array_equal(fast, flatten_rgb(doc.layers, area))
    doc.layers[0].raster.data[10, 10, 3] = 100  # not opaque: composited over white
    assert np.array_equal(picture_rgb(doc, area), flatten_rgb(doc.layers, area))
    fast[:] = 0  # a copy, never a view of the layer
    assert doc.layers[0].raster.data[6:36, 5:45, :3].any()


# ---- LoRAs -------------------------------------------------------------------------------


@pytest.fixture
def lora_file(tmp_path):
    from tests.inference import test_library_fakes as fakes

    return str(
        fakes.write_fake_safetensors(tmp_path / "ink style.safetensors", fakes.kohya_lora_sd1())
    )


def test_loras_go_into_the_request_and_the_recipe(lora_file):
    from dataclasses import replace

    from inference.loras import lora_hash

    plan = build_request(photo(), replace(MODEL, loras=((lora_file, 0.75),)))
    assert plan.request.loras == ((lora_file, 0.75),)
    digest = lora_hash(lora_file)
    assert len(digest) == 12
    assert plan.recipe["loras"] == [
        {"name": "ink style", "weight": 0.75, "hash": digest, "path": lora_file}
    ]
    assert plan.recipe["lora_tags"] == "<lora:ink style:0.75>"
    assert plan.recipe["lora_hashes"] == f"ink style: {digest}"
    text = format_parameters(plan.recipe)
    assert text.startswith("a red barn <lora:ink style:0.75>\n")
    assert f'Lora hashes: "ink style: {digest}"' in text
    assert "loras" not in build_request(photo(), MODEL).recipe  # none chosen: none recorded


def test_the_classic_engine_gets_no_loras(lora_file):
    doc = photo()
    paint_mask(doc, Rect(20, 20, 30, 30))
    plan = build_request(doc, GenerationParams(model_path=None, loras=((lora_file, 1.0),)))
    assert plan.request.loras == () and "loras" not in plan.recipe


def test_bad_loras_are_refused_before_the_job(lora_file, tmp_path):
    from dataclasses import replace

    missing = str(tmp_path / "gone.safetensors")
    with pytest.raises(RequestBuildError, match="LoRA not found"):
        build_request(photo(), replace(MODEL, loras=((missing, 1.0),)))
    with pytest.raises(RequestBuildError, match="not a number"):
        build_request(photo(), replace(MODEL, loras=((lora_file, float("nan")),)))


def test_recipe_loras_come_back_as_pairs(lora_file):
    from dataclasses import replace

    recipe = build_request(photo(), replace(MODEL, loras=((lora_file, -0.5),))).recipe
    base = replace(MODEL, loras=(("/current.safetensors", 1.0),))
    assert params_from_recipe(recipe, base).loras == ((lora_file, -0.5),)
    assert params_from_recipe({"prompt": "x"}, base).loras == ()  # the recipe used none
    state = {"loras": [["/a.safetensors", 0.5], ["/b.safetensors", "1"]]}  # a panel state
    assert params_from_recipe(state, base).loras == (
        ("/a.safetensors", 0.5),
        ("/b.safetensors", 1.0),
    )
    odd = {"loras": [{"name": "no path", "weight": 1}, {"path": "/c", "weight": "x"}, 7, ["/d", 2]]}
    assert params_from_recipe(odd, base).loras == (("/d", 2.0),)
    assert params_from_recipe({"loras": "junk"}, base).loras == ()
