"""The inference worker thread: queue, typed events with job ids, cancel of queued/running jobs."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from inference.api import (
    Box,
    Cancelled,
    InvalidRequestError,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobPreview,
    JobQueued,
    JobStarted,
    Mode,
    Request,
    Result,
    Variant,
)
from inference.worker import InferenceWorker


class FakeEngine:
    """Scripted engine: ``steps`` previews, waits on a gate per step, may fail."""

    def __init__(self, steps: int = 3, fail: Exception | None = None):
        self.steps, self.fail = steps, fail
        self.gate = threading.Semaphore(0)
        self.hold = False
        self.started = threading.Event()

    def run(self, request, on_preview=None, cancel=None):
        self.started.set()
        if self.fail:
            raise self.fail
        for step in range(1, self.steps + 1):
            if self.hold:
                self.gate.acquire(timeout=5)
            if cancel is not None and cancel.cancelled:
                raise Cancelled("cancelled")
            if on_preview:
                on_preview(step, self.steps, np.zeros((2, 2, 3), np.uint8))
        image = np.zeros((4, 4, 3), np.uint8)
        return Result((Variant(image, request.seed, Box(0, 0, 4, 4)),), {"seed": request.seed})


class Events:
    def __init__(self):
        self.items = []
        self.done = threading.Condition()

    def __call__(self, event):
        with self.done:
            self.items.append(event)
            self.done.notify_all()

    def wait_for(self, kind, job_id, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.done:
            while not any(isinstance(e, kind) and e.job_id == job_id for e in self.items):
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no {kind.__name__} for job {job_id}: {self.items}"
                self.done.wait(remaining)

    def of(self, job_id):
        return [type(e).__name__ for e in self.items if e.job_id == job_id]


def _request(seed=0):
    return Request(Mode.TXT2IMG, prompt="x", seed=seed, width=64, height=64)


@pytest.fixture
def make_worker():
    workers = []

    def make(engine):
        events = Events()
        worker = InferenceWorker(engine, events)
        workers.append(worker)
        return worker, events

    yield make
    for worker in workers:
        worker.shutdown()
        assert not worker.is_alive


def test_events_in_order_with_job_ids(make_worker):
    worker, events = make_worker(FakeEngine(steps=3))
    job = worker.submit(_request(seed=5))
    events.wait_for(JobFinished, job)
    assert events.of(job) == ["JobQueued", "JobStarted"] + ["JobPreview"] * 3 + ["JobFinished"]
    previews = [e for e in events.items if isinstance(e, JobPreview)]
    assert [(p.step, p.total) for p in previews] == [(1, 3), (2, 3), (3, 3)]
    assert previews[0].box == Box(0, 0, 64, 64)
    finished = events.items[-1]
    assert finished.result.variants[0].seed == 5


def test_cancel_queued_job_never_starts(make_worker):
    engine = FakeEngine(steps=2)
    engine.hold = True
    worker, events = make_worker(engine)
    first = worker.submit(_request())
    second = worker.submit(_request())
    assert engine.started.wait(5)
    assert worker.cancel(second)
    assert second not in worker.queued_ids
    for _ in range(4):
        engine.gate.release()
    events.wait_for(JobFinished, first)
    assert events.of(second) == ["JobQueued", "JobCancelled"]


def test_cancel_running_job_reports_cancelled_and_no_result(make_worker):
    engine = FakeEngine(steps=5)
    engine.hold = True
    worker, events = make_worker(engine)
    job = worker.submit(_request())
    engine.gate.release()
    engine.gate.release()
    events.wait_for(JobPreview, job)
    assert worker.running_id == job
    assert worker.cancel(job)
    for _ in range(5):
        engine.gate.release()
    events.wait_for(JobCancelled, job)
    kinds = events.of(job)
    assert "JobFinished" not in kinds and kinds[-1] == "JobCancelled"
    assert not worker.cancel(job)  # already done


@pytest.mark.parametrize(
    "error, expected", [(InvalidRequestError("bad mask"), "bad mask"), (ValueError("boom"), "boom")]
)
def test_failures_become_job_failed_and_worker_survives(make_worker, error, expected):
    engine = FakeEngine(fail=error)
    worker, events = make_worker(engine)
    job = worker.submit(_request())
    events.wait_for(JobFailed, job)
    failed = next(e for e in events.items if isinstance(e, JobFailed))
    assert expected in str(failed.error)
    engine.fail = None
    second = worker.submit(_request())
    events.wait_for(JobFinished, second)


def test_real_engine_through_worker(make_worker, engine, tiny_model_dir):
    worker, events = make_worker(engine)
    job = worker.submit(
        Request(
            Mode.TXT2IMG, prompt="x", steps=2, width=64, height=64, model_path=str(tiny_model_dir)
        )
    )
    events.wait_for(JobFinished, job, timeout=120.0)  # a first model load on a loaded CI machine
    assert events.of(job) == ["JobQueued", "JobStarted", "JobPreview", "JobPreview", "JobFinished"]
    assert isinstance(events.items[0], JobQueued) and isinstance(events.items[1], JobStarted)


def test_shutdown_cancels_queue_and_stops_thread(make_worker):
    engine = FakeEngine(steps=3)
    engine.hold = True
    worker, events = make_worker(engine)
    first, second = worker.submit(_request()), worker.submit(_request())
    assert engine.started.wait(5)
    worker.shutdown(wait=False)
    for _ in range(6):
        engine.gate.release()
    worker.shutdown()
    assert not worker.is_alive
    assert events.of(second) == ["JobQueued", "JobCancelled"]
    assert events.of(first)[-1] == "JobCancelled"
    with pytest.raises(RuntimeError):
        worker.submit(_request())
