"""The ``map``/``submit`` drop-in contract (design §2), written once and run against every lane.

A subclass names the lane by implementing ``make_executor(**kw)``; ``test_map_lanes.py`` runs
this suite against stdlib ``ProcessPoolExecutor`` (the reference the promise is checked
against) and ``AutoExecutor`` forced serial, forced process and auto.
"""

from __future__ import annotations

import concurrent.futures
import itertools
from collections.abc import Iterator
from concurrent.futures import Executor
from typing import Any

import pytest

from _workloads import add, double, fail_at, sleep_then_return


def consume(iterator: Iterator[Any]) -> tuple[list[Any], BaseException | None, bool]:
    """Take results one ``next()`` at a time: ``(results, exception raised, ended after it)``.

    ``ended after it`` is true if, after the exception, the iterator is finished (as the
    stdlib's is): the consumer cannot walk past a failed item.
    """
    results: list[Any] = []
    while True:
        try:
            results.append(next(iterator))
        except StopIteration:
            return results, None, True
        except Exception as exc:
            try:
                next(iterator)
            except StopIteration:
                return results, exc, True
            except Exception:
                return results, exc, False
            return results, exc, False


class MapSuite:
    """Behaviour every lane must share with ``concurrent.futures.ProcessPoolExecutor``."""

    #: False for the stdlib, which pickles with ``pickle`` (no lambdas or closures).
    supports_closures = True
    #: False for the stdlib: with ``chunksize > 1`` a failure loses the results of the items
    #: before it in the same chunk. ``AutoExecutor`` keeps them (design §2).
    keeps_results_before_a_failure_in_a_chunk = True
    #: False where iterating on past a failed item yields the items after it instead of
    #: ending (AutoExecutor's in-process lane: its loop is chained in C for speed, a generator
    #: that could end it costs ~25% on trivial items; nothing is lost or run twice either way).
    ends_after_a_failure = True

    def make_executor(self, **kw: Any) -> Executor:
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    def _shutdown_executors(self) -> Iterator[None]:
        self._made: list[Executor] = []
        yield
        for ex in self._made:
            ex.shutdown(wait=True, cancel_futures=True)

    def executor(self, **kw: Any) -> Executor:
        ex = self.make_executor(**kw)
        self._made.append(ex)
        return ex

    # --- results ---------------------------------------------------------------------------

    def test_results_are_in_input_order(self) -> None:
        ex = self.executor()
        assert list(ex.map(double, range(40))) == [x * 2 for x in range(40)]

    def test_multiple_iterables_stop_at_the_shortest(self) -> None:
        ex = self.executor()
        assert list(ex.map(add, range(10), range(100, 107))) == [
            x + y for x, y in zip(range(10), range(100, 107), strict=False)
        ]
        assert list(ex.map(add, iter(range(5)), [10, 20, 30])) == [10, 21, 32]

    def test_empty_input(self) -> None:
        ex = self.executor()
        assert list(ex.map(double, [])) == []
        assert list(ex.map(add, range(3), [])) == []

    def test_generator_input(self) -> None:
        ex = self.executor()
        assert list(ex.map(double, (x for x in range(25)))) == [x * 2 for x in range(25)]

    def test_ten_thousand_items_equal_the_builtin_map(self) -> None:
        ex = self.executor()
        items = list(range(10_000))
        assert list(ex.map(double, items)) == list(map(double, items))

    def test_explicit_chunksize_gives_correct_results(self) -> None:
        ex = self.executor()
        for chunksize in (1, 7, 1000):
            assert list(ex.map(double, range(50), chunksize=chunksize)) == [
                x * 2 for x in range(50)
            ]

    def test_zero_chunksize_is_refused(self) -> None:
        ex = self.executor()
        with pytest.raises(ValueError, match="chunksize"):
            ex.map(double, range(5), chunksize=0)

    def test_lambdas_and_closures(self) -> None:
        if not self.supports_closures:
            pytest.skip("the stdlib pool pickles with pickle: no lambdas or closures")
        ex = self.executor()
        offset = 1000

        def shifted(x: int) -> int:
            return x + offset

        assert list(ex.map(lambda x: x - 1, range(20))) == [x - 1 for x in range(20)]
        assert list(ex.map(shifted, range(20))) == [x + 1000 for x in range(20)]

    # --- failures --------------------------------------------------------------------------

    def test_exception_surfaces_at_its_position(self) -> None:
        ex = self.executor()
        results, error, ended = consume(ex.map(fail_at, range(20)))
        assert results == [x * 2 for x in range(7)]
        assert isinstance(error, ValueError)
        assert str(error) == "bad item 7"
        assert ended == self.ends_after_a_failure

    def test_exception_in_a_later_chunk_surfaces_at_its_position(self) -> None:
        ex = self.executor()
        results, error, ended = consume(ex.map(fail_at, range(200), [150] * 200, chunksize=16))
        first_lost = 150 if self.keeps_results_before_a_failure_in_a_chunk else 144
        assert results == [x * 2 for x in range(first_lost)]
        assert isinstance(error, ValueError)
        assert ended == self.ends_after_a_failure

    @pytest.mark.timeout(30)
    def test_timeout_raises_timeout_error(self) -> None:
        ex = self.executor()
        results = ex.map(sleep_then_return, range(4), [0.5] * 4, timeout=0.2)
        with pytest.raises(concurrent.futures.TimeoutError):
            list(results)

    @pytest.mark.timeout(30)
    def test_negative_timeout_raises_timeout_error(self) -> None:
        ex = self.executor()
        with pytest.raises(concurrent.futures.TimeoutError):
            list(ex.map(sleep_then_return, range(3), [0.2] * 3, timeout=-1))

    def test_generous_timeout_is_not_hit(self) -> None:
        ex = self.executor()
        assert list(ex.map(double, range(30), timeout=30)) == [x * 2 for x in range(30)]

    # --- lifetime --------------------------------------------------------------------------

    def test_results_consumed_after_the_with_block(self) -> None:
        with self.make_executor() as ex:
            results = ex.map(double, range(300))
        assert list(results) == [x * 2 for x in range(300)]

    def test_map_after_shutdown_raises_runtime_error(self) -> None:
        ex = self.executor()
        ex.shutdown()
        with pytest.raises(RuntimeError):
            ex.map(double, range(3))

    def test_submit_after_shutdown_raises_runtime_error(self) -> None:
        ex = self.executor()
        ex.shutdown()
        with pytest.raises(RuntimeError):
            ex.submit(double, 1)

    def test_submit_gives_the_result(self) -> None:
        ex = self.executor()
        futures = [ex.submit(double, x) for x in range(10)]
        assert [f.result(timeout=30) for f in futures] == [x * 2 for x in range(10)]


class EndlessInputSuite:
    """Input read lazily with bounded look-ahead (not the stdlib's contract before 3.14)."""

    def make_executor(self, **kw: Any) -> Executor:
        raise NotImplementedError

    def test_endless_generator_first_fifty(self) -> None:
        with self.make_executor() as ex:
            results = list(itertools.islice(ex.map(double, itertools.count()), 50))
        assert results == [x * 2 for x in range(50)]

    def test_endless_iterable_zipped_with_a_finite_one(self) -> None:
        with self.make_executor() as ex:
            results = list(ex.map(add, range(100), itertools.count()))
        assert results == [x + x for x in range(100)]

    def test_zip_of_range_and_count_as_one_iterable(self) -> None:
        with self.make_executor() as ex:
            pairs = list(ex.map(tuple, zip(range(100), itertools.count())))
        assert pairs == [(x, x) for x in range(100)]
