"""Session-scoped tiny models on disk (built once per test session, a few seconds)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny SD1.x-style model as a diffusers folder."""
    from tests.tiny_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(scope="session")
def tiny_inpaint_model_dir(tmp_path_factory) -> Path:
    """A tiny inpainting model (9-channel UNet) as a diffusers folder."""
    from tests.tiny_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-sd-inpaint", inpaint=True)


@pytest.fixture(scope="session")
def tiny_sdxl_model_dir(tmp_path_factory) -> Path:
    """A tiny SDXL-like model (two text encoders) as a diffusers folder."""
    from tests.tiny_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-sdxl", sdxl=True)


@pytest.fixture(scope="session")
def tiny_sdxl_single_file(tmp_path_factory) -> Path:
    """The tiny SDXL model as one LDM-layout .safetensors (OpenCLIP keys for encoder 2)."""
    from tests.tiny_models import save_tiny_single_file

    path = tmp_path_factory.mktemp("single") / "tiny-sdxl.safetensors"
    return save_tiny_single_file(path, sdxl=True)


@pytest.fixture(scope="session")
def tiny_single_file(tmp_path_factory) -> Path:
    """The tiny model as one LDM-layout .safetensors with its ``<stem>.config/`` sidecar."""
    from tests.tiny_models import save_tiny_single_file

    return save_tiny_single_file(tmp_path_factory.mktemp("single") / "tiny-sd.safetensors")


@pytest.fixture(scope="session")
def tiny_inpaint_single_file(tmp_path_factory) -> Path:
    from tests.tiny_models import save_tiny_single_file

    path = tmp_path_factory.mktemp("single") / "tiny-sd-inpaint.safetensors"
    return save_tiny_single_file(path, inpaint=True)


@pytest.fixture(scope="session")
def tiny_controlnet_dir(tmp_path_factory) -> Path:
    """A tiny ControlNet (matches the tiny model) as a diffusers folder."""
    from tests.tiny_models import save_tiny_controlnet

    return save_tiny_controlnet(tmp_path_factory.mktemp("controlnets") / "tiny-controlnet")


@pytest.fixture(scope="session")
def tiny_controlnet_file(tmp_path_factory) -> Path:
    """A tiny ControlNet as one .safetensors with its ``<stem>.config/`` sidecar."""
    from tests.tiny_models import save_tiny_controlnet

    path = tmp_path_factory.mktemp("controlnets") / "tiny-controlnet.safetensors"
    return save_tiny_controlnet(path, single_file=True)


@pytest.fixture(scope="session")
def engine():
    """One Engine for the session, caching several tiny models (CPU, fp32)."""
    from inference.api import EngineSettings
    from inference.engine import Engine

    shared = Engine(EngineSettings(device="cpu"), max_models=4)
    yield shared
    shared.close()
