"""The job queue: generation jobs run one at a time on the inference worker thread.

The UI thread only queues work and reacts to events. The worker thread calls the engine; events
come back through :class:`app.background.Relay` (in order) and step previews through a
:class:`app.background.Mailbox` (newest wins: a UI that falls behind draws only the newest), so
nothing off the UI thread touches a Qt object or the document. Previews are scaled and results
turned into layers on the worker thread (``app.generation.results``).

Where a batch of several variants goes is up to the :class:`ResultSink` (the staging strip);
without one, and for single results, they land as one undoable step. A cancelled job changes
nothing but the transient preview.

Any engine with ``run(request, on_preview, cancel)`` — the local ``inference.engine.Engine``, a
remote client, a fake — is driven the same way and produces the same signals, so whoever listens
(the generate panel, live painting, a script) cannot tell them apart.
"""

from __future__ import annotations

import gc
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal

from app.background import Background, Mailbox, Relay, Task
from app.document import Document
from app.generation.request import GenerationParams, PlannedJob, build_request
from app.generation.results import Placement, PreviewFrame, land_layers, result_layers
from app.layers import Layer
from inference.api import (
    CancelToken,
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
    UpscalerLoadError,
)
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
        what = "Upscale" if self.plan.request.upscale is not None else self.plan.workflow.value
        return f"#{self.id} {what}{batch}: {short}"


@dataclass(frozen=True, eq=False)
class _Placed:
    """A finished job with its result layers already built (on the worker thread)."""

    job_id: int
    layers: list[Layer] | None
    error: str | None = None


# ---- the engine side -------------------------------------------------------------------


def default_engine_factory(settings: Any = None) -> EngineFactory:
    """The real engine: classic OpenCV for model_path None, diffusers otherwise. Constructing it
    imports no torch; models load on the worker thread at the first job."""

    def build() -> EngineProtocol:
        from inference.engine import Engine

        # the UI thread keeps a core while the CPU generates (set up on the worker thread)
        return Engine(settings, reserve_ui_core=True)

    return build


# ---- the controller (UI thread) ---------------------------------------------------------


class ResultSink(Protocol):
    """Takes batches of several variants (the staging strip) instead of landing them."""

    def stage(self, doc: Document, job_id: int, layers: list[Layer]) -> None: ...

    def refresh(self) -> None:
        """A job ended (its preview went away): show the staged variant again."""


class JobController(QObject):
    job_queued = Signal(int)
    job_started = Signal(int)
    progress = Signal(int, int, int, float, float)  # job id, step, total, elapsed s, eta s
    preview = Signal(int, int, int)  # job id, step, total (the pixels are in doc.preview)
    finished = Signal(int, object)  # job id, list[Layer] (landed or staged)
    cancelled = Signal(int)
    failed = Signal(int, str)  # job id, a message saying what to do
    warmed = Signal()  # the inference libraries are imported (warm_up finished)
    queue_changed = Signal()

    def __init__(
        self,
        engine_factory: EngineFactory | None = None,
        staging: ResultSink | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._jobs: list[Job] = []  # queued and running, in order
        self._running: Job | None = None
        self.staging = staging  # receives batches of several variants
        self.last_seed: int | None = None
        self.last_error: str | None = None
        self._relay = Relay(self)
        self._frames: Mailbox[PreviewFrame] = Mailbox(self._relay, self._show_frame)
        self._engine_factory = engine_factory or default_engine_factory()
        self._worker: InferenceWorker | None = None  # started at the warm-up or the first job
        self._premade: tuple[EngineFactory, InferenceWorker] | None = None  # by the warm-up
        self._warm_up: Background | None = None
        self._placement: Placement | None = None
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
        :class:`~app.generation.request.RequestBuildError` when it cannot be built."""
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

    def warm_up(self) -> bool:
        """Import the inference libraries on a background thread (once per process), so the
        first Generate with a diffusers model does not wait for them, and start the worker's
        thread there too: ``Thread.start()`` waits until the new thread runs, 30-90 ms on a
        busy machine, which would otherwise fall inside the first Ctrl+Enter. Returns False
        when it is already done, running, or pointless (a job already started the engine)."""
        if self._warm_up is not None or self._worker is not None:
            return False
        from inference.device import warm_imports

        factory = self._engine_factory

        def work(_task: Task[None]) -> None:
            warm_imports()
            worker = InferenceWorker(factory(), self._on_worker_event, name=WORKER_THREAD_NAME)
            self._premade = (factory, worker)  # shutdown() ends it if it is never adopted

        self._warm_up = Background("impasto-warm-up", parent=self)
        self._warm_up.submit(work, on_done=self._warmed_up)
        return True

    def _warmed_up(self, _result: None) -> None:
        premade, self._premade = self._premade, None
        if premade is not None:
            factory, worker = premade
            if self._worker is None and factory is self._engine_factory:
                self._worker = worker
            else:  # a job or a settings change came first: that engine is the one to use
                worker.shutdown(wait=False)
        self.warmed.emit()

    @property
    def warming_up(self) -> bool:
        return self._warm_up is not None and self._warm_up.busy

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Cancel everything and end the worker thread (call before the app quits)."""
        if self._warm_up is not None:
            self._warm_up.shutdown(timeout)
        premade, self._premade = self._premade, None
        if premade is not None:
            premade[1].shutdown(wait=True, timeout=timeout)
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
            if placement is not None:
                self._frames.post(placement.place(event, time.monotonic()))
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
        self._relay.post(partial(self._on_event, event))

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
        self._placement = Placement(job.id, plan)
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
        """Draw the newest waiting preview now (the mailbox also does this on its own)."""
        frame = self._frames.take()
        if frame is not None:
            self._show_frame(frame)

    def _show_frame(self, frame: PreviewFrame) -> None:
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
        if job.plan.request.upscale is not None:  # the canvas grows with it: one undo step
            from app.generation.upscale import land_upscale

            land_upscale(job.doc, layers)
        elif len(layers) > 1 and self.staging is not None:
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
    if isinstance(error, UpscalerLoadError):
        return f"The upscaler could not be used: {text}. Choose another one or Lanczos."
    if isinstance(error, ModelLoadError):
        return (
            f"The model could not be loaded: {text}. The file may be damaged or not a Stable "
            "Diffusion model; choose another one."
        )
    if isinstance(error, InvalidRequestError):
        return f"Cannot generate: {text}."
    return f"Generation failed: {text}. The picture is unchanged; see the log for details."
