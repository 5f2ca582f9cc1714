"""Sampler names -> diffusers schedulers, built from the model's own scheduler config."""

from __future__ import annotations

from typing import Any

from inference.api import Sampler

# Keys that belong to one scheduler family and confuse another when carried over.
_DROP_KEYS = ("_class_name", "_diffusers_version", "skip_prk_steps", "use_karras_sigmas")


def make_scheduler(sampler: Sampler, base_config: dict[str, Any]) -> Any:
    """A fresh scheduler for ``sampler`` (schedulers are stateful: one per run)."""
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
        EulerDiscreteScheduler,
        LCMScheduler,
        UniPCMultistepScheduler,
    )

    config = {k: v for k, v in dict(base_config).items() if k not in _DROP_KEYS}
    if sampler is Sampler.EULER_A:
        return EulerAncestralDiscreteScheduler.from_config(config)
    if sampler is Sampler.EULER:
        return EulerDiscreteScheduler.from_config(config)
    if sampler is Sampler.DPMPP_2M_KARRAS:
        return DPMSolverMultistepScheduler.from_config(
            config, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True
        )
    if sampler is Sampler.DDIM:
        return DDIMScheduler.from_config(config)
    if sampler is Sampler.UNIPC:
        return UniPCMultistepScheduler.from_config(config)
    if sampler is Sampler.LCM:
        return LCMScheduler.from_config(config)
    raise ValueError(f"no scheduler for {sampler}")
