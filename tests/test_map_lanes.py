"""The drop-in suite run against each lane, and what the auto lane decides."""

from __future__ import annotations

import itertools
import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, ClassVar

import pytest

from _suite_map import EndlessInputSuite, MapSuite
from _workloads import double, square_after_spin
from amorsize_exec import AutoExecutor
from amorsize_exec.testing import FakeProbe, make_profile

PROCESS_TEST = [pytest.mark.processes, pytest.mark.timeout(60)]


def _probe() -> FakeProbe:
    return FakeProbe(make_profile())


class TestStdlibReference(MapSuite):
    """The reference: what ``ProcessPoolExecutor`` does is what the drop-in must do."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = PROCESS_TEST
    supports_closures = False
    keeps_results_before_a_failure_in_a_chunk = False

    def make_executor(self, **kw: Any) -> Executor:
        # spawn: forking a multi-threaded test process is deprecated (3.12+) and unsafe.
        return ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), **kw)


class TestSerialLane(MapSuite, EndlessInputSuite):
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.timeout(60)]
    ends_after_a_failure = False

    def make_executor(self, **kw: Any) -> Executor:
        return AutoExecutor(lane="serial", probe=_probe(), **kw)


class TestProcessLane(MapSuite, EndlessInputSuite):
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = PROCESS_TEST

    def make_executor(self, **kw: Any) -> Executor:
        return AutoExecutor(lane="process", probe=_probe(), **kw)


class TestThreadLane(MapSuite, EndlessInputSuite):
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = PROCESS_TEST  # submit uses the pool

    def make_executor(self, **kw: Any) -> Executor:
        return AutoExecutor(lane="thread", probe=_probe(), **kw)


class TestAutoLane(MapSuite, EndlessInputSuite):
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = PROCESS_TEST

    def make_executor(self, **kw: Any) -> Executor:
        return AutoExecutor(probe=_probe(), **kw)


# --- what the auto lane decides ------------------------------------------------------------


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_auto_lane_takes_the_pool_for_a_heavy_workload(cheap_pool_probe: FakeProbe) -> None:
    # Warm first: a cold pool starts in the background and 600 ms of items could all be done
    # here before it answers (test_exactly_once covers that path).
    with AutoExecutor(lane="process", probe=cheap_pool_probe) as warm_up:
        list(warm_up.map(square_after_spin, range(2), [0.0] * 2))
    with AutoExecutor(probe=cheap_pool_probe) as ex:
        results = list(ex.map(square_after_spin, range(60), [0.01] * 60))
        decision = ex.last_decision
    assert results == [x * x for x in range(60)]
    assert decision is not None
    assert decision.lane == "process", decision.summary()
    assert decision.decision.workers == 2


@pytest.mark.timeout(60)
def test_auto_lane_keeps_a_trivial_workload_serial(fake_probe: FakeProbe) -> None:
    with AutoExecutor(probe=fake_probe) as ex:
        results = list(ex.map(double, range(10_000)))
        decision = ex.last_decision
    assert results == [x * 2 for x in range(10_000)]
    assert decision is not None
    assert decision.lane == "serial", decision.summary()
    assert fake_probe.calibrations == 0  # serial on priors: nothing was measured


@pytest.mark.timeout(60)
def test_auto_lane_trivial_endless_input_stays_serial(fake_probe: FakeProbe) -> None:
    with AutoExecutor(probe=fake_probe) as ex:
        results = list(itertools.islice(ex.map(double, itertools.count()), 50))
        decision = ex.last_decision
    assert results == [x * 2 for x in range(50)]
    assert decision is not None
    assert decision.lane == "serial"


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_auto_lane_endless_heavy_input_works(cheap_pool_probe: FakeProbe) -> None:
    with AutoExecutor(probe=cheap_pool_probe) as ex:
        stream = ex.map(square_after_spin, itertools.count(), itertools.repeat(0.005))
        results = list(itertools.islice(stream, 50))
        del stream
    assert results == [x * x for x in range(50)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sized", [True, False])
def test_a_serial_run_learns_its_items_pace_whatever_its_last_batch_held(sized: bool) -> None:
    # 1 ms items, serial beside a pool dear to start. Batches double; the last one ends with
    # the input. Counted as the size asked for, it made fn's next map assume 0.92 ms.
    probe = FakeProbe(make_profile(pool_start_s=5.0, start_method="loky"))
    items = range(300) if sized else (x for x in range(300))
    with AutoExecutor(probe=probe) as ex:
        results = list(ex.map(square_after_spin, items, itertools.repeat(0.001)))
        learned = ex._runtime.planner.last_stats(square_after_spin)
        decision = ex.last_decision
    assert results == [x * x for x in range(300)]
    assert decision is not None
    assert decision.lane == "serial", decision.summary()
    assert learned is not None
    assert 0.00098 < learned.compute_s < 0.0015, learned


@pytest.mark.timeout(60)
def test_serial_lane_runs_in_this_process(fake_probe: FakeProbe) -> None:
    with AutoExecutor(lane="serial", probe=fake_probe) as ex:
        assert list(ex.map(double, range(5))) == [0, 2, 4, 6, 8]
        decision = ex.last_decision
    assert decision is not None
    assert decision.lane == "serial"
    assert decision.forced


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_repeated_short_maps_warm_a_pool_once_it_would_have_paid() -> None:
    # Each call (40 x 5 ms) is too short to pay for a cold pool (0.2 s), but a warm one would
    # save about 90 ms of it: after a few calls the executor starts one, and later calls use it.
    probe = FakeProbe(make_profile(pool_start_s=0.2))
    records = []
    with AutoExecutor(probe=probe) as ex:
        for _ in range(12):
            assert list(ex.map(square_after_spin, range(40), [0.005] * 40)) == [
                x * x for x in range(40)
            ]
            record = ex.last_decision
            assert record is not None
            records.append(record)
            if record.lane == "process":
                break
    assert records[0].lane == "serial", records[0].summary()
    assert any("rent-or-buy" in r.decision.reason for r in records), [r.summary() for r in records]
    assert records[-1].lane == "process", records[-1].summary()
    assert "pool warm" in records[-1].decision.reason
