"""Depth maps from a local transformers depth-estimation folder (a tiny random DPT)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from inference.api import ModelLoadError, ModelNotFoundError
from inference.depth import estimate_depth, is_depth_model
from inference.library import ModelKind, inspect_path


@pytest.fixture(scope="module")
def dpt(tmp_path_factory):
    from tests.tiny_adapters import save_tiny_depth_model

    return save_tiny_depth_model(tmp_path_factory.mktemp("depth") / "dpt-tiny")


def _rgb(seed, size=(50, 70)):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def test_a_depth_map_at_the_pictures_size_stretched_to_full_range(dpt):
    depth = estimate_depth(_rgb(0), dpt)
    assert depth.shape == (50, 70) and depth.dtype == np.uint8
    assert (depth.min(), depth.max()) == (0, 255)
    assert np.array_equal(estimate_depth(_rgb(0), dpt), depth)  # deterministic
    assert np.abs(estimate_depth(_rgb(1), dpt).astype(int) - depth).mean() > 5


def test_metric_models_are_inverted_so_near_stays_bright(dpt, tmp_path):
    import json

    metric = tmp_path / "dpt-metric"
    shutil.copytree(dpt, metric)
    config = json.loads((metric / "config.json").read_text())
    config["depth_estimation_type"] = "metric"
    (metric / "config.json").write_text(json.dumps(config))
    relative, inverted = estimate_depth(_rgb(2), dpt), estimate_depth(_rgb(2), metric)
    assert np.abs(relative.astype(int) + inverted - 255).max() <= 1


def test_the_library_lists_depth_models(dpt):
    entry = inspect_path(dpt)
    assert entry.kind is ModelKind.DEPTH_ESTIMATOR and entry.usable
    assert is_depth_model(dpt)


def test_refusals_are_one_line(dpt, tmp_path):
    with pytest.raises(ModelNotFoundError):
        estimate_depth(_rgb(0), tmp_path / "missing")
    with pytest.raises(ModelLoadError, match="not a depth-estimation model"):
        estimate_depth(_rgb(0), tmp_path)
    bare = tmp_path / "no-weights"
    shutil.copytree(dpt, bare, ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(ModelLoadError, match=r"no \.safetensors"):
        estimate_depth(_rgb(0), bare)
    with pytest.raises(ValueError, match="RGB"):
        estimate_depth(np.zeros((8, 8), np.uint8), dpt)
