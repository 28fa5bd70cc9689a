"""``MapCall``: one ``map`` call's life, in its phases: sample, plan, run, re-plan.

::

    sample ── fn's first items run here, timed (Sampler); results kept, never re-run; if fn's
      │       items were costly last time and a pool is warm, items 2..P go to it meanwhile
      ▼
    plan ──── Planner.decide: cost_model.decide on the sample (serial | thread | process),
      │       pickling and the warm pool's round trip measured only if a pool could win
      ▼
    run ───── the sample's results first, then the rest in the chosen lane (Lane.run);
      │       a cold pool starts in the background while items go on running here
      ▼
    re-plan ─ an in-process run re-checks each time its work has doubled (rent-or-buy:
              inputs without a length, items dearer than sampled) and may move the rest to a
              pool; once the pool answers, the rest moves there. Items that used several
              cores (BLAS) first try a batch on threads (ThreadTrial) and stay there if faster

A function whose items waited in an earlier map or run, or whose thread trial won in an
earlier run, skips the sample (``_head_start``). Each decision lands on ``last_decision``
(``Runtime.record``).
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from . import _cost_model
from ._decision import Decision, callable_name
from ._head_start import Known, learn, send_ahead, straight_to_threads, threads_first
from ._sampler import Sample, pickling_problem
from ._thread_trial import ThreadTrial, trial_items
from ._worker_lesson import LessonFromWorkers

if TYPE_CHECKING:
    from ._lanes import MapRequest
    from ._lanes._process import PoolStart
    from ._runtime import Runtime
    from ._stats import SampleStats

logger = logging.getLogger(__name__)


class MapCall:
    """One auto-lane map (``MapRequest``: ``fn`` over its inputs, ``total`` items if known)."""

    def __init__(self, runtime: Runtime, request: MapRequest) -> None:
        self._rt = runtime
        self._request = request
        self._fn = request.fn
        self._iterators = request.iterators
        self._total = request.total
        self._options = request.options
        self._name = callable_name(request.fn)
        self._wanted: Callable[[], bool] = _always

    def results(
        self,
        publish: Callable[[Any], None] | None = None,
        wanted: Callable[[], bool] | None = None,
    ) -> Iterator[Any]:
        """Sample here, plan, run the rest (module docstring). With a timeout, this runs on a
        ``DeadlineStream`` thread: ``publish`` is where sampled results go as they come
        (``Sampler.run``), and ``wanted()`` turns False once the consumer has gone (timed out):
        the rest is then never read, and no pool is started for it."""
        self._wanted = wanted or _always
        known = Known.of(self._rt, self._fn)
        if publish is None and not self._rt.strict:
            tail = straight_to_threads(self._rt, self._request, known)
            if tail is not None:
                return tail
            first = threads_first(self._rt, self._request, known)
            if first is not None:  # unsampled: the map opens with a thread trial
                opened = Sample(fn=self._fn, stats=first)
                batches = self._in_process(
                    opened, self._total, starting=None, sent=(), warm_up_after=0, won_before=True
                )
                return itertools.chain.from_iterable(batches)
        sampled = self._sample(publish, known)
        sample, stats = sampled.sample, sampled.sample.stats
        if not self._wanted():  # the consumer timed out during the sample: nothing more to run
            return sample.replay()
        if sample.error is not None or sample.exhausted or stats is None:
            done = "the input ended" if sample.error is None else "an item raised"
            decision = Decision.serial(f"{done} during the sample")
            self._rt.record(
                "map", self._fn, decision, stats=stats, profile=None, total=self._total, remaining=0
            )
            # Alone, the replay is a list iterator, which list() copies in one go (10,000
            # results: 51 us; 85 us through a chain; timeit, best of 5).
            sent = sampled.sent
            return itertools.chain(sample.replay(), *sent) if sent else sample.replay()
        plan = self._plan(sampled, stats)
        if plan is None:  # timed out while the pool started
            return sample.replay()
        return self._run(sampled, plan)

    # --- the phases --------------------------------------------------------------------------

    def _sample(self, publish: Callable[[Any], None] | None, known: Known) -> _Sampled:
        """The first items, run here and timed (and, if a pool is warm and fn's items were
        costly last time, the next ones sent ahead to it meanwhile)."""
        rt, fn = self._rt, self._fn
        if rt.strict and (problem := pickling_problem(fn)) is not None:
            raise TypeError(problem)
        ahead = send_ahead(rt, self._request, known)
        if ahead is None:
            # No limit=total: the sampler then sees the end of a short input itself (one more
            # next()), and the input-ended branch answers without reading the machine
            # (~0.3 ms of loky.cpu_count on a first call).
            waited = known.mostly_waited(rt.settings.waiting_cpu_fraction)
            sample = rt.sampler.run(
                fn, self._iterators, publish=publish, waiting_items=1 if waited else None
            )
        else:
            sample = rt.sampler.run(fn, ahead.first, limit=1, publish=publish)
        rt.planner.remember(fn, sample.stats)
        if rt.strict and sample.stats is not None:
            sample.stats = rt.sampler.measure_pickling(sample, sample.stats)
            if not sample.stats.picklable:
                raise TypeError(sample.stats.unpicklable_reason)
        sent = () if ahead is None or ahead.stream is None else (ahead.stream,)
        sent_count = 0 if ahead is None else ahead.count
        total = self._total
        remaining = None if total is None else total - sample.ran - sent_count
        return _Sampled(sample, sent, sent_count, remaining, "" if ahead is None else ahead.note)

    def _plan(self, sampled: _Sampled, stats: SampleStats) -> _Plan | None:
        """The decision for the rest; a cold pool it wants starts now, in the background if a
        core is left to this process (``None``: the consumer timed out meanwhile)."""
        rt, options, remaining = self._rt, self._options, sampled.remaining
        horizon = remaining if remaining is not None else sampled.sample.ran
        decide_now = functools.partial(
            rt.planner.decide,
            stats,
            horizon,
            options.chunksize,
            sampled.sample,
            length_known=remaining is not None,
        )
        decision, profile, stats = decide_now()
        starting = None
        if decision.lane == "process" and not rt.processes.is_warm(decision.workers):
            starting = rt.processes.start(decision, profile)
            if starting.answered.done():  # it waited (no core to spare): plan on the running pool
                decision, profile, stats = decide_now()
                starting.lease.release()
                if decision.lane == "process":
                    decision, profile = starting.as_planned(decision, profile)
                    decision = replace(decision, reason=starting.decision.reason)
                starting = None
        if not self._wanted():  # the lease goes back unused
            if starting is not None:
                starting.lease.release()
            return None
        if sampled.sent:
            count = sampled.sent_count
            decision = replace(
                decision,
                reason=f"{count} item{'s' if count > 1 else ''} sent ahead to "
                f"{sampled.sent_to} while the first was sampled; {decision.reason}",
            )
        warm_up_after = 0
        if decision.lane == "serial" and remaining is not None and not rt.closed:
            warm_up_after = rt.planner.forgo(
                stats, profile, horizon, chunksize=options.chunksize, sample=sampled.sample
            )
            if warm_up_after:
                decision = replace(
                    decision,
                    reason=decision.reason + "; a warm pool would have paid for its start over "
                    "this executor's calls: it starts after this run (rent-or-buy)",
                )
        learn(rt, self._fn, stats)
        rt.record(
            "map",
            self._fn,
            decision,
            stats=stats,
            profile=profile,
            total=self._total,
            remaining=remaining,
        )
        return _Plan(decision, starting, warm_up_after)

    def _run(self, sampled: _Sampled, plan: _Plan) -> Iterator[Any]:
        """The sample's results, then the rest in the planned lane; in-process runs re-plan."""
        decision = plan.decision
        if decision.lane != "serial" and plan.starting is None:
            args = zip(*self._iterators, strict=False)  # what the sample left
            tail = self._tail(args, decision, sampled.sample.stats, sampled.remaining)
            return itertools.chain(sampled.sample.replay(), *sampled.sent, tail)
        batches = self._in_process(
            sampled.sample,
            sampled.remaining,
            starting=plan.starting,
            sent=sampled.sent,
            warm_up_after=plan.warm_up_after,
        )
        return itertools.chain.from_iterable(batches)

    def _in_process(
        self,
        sample: Sample,
        remaining: int | None,
        *,
        starting: PoolStart | None,
        sent: tuple[Iterator[Any], ...],
        warm_up_after: int,
        won_before: bool = False,
    ) -> Iterator[Iterator[Any]]:
        """The serial lane in batches, re-planned between them: each time the work done has
        doubled (and when it reaches a pool start, for inputs without a length), and while a
        pool starts, every ``start_poll_s``: the rest moves to the pool once the pool has
        answered, if it still pays."""
        rt, fn = self._rt, self._fn
        s = rt.settings
        stats = sample.stats
        if sample.kept_args:  # measure what re-checks need now, so that nothing delivered is kept
            if stats is not None and stats.picklable:
                stats = rt.sampler.measure_pickling(sample, stats)
            sample.forget_kept()
        yield sample.replay()
        yield from sent  # results of items sent ahead to the pool during the sample
        done = sampled = stats.items if stats else 0
        spent_s = stats.work_s if stats else 0.0
        # CPU time too: a re-check that set the run's wall time against the sample's CPU time
        # saw heterogeneous CPU items "wait" (lognormal 0.1-20 ms: "36%") and chose threads.
        spent_cpu_s = stats.cpu_s * done if stats else 0.0
        next_check_s = max(s.recheck_first_s, 2.0 * spent_s)
        per_item_s = stats.compute_s if stats else 0.0
        cpu_item_s = stats.cpu_s if stats else 0.0
        single = len(self._iterators) == 1
        source: Iterator[Any] = (
            self._iterators[0] if single else zip(*self._iterators, strict=False)
        )
        # Items that used several cores (BLAS): a batch on threads, against the sample's pace;
        # all of the map, if their trial won in an earlier run (``threads_first``).
        tried = 0
        if won_before:
            tried = remaining or 0
        elif starting is None:
            tried = trial_items(rt, fn, stats, remaining, per_item_s)
        if tried and remaining is not None:
            trial = ThreadTrial(rt, fn, tried, per_item_s, planned=won_before)
            options = self._options
            if (yield from trial.take_or_hand_back(source, single, stats, remaining, options)):
                return
            # The trial's items (and the one handed back) count at the serial pace, not at the
            # pace of the threads that lost: read at their wall time (BLAS threads of two items
            # fighting for the cores), a solve's ~0.55 ms read 0.70-0.77 ms, and the next
            # re-check bought a pool "1.25-1.93x" that ran at 0.56-0.74x the loop (numpy_linalg
            # warm, 2 rounds of 5).
            done += trial.at_serial_pace
            spent_s += per_item_s * trial.at_serial_pace
            spent_cpu_s += cpu_item_s * trial.at_serial_pace
        # A batch counts as ``size`` items: with a length known, the last one holds what is
        # left; without, it may have found the end sooner, so what fn's next map assumes comes
        # from the batches before it (counted as 223 for 178, 1 ms items read 0.92 ms).
        before_last = per_item_s, cpu_item_s
        try:
            while True:
                until_s = s.start_poll_s if starting is not None else next_check_s - spent_s
                size = _batch_size(until_s, per_item_s, s.serial_batch_max_items)
                if remaining is not None:
                    size = max(1, min(size, remaining - (done - sampled)))
                batch = rt.serial.batch(fn, source, size, single=single)
                if batch is None:  # the input has ended
                    if stats is not None and done > sampled:  # what fn's next map assumes
                        item_s, cpu_s = (
                            (per_item_s, cpu_item_s) if remaining is not None else before_last
                        )
                        learn(rt, fn, replace(stats, compute_s=item_s, cpu_s=cpu_s))
                    if starting is not None:
                        self._record_input_ended(starting, done - sampled)
                    elif warm_up_after and not rt.closed:
                        rt.processes.warm_up(warm_up_after)
                    return
                before_last = per_item_s, cpu_item_s
                started, cpu_started = time.perf_counter(), rt.cpu_clock()
                yield from batch
                spent_s += time.perf_counter() - started
                spent_cpu_s += rt.cpu_clock() - cpu_started
                done += size
                per_item_s, cpu_item_s = spent_s / done, spent_cpu_s / done
                if stats is None or not stats.picklable or not self._wanted():
                    continue
                if starting is None and spent_s < next_check_s:
                    continue
                if starting is not None and not starting.answered.done():
                    continue
                left = None if remaining is None else remaining - (done - sampled)
                if left is not None and left <= 0:
                    continue
                next_check_s = 2.0 * spent_s
                if left is None:  # also check when the rent paid reaches the price of a pool
                    start_s = rt.processes.profile().spawn_s(2)
                    if spent_s < start_s:
                        next_check_s = min(next_check_s, start_s)
                horizon = left if left is not None else _cost_model.horizon_for_unknown_length(done)
                decide_now = functools.partial(
                    rt.planner.decide,
                    replace(stats, compute_s=per_item_s, cpu_s=cpu_item_s, items=done),
                    horizon,
                    self._options.chunksize,
                    sample,
                    length_known=left is not None,
                    spent_s=spent_s,
                )
                decision, profile, stats = decide_now()
                logger.debug(
                    "map(%s) re-check after %d items, %.3f s here: %s - %s",
                    self._name,
                    done,
                    spent_s,
                    decision.lane,
                    decision.reason,
                )
                if decision.lane == "serial":
                    if starting is not None:  # cheaper than it looked: stay; the pool stays warm
                        starting.lease.release()
                        starting = None
                    continue
                if (
                    decision.lane == "process"
                    and starting is None
                    and not rt.processes.is_warm(decision.workers)
                ):
                    starting = rt.processes.start(decision, profile, mid_run=True)
                    if not starting.answered.done():
                        continue  # items go on here until a worker answers
                    decision, profile, stats = decide_now()  # on the running pool
                    if decision.lane == "serial":
                        starting.lease.release()
                        starting = None
                        continue
                reason = decision.reason
                if starting is not None and decision.lane == "process":
                    decision, profile = starting.as_planned(decision, profile)
                    reason = f"pool started while {done - sampled} more items ran here; {reason}"
                if starting is None or starting.mid_run:
                    reason = "switched mid-run: " + reason
                decision = replace(decision, reason=reason)
                rt.record(
                    "map", fn, decision, stats=stats, profile=profile, total=None, remaining=left
                )
                args = source if not single else zip(source)
                yield self._tail(args, decision, stats, left)
                return
        finally:
            if starting is not None:
                starting.lease.release()

    def _tail(
        self,
        args: Iterator[tuple[Any, ...]],
        decision: Decision,
        stats: SampleStats | None,
        left: int | None,
    ) -> Iterator[Any]:
        """The rest (``left`` items, if known) in the decided lane; a pool's first chunks
        correct the chunk size and what fn's later maps assume (``LessonFromWorkers``)."""
        rt, options = self._rt, self._options
        if decision.lane != "process" or stats is None:
            return rt.lane(decision.lane).run(self._fn, args, decision, options)
        lesson = LessonFromWorkers(rt, self._fn, stats, decision, options=options, remaining=left)
        return rt.processes.run(self._fn, args, decision, options, observer=lesson)

    def _record_input_ended(self, starting: PoolStart, ran: int) -> None:
        """The input ended before the pool answered: everything ran in-process after all."""
        why = f"the input ended ({ran} more items ran here) before the pool had started"
        serial = Decision.serial(why, speedup_at_two=starting.decision.speedup_at_two)
        self._rt.revise(self._fn, serial)


@dataclass
class _Sampled:
    """What the sample phase leaves: the sample, results of items sent ahead, items left."""

    sample: Sample
    sent: tuple[Iterator[Any], ...]  # results of items sent ahead to a pool, in order
    sent_count: int
    remaining: int | None  # items left after both (None: the input has no length)
    sent_to: str  # where the items sent ahead went, in words


@dataclass
class _Plan:
    """What the plan phase decided, and the pool it is starting for it (if cold)."""

    decision: Decision
    starting: PoolStart | None
    warm_up_after: int  # workers of a pool to start once this in-process run ends (0: none)


def _always() -> bool:
    return True


def _batch_size(seconds: float, per_item_s: float, most: int) -> int:
    """Items that take about ``seconds`` (the time until the next re-check)."""
    if per_item_s <= 0:
        return most
    return max(1, min(most, int(seconds / per_item_s)))
