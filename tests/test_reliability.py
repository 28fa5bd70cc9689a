"""Faults and bad input (issue 4): clear errors or a logged serial fallback, nothing lost."""

from __future__ import annotations

import gc
import itertools
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _faults import (
    UnpicklableError,
    broken_initializer,
    fail_on_multiples,
    identity,
    raise_memory_error,
    raise_unpicklable,
    raise_value_error,
    segfault,
    sleep_then_return,
    spin_then_return,
)
from _workloads import worker_pids
from amorsize_exec import AutoExecutor, UnpicklableResultError
from amorsize_exec.testing import FakeProbe, make_profile

# --- exceptions from fn --------------------------------------------------------------------


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_worker_exception_keeps_its_remote_traceback() -> None:
    with AutoExecutor(lane="process") as ex, pytest.raises(ValueError, match="bad item 7") as info:
        list(ex.map(raise_value_error, [7]))
    cause = info.value.__cause__
    assert cause is not None
    assert "Traceback" in str(cause)
    assert "raise_value_error" in str(cause)


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_unpicklable_exception_becomes_a_clear_error() -> None:
    with AutoExecutor(lane="process") as ex, pytest.raises(UnpicklableResultError) as info:
        list(ex.map(raise_unpicklable, [3]))
    message = str(info.value)
    assert UnpicklableError.__qualname__ in message
    assert "item 3 holds a lock" in message


# --- what cannot be pickled runs serially, and says so ----------------------------------------


def test_unpicklable_arguments_run_serially_and_say_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    locks = [threading.Lock() for _ in range(40)]  # 5 ms each: a pool would pay, but for this
    ex = AutoExecutor(probe=FakeProbe(make_profile(pool_start_s=0.01)))
    with caplog.at_level(logging.INFO, logger="amorsize_exec"), ex:
        assert list(ex.map(spin_then_return, locks, [0.005] * 40)) == locks
    record = ex.last_decision
    assert record is not None
    assert record.lane == "serial"
    assert "cannot be pickled" in record.decision.reason
    assert any("cannot be pickled" in r.getMessage() for r in caplog.records)


def test_unpicklable_function_runs_serially() -> None:
    lock = threading.Lock()

    def uses_lock(x: int) -> int:
        with lock:
            return spin_then_return(x + 1, 0.005)  # type: ignore[return-value]

    with AutoExecutor(probe=FakeProbe(make_profile(pool_start_s=0.01))) as ex:
        assert list(ex.map(uses_lock, range(40))) == list(range(1, 41))
    assert ex.last_decision is not None
    assert "the function" in ex.last_decision.decision.reason


def test_strict_map_names_the_unpicklable_argument_and_returns_nothing() -> None:
    with AutoExecutor(strict=True) as ex, pytest.raises(TypeError, match="lock"):
        ex.map(identity, [threading.Lock() for _ in range(5)])


def test_strict_map_refuses_an_unpicklable_function_before_running_it() -> None:
    lock = threading.Lock()
    calls: list[int] = []

    def uses_lock(x: int) -> int:
        calls.append(x)
        with lock:
            return x

    with AutoExecutor(strict=True) as ex, pytest.raises(TypeError, match="uses_lock"):
        ex.map(uses_lock, range(10))
    assert calls == []


def costly_submit_executor(strict: bool) -> AutoExecutor:
    """Calls of 50 ms are worth the pool on this profile once the first one has run."""
    return AutoExecutor(strict=strict, probe=FakeProbe(make_profile(pool_start_s=0.01)))


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("strict", [False, True])
def test_submit_with_unpicklable_argument_raises_through_its_future(strict: bool) -> None:
    # As ProcessPoolExecutor: the call is refused by the pool's pickler, in the Future. Both
    # the first call of a callable (its probe) and a later call of a costly one go there.
    with costly_submit_executor(strict=strict) as ex:
        first = ex.submit(spin_then_return, threading.Lock(), 0.05)
        assert_pickling_error_naming_the_lock(first)
        assert ex.submit(spin_then_return, 1, 0.05).result(timeout=30) == 1
        later = ex.submit(spin_then_return, threading.Lock(), 0.05)
        assert_pickling_error_naming_the_lock(later)


def assert_pickling_error_naming_the_lock(future: Future[Any]) -> None:
    with pytest.raises(Exception, match="pickle") as caught:
        future.result(timeout=30)
    causes = []
    error: BaseException | None = caught.value
    while error is not None:
        causes.append(str(error))
        error = error.__cause__
    assert any("lock" in text for text in causes), causes


# --- worker death of every kind ------------------------------------------------------------------


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_segfault_in_a_worker_is_reported_with_its_signal() -> None:
    with AutoExecutor(lane="process") as ex:
        with pytest.raises(BrokenProcessPool, match="SIGSEGV"):
            list(ex.map(segfault, range(4)))
        assert list(ex.map(abs, [-1, -2])) == [1, 2]  # a fresh pool


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_worker_killed_from_outside_is_reported_with_its_signal() -> None:
    with AutoExecutor(lane="process") as ex:
        results = ex.map(sleep_then_return, range(4), [3.0] * 4)
        workers: list[psutil.Process] = []
        deadline = time.monotonic() + 20
        while not workers and time.monotonic() < deadline:
            workers = [psutil.Process(pid) for pid in worker_pids()]
            time.sleep(0.05)
        assert workers
        workers[0].send_signal(signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(BrokenProcessPool, match="SIGKILL"):
            list(results)
        assert time.monotonic() - started < 10
        assert list(ex.map(abs, [-3])) == [3]


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_memory_error_in_fn_comes_back_as_itself_and_the_pool_lives_on() -> None:
    with AutoExecutor(lane="process") as ex:
        with pytest.raises(MemoryError, match="item 0 wanted too much"):
            list(ex.map(raise_memory_error, range(3)))
        assert list(ex.map(abs, [-4])) == [4]


CTRL_C_SCRIPT = """
import signal, sys
# Ctrl-C as a terminal delivers it: a test run started in the background (``cmd &``) hands its
# children SIGINT ignored, and Python then installs no handler for it.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {tests!r})
from amorsize_exec import AutoExecutor
from _faults import spin_then_return
ex = AutoExecutor(lane="process")
results = ex.map(spin_then_return, range(20), [10.0] * 20)  # chunks of 2: 20 s each
print("started", flush=True)
for r in results:
    print(r, flush=True)
"""


@pytest.mark.processes
@pytest.mark.timeout(90)
def test_ctrl_c_while_iterating_ends_workers_and_exits_promptly() -> None:
    script = CTRL_C_SCRIPT.format(tests=str(Path(__file__).parent))
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        parent = psutil.Process(child.pid)
        workers: list[psutil.Process] = []
        deadline = time.monotonic() + 20
        while len(workers) < 2 and time.monotonic() < deadline:  # chunks are running
            workers = [p for p in parent.children(recursive=True) if p.cpu_percent(0.05) > 0]
        child.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, err = child.communicate(timeout=30)
        exit_s = time.monotonic() - started
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()  # reaped and its pipes closed: no warning in a later test
    assert "KeyboardInterrupt" in err
    assert exit_s < 10, f"exit took {exit_s:.1f} s: running chunks held the interpreter"
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive


# --- bad arguments: the stdlib's errors and messages ------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_workers": 0}, ValueError, "max_workers must be greater than 0"),
        ({"max_workers": -3}, ValueError, "max_workers must be greater than 0"),
        ({"initializer": 3}, TypeError, "initializer must be a callable"),
    ],
)
def test_bad_constructor_arguments_match_the_stdlib(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        ProcessPoolExecutor(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        AutoExecutor(**kwargs)  # type: ignore[arg-type]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="max_tasks_per_child needs Python 3.11")
def test_max_tasks_per_child_above_one_is_refused_rather_than_deadlocking() -> None:
    with pytest.raises(ValueError, match="gh-115634"):
        AutoExecutor(max_tasks_per_child=2)


@pytest.mark.parametrize("bad", ["2", 2.5, True])
def test_max_workers_must_be_an_int(bad: object) -> None:
    with pytest.raises(TypeError, match="max_workers must be an int"):
        AutoExecutor(max_workers=bad)  # type: ignore[arg-type]


def test_bad_map_arguments() -> None:
    with AutoExecutor() as ex:
        with pytest.raises(ValueError, match=r"chunksize must be >= 1\."):
            ex.map(identity, [1], chunksize=0)
        with pytest.raises(TypeError, match="'int' object is not callable"):
            ex.map(3, [1])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'int' object is not callable"):
            ex.submit(3)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="buffersize must be None or > 0"):
            ex.map(identity, [1], buffersize=0)


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_initializer_that_raises_breaks_the_pool_as_in_the_stdlib() -> None:
    with AutoExecutor(initializer=broken_initializer, lane="process") as ex:
        with pytest.raises(BrokenProcessPool):
            list(ex.map(identity, range(10)))
        with pytest.raises(BrokenProcessPool):
            ex.submit(identity, 1).result(timeout=30)


# --- memory stays bounded ------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_ten_million_item_generator_in_bounded_memory() -> None:
    gc.collect()
    process = psutil.Process()
    before = process.memory_info().rss
    peak = before
    count = 0
    with AutoExecutor() as ex:
        for count, _ in enumerate(ex.map(abs, (i for i in range(10_000_000))), 1):
            if count % 1_000_000 == 0:
                peak = max(peak, process.memory_info().rss)
    assert count == 10_000_000
    assert peak - before < 50 * 2**20


@pytest.mark.processes
@pytest.mark.timeout(120)
def test_pool_lane_reads_a_generator_in_bounded_memory() -> None:
    gc.collect()
    process = psutil.Process()
    before = process.memory_info().rss
    peak = before
    with AutoExecutor(lane="process") as ex:
        for count, _ in enumerate(ex.map(abs, range(1_000_000), chunksize=10_000), 1):
            if count % 100_000 == 0:
                peak = max(peak, process.memory_info().rss)
    assert count == 1_000_000
    assert peak - before < 50 * 2**20


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", ["serial", "process", "auto"])
def test_endless_input_zipped_with_a_finite_one(lane: str) -> None:
    with AutoExecutor(lane=lane) as ex:  # type: ignore[arg-type]
        out = list(ex.map(fail_on_multiples, range(100), itertools.repeat(0)))
    assert out == [x * 3 for x in range(100)]


# --- same outcomes as the built-in map, in every lane --------------------------------------------


def outcomes(results: object) -> list[object]:
    """Values until the first exception, then that exception's type."""
    seen: list[object] = []
    iterator = iter(results)  # type: ignore[call-overload]
    while True:
        try:
            seen.append(next(iterator))
        except StopIteration:
            return seen
        except Exception as exc:
            seen.append(type(exc))
            return seen


@pytest.mark.processes
@pytest.mark.timeout(300)
@pytest.mark.parametrize("lane", ["serial", "process", "auto"])
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    xs=st.lists(st.integers(-1000, 1000), max_size=300),
    k=st.integers(0, 60),
    chunksize=st.one_of(st.none(), st.integers(1, 50)),
)
def test_same_values_and_exception_positions_as_builtin_map(
    lane: str, xs: list[int], k: int, chunksize: int | None
) -> None:
    expected = outcomes(map(fail_on_multiples, xs, itertools.repeat(k)))
    with AutoExecutor(lane=lane) as ex:  # type: ignore[arg-type]
        got = outcomes(ex.map(fail_on_multiples, xs, itertools.repeat(k), chunksize=chunksize))
    assert got == expected


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_buffersize_bounds_how_far_the_input_is_read_ahead() -> None:
    pulled: list[int] = []

    def source() -> Iterator[int]:
        for i in itertools.count():
            pulled.append(i)
            yield i

    with AutoExecutor(lane="process") as ex:
        results = ex.map(abs, source(), chunksize=2, buffersize=4)
        assert len(pulled) == 4  # two chunks of two: work has started, no more read
        assert [next(results) for _ in range(10)] == list(range(10))
        assert len(pulled) <= 10 + 4
        results.close()  # type: ignore[attr-defined]
