"""What a map does with what earlier maps of the same function taught it.

A cold map knows nothing of ``fn`` until its sample has run. A function already measured, by
this executor's previous map (``Planner.last_stats``) or an earlier run of the script
(``_profile_store``), gets a head start:

- costly items (``send_ahead_above_s``) that used the CPU: the items after the first go to a
  warm pool (or one started at once, for a remembered function) while the first is sampled
  here (``send_ahead``);
- items that mostly waited: one sampled item that waits too is enough (``mostly_waited``),
  the earlier map being the second that agrees;
- and the lesson is kept true: the first chunk back from the workers tells what an item
  costs there (``LessonFromWorkers``), which replaces a sample that ran beside items sent
  ahead or began with a slow first call (a 200x200 ``solve`` timed 10.7 ms in a sample that
  shared the cores, 0.5 ms in a worker: every next map sent items ahead and sampled it again
  on shared cores).

The head start only starts work early: the decision is still taken on this map's own sample.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from . import _cost_model
from ._decision import Decision

if TYPE_CHECKING:
    from ._lanes import MapRequest
    from ._runtime import Runtime
    from ._stats import SampleStats


@dataclass(frozen=True)
class Known:
    """``fn``'s items as last measured (``stats``), and whether by an earlier run."""

    stats: SampleStats | None
    remembered: bool

    @classmethod
    def of(cls, rt: Runtime, fn: Callable[..., Any]) -> Known:
        """This executor's previous map of ``fn``, else an earlier run's remembered profile."""
        last = rt.planner.last_stats(fn)
        if last is not None:
            return cls(last, False)
        remembered = rt.profiles.recall(fn)
        return cls(remembered, remembered is not None)

    def mostly_waited(self, cpu_fraction: float) -> bool:
        """Whether the items mostly waited (CPU under ``cpu_fraction`` of their wall time)."""
        stats = self.stats
        return stats is not None and stats.cpu_s < cpu_fraction * stats.compute_s


def learn(rt: Runtime, fn: Callable[..., Any], stats: SampleStats) -> None:
    """What ``fn``'s next map (``Planner``) and the next run of the script (the profile store)
    assume about its items."""
    rt.planner.remember(fn, stats)
    rt.profiles.remember(fn, stats)


class LessonFromWorkers:
    """A ``ChunkObserver`` for a map's pool run: the first chunk's time per item in its worker
    replaces the sample's figures in what ``fn``'s later maps assume; the plan is kept."""

    def __init__(
        self, rt: Runtime, fn: Callable[..., Any], stats: SampleStats, plan: tuple[int, int]
    ) -> None:
        self._rt, self._fn, self._stats, self._plan = rt, fn, stats, plan

    def __call__(
        self,
        chunk: list[tuple[Any, ...]],
        results: list[Any],
        error: BaseException | None,
        wall_s: float,
        cpu_s: float,
    ) -> tuple[int, int]:
        if error is None and chunk and wall_s > 0:
            n = len(chunk)
            per_item = replace(self._stats, compute_s=wall_s / n, cpu_s=cpu_s / n)
            learn(self._rt, self._fn, per_item)
        return self._plan


@dataclass
class Ahead:
    """Items sent to a pool while the first one is sampled here (``send_ahead``)."""

    first: list[Iterator[Any]]  # the first item, one iterator per input, for the sampler
    stream: Iterator[Any] | None  # results of the items sent ahead, in order
    count: int  # items sent ahead
    note: str  # where to, in words: the warm pool, or one started from a remembered profile


def send_ahead(rt: Runtime, request: MapRequest, known: Known) -> Ahead | None:
    """If ``fn``'s items were costly last time and a pool is warm, send the items after the
    first to it, one per core the sample leaves free, while the first is sampled here: else
    the workers idle through a sample as long as an item (ms200_x8, warm: 1.52x the best
    pool). One per worker would run three processes on 2 cores: the three items end
    together at 1.5 item-times instead of two at one, the sampled time is 1.5x too long,
    and 8 items end at 4.5 item-times instead of 4. If items turned cheap, their results
    come back one round trip (~1 ms) late. A function remembered from an earlier run
    (``_profile_store``) gets a cold pool started at once, if the model says one pays."""
    fn, iterators, total, options = request.fn, request.iterators, request.total, request.options
    stats, settings = known.stats, rt.settings
    if stats is None or stats.compute_s < settings.send_ahead_above_s:
        return None
    if known.mostly_waited(settings.waiting_cpu_fraction):
        return None  # threads, not a pool, run these; their sample is one item
    if options.chunksize is not None:
        return None  # the caller chose how items travel
    profile = rt.probe.profile()
    workers = rt.processes.warm_workers(profile)
    note, cold = "the warm pool", False
    if not workers and known.remembered and total and not rt.closed:
        # Cold, but an earlier run measured fn: start the pool now if it would pay.
        workers, cold = rt.planner.remembered_pool(stats, total), True
        took = _cost_model.format_seconds(stats.compute_s)
        note = f"a pool started at once (items took {took} in an earlier run)"
    ahead = min(workers, profile.usable_cpus - 1)
    if ahead < 1:
        return None
    args = zip(*iterators, strict=False)
    first = next(args, None)
    if first is None:
        return Ahead([iter(()) for _ in iterators], None, 0, note)
    first_item = [iter((value,)) for value in first]
    items = list(itertools.islice(args, ahead))
    if not items:
        return Ahead(first_item, None, 0, note)
    if cold:  # answered by a no-op, not after a whole item: the plan then finds the pool
        rt.processes.warm_up(workers)  # warm (no start to count)
    one_each = Decision("process", workers, 1, 1.0, 0.0, "sent ahead")
    stream = rt.processes.run(fn, iter(items), one_each, options)
    return Ahead(first_item, stream, len(items), note)
