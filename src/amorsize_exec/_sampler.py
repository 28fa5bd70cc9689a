"""Run the first items in-process and measure them; their results are kept, never re-run.

Clocks and serializer are injected so that tests can drive the sampler with a fake clock.
Nothing here instruments the function (no tracemalloc, no profiler): the timings are those of
a plain call.
"""

from __future__ import annotations

import gc
import itertools
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import cloudpickle

from ._backends._blas import ProcessCpuClock, single_thread
from ._backends._chunks import draining
from ._config import Settings
from ._decision import callable_name
from ._stats import Measurements, SampleStats, mostly_waits, stats_from_measurements

Clock = Callable[[], float]
_SCHEDSTAT = "/proc/thread-self/schedstat"


def ready_time() -> float:
    """Seconds this thread has spent runnable but waiting for a core (Linux's schedstat, ~8 us
    a read; 0.0 elsewhere). Preemption adds it to an item's wall time, and it is no wait of the
    item's own: on a busy machine a 5 ms CPU spin measured 8 ms wall and 4 ms CPU, "half
    waiting", and took the thread lane, where the GIL runs it at the loop's pace."""
    try:
        fd = os.open(_SCHEDSTAT, os.O_RDONLY)
    except OSError:
        return 0.0
    try:
        return int(os.read(fd, 64).split()[1]) * 1e-9
    except (OSError, ValueError, IndexError):
        return 0.0
    finally:
        os.close(fd)


_END = object()
Serializer = Callable[[Any], bytes]


@dataclass
class Sample:
    """Outcome of sampling: results in input order, and the exception that ended it, if any.

    ``error`` is the exception raised by item ``len(results)``; sampling stops there, because
    the consumer will stop there too (nothing after it is ever observed).
    """

    results: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    stats: SampleStats | None = None
    exhausted: bool = False
    #: The function and the first arguments and results, kept to measure pickling later.
    fn: Callable[..., Any] | None = None
    kept_args: list[tuple[Any, ...]] = field(default_factory=list)
    kept_results: list[Any] = field(default_factory=list)
    #: Where results went as they came, instead of ``results`` (``Sampler.run``), and how many.
    publish: Callable[[Any], None] | None = None
    published: int = 0

    @property
    def ran(self) -> int:
        """Items that ran and gave a result (kept for ``replay``, or published)."""
        return len(self.results) + self.published

    def replay(self) -> Iterator[Any]:
        """The sampled results in order, then the sampled exception if there was one. Each
        result is dropped as it is yielded (call once: the results move to the iterator).

        In C: replaying 10,000 results through a generator cost more than computing ``x*2``
        for them.
        """
        results, self.results = self.results, []
        if self.error is None:
            return draining(results)
        return itertools.chain(draining(results), _raising(self.error))

    def forget_kept(self) -> None:
        """Drop the arguments and results kept to measure pickling: a long run must not keep
        delivered values alive."""
        self.kept_args = []
        self.kept_results = []


def _raising(error: BaseException) -> Iterator[Any]:
    raise error
    yield  # a generator: raises when the consumer reaches it


class Sampler:
    """Runs items until enough evidence: ``sample_min_items`` and ``sample_min_s`` of work
    (``sample_min_items_waiting`` if every item mostly waited), or ``sample_budget_s`` of wall
    time, whichever comes first (or ``limit`` items).

    Pickling is measured apart, by ``measure_pickling``, and only when a pool could win: for a
    cheap function the three pickle calls would cost more than its whole input.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = time.perf_counter,
        cpu_clock: Clock | None = None,
        ready_clock: Clock = ready_time,
        serializer: Serializer = cloudpickle.dumps,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._cpu_clock = cpu_clock or ProcessCpuClock()
        self._ready_clock = ready_clock
        self._serialize = serializer

    def run(
        self,
        fn: Callable[..., Any],
        iterators: list[Iterator[Any]],
        limit: int | None = None,
        *,
        publish: Callable[[Any], None] | None = None,
        waiting_items: int | None = None,
    ) -> Sample:
        """Sample ``fn`` over ``zip(*iterators)``, reading the input only as far as sampled.

        With ``publish``, each result is handed to it as soon as it exists instead of being
        kept for ``replay`` (a map with a timeout: a result must not wait for the sample's
        end), and items are timed one by one (a batch would hold its results until it ends).
        ``waiting_items`` replaces ``sample_min_items_waiting`` (1: an earlier map already
        saw these items wait, so one more that waits agrees with it).
        """
        s = self._settings
        enough_waiting = s.sample_min_items_waiting if waiting_items is None else waiting_items
        sample = Sample(fn=fn, publish=publish)
        m = Measurements()
        single = len(iterators) == 1
        # One input: map over it directly, as the plain loop does (no tuple per item).
        source: Iterator[Any] = iterators[0] if single else zip(*iterators, strict=False)
        started = self._clock()
        ready0 = self._ready_clock()
        batch = 1
        while limit is None or sample.ran < limit:
            want = batch if limit is None else min(batch, limit - sample.ran)
            if batch == 1:
                item: Any = next(source, _END)
                if item is _END:
                    sample.exhausted = True
                    break
                self._run_one(fn, (item,) if single else item, sample, m)
            elif self._run_batch(fn, source, want, single=single, sample=sample, m=m) < want:
                sample.exhausted = sample.error is None  # fewer than asked: the input ended
            if sample.error is not None or sample.exhausted:
                break
            elapsed = self._clock() - started
            measured = sum(m.wall) + m.batch_wall
            count = len(m.wall) + m.batch_items
            if elapsed >= s.sample_budget_s or (
                count >= s.sample_min_items and measured >= s.sample_min_s
            ):
                break
            if (
                count >= enough_waiting
                and measured >= s.sample_min_s
                and not m.batch_items
                and all(
                    mostly_waits(c, w, s.waiting_cpu_fraction)
                    for c, w in zip(m.cpu, m.wall, strict=True)
                )
                and mostly_waits(
                    sum(m.cpu) + self._ready_clock() - ready0, measured, s.waiting_cpu_fraction
                )
            ):
                break  # every item mostly waited (each: an odd first call cannot pass for all)
            tiny = measured / count < s.batch_timing_below_s
            if publish is None and count >= s.sample_min_items and tiny:
                # Tiny items: time batches, the clock would cost more than the item.
                batch = 2 * batch if batch > 1 else _first_batch(m, count, s)
        stats = stats_from_measurements(m, self._clock() - started)
        if stats is not None and stats.cpu_s < stats.compute_s:  # not every moment on a core
            ready_s = (self._ready_clock() - ready0) / stats.items
            stats = replace(stats, ready_s=min(ready_s, stats.compute_s - stats.cpu_s))
        if (
            stats is not None
            and stats.cpu_s > s.multicore_cpu_ratio * stats.compute_s
            and sample.error is None
            and not sample.exhausted
            and (limit is None or sample.ran < limit)
        ):
            stats = self._time_on_one_thread(fn, source, single, sample, stats)
        sample.stats = stats
        return sample

    def _time_on_one_thread(
        self,
        fn: Callable[..., Any],
        source: Iterator[Any],
        single: bool,
        sample: Sample,
        stats: SampleStats,
    ) -> SampleStats:
        """The items ran on several cores (BLAS threads): time one more with BLAS limited to
        one thread, as a worker that has one core runs it (``_blas``: spinning threads make
        CPU / wall overstate what the extra threads gained). ``single_thread_s`` stays 0 if
        no such library is loaded, the input ended, or the item failed."""
        item: Any = next(source, _END)
        if item is _END:
            sample.exhausted = True
            return stats
        one = Measurements()
        with single_thread() as limited:
            self._run_one(fn, (item,) if single else item, sample, one)
        if not one.wall:  # it raised: the sample ends there
            return stats
        return replace(
            stats,
            items=stats.items + 1,
            measured_s=stats.measured_s + one.wall[0],
            single_thread_s=one.wall[0] if limited else 0.0,
        )

    def _run_one(
        self, fn: Callable[..., Any], args: tuple[Any, ...], sample: Sample, m: Measurements
    ) -> None:
        # The CPU clock outside the wall clock: it is a system call (~1 us), as long as a tiny
        # item, and the wall time is what the decision rests on.
        cpu0 = self._cpu_clock()
        wall0 = self._clock()
        try:
            result = fn(*args)
        except Exception as exc:
            sample.error = exc
            return
        m.wall.append(self._clock() - wall0)
        m.cpu.append(self._cpu_clock() - cpu0)
        if sample.publish is None:
            sample.results.append(result)
        else:
            sample.publish(result)
            sample.published += 1
        if len(sample.kept_args) < self._settings.sample_serialized_items:
            sample.kept_args.append(args)
            sample.kept_results.append(result)

    def _run_batch(
        self,
        fn: Callable[..., Any],
        source: Iterator[Any],
        want: int,
        *,
        single: bool,
        sample: Sample,
        m: Measurements,
    ) -> int:
        """Run up to ``want`` items timed as one; returns how many ran."""
        results = sample.results
        before = len(results)
        # Materialise only the arguments still wanted for measuring pickling.
        wanted_for_pickling = self._settings.sample_serialized_items - len(sample.kept_args)
        head = list(itertools.islice(source, max(0, min(want, wanted_for_pickling))))
        rest = itertools.islice(source, want - len(head))
        run = map if single else itertools.starmap
        # As timeit does: a garbage-collector pass over the caller's fresh input (~20 ms for a
        # 1M-item list) inside one batch made x-sized items look 100x dearer, and a pool win.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        cpu0 = self._cpu_clock()  # outside the wall clock, as in _run_one
        wall0 = self._clock()
        try:
            # extend() keeps what it appended before an exception: positions stay exact. Two
            # calls rather than one over chain(head, rest): a chain costs a layer per item.
            if head:
                results.extend(run(fn, head))
            results.extend(run(fn, rest))
        except Exception as exc:
            sample.error = exc
        finally:
            m.batch_wall += self._clock() - wall0
            m.batch_cpu += self._cpu_clock() - cpu0
            if gc_was_enabled:
                gc.enable()
        done = len(results) - before
        m.batch_items += done
        kept = min(done, len(head))
        sample.kept_args.extend([(a,) for a in head[:kept]] if single else head[:kept])
        sample.kept_results.extend(results[before : before + kept])
        return done

    def measure_pickling(self, sample: Sample, stats: SampleStats) -> SampleStats:
        """``stats`` with the pickling figures of ``sample`` filled in (or why it cannot pickle).

        The kept arguments and results are pickled as one batch each, as a chunk travels:
        timing one pickle call per item would charge every item the pickler's fixed set-up
        cost (about 10 us for cloudpickle), which a chunk pays once. A first value of
        ``_LARGE_VALUE_BYTES`` or more is pickled alone instead: set-up is then noise, and the
        batch is dear (7 results of 1 MB took 7.8 ms, 16 took 25 ms; one took 1.2 ms).
        """
        if stats.pickling_measured:
            return stats
        if sample.fn is not None:
            started = self._clock()
            try:
                callable_bytes = len(self._serialize(sample.fn))
            except Exception:
                problem = pickling_problem(sample.fn, serialize=self._serialize)
                return _unpicklable(stats, problem)
            stats = replace(
                stats,
                callable_bytes=callable_bytes,
                callable_serialize_s=self._clock() - started,
            )
        figures: dict[str, float] = {"serialize_s": 0.0}
        for what, kept, size_field in (
            ("an argument", sample.kept_args, "arg_bytes"),
            ("a result", sample.kept_results, "result_bytes"),
        ):
            if not kept:
                continue
            # Each kept argument entry is the tuple of one call's arguments.
            parts = kept[0] if what == "an argument" else (kept[0],)
            large = any(sys.getsizeof(part) >= _LARGE_VALUE_BYTES for part in parts)
            values = kept[:1] if large else kept
            started = self._clock()
            try:
                size = len(self._serialize(values))
            except Exception:
                return _unpicklable(stats, f"{what} cannot be pickled: {self._culprit(values)}")
            figures["serialize_s"] += (self._clock() - started) / len(values)
            figures[size_field] = size / len(values)
        return replace(stats, pickling_measured=True, **figures)  # type: ignore[arg-type]

    def _culprit(self, values: list[Any]) -> str:
        for value in values:
            try:
                self._serialize(value)
            except Exception as exc:
                return f"{_describe(value)}: {exc!r}"
        return "unknown"


#: The first batch holds at most this many times the items timed singly, so that it still
#: ends soon if those were unrepresentatively quick; batches then double, as before.
_FIRST_BATCH_MAX_FACTOR = 8


def _first_batch(m: Measurements, count: int, settings: Settings) -> int:
    """Items in the first timed batch: about ``batch_timing_below_s`` of work.

    Starting at 2 items, 200 items of 0.7 us took 7 batches where 4 do: the first ones cost
    more than their items (~10 us each of bookkeeping and clock reads, more on a first call).
    """
    recent = m.wall[1:] or m.wall  # the first call often pays one-time costs
    per_item_s = sum(recent) / len(recent)
    if per_item_s <= 0:
        return _FIRST_BATCH_MAX_FACTOR * count
    wanted = math.ceil(settings.batch_timing_below_s / per_item_s)
    return max(2, min(wanted, _FIRST_BATCH_MAX_FACTOR * count))


#: A value this large (by ``sys.getsizeof``: exact for bytes, str and arrays that own their
#: data; containers count only themselves, so they keep the batch) is pickled alone.
_LARGE_VALUE_BYTES = 1 << 16


def _unpicklable(stats: SampleStats, problem: str | None) -> SampleStats:
    return replace(
        stats, pickling_measured=True, picklable=False, unpicklable_reason=problem or "unknown"
    )


def pickling_problem(
    fn: Callable[..., Any],
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    serialize: Serializer = cloudpickle.dumps,
) -> str | None:
    """What in a call cannot be pickled for a worker, in words; ``None`` if all of it can."""
    try:
        serialize(fn)
    except Exception as exc:
        return f"the function {callable_name(fn)} cannot be pickled: {exc!r}"
    for value in (*args, *(kwargs or {}).values()):
        try:
            serialize(value)
        except Exception as exc:
            return f"an argument cannot be pickled: {_describe(value)}: {exc!r}"
    return None


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
