"""Markers for tests that need an optional package."""

from __future__ import annotations

import importlib.util

import pytest

needs_spandrel = pytest.mark.skipif(
    importlib.util.find_spec("spandrel") is None,
    reason="spandrel is not installed (the upscale extra; with a CPU-only torch: "
    "pip install --no-deps 'spandrel>=0.4,<0.5' 'einops>=0.7', as .ci/run does)",
)
