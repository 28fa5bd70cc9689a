"""Every item runs exactly once: sampled items are real work, kept and never re-run (design §2)."""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from _workloads import append_line, append_line_slow_in, double, read_lines, spin_then_fail_at
from amorsize_exec import AutoExecutor, DecisionRecord, Settings, WorkerPools
from amorsize_exec.testing import FakeProbe, make_profile


def spare_core_probe() -> FakeProbe:
    """4 CPUs and pools that start almost for free: with 2 workers, a core is left to us."""
    return FakeProbe(make_profile(usable_cpus=4, pool_start_s=0.01))


@pytest.fixture
def slow_start_pools() -> Iterator[WorkerPools]:
    """Shared pools whose workers take 1 s to start, while the probe tells the model a start is
    almost free: items go on running here for a while after the pool was asked for."""
    owned = WorkerPools(worker_setup=(time.sleep, (1.0,)))
    yield owned
    owned.shutdown(wait=True)


def assert_each_once(path: Path, n: int) -> list[tuple[int, int]]:
    lines = read_lines(path)
    counts = Counter(x for x, _ in lines)
    assert sorted(counts) == list(range(n)), "every item ran"
    assert set(counts.values()) == {1}, f"items run more than once: {counts.most_common(3)}"
    return lines


def map_slow_here(ex: AutoExecutor, path: Path, n: int) -> DecisionRecord:
    """``append_line_slow_in`` over ``range(n)`` (20 ms here, 1 ms in workers), logged to
    ``path``; checks the results and returns the decision."""
    me = os.getpid()
    results = list(ex.map(append_line_slow_in, [str(path)] * n, range(n), [me] * n))
    assert results == [x * 3 for x in range(n)]
    assert ex.last_decision is not None
    return ex.last_decision


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_sampled_in_process_then_pool(cheap_pool_probe: FakeProbe, tmp_path: Path) -> None:
    path = tmp_path / "log"
    n = 60
    with AutoExecutor(lane="process", probe=cheap_pool_probe) as warm_up:
        list(warm_up.map(double, range(4)))  # a warm pool takes the rest at once
    with AutoExecutor(probe=cheap_pool_probe) as ex:
        results = list(ex.map(append_line, [str(path)] * n, range(n), [0.01] * n))
        decision = ex.last_decision
    assert results == [x * 3 for x in range(n)]
    assert decision is not None
    assert decision.lane == "process", decision.summary()
    lines = assert_each_once(path, n)
    pids = {x: pid for x, pid in lines}
    sampled = [x for x in range(n) if pids[x] == os.getpid()]
    assert sampled, "the first items are sampled in-process"
    assert sampled == list(range(len(sampled))), "the sample is a prefix of the input"
    assert len(sampled) < n, "the rest ran in workers"


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_cold_pool_starts_while_items_go_on_here(
    tmp_path: Path, slow_start_pools: WorkerPools
) -> None:
    # A core is left to the parent (4 CPUs, 2 workers) and the start takes >= 1 s: items keep
    # running here until the pool answers, then the rest goes to it.
    path = tmp_path / "log"
    n = 300
    with AutoExecutor(2, probe=spare_core_probe(), pools=slow_start_pools) as ex:
        decision = map_slow_here(ex, path, n)
    assert decision.lane == "process", decision.summary()
    assert "pool started while" in decision.decision.reason, decision.summary()
    lines = assert_each_once(path, n)
    here = sorted(x for x, pid in lines if pid == os.getpid())
    assert here == list(range(len(here))), "a prefix ran here"
    sampled = Settings().sample_min_items
    assert sampled < len(here) < n, "more than the sample ran here, but not all"


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_input_that_ends_before_the_pool_starts_runs_here(
    tmp_path: Path, slow_start_pools: WorkerPools
) -> None:
    path = tmp_path / "log"
    n = 8  # 5 items (100 ms) here after the sample, against a start of >= 1 s
    with AutoExecutor(2, probe=spare_core_probe(), pools=slow_start_pools) as ex:
        decision = map_slow_here(ex, path, n)
    assert decision.lane == "serial", decision.summary()
    assert "input ended" in decision.decision.reason, decision.summary()
    assert {pid for _, pid in assert_each_once(path, n)} == {os.getpid()}


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_without_a_spare_core_the_map_waits_for_the_start(
    cheap_pool_probe: FakeProbe, tmp_path: Path, slow_start_pools: WorkerPools
) -> None:
    # 2 CPUs, 2 workers: booting workers would slow items run here more than they gain.
    path = tmp_path / "log"
    n = 60
    with AutoExecutor(probe=cheap_pool_probe, pools=slow_start_pools) as ex:
        decision = map_slow_here(ex, path, n)
    assert decision.lane == "process", decision.summary()
    here = [x for x, pid in assert_each_once(path, n) if pid == os.getpid()]
    # None ran here during the start: the start takes >= 1 s, in which ~50 items of 20 ms
    # would have run here. Normally just the sample did; in 1 of ~15 full-suite runs the
    # decision taken on the just-started pool said "serial" and a re-check 3 items later moved
    # the rest to the pool (an unexplained flip, noted on issue 9): that is after the start.
    # The sample is what ran here first: 3 items, or 2 when they hit the sample's time budget
    # (items of 24 ms on a loaded machine: seen in a nox run), as its stats say.
    sampled = decision.stats.items if decision.stats is not None else Settings().sample_min_items
    assert sampled <= len(here) <= 2 * Settings().sample_min_items, decision.summary()


@pytest.mark.timeout(60)
def test_sampled_then_the_rest_serially(fake_probe: FakeProbe, tmp_path: Path) -> None:
    path = tmp_path / "log"
    n = 500
    with AutoExecutor(probe=fake_probe) as ex:
        results = list(ex.map(append_line, itertools.repeat(str(path)), range(n)))
        decision = ex.last_decision
    assert results == [x * 3 for x in range(n)]
    assert decision is not None
    assert decision.lane == "serial", decision.summary()
    lines = assert_each_once(path, n)
    assert {pid for _, pid in lines} == {os.getpid()}
    assert [x for x, _ in lines] == list(range(n)), "in order, in this process"


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_serial_run_that_switches_to_the_pool_mid_way(
    cheap_pool_probe: FakeProbe, tmp_path: Path
) -> None:
    # No length: the decision starts serial on a short horizon, then rent-or-buy starts the
    # pool and moves the rest (items cost 20 ms here, so the run outlasts any pool start).
    path = tmp_path / "log"
    n = 120
    with AutoExecutor(probe=cheap_pool_probe) as ex:
        items = (x for x in range(n))
        parent = itertools.repeat(os.getpid())
        stream = ex.map(append_line_slow_in, itertools.repeat(str(path)), items, parent)
        results = list(stream)
        decision = ex.last_decision
    assert results == [x * 3 for x in range(n)]
    assert decision is not None
    assert decision.lane == "process", decision.summary()
    assert "switched mid-run" in decision.decision.reason, decision.summary()
    lines = assert_each_once(path, n)
    in_process = sorted(x for x, pid in lines if pid == os.getpid())
    assert in_process == list(range(len(in_process))), "a prefix ran here, serially"
    assert 3 < len(in_process) < n, "more than the sample ran here, then the pool took over"


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", ["process", "serial"])
def test_forced_lanes_run_each_item_once(lane: str, fake_probe: FakeProbe, tmp_path: Path) -> None:
    path = tmp_path / "log"
    n = 300
    with AutoExecutor(lane=lane, probe=fake_probe) as ex:  # type: ignore[arg-type]
        results = list(ex.map(append_line, itertools.repeat(str(path)), range(n), chunksize=7))
    assert results == [x * 3 for x in range(n)]
    assert_each_once(path, n)


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_endless_input_runs_only_what_is_consumed_and_each_once(
    fake_probe: FakeProbe, tmp_path: Path
) -> None:
    path = tmp_path / "log"
    with AutoExecutor(lane="process", probe=fake_probe) as ex:
        stream = ex.map(append_line, itertools.repeat(str(path)), itertools.count())
        got = list(itertools.islice(stream, 50))
        del stream
    assert got == [x * 3 for x in range(50)]
    counts = Counter(x for x, _ in read_lines(path))
    assert set(counts.values()) == {1}
    assert set(range(50)) <= set(counts)
    decision = ex.last_decision
    assert decision is not None
    window = decision.decision.workers * Settings().chunks_in_flight_per_worker
    ahead = window * decision.decision.chunksize
    assert len(counts) <= 50 + ahead, "bounded look-ahead: only a window beyond what was consumed"


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_a_costly_callable_sends_items_ahead_to_the_warm_pool(
    cheap_pool_probe: FakeProbe, tmp_path: Path
) -> None:
    # Its first map measures 20 ms items and warms the pool; the next one sends the second item
    # to a worker while the first is sampled here (2 cores: one is the sample's).
    me = os.getpid()
    n = 40
    with AutoExecutor(probe=cheap_pool_probe) as ex:
        list(ex.map(append_line, [str(tmp_path / "first")] * n, range(n), [0.02] * n))
        assert ex.last_decision is not None
        assert ex.last_decision.lane == "process", ex.last_decision.summary()
        path = tmp_path / "second"
        assert list(ex.map(append_line, [str(path)] * n, range(n), [0.02] * n)) == [
            x * 3 for x in range(n)
        ]
        decision = ex.last_decision
    assert decision is not None
    assert "1 item sent ahead" in decision.decision.reason, decision.summary()
    pids = dict(assert_each_once(path, n))
    assert pids[0] == me, "the first item is the sample"
    assert pids[1] != me, "the next one went to a worker meanwhile"


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_the_workers_correct_what_the_next_map_assumes(
    cheap_pool_probe: FakeProbe, tmp_path: Path
) -> None:
    # 20 ms here, 1 ms in the workers: the sample's 20 ms go to the pool, whose first chunk says
    # 1 ms. The next map believes the workers: nothing sent ahead, a sample of its own (3+).
    n = 40
    with AutoExecutor(probe=cheap_pool_probe) as ex:
        first = map_slow_here(ex, tmp_path / "first", n)
        assert first.lane == "process", first.summary()
        second = map_slow_here(ex, tmp_path / "second", n)
    assert "sent ahead" not in second.decision.reason, second.summary()
    assert second.stats is not None
    assert second.stats.items >= 3, second.summary()


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_items_sent_ahead_keep_their_place_when_the_rest_stays_here(
    cheap_pool_probe: FakeProbe, tmp_path: Path
) -> None:
    # Costly last time, cheap now: the items sent ahead come back in order, the rest runs here.
    me = os.getpid()
    with AutoExecutor(probe=cheap_pool_probe) as ex:
        n = 40
        list(ex.map(append_line, [str(tmp_path / "first")] * n, range(n), [0.02] * n))
        n = 6  # 4 left after the sample and the one sent ahead: cheap now, they stay here
        path = tmp_path / "second"
        results = list(ex.map(append_line, [str(path)] * n, range(n)))
        decision = ex.last_decision
    assert results == [x * 3 for x in range(n)]
    assert decision is not None
    assert decision.lane == "serial", decision.summary()
    assert "1 item sent ahead" in decision.decision.reason, decision.summary()
    lines = assert_each_once(path, n)
    assert {x for x, pid in lines if pid != me} == {1}


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_a_generator_beside_a_warm_pool_goes_to_it_at_once(
    cheap_pool_probe: FakeProbe, tmp_path: Path
) -> None:
    # Its first decision sees one sampled item (the next ones were sent ahead): on that horizon
    # alone it said "no parallelism possible: 1 item left" and the demo's run stayed serial.
    with AutoExecutor(probe=cheap_pool_probe) as ex:
        n = 40
        list(ex.map(append_line, [str(tmp_path / "first")] * n, range(n), [0.02] * n))
        path = tmp_path / "second"
        n = 200
        items = (x for x in range(n))
        results = list(ex.map(append_line, itertools.repeat(str(path)), items, [0.002] * n))
        decision = ex.last_decision
    assert results == [x * 3 for x in range(n)]
    assert decision is not None
    assert decision.lane == "process", decision.summary()
    assert "switched mid-run" not in decision.decision.reason, decision.summary()
    assert_each_once(path, n)


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_an_item_sent_ahead_raises_at_its_own_position(cheap_pool_probe: FakeProbe) -> None:
    with AutoExecutor(probe=cheap_pool_probe) as ex:
        n = 40
        list(ex.map(spin_then_fail_at, range(n), [0.02] * n, [-1] * n))  # costly: warms all
        results = ex.map(spin_then_fail_at, range(10), [0.0] * 10, [1] * 10)
        assert next(results) == 0
        with pytest.raises(ValueError, match="bad item 1"):
            next(results)
        decision = ex.last_decision
    assert decision is not None
    assert "sent ahead" in decision.decision.reason, decision.summary()
