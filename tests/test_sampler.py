"""The sampler on a fake clock: when it stops, what it measures, and that it keeps results."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from amorsize_exec import Settings
from amorsize_exec._sampler import Sampler
from amorsize_exec.testing import FakeClock

SETTINGS = Settings()  # min 3 items, min 5 ms of work, budget 50 ms


def timed(clock: FakeClock, seconds_of: dict[int, float] | float):  # type: ignore[no-untyped-def]
    """A function that 'takes' a given time on the fake clock and returns x * 10."""

    def fn(x: int) -> int:
        clock.advance(seconds_of if isinstance(seconds_of, float) else seconds_of[x])
        return x * 10

    return fn


def args(n: int) -> list[Iterator[int]]:
    """One input of ``n`` ints, as ``map(fn, range(n))`` passes it."""
    return [iter(range(n))]


def make_sampler(clock: FakeClock, settings: Settings = SETTINGS) -> Sampler:
    return Sampler(settings, clock=clock, cpu_clock=clock)


def recording_sampler(clock: FakeClock, pickled: list[object]) -> Sampler:
    """A sampler whose serializer notes what it was asked to pickle."""

    def record(value: object) -> bytes:
        pickled.append(value)
        return b"x"

    return Sampler(SETTINGS, clock=clock, cpu_clock=clock, serializer=record)


def test_stops_after_min_items_and_min_seconds() -> None:
    clock = FakeClock()
    sample = make_sampler(clock).run(timed(clock, 0.002), args(100))
    # 3 items = 6 ms >= 5 ms: done
    assert sample.results == [0, 10, 20]
    assert sample.stats is not None
    assert sample.stats.items == 3
    assert sample.stats.compute_s == pytest.approx(0.002)
    assert sample.stats.cpu_s == pytest.approx(0.002)


def test_needs_min_seconds_when_items_are_quick() -> None:
    clock = FakeClock()
    sample = make_sampler(clock).run(timed(clock, 0.0005), args(100))
    assert len(sample.results) == 10  # 10 x 0.5 ms = 5 ms


def test_one_slow_item_ends_the_sample_at_the_budget() -> None:
    clock = FakeClock()
    sample = make_sampler(clock).run(timed(clock, 0.2), args(8))
    assert sample.results == [0]
    assert sample.stats is not None
    assert sample.stats.compute_s == pytest.approx(0.2)


def test_first_item_is_left_out_of_the_mean_once_there_are_three() -> None:
    clock = FakeClock()
    costs = {0: 0.030, 1: 0.002, 2: 0.002, 3: 0.002}
    sample = make_sampler(clock).run(timed(clock, costs), args(4))
    assert sample.stats is not None
    assert sample.stats.compute_s == pytest.approx(0.002)
    assert sample.stats.max_s == pytest.approx(0.030)


def test_spread_is_measured() -> None:
    clock = FakeClock()
    costs = {0: 0.001, 1: 0.001, 2: 0.003, 3: 0.001, 4: 0.003}
    sample = make_sampler(clock).run(timed(clock, costs), args(5))
    assert sample.stats is not None
    assert sample.stats.cv == pytest.approx(0.5)


def test_respects_the_limit_and_notices_the_end() -> None:
    clock = FakeClock()
    sample = make_sampler(clock).run(timed(clock, 1e-6), args(5), limit=2)
    assert sample.results == [0, 10]
    assert not sample.exhausted
    sample = make_sampler(clock).run(timed(clock, 1e-6), args(2))
    assert sample.results == [0, 10]
    assert sample.exhausted


def test_tiny_items_are_timed_in_batches_and_all_results_kept() -> None:
    clock = FakeClock()
    sample = make_sampler(clock).run(timed(clock, 1e-6), args(100_000))
    n = len(sample.results)
    assert n > 1000  # batches doubled until 5 ms of work
    assert sample.results == [i * 10 for i in range(n)]
    assert sample.stats is not None
    assert sample.stats.compute_s == pytest.approx(1e-6)


def test_an_exception_stops_the_sample_and_is_kept_in_position() -> None:
    clock = FakeClock()

    def fn(x: int) -> int:
        clock.advance(0.001)
        if x == 2:
            raise ValueError("two")
        return x

    sample = make_sampler(clock).run(fn, args(10))
    assert sample.results == [0, 1]
    assert isinstance(sample.error, ValueError)
    replay = sample.replay()
    assert next(replay) == 0
    assert next(replay) == 1
    with pytest.raises(ValueError, match="two"):
        next(replay)


def test_an_exception_inside_a_batch_keeps_the_results_before_it() -> None:
    clock = FakeClock()

    def fn(x: int) -> int:
        clock.advance(1e-6)
        if x == 50:
            raise KeyError(x)
        return x

    sample = make_sampler(clock).run(fn, args(1000))
    assert sample.results == list(range(50))
    assert isinstance(sample.error, KeyError)


def test_pickled_sizes_are_measured_per_item() -> None:
    clock = FakeClock()

    def ten_bytes_each(value: object) -> bytes:  # a batch of n items pickles to 10 n bytes
        return b"x" * 10 * (len(value) if isinstance(value, list) else 1)

    sampler = Sampler(SETTINGS, clock=clock, cpu_clock=clock, serializer=ten_bytes_each)
    sample = sampler.run(timed(clock, 0.002), args(3))
    assert sample.stats is not None
    stats = sampler.measure_pickling(sample, sample.stats)
    assert stats.pickling_measured
    assert stats.arg_bytes == pytest.approx(10)
    assert stats.result_bytes == pytest.approx(10)
    assert stats.picklable


def test_unpicklable_argument_is_named() -> None:
    lock = threading.Lock()
    sampler = Sampler(SETTINGS)
    sample = sampler.run(lambda x: 1, [iter([lock])])
    assert sample.stats is not None
    stats = sampler.measure_pickling(sample, sample.stats)
    assert not stats.picklable
    assert "an argument cannot be pickled" in (stats.unpicklable_reason or "")
    assert "lock" in (stats.unpicklable_reason or "")


def test_unpicklable_result_is_named() -> None:
    sampler = Sampler(SETTINGS)
    sample = sampler.run(lambda x: threading.Lock(), [iter([1])])
    assert sample.stats is not None
    stats = sampler.measure_pickling(sample, sample.stats)
    assert "a result cannot be pickled" in (stats.unpicklable_reason or "")


def test_unpicklable_function_is_named() -> None:
    lock = threading.Lock()

    def holds_a_lock(x: int) -> int:
        with lock:
            return x

    sampler = Sampler(SETTINGS)
    sample = sampler.run(holds_a_lock, args(3))
    assert sample.stats is not None
    stats = sampler.measure_pickling(sample, sample.stats)
    assert "the function" in (stats.unpicklable_reason or "")
    assert "holds_a_lock" in (stats.unpicklable_reason or "")


def test_run_never_pickles_so_cheap_functions_pay_nothing_for_it() -> None:
    clock = FakeClock()
    pickled: list[object] = []
    sampler = recording_sampler(clock, pickled)
    sample = sampler.run(timed(clock, 0.002), args(3))
    assert pickled == []
    assert sample.stats is not None
    assert not sample.stats.pickling_measured
    assert sample.stats.elapsed_s == pytest.approx(sample.stats.work_s)
    sampler.measure_pickling(sample, sample.stats)
    assert len(pickled) == 3  # the function, one batch of arguments, one of results


def test_a_large_value_is_pickled_alone_not_with_its_batch() -> None:
    clock = FakeClock()
    pickled: list[object] = []
    sampler = recording_sampler(clock, pickled)
    blobs = [bytes(1 << 20) for _ in range(4)]

    def first_byte(blob: bytes) -> int:
        clock.advance(0.002)
        return blob[0]

    sample = sampler.run(first_byte, [iter(blobs)])
    assert sample.stats is not None
    sampler.measure_pickling(sample, sample.stats)
    assert pickled[1:] == [[(blobs[0],)], [0, 0, 0]], "one 1 MB argument; the small results"


def test_several_inputs_stop_at_the_shortest_and_batches_lose_nothing() -> None:
    clock = FakeClock()

    def add(x: int, y: int) -> int:
        clock.advance(1e-6)
        return x + y

    sample = make_sampler(clock).run(add, [iter(range(5000)), iter(range(0, 10_000, 2))])
    assert sample.exhausted
    assert sample.results == [x + 2 * x for x in range(5000)]


def test_batches_read_exactly_what_they_run() -> None:
    clock = FakeClock()
    source = iter(range(100_000))
    sample = make_sampler(clock).run(timed(clock, 1e-6), [source])
    # the next item of the input is the first one not sampled
    assert next(source) == len(sample.results)


def test_pickling_is_measured_on_batched_items_too() -> None:
    clock = FakeClock()
    pickled: list[object] = []
    sampler = recording_sampler(clock, pickled)
    sample = sampler.run(timed(clock, 1e-6), args(1000))
    assert sample.stats is not None
    sampler.measure_pickling(sample, sample.stats)
    batches = [v for v in pickled if isinstance(v, list)]
    assert batches[0] == [(i,) for i in range(SETTINGS.sample_serialized_items)]
    assert batches[1] == [i * 10 for i in range(SETTINGS.sample_serialized_items)]


def test_replay_raises_at_the_position_of_the_error() -> None:
    clock = FakeClock()

    def fn(x: int) -> int:
        clock.advance(1e-6)
        if x == 700:
            raise ValueError(x)
        return x

    replay = make_sampler(clock).run(fn, args(1000)).replay()
    assert [next(replay) for _ in range(700)] == list(range(700))
    with pytest.raises(ValueError, match="700"):
        next(replay)


def test_batches_are_timed_without_garbage_collection_and_it_comes_back() -> None:
    clock = FakeClock()
    seen: list[bool] = []

    def fn(x: int) -> int:
        clock.advance(1e-6)
        seen.append(gc.isenabled())
        return x

    assert gc.isenabled()
    make_sampler(clock).run(fn, args(1000))
    assert gc.isenabled()
    assert seen[:3] == [True, True, True]  # single items: not batched
    assert not any(seen[3:])  # batched: no collector pause inside the timing


def test_overhead_counts_the_first_item_even_when_the_mean_leaves_it_out() -> None:
    """The first item, fast here, is left out of the mean: ``items * compute_s`` then exceeds
    what the items took, and ``elapsed - work`` read 0 where the sampler did cost something."""
    clock = FakeClock()

    def slow_cpu_clock() -> float:  # each CPU-clock read costs 0.1 ms of wall time
        clock.advance(1e-4)
        return clock()

    costs = {0: 0.001, 1: 0.003, 2: 0.003}
    sampler = Sampler(SETTINGS, clock=clock, cpu_clock=slow_cpu_clock)
    stats = sampler.run(timed(clock, costs), args(3)).stats
    assert stats is not None
    assert stats.compute_s == pytest.approx(0.003)
    assert stats.work_s == pytest.approx(0.009)  # more than the 7 ms the items took
    # Items timed on the wall clock alone: the CPU clock is read outside that window.
    assert stats.measured_s == pytest.approx(0.007)
    assert stats.overhead_s == pytest.approx(6 * 1e-4)  # two CPU-clock reads per item
    assert stats.overhead_s == pytest.approx(stats.elapsed_s - stats.measured_s)


def test_measured_time_covers_batched_items() -> None:
    clock = FakeClock()
    stats = make_sampler(clock).run(timed(clock, 1e-6), args(1000)).stats
    assert stats is not None
    assert stats.measured_s == pytest.approx(stats.items * 1e-6)
    assert stats.overhead_s == pytest.approx(0.0, abs=1e-12)


def test_tiny_items_start_with_a_batch_the_clock_can_time() -> None:
    """The first batch holds ``batch_timing_below_s`` of work, not 2 items: every batch costs
    clock reads and bookkeeping beyond its items."""
    clock = FakeClock()
    reads: list[float] = []

    def cpu_clock() -> float:
        reads.append(clock())
        return clock()

    sample = Sampler(SETTINGS, clock=clock, cpu_clock=cpu_clock).run(timed(clock, 1e-6), args(200))
    assert sample.results == [i * 10 for i in range(200)]
    assert sample.exhausted
    # 3 single items, then batches of about 20, 40, 80 and the last 57 items (was 2, 4, ... 128)
    assert len(reads) // 2 == 3 + 4


def test_the_first_batch_stays_small_when_the_single_items_took_no_time() -> None:
    clock = FakeClock()
    reads: list[float] = []

    def cpu_clock() -> float:
        reads.append(clock())
        return clock()

    sampler = Sampler(SETTINGS, clock=clock, cpu_clock=cpu_clock)
    sample = sampler.run(lambda x: x, args(3 + 24 + 1))
    assert sample.exhausted
    # a clock that does not move gives no item time: the first batch is capped at 8 x 3 items
    assert len(reads) // 2 == 3 + 2
