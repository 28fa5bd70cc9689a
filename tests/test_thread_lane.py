"""The thread lane: chosen for items that wait, never for CPU work; sized from the wait fraction.

Decisions are checked on the pure model and on a fake clock; the executor tests run real
threads (the behaviour suites in test_map_lanes.py and test_contract.py run ``lane="thread"``).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _workloads import double, join_lane_threads, sleep_then_return, spin, square_after_spin
from amorsize_exec import AutoExecutor, Settings, decide
from amorsize_exec._cost_threads import expect_threads_s, plan_threads, predict_threads_s
from amorsize_exec._head_start import ThreadRecheck
from amorsize_exec._sampler import Sampler
from amorsize_exec._stats import SampleStats
from amorsize_exec.testing import FakeClock, FakeProbe, make_profile

SETTINGS = Settings()
TWO_CORES = make_profile(usable_cpus=2)


def stats(compute_s: float, cpu_s: float, **overrides: object) -> SampleStats:
    fields: dict[str, object] = {
        "items": 3,
        "compute_s": compute_s,
        "cpu_s": cpu_s,
        "cv": 0.05,
        "max_s": compute_s * 1.1,
        "arg_bytes": 20.0,
        "result_bytes": 20.0,
        "serialize_s": 2e-6,
        "pickling_measured": True,
    }
    fields.update(overrides)
    return SampleStats(**fields)  # type: ignore[arg-type]


# --- the model ------------------------------------------------------------------------------


def test_sleeping_items_take_the_thread_cap() -> None:
    # The case: 200 x 10 ms of sleep. A pool would reach 2x at best on 2 cores.
    d = decide(stats(0.010, 2e-5), TWO_CORES, SETTINGS, 197, thread_cap=32)
    assert (d.lane, d.workers, d.chunksize) == ("thread", 32, 1), d.reason
    assert d.predicted_speedup > 10
    assert "wait" in d.reason


def test_the_predicted_speedup_counts_rounds_of_waits() -> None:
    # 197 sleeps of 10 ms on 32 threads: 7 rounds (70 ms); the starts and the chunks' hand-overs
    # (~20 ms of the GIL's time) overlap them. Not the sum the thread count is chosen on (it
    # adds the CPU and the overheads to the waits: ~86 ms).
    sleeps = stats(0.010, 2e-5)
    d = decide(sleeps, TWO_CORES, SETTINGS, 197, thread_cap=32)
    assert (d.workers, d.chunksize) == (32, 1)
    assert d.predicted_speedup == pytest.approx(197 * 0.010 / (7 * 0.010))
    assert d.predicted_speedup > 197 * 0.010 / predict_threads_s(sleeps, SETTINGS, 197, 32, 1)


@given(
    compute_s=st.floats(1e-5, 1.0),
    wait=st.floats(0.0, 1.0),
    n=st.integers(1, 10_000),
    threads=st.integers(1, 64),
    chunksize=st.integers(1, 100),
)
def test_the_expected_thread_time_never_beats_the_gil_or_the_cores(
    compute_s: float, wait: float, n: int, threads: int, chunksize: int
) -> None:
    s = stats(compute_s, compute_s * (1.0 - wait))
    t = expect_threads_s(s, SETTINGS, n, threads, chunksize)
    assert t >= n * s.busy_s + threads * SETTINGS.thread_start_s  # what holds the GIL: serial
    assert t >= n * compute_s / threads * (1 - 1e-12)  # no thread runs two items at once
    assert t >= min(n, chunksize) * compute_s * (1 - 1e-12)  # one chunk runs on one thread


def test_half_waiting_items_go_to_threads_at_under_2x() -> None:
    d = decide(stats(0.010, 0.005), TWO_CORES, SETTINGS, 200, thread_cap=32)
    assert d.lane == "thread", d.reason
    assert 1.2 <= d.predicted_speedup < 2.0  # the CPU half stays serial under the GIL


def test_without_the_thread_lane_waiting_items_go_to_the_pool() -> None:
    d = decide(stats(0.010, 2e-5), TWO_CORES, SETTINGS, 197)  # thread_cap=0: not a choice
    assert d.lane == "process"


def test_an_isolated_map_never_takes_threads() -> None:
    d = decide(stats(0.010, 2e-5), TWO_CORES, SETTINGS, 197, thread_cap=32, isolated=True)
    assert d.lane == "process"


def test_waiting_items_of_an_unpicklable_function_still_get_threads() -> None:
    unpicklable = stats(0.010, 2e-5, picklable=False, unpicklable_reason="a lock")
    d = decide(unpicklable, TWO_CORES, SETTINGS, 197, thread_cap=32)
    assert d.lane == "thread"
    assert "cannot use a pool: a lock" in d.reason


def test_a_short_wait_is_not_worth_the_threads() -> None:
    d = decide(stats(0.0002, 1e-6), TWO_CORES, SETTINGS, 5, thread_cap=32)
    assert d.lane == "serial", d.reason  # 1 ms in all: thread starts cost as much


@given(
    compute_s=st.floats(1e-6, 1.0),
    cpu_share=st.floats(0.9, 4.0),
    n=st.integers(1, 100_000),
    cap=st.integers(0, 64),
)
def test_cpu_bound_items_never_go_to_threads(
    compute_s: float, cpu_share: float, n: int, cap: int
) -> None:
    # CPU at 90% of wall or more (more: BLAS threads): the GIL would serialise it.
    d = decide(stats(compute_s, compute_s * cpu_share), TWO_CORES, SETTINGS, n, thread_cap=cap)
    assert d.lane != "thread", d.reason


@given(
    compute_s=st.floats(1e-5, 1.0),
    wait=st.floats(0.0, 1.0),
    n=st.integers(2, 10_000),
    threads=st.integers(2, 64),
)
def test_more_threads_never_predict_more_than_the_gil_allows(
    compute_s: float, wait: float, n: int, threads: int
) -> None:
    s = stats(compute_s, compute_s * (1.0 - wait))
    t = predict_threads_s(s, SETTINGS, n, threads, 1)
    assert t >= n * s.cpu_s  # the CPU part stays serial
    assert t >= n * compute_s / threads
    plan = plan_threads(s, SETTINGS, n, threads)
    assert plan is not None
    assert 2 <= plan[1] <= min(threads, n)


# --- the sampler ----------------------------------------------------------------------------


def sleeper(clock: FakeClock, cpu: FakeClock, cpu_of: dict[int, float]):  # type: ignore[no-untyped-def]
    """Items of 10 ms on the wall clock whose CPU time is ``cpu_of[x]``."""

    def fn(x: int) -> int:
        clock.advance(0.010)
        cpu.advance(cpu_of.get(x, 0.0))
        return x

    return fn


def test_two_waiting_items_end_the_sample() -> None:
    clock, cpu = FakeClock(), FakeClock()
    sampler = Sampler(SETTINGS, clock=clock, cpu_clock=cpu, ready_clock=FakeClock())
    sample = sampler.run(sleeper(clock, cpu, {}), [iter(range(100))])
    assert sample.results == [0, 1]


def test_one_waiting_item_ends_the_sample_when_an_earlier_map_saw_them_wait() -> None:
    clock, cpu = FakeClock(), FakeClock()
    sampler = Sampler(SETTINGS, clock=clock, cpu_clock=cpu, ready_clock=FakeClock())
    sample = sampler.run(sleeper(clock, cpu, {}), [iter(range(100))], waiting_items=1)
    assert sample.results == [0]
    # ... but an item that burns CPU gets the usual sample: the earlier map is out of date.
    sample = sampler.run(sleeper(clock, cpu, {0: 0.010}), [iter(range(100))], waiting_items=1)
    assert sample.results == [0, 1, 2]


def test_time_preempted_is_no_wait() -> None:
    # A busy machine: each item is 10 ms on the wall clock, of which 4 ms on a core and 6 ms
    # runnable but preempted. It does not wait: no thread would run it sooner.
    clock, cpu, ready = FakeClock(), FakeClock(), FakeClock()

    def preempted(x: int) -> int:
        clock.advance(0.010)
        cpu.advance(0.004)
        ready.advance(0.006)
        return x

    sampler = Sampler(SETTINGS, clock=clock, cpu_clock=cpu, ready_clock=ready)
    sample = sampler.run(preempted, [iter(range(100))])
    assert sample.results == [0, 1, 2]  # not 2: they did not wait
    assert sample.stats is not None
    assert sample.stats.ready_s == pytest.approx(0.006)
    assert sample.stats.busy_s == pytest.approx(0.010)
    d = decide(sample.stats, TWO_CORES, SETTINGS, 97, thread_cap=32)
    assert d.lane != "thread", d.reason


def test_a_waiting_first_call_alone_does_not_pass_for_a_waiting_function() -> None:
    # The first call waits (a connection, a file), the next burns CPU: the usual 3 items.
    clock, cpu = FakeClock(), FakeClock()
    sampler = Sampler(SETTINGS, clock=clock, cpu_clock=cpu, ready_clock=FakeClock())
    sample = sampler.run(sleeper(clock, cpu, {1: 0.010, 2: 0.010}), [iter(range(100))])
    assert sample.results == [0, 1, 2]


# --- the executor ---------------------------------------------------------------------------


def thread_of(x: int) -> tuple[int, int, str]:
    sleep_then_return(x, 0.01)
    return x, os.getpid(), threading.current_thread().name


@pytest.mark.timeout(60)
def test_a_map_of_sleeps_runs_on_threads_of_this_process() -> None:
    with AutoExecutor(probe=FakeProbe(TWO_CORES)) as ex:
        out = list(ex.map(thread_of, range(60)))
        decision = ex.last_decision
    assert [x for x, _, _ in out] == list(range(60))
    assert {pid for _, pid, _ in out} == {os.getpid()}
    assert decision is not None
    assert decision.lane == "thread", decision.summary()
    assert decision.lane_text == f"{decision.decision.workers} threads x 1"
    assert sum(name.startswith("amorsize_exec-thread") for _, _, name in out) == 58  # 2 sampled


@pytest.mark.timeout(60)
def test_the_next_map_of_a_waiting_function_goes_to_threads_unsampled() -> None:
    # Its items waited in the first map: a sampled 10 ms wait would only hold back the threads
    # (200 x 10 ms of sleep: 84 ms against 74 ms for ThreadPoolExecutor(32)).
    with AutoExecutor(probe=FakeProbe(TWO_CORES)) as ex:
        assert [x for x, _, _ in ex.map(thread_of, range(40))] == list(range(40))
        first = ex.last_decision
        out = list(ex.map(thread_of, range(40)))
        second = ex.last_decision
    assert [x for x, _, _ in out] == list(range(40))
    assert first is not None
    assert second is not None
    assert (first.lane, second.lane) == ("thread", "thread"), second.summary()
    assert "no sample here" in second.decision.reason, second.summary()
    assert all(name.startswith("amorsize_exec-thread") for _, _, name in out)


@pytest.mark.timeout(60)
def test_with_a_timeout_the_next_map_samples_one_waiting_item() -> None:
    # A timeout: its items are published as they come from a sample (not unsampled threads);
    # one waiting item agrees with the first map (whose two did) and ends the sample.
    with AutoExecutor(probe=FakeProbe(TWO_CORES)) as ex:
        assert [x for x, _, _ in ex.map(thread_of, range(40))] == list(range(40))
        join_lane_threads()  # else a map right after another may sample 2 (their exit's CPU)
        out = list(ex.map(thread_of, range(40), timeout=30))
        second = ex.last_decision
    assert [x for x, _, _ in out] == list(range(40))
    assert second is not None
    assert second.stats is not None
    assert second.stats.items == 1, second.summary()
    assert sum(name.startswith("amorsize_exec-thread") for _, _, name in out) == 39


_MODE = {"wait": True}


def waits_then_works(x: int) -> int:
    """Sleeps 10 ms while ``_MODE["wait"]``, else burns 5 ms of CPU."""
    if _MODE["wait"]:
        sleep_then_return(x, 0.01)
    else:
        spin(0.005)
    return x


@pytest.mark.timeout(60)
def test_items_that_no_longer_wait_are_caught_by_the_first_chunks() -> None:
    # Remembered as waiting, CPU work now: the unsampled thread run re-checks on its first
    # chunks, runs the rest one chunk at a time, and the next map samples afresh.
    with AutoExecutor(probe=FakeProbe(TWO_CORES)) as ex:
        try:
            assert list(ex.map(waits_then_works, range(40))) == list(range(40))
            _MODE["wait"] = False
            assert list(ex.map(waits_then_works, range(60))) == list(range(60))
            caught = ex.last_decision
            assert list(ex.map(waits_then_works, range(60))) == list(range(60))
            third = ex.last_decision
        finally:
            _MODE["wait"] = True
    assert caught is not None
    assert (caught.lane, caught.decision.workers) == ("thread", 1), caught.summary()
    assert "no longer wait" in caught.decision.reason
    assert third is not None
    assert third.lane != "thread", third.summary()
    assert third.stats is not None
    assert third.stats.items >= 3, third.summary()


@pytest.mark.parametrize(
    ("cpu_per_chunk_s", "plans"),
    [
        # A first chunk whose CPU clock held the VM's time (9.2 ms read for a 10 ms sleep, on
        # the development VM), then two that wait: the items still wait, threads kept.
        ([0.0092, 0.0001, 0.0002], [None, None, (1, 8)]),
        # ... and one whose item was busy but spent most of its time waiting for the GIL.
        ([0.0052, 0.0011, 0.0050], [None, None, (1, 1)]),
        # Three one-item chunks of CPU work: they no longer wait, the rest one chunk at a time.
        ([0.0092, 0.0095, 0.0090], [None, None, (1, 1)]),
        ([0.0001, 0.0001, 0.0001], [None, None, (1, 8)]),
    ],
)
def test_the_recheck_reads_the_median_chunk_of_the_first_three_items(
    cpu_per_chunk_s: list[float], plans: list[tuple[int, int] | None]
) -> None:
    with AutoExecutor(probe=FakeProbe(TWO_CORES)) as ex:
        recheck = ThreadRecheck(ex._runtime, double, stats(0.0103, 0.0001), (1, 8))
        got = [recheck([(x,)], [2 * x], None, 0.0103, cpu) for x, cpu in enumerate(cpu_per_chunk_s)]
    assert got == plans


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("fn", "n", "lane"), [(double, 10_000, "serial"), (square_after_spin, 60, "process")]
)
def test_a_map_of_cpu_work_never_runs_on_threads(fn: Any, n: int, lane: str) -> None:
    with AutoExecutor(probe=FakeProbe(make_profile(pool_start_s=0.01))) as ex:
        assert list(ex.map(fn, range(n))) == [fn(x) for x in range(n)]
        decision = ex.last_decision
    assert decision is not None
    assert decision.lane == lane, decision.summary()


def cheap_then_dear(x: int) -> int:
    """CPU work: 0.2 ms for the first 20 items, 3 ms after."""
    spin(0.0002 if x < 20 else 0.003)
    return x


@pytest.mark.timeout(60)
def test_a_serial_run_of_cpu_items_dearer_than_sampled_never_moves_to_threads() -> None:
    # No length: the run starts here and re-checks as its work doubles. The re-check once set
    # the run's wall time (3 ms items) against the sample's CPU time (0.2 ms items): the items
    # seemed to wait 90% and went to threads. A pool costs too much here (its start: 100 s).
    with AutoExecutor(probe=FakeProbe(make_profile(usable_cpus=2, pool_start_s=100.0))) as ex:
        assert list(ex.map(cheap_then_dear, iter(range(150)))) == list(range(150))
        decision = ex.last_decision
    assert decision is not None
    assert decision.lane == "serial", decision.summary()
