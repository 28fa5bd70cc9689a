"""Run the first items in-process and measure them; their results are kept, never re-run.

Clocks and serializer are injected so that tests can drive the sampler with a fake clock.
Nothing here instruments the function (no tracemalloc, no profiler): the timings are those of
a plain call.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ._config import Settings
from ._decision import callable_name

Clock = Callable[[], float]
Serializer = Callable[[Any], bytes]


@dataclass(frozen=True)
class SampleStats:
    """Per-item figures measured by the sampler (means unless said otherwise).

    Attributes:
        items: items measured.
        compute_s: wall seconds per item.
        cpu_s: CPU seconds per item of the calling thread (``cpu_s << compute_s``: waiting).
        cv: coefficient of variation of per-item wall time (0 if not measurable).
        max_s: slowest single item measured.
        arg_bytes: pickled size of one item's arguments.
        result_bytes: pickled size of one item's result.
        serialize_s: time to pickle one item's arguments and its result, measured on a batch
            (the parent pays about this per item to send arguments and read results, and a
            worker pays it again).
        callable_bytes: pickled size of the function (sent with every chunk).
        callable_serialize_s: time to pickle the function once.
        picklable: ``False`` if the function, an argument or a result could not be pickled.
        unpicklable_reason: what could not be pickled, and why.
        elapsed_s: wall time of the whole sample, measurement included.
    """

    items: int
    compute_s: float
    cpu_s: float
    cv: float
    max_s: float
    arg_bytes: float = 0.0
    result_bytes: float = 0.0
    serialize_s: float = 0.0
    callable_bytes: int = 0
    callable_serialize_s: float = 0.0
    picklable: bool = True
    unpicklable_reason: str | None = None
    elapsed_s: float = 0.0

    @property
    def work_s(self) -> float:
        """Seconds of the items' own work during the sample."""
        return self.items * self.compute_s


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

    def replay(self) -> Iterator[Any]:
        """The sampled results in order, then the sampled exception if there was one."""
        yield from self.results
        if self.error is not None:
            raise self.error


@dataclass
class _Measurements:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    batch_items: int = 0  # items timed in batches (no per-item spread)
    batch_wall: float = 0.0
    batch_cpu: float = 0.0
    kept_args: list[tuple[Any, ...]] = field(default_factory=list)  # for pickling, at the end
    kept_results: list[Any] = field(default_factory=list)
    arg_bytes: list[float] = field(default_factory=list)
    result_bytes: list[float] = field(default_factory=list)
    serialize_s: list[float] = field(default_factory=list)
    unpicklable: str | None = None


class Sampler:
    """Runs items until enough evidence: ``sample_min_items`` and ``sample_min_s`` of work, or
    ``sample_budget_s`` of wall time, whichever comes first (or ``limit`` items)."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = time.perf_counter,
        cpu_clock: Clock = time.thread_time,
        serializer: Serializer = cloudpickle.dumps,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._serialize = serializer

    def run(
        self, fn: Callable[..., Any], args: Iterator[tuple[Any, ...]], limit: int | None = None
    ) -> Sample:
        """Sample ``fn`` over ``args`` (consumed only as far as sampled)."""
        s = self._settings
        sample = Sample()
        m = _Measurements()
        callable_bytes, callable_serialize_s = self._measure_callable(fn, m)
        started = self._clock()
        batch = 1
        while limit is None or len(sample.results) < limit:
            want = batch if limit is None else min(batch, limit - len(sample.results))
            chunk = list(itertools.islice(args, want))
            if not chunk:
                sample.exhausted = True
                break
            if batch == 1:
                self._run_one(fn, chunk[0], sample, m)
            else:
                self._run_batch(fn, chunk, sample, m)
            if sample.error is not None:
                break
            elapsed = self._clock() - started
            measured = sum(m.wall) + m.batch_wall
            count = len(m.wall) + m.batch_items
            if elapsed >= s.sample_budget_s or (
                count >= s.sample_min_items and measured >= s.sample_min_s
            ):
                break
            if count >= s.sample_min_items and measured / count < s.batch_timing_below_s:
                batch *= 2  # tiny items: time batches, the clock would cost more than the item
        self._measure_serialization(m)
        elapsed = self._clock() - started
        sample.stats = self._stats(m, callable_bytes, callable_serialize_s, elapsed)
        return sample

    def _measure_callable(self, fn: Callable[..., Any], m: _Measurements) -> tuple[int, float]:
        started = self._clock()
        try:
            size = len(self._serialize(fn))
        except Exception:
            m.unpicklable = pickling_problem(fn, serialize=self._serialize)
            return 0, 0.0
        return size, self._clock() - started

    def _run_one(
        self, fn: Callable[..., Any], args: tuple[Any, ...], sample: Sample, m: _Measurements
    ) -> None:
        wall0, cpu0 = self._clock(), self._cpu_clock()
        try:
            result = fn(*args)
        except Exception as exc:
            sample.error = exc
            return
        m.wall.append(self._clock() - wall0)
        m.cpu.append(self._cpu_clock() - cpu0)
        sample.results.append(result)
        if len(m.kept_args) < self._settings.sample_serialized_items:
            m.kept_args.append(args)
            m.kept_results.append(result)

    def _run_batch(
        self, fn: Callable[..., Any], chunk: list[tuple[Any, ...]], sample: Sample, m: _Measurements
    ) -> None:
        results = sample.results
        before = len(results)
        wall0, cpu0 = self._clock(), self._cpu_clock()
        try:
            # extend() keeps what it appended before an exception: positions stay exact.
            results.extend(itertools.starmap(fn, chunk))
        except Exception as exc:
            sample.error = exc
        done = len(results) - before
        m.batch_wall += self._clock() - wall0
        m.batch_cpu += self._cpu_clock() - cpu0
        m.batch_items += done
        keep = min(done, self._settings.sample_serialized_items - len(m.kept_args))
        if keep > 0:
            m.kept_args.extend(chunk[:keep])
            m.kept_results.extend(results[len(results) - done : len(results) - done + keep])

    def _measure_serialization(self, m: _Measurements) -> None:
        """Pickle the kept arguments and results as one batch each, as a chunk travels.

        Timing one pickle call per item would charge every item the pickler's fixed set-up
        cost (about 10 us for cloudpickle), which a chunk pays once.
        """
        if m.unpicklable is not None or not m.kept_args:
            return
        for what, values, sizes in (
            ("an argument", m.kept_args, m.arg_bytes),
            ("a result", m.kept_results, m.result_bytes),
        ):
            started = self._clock()
            try:
                size = len(self._serialize(values))
            except Exception:
                m.unpicklable = f"{what} cannot be pickled: {self._culprit(values)}"
                return
            m.serialize_s.append((self._clock() - started) / len(values))
            sizes.append(size / len(values))

    def _culprit(self, values: list[Any]) -> str:
        for value in values:
            try:
                self._serialize(value)
            except Exception as exc:
                return f"{_describe(value)}: {exc!r}"
        return "unknown"

    @staticmethod
    def _stats(
        m: _Measurements, callable_bytes: int, callable_serialize_s: float, elapsed_s: float
    ) -> SampleStats | None:
        count = len(m.wall) + m.batch_items
        if count == 0:
            return None
        # The first call often pays one-time costs (imports, caches): leave it out once there
        # are enough single-item timings to do without it.
        wall = m.wall[1:] if len(m.wall) >= 3 else m.wall
        cpu = m.cpu[1:] if len(m.cpu) >= 3 else m.cpu
        n = len(wall) + m.batch_items
        compute_s = (sum(wall) + m.batch_wall) / n
        cpu_s = (sum(cpu) + m.batch_cpu) / n
        mean_wall = statistics.fmean(wall) if wall else 0.0
        cv = statistics.pstdev(wall) / mean_wall if len(wall) >= 2 and mean_wall > 0 else 0.0
        return SampleStats(
            items=count,
            compute_s=compute_s,
            cpu_s=cpu_s,
            cv=cv,
            max_s=max(m.wall, default=compute_s),
            arg_bytes=sum(m.arg_bytes),
            result_bytes=sum(m.result_bytes),
            serialize_s=sum(m.serialize_s),
            callable_bytes=callable_bytes,
            callable_serialize_s=callable_serialize_s,
            picklable=m.unpicklable is None,
            unpicklable_reason=m.unpicklable,
            elapsed_s=elapsed_s,
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
