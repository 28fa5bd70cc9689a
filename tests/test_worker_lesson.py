"""``LessonFromWorkers``: the pool's first chunks correct the chunk size and what later maps
of the function assume. Fed chunk timings directly (the observer is plain arithmetic over
them); the executor test in test_exactly_once.py runs a real pool."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _workloads import square_after_spin
from amorsize_exec import AutoExecutor
from amorsize_exec._decision import Decision
from amorsize_exec._lanes import MapOptions
from amorsize_exec._stats import SampleStats
from amorsize_exec._worker_lesson import LessonFromWorkers
from amorsize_exec.testing import FakeProbe, make_profile

OPTIONS = MapOptions(deadline=None, chunksize=None, buffersize=None)


def sampled(seconds: float) -> SampleStats:
    return SampleStats(
        items=1, compute_s=seconds, cpu_s=seconds, cv=0.0, max_s=seconds, pickling_measured=True
    )


def feed(lesson: LessonFromWorkers, per_item_s: list[float]) -> list[tuple[int, int] | None]:
    return [lesson([(0,)], [0], None, seconds, seconds) for seconds in per_item_s]


@pytest.fixture
def executor() -> Iterator[AutoExecutor]:
    with AutoExecutor(probe=FakeProbe(make_profile(usable_cpus=2))) as ex:
        yield ex


def test_a_slow_first_call_per_worker_is_dropped_and_chunks_grow(executor: AutoExecutor) -> None:
    # The sample was one 92 ms first call; each worker's first item paid for its set-up too.
    rt = executor._runtime
    decision = Decision("process", 2, 1, 1.9, 1.9, "199 items x 92 ms")
    lesson = LessonFromWorkers(
        rt, square_after_spin, sampled(0.092), decision, options=OPTIONS, remaining=199
    )
    plans = feed(lesson, [0.092, 0.090, 0.0009, 0.0011])
    assert plans[:3] == [None, None, None], "two chunks per worker are watched"
    assert plans[3] is not None
    assert plans[3][0] > 10, plans
    learned = rt.planner.last_stats(square_after_spin)
    assert learned is not None
    assert learned.compute_s == pytest.approx(0.001)


def test_a_plan_within_2x_is_kept(executor: AutoExecutor) -> None:
    rt = executor._runtime
    decision = Decision("process", 2, 5, 1.9, 1.9, "items of 10 ms")
    lesson = LessonFromWorkers(
        rt, square_after_spin, sampled(0.010), decision, options=OPTIONS, remaining=300
    )
    plans = feed(lesson, [0.012, 0.011, 0.009, 0.010])
    assert plans[3] == (5, OPTIONS.window(decision, rt.settings))


def test_the_callers_chunksize_is_never_changed(executor: AutoExecutor) -> None:
    rt = executor._runtime
    decision = Decision("process", 2, 1, 1.9, 1.9, "chunksize=1 was asked")
    options = MapOptions(deadline=None, chunksize=1, buffersize=None)
    lesson = LessonFromWorkers(
        rt, square_after_spin, sampled(0.092), decision, options=options, remaining=199
    )
    assert feed(lesson, [0.092, 0.090, 0.0009, 0.0011])[3] == (1, 4)


def test_items_done_alone_never_shrink_the_chunks(executor: AutoExecutor) -> None:
    # 369 items planned in chunks of 47 (1 ms each); 4 chunks later 181 are left, for which the
    # model would cut chunks of 23: the item time did not move, so neither does the plan.
    rt = executor._runtime
    decision = Decision("process", 2, 47, 1.8, 1.8, "369 items x 1 ms")
    lesson = LessonFromWorkers(
        rt, square_after_spin, sampled(0.001), decision, options=OPTIONS, remaining=369
    )
    plans = [lesson([(0,)] * 47, [0] * 47, None, 0.047 * f, 0.047 * f) for f in (1.3, 1.2, 1, 1)]
    assert plans[3] == (47, OPTIONS.window(decision, rt.settings))
