"""Which engine runs the jobs: this machine's, or an ``impasto serve`` server (Settings › Engine).

The job queue does not care: both are an ``EngineProtocol`` (``inference.remote.RemoteEngine``
keeps the local engine's ``run(request, on_preview, cancel)`` contract), so previews, cancel,
the queue, variants and recipes work the same. When remote, the model library lists the server's
models (``server_entries``) and the picker's paths are ``remote:NAME#HASH`` references.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.background import Background, Task
from app.generation.jobs import EngineFactory, default_engine_factory
from app.settings import Settings
from inference.api import EngineProtocol, InvalidRequestError
from inference.library import Base, ModelEntry, ModelKind

log = logging.getLogger(__name__)

PROBE_THREAD_NAME = "server-probe"


def is_remote(settings: Settings) -> bool:
    return settings.engine == "remote"


def engine_key(settings: Settings) -> tuple[Any, ...]:
    """What, when it changes, replaces the engine (and drops what it had loaded)."""
    if is_remote(settings):
        return ("remote", settings.remote_url, settings.remote_token)
    return ("local", settings.engine_settings())


def engine_factory(settings: Settings) -> EngineFactory:
    """The engine the settings choose; built on the UI thread, cheaply (no torch, no network)."""
    if not is_remote(settings):
        return default_engine_factory(settings.engine_settings())
    return remote_engine_factory(settings)


def remote_engine_factory(settings: Settings) -> EngineFactory:
    """A client of the server in the settings (connects at the first job, not here)."""
    url, token = settings.remote_url, settings.remote_token

    def build() -> EngineProtocol:
        from inference.remote import RemoteEngine

        if not url:
            raise InvalidRequestError("no server address: set one in Settings › Engine")
        return RemoteEngine(url, token)

    return build


def server_entries(url: str, token: str) -> list[ModelEntry]:
    """The server's models as library entries (blocking: call it off the UI thread)."""
    from inference.remote import RemoteEngine

    kinds = {kind.value: kind for kind in ModelKind}
    entries = []
    for model in RemoteEngine(url, token).models():
        entries.append(
            ModelEntry(
                path=model.path,
                kind=kinds.get(model.kind, ModelKind.UNKNOWN),
                base=Base.parse(model.family),
                inpaint=model.inpaint,
                size=model.size,
                hash=model.hash,
                display_name=model.name,  # recipes carry it: the server's own name
            )
        )
    return entries


class ServerProbe(QObject):
    """Asks a server for its models and GPUs off the UI thread ("Test connection")."""

    answered = Signal(str)  # a summary: models, GPUs, nodes, replicas
    failed = Signal(str)  # one line saying what is wrong

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._background = Background(PROBE_THREAD_NAME, latest_only=True, parent=self)

    def probe(self, url: str, token: str) -> None:
        def work(_task: Task[str]) -> str:
            from inference.remote import RemoteEngine

            info = RemoteEngine(url, token, connect_timeout=5.0).info()
            names = [m.name for m in info.models if m.kind == "checkpoint"]
            listed = ", ".join(names[:8]) + (" …" if len(names) > 8 else "")
            return f"Connected: {info.summary()}" + (f". Models: {listed}" if names else "")

        self._background.submit(
            work, on_done=self.answered.emit, on_error=lambda error: self.failed.emit(str(error))
        )

    @property
    def busy(self) -> bool:
        return self._background.busy

    def shutdown(self, timeout: float = 5.0) -> bool:
        return self._background.shutdown(timeout)
