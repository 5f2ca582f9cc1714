"""Model detection, bundled offline configs and the bundled CLIP tokenizer."""

from __future__ import annotations

import json

import pytest

from inference.library.entry import Base
from inference.models import (
    CONFIGS_DIR,
    bundled_config_dir,
    bundled_tokenizers,
    clip_tokenizer,
    detect_family,
    inspect_model,
)

UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"


def test_detect_family_from_ldm_keys():
    sd1 = {UNET_IN: (320, 4, 3, 3), "cond_stage_model.transformer.text_model.x": (1,)}
    sd2 = {UNET_IN: (320, 9, 3, 3), "cond_stage_model.model.token_embedding.weight": (1,)}
    sdxl = {UNET_IN: (320, 4, 3, 3), "conditioner.embedders.1.model.positional_embedding": (1,)}
    assert detect_family(sd1) == (Base.SD1, False)
    assert detect_family(sd2) == (Base.SD2, True)
    assert detect_family(sdxl) == (Base.SDXL, False)


def test_detect_refuses_files_without_a_unet():
    from inference.api import ModelLoadError

    with pytest.raises(ModelLoadError, match="no Stable Diffusion UNet"):
        detect_family({"lora_unet_down.weight": (4, 4)})


def test_inspect_folder_and_single_file(tiny_model_dir, tiny_inpaint_model_dir, tiny_single_file):
    folder = inspect_model(tiny_model_dir)
    assert (folder.format, folder.family, folder.inpaint) == ("folder", Base.SD1, False)
    assert inspect_model(tiny_inpaint_model_dir).inpaint
    single = inspect_model(tiny_single_file)
    assert single.format == "single_file"
    assert single.config_dir == tiny_single_file.with_name("tiny-sd.config")


def test_single_file_without_sidecar_uses_bundled_config(tmp_path, tiny_single_file):
    import shutil

    alone = tmp_path / "alone.safetensors"
    shutil.copy(tiny_single_file, alone)
    assert inspect_model(alone).config_dir == CONFIGS_DIR / "sd15"


@pytest.mark.parametrize(
    "family, inpaint, name",
    [
        ("sd1", False, "sd15"),
        ("sd1", True, "sd15-inpaint"),
        ("sd2", False, "sd2"),
        ("sd2", True, "sd2-inpaint"),
        ("sdxl", False, "sdxl"),
        ("sdxl", True, "sdxl-inpaint"),
    ],
)
def test_bundled_configs_build_full_size_architectures(family, inpaint, name):
    """Every bundled config instantiates (on the meta device, no memory) with the real shapes."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig

    folder = bundled_config_dir(family, inpaint)
    assert folder.name == name
    index = json.loads((folder / "model_index.json").read_text())
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
    assert unet.config.in_channels == (9 if inpaint else 4)
    context = {"sd1": 768, "sd2": 1024, "sdxl": 2048}[family]
    assert unet.config.cross_attention_dim == context
    params = sum(p.numel() for p in unet.parameters())
    expected = {"sd1": 859e6, "sd2": 865e6, "sdxl": 2567e6}[family]
    assert abs(params - expected) / expected < 0.01  # the published parameter counts
    text = CLIPTextConfig.from_pretrained(folder / "text_encoder")
    assert text.hidden_size == {"sd1": 768, "sd2": 1024, "sdxl": 768}[family]
    assert set(bundled_tokenizers(folder)) == (
        {"tokenizer", "tokenizer_2"} if family == "sdxl" else {"tokenizer"}
    )
    assert ("text_encoder_2" in index) == (family == "sdxl")


def test_bundled_clip_tokenizer_matches_openai_ids():
    tokenizer = clip_tokenizer()
    ids = tokenizer("a photo of a cat").input_ids
    assert ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert len(tokenizer) == 49408
    padded = clip_tokenizer("!")("a cat", padding="max_length", max_length=77).input_ids
    assert len(padded) == 77 and padded[-1] == 0  # SD2/SDXL-G pad with "!" (id 0)


def test_v_pred_marker_switches_the_scheduler(engine, tmp_path, tiny_single_file):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    state = load_file(str(tiny_single_file))
    state["v_pred"] = torch.tensor([])
    vpred = tmp_path / "vpred.safetensors"
    save_file(state, str(vpred))
    shutil.copytree(tiny_single_file.with_name("tiny-sd.config"), tmp_path / "vpred.config")
    loaded = engine.load(str(vpred))
    assert loaded.info.v_prediction
    assert loaded.scheduler_config["prediction_type"] == "v_prediction"
    assert engine.load(str(tiny_single_file)).scheduler_config["prediction_type"] == "epsilon"


def test_a_rank_0_unet_tensor_is_refused_not_crashed():
    from inference.api import ModelLoadError

    with pytest.raises(ModelLoadError, match="not a 4-D convolution"):
        detect_family({UNET_IN: ()})
    shapes = {UNET_IN: (320, 4, 3, 3), _CONTEXT: ()}
    assert detect_family(shapes) == (Base.SD1, False)


_CONTEXT = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"


def test_pickles_refused_by_default_and_one_line_when_allowed(tmp_path):
    """A pickle that would run code: refused without loading by default; with pickles allowed,
    torch.load(weights_only=True) refuses it and we say so in one line (no torch advice)."""
    from inference.api import ModelLoadError
    from tests.hostile_cli.generators import write_pickles

    write_pickles(tmp_path)
    with pytest.raises(ModelLoadError, match="pickle checkpoint"):
        inspect_model(tmp_path / "evil.ckpt")
    with pytest.raises(ModelLoadError) as info:
        inspect_model(tmp_path / "evil.ckpt", allow_pickle=True)
    message = str(info.value)
    assert "\n" not in message and "weights_only" not in message
    assert message.startswith("evil.ckpt was not loaded: it holds more than plain tensors")


def test_old_non_zip_ckpt_loads_when_pickles_are_allowed(tmp_path, tiny_single_file):
    """Legacy (pre-zip) torch checkpoints cannot be memory-mapped; they still load, and only
    through weights_only."""
    import shutil

    import torch
    from safetensors.torch import load_file

    from inference.api import EngineSettings
    from inference.models import load_model

    state = load_file(str(tiny_single_file))
    ckpt = tmp_path / "old-model.ckpt"
    torch.save({"state_dict": state}, str(ckpt), _use_new_zipfile_serialization=False)
    sidecar = tiny_single_file.with_name(tiny_single_file.stem + ".config")
    shutil.copytree(sidecar, tmp_path / "old-model.config")
    info = inspect_model(ckpt, allow_pickle=True)
    assert info.format == "single_file" and info.family is Base.SD1
    loaded = load_model(ckpt, EngineSettings(device="cpu", allow_pickle=True))
    assert loaded.base.unet is not None and len(loaded.hash) == 10


def test_steps_times_strength_below_one_still_denoises_one_step():
    from inference.engine import steps_for_strength

    assert steps_for_strength(20, 0.5) == 20  # unchanged when a step is left
    assert steps_for_strength(3, 0.3) == 4 and int(4 * 0.3) == 1
    assert steps_for_strength(1, 0.01) == 100 and int(100 * 0.01) == 1
