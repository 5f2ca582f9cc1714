"""Few-step models recognised from names and safetensors metadata, with their presets."""

from __future__ import annotations

import pytest

from inference.api import Sampler
from inference.library import LibraryCache, inspect_path
from inference.library.entry import ModelKind
from inference.library.few_step import FewStep, detect_few_step, preset_for


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("dreamshaper_8_lcm.safetensors", FewStep.LCM),
        ("lcm-lora-sdv1-5.safetensors", FewStep.LCM),
        ("LCM_Dreamshaper_v7", FewStep.LCM),
        ("sd_xl_turbo_1.0_fp16.safetensors", FewStep.TURBO),
        ("sdxl_lightning_4step_lora.safetensors", FewStep.LIGHTNING),
        ("Hyper-SD15-8steps-lora.safetensors", FewStep.HYPER),
        ("hyper-sdxl-1step-unet", FewStep.HYPER),
        ("realisticVision_v60.safetensors", None),
        ("turbotax-receipts.safetensors", None),  # a word that merely starts with "turbo"
        ("clcmodel.safetensors", None),
    ],
)
def test_names(name, kind):
    assert detect_few_step(name) is kind


def test_metadata_names_the_model_when_the_file_name_does_not():
    assert detect_few_step("my_lora.safetensors", {"ss_output_name": "lcm-lora-sdxl"}) is (
        FewStep.LCM
    )
    assert detect_few_step("x.safetensors", {"modelspec.title": "SDXL-Lightning 8-step"}) is (
        FewStep.LIGHTNING
    )
    assert detect_few_step("x.safetensors", {"ss_network_module": "networks.lora"}) is None


def test_presets_follow_the_authors_and_a_step_count_in_the_name():
    lcm = preset_for(FewStep.LCM)
    assert (lcm.sampler, lcm.steps, lcm.guidance) == (Sampler.LCM, 4, 1.5)
    assert preset_for(FewStep.LIGHTNING, "sdxl_lightning_2step").steps == 2
    assert preset_for(FewStep.HYPER, "Hyper-SD15-8steps-lora").steps == 8
    for kind in FewStep:
        preset = preset_for(kind)
        assert 1 <= preset.steps <= 8 and 1.0 <= preset.guidance <= 2.0


def test_the_library_reads_the_kind_from_a_files_metadata(tmp_path):
    from tests.tiny_loras import save_kohya_lora, tiny_lora_factors

    path = save_kohya_lora(tmp_path / "my_lora.safetensors", tiny_lora_factors())
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    save_file(tensors, str(path), metadata={"ss_output_name": "Hyper-SD15-8steps-lora"})
    cache = LibraryCache(tmp_path / "cache.json")
    entry = inspect_path(path, cache=cache)
    assert entry.kind is ModelKind.LORA and entry.few_step == FewStep.HYPER.value
    again = inspect_path(path, cache=cache)  # from the cached classification
    assert again.few_step == FewStep.HYPER.value
    plain = save_kohya_lora(tmp_path / "plain.safetensors", tiny_lora_factors())
    assert inspect_path(plain, cache=cache).few_step is None
