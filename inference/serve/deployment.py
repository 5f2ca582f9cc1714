"""The Ray Serve deployments: a gateway (HTTP, token, validation, event stream) and engine
replicas (one ``inference.engine.Engine`` each, models kept warm between jobs).

The only module that imports Ray. Ray Serve does the serving: replicas per GPU, autoscaling,
restarts of dead replicas, routing, HTTP. We add only what is Impasto's:

- ``Gateway`` (the ingress, one replica: it only moves bytes) checks the bearer token, reads the
  body within the size limit, validates it into a typed ``Request`` (off its event loop), and
  streams newline-delimited JSON events: ``accepted`` (job id), ``queued`` (position),
  ``started``, ``preview`` (per step), ``result`` (with recipe) or ``cancelled``/``error``, plus
  ``alive`` every heartbeat so a client can tell a slow job from a dead connection.
- ``EngineReplica`` runs one job at a time (``max_ongoing_requests=1``; Serve queues the rest) on
  its own thread and turns Serve's cancellation (explicit ``POST /v1/jobs/ID/cancel``, or the
  client disconnecting) into the engine's cancel token: the engine stops at its next step.
- A replica that dies mid-job: Ray restarts it; the gateway tells that job's client in one line
  (a job that had not started yet is retried on another replica); other jobs go on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import ray
from ray import serve
from ray.serve.exceptions import RequestCancelledError
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response, StreamingResponse

from inference.api import Cancelled, CancelToken, EngineError, ModelNotFoundError, Request
from inference.serve.auth import authorised
from inference.serve.catalogue import Catalogue
from inference.serve.wire import (
    API_VERSION,
    Limits,
    WireError,
    error_event,
    line,
    preview_event,
    request_from_wire,
    result_event,
)

log = logging.getLogger(__name__)

APP_NAME = "impasto"
WORKER_LOST = (
    "the server's worker running this job stopped unexpectedly (out of memory or killed); "
    "it is being restarted: try again"
)


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``impasto serve`` (or a test) decides about a deployment."""

    models: tuple[str, ...]
    token: str
    limits: Limits = field(default_factory=Limits)
    replicas: int = 1
    autoscale: tuple[int, int] | None = None  # (min, max) replicas; overrides ``replicas``
    gpus_per_replica: float = 0.0
    cpus_per_replica: float = 1.0
    device: str = "auto"
    keep_models: int = 1
    torch_threads: int | None = None
    heartbeat_s: float = 0.5
    cache_path: str | None = None  # the hash cache; None = hash on every start


class EngineReplica:
    """One engine; one job at a time, on its own thread."""

    def __init__(self, device: str, keep_models: int, torch_threads: int | None) -> None:
        from inference.api import EngineSettings
        from inference.engine import Engine

        self._engine = Engine(EngineSettings(device=device), max_models=keep_models)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="impasto-engine")
        self._torch_threads = torch_threads
        try:
            self._name = serve.get_replica_context().replica_id.unique_id
        except Exception:  # outside Serve (never in production)
            self._name = f"pid-{os.getpid()}"
        # how the last cancelled job ended: previews made after the cancel (0 = it stopped at
        # its next step) and milliseconds from the cancel to the engine thread being free
        self._last_cancel: dict[str, float] | None = None
        self._cancelled_at: float | None = None

    async def run(self, request: Request) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[bytes] = asyncio.Queue()
        token = CancelToken()

        after_cancel = 0

        def post(event: bytes) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        def on_preview(
            step: int, total: int, image: Any, box: Any = None, region: Any = None
        ) -> None:
            nonlocal after_cancel
            after_cancel += token.cancelled
            post(line(preview_event(step, total, image, box, region)))

        def work() -> bytes:
            # "started" is sent from the job thread: a job waits here for the previous one
            started = {"type": "started", "replica": self._name, "pid": os.getpid()}
            post(line({**started, "last_cancel": self._last_cancel}))
            if self._torch_threads:
                import torch

                torch.set_num_threads(self._torch_threads)
            try:
                return line(result_event(self._engine.run(request, on_preview, token)))
            except Cancelled:
                return line({"type": "cancelled"})
            except EngineError as error:
                return line(error_event(error))
            except Exception as error:  # bad input or a bug must not take the replica down
                log.exception("job failed")
                return line(error_event(error))
            finally:
                if token.cancelled and self._cancelled_at is not None:
                    stopped_ms = (time.monotonic() - self._cancelled_at) * 1000
                    self._last_cancel = {"previews": after_cancel, "stopped_ms": stopped_ms}
                    log.info("cancelled job stopped %.0f ms after its cancel", stopped_ms)

        finished = loop.run_in_executor(self._executor, work)
        try:
            while True:
                getter = asyncio.ensure_future(events.get())
                done, _ = await asyncio.wait(
                    {getter, finished}, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                while not events.empty():
                    yield events.get_nowait()
                yield await finished
                return
        finally:
            # cancelled by Serve (explicit cancel or the client went away): stop at the next step
            if not finished.done():
                self._cancelled_at = time.monotonic()
                token.cancel()


class Gateway:
    """The HTTP ingress: token, limits, validation, event stream, explicit cancel."""

    def __init__(self, engine: Any, config: ServeConfig) -> None:
        self._engine = engine.options(stream=True)
        self._config = config
        self._catalogue = Catalogue.scan(
            config.models, None if config.cache_path is None else _path(config.cache_path)
        )
        self._waiting: list[str] = []  # job ids not yet started, oldest first
        self._streams: dict[str, Any] = {}  # job id -> Serve's response generator

    async def __call__(self, http: HttpRequest) -> Response:
        if not authorised(http.headers.get("authorization"), self._config.token):
            return JSONResponse(
                {"type": "error", "kind": "unauthorised", "message": "missing or wrong token"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        path, method = http.url.path.rstrip("/"), http.method
        if method == "GET" and path == "/v1/info":
            return JSONResponse(self._info())
        if method == "GET" and path == "/v1/models":
            return JSONResponse({"models": self._catalogue.to_wire()})
        if method == "POST" and path == "/v1/jobs":
            return await self._submit(http)
        parts = path.split("/")
        if (
            method == "POST"
            and len(parts) == 5
            and parts[1:3] == ["v1", "jobs"]
            and parts[4] == "cancel"
        ):
            return JSONResponse({"cancelled": self._cancel(parts[3])})
        return _refuse(404, f"no such endpoint: {method} {path or '/'}")

    def _info(self) -> dict[str, Any]:
        config = self._config
        resources = ray.cluster_resources()
        replicas: Any = config.replicas
        if config.autoscale is not None:
            replicas = f"{config.autoscale[0]}..{config.autoscale[1]}"
        return {
            "api": API_VERSION,
            "models": self._catalogue.to_wire(),
            "gpus": int(resources.get("GPU", 0)),
            "cpus": int(resources.get("CPU", 0)),
            "nodes": sum(1 for node in ray.nodes() if node.get("Alive")),
            "replicas": replicas,
            "gpus_per_replica": config.gpus_per_replica,
            "limits": config.limits.to_wire(),
            "jobs": {"waiting": len(self._waiting), "open": len(self._streams)},
        }

    async def _submit(self, http: HttpRequest) -> Response:
        try:
            body = await _read_body(http, self._config.limits.max_body_bytes)
            data = json.loads(body)
            request = await asyncio.to_thread(
                request_from_wire, data, self._catalogue.resolve, self._config.limits
            )
        except WireError as error:
            return _refuse(error.status, str(error))
        except json.JSONDecodeError as error:
            return _refuse(400, f"the body is not JSON ({error.msg})")
        except ModelNotFoundError as error:
            return _refuse(404, str(error), "model_not_found")
        except EngineError as error:  # InvalidRequestError from the engine's own checks
            return _refuse(400, str(error))
        job = uuid.uuid4().hex[:16]
        return StreamingResponse(self._stream(job, request), media_type="application/x-ndjson")

    def _cancel(self, job: str) -> bool:
        stream = self._streams.get(job)
        if stream is None:
            return False
        stream.cancel()
        return True

    def _position(self, job: str) -> int:
        return self._waiting.index(job) if job in self._waiting else 0

    async def _stream(self, job: str, request: Request) -> AsyncIterator[bytes]:
        self._waiting.append(job)
        yield line({"type": "accepted", "job": job})
        position = self._position(job)
        yield line({"type": "queued", "position": position})
        pending: asyncio.Future | None = None
        started = False
        try:
            for attempt in range(3):
                stream = self._streams[job] = self._engine.run.remote(request)
                try:
                    while True:
                        if pending is None:
                            pending = asyncio.ensure_future(stream.__anext__())
                        done, _ = await asyncio.wait({pending}, timeout=self._config.heartbeat_s)
                        if not done:
                            now = self._position(job)
                            if not started and now != position:
                                position = now
                                yield line({"type": "queued", "position": position})
                            else:
                                yield line({"type": "alive"})
                            continue
                        finished, pending = pending, None
                        try:
                            chunk = finished.result()
                        except StopAsyncIteration:
                            return
                        if not started:
                            started = True
                            self._waiting.remove(job)
                        yield chunk
                except RequestCancelledError:
                    yield line({"type": "cancelled"})
                    return
                except ray.exceptions.RayError as error:
                    pending = None
                    if not started and attempt < 2:
                        log.warning(
                            "job %s: replica lost before it started (%s); retrying", job, error
                        )
                        continue
                    log.warning("job %s: replica lost mid-job: %s", job, error)
                    yield line({"type": "error", "kind": "worker_lost", "message": WORKER_LOST})
                    return
        finally:
            if pending is not None:
                pending.cancel()
            stream = self._streams.pop(job, None)
            if stream is not None:
                stream.cancel()  # the client went away: the replica stops at its next step
            if job in self._waiting:
                self._waiting.remove(job)


async def _read_body(http: HttpRequest, limit: int) -> bytes:
    declared = http.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise WireError(f"the request is larger than this server's {limit // 2**20} MiB limit", 413)
    chunks, size = [], 0
    async for chunk in http.stream():
        size += len(chunk)
        if size > limit:
            raise WireError(
                f"the request is larger than this server's {limit // 2**20} MiB limit", 413
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(status: int, message: str, kind: str = "invalid_request") -> JSONResponse:
    return JSONResponse({"type": "error", "kind": kind, "message": message}, status_code=status)


def _path(text: str) -> Any:
    from pathlib import Path

    return Path(text)


def build_app(config: ServeConfig) -> Any:
    """The Serve application: the gateway bound to the engine replicas."""
    engine_options: dict[str, Any] = {
        "max_ongoing_requests": 1,
        "ray_actor_options": {
            "num_cpus": config.cpus_per_replica,
            "num_gpus": config.gpus_per_replica,
        },
        "health_check_period_s": 5,
    }
    if config.autoscale is not None:
        low, high = config.autoscale
        engine_options["autoscaling_config"] = {
            "min_replicas": low,
            "max_replicas": high,
            "target_ongoing_requests": 1,
        }
    else:
        engine_options["num_replicas"] = config.replicas
    engine = serve.deployment(name="ImpastoEngine", **engine_options)(EngineReplica)
    gateway = serve.deployment(
        name="ImpastoGateway",
        num_replicas=1,
        max_ongoing_requests=10_000,  # streams are long; the engine replicas do the queueing
        ray_actor_options={"num_cpus": 0},
    )(Gateway)
    return gateway.bind(
        engine.bind(config.device, config.keep_models, config.torch_threads), config
    )


def deploy(config: ServeConfig, host: str = "127.0.0.1", port: int = 8470) -> str:
    """Start Serve's HTTP proxy on ``host:port`` (Ray must be initialised) and deploy; the URL."""
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app(config), name=APP_NAME, route_prefix="/")
    return f"http://{host}:{port}"


def undeploy() -> None:
    serve.delete(APP_NAME)
