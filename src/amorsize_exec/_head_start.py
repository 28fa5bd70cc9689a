"""What a map does with what earlier maps of the same function taught it.

A cold map knows nothing of ``fn`` until its sample has run. A function already measured, by
this executor's previous map (``Planner.last_stats``) or an earlier run of the script
(``_profile_store``), gets a head start:

- costly items (``send_ahead_above_s``) that used the CPU: the items after the first go to a
  warm pool (or one started at once, for a remembered function) while the first is sampled
  here (``send_ahead``);
- items that mostly waited: a map of known length goes to the thread lane at once, with no
  sample here (``straight_to_threads``): a sampled 10 ms wait held 32 threads back (200 x
  10 ms of ``sleep``: 84 ms against 74 ms for ``ThreadPoolExecutor(32)``, warm). Its first
  chunk back re-checks (``ThreadRecheck``): items that no longer wait run one chunk at a time,
  the pace of the loop. Otherwise one sampled item that waits is enough, the earlier map being
  the second that agrees (``Known.mostly_waited``);
- items whose thread trial won in an earlier run (BLAS calls, which release the GIL): all of
  the map goes to threads, unsampled, judged against the serial pace remembered
  (``threads_first``);
- and the lesson is kept true: the pool's first chunks tell what an item costs in a worker
  (``_worker_lesson``), which replaces a sample that ran beside items sent ahead or was one
  slow first call.

An earlier figure is never trusted blindly: a map that sent items ahead still decides on its
own sample, and an unsampled thread run is re-checked by its own first chunks.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from . import _cost_model
from ._decision import Decision
from ._stats import mostly_waits
from ._thread_trial import affordable_trial, thread_chunksize, trial_threads

if TYPE_CHECKING:
    from ._lanes import MapRequest
    from ._runtime import Runtime
    from ._stats import SampleStats

logger = logging.getLogger(__name__)


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
        return stats is not None and mostly_waits(stats.cpu_s, stats.compute_s, cpu_fraction)


def learn(rt: Runtime, fn: Callable[..., Any], stats: SampleStats) -> None:
    """What ``fn``'s next map (``Planner``) and the next run of the script (the profile store)
    assume about its items."""
    rt.planner.remember(fn, stats)
    rt.profiles.remember(fn, stats)


def straight_to_threads(rt: Runtime, request: MapRequest, known: Known) -> Iterator[Any] | None:
    """All of the map on the thread lane, unsampled, if its items mostly waited last time, its
    length is known and the model, on those figures, says threads (``None``: sample first)."""
    stats, settings = known.stats, rt.settings
    if (
        stats is None
        or not known.mostly_waited(settings.waiting_cpu_fraction)
        or request.total is None
        or rt.cluster is not None  # the cluster's lane is weighed on a sample of this map
    ):
        return None
    decision, profile = rt.planner.decide_unsampled(stats, request.total, request.options.chunksize)
    if decision.lane != "thread":
        return None
    where = "an earlier run" if known.remembered else "its previous map"
    decision = replace(
        decision,
        reason=f"items waited in {where}: no sample here, the first chunks re-check; "
        + decision.reason,
    )
    n = request.total
    rt.record("map", request.fn, decision, stats=stats, profile=profile, total=n, remaining=n)
    plan = decision.chunksize, request.options.window(decision, settings)
    recheck = ThreadRecheck(rt, request.fn, stats, plan)
    return rt.threads.run(request.fn, request.args(), decision, request.options, observer=recheck)


def threads_first(rt: Runtime, request: MapRequest, known: Known) -> SampleStats | None:
    """The figures a map starts from, unsampled, if a thread trial of ``fn`` won in an earlier
    run (``ProfileStore.recall_thread_win``: items that release the GIL, as BLAS calls do),
    its length is known and its work affords a trial (``None``: sample first). All of the map
    then goes to one thread per core as one trial (``ThreadTrial``, planned), judged on the
    map itself against the serial pace remembered (``PaceJudge``): threads that fall behind
    it get no more items, and the rest runs here at the loop's pace. A cold run otherwise
    sampled and ran serially before its trial, each time (200 solves: 89-131 ms, against
    74-103 ms for ``ThreadPoolExecutor(2)``, full8 cold), and trials lost more often in a
    process that had run solves on its main thread."""
    stats, n = known.stats, request.total
    if not known.remembered or stats is None or n is None or rt.cluster is not None:
        return None
    if not affordable_trial(rt, n, stats.compute_s):
        return None
    speedup = rt.profiles.recall_thread_win(request.fn)
    if speedup is None:
        return None
    took = _cost_model.format_seconds(stats.compute_s)
    threads = trial_threads(rt)
    decision = Decision(
        "thread",
        threads,
        thread_chunksize(rt, stats.compute_s, n, threads),
        speedup,
        speedup,
        f"items released the GIL in an earlier run ({speedup:.2f}x, {took} each serially): "
        "no sample here; the rest runs here if the threads fall behind that pace",
    )
    rt.record("map", request.fn, decision, stats=stats, profile=None, total=n, remaining=n)
    rt.planner.remember(request.fn, stats)  # this executor's next map decides on its own
    return replace(stats, items=0)


class ThreadRecheck:
    """A ``ChunkObserver`` for ``straight_to_threads``: the first chunks say whether the items
    still wait, by their own CPU time (the thread's: its wall time on a busy lane also holds
    waits for the GIL) against the item time known, read over ``sample_min_items`` items as a
    sample is, on the median chunk: one chunk's CPU clock can hold time the VM took from its
    thread (10 ms sleeps read up to 6.5 ms of CPU now and then on the development VM, at rest;
    one first chunk read 9.2 ms and sent a waiting map to one thread), or miss the part of a
    busy item spent waiting for the GIL. If they no longer wait, the rest runs one chunk at a
    time (the GIL serialises CPU work anyway) and ``fn``'s next map samples afresh."""

    def __init__(
        self, rt: Runtime, fn: Callable[..., Any], stats: SampleStats, plan: tuple[int, int]
    ) -> None:
        self._rt, self._fn, self._stats, self._plan = rt, fn, stats, plan
        self._chunks: list[tuple[int, float, float]] = []  # items, wall and CPU time of each

    def __call__(
        self,
        chunk: list[tuple[Any, ...]],
        results: list[Any],
        error: BaseException | None,
        wall_s: float,
        cpu_s: float,
    ) -> tuple[int, int] | None:
        if error is not None or not chunk or wall_s <= 0:
            return self._plan
        rt, known = self._rt, self._stats
        self._chunks.append((len(chunk), wall_s, cpu_s))
        items = sum(n for n, _, _ in self._chunks)
        if items < rt.settings.sample_min_items:
            return None  # the next chunk says more
        by_cpu = sorted(self._chunks, key=lambda c: c[2] / c[0])
        n, wall_s, cpu_s = by_cpu[(len(by_cpu) - 1) // 2]  # the median chunk (the lower one)
        cpu_item_s = cpu_s / n
        if mostly_waits(cpu_item_s, known.compute_s, rt.settings.waiting_cpu_fraction):
            learn(rt, self._fn, replace(known, items=n, compute_s=wall_s / n, cpu_s=cpu_item_s))
            return self._plan
        # Work now: alone, an item would take about its CPU time.
        learn(rt, self._fn, replace(known, items=n, compute_s=cpu_item_s, cpu_s=cpu_item_s))
        why = (
            f"items no longer wait ({_cost_model.format_seconds(cpu_item_s)} of CPU each in the "
            f"first {items} items, of {_cost_model.format_seconds(known.compute_s)} known): "
            "the rest runs one chunk at a time"
        )
        logger.info("map(%s): %s", getattr(self._fn, "__qualname__", self._fn), why)
        chunksize = self._plan[0]
        rt.revise(self._fn, Decision("thread", 1, chunksize, 1.0, 1.0, why))
        return chunksize, 1


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
