"""The drop-in contract at its edges (issue 9): each defect found by trying ``AutoExecutor`` as
a ``ProcessPoolExecutor`` user would, in every lane where it could happen."""

from __future__ import annotations

import functools
import os
import time
import weakref
from concurrent.futures import FIRST_COMPLETED, Future, as_completed, wait
from concurrent.futures import TimeoutError as FuturesTimeoutError
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

from _children import leftover_children
from _faults import segfault
from _polling import wait_until
from _workloads import (
    double,
    exit_now,
    fail_at,
    identity,
    keywords,
    make_dummy,
    set_factor,
    sleep_then_return,
    square_after_spin,
    times_factor,
    wait_for_path,
    worker_pid,
)
from amorsize_exec import AutoExecutor
from amorsize_exec.testing import FakeProbe

#: Every way to build an executor whose behaviour the stdlib's pool defines.
LANES: dict[str, dict[str, Any]] = {
    "auto": {},
    "serial": {"lane": "serial"},
    "thread": {"lane": "thread"},
    "process": {"lane": "process"},
    "isolate": {"isolate": True},
}
POOL_LANES = ["auto", "process", "isolate"]


def executor(lane: str, **kw: Any) -> AutoExecutor:
    return AutoExecutor(**LANES[lane], **kw)


# --- 1. fn never runs where the initializer has not run --------------------------------------


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", POOL_LANES)
def test_every_map_result_comes_from_an_initialized_worker(lane: str) -> None:
    with executor(lane, initializer=set_factor, initargs=(3,)) as ex:
        out = list(ex.map(times_factor, range(120)))
    assert out == [3 * x for x in range(120)]


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", POOL_LANES)
def test_every_submit_result_comes_from_an_initialized_worker(lane: str) -> None:
    with executor(lane, initializer=set_factor, initargs=(3,)) as ex:
        futures = [ex.submit(times_factor, x, 0.0) for x in range(50)]
        again = [ex.submit(times_factor, x, 0.0) for x in range(50)]  # after the probe
        assert [f.result(timeout=30) for f in futures + again] == [3 * x for x in range(50)] * 2


def test_a_serial_lane_with_an_initializer_or_isolate_is_refused() -> None:
    with pytest.raises(ValueError, match="initializer"):
        AutoExecutor(lane="serial", initializer=set_factor, initargs=(3,))
    with pytest.raises(ValueError, match="isolate"):
        AutoExecutor(lane="serial", isolate=True)


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_isolate_runs_nothing_here_and_lets_the_model_size_chunks() -> None:
    with AutoExecutor(isolate=True) as ex:
        pids = set(ex.map(worker_pid, range(3000)))
        decision = ex.last_decision
        submitted = {ex.submit(worker_pid).result(timeout=30) for _ in range(30)}
    assert os.getpid() not in pids | submitted
    assert decision is not None
    assert decision.lane == "process"
    assert "timed in them" in decision.decision.reason, decision.summary()
    assert decision.decision.chunksize > 1, "cheap items travel in chunks the model sized"
    assert decision.stats is not None, "the decision rests on timings from the workers"


# --- 2. map(timeout=) holds while an item runs ------------------------------------------------


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", list(LANES))
def test_map_timeout_is_raised_while_an_item_still_runs(lane: str, tmp_path: Path) -> None:
    # The case: two quick items, then one that blocks until the gate exists. The quick
    # ones are delivered (in the auto lane they are the sample: handed over as they come).
    gate = str(tmp_path / "gate")
    with executor(lane) as ex:
        started = time.monotonic()
        results = ex.map(wait_for_path, [str(tmp_path)] * 2 + [gate], timeout=1.0)
        assert [next(results) for _ in range(2)] == [str(tmp_path)] * 2
        with pytest.raises(FuturesTimeoutError):
            next(results)
        raised_after_s = time.monotonic() - started
        Path(gate).touch()  # lets the item still running end
    # Behaviour, not speed: the item blocks until the gate exists (created only after this), so
    # a TimeoutError that waited for it would have come after wait_for_path's own 20 s.
    assert raised_after_s < 10.0


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_a_map_that_timed_out_during_its_sample_starts_no_pool(
    cheap_pool_probe: FakeProbe,
) -> None:
    # The sample's one item (0.5 s) outlives the timeout; on its measure, the 3 items left
    # would take a pool. The consumer has gone by then: nothing may start for nobody (such a
    # pool outlived the executor and the test, 1 run in 3 of the auto lane's suite).
    with AutoExecutor(probe=cheap_pool_probe) as ex:
        results = ex.map(sleep_then_return, range(4), [0.5] * 4, timeout=0.2)
        with pytest.raises(FuturesTimeoutError):
            list(results)
    time.sleep(1.0)  # the item ends at 0.5 s; a pool would be starting by now
    assert leftover_children() == []


@pytest.mark.timeout(60)
def test_map_timeout_keeps_order_and_exceptions_in_process() -> None:
    with AutoExecutor(lane="serial") as ex:
        assert list(ex.map(double, range(1000), timeout=30)) == [2 * x for x in range(1000)]
        results = ex.map(fail_at, range(10), timeout=30)
        assert [next(results) for _ in range(7)] == [2 * x for x in range(7)]
        with pytest.raises(ValueError, match="7"):
            next(results)


# --- 3. no call waits behind a call it does not depend on --------------------------------------


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", list(LANES))
def test_a_fast_call_does_not_wait_behind_a_slow_one(lane: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with executor(lane, probe=FakeProbe()) as ex:
        # wait_for_path is measured cheap first (in the auto lane its next calls run here).
        assert ex.submit(wait_for_path, str(tmp_path)).result(timeout=30) == str(tmp_path)
        slow = ex.submit(wait_for_path, str(gate))
        fast = [ex.submit(double, x) for x in range(4)]
        done, _ = wait([slow, *fast], timeout=20, return_when=FIRST_COMPLETED)
        first = next(as_completed([slow, *fast], timeout=20))
        assert not slow.done(), "the slow call is still running"
        gate.touch()
        assert slow.result(timeout=30) == str(gate)
    assert done
    assert slow not in done
    assert first is not slow
    assert [f.result() for f in fast] == [0, 2, 4, 6]


# --- 4. nothing delivered is kept alive ---------------------------------------------------------


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", list(LANES))
@pytest.mark.parametrize("n", [10, 3000])
def test_map_drops_each_result_once_yielded(lane: str, n: int) -> None:
    # CPython frees an object when its last reference goes: a result still alive after the
    # loop dropped it is held by the executor (CPython's test_free_reference, longer too).
    with executor(lane) as ex:
        delivered = 0  # not enumerate(): it keeps its last tuple, and so the last result
        for obj in ex.map(make_dummy, range(n)):
            ref = weakref.ref(obj)
            del obj
            assert ref() is None, f"result {delivered} was kept alive"
            delivered += 1
    assert delivered == n


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", list(LANES))
def test_submit_keeps_no_argument_or_result_once_delivered(lane: str) -> None:
    with executor(lane) as ex:
        for _ in range(3):  # the probe, then the lane the profile chose
            arg = make_dummy()
            future = ex.submit(identity, arg)
            result = future.result(timeout=30)
            refs = [weakref.ref(arg), weakref.ref(result)]
            del arg, result, future
            # The pool's own threads may hold a finished call for a moment (CPython's
            # test_free_reference retries for the same reason).
            assert wait_until(functools.partial(all_dead, refs), 5.0)


def all_dead(refs: list[weakref.ref[Any]]) -> bool:
    return all(ref() is None for ref in refs)


# --- 5. a crash is a BrokenProcessPool, not the caller's death -----------------------------------


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("crash", [segfault, exit_now], ids=["segfault", "os._exit"])
@pytest.mark.parametrize("lane", POOL_LANES)
def test_a_crashing_first_call_breaks_a_pool_not_this_process(lane: str, crash: Any) -> None:
    with executor(lane) as ex:
        args = (1,) if crash is segfault else ()
        with pytest.raises(BrokenProcessPool):
            ex.submit(crash, *args).result(timeout=30)
        assert ex.submit(double, 21).result(timeout=30) == 42  # and the executor goes on


# --- 7. keywords named like submit's own parameters --------------------------------------------


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", list(LANES))
def test_submit_passes_keywords_named_fn_and_self(lane: str) -> None:
    with executor(lane) as ex:
        futures: list[Future[Any]] = [ex.submit(keywords, self=1, fn=2) for _ in range(3)]
        assert [f.result(timeout=30) for f in futures] == [{"self": 1, "fn": 2}] * 3


# --- services: a burst of costly calls ---------------------------------------------------------


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_a_burst_of_costly_calls_before_the_first_result_all_complete() -> None:
    # The calls wait for the first one's time, then go to the pool: deciding that on the
    # pool's own callback thread once waited there for the pool (a deadlock, every time).
    with AutoExecutor() as ex:
        futures = [ex.submit(square_after_spin, x, 0.02) for x in range(12)]
        _, not_done = wait(futures, timeout=30)
        assert not not_done, "calls never completed"
        assert [f.result() for f in futures] == [x * x for x in range(12)]
        assert ex.last_decision is not None
        assert ex.last_decision.lane == "process"
