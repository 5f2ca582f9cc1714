"""The job controller: a queue of generation jobs run one at a time on a worker thread.

The UI thread only ever queues work and reacts to events. The worker thread calls the engine and
posts events back through a queued Qt signal, so nothing off the UI thread touches a Qt object or
the document. Step previews are scaled to their place on the worker thread and coalesced: if the
UI falls behind, it draws only the newest one.

Results become RESULT layers at the crop box (the layer holds just that box), one undoable step
for all the variants accepted together. A cancelled job changes nothing but the transient preview.
"""

from __future__ import annotations

import gc
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QObject, Qt, Signal

from app.document import Document
from app.geometry import Rect
from app.layers import Layer, LayerKind
from app.raster import Raster
from app.request_builder import (
    GenerationParams,
    PlannedJob,
    Workflow,
    build_request,
    encode_image,
    encode_mask,
)
from inference.api import (
    Box,
    CancelToken,
    ControlInput,
    EngineProtocol,
    InvalidRequestError,
    JobFailed,
    JobFinished,
    JobPreview,
    JobQueued,
    JobStarted,
    ModelLoadError,
    ModelNotFoundError,
    OutOfMemoryError,
    Result,
    Variant,
)
from inference.recipe import ControlUnit, Recipe
from inference.worker import InferenceWorker

log = logging.getLogger(__name__)

WORKER_THREAD_NAME = "impasto-inference"

EngineFactory = Callable[[], EngineProtocol]


class JobState(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    DONE = "done"


@dataclass(eq=False)
class Job:
    id: int
    plan: PlannedJob
    doc: Document
    token: CancelToken = field(default_factory=CancelToken)
    state: JobState = JobState.QUEUED
    queued_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    first_step_at: float | None = None
    first_step: int = 0
    worker_id: int | None = None
    step: int = 0
    total: int = 0

    @property
    def label(self) -> str:
        prompt = self.plan.request.prompt or "(no prompt)"
        short = prompt if len(prompt) <= 40 else prompt[:39] + "…"
        count = self.plan.request.batch_size
        batch = f" ×{count}" if count > 1 else ""
        return f"#{self.id} {self.plan.workflow.value}{batch}: {short}"


@dataclass(frozen=True, eq=False)
class _Placed:
    """A finished job with its result layers already built (on the worker thread)."""

    job_id: int
    layers: list[Layer] | None
    error: str | None = None


@dataclass(frozen=True, eq=False)
class PreviewFrame:
    """A step preview already scaled to its place in the document (RGBA)."""

    job_id: int
    step: int
    total: int
    rect: Rect
    pixels: np.ndarray
    at: float


# ---- the engine side -------------------------------------------------------------------


def default_engine_factory(settings: Any = None) -> EngineFactory:
    """The real engine: classic OpenCV for model_path None, diffusers otherwise. Constructing it
    imports no torch; models load on the worker thread at the first job."""

    def build() -> EngineProtocol:
        from inference.device import reserve_ui_core
        from inference.engine import Engine

        reserve_ui_core()  # the UI thread keeps a core while the CPU generates
        return Engine(settings)

    return build


@dataclass(frozen=True)
class _Placement:
    """Where the running job's previews go (read on the worker thread)."""

    job_id: int
    origin: Rect  # document area of request.image
    target: Rect  # txt2img: previews fill this box
    txt2img: bool
    plan: PlannedJob

    def rect_for(self, box: Box) -> Rect:
        if self.txt2img:
            return self.target
        rect = Rect(box.x + self.origin.x, box.y + self.origin.y, box.width, box.height)
        return rect if not rect.is_empty else self.target


def scale_preview(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """A small RGB(A) preview as opaque RGBA at ``width`` x ``height`` (off the UI thread)."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[1] != width or image.shape[0] != height:
        image = cv2.resize(
            np.ascontiguousarray(image), (width, height), interpolation=cv2.INTER_LINEAR
        )
    if image.shape[2] == 4:
        return np.ascontiguousarray(image)
    out = np.empty((height, width, 4), np.uint8)
    out[..., :3] = image[..., :3]
    out[..., 3] = 255
    return out


# ---- the controller (UI thread) ---------------------------------------------------------


class _Bridge(QObject):
    """Carries events from the worker thread to the UI thread (queued connections)."""

    event = Signal(object)
    preview_ready = Signal()


class JobController(QObject):
    job_queued = Signal(int)
    job_started = Signal(int)
    progress = Signal(int, int, int, float, float)  # job id, step, total, elapsed s, eta s
    preview = Signal(int, int, int)  # job id, step, total (the pixels are in doc.preview)
    finished = Signal(int, object)  # job id, list[Layer] (landed or staged)
    cancelled = Signal(int)
    failed = Signal(int, str)  # job id, a message saying what to do
    queue_changed = Signal()

    def __init__(
        self,
        engine_factory: EngineFactory | None = None,
        staging: Any = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._jobs: list[Job] = []  # queued and running, in order
        self._running: Job | None = None
        self.staging = staging  # app.staging.Staging: receives batches of several variants
        self.last_seed: int | None = None
        self.last_error: str | None = None
        self._bridge = _Bridge()
        self._bridge.event.connect(self._on_event, Qt.ConnectionType.QueuedConnection)
        self._bridge.preview_ready.connect(self._on_preview, Qt.ConnectionType.QueuedConnection)
        self._frame_lock = threading.Lock()
        self._frame: PreviewFrame | None = None
        self._engine_factory = engine_factory or default_engine_factory()
        self._worker: InferenceWorker | None = None  # started at the first job
        self._placement: _Placement | None = None
        self._retire_worker = False

    # ---- queries ------------------------------------------------------------------------

    @property
    def jobs(self) -> list[Job]:
        """Running job first, then the queue."""
        return list(self._jobs)

    @property
    def running(self) -> Job | None:
        return self._running

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def job(self, job_id: int) -> Job | None:
        return next((job for job in self._jobs if job.id == job_id), None)

    # ---- commands -----------------------------------------------------------------------

    def generate(self, doc: Document, params: GenerationParams) -> int:
        """Build the request from ``doc`` now (a snapshot) and queue it; raises
        :class:`~app.request_builder.RequestBuildError` when it cannot be built."""
        return self.submit(doc, build_request(doc, params))

    def submit(self, doc: Document, plan: PlannedJob) -> int:
        job = Job(next(self._ids), plan, doc)
        self._jobs.append(job)
        self.last_seed = plan.request.seed
        self._dispatch()
        self.job_queued.emit(job.id)
        self.queue_changed.emit()
        return job.id

    def cancel(self, job_id: int) -> None:
        job = self.job(job_id)
        if job is None:
            return
        job.token.cancel()
        job.doc.clear_preview(job.id)
        if job is self._running:
            job.state = JobState.CANCELLING  # the worker confirms within one step
            if self._worker is not None and job.worker_id is not None:
                self._worker.cancel(job.worker_id)
            self.queue_changed.emit()
            return
        self._jobs.remove(job)
        job.state = JobState.DONE
        self.cancelled.emit(job.id)
        self.queue_changed.emit()

    def cancel_current(self) -> None:
        if self._running is not None:
            self.cancel(self._running.id)

    def cancel_all(self) -> None:
        for job in reversed(self._jobs):
            self.cancel(job.id)

    def set_engine_factory(self, engine_factory: EngineFactory) -> None:
        """Use a new engine (e.g. the engine settings changed) from the next job on; a running
        job finishes on the old one."""
        self._engine_factory = engine_factory
        self._retire_worker = True
        if self._running is None:
            self._retire_idle_worker()

    def _retire_idle_worker(self) -> None:
        self._retire_worker = False
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.shutdown(wait=True, timeout=5.0)  # idle: it ends at once

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Cancel everything and end the worker thread (call before the app quits)."""
        self.cancel_all()
        worker, self._worker = self._worker, None
        if worker is None:
            return True
        worker.shutdown(wait=True, timeout=timeout)
        return not worker.is_alive

    # ---- worker thread ----------------------------------------------------------------------

    def _on_worker_event(self, event: object) -> None:
        """Called on the worker thread: scale previews there, forward everything else as is."""
        if isinstance(event, JobQueued):
            return  # the controller announced the job itself
        if isinstance(event, JobPreview):
            placement = self._placement
            if placement is None:
                return
            rect = placement.rect_for(event.box)
            pixels = scale_preview(event.image, rect.w, rect.h)
            request = placement.plan.request
            if request.mask is not None and not placement.txt2img:
                # inpaint: show the preview only where the result can change
                box = event.box
                cut = request.mask[box.y : box.bottom, box.x : box.right]
                if cut.shape == pixels.shape[:2]:
                    pixels[..., 3] = np.where(mask_reach(cut, request.mask_blur), 255, 0)
            frame = PreviewFrame(
                placement.job_id, event.step, event.total, rect, pixels, time.monotonic()
            )
            with self._frame_lock:
                pending = self._frame is not None
                self._frame = frame
            if not pending:
                self._bridge.preview_ready.emit()
            return
        if isinstance(event, JobFinished):
            # building the layers (crop, coverage, recipe) is pure numpy: keep it off the UI thread
            placement = self._placement
            if placement is None:
                return
            try:
                event = _Placed(event.job_id, result_layers(placement.plan, event.result))
            except Exception as error:  # a malformed result must not half-change the document
                log.exception("could not place the result of job %s", event.job_id)
                event = _Placed(event.job_id, None, str(error))
        self._bridge.event.emit(event)

    # ---- UI thread ------------------------------------------------------------------------

    def _dispatch(self) -> None:
        if self._running is not None:
            return
        job = next((j for j in self._jobs if j.state is JobState.QUEUED), None)
        if job is None:
            return
        job.state = JobState.RUNNING
        self._running = job
        plan = job.plan
        self._placement = _Placement(
            job.id, plan.origin, plan.target, plan.request.image is None, plan
        )
        if self._worker is None:
            try:
                engine = self._engine_factory()
            except Exception as error:  # e.g. a broken install: say so, keep the app alive
                log.exception("could not create the inference engine")
                self._jobs.remove(job)
                job.state = JobState.DONE
                self._running = self._placement = None
                message = describe_error(error)
                self.last_error = message
                self.failed.emit(job.id, message)
                return
            self._worker = InferenceWorker(engine, self._on_worker_event, name=WORKER_THREAD_NAME)
        job.worker_id = self._worker.submit(plan.request)

    def _on_preview(self) -> None:
        with self._frame_lock:
            frame, self._frame = self._frame, None
        if frame is None:
            return
        job = self._running
        if job is None or job.id != frame.job_id or job.token.cancelled:
            return  # stale: a cancelled or finished job
        if job.first_step_at is None:
            job.first_step_at, job.first_step = frame.at, frame.step
            # The model is loaded by now: move the millions of objects torch/diffusers created
            # out of the cyclic GC's reach, or each full collection stalls painting 50-250 ms.
            gc.freeze()
        job.step, job.total = frame.step, frame.total
        job.doc.show_preview(job.id, frame.rect, frame.pixels)
        elapsed, eta = _timing(job, frame)
        self.preview.emit(job.id, frame.step, frame.total)
        self.progress.emit(job.id, frame.step, frame.total, elapsed, eta)

    def _on_event(self, event: object) -> None:
        job = self._running
        if job is None or job.worker_id != getattr(event, "job_id", None):
            return  # an event of a job this controller no longer tracks
        if isinstance(event, JobStarted):
            job.started_at = time.monotonic()
            job.total = job.plan.request.steps
            if not job.token.cancelled:
                self.job_started.emit(job.id)
                self.progress.emit(job.id, 0, job.total, 0.0, -1.0)
            return
        job.doc.clear_preview(job.id)
        self._jobs.remove(job)
        job.state = JobState.DONE
        self._running = self._placement = None
        if self._retire_worker:
            self._retire_idle_worker()
        if isinstance(event, _Placed) and not job.token.cancelled:
            self._land(job, event)
        elif isinstance(event, JobFailed) and not job.token.cancelled:
            message = describe_error(event.error)
            self.last_error = message
            job.doc.notice.emit(message)
            self.failed.emit(job.id, message)
        else:
            self.cancelled.emit(job.id)
        self._dispatch()
        self.queue_changed.emit()
        if self.staging is not None:
            self.staging.refresh()

    def _land(self, job: Job, placed: _Placed) -> None:
        layers = placed.layers
        if layers is None:
            message = (
                f"The result could not be placed in the picture ({placed.error}). Nothing changed."
            )
            self.last_error = message
            self.failed.emit(job.id, message)
            return
        if len(layers) > 1 and self.staging is not None:
            self.staging.stage(job.doc, job.id, layers)
        else:
            land_layers(job.doc, layers)
        self.finished.emit(job.id, layers)


def _timing(job: Job, frame: PreviewFrame) -> tuple[float, float]:
    start = job.started_at if job.started_at is not None else frame.at
    elapsed = max(0.0, frame.at - start)
    remaining = frame.total - frame.step
    done_since_first = frame.step - job.first_step
    if done_since_first > 0 and job.first_step_at is not None:
        per_step = (frame.at - job.first_step_at) / done_since_first
    else:
        per_step = elapsed / max(1, frame.step)
    return elapsed, max(0.0, per_step * remaining)


def describe_error(error: BaseException) -> str:
    """A message that says what happened and what to do; the document is never touched."""
    text = str(error).strip().rstrip(".") or type(error).__name__
    if isinstance(error, OutOfMemoryError):
        return (
            f"Out of memory: {text}. Lower the resolution or batch count, or turn on memory "
            "saving in Settings; the picture is unchanged."
        )
    if isinstance(error, ModelNotFoundError):
        return (
            f"Model not found: {text}. Choose another model in the model picker or fix its "
            "folder in Settings."
        )
    if isinstance(error, ModelLoadError):
        return (
            f"The model could not be loaded: {text}. The file may be damaged or not a Stable "
            "Diffusion model; choose another one."
        )
    if isinstance(error, InvalidRequestError):
        return f"Cannot generate: {text}."
    return f"Generation failed: {text}. The picture is unchanged; see the log for details."


# ---- results -> layers -----------------------------------------------------------------------


def result_layers(plan: PlannedJob, result: Result) -> list[Layer]:
    """One RESULT layer per variant, holding only its box, named from prompt and seed."""
    layers = []
    for index, variant in enumerate(result.variants):
        rect, pixels = _variant_pixels(plan, variant)
        recipe = _variant_recipe(plan, result, variant, rect, index)
        name = result_name(plan.request.prompt, variant.seed)
        layers.append(
            Layer(LayerKind.RESULT, name, Raster(4, pixels, rect.x, rect.y), recipe=recipe)
        )
    return layers


def land_layers(doc: Document, layers: list[Layer], text: str | None = None) -> None:
    """Insert ``layers`` at the top of the picture (below the mask) as one undoable step."""
    if not layers:
        return
    index = len(doc.layers)
    while index > 0 and doc.layers[index - 1].kind is LayerKind.MASK:
        index -= 1
    doc.history.beginMacro(text or f"Generate {layers[0].name}")
    try:
        for offset, layer in enumerate(layers):
            doc.insert_layer(layer, index + offset, activate=False, text=f"Add {layer.name}")
    finally:
        doc.history.endMacro()


def result_name(prompt: str, seed: int) -> str:
    words = " ".join(prompt.split())
    if not words:
        return f"Result · seed {seed}"
    short = words if len(words) <= 32 else words[:31].rstrip() + "…"
    return f"{short} · seed {seed}"


def _variant_pixels(plan: PlannedJob, variant: Variant) -> tuple[Rect, np.ndarray]:
    request = plan.request
    image = variant.image
    if request.image is None:  # txt2img: the whole output, scaled into the target box
        rect = plan.target
        rgb = image[..., :3]
        if rgb.shape[:2] != (rect.h, rect.w):
            interpolation = cv2.INTER_AREA if rgb.shape[1] > rect.w else cv2.INTER_LANCZOS4
            rgb = cv2.resize(
                np.ascontiguousarray(rgb), (rect.w, rect.h), interpolation=interpolation
            )
        return rect, _with_alpha(rgb, None)
    if image.shape[:2] != request.image.shape[:2]:
        raise ValueError(
            f"variant is {image.shape[1]}x{image.shape[0]}, request image is "
            f"{request.image.shape[1]}x{request.image.shape[0]}"
        )
    box = _clamp_box(variant.box, image.shape[1], image.shape[0])
    rect = plan.to_document(box)
    cut = (slice(box.y, box.bottom), slice(box.x, box.right))
    rgb = image[cut][..., :3]
    coverage = None
    if request.mask is not None:
        # opaque where the engine may have changed pixels (the feathered mask) or did change them,
        # clear elsewhere, so the result layer leaves the rest of the picture exactly as it was
        coverage = mask_reach(request.mask[cut], request.mask_blur)
        coverage |= (rgb != request.image[cut][..., :3]).any(axis=2)
    return rect, _with_alpha(rgb, coverage)


def mask_reach(mask: np.ndarray, blur: int) -> np.ndarray:
    """Where an inpaint result may differ from its input: the mask grown past its feathering."""
    reach = 2 * max(0, blur) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    return cv2.dilate((mask > 0).astype(np.uint8), kernel) > 0


def _with_alpha(rgb: np.ndarray, coverage: np.ndarray | None) -> np.ndarray:
    out = np.empty((*rgb.shape[:2], 4), np.uint8)
    out[..., :3] = rgb
    out[..., 3] = 255 if coverage is None else np.where(coverage, 255, 0)
    return out


def _clamp_box(box: Box, width: int, height: int) -> Box:
    x0, y0 = max(0, box.x), max(0, box.y)
    x1, y1 = min(width, box.right), min(height, box.bottom)
    if x1 <= x0 or y1 <= y0:
        return Box(0, 0, width, height)
    return Box(x0, y0, x1 - x0, y1 - y0)


def _variant_recipe(
    plan: PlannedJob, result: Result, variant: Variant, rect: Rect, index: int
) -> dict[str, Any]:
    """The engine's Recipe completed by the app (its settings win where it has them: the
    picker's model name and hash, the workflow, paths), with the variant's seed, its box in the
    document, the mask and control images under it; stored on the layer as JSON."""
    app = Recipe.from_json(plan.recipe)
    engine = Recipe.from_json(result.recipe)  # a Recipe, or the JSON of one (a remote engine)
    recipe = engine.completed(**{f.name: getattr(app, f.name) for f in fields(app)})
    local = rect.translated(-plan.origin.x, -plan.origin.y)
    mask, encoded = plan.request.mask, None
    if mask is not None and plan.workflow is Workflow.INPAINT:
        encoded = encode_mask(mask[local.slices(Rect(0, 0, mask.shape[1], mask.shape[0]))])
    layers = [unit.layer for unit in app.controls] + [None] * len(plan.request.controls)
    pairs = zip(plan.request.controls, layers, strict=False)
    controls = tuple(_control_recipe(control, local, name) for control, name in pairs)
    crop = (rect.x, rect.y, rect.w, rect.h)
    recipe = replace(recipe, seed=int(variant.seed), batch_index=index, crop_box=crop)
    return replace(recipe, mask=encoded, controls=controls).to_json()


def _control_recipe(control: ControlInput, local: Rect, layer: str | None) -> ControlUnit:
    """A control input as the recipe keeps it: its settings and its image over the result box."""
    image = control.image[local.slices(Rect(0, 0, control.image.shape[1], control.image.shape[0]))]
    return ControlUnit(
        control_type=control.control_type,
        model=Path(control.model_path).stem,
        model_path=str(control.model_path),
        weight=float(control.weight),
        start=float(control.start),
        end=float(control.end),
        resize_mode=control.resize_mode,
        layer=layer,
        image=encode_image(image),
    )
