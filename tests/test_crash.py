"""A worker that dies: ``BrokenProcessPool`` within seconds (never a hang), then a fresh pool."""

from __future__ import annotations

import os
from concurrent.futures import wait
from concurrent.futures.process import BrokenProcessPool

import pytest

from _workloads import (
    double,
    exit_in_a_worker_on,
    exit_now,
    exit_on,
    pid_after_spin,
    worker_pid,
)
from amorsize_exec import AutoExecutor
from amorsize_exec.testing import FakeProbe

#: Seconds within which a dead worker must be reported (the design says "within seconds").
DETECT_S = 10.0

pytestmark = [pytest.mark.processes, pytest.mark.timeout(60)]


def test_map_reports_a_dead_worker(fake_probe: FakeProbe) -> None:
    with AutoExecutor(lane="process", probe=fake_probe) as ex:
        results = ex.map(exit_on, range(20), timeout=DETECT_S)
        with pytest.raises(BrokenProcessPool):
            list(results)


def test_map_after_a_crash_runs_on_a_fresh_pool(fake_probe: FakeProbe) -> None:
    with AutoExecutor(lane="process", probe=fake_probe) as ex:
        before = set(ex.map(worker_pid, range(4)))
        with pytest.raises(BrokenProcessPool):
            list(ex.map(exit_on, range(20), timeout=DETECT_S))
        after = list(ex.map(pid_after_spin, range(30), [0.001] * 30))
    assert [x for x, _ in after] == list(range(30))
    assert not ({pid for _, pid in after} & before), "the broken pool's workers are gone"
    assert os.getpid() not in {pid for _, pid in after}


def test_a_new_executor_after_a_crash_works(fake_probe: FakeProbe) -> None:
    with AutoExecutor(lane="process", probe=fake_probe) as ex, pytest.raises(BrokenProcessPool):
        list(ex.map(exit_on, range(20), timeout=DETECT_S))
    with AutoExecutor(lane="process", probe=fake_probe) as ex:
        assert list(ex.map(double, range(50))) == [x * 2 for x in range(50)]


def test_submit_reports_a_dead_worker(fake_probe: FakeProbe) -> None:
    with AutoExecutor(lane="process", probe=fake_probe) as ex:
        future = ex.submit(exit_now)
        finished, _ = wait([future], timeout=DETECT_S)
        assert future in finished, "a dead worker must end its task's Future, not leave it pending"
        assert isinstance(future.exception(), BrokenProcessPool)
        # The next submit leases a fresh pool.
        assert ex.submit(double, 21).result(timeout=30) == 42


def test_other_pending_submits_fail_too(fake_probe: FakeProbe) -> None:
    with AutoExecutor(lane="process", probe=fake_probe) as ex:
        futures = [ex.submit(pid_after_spin, x, 0.05) for x in range(4)]
        futures.append(ex.submit(exit_now))
        _, not_done = wait(futures, timeout=DETECT_S)
        assert not not_done
        outcomes = [f.exception() for f in futures]
        assert isinstance(outcomes[-1], BrokenProcessPool)
        assert all(e is None or isinstance(e, BrokenProcessPool) for e in outcomes)


def test_auto_lane_pool_crash_is_reported(cheap_pool_probe: FakeProbe) -> None:
    # The sample runs items 0..2 in-process; the crash happens in a worker, later. The pool is
    # warmed first: a cold one starts in the background while items go on running in-process,
    # and all 40 could be done before it answers.
    with AutoExecutor(lane="process", probe=cheap_pool_probe) as warm_up:
        assert list(warm_up.map(double, range(4))) == [0, 2, 4, 6]
    with AutoExecutor(probe=cheap_pool_probe) as ex:
        results = ex.map(exit_in_a_worker_on, range(40), [os.getpid()] * 40, timeout=DETECT_S)
        got: list[int] = []
        with pytest.raises(BrokenProcessPool):
            got.extend(results)
        decision = ex.last_decision
    assert decision is not None
    assert decision.lane == "process"
    assert got == list(range(len(got)))
