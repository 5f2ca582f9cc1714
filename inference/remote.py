"""A client of an ``impasto serve`` server with the local engine's contract.

``RemoteEngine(url, token).run(request, on_preview, cancel) -> Result``: the job runs on the
server's Ray Serve replicas; previews arrive per step and results with their recipe, so the app's
``JobController`` and the CLI cannot tell it from the local ``Engine``. Standard library only
(``http.client``): the desktop's default install needs neither Ray nor an HTTP package.

Failures are one sentence each, as ``EngineError`` subclasses: a server that is down or does not
answer within ``connect_timeout`` (no hang at the first Generate), a wrong token, a connection lost
mid-job (``ConnectionLost``: nothing is returned, so the document stays as it was and the job can be
retried), a model the server lacks (``ModelNotFoundError`` naming it).
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from inference.api import (
    Cancelled,
    CancelToken,
    EngineError,
    InvalidRequestError,
    ModelNotFoundError,
    PreviewCallback,
    Request,
    Result,
)
from inference.serve.wire import (
    _box,
    decode_png,
    decode_region,
    error_from_event,
    remote_model_path,
    request_to_wire,
    result_from_event,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 8470


class RemoteError(EngineError):
    """The server cannot be reached, refused us, or broke the connection."""


class ConnectionLost(RemoteError):
    """The connection ended mid-job; nothing was produced, the job can be retried."""


@dataclass(frozen=True)
class RemoteModel:
    name: str
    kind: str
    family: str
    inpaint: bool
    hash: str | None
    size: int = 0

    @property
    def path(self) -> str:
        """What goes into ``Request.model_path`` to use this model."""
        return remote_model_path(self.name, self.hash)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> RemoteModel:
        return cls(
            name=str(data.get("name", "")),
            kind=str(data.get("kind", "checkpoint")),
            family=str(data.get("family", "unknown")),
            inpaint=bool(data.get("inpaint", False)),
            hash=data.get("hash") if isinstance(data.get("hash"), str) else None,
            size=int(data.get("size") or 0),
        )


@dataclass(frozen=True)
class ServerInfo:
    models: tuple[RemoteModel, ...]
    gpus: int
    cpus: int
    nodes: int
    replicas: str

    def summary(self) -> str:
        checkpoints = sum(1 for m in self.models if m.kind == "checkpoint")
        return (
            f"{checkpoints} model{'s' if checkpoints != 1 else ''}, {self.gpus} GPU"
            f"{'s' if self.gpus != 1 else ''} on {self.nodes} node{'s' if self.nodes != 1 else ''}"
            f", {self.replicas} replica(s)"
        )


class RemoteEngine:
    """Runs requests on an ``impasto serve`` server (see the module docstring)."""

    def __init__(
        self,
        url: str,
        token: str,
        connect_timeout: float = 5.0,
        idle_timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(url.strip() if "://" in url else f"http://{url.strip()}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequestError(f"not a server address: {url!r} (use http://HOST:PORT)")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else DEFAULT_PORT)
        self._prefix = parts.path.rstrip("/")
        self._token = token.strip()
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.last_job: str | None = None  # the server's id of the newest job
        self.last_worker: dict[str, Any] | None = None  # its "started" event (replica, pid)

    # ---- plain calls -------------------------------------------------------------------------

    def info(self) -> ServerInfo:
        """The server's models, GPUs, nodes and replicas (one short call)."""
        data = self._get_json("/v1/info")
        return ServerInfo(
            models=tuple(RemoteModel.from_wire(m) for m in data.get("models", [])),
            gpus=int(data.get("gpus", 0)),
            cpus=int(data.get("cpus", 0)),
            nodes=int(data.get("nodes", 1)),
            replicas=str(data.get("replicas", "?")),
        )

    def models(self) -> list[RemoteModel]:
        return [RemoteModel.from_wire(m) for m in self._get_json("/v1/models").get("models", [])]

    def cancel_job(self, job: str) -> bool:
        try:
            connection = self._connect()
            try:
                self._send(connection, "POST", f"/v1/jobs/{job}/cancel", b"")
                response = connection.getresponse()
                return bool(json.loads(response.read() or b"{}").get("cancelled"))
            finally:
                connection.close()
        except (OSError, http.client.HTTPException, ValueError, RemoteError) as error:
            log.info("could not cancel job %s: %s", job, error)
            return False

    # ---- jobs ----------------------------------------------------------------------------------

    def run(
        self,
        request: Request,
        on_preview: PreviewCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> Result:
        for event in self.events(request, cancel):
            kind = event.get("type")
            if kind == "preview" and on_preview is not None:
                box = _box(event.get("box"), "box")
                image = decode_png(event.get("image"), "a preview", (3, 4))
                on_preview(
                    int(event["step"]),
                    int(event["total"]),
                    image,
                    box,
                    decode_region(event.get("region"), box),
                )
            elif kind == "result":
                return _with_client_paths(result_from_event(event, request), request)
            elif kind == "cancelled":
                raise Cancelled("cancelled")
            elif kind == "error":
                error = error_from_event(event)
                if event.get("kind") == "worker_lost":
                    raise ConnectionLost(str(error))
                raise error
        raise ConnectionLost(self._lost("the server ended the job without a result"))

    def events(self, request: Request, cancel: CancelToken | None = None) -> Iterator[dict]:
        """The job's raw events, in order (``accepted``, ``queued``, ``started``, ``preview``…,
        then ``result``, ``cancelled`` or ``error``); cancels the job when ``cancel`` fires or
        the iterator is closed early."""
        body = json.dumps(request_to_wire(request)).encode()
        connection = self._connect()
        job: str | None = None
        finished = False
        try:
            self._send(connection, "POST", "/v1/jobs", body, "application/json")
            if connection.sock is not None:  # heartbeats come every second: silence is a fault
                connection.sock.settimeout(self.idle_timeout)
            response = self._response(connection)
            while True:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled("cancelled")
                try:
                    raw = response.readline()
                except (OSError, http.client.HTTPException) as error:
                    raise ConnectionLost(self._lost(_reason(error))) from None
                if not raw:
                    raise ConnectionLost(self._lost("the server closed the connection"))
                try:
                    event = json.loads(raw)
                except ValueError:
                    raise ConnectionLost(self._lost("the server sent garbled data")) from None
                kind = event.get("type")
                if kind == "accepted":
                    job = self.last_job = str(event.get("job"))
                elif kind == "started":
                    self.last_worker = event
                if kind in ("result", "cancelled", "error"):
                    finished = True
                if kind != "alive":
                    yield event
                if finished:
                    return
        finally:
            connection.close()  # the server cancels a job whose client went away
            if job is not None and not finished:
                self.cancel_job(job)

    # ---- HTTP ----------------------------------------------------------------------------------

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                self._host,
                self._port,
                timeout=self.connect_timeout,
                context=ssl.create_default_context(),
            )
        else:
            connection = http.client.HTTPConnection(
                self._host, self._port, timeout=self.connect_timeout
            )
        try:
            connection.connect()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise RemoteError(
                f"cannot reach the Impasto server at {self.url} ({_reason(error)}); "
                "is `impasto serve` running there?"
            ) from None
        return connection

    def _send(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        path: str,
        body: bytes,
        content_type: str | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/x-ndjson"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            connection.request(method, self._prefix + path, body=body, headers=headers)
        except (OSError, http.client.HTTPException) as error:
            raise RemoteError(f"cannot send to {self.url}: {_reason(error)}") from None

    def _response(self, connection: http.client.HTTPConnection) -> http.client.HTTPResponse:
        try:
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            raise RemoteError(
                f"the Impasto server at {self.url} did not answer ({_reason(error)})"
            ) from None
        if response.status == 200:
            return response
        try:
            data = json.loads(response.read(1 << 20) or b"{}")
            message = str(data.get("message") or data)
            kind = data.get("kind")
        except (ValueError, OSError, http.client.HTTPException, AttributeError):
            message, kind = response.reason, None
        if response.status == 401:
            raise RemoteError(
                f"the server at {self.url} refused the access token (wrong or missing); "
                "copy it from the server's token file"
            )
        if response.status == 404 and kind == "model_not_found":
            raise ModelNotFoundError(message)
        if response.status in (400, 413):
            raise InvalidRequestError(message)
        raise RemoteError(f"the server at {self.url} answered {response.status}: {message}")

    def _get_json(self, path: str) -> dict[str, Any]:
        connection = self._connect()
        try:
            self._send(connection, "GET", path, b"")
            response = self._response(connection)
            try:
                data = json.loads(response.read())
            except (ValueError, OSError, http.client.HTTPException) as error:
                raise RemoteError(
                    f"the server at {self.url} sent no valid answer ({error})"
                ) from None
        finally:
            connection.close()
        if not isinstance(data, dict):
            raise RemoteError(f"the server at {self.url} sent no valid answer")
        return data

    def _lost(self, why: str) -> str:
        return (
            f"lost the connection to {self.url} mid-job ({why}); "
            "the picture is unchanged, try again"
        )


def _reason(error: BaseException) -> str:
    if isinstance(error, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def _with_client_paths(result: Result, request: Request) -> Result:
    """The recipe names what the client asked for, not the server's file paths."""
    recipe = result.recipe
    loras = tuple(
        replace(use, path=path)
        for use, (path, _weight) in zip(recipe.loras, request.loras, strict=False)
    )
    controls = tuple(
        replace(unit, model_path=control.model_path)
        for unit, control in zip(recipe.controls, request.controls, strict=False)
    )
    recipe = replace(
        recipe,
        model_path=request.model_path,
        vae_path=request.vae_path,
        loras=loras,
        controls=controls,
    )
    return replace(result, recipe=recipe)
