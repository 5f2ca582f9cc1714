"""Work off the UI thread, results back on it: the one way Impasto crosses threads.

Three small pieces, used by every thread -> UI bridge (model library scan and hashing, Canny
previews, Hugging Face downloads, LoRA hashing, generation jobs):

- :class:`Relay` carries calls from any thread to the UI thread, in order (a queued signal).
- :class:`Mailbox` keeps only the newest value posted from any thread and hands it to the UI thread
  once; a UI that falls behind draws only the newest (step previews, download progress).
- :class:`Background` runs functions one at a time on its own short-lived thread (it ends when
  nothing waits, so no idle thread lingers), delivers their results on the UI thread, can cancel,
  and joins its thread on :meth:`Background.shutdown`. With ``latest_only`` a new submission
  cancels the older ones: their results are never delivered ("the newest value wins").

Nothing here imports QtWidgets; widgets use these through the services in ``app/`` and never
start a thread themselves (``tests/test_boundaries.py`` checks that).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QObject, Qt, Signal, Slot

from inference.api import CancelToken

log = logging.getLogger(__name__)

T = TypeVar("T")
Call = Callable[[], None]


class Relay(QObject):
    """Runs callables posted from any thread on the thread this object lives on (the UI thread),
    in the order they were posted.

    The callables wait in a Python deque; only an argument-less queued signal crosses threads to
    wake the UI thread, so no Python object travels inside a Qt event (PySide wraps such
    arguments and copies them on the emitting thread, which we keep out of the picture). One
    call runs per wake-up, and the next wake-up is posted before the call runs, so a call that
    spins a nested event loop (a modal dialog) does not hold back the calls behind it.
    """

    _wake = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._calls: deque[Call] = deque()
        self._wake_posted = False
        self._gone = False
        self._wake.connect(self._run_next, Qt.ConnectionType.QueuedConnection)

    def post(self, call: Call) -> bool:
        """Any thread: run ``call`` on the UI thread soon. False (and dropped) if the relay is
        gone (its window closed): nobody is listening."""
        with self._lock:
            if self._gone:
                return False
            self._calls.append(call)
            if self._wake_posted:
                return True  # a wake-up is on its way; it runs the calls in order
            self._wake_posted = True
        return self._post_wake()

    def _post_wake(self) -> bool:
        try:
            self._wake.emit()
        except RuntimeError:  # the C++ side was deleted
            with self._lock:
                self._gone = True
                dropped = len(self._calls)
                self._calls.clear()
            log.debug("relay gone; dropped %d calls", dropped)
            return False
        return True

    @Slot()
    def _run_next(self) -> None:
        with self._lock:
            if not self._calls:
                self._wake_posted = False
                return
            call = self._calls.popleft()
            more = bool(self._calls)
            self._wake_posted = more
        if more:
            self._post_wake()
        try:
            call()
        except Exception:  # a broken listener must not take the event loop down
            log.exception("a background result could not be delivered")


class Mailbox(Generic[T]):
    """Newest value wins: :meth:`post` from any thread, ``deliver(value)`` runs on the UI thread
    with the newest value only, once per burst of posts."""

    def __init__(self, relay: Relay, deliver: Callable[[T], None]) -> None:
        self._relay = relay
        self._deliver = deliver
        self._lock = threading.Lock()
        self._value: T | None = None
        self._pending = False

    def post(self, value: T) -> None:
        with self._lock:
            self._value = value
            if self._pending:
                return  # the UI thread has not taken the last one yet: it takes this one instead
            self._pending = True
        self._relay.post(self._hand_over)

    def take(self) -> T | None:
        """The waiting value (UI thread), or None; what is taken is not delivered again."""
        with self._lock:
            value, self._value, self._pending = self._value, None, False
        return value

    def _hand_over(self) -> None:
        value = self.take()
        if value is not None:
            self._deliver(value)


@dataclass(eq=False)
class Task(Generic[T]):
    """One submitted function: its cancel token and where its outcome goes (UI thread)."""

    work: Callable[[Task[T]], T]
    on_done: Callable[[T], None] | None = None
    on_error: Callable[[BaseException], None] | None = None
    on_progress: Callable[[Any], None] | None = None
    token: CancelToken = field(default_factory=CancelToken)
    _mailbox: Mailbox[Any] | None = None
    _relay: Relay | None = None

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def cancel(self) -> None:
        self.token.cancel()

    def report(self, value: Any) -> None:
        """Worker thread: offer a progress value; the UI thread sees the newest one."""
        if self._mailbox is not None and not self.cancelled:
            self._mailbox.post(value)

    def post(self, call: Call) -> None:
        """Worker thread: run ``call`` on the UI thread, in order with the task's other calls
        and before its outcome (for partial results that must all arrive)."""
        if self._relay is not None:
            self._relay.post(call)


class Background(QObject):
    """Runs submitted functions one at a time on a thread named ``name``.

    ``latest_only``: each submission cancels the tasks submitted before it (a rescan replaces a
    scan, new thresholds replace old ones). Otherwise tasks queue and all of them run.
    """

    def __init__(self, name: str, latest_only: bool = True, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.latest_only = latest_only
        self._relay = Relay(self)
        self._lock = threading.Lock()
        self._queue: deque[Task[Any]] = deque()
        self._running: Task[Any] | None = None
        self._thread: threading.Thread | None = None

    # ---- UI thread ------------------------------------------------------------------------

    def submit(
        self,
        work: Callable[[Task[T]], T],
        on_done: Callable[[T], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
    ) -> Task[T]:
        """Run ``work(task)`` off the UI thread; ``on_done(result)`` / ``on_error(error)`` /
        ``on_progress(newest value)`` run on the UI thread unless the task was cancelled."""
        task: Task[T] = Task(work, on_done, on_error, on_progress, _relay=self._relay)
        if on_progress is not None:
            task._mailbox = Mailbox(self._relay, lambda value: self._progress(task, value))
        with self._lock:
            if self.latest_only:
                self._cancel_locked()
            self._queue.append(task)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
        return task

    def cancel(self) -> None:
        """Cancel everything submitted: nothing more is delivered."""
        with self._lock:
            self._cancel_locked()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._thread is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the queue ran dry (tests, shutdown). True when no thread is left."""
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def shutdown(self, timeout: float | None = 10.0) -> bool:
        """Cancel everything and join the thread (call before the application quits)."""
        self.cancel()
        return self.wait(timeout)

    # ---- worker thread ---------------------------------------------------------------------

    def _cancel_locked(self) -> None:
        for task in self._queue:
            task.cancel()
        self._queue.clear()
        if self._running is not None:
            self._running.cancel()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._thread = None
                    self._running = None
                    return
                task = self._running = self._queue.popleft()
            if task.cancelled:
                continue
            try:
                result = task.work(task)
            except Exception as error:
                if task.on_error is None:
                    log.exception("background task on %s failed", self.name)
                self._relay.post(partial(self._failed, task, error))
            else:
                self._relay.post(partial(self._done, task, result))

    # ---- back on the UI thread -------------------------------------------------------------

    @staticmethod
    def _done(task: Task[Any], result: Any) -> None:
        if not task.cancelled and task.on_done is not None:
            task.on_done(result)

    @staticmethod
    def _failed(task: Task[Any], error: BaseException) -> None:
        if not task.cancelled and task.on_error is not None:
            task.on_error(error)

    @staticmethod
    def _progress(task: Task[Any], value: Any) -> None:
        if not task.cancelled and task.on_progress is not None:
            task.on_progress(value)
