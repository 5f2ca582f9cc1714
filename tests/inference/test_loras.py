"""LoRA loading on the tiny model, loaded the way the engine loads it (``Engine.load``)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from inference.api import EngineSettings, InvalidRequestError, Mode, ModelLoadError
from inference.loras import (
    apply_loras,
    loaded_loras,
    lora_hash,
    lora_recipe,
    prompt_with_lora_tags,
    split_lora_tags,
    unload_loras,
)
from tests.tiny_loras import (
    TEXT_MLP_TARGETS,
    TEXT_TARGETS,
    UNET_FF_TARGETS,
    UNET_TARGETS,
    merge_lora_into,
    only,
    save_diffusers_lora,
    save_kohya_lora,
    tiny_lora_factors,
)

pytest.importorskip("peft")


def render(pipe, seed: int = 3) -> np.ndarray:
    """One 64 px, 2-step txt2img image as float RGB in [0, 1]."""
    import torch

    generator = torch.Generator("cpu").manual_seed(seed)
    output = pipe(
        "the cat",
        num_inference_steps=2,
        height=64,
        width=64,
        guidance_scale=7.0,
        generator=generator,
        output_type="np",
    )
    return np.asarray(output.images[0])


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread, most of all on a shared 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def as_bytes(image: np.ndarray) -> np.ndarray:
    return (image * 255).round().clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    """The tiny model loaded through the engine's loading path, with its base image rendered
    before any LoRA ever touched it."""
    from inference.engine import Engine

    engine = Engine(EngineSettings(device="cpu"), max_models=1)
    loaded = engine.load(str(tiny_model_dir))
    pipe = loaded.pipeline(Mode.TXT2IMG)
    base = render(pipe)
    yield loaded, pipe, base
    engine.close()


@pytest.fixture
def pipe(model):
    _, pipe, _ = model
    yield pipe
    unload_loras(pipe)  # isolation only: the tests themselves check switching off, not unloading


@pytest.fixture
def base(model) -> np.ndarray:
    return model[2]


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("loras")


@pytest.fixture(scope="module")
def kohya_factors():
    return tiny_lora_factors(seed=0, rank=4, alpha=2.0)  # alpha/rank = 0.5 exercises alphas


@pytest.fixture(scope="module")
def kohya_file(lora_dir, kohya_factors) -> Path:
    return save_kohya_lora(lora_dir / "kohya-style.safetensors", kohya_factors)


@pytest.fixture(scope="module")
def diffusers_factors():
    return tiny_lora_factors(seed=1, rank=4)


@pytest.fixture(scope="module")
def diffusers_file(lora_dir, diffusers_factors) -> Path:
    return save_diffusers_lora(lora_dir / "diffusers-style.safetensors", diffusers_factors)


@pytest.fixture(scope="module")
def unet_only_file(lora_dir) -> Path:
    factors = tiny_lora_factors(seed=2, text_encoder=False)
    return save_kohya_lora(lora_dir / "unet-only.safetensors", factors)


def reference(tiny_model_dir, *merges) -> np.ndarray:
    """The image of a plain diffusers pipeline whose weights had the LoRAs merged by hand."""
    from diffusers import StableDiffusionPipeline

    ref = StableDiffusionPipeline.from_pretrained(
        str(tiny_model_dir), safety_checker=None, feature_extractor=None, local_files_only=True
    )
    ref.set_progress_bar_config(disable=True)
    for factors, weight in merges:
        merge_lora_into(ref, factors, weight)
    return render(ref)


# ---- the LoRA is applied, correctly, in both file formats -----------------------------------


def test_kohya_lora_matches_weights_merged_by_hand(
    pipe, base, kohya_file, kohya_factors, tiny_model_dir
):
    apply_loras(pipe, [(str(kohya_file), 0.8)])
    image = render(pipe)
    assert np.abs(as_bytes(image).astype(int) - as_bytes(base)).max() > 10
    expected = reference(tiny_model_dir, (kohya_factors, 0.8))
    np.testing.assert_allclose(image, expected, atol=1e-3)


def test_diffusers_lora_matches_weights_merged_by_hand(
    pipe, diffusers_file, diffusers_factors, tiny_model_dir
):
    apply_loras(pipe, [(str(diffusers_file), 0.5)])
    expected = reference(tiny_model_dir, (diffusers_factors, 0.5))
    np.testing.assert_allclose(render(pipe), expected, atol=1e-3)


def test_two_loras_add_up(
    pipe, kohya_file, kohya_factors, diffusers_file, diffusers_factors, tiny_model_dir
):
    apply_loras(pipe, [(str(kohya_file), 0.5), (str(diffusers_file), -0.3)])
    both = render(pipe)
    expected = reference(tiny_model_dir, (kohya_factors, 0.5), (diffusers_factors, -0.3))
    np.testing.assert_allclose(both, expected, atol=1e-3)
    apply_loras(pipe, [(str(kohya_file), 0.5)])
    assert np.abs(render(pipe) - both).max() > 0.02


def test_the_same_file_twice_adds_its_weights(pipe, kohya_file):
    apply_loras(pipe, [(str(kohya_file), 0.4), (str(kohya_file), 0.4)])
    doubled = as_bytes(render(pipe))
    apply_loras(pipe, [(str(kohya_file), 0.8)])
    assert np.array_equal(doubled, as_bytes(render(pipe)))
    assert len(loaded_loras(pipe)) == 1


def test_weight_changes_the_strength(pipe, base, kohya_file):
    apply_loras(pipe, [(str(kohya_file), 0.3)])
    weak = render(pipe)
    apply_loras(pipe, [(str(kohya_file), 1.0)])
    strong = render(pipe)
    assert 0 < np.abs(weak - base).mean() < np.abs(strong - base).mean()


# ---- every layer a file holds is applied, whatever subset it holds (issue 14) -----------------


@pytest.fixture(scope="module")
def wide_factors():
    """Attention and MLP layers of both the UNet and the text encoder; alpha/rank = 0.75."""
    return tiny_lora_factors(
        seed=7,
        rank=4,
        alpha=3.0,
        unet_targets=UNET_TARGETS + UNET_FF_TARGETS,
        text_targets=TEXT_TARGETS + TEXT_MLP_TARGETS,
    )


def assert_deltas_match(pipe, factors, weight: float) -> None:
    """Every layer of ``factors`` carries exactly weight * alpha / rank * up @ down, and no
    other layer of the model carries anything."""
    (adapter,) = loaded_loras(pipe)
    changed = set()
    for component in ("unet", "text_encoder"):
        for path, module in getattr(pipe, component).named_modules():
            if hasattr(module, "get_delta_weight") and adapter in getattr(module, "lora_A", {}):
                changed.add(f"{component}.{path}")
    assert changed == set(factors)
    for key, (down, up, alpha) in factors.items():
        component, path = key.split(".", 1)
        delta = getattr(pipe, component).get_submodule(path).get_delta_weight(adapter).detach()
        expected = (up @ down) * (weight * alpha / down.shape[0])
        assert float((delta - expected).abs().max()) <= 1e-5 * float(expected.abs().max()), key


TEXT_LAYER_0 = "text_encoder.encoder.layers.0."
LAYER_SETS = {
    "everything": (),
    # a partial text-encoder attention set beside MLP layers (q without k/v/out): the layers
    # diffusers' converter used to drop silently
    "text q_proj of layer 0 + every text mlp.fc1 + UNet ff": (
        TEXT_LAYER_0 + "self_attn.q_proj",
        "mlp.fc1",
        "ff.net",
    ),
    # only a partial attention set: used to fail with "Could not infer state dict type"
    "text q_proj of layer 0 and v_proj of layer 3 only": (
        TEXT_LAYER_0 + "self_attn.q_proj",
        "text_encoder.encoder.layers.3.self_attn.v_proj",
    ),
    "UNet attn1.to_k and text out_proj only": ("attn1.to_k", "self_attn.out_proj"),
}


@pytest.mark.parametrize("layers", list(LAYER_SETS), ids=list(LAYER_SETS))
def test_kohya_layer_subsets_match_weights_merged_by_hand(
    pipe, base, lora_dir, wide_factors, tiny_model_dir, layers
):
    parts = LAYER_SETS[layers]
    factors = only(wide_factors, *parts) if parts else wide_factors
    path = save_kohya_lora(
        lora_dir / f"subset-{list(LAYER_SETS).index(layers)}.safetensors", factors
    )
    apply_loras(pipe, [(str(path), 0.7)])
    assert_deltas_match(pipe, factors, 0.7)
    image = render(pipe)
    assert np.abs(image - base).max() > 0.01  # the LoRA did something
    expected = reference(tiny_model_dir, (factors, 0.7))
    np.testing.assert_allclose(image, expected, atol=1e-3)


def test_diffusers_partial_text_encoder_set_matches_weights_merged_by_hand(
    pipe, base, lora_dir, tiny_model_dir
):
    wide = tiny_lora_factors(seed=8, rank=4, text_targets=TEXT_TARGETS + TEXT_MLP_TARGETS)
    factors = only(wide, TEXT_LAYER_0 + "self_attn.q_proj", "mlp.fc1", "attn2.to_v")
    path = save_diffusers_lora(lora_dir / "diffusers-partial.safetensors", factors)
    apply_loras(pipe, [(str(path), 0.9)])
    image = render(pipe)
    assert np.abs(image - base).max() > 0.01
    np.testing.assert_allclose(image, reference(tiny_model_dir, (factors, 0.9)), atol=1e-3)


def test_a_layer_that_was_not_applied_is_an_error_naming_it(pipe, base, kohya_file, monkeypatch):
    """If the libraries skip a part of the file (here: the whole text encoder), loading fails
    and names what was skipped, instead of generating with half a LoRA."""
    monkeypatch.setattr(pipe, "load_lora_into_text_encoder", lambda *args, **kwargs: None)
    with pytest.raises(ModelLoadError, match=r"could not apply 20 of its 52 layers") as error:
        apply_loras(pipe, [(str(kohya_file), 1.0)])
    assert "lora_te_text_model_encoder_layers_0_self_attn" in str(error.value)
    assert loaded_loras(pipe) == {}
    assert np.array_equal(as_bytes(render(pipe)), as_bytes(base))


def test_a_diffusers_layer_that_was_not_applied_is_an_error(
    pipe, base, diffusers_file, monkeypatch
):
    monkeypatch.setattr(pipe, "load_lora_into_text_encoder", lambda *args, **kwargs: None)
    with pytest.raises(ModelLoadError, match=r"text_encoder\.encoder\.layers\.0\.self_attn"):
        apply_loras(pipe, [(str(diffusers_file), 1.0)])
    assert np.array_equal(as_bytes(render(pipe)), as_bytes(base))


def test_kohya_layer_the_model_lacks_is_named(pipe, base, tmp_path, kohya_factors):
    import torch
    from safetensors.torch import save_file

    path = save_kohya_lora(tmp_path / "extra.safetensors", kohya_factors)
    from safetensors.torch import load_file

    state = load_file(str(path))
    stem = "lora_te_text_model_encoder_layers_9_self_attn_q_proj"  # the tiny CLIP has 5 layers
    state[f"{stem}.lora_down.weight"] = torch.ones(4, 32)
    state[f"{stem}.lora_up.weight"] = torch.ones(32, 4)
    save_file(state, str(path))
    with pytest.raises(ModelLoadError, match=f"1 of its 53 layers are not in it \\({stem}\\)"):
        apply_loras(pipe, [(str(path), 1.0)])
    assert loaded_loras(pipe) == {}
    assert np.array_equal(as_bytes(render(pipe)), as_bytes(base))


# ---- switching off: byte-identical to the model before any LoRA ------------------------------


def test_weight_zero_gives_the_base_image(pipe, base, kohya_file):
    apply_loras(pipe, [(str(kohya_file), 0.0)])
    assert np.array_equal(as_bytes(render(pipe)), as_bytes(base))


def test_request_without_lora_gives_the_base_image_again(pipe, base, kohya_file, diffusers_file):
    apply_loras(pipe, [(str(kohya_file), 1.0), (str(diffusers_file), 0.6)])
    with_loras = as_bytes(render(pipe))
    assert not np.array_equal(with_loras, as_bytes(base))
    apply_loras(pipe, [])
    assert np.array_equal(as_bytes(render(pipe)), as_bytes(base))
    apply_loras(pipe, [(str(kohya_file), 1.0), (str(diffusers_file), 0.6)])
    assert np.array_equal(as_bytes(render(pipe)), with_loras)


def test_idle_adapters_are_evicted_and_the_rest_still_works(pipe, base, kohya_file, unet_only_file):
    apply_loras(pipe, [(str(unet_only_file), 1.0)])
    unet_only = as_bytes(render(pipe))
    apply_loras(pipe, [(str(kohya_file), 1.0)], max_idle=0)
    assert list(loaded_loras(pipe).values()) == [kohya_file.resolve()]
    apply_loras(pipe, [], max_idle=0)
    assert loaded_loras(pipe) == {}
    assert np.array_equal(as_bytes(render(pipe)), as_bytes(base))
    apply_loras(pipe, [(str(unet_only_file), 1.0)])
    assert np.array_equal(as_bytes(render(pipe)), unet_only)
    apply_loras(pipe, [(str(kohya_file), 1.0)])  # two loaded; the next call evicts the older
    apply_loras(pipe, [], max_idle=1)
    assert list(loaded_loras(pipe).values()) == [kohya_file.resolve()]
    assert np.array_equal(as_bytes(render(pipe)), as_bytes(base))


# ---- caching ---------------------------------------------------------------------------------


@pytest.fixture
def load_calls(pipe, monkeypatch) -> list:
    calls: list = []
    original = pipe.load_lora_weights

    def counting(*args, **kwargs):
        calls.append(kwargs.get("adapter_name"))
        return original(*args, **kwargs)

    monkeypatch.setattr(pipe, "load_lora_weights", counting)
    return calls


def test_same_request_again_loads_nothing(pipe, kohya_file, load_calls):
    apply_loras(pipe, [(str(kohya_file), 1.0)])
    first = as_bytes(render(pipe))
    apply_loras(pipe, [(str(kohya_file), 1.0)])
    apply_loras(pipe, [])
    apply_loras(pipe, [(str(kohya_file), 1.0)])
    assert len(load_calls) == 1
    assert np.array_equal(as_bytes(render(pipe)), first)


def test_file_changed_on_disk_is_reloaded(pipe, lora_dir, load_calls):
    path = save_kohya_lora(lora_dir / "changing.safetensors", tiny_lora_factors(seed=5))
    apply_loras(pipe, [(str(path), 1.0)])
    before = as_bytes(render(pipe))
    save_kohya_lora(path, tiny_lora_factors(seed=6))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    apply_loras(pipe, [(str(path), 1.0)])
    assert len(load_calls) == 2
    assert len(loaded_loras(pipe)) == 1  # the old version's adapter is gone
    assert not np.array_equal(as_bytes(render(pipe)), before)


def test_pipelines_of_other_modes_share_the_loaded_adapters(model, pipe, kohya_file, load_calls):
    loaded, _, _ = model
    img2img = loaded.pipeline(Mode.IMG2IMG)
    apply_loras(pipe, [(str(kohya_file), 1.0)])
    apply_loras(img2img, [(str(kohya_file), 1.0)])
    assert len(load_calls) == 1
    assert loaded_loras(img2img) == loaded_loras(pipe)


def test_a_diffusers_lora_folder_is_accepted(pipe, base, lora_dir, diffusers_factors):
    folder = lora_dir / "my-style"
    save_diffusers_lora(folder / "pytorch_lora_weights.safetensors", diffusers_factors)
    apply_loras(pipe, [(str(folder), 1.0)])
    assert not np.array_equal(as_bytes(render(pipe)), as_bytes(base))


# ---- failures: typed, clear, and the model is left as it was ---------------------------------


def test_missing_file(pipe, base, tmp_path):
    with pytest.raises(ModelLoadError, match="LoRA not found"):
        apply_loras(pipe, [(str(tmp_path / "nope.safetensors"), 1.0)])
    assert np.array_equal(as_bytes(render(pipe)), as_bytes(base))


def test_checkpoint_is_not_a_lora(pipe, tiny_single_file):
    with pytest.raises(ModelLoadError, match=r"is not a LoRA .*checkpoint"):
        apply_loras(pipe, [(str(tiny_single_file), 1.0)])


def test_garbage_file(pipe, tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ModelLoadError, match="not a readable safetensors"):
        apply_loras(pipe, [(str(path), 1.0)])


def test_other_extension(pipe, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ModelLoadError, match=r"expected \.safetensors"):
        apply_loras(pipe, [(str(path), 1.0)])


def test_pickle_lora_refused_unless_allowed(pipe, base, tmp_path, kohya_file):
    import torch
    from safetensors.torch import load_file

    path = tmp_path / "old.ckpt"
    torch.save(load_file(str(kohya_file)), str(path))
    with pytest.raises(ModelLoadError, match="pickle"):
        apply_loras(pipe, [(str(path), 1.0)])
    assert loaded_loras(pipe) == {}
    apply_loras(pipe, [(str(path), 1.0)], allow_pickle=True)  # weights_only loading
    pickled = as_bytes(render(pipe))
    apply_loras(pipe, [(str(kohya_file), 1.0)])
    assert np.array_equal(pickled, as_bytes(render(pipe)))


def test_sdxl_lora_on_sd1_model(pipe, base, tmp_path):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "xl-style.safetensors"
    stem = "lora_te2_text_model_encoder_layers_0_self_attn_q_proj"
    unet = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"
    save_file(
        {
            f"{stem}.lora_down.weight": torch.zeros(4, 1280),
            f"{stem}.lora_up.weight": torch.zeros(1280, 4),
            f"{unet}.lora_down.weight": torch.zeros(4, 2048),
            f"{unet}.lora_up.weight": torch.zeros(640, 4),
        },
        str(path),
    )
    with pytest.raises(
        ModelLoadError, match=r"made for SDXL models but the loaded model is SD1\.x"
    ):
        apply_loras(pipe, [(str(path), 1.0)])
    assert np.array_equal(as_bytes(render(pipe)), as_bytes(base))


def test_lora_with_the_wrong_shapes(pipe, base, tmp_path, kohya_file):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "sd15-sized.safetensors"
    stem = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q"
    save_file(
        {
            f"{stem}.lora_down.weight": torch.ones(4, 320),
            f"{stem}.lora_up.weight": torch.ones(320, 4),
        },
        str(path),
    )
    with pytest.raises(ModelLoadError, match="does not fit this model"):
        apply_loras(pipe, [(str(path), 1.0)])  # the first LoRA this model ever sees
    assert loaded_loras(pipe) == {}
    assert np.array_equal(as_bytes(render(pipe)), as_bytes(base))
    apply_loras(pipe, [(str(kohya_file), 1.0)])
    good = as_bytes(render(pipe))
    with pytest.raises(ModelLoadError, match="does not fit this model"):
        apply_loras(pipe, [(str(kohya_file), 1.0), (str(path), 1.0)])
    assert list(loaded_loras(pipe).values()) == [kohya_file.resolve()]
    apply_loras(pipe, [(str(kohya_file), 1.0)])
    assert np.array_equal(as_bytes(render(pipe)), good)
    apply_loras(pipe, [])
    assert np.array_equal(as_bytes(render(pipe)), as_bytes(base))


def test_lora_matching_no_layer(pipe, tmp_path):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "elsewhere.safetensors"
    save_file(
        {
            "unet.nowhere.to_q.lora_A.weight": torch.ones(4, 32),
            "unet.nowhere.to_q.lora_B.weight": torch.ones(32, 4),
        },
        str(path),
    )
    with pytest.raises(ModelLoadError, match="does not fit this model"):
        apply_loras(pipe, [(str(path), 1.0)])


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), "strong"])
def test_weight_must_be_a_number(pipe, kohya_file, weight):
    with pytest.raises(InvalidRequestError):
        apply_loras(pipe, [(str(kohya_file), weight)])


# ---- recipe helpers --------------------------------------------------------------------------


def test_lora_hash_is_a1111_autov3_and_ignores_metadata(tmp_path, kohya_factors):
    first = save_kohya_lora(tmp_path / "a.safetensors", kohya_factors)
    data = first.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    assert lora_hash(first) == hashlib.sha256(data[8 + length :]).hexdigest()[:12]
    header = json.loads(data[8 : 8 + length])
    header["__metadata__"] = {"ss_output_name": "renamed", "note": "x" * 50}
    raw = json.dumps(header).encode()
    second = tmp_path / "b.safetensors"
    second.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + length :])
    assert lora_hash(second) == lora_hash(first)


def test_recipe_fields_and_prompt_tags(kohya_file, diffusers_file):
    loras = [(str(kohya_file), 0.8), (str(diffusers_file), 1.0)]
    recipe = lora_recipe(loras)
    assert [e["name"] for e in recipe["loras"]] == ["kohya-style", "diffusers-style"]
    assert recipe["lora_hashes"] == (
        f"kohya-style: {lora_hash(kohya_file)}, diffusers-style: {lora_hash(diffusers_file)}"
    )
    assert recipe["lora_tags"] == "<lora:kohya-style:0.8> <lora:diffusers-style:1>"
    prompt = prompt_with_lora_tags("a cat", loras)
    assert prompt == "a cat <lora:kohya-style:0.8> <lora:diffusers-style:1>"
    assert split_lora_tags(prompt) == ("a cat", [("kohya-style", 0.8), ("diffusers-style", 1.0)])
    assert lora_recipe([]) == {}
    assert prompt_with_lora_tags("a cat", []) == "a cat"


def test_split_tags_accepts_a1111_variants():
    text, found = split_lora_tags("<LORA:x:0.5> a dog, <lora:y:1.2:0.8> in snow")
    assert text == "a dog, in snow"
    assert found == [("x", 0.5), ("y", 1.2)]


# ---- SDXL: two text encoders (lora_te1_ / lora_te2_) ------------------------------------------


def test_sdxl_kohya_partial_sets_of_both_text_encoders(tmp_path):
    import torch

    from tests.tiny_models import build_tiny_sdxl_pipeline

    pipe = build_tiny_sdxl_pipeline()
    generator = torch.Generator().manual_seed(4)
    factors = {}
    for component, path in [
        ("unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"),
        ("text_encoder", "encoder.layers.0.self_attn.q_proj"),
        ("text_encoder", "encoder.layers.1.mlp.fc1"),
        ("text_encoder_2", "text_model.encoder.layers.0.self_attn.v_proj"),
        ("text_encoder_2", "text_model.encoder.layers.0.mlp.fc2"),
    ]:
        linear = getattr(pipe, component).get_submodule(path)
        down = torch.randn(2, linear.in_features, generator=generator)
        up = torch.randn(linear.out_features, 2, generator=generator)
        factors[f"{component}.{path}"] = (down, up, 1.0)
    path = save_kohya_lora(tmp_path / "xl-partial.safetensors", factors, sdxl=True)
    try:
        apply_loras(pipe, [(str(path), 0.6)])
        (adapter,) = loaded_loras(pipe)
        for key, (down, up, alpha) in factors.items():
            component, module = key.split(".", 1)
            delta = getattr(pipe, component).get_submodule(module).get_delta_weight(adapter)
            delta = delta.detach()
            expected = (up @ down) * (0.6 * alpha / down.shape[0])
            assert float((delta - expected).abs().max()) <= 1e-5 * float(expected.abs().max())
    finally:
        unload_loras(pipe)
