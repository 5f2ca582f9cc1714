"""A scripted stand-in for the diffusion engine: previews, slow steps, errors, cancel mid-run.

It keeps the engine's promises that app/ relies on: one preview per step, ``Cancelled`` raised
within one step of the token firing (no result), pixels outside the mask unchanged, the result at
the size of the request image, variants seeded seed, seed+1, ...
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from inference.api import (
    Box,
    Cancelled,
    CancelToken,
    EngineError,
    Mode,
    Request,
    Result,
    Variant,
)
from inference.recipe import Recipe


def seed_color(seed: int) -> tuple[int, int, int]:
    return (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256)


@dataclass
class FakeEngine:
    step_delay: float = 0.0
    preview_size: int = 16
    fail_with: EngineError | None = None
    fail_at_step: int = 0  # 0 = fail before the first step
    gate_step: int | None = None  # wait at this step until ``release`` is set
    release: threading.Event = field(default_factory=threading.Event)
    at_gate: threading.Event = field(default_factory=threading.Event)
    requests: list[Request] = field(default_factory=list)
    steps_run: int = 0
    thread_names: list[str] = field(default_factory=list)

    def run(self, request: Request, on_preview=None, cancel: CancelToken | None = None) -> Result:
        self.requests.append(request)
        self.thread_names.append(threading.current_thread().name)
        if self.fail_with is not None and self.fail_at_step == 0:
            raise self.fail_with
        for step in range(1, request.steps + 1):
            if cancel is not None and cancel.cancelled:
                raise Cancelled("cancelled")
            if self.gate_step == step:
                self.at_gate.set()
                self.release.wait(10)
            if self.step_delay:
                time.sleep(self.step_delay)
            self.steps_run += 1
            if self.fail_with is not None and self.fail_at_step == step:
                raise self.fail_with
            if on_preview is not None:
                shade = int(255 * step / request.steps)
                box = self._box(request)
                on_preview(
                    step,
                    request.steps,
                    np.full((self.preview_size, self.preview_size, 3), shade, np.uint8),
                    box,
                    self._region(request, box),
                )
        if cancel is not None and cancel.cancelled:
            raise Cancelled("cancelled")
        variants = tuple(
            self._variant(request, request.seed + i) for i in range(request.batch_size)
        )
        recipe = Recipe(
            prompt=request.prompt,
            seed=request.seed,
            steps=request.steps,
            sampler=request.sampler.value,
            model_hash="fakehash00",
        )
        return Result(variants, recipe)

    @staticmethod
    def _variant(request: Request, seed: int) -> Variant:
        color = np.array(seed_color(seed), np.uint8)
        if request.mode is Mode.TXT2IMG or request.image is None:
            image = np.empty((request.height, request.width, 3), np.uint8)
            image[:] = color
            return Variant(image, seed, Box(0, 0, request.width, request.height))
        image = request.image.copy()
        box = FakeEngine._box(request)
        region = image[box.y : box.bottom, box.x : box.right]
        if request.mode is Mode.INPAINT and request.mask is not None:
            inside = request.mask[box.y : box.bottom, box.x : box.right] > 127
            region[inside, :3] = color
        else:
            region[..., :3] = color
        return Variant(image, seed, box, FakeEngine._region(request, box))

    @staticmethod
    def _box(request: Request) -> Box:
        if request.image is None:
            return Box(0, 0, request.width, request.height)
        height, width = request.image.shape[:2]
        return request.crop_box or Box(0, 0, width, height)

    @staticmethod
    def _region(request: Request, box: Box) -> np.ndarray | None:
        """Where an inpaint may change pixels: the feathered mask, as the real engine says."""
        if request.mode is not Mode.INPAINT or request.mask is None:
            return None
        from inference.cropping import cut, feathered_alpha

        return cut(feathered_alpha(request.mask, request.mask_blur), box) > 0
