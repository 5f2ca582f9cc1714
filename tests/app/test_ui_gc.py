"""app.ui_gc: reference cycles (and any Qt object in them) are collected on the UI thread only."""

from __future__ import annotations

import gc
import threading

from app.ui_gc import UiThreadCollector, collect_due


class Node:
    """A cycle member that records the thread its finaliser ran on."""

    seen: list[str]

    def __init__(self, seen: list[str]) -> None:
        self.seen = seen
        self.me = self

    def __del__(self) -> None:
        self.seen.append(threading.current_thread().name)


def test_cycles_made_on_a_worker_are_collected_on_the_ui_thread(qtbot):
    seen: list[str] = []
    collector = UiThreadCollector(interval_ms=20)
    collector.start()
    try:

        def worker() -> None:
            # 2000 cycles: past generation 0's threshold (700), so the automatic collector
            # would have run on this thread, several times, finalising Nodes here
            for _ in range(2000):
                Node(seen)

        thread = threading.Thread(target=worker, name="busy-worker")
        thread.start()
        thread.join()
        assert seen == []  # nothing was collected on the worker
        qtbot.waitUntil(lambda: len(seen) == 2000, timeout=5000)
        assert set(seen) == {threading.main_thread().name}
    finally:
        collector.stop()


def test_stop_gives_the_collector_back_as_it_was(qtbot):
    was = gc.isenabled()
    try:
        gc.enable()
        collector = UiThreadCollector()
        collector.start()
        assert not gc.isenabled() and collector.active
        collector.stop()
        assert gc.isenabled() and not collector.active
    finally:
        (gc.enable if was else gc.disable)()


def test_collect_due_runs_only_generations_past_their_threshold():
    gc.collect()
    assert collect_due() == 0  # nothing allocated since: nothing to do
    garbage = [Node([]) for _ in range(2000)]  # 2000 cycles: past generation 0's threshold
    del garbage
    assert collect_due() >= 2000
