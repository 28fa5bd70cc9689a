"""``InProcessThreads``: one thread for a burst of cheap calls, one more per stuck thread."""

from __future__ import annotations

import threading

import pytest

from amorsize_exec._inprocess import InProcessThreads


def run_all(lane: InProcessThreads, calls: int) -> set[str]:
    """Submit ``calls`` calls; the names of the threads that ran them."""
    names: set[str] = set()
    done = threading.Semaphore(0)

    def call() -> None:
        names.add(threading.current_thread().name)
        done.release()

    for _ in range(calls):
        lane.submit(call)
    for _ in range(calls):
        assert done.acquire(timeout=10)
    return names


@pytest.mark.timeout(30)
def test_a_burst_of_cheap_calls_runs_on_one_thread() -> None:
    lane = InProcessThreads(max_threads=32, stall_s=0.5, name="t")
    try:
        assert len(run_all(lane, 2000)) == 1
    finally:
        lane.shutdown(wait=True)


@pytest.mark.timeout(30)
def test_calls_behind_stuck_threads_get_new_ones_up_to_the_cap() -> None:
    lane = InProcessThreads(max_threads=3, stall_s=0.01, name="t")
    gate = threading.Event()
    try:
        for _ in range(3):
            lane.submit(lambda: gate.wait(10))  # the three threads it may have, all stuck
        ran = threading.Event()
        lane.submit(ran.set)
        assert not ran.wait(0.3), "the cap holds: no fourth thread"
        gate.set()
        assert ran.wait(10)
    finally:
        lane.shutdown(wait=True)


@pytest.mark.timeout(30)
def test_shutdown_runs_what_was_accepted_then_refuses() -> None:
    lane = InProcessThreads(max_threads=2, stall_s=0.01, name="t")
    ran: list[int] = []
    for i in range(100):
        lane.submit(lambda i=i: ran.append(i))
    lane.shutdown(wait=True)
    assert sorted(ran) == list(range(100))
    with pytest.raises(RuntimeError, match="after shutdown"):
        lane.submit(lambda: None)
