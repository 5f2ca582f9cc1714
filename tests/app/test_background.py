"""app.background: work off the UI thread, results (the newest) back on it, cancel, join."""

from __future__ import annotations

import threading

import pytest

from app.background import Background, Mailbox, Relay


@pytest.fixture
def background(qtbot):
    worker = Background("test-background")
    yield worker
    assert worker.shutdown(5)


def test_results_arrive_on_the_ui_thread(background, qtbot):
    seen = []

    def work(_task):
        return threading.current_thread().name

    background.submit(work, on_done=lambda name: seen.append((name, threading.current_thread())))
    qtbot.waitUntil(lambda: bool(seen), timeout=3000)
    ((ran_on, delivered_on),) = seen
    assert ran_on == "test-background" and delivered_on is threading.main_thread()
    assert background.wait(3) and not background.busy  # the thread ends when idle


def test_the_newest_submission_wins(background, qtbot):
    gate, started, done = threading.Event(), threading.Event(), []

    def slow(_task):
        started.set()
        gate.wait(5)
        return "old"

    background.submit(slow, on_done=done.append)
    assert started.wait(3)
    background.submit(lambda _task: "skipped", on_done=done.append)
    background.submit(lambda _task: "new", on_done=done.append)
    gate.set()
    qtbot.waitUntil(lambda: bool(done), timeout=3000)
    assert background.wait(3)
    qtbot.wait(20)
    assert done == ["new"]  # "old" finished too late, "skipped" never ran


def test_queued_tasks_all_run_when_not_latest_only(qtbot):
    worker = Background("test-queue", latest_only=False)
    done = []
    for i in range(3):
        worker.submit(lambda _task, i=i: i, on_done=done.append)
    qtbot.waitUntil(lambda: len(done) == 3, timeout=3000)
    assert done == [0, 1, 2]
    assert worker.shutdown(3)


def test_errors_and_cancel(background, qtbot):
    errors, done = [], []
    background.submit(lambda _task: 1 / 0, on_done=done.append, on_error=errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=3000)
    assert isinstance(errors[0], ZeroDivisionError) and done == []
    gate = threading.Event()
    task = background.submit(lambda _task: gate.wait(5) and "late", on_done=done.append)
    task.cancel()
    gate.set()
    assert background.wait(3)
    qtbot.wait(20)
    assert done == []  # a cancelled task delivers nothing


def test_progress_is_coalesced_to_the_newest_value(background, qtbot):
    seen, gate = [], threading.Event()

    def work(task):
        for value in range(100):
            task.report(value)
        gate.set()
        return "done"

    background.submit(work, on_progress=seen.append, on_done=seen.append)
    assert gate.wait(3)
    qtbot.waitUntil(lambda: "done" in seen, timeout=3000)
    assert seen[-2:] == [99, "done"] and len(seen) < 100


def test_shutdown_joins_a_running_task(qtbot):
    worker = Background("test-shutdown")
    started = threading.Event()

    def work(task):
        started.set()
        while not task.cancelled:
            task.token._event.wait(0.01)

    worker.submit(work)
    assert started.wait(3)
    assert worker.shutdown(3)
    assert not any(t.name == "test-shutdown" for t in threading.enumerate())


def test_a_mailbox_hands_over_only_the_newest(qtbot):
    relay = Relay()
    seen = []
    mailbox = Mailbox(relay, seen.append)
    thread = threading.Thread(target=lambda: [mailbox.post(i) for i in range(50)])
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: bool(seen), timeout=3000)
    qtbot.wait(20)
    assert seen[-1] == 49 and len(seen) < 50


def test_a_relay_runs_calls_from_several_threads_in_posting_order_on_the_ui_thread(qtbot):
    relay = Relay()
    seen: list[tuple[str, int, bool]] = []

    def poster(name: str) -> None:
        for i in range(200):
            relay.post(
                lambda i=i: seen.append(
                    (name, i, threading.current_thread() is threading.main_thread())
                )
            )

    threads = [threading.Thread(target=poster, args=(f"t{k}",)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    qtbot.waitUntil(lambda: len(seen) == 600, timeout=5000)
    assert all(on_ui for _name, _i, on_ui in seen)
    for name in ("t0", "t1", "t2"):
        assert [i for n, i, _ in seen if n == name] == list(range(200))


def test_a_call_running_a_nested_event_loop_does_not_hold_back_the_next_calls(qtbot):
    """A relayed call that opens a modal dialog (a nested event loop) must not block later calls."""
    from PySide6.QtCore import QEventLoop, QTimer

    relay = Relay()
    order: list[str] = []

    def modal() -> None:
        order.append("modal opened")
        loop = QEventLoop()
        QTimer.singleShot(300, loop.quit)
        relay.post(lambda: order.append("posted while modal"))
        loop.exec()
        order.append("modal closed")

    relay.post(modal)
    relay.post(lambda: order.append("second"))
    qtbot.waitUntil(lambda: "modal closed" in order, timeout=3000)
    assert order == ["modal opened", "second", "posted while modal", "modal closed"]


def test_posting_to_a_deleted_relay_is_refused_not_a_crash(qtbot):
    import shiboken6

    relay = Relay()
    shiboken6.delete(relay)
    assert relay.post(lambda: None) is False
