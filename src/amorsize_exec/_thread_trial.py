"""A serial run's trial of the thread lane, for items that ran on several cores (BLAS).

The cost model counts an item's CPU time as holding the GIL (``_cost_threads``), so it never
sends CPU work to threads. Items that spend their time in BLAS or LAPACK mostly release it:
200 x (a 200x200 matmul and solve) took 119 ms as a loop and 68-82 ms on
``ThreadPoolExecutor(2)`` (2 cores, one warm process, medians of 6-7 interleaved rounds),
where a process pool did not beat the loop (a worker gets one BLAS thread; the parent's spin
on). Whether they do cannot be read from the sample: two items started at once on two threads,
the test a sample could afford, took 1.5-2.8x one item's time for that function (and 1.5-2.2x
for pure-Python items), thread wake-ups being as long as a sub-millisecond item.

So a serial run whose sample timed an item on one BLAS thread (``single_thread_s``: the items
used several cores) runs the next ``thread_trial_s`` of work on one thread per core, and keeps
the threads for the rest if they went ``min_speedup`` times faster per item than the sample.
Their pace is read from the first result on: counted from the start, the threads' start and
first chunks made a 1.5x gain read 1.07-1.37x. A trial stops feeding its threads once it can no
longer win; the threads of one that won run the rest (new ones would pay their first BLAS calls
again) until their pace, judged once more (``_thread_pace``), falls behind the serial one; then,
as after a lost trial, the next item comes back to the caller's thread (BLAS's threads settle).
Outcomes are remembered across runs (the profile store): after a win, the script's next run
sends all of the map to threads unsampled (``_head_start.threads_first``); after k losses in a
row, its next 2**(k-1) - 1 runs do not try.

Where threads lose, the trial costs that batch's slowdown: warm, maps of solves that tried ran
20-31 ms behind their ~75 ms loop, and those that did not (items too quick for a trial to stay
under a quarter of them) 1-3 ms. So a function whose trials lost k times in a row
runs its next 2**k - 1 maps untried (``TrialOutcomes``): over many maps, a trial in a
logarithmic few. BLAS keeps its threads: limiting them (threadpoolctl) is process-wide and
would last as long as the consumer holds the map, for ~7% (76 against 82 ms on 2 threads).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ._cost_model import format_seconds, format_speedup
from ._decision import Decision, callable_name
from ._thread_pace import PaceJudge

if TYPE_CHECKING:
    from ._lanes import MapOptions
    from ._runtime import Runtime
    from ._stats import SampleStats

logger = logging.getLogger(__name__)
_END = object()


def trial_threads(rt: Runtime) -> int:
    """One thread per core the user allows (``max_workers`` caps threads here as it caps
    workers: the trial stands in for a pool), within the thread lane's cap. The probe's
    profile, not the process lane's: whether a pool would fork costs a scan of the process's
    libraries (threadpoolctl: 5-8 ms, cold) that a map which opens with a trial and wins
    (``_head_start.threads_first``) never needs."""
    cores = rt.processes.worker_cap(rt.probe.profile())
    return min(rt.settings.thread_lane_max_threads, cores)


def trial_items(
    rt: Runtime,
    fn: Callable[..., Any],
    stats: SampleStats | None,
    left: int | None,
    item_s: float,
) -> int:
    """How many items the trial runs on threads (0: no trial). Only for items timed on one
    BLAS thread (they ran on several cores), a known number left, work enough
    (``affordable_trial``), and a map whose turn it is (``TrialOutcomes``: asking counts this
    map as one untried when it is not; the executor's first map of ``fn`` also asks the
    profile store whether earlier runs' losses leave this run untried)."""
    if stats is None or stats.single_thread_s <= 0 or left is None:
        return 0
    items = affordable_trial(rt, left, item_s)
    return items if items and rt.trials.due(fn, rt.profiles.trial_due_this_run) else 0


def affordable_trial(rt: Runtime, left: int, item_s: float) -> int:
    """Items that ``thread_trial_s`` of work holds at ``item_s`` an item (4 at least), if
    they are at most ``thread_trial_max_part`` of the ``left`` and threads may run (0: no
    trial)."""
    s = rt.settings
    if item_s <= 0 or s.thread_trial_s <= 0 or trial_threads(rt) < 2:
        return 0
    items = max(4, math.ceil(s.thread_trial_s / item_s))
    return 0 if items > s.thread_trial_max_part * left else items


class ThreadTrial:
    """Runs ``items`` of ``fn``'s remaining arguments on one thread per core, timed, against
    the serial run's ``item_s`` per item; then ``decision`` says whether the rest goes there."""

    def __init__(
        self,
        rt: Runtime,
        fn: Callable[..., Any],
        items: int,
        item_s: float,
        *,
        planned: bool = False,
    ) -> None:
        self._rt, self._fn, self.items, self._item_s = rt, fn, items, item_s
        # All of a map sent to threads by a remembered win (``_head_start.threads_first``):
        # its items stop going there only if the threads fall behind the serial pace
        # (``_keeping_pace``), as a won trial's rest does.
        self._planned = planned
        self._says_threads = planned  # the map's record: a loss revises it to serial
        self._judge: PaceJudge | None = None
        self.stopped = False  # a planned trial's threads fell behind: the rest runs here
        self.threads = trial_threads(rt)
        self.ran = 0
        self.at_serial_pace = 0  # items the serial run counts at its own pace, not as timed
        self.wall_s = 0.0
        self.failed = False
        self._first_s = self._steady_s = 0.0
        self._chunk = 1
        self._verdict = "no result"  # the trial's figures, in words (``decision``)
        # The trial's threads run the rest if it wins: new ones paid their first BLAS calls
        # again (cold solves: the rest's 10th result 21 ms after the switch, against 5.5 ms).
        self._threads: ThreadPoolExecutor | None = None

    def run(self, args: Iterator[tuple[Any, ...]], options: MapOptions) -> Iterator[Any]:
        """The results of the next ``items`` of ``args`` (no more is read), in order; the
        consumer's time counts, as for serial batches. Items stop going to the threads once
        they can no longer win (``_while_winnable``), or, planned, once they fall behind the
        serial pace (``_keeping_pace``)."""
        self._chunk = self._chunksize(self.items)
        plan = Decision("thread", self.threads, self._chunk, 1.0, 1.0, "trial")
        started = time.perf_counter()
        some = itertools.islice(args, self.items)
        trial_args: Iterator[tuple[Any, ...]]
        if self._planned:
            judge = self._judge = PaceJudge(
                self._rt.settings.thread_trial_s, self._item_s, self.threads, self._chunk
            )
            trial_args = self._keeping_pace(some, judge)
        else:
            trial_args = self._while_winnable(some)
        for result in self._counted(self.on_threads(trial_args, plan, options)):
            if self.ran == 1:
                self._first_s = time.perf_counter()
            yield result
        self.wall_s = time.perf_counter() - started
        self._steady_s = time.perf_counter() - self._first_s
        if self.ran < self.items and not self._planned:
            logger.debug(
                "thread trial of %s: stopped after %d of %d items on %d threads (%s): it could "
                "no longer reach %.2gx",
                callable_name(self._fn),
                self.ran,
                self.items,
                self.threads,
                format_seconds(self.wall_s),
                self._rt.settings.min_speedup,
            )

    def _while_winnable(self, args: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        """``args`` until the trial has spent, from its first result on, the time its steady
        items take serially over ``min_speedup``: past that, its verdict is lost whatever the
        rest does. Threads that lose can be far slower than the loop: two threads of cold
        solves ran at 0.36-0.5x its pace (a numpy_linalg round whose trial lost took 186 ms
        against 128 ms for the loop; the trial's share of that was not measured). No item is
        read and dropped: the budget is checked before each is read."""
        steady_items = max(1, self.items - self.threads * self._chunk)
        budget_s = steady_items * self._item_s / self._rt.settings.min_speedup
        while not (self._first_s and time.perf_counter() - self._first_s > budget_s):
            item: Any = next(args, _END)
            if item is _END:
                return
            yield item

    def _counted(self, results: Iterator[Any]) -> Iterator[Any]:
        """``results``, each counted (``ran``) and told to the pace judge, if any."""
        try:
            for result in results:
                self.ran += 1
                if self._judge is not None:
                    self._judge.came(1)
                yield result
        except BaseException:
            self.failed = True  # the map ends here, as a thread lane's does at an exception
            raise

    def _keeping_pace(
        self, args: Iterator[tuple[Any, ...]], judge: PaceJudge
    ) -> Iterator[tuple[Any, ...]]:
        """``args`` unless the threads, judged once (``PaceJudge``), fell behind the serial
        pace: then no more is read (``stopped``), and the rest runs here at the loop's pace
        (a worker thread running one chunk at a time ran cold SVDs 15% behind it). No item is
        read and dropped: the verdict is checked before each is read."""
        while judge.speedup is None or judge.speedup >= 1.0:
            item: Any = next(args, _END)
            if item is _END:
                return
            yield item
        self.stopped = True
        self._verdict = judge.verdict
        logger.debug("threads of %s: %s: no more items", callable_name(self._fn), judge.verdict)

    def outcome(self, left: int) -> tuple[bool, Decision | None]:
        """Whether the threads won, and the plan for the ``left`` items after the trial (none
        for a planned trial: its items were all the map's)."""
        if self._planned:
            return not self.stopped, None
        switch = self.decision(left)
        return switch is not None, switch

    def take_or_hand_back(
        self,
        source: Iterator[Any],
        single: bool,
        stats: SampleStats | None,
        left: int,
        options: MapOptions,
    ) -> Generator[Iterator[Any], None, bool]:
        """Runs the trial on the next items of ``source`` (items if ``single``, else argument
        tuples); if the threads won, the rest goes there, until they fall behind the serial
        pace (``_keeping_pace``). Otherwise, or then, the next item runs here,
        counted at the serial pace with the trial's (``at_serial_pace``): the first solve back
        on the caller's thread took 15-24 ms, against ~0.6 ms, in 6-9 of 30 fresh interpreters,
        and later ones never passed 3 ms (``python -m benchmarks.blas_settle``: OpenBLAS's
        threads settling). Timed, that one item made the next re-check read a 0.55 ms pace as
        1.0-1.2 ms and buy a pool that ran at 0.76x the loop (numpy_linalg and svd_100, cold,
        2 rounds of 5 each). Returns True if the map has ended here (all of it ran, or an item
        raised)."""
        rt = self._rt
        args = zip(source) if single else source
        try:
            yield self.run(args, options)
            if self.failed:
                return True
            rest = left - self.ran
            won, switch = self.outcome(rest)
            serial = None if stats is None else replace(stats, compute_s=self._item_s)
            self._record(won, switch, serial)
            if won and switch is None:
                return True  # a planned trial: all of the map ran on threads
            if switch is not None:
                switch = replace(switch, reason="switched mid-run: " + switch.reason)
                profile = rt.processes.profile()
                rt.record(
                    "map",
                    self._fn,
                    switch,
                    stats=stats,
                    profile=profile,
                    total=None,
                    remaining=rest,
                )
                # The rest on the same threads, judged once more (``_thread_pace``).
                self._says_threads = True
                judge = self._judge = PaceJudge(
                    rt.settings.thread_trial_s, self._item_s, self.threads, switch.chunksize
                )
                rest_args = self._keeping_pace(args, judge)
                yield self._counted(self.on_threads(rest_args, switch, options))
                if self.failed or not self.stopped:
                    return True
                self._record(False, None, serial)
        finally:
            self.close()
        self.at_serial_pace = self.ran
        back = rt.serial.batch(self._fn, source, 1, single=single)
        if back is not None:
            self.at_serial_pace += 1
            yield from back
        return False

    def on_threads(
        self, args: Iterator[tuple[Any, ...]], decision: Decision, options: MapOptions
    ) -> Iterator[Any]:
        """``fn`` over ``args`` on the trial's threads, started on first use (``close`` ends
        them)."""
        if self._threads is None:
            self._threads = self._rt.threads.new_threads(self.threads)
        results = self._rt.threads.run(self._fn, args, decision, options, threads=self._threads)
        try:
            yield from results
        finally:
            close = getattr(results, "close", None)  # the consumer may leave midway
            if close is not None:
                close()

    def close(self) -> None:
        """Ends the trial's threads (they finish a chunk under way, if any, then exit)."""
        threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=False)

    def _record(self, won: bool, switch: Decision | None, serial: SampleStats | None) -> None:
        """The outcome, for this executor's later maps and later runs (the profile store);
        a loss once the map's record says threads revises it to serial."""
        rt = self._rt
        rt.trials.record(self._fn, won=won)
        if not won:
            rt.profiles.remember_thread_loss(self._fn, serial)
            if self._says_threads:
                rt.revise(self._fn, Decision.serial(self.lost_why()))
        elif switch is not None and serial is not None:
            rt.profiles.remember_thread_win(self._fn, serial, switch.predicted_speedup)

    def lost_why(self) -> str:
        """Why the rest runs here after a lost trial, in words."""
        if self.stopped:
            return f"{self._verdict}: the rest runs here"
        if self.ran < self.items:
            return (
                f"threads lost their trial: stopped after {self.ran} of {self.items} items, "
                f"too slow to reach {self._rt.settings.min_speedup:.2g}x against "
                f"{format_seconds(self._item_s)} an item serially; the rest runs here"
            )
        return f"threads lost their trial: {self._verdict}; the rest runs here"

    def decision(self, left: int) -> Decision | None:
        """Threads for the ``left`` items after the trial, if it ran ``min_speedup`` times
        faster per item than the sample; else ``None``."""
        if self.ran < self.items or self.wall_s <= 0 or left <= 0:
            return None
        # From the first result on: the threads' start is paid once a map. By then each
        # thread has about finished its first chunk.
        steady = self.ran - self.threads * self._chunk
        trial_item_s = self._steady_s / steady if steady > 0 else self.wall_s / self.ran
        speedup = self._item_s / trial_item_s
        ratio = format_speedup(speedup, self._rt.settings.min_speedup)
        self._verdict = (
            f"{self.ran} items on {self.threads} threads took {format_seconds(trial_item_s)} "
            f"each against {format_seconds(self._item_s)} here ({ratio})"
        )
        logger.debug("thread trial of %s: %s", callable_name(self._fn), self._verdict)
        if speedup < self._rt.settings.min_speedup:
            return None
        per_thread = left / (self.threads * self._rt.settings.chunks_per_worker)
        return Decision(
            "thread",
            self.threads,
            self._chunksize(per_thread * self.threads),
            speedup,
            speedup,
            f"items release the GIL: {self._verdict}",
        )

    def _chunksize(self, items: float) -> int:
        return thread_chunksize(self._rt, self._item_s, items, self.threads)


def thread_chunksize(rt: Runtime, item_s: float, items: float, threads: int) -> int:
    """About ``thread_target_chunk_s`` of work a chunk, and at least one chunk a thread for
    ``items`` items."""
    by_time = round(rt.settings.thread_target_chunk_s / item_s) if item_s > 0 else 1
    return max(1, min(by_time, int(items / threads)))
