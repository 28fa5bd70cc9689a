"""``shutdown``: waits, cancels what has not started, is idempotent, never hangs a map; and
nested use inside a worker runs serially."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import CancelledError, Future, wait
from pathlib import Path
from typing import Any

import pytest

from _polling import wait_until
from _workloads import (
    add,
    announce_then_wait,
    double,
    nested_map,
    nested_submit,
    note_pid,
    sleep_then_return,
    square_after_spin,
    wait_for_path,
)
from amorsize_exec import AutoExecutor, Settings
from amorsize_exec.testing import FakeProbe

LANES = ["auto", "serial", "process"]


def create_later(path: Path, seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, path.touch)
    timer.start()
    return timer


def assert_cancelled_or_correct(futures: list[Future[Any]], expected: list[Any]) -> int:
    """Each future is cancelled (as ``Future.cancelled()`` says) or has its right result;
    returns how many were cancelled."""
    _, not_done = wait(futures, timeout=20)
    assert not not_done, "a cancelled or finished future must count as done for wait()"
    cancelled = 0
    for future, want in zip(futures, expected, strict=True):
        if future.cancelled():
            cancelled += 1
            with pytest.raises(CancelledError):
                future.result()
        else:
            assert future.result() == want
    return cancelled


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", LANES)
def test_shutdown_wait_waits_for_submitted_work(lane: str, fake_probe: FakeProbe) -> None:
    ex = AutoExecutor(lane=lane, probe=fake_probe)  # type: ignore[arg-type]
    futures = [ex.submit(sleep_then_return, x, 0.2) for x in range(3)]
    ex.shutdown(wait=True)
    assert all(f.done() for f in futures)
    assert [f.result() for f in futures] == [0, 1, 2]


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", LANES)
def test_shutdown_twice_is_fine(lane: str, fake_probe: FakeProbe) -> None:
    ex = AutoExecutor(lane=lane, probe=fake_probe)  # type: ignore[arg-type]
    assert ex.submit(double, 4).result(timeout=30) == 8
    ex.shutdown()
    ex.shutdown()
    ex.shutdown(wait=False, cancel_futures=True)
    with pytest.raises(RuntimeError):
        ex.submit(double, 1)


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", LANES)
def test_context_manager(lane: str, fake_probe: FakeProbe) -> None:
    with AutoExecutor(lane=lane, probe=fake_probe) as ex:  # type: ignore[arg-type]
        future = ex.submit(sleep_then_return, 5, 0.1)
        results = ex.map(add, range(10), range(10))
    assert future.done()
    assert future.result() == 5
    assert list(results) == [2 * x for x in range(10)]
    with pytest.raises(RuntimeError, match="shutdown"):
        ex.map(double, [1])


@pytest.mark.timeout(60)
def test_cancel_futures_cancels_calls_queued_behind_a_running_one(
    fake_probe: FakeProbe, tmp_path: Path
) -> None:
    # One in-process thread (submit_threads=1): the calls queue behind the blocker.
    gate = tmp_path / "gate"
    settings = Settings().replace(submit_threads=1)
    ex = AutoExecutor(lane="serial", probe=fake_probe, settings=settings)
    blocker = ex.submit(wait_for_path, str(gate))
    queued = [ex.submit(double, x) for x in range(6)] + [ex.submit(add, 1, 2)]
    timer = create_later(gate, 0.3)
    ex.shutdown(wait=True, cancel_futures=True)
    timer.join()
    assert blocker.result(timeout=10) == str(gate)
    cancelled = assert_cancelled_or_correct(queued, [x * 2 for x in range(6)] + [3])
    assert cancelled == len(queued), "one in-process thread, busy: nothing queued had started"


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_cancel_futures_cancels_calls_waiting_for_a_probe(tmp_path: Path) -> None:
    # A long probe wait keeps the later calls of the same callable waiting for its verdict.
    settings = Settings().replace(submit_probe_wait_s=30.0)
    gate = tmp_path / "gate"
    ex = AutoExecutor(probe=FakeProbe(), settings=settings)
    probe_call = ex.submit(wait_for_path, str(gate))
    waiting = [ex.submit(wait_for_path, str(gate)) for _ in range(3)]
    ex.shutdown(wait=False, cancel_futures=True)
    gate.touch()
    assert probe_call.result(timeout=10) == str(gate)
    assert assert_cancelled_or_correct(waiting, [str(gate)] * 3) == 3


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_calls_waiting_for_a_probe_run_after_a_plain_shutdown(tmp_path: Path) -> None:
    settings = Settings().replace(submit_probe_wait_s=30.0)
    gate = tmp_path / "gate"
    ex = AutoExecutor(probe=FakeProbe(), settings=settings)
    first = ex.submit(wait_for_path, str(gate))
    waiting = [ex.submit(wait_for_path, str(gate)) for _ in range(3)]
    timer = create_later(gate, 0.2)
    ex.shutdown(wait=True)
    timer.join()
    assert all(f.done() for f in [first, *waiting])
    assert [f.result() for f in [first, *waiting]] == [str(gate)] * 4


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_a_waiting_call_cancelled_by_the_user_never_runs(tmp_path: Path) -> None:
    settings = Settings().replace(submit_probe_wait_s=30.0)
    gate = tmp_path / "gate"
    with AutoExecutor(probe=FakeProbe(), settings=settings) as ex:
        first = ex.submit(wait_for_path, str(gate))
        waiting = ex.submit(wait_for_path, str(tmp_path / "never"), 0.5)
        assert waiting.cancel()
        gate.touch()
        assert first.result(timeout=10) == str(gate)
    assert waiting.cancelled()
    done, _ = wait([waiting], timeout=5)
    assert waiting in done


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_cancel_futures_in_the_process_lane(fake_probe: FakeProbe, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    started = [tmp_path / f"started{i}" for i in range(2)]
    ex = AutoExecutor(lane="process", probe=fake_probe)
    blockers = [ex.submit(announce_then_wait, str(s), str(gate)) for s in started]
    assert wait_until(lambda: all(s.exists() for s in started), 30), "workers never started"
    queued = [ex.submit(double, x) for x in range(20)]
    timer = create_later(gate, 0.5)
    ex.shutdown(wait=True, cancel_futures=True)
    timer.join()
    assert [b.result(timeout=10) for b in blockers] == [str(gate)] * 2
    cancelled = assert_cancelled_or_correct(queued, [x * 2 for x in range(20)])
    assert cancelled > 0


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", LANES)
def test_map_in_progress_with_shutdown_cancel_never_hangs(lane: str, fake_probe: FakeProbe) -> None:
    ex = AutoExecutor(lane=lane, probe=fake_probe)  # type: ignore[arg-type]
    results = ex.map(square_after_spin, range(40), [0.02] * 40, chunksize=1)
    got = [next(results) for _ in range(3)]
    ex.shutdown(wait=False, cancel_futures=True)
    error: BaseException | None = None
    try:
        for r in results:
            got.append(r)
    except CancelledError as exc:
        error = exc
    assert got == [x * x for x in range(len(got))]
    if error is None:
        assert len(got) == 40
    if lane == "process":
        assert error is not None, "positions not yet started are cancelled"


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_pool_map_consumed_after_the_with_block(cheap_pool_probe: FakeProbe) -> None:
    with AutoExecutor(lane="process", probe=cheap_pool_probe) as warm_up:
        list(warm_up.map(square_after_spin, range(2), [0.0] * 2))  # else it may all run here
    with AutoExecutor(probe=cheap_pool_probe) as ex:
        results = ex.map(square_after_spin, range(80), [0.005] * 80)
        decision = ex.last_decision
    assert decision is not None
    assert decision.lane == "process", decision.summary()
    assert list(results) == [x * x for x in range(80)]


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_nested_map_inside_a_worker_runs_serially(fake_probe: FakeProbe) -> None:
    with AutoExecutor(lane="process", probe=fake_probe) as ex:
        outcomes = list(ex.map(nested_map, [5, 8, 3]))
    for n, (results, lane, reason, pid) in zip([5, 8, 3], outcomes, strict=True):
        assert results == [x * 2 for x in range(n)]
        assert lane == "serial"
        assert "nested" in reason
        assert pid != os.getpid()


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_nested_submit_inside_a_worker_stays_in_that_worker(fake_probe: FakeProbe) -> None:
    with AutoExecutor(lane="process", probe=fake_probe) as ex:
        outcomes = [ex.submit(nested_submit, x).result(timeout=30) for x in range(3)]
    for x, (doubled, task_pid, worker) in enumerate(outcomes):
        assert doubled == x * 2
        assert task_pid == worker != os.getpid()


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_private_pool_map_consumed_after_the_with_block(
    fake_probe: FakeProbe, tmp_path: Path
) -> None:
    # An initializer makes the pool private to the executor; results are read after shutdown.
    with AutoExecutor(
        lane="process", probe=fake_probe, initializer=note_pid, initargs=(str(tmp_path / "i"),)
    ) as ex:
        results = ex.map(double, range(200), chunksize=5)
    assert list(results) == [x * 2 for x in range(200)]
    assert (tmp_path / "i").exists()


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("pool", ["shared", "initializer", "max_tasks_per_child"])
def test_shutdown_without_wait_lets_submitted_work_finish(
    pool: str, fake_probe: FakeProbe, tmp_path: Path
) -> None:
    setup: dict[str, Any] = {
        "shared": {},
        "initializer": {"initializer": note_pid, "initargs": (str(tmp_path / "i"),)},
        # 1: with more, the stdlib pool of Python 3.11-3.13 can hang (CPython gh-115634).
        "max_tasks_per_child": {"max_tasks_per_child": 1},
    }[pool]
    if pool == "max_tasks_per_child" and sys.version_info < (3, 11):
        pytest.skip("max_tasks_per_child needs Python 3.11")
    ex = AutoExecutor(lane="process", probe=fake_probe, **setup)
    futures = [ex.submit(sleep_then_return, x, 0.2) for x in range(6)]
    ex.shutdown(wait=False)
    assert [f.result(timeout=30) for f in futures] == list(range(6))


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_map_inside_submitted_work_runs_serially_in_the_worker(fake_probe: FakeProbe) -> None:
    with AutoExecutor(lane="process", probe=fake_probe) as ex:
        results, lane, reason, pid = ex.submit(nested_map, 6).result(timeout=30)
    assert results == [x * 2 for x in range(6)]
    assert (lane, pid != os.getpid()) == ("serial", True)
    assert "nested" in reason


_FINALIZERS_THEN_EXIT = """
import multiprocessing.util, sys
from amorsize_exec import AutoExecutor
lane = sys.argv[1]
with AutoExecutor(lane=lane) as ex:
    assert ex.submit(pow, 2, 8).result(timeout=30) == 256
    assert list(ex.map(abs, range(-3, 0))) == [3, 2, 1]
# What CPython's own test suites do after each module (test.support's _cleanup_tests): every
# multiprocessing finalizer runs, the queues' feeder threads included, while the process goes on.
multiprocessing.util._run_finalizers()
with AutoExecutor(lane=lane) as ex:  # a fresh shared pool afterwards
    assert ex.submit(pow, 3, 2).result(timeout=30) == 9
print("exiting", flush=True)
"""


@pytest.mark.processes
@pytest.mark.timeout(120)
@pytest.mark.parametrize("lane", ["auto", "process"])
def test_an_idle_shared_pool_never_keeps_the_interpreter_from_exiting(lane: str) -> None:
    # The shared pool outlives its executors. Once multiprocessing's finalizers had stopped its
    # call queue's feeder, loky's exit hook waited forever for workers that never got their
    # exit sentinel. The interpreter must exit, whatever ran before.
    try:
        out = subprocess.run(
            [sys.executable, "-c", _FINALIZERS_THEN_EXIT, lane],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired as hang:
        pytest.fail(f"the interpreter hung at exit: {hang.stdout!r}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "exiting"
