"""Engine settings: TAESD previews, previews off/every N, memory options, device choice."""

from __future__ import annotations

import pytest

from inference.api import EngineSettings, Mode, Request
from inference.engine import Engine


def _request(model, steps=4):
    return Request(
        Mode.TXT2IMG, prompt="x", steps=steps, width=64, height=64, model_path=str(model)
    )


def _previews(engine, request):
    seen = []
    engine.run(request, lambda step, total, image, *_: seen.append((step, image.shape)))
    engine.close()
    return seen


def test_taesd_preview_is_full_size(tmp_path, tiny_model_dir):
    from tests.tiny_models import save_tiny_taesd

    taesd = save_tiny_taesd(tmp_path / "taesd")
    settings = EngineSettings(device="cpu", preview_method="taesd", taesd_path=str(taesd))
    seen = _previews(Engine(settings), _request(tiny_model_dir, steps=2))
    assert seen == [(1, (64, 64, 3)), (2, (64, 64, 3))]


def test_bad_taesd_path_falls_back_to_linear(tmp_path, tiny_model_dir):
    settings = EngineSettings(device="cpu", preview_method="taesd", taesd_path=str(tmp_path))
    seen = _previews(Engine(settings), _request(tiny_model_dir, steps=2))
    assert [shape for _, shape in seen] == [(8, 8, 3), (8, 8, 3)]


def test_previews_off_and_every_n(tiny_model_dir):
    off = _previews(
        Engine(EngineSettings(device="cpu", preview_method="off")), _request(tiny_model_dir)
    )
    assert off == []
    every = _previews(
        Engine(EngineSettings(device="cpu", preview_every=3)), _request(tiny_model_dir, steps=5)
    )
    assert [step for step, _ in every] == [3, 5]  # every 3rd step, and always the last


def test_memory_options_still_generate(tiny_model_dir):
    settings = EngineSettings(device="cpu", vae_tiling=True, attention_slicing=True)
    engine = Engine(settings)
    result = engine.run(_request(tiny_model_dir, steps=2))
    assert result.variants[0].image.shape == (64, 64, 3)
    engine.close()


@pytest.mark.parametrize(
    "device, precision, expected",
    [("cpu", "auto", "float32"), ("cpu", "fp16", "float32"), ("cpu", "bf16", "bfloat16")],
)
def test_cpu_precision_choice(device, precision, expected):
    import torch

    from inference.device import choose_device, choose_dtype

    chosen = choose_device(EngineSettings(device=device))
    assert chosen == torch.device("cpu")
    assert choose_dtype(chosen, precision) == getattr(torch, expected)
