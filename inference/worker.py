"""One dedicated inference thread with a job queue, reporting typed events with job ids.

``app/`` submits immutable requests and receives ``JobQueued``, ``JobStarted``, ``JobPreview``,
``JobFinished``, ``JobCancelled`` and ``JobFailed`` through ``on_event``. Events are called on the
worker thread (``JobQueued`` and the cancel of a queued job: on the caller's thread); a Qt
front-end forwards them to the UI thread with a queued signal. Nothing here knows about Qt.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from inference.api import (
    Box,
    Cancelled,
    CancelToken,
    EngineError,
    EngineProtocol,
    JobCancelled,
    JobEvent,
    JobFailed,
    JobFinished,
    JobPreview,
    JobQueued,
    JobStarted,
    Request,
)

log = logging.getLogger(__name__)

EventCallback = Callable[[JobEvent], None]


@dataclass
class _Job:
    job_id: int
    request: Request
    token: CancelToken = field(default_factory=CancelToken)


class InferenceWorker:
    """Runs jobs one at a time on its own thread.

    ``engine`` is anything with ``run(request, on_preview, cancel)`` (the real ``Engine``, a
    remote client, or a fake for tests); previews carry the box the engine passes with them, else
    the request's crop box (or the whole image).
    """

    def __init__(self, engine: EngineProtocol, on_event: EventCallback, name: str = "inference"):
        self._engine = engine
        self._on_event = on_event
        self._queue: deque[_Job] = deque()
        self._running: _Job | None = None
        self._condition = threading.Condition()
        self._ids = itertools.count(1)
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # ---- public API ----------------------------------------------------------------------------

    def submit(self, request: Request) -> int:
        """Queue a request; returns its job id (``JobQueued`` is emitted before returning)."""
        with self._condition:
            if self._stopping:
                raise RuntimeError("the inference worker has been shut down")
            job = _Job(next(self._ids), request)
            self._queue.append(job)
            self._emit(JobQueued(job.job_id))
            self._condition.notify()
        return job.job_id

    def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job. False when the id is unknown or already done."""
        with self._condition:
            for job in self._queue:
                if job.job_id == job_id:
                    self._queue.remove(job)
                    self._emit(JobCancelled(job_id))
                    return True
            if self._running is not None and self._running.job_id == job_id:
                self._running.token.cancel()
                return True
        return False

    def cancel_all(self) -> None:
        with self._condition:
            queued = list(self._queue)
            self._queue.clear()
            if self._running is not None:
                self._running.token.cancel()
        for job in queued:
            self._emit(JobCancelled(job.job_id))

    @property
    def queued_ids(self) -> list[int]:
        with self._condition:
            return [job.job_id for job in self._queue]

    @property
    def running_id(self) -> int | None:
        with self._condition:
            return self._running.job_id if self._running else None

    def shutdown(self, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Cancel everything and stop the thread (idempotent)."""
        self.cancel_all()
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if wait and self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def is_alive(self) -> bool:
        return self._thread.is_alive()

    # ---- the thread ----------------------------------------------------------------------------

    def _emit(self, event: JobEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # a broken listener must not kill the worker
            log.exception("event listener failed on %r", event)

    def _loop(self) -> None:
        while True:
            with self._condition:
                while not self._queue and not self._stopping:
                    self._condition.wait()
                if self._stopping and not self._queue:
                    return
                job = self._queue.popleft()
                self._running = job
            try:
                self._run(job)
            finally:
                with self._condition:
                    self._running = None

    def _run(self, job: _Job) -> None:
        if job.token.cancelled:
            self._emit(JobCancelled(job.job_id))
            return
        self._emit(JobStarted(job.job_id))
        request = job.request

        def on_preview(
            step: int,
            total: int,
            image: np.ndarray,
            box: Box | None = None,
            region: np.ndarray | None = None,
        ) -> None:
            self._emit(
                JobPreview(job.job_id, step, total, image, box or _whole_box(request), region)
            )

        try:
            result = self._engine.run(request, on_preview, job.token)
        except Cancelled:
            self._emit(JobCancelled(job.job_id))
        except EngineError as error:
            self._emit(JobFailed(job.job_id, error))
        except Exception as error:
            log.exception("job %d crashed", job.job_id)
            self._emit(JobFailed(job.job_id, EngineError(f"unexpected error: {error}")))
        else:
            if job.token.cancelled:  # cancelled after the last step: nothing is applied
                self._emit(JobCancelled(job.job_id))
            else:
                self._emit(JobFinished(job.job_id, result))


def _whole_box(request: Request) -> Box:
    """Where previews go when the engine does not say: the crop box, else the whole image."""
    if request.crop_box is not None:
        return request.crop_box
    if request.image is not None:
        return Box(0, 0, request.image.shape[1], request.image.shape[0])
    return Box(0, 0, request.width, request.height)
