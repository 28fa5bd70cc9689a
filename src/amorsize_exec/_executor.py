"""``AutoExecutor``: a ``ProcessPoolExecutor`` that measures before it parallelises.

Data flow of one ``map`` call (orchestration only; the arithmetic is in ``_cost_model``)::

    map(fn, *iterables)
      │ check arguments and state; args = zip(*iterables) stays lazy
      ├─ isolated (isolate, initializer, lane="process"): _isolated_stream, nothing runs here
      ├─ timeout: what follows runs on a DeadlineStream thread (_here)
      ▼
    _send_ahead ── fn costly last time and a pool warm: items 2..P go to the pool now
      ▼
    Sampler.run ── first items in-process, timed; results kept (never re-run)
      ▼
    _decide ── cost_model.decide(stats, probe.profile()); if a pool pays on priors, pickling
      │        is measured, and on a warm pool the round trip (probe.calibrated_profile())
      ├─ serial:  sample replay + built-in map in batches; each time the work done doubles the
      │           decision is re-checked (rent-or-buy: unknown lengths, heavier items than sampled)
      │           and the rest may move to a pool
      ├─ process, pool warm: sample replay + ChunkedMap over a leased loky pool (bounded, ordered)
      └─ process, pool cold: _start_pool; in-process batches meanwhile if a core is left to us,
                  else wait; then decide again and hand the rest to the pool
      ▼
    last_decision (DecisionRecord) + one INFO line on the "amorsize_exec" logger

``submit`` goes through ``SubmitRouter`` (``_submit``): a callable's first call is timed in a
worker; later calls of cheap callables run in-process (``InProcessThreads``), costly ones in the
pool.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import multiprocessing
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, replace
from typing import Any

from . import _cost_model
from ._backends import (
    ChunkedMap,
    ChunkObserver,
    PoolLease,
    PoolSource,
    PoolSpec,
    PrivatePool,
    SharedPool,
    WorkerPools,
    wait_quietly,
)
from ._backends import default_pools as _default_pools
from ._config import LANES, Lane, Settings, in_worker_process
from ._deadline import DeadlineStream
from ._decision import Decision, DecisionRecord, callable_name
from ._machine import MachineProbe, MachineProfile, default_probe
from ._progress import Progress, check_progress, with_progress
from ._sampler import Sample, Sampler, SampleStats, pickling_problem
from ._submit import SubmitRouter
from ._worker_sample import WorkerSample

logger = logging.getLogger(__name__)
_END = object()


#: A map's in-process pipeline, given its options and where sampled results go at once
#: (``None``: kept for the replay).
_InProcessStream = Callable[["_MapOptions", "Callable[[Any], None] | None"], Iterator[Any]]


@dataclass(frozen=True)
class _MapOptions:
    """What one ``map`` call asked for, carried to whichever lane runs it."""

    deadline: float | None  # time.monotonic() by which each result must be ready
    chunksize: int | None  # the caller's, or None to let the cost model choose
    buffersize: int | None  # most items in flight, or None for our window

    def window(self, decision: Decision, settings: Settings) -> int:
        """Chunks in flight: ``buffersize`` items if given, else a few chunks per worker."""
        if self.buffersize is not None:
            return max(1, -(-self.buffersize // decision.chunksize))
        return decision.workers * settings.chunks_in_flight_per_worker


class AutoExecutor(Executor):
    """Drop-in for ``concurrent.futures.ProcessPoolExecutor`` that is never slower than a loop.

    Args:
        max_workers: most worker processes to use (default: usable CPUs).
        mp_context: a ``multiprocessing`` context; its start method is used for workers.
        initializer: called in each worker at start (the pool is then private to this executor).
        initargs: arguments for ``initializer``.
        max_tasks_per_child: restart workers after this many tasks (Python >= 3.11; the pool is
            then a private stdlib ``ProcessPoolExecutor``).
        lane: ``"auto"`` (measure and decide), ``"serial"`` or ``"process"`` (forced; in the
            process lane the model still sizes chunks, from the first items timed in workers).
        isolate: never run ``fn`` in this process: ``map`` times its first items in the
            workers and the model picks worker count and chunk size from them; every
            ``submit`` runs in a worker. Implied by ``initializer`` (``fn`` must not run where
            it has not run) and by ``lane="process"``.
        strict: if a function or argument cannot be pickled, raise ``TypeError`` naming it
            instead of running serially (the default, logged and kept in ``last_decision``).
        settings: tunables; default ``Settings.from_env()``.
        probe: machine probe; default the process-wide ``SystemProbe``.
        pools: owner of the shared warm pools; default the process-wide one.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        mp_context: Any = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_child: int | None = None,
        lane: Lane = "auto",
        isolate: bool = False,
        strict: bool = False,
        settings: Settings | None = None,
        probe: MachineProbe | None = None,
        pools: WorkerPools | None = None,
    ) -> None:
        _check_constructor_args(
            max_workers, mp_context, initializer, max_tasks_per_child, lane, isolate=isolate
        )
        self._max_workers = max_workers
        self._lane = lane
        # fn never runs here: the workers' setup (initializer) is not this process's.
        self._isolated = bool(isolate) or initializer is not None or lane == "process"
        self._strict = strict
        self._settings = settings or Settings.from_env()
        self._probe = probe or default_probe()
        # Found on first use (pool_source): a map whose sample covers its input never needs
        # the shared pools, and making them reads the environment again (~0.1 ms).
        self._pools: WorkerPools | None = pools
        self._start_method: str = mp_context.get_start_method() if mp_context else "loky"
        self._private: PrivatePool | None = None
        if initializer is not None or max_tasks_per_child is not None:
            self._private = PrivatePool(
                max_workers or self._probe.profile().usable_cpus,
                mp_context=mp_context,
                initializer=initializer,
                initargs=initargs,
                max_tasks_per_child=max_tasks_per_child,
            )
        self._nested = in_worker_process() or multiprocessing.current_process().daemon
        self._lock = threading.Lock()
        self._shutdown = False
        self._streams: weakref.WeakSet[ChunkedMap] = weakref.WeakSet()
        self._sampler = Sampler(self._settings)
        self._router = SubmitRouter(self)
        self._last_decision: DecisionRecord | None = None
        #: What a warm pool would have saved this executor's serial runs since the last start.
        self._forgone_s = 0.0
        self._forgone_runs = 0
        #: Mean item time of each callable's last map (weakly held), for ``_send_ahead``.
        self._item_s: weakref.WeakKeyDictionary[Callable[..., Any], float] = (
            weakref.WeakKeyDictionary()
        )

    # --- public API -----------------------------------------------------------------------

    @property
    def last_decision(self) -> DecisionRecord | None:
        """The most recent decision of ``map`` or ``submit`` (``None`` before the first)."""
        return self._last_decision

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = None,
        buffersize: int | None = None,
        progress: Progress = None,
    ) -> Iterator[Any]:
        """Ordered results of ``fn`` over ``zip(*iterables)``, like ``ProcessPoolExecutor.map``.

        Input is read lazily with bounded look-ahead (an endless generator works), as with
        ``buffersize`` in Python 3.14; work starts at the call. An exception raised by ``fn``
        for item *i* is raised when the consumer reaches position *i*. ``timeout`` counts from
        this call. ``chunksize=None`` lets the cost model choose. ``progress=True`` draws a
        tqdm bar (the ``progress`` extra), a callable gets ``(done, total)`` as results are
        delivered (``total`` is ``None`` for an input without a length).
        """
        _check_map_args(fn, timeout, chunksize, buffersize)
        check_progress(progress)
        options = _MapOptions(
            None if timeout is None else time.monotonic() + timeout, chunksize, buffersize
        )
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
        iterators = [iter(it) for it in iterables]
        if not iterators:
            return iter(())
        total = _known_length(iterables)
        results = self._map(fn, iterators, total, options)
        return with_progress(results, progress, total, self._lane_text)

    def _lane_text(self) -> str | None:
        """Where the last decision runs the items, for a progress bar (``None`` before one)."""
        record = self._last_decision
        return None if record is None else record.lane_text

    def _map(
        self,
        fn: Callable[..., Any],
        iterators: list[Iterator[Any]],
        total: int | None,
        options: _MapOptions,
    ) -> Iterator[Any]:
        """``map`` once its arguments are checked: the lane that runs it."""
        name = callable_name(fn)
        if self._isolated and not self._nested:
            return self._isolated_stream(fn, iterators, total=total, options=options, name=name)
        if self._nested or self._lane == "serial":
            why = "nested inside a worker process" if self._nested else "lane='serial' was asked"
            self._record(
                "map",
                name,
                Decision.serial(why),
                stats=None,
                profile=None,
                total=total,
                remaining=total,
                forced=True,
            )
            return self._here(
                options,
                lambda o, _: self._serial_stream(fn, iterators, Sample(), None, o, adapt=False),
            )
        return self._here(
            options,
            lambda o, publish: self._auto_stream(fn, iterators, total, o, name, publish=publish),
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)``; returns a ``Future`` at once.

        The task never runs on the caller's thread: cheap callables run on one in-process
        thread, costly ones in the pool (decided per callable from its measured calls).
        """
        if not callable(fn):
            raise TypeError(f"{type(fn).__name__!r} object is not callable")
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            return self._router.submit(fn, args, kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; optionally cancel what has not started; optionally wait.

        Shared warm pools are not stopped (other executors may be using them); a private pool
        is, once its last map ends. Maps already under way go on to the end (input keeps
        being read as consumed). With ``cancel_futures``, a map running in the pool stops
        submitting: its positions not yet started raise ``CancelledError``; a map running
        in-process is not cancelled (it runs on the consumer's thread, as it is consumed).
        """
        with self._lock:
            self._shutdown = True
            streams = list(self._streams) if self._streams else []  # iterating costs ~30 us
        if cancel_futures:
            for stream in streams:
                stream.cancel()
        self._router.shutdown(wait=wait, cancel_futures=cancel_futures)
        if wait:
            for stream in streams:
                for future in stream.in_flight():
                    wait_quietly(future)
        if self._private is not None:
            self._private.shutdown(wait=wait)

    # --- collaborators of SubmitRouter ----------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def probe(self) -> MachineProbe:
        return self._probe

    def pool_source(self, workers: int) -> PoolSource:
        """The pool work of ``workers`` processes runs on (private if the setup is ours only)."""
        if self._private is not None:
            return self._private
        return SharedPool(self._shared_pools(), PoolSpec(workers, self._start_method))

    def _shared_pools(self) -> WorkerPools:
        """The shared pools, found on first use (see ``__init__``)."""
        if self._pools is None:
            self._pools = _default_pools()
        return self._pools

    def _profile(self, *, calibrated: bool = False) -> MachineProfile:
        """The probe's profile, with the start cost of this executor's next cold pool: forked
        workers answer in ~15 ms, loky's in ~0.24 s (``WorkerPools.forks_new_pools``)."""
        profile = self._probe.calibrated_profile() if calibrated else self._probe.profile()
        if profile.fork_start_s is None or self._private is not None:
            return profile
        forks = self._shared_pools().forks_new_pools(self._start_method)
        return profile.forking() if forks else profile

    def submit_workers(self) -> int:
        """Workers for the pool that ``submit`` uses."""
        return self._worker_cap(self._probe.profile())

    def _warm_workers(self, profile: MachineProfile) -> int:
        """Size of the largest pool this executor may use that is warm now (0 if none)."""
        cap = self._worker_cap(profile)
        return max((w for w in range(2, cap + 1) if self.pool_source(w).is_warm()), default=0)

    def _worker_cap(self, profile: MachineProfile) -> int:
        """Most workers allowed: the user's ``max_workers``, else the usable CPUs."""
        return min(profile.usable_cpus, self._max_workers or profile.usable_cpus)

    @property
    def runs_in_process_only(self) -> bool:
        """True if every call runs in this process: ``lane="serial"``, or nested in a worker
        (a pool there would fork-bomb)."""
        return self._nested or self._lane == "serial"

    @property
    def isolated(self) -> bool:
        """True if ``fn`` never runs in this process (``isolate``, an initializer, or
        ``lane="process"``), unless nested in a worker."""
        return self._isolated and not self._nested

    def machine_profile(self) -> MachineProfile:
        """The machine as the next decision sees it (with this executor's next pool start)."""
        return self._profile()

    def record_submit_decision(self, name: str, decision: Decision) -> None:
        self._record(
            "submit",
            name,
            decision,
            stats=None,
            profile=self._probe.profile(),
            total=None,
            remaining=None,
        )

    # --- the lanes ---------------------------------------------------------------------------

    def _here(self, options: _MapOptions, stream: _InProcessStream) -> Iterator[Any]:
        """A map whose items may run in this process: on the consumer's thread as it reads
        (as fast as a loop); with a timeout, on a thread of its own, so that the deadline holds
        while an item runs here (``DeadlineStream``; the stdlib pool raises at the deadline
        whatever its workers do), its sampled results handed over one by one."""
        if options.deadline is None:
            return stream(options, None)
        untimed = replace(options, deadline=None)
        return iter(DeadlineStream(lambda publish: stream(untimed, publish), options.deadline))

    def _auto_stream(
        self,
        fn: Callable[..., Any],
        iterators: list[Iterator[Any]],
        total: int | None,
        options: _MapOptions,
        name: str,
        *,
        publish: Callable[[Any], None] | None = None,
    ) -> Iterator[Any]:
        """Sample here, decide, run the rest here or in the pool (the module's data flow).
        ``publish``: where sampled results go as they come (``Sampler.run``)."""
        chunksize = options.chunksize
        if self._strict and (problem := pickling_problem(fn)) is not None:
            raise TypeError(problem)
        ahead = self._send_ahead(fn, iterators, options)
        if ahead is None:
            # No limit=total: the sampler then sees the end of a short input itself (one more
            # next()), and the input-ended branch below answers without reading the machine
            # (~0.3 ms of loky.cpu_count on a first call, ~1.6 ms before the probe was split).
            sample = self._sampler.run(fn, iterators, publish=publish)
        else:
            sample = self._sampler.run(fn, ahead.first, limit=1, publish=publish)
        args = zip(*iterators, strict=False)  # what the sample left
        stats = sample.stats
        self._remember(fn, stats)
        if self._strict and stats is not None:
            stats = self._sampler.measure_pickling(sample, stats)
            if not stats.picklable:
                raise TypeError(stats.unpicklable_reason)
        sent = () if ahead is None or ahead.stream is None else (ahead.stream,)
        sent_count = 0 if ahead is None else ahead.count
        remaining = None if total is None else total - sample.ran - sent_count
        if sample.error is not None or sample.exhausted or stats is None:
            done = "the input ended" if sample.error is None else "an item raised"
            decision = Decision.serial(f"{done} during the sample")
            self._record("map", name, decision, stats=stats, profile=None, total=total, remaining=0)
            # Alone, the replay is a list iterator, which list() copies in one go (10,000
            # results: 51 us; 85 us through a chain; timeit, best of 5).
            return itertools.chain(sample.replay(), *sent) if sent else sample.replay()
        horizon = remaining if remaining is not None else sample.ran
        decide_now = functools.partial(
            self._decide, stats, horizon, chunksize, sample, length_known=remaining is not None
        )
        decision, profile, stats = decide_now()
        starting = None
        if decision.lane == "process" and not self.pool_source(decision.workers).is_warm():
            starting = self._start_pool(decision, profile)
            if starting.answered.done():  # it waited (no core to spare): plan on the running pool
                decision, profile, stats = decide_now()
                starting.lease.release()
                if decision.lane == "process":
                    decision, profile = starting.as_planned(decision, profile)
                    decision = replace(decision, reason=starting.decision.reason)
                starting = None
        if sent:
            decision = replace(
                decision,
                reason=f"{sent_count} item{'s' if sent_count > 1 else ''} sent ahead to the "
                f"warm pool while the first was sampled; {decision.reason}",
            )
        warm_up_after = 0
        if decision.lane == "serial":
            warm_up_after = self._forgo(
                stats, profile, horizon, chunksize=chunksize, sample=sample, remaining=remaining
            )
            if warm_up_after:
                decision = replace(
                    decision,
                    reason=decision.reason + "; a warm pool would have paid for its start over "
                    "this executor's calls: it starts after this run (rent-or-buy)",
                )
        self._record(
            "map", name, decision, stats=stats, profile=profile, total=total, remaining=remaining
        )
        if decision.lane == "process" and starting is None:
            tail = self._pool_stream(fn, args, decision, options)
            return itertools.chain(sample.replay(), *sent, tail)
        return self._serial_stream(
            fn,
            iterators,
            sample,
            remaining,
            options,
            adapt=True,
            starting=starting,
            sent=sent,
            warm_up_after=warm_up_after,
        )

    def _remember(self, fn: Callable[..., Any], stats: SampleStats | None) -> None:
        """Keep the callable's item time for its next map (``_send_ahead``)."""
        if stats is not None:
            with contextlib.suppress(TypeError):  # not weak-referenceable: not remembered
                self._item_s[fn] = stats.compute_s

    def _forgo(
        self,
        stats: SampleStats,
        profile: MachineProfile,
        n: int,
        *,
        chunksize: int | None,
        sample: Sample,
        remaining: int | None,
    ) -> int:
        """Rent-or-buy across calls: add up what a warm pool would have saved the serial runs
        of this executor; once that reaches the start of a pool, over two runs at least, return
        its worker count (the run starts it when done), else 0. A service whose every call is
        too short to pay for a cold pool otherwise never gets a warm one (tiny_x20k, warm: 1.93x
        the best pool). Pickling, free until then, is measured before the pool is bought."""
        if remaining is None or n <= 0 or not stats.picklable or self._shutdown:
            return 0
        workers = self._worker_cap(profile)
        if workers < 2:
            return 0

        def warm_verdict(stats: SampleStats) -> Decision:
            return _cost_model.decide(
                stats,
                profile,
                self._settings,
                n,
                max_workers=self._max_workers,
                warm_workers=workers,
                chunksize=chunksize,
            )

        verdict = warm_verdict(stats)
        if verdict.lane != "process":
            return 0
        saved_s = _cost_model.predict_serial_s(stats, n) * (1.0 - 1.0 / verdict.predicted_speedup)
        with self._lock:
            self._forgone_s += saved_s
            self._forgone_runs += 1
            # Across calls: a script's single map never starts a pool it will not use.
            if self._forgone_runs < 2 or self._forgone_s < profile.spawn_s(verdict.workers):
                return 0
            self._forgone_s, self._forgone_runs = 0.0, 0
        verdict = warm_verdict(self._sampler.measure_pickling(sample, stats))
        return verdict.workers if verdict.lane == "process" else 0

    def _warm_up(self, workers: int) -> None:
        """Start a pool of ``workers`` for later calls, without waiting for it."""
        if self._shutdown:
            return
        lease = self.pool_source(workers).lease()
        try:
            answered = lease.start()
        except BaseException:
            lease.release()
            raise
        answered.add_done_callback(lambda _: lease.release())

    def _send_ahead(
        self, fn: Callable[..., Any], iterators: list[Iterator[Any]], options: _MapOptions
    ) -> _Ahead | None:
        """If ``fn``'s items were costly last time and a pool is warm, send the items after the
        first to it, one per core the sample leaves free, while the first is sampled here: else
        the workers idle through a sample as long as an item (ms200_x8, warm: 1.52x the best
        pool). One per worker would run three processes on 2 cores: the three items end
        together at 1.5 item-times instead of two at one, the sampled time is 1.5x too long,
        and 8 items end at 4.5 item-times instead of 4. If items turned cheap, their results
        come back one round trip (~1 ms) late."""
        try:
            last_item_s = self._item_s.get(fn)
        except TypeError:
            return None
        if last_item_s is None or last_item_s < self._settings.send_ahead_above_s:
            return None
        if options.chunksize is not None:
            return None  # the caller chose how items travel
        profile = self._probe.profile()
        workers = self._warm_workers(profile)
        ahead = min(workers, profile.usable_cpus - 1)
        if ahead < 1:
            return None
        args = zip(*iterators, strict=False)
        first = next(args, None)
        if first is None:
            return _Ahead([iter(()) for _ in iterators], None, 0)
        first_item = [iter((value,)) for value in first]
        items = list(itertools.islice(args, ahead))
        if not items:
            return _Ahead(first_item, None, 0)
        one_each = Decision("process", workers, 1, 1.0, 0.0, "sent ahead")
        return _Ahead(first_item, self._pool_stream(fn, iter(items), one_each, options), len(items))

    def _decide(
        self,
        stats: SampleStats,
        n: int,
        chunksize: int | None,
        sample: Sample,
        *,
        length_known: bool = True,
        spent_s: float = 0.0,
    ) -> tuple[Decision, MachineProfile, SampleStats]:
        """Decide as cheaply as the answer allows: on free pickling and prior pool costs first;
        only if a pool wins even so, measure pickling, then (on a warm pool only: calibrating
        never waits for a start) the machine, deciding again each time. Returns the decision,
        and the profile and stats it rests on.

        ``spent_s``: in-process seconds the run has spent; once an input without a length has
        cost a pool start, the start no longer counts against the pool (rent-or-buy).
        """
        profile = self._profile()
        start_paid = not length_known and spent_s >= profile.spawn_s(2)

        def again() -> Decision:
            return self._decide_on(
                profile, stats, n, chunksize, length_known=length_known, start_paid=start_paid
            )

        decision = again()
        if decision.lane == "process" and not stats.pickling_measured:
            stats = self._sampler.measure_pickling(sample, stats)
            decision = again()
        if (
            decision.lane == "process"
            and not profile.calibrated
            and self.pool_source(decision.workers).is_warm()
        ):
            profile = self._profile(calibrated=True)
            decision = again()
        return decision, profile, stats

    def _decide_on(
        self,
        profile: MachineProfile,
        stats: SampleStats,
        n: int,
        chunksize: int | None,
        *,
        length_known: bool,
        start_paid: bool,
    ) -> Decision:
        return _cost_model.decide(
            stats,
            profile,
            self._settings,
            n,
            max_workers=self._max_workers,
            warm_workers=self._warm_workers(profile),
            chunksize=chunksize,
            length_known=length_known,
            start_paid=start_paid,
        )

    def _start_pool(
        self,
        decision: Decision,
        profile: MachineProfile,
        *,
        mid_run: bool = False,
    ) -> _PoolStart:
        """Start the pool ``decision`` wants. If a core is left to the parent, do not wait: the
        run goes on in-process and hands the rest over once a worker has answered. Otherwise
        wait for the answer: items run here would slow the start more than
        they gain (``_cost_model.parent_share_while_starting``)."""
        lease = self.pool_source(decision.workers).lease()
        try:
            starting = _PoolStart(lease, lease.start(), decision, profile, mid_run)
        except BaseException:
            lease.release()
            raise
        if not _cost_model.parent_share_while_starting(decision.workers, profile, self._settings):
            futures_wait([starting.answered])
        return starting

    def _pool_stream(
        self,
        fn: Callable[..., Any],
        args: Iterator[tuple[Any, ...]],
        decision: Decision,
        options: _MapOptions,
        observer: ChunkObserver | None = None,
    ) -> Iterator[Any]:
        lease = self.pool_source(decision.workers).lease()
        try:
            stream = ChunkedMap(
                lease.submit_chunk,
                fn,
                args,
                chunksize=decision.chunksize,
                window=options.window(decision, self._settings),
                deadline=options.deadline,
                on_close=lease.release,
                on_interrupt=lease.abort,
                observer=observer,
            )
        except BaseException:
            lease.release()
            raise
        with self._lock:
            self._streams.add(stream)
        return iter(stream)

    def _isolated_stream(
        self,
        fn: Callable[..., Any],
        iterators: list[Iterator[Any]],
        *,
        total: int | None,
        options: _MapOptions,
        name: str,
    ) -> Iterator[Any]:
        """Every item in the pool (``isolate``, an initializer, ``lane="process"``). The first
        chunks go out one item each (all workers busy at once), timed in the workers; once
        they are back, the model sizes the rest (``WorkerSample``)."""
        profile = self._profile()
        workers = self._worker_cap(profile)
        forced = self._lane == "process"
        why = "lane='process' was asked" if forced else "isolated: fn never runs in this process"
        first = Decision(
            "process",
            workers,
            options.chunksize or 1,
            1.0,
            0.0,
            f"{why}; the first items are timed in the workers",
        )
        self._record(
            "map",
            name,
            first,
            stats=None,
            profile=profile,
            total=total,
            remaining=total,
            forced=forced,
        )
        sample = WorkerSample(
            fn,
            self._settings,
            self._sampler,
            functools.partial(
                self._plan_isolated, name=name, total=total, options=options, why=why
            ),
            window=options.window(first, self._settings),
        )
        args = zip(*iterators, strict=False)
        return self._pool_stream(fn, args, first, options, observer=sample.observe)

    def _plan_isolated(
        self,
        stats: SampleStats,
        done: int,
        *,
        name: str,
        total: int | None,
        options: _MapOptions,
        why: str,
    ) -> tuple[int, int] | None:
        """Chunk size and window for the rest of an isolated map, from ``done`` items timed in
        the workers (``WorkerSample``); the decision is recorded."""
        remaining = None if total is None else total - done
        if remaining is not None and remaining <= 0:
            return None
        profile = self._profile()
        decision = _cost_model.decide(
            stats,
            profile,
            self._settings,
            done if remaining is None else remaining,
            max_workers=self._max_workers,
            warm_workers=self._worker_cap(profile),
            chunksize=options.chunksize,
            length_known=remaining is not None,
            start_paid=True,
            isolated=True,
        )
        decision = replace(decision, reason=f"{why}; {decision.reason}")
        self._record(
            "map",
            name,
            decision,
            stats=stats,
            profile=profile,
            total=total,
            remaining=remaining,
            forced=self._lane == "process",
        )
        return decision.chunksize, options.window(decision, self._settings)

    def _serial_stream(
        self,
        fn: Callable[..., Any],
        iterators: list[Iterator[Any]],
        sample: Sample,
        remaining: int | None,
        options: _MapOptions,
        *,
        adapt: bool,
        starting: _PoolStart | None = None,
        sent: tuple[Iterator[Any], ...] = (),
        warm_up_after: int = 0,
    ) -> Iterator[Any]:
        """The built-in ``map`` in batches, chained in C: as fast as a plain loop.

        Unlike the stdlib's iterator, this one does not end at an exception: a consumer that
        calls ``next()`` again gets the following items (none is lost or run twice). Ending it
        would need a Python generator around the chain, which costs ~25% on trivial items
        (1,000,000 x ``x*2``: 1.40x the plain loop instead of 1.16x, measured).
        """
        batches = self._serial_batches(
            fn,
            iterators,
            sample,
            remaining,
            options,
            adapt=adapt,
            starting=starting,
            sent=sent,
            warm_up_after=warm_up_after,
        )
        return itertools.chain.from_iterable(batches)

    def _serial_batches(
        self,
        fn: Callable[..., Any],
        iterators: list[Iterator[Any]],
        sample: Sample,
        remaining: int | None,
        options: _MapOptions,
        *,
        adapt: bool,
        starting: _PoolStart | None,
        sent: tuple[Iterator[Any], ...] = (),
        warm_up_after: int = 0,
    ) -> Iterator[Iterator[Any]]:
        """Batches of in-process work. With ``adapt``, the decision is re-checked each time the
        work done has doubled (and when it reaches a pool start, for inputs without a length),
        and while a pool starts, every ``start_poll_s``: the rest moves to the pool once the
        pool has answered, if it still pays."""
        s = self._settings
        stats = sample.stats
        if sample.kept_args:  # measure what re-checks need now, so that nothing delivered is kept
            if adapt and stats is not None and stats.picklable:
                stats = self._sampler.measure_pickling(sample, stats)
            sample.forget_kept()
        yield sample.replay()
        yield from sent  # results of items sent ahead to the pool during the sample
        done = sampled = stats.items if stats else 0
        spent_s = stats.work_s if stats else 0.0
        next_check_s = max(s.recheck_first_s, 2.0 * spent_s)
        per_item_s = stats.compute_s if stats else 0.0
        single = len(iterators) == 1
        source: Iterator[Any] = iterators[0] if single else zip(*iterators, strict=False)
        run_batch = map if single else itertools.starmap
        try:
            while True:
                if starting is not None:
                    batch = _batch_size(s.start_poll_s, per_item_s, s.serial_batch_max_items)
                else:
                    batch = _batch_size(
                        next_check_s - spent_s, per_item_s, s.serial_batch_max_items
                    )
                first: Any = next(source, _END)
                if first is _END:
                    if starting is not None:
                        self._record_input_ended(fn, starting, done - sampled)
                    elif warm_up_after:
                        self._warm_up(warm_up_after)
                    return
                started = time.perf_counter()
                # The item read to see whether the input goes on, then the rest of the batch:
                # two lazy maps rather than one over a chain, which would cost a layer per item.
                yield run_batch(fn, (first,))
                yield run_batch(fn, itertools.islice(source, batch - 1))
                spent_s += time.perf_counter() - started
                done += batch
                per_item_s = spent_s / done
                if not adapt or stats is None or not stats.picklable:
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
                    start_s = self._profile().spawn_s(2)
                    if spent_s < start_s:
                        next_check_s = min(next_check_s, start_s)
                horizon = left if left is not None else _cost_model.horizon_for_unknown_length(done)
                observed = replace(stats, compute_s=per_item_s, items=done)
                decide_now = functools.partial(
                    self._decide,
                    observed,
                    horizon,
                    options.chunksize,
                    sample,
                    length_known=left is not None,
                    spent_s=spent_s,
                )
                decision, profile, stats = decide_now()
                logger.debug(
                    "map(%s) re-check after %d items, %.3f s here: %s - %s",
                    callable_name(fn),
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
                if starting is None and not self.pool_source(decision.workers).is_warm():
                    starting = self._start_pool(decision, profile, mid_run=True)
                    if not starting.answered.done():
                        continue  # items go on here until a worker answers
                    decision, profile, stats = decide_now()  # on the running pool
                    if decision.lane == "serial":
                        starting.lease.release()
                        starting = None
                        continue
                reason = decision.reason
                if starting is not None:
                    decision, profile = starting.as_planned(decision, profile)
                    reason = f"pool started while {done - sampled} more items ran here; {reason}"
                if starting is None or starting.mid_run:
                    reason = "switched mid-run: " + reason
                decision = replace(decision, reason=reason)
                self._record(
                    "map",
                    callable_name(fn),
                    decision,
                    stats=stats,
                    profile=profile,
                    total=None,
                    remaining=left,
                )
                args = source if not single else zip(source)
                yield self._pool_stream(fn, args, decision, options)
                return
        finally:
            if starting is not None:
                starting.lease.release()

    def _record_input_ended(self, fn: Callable[..., Any], starting: _PoolStart, ran: int) -> None:
        """The input ended before the pool answered: everything ran in-process after all."""
        why = f"the input ended ({ran} more items ran here) before the pool had started"
        record = self._last_decision
        self._record(
            "map",
            callable_name(fn),
            Decision.serial(why, speedup_at_two=starting.decision.speedup_at_two),
            stats=None if record is None else record.stats,
            profile=None if record is None else record.profile,
            total=None if record is None else record.items_total,
            remaining=None if record is None else record.items_remaining,
        )

    def _record(
        self,
        call: str,
        name: str,
        decision: Decision,
        *,
        stats: SampleStats | None,
        profile: MachineProfile | None,
        total: int | None,
        remaining: int | None,
        forced: bool = False,
    ) -> None:
        overhead = 0.0 if stats is None else stats.overhead_s
        record = DecisionRecord(
            call=call,
            function=name,
            decision=decision,
            stats=stats,
            profile=profile,
            items_total=total,
            items_remaining=remaining,
            forced=forced,
            sample_overhead_s=overhead,
        )
        self._last_decision = record
        if logger.isEnabledFor(logging.INFO):
            logger.info("%s", record.summary())


@dataclass
class _Ahead:
    """Items sent to a warm pool while the first one is sampled here (``_send_ahead``)."""

    first: list[Iterator[Any]]  # the first item, one iterator per input, for the sampler
    stream: Iterator[Any] | None  # results of the items sent ahead, in order
    count: int  # items sent ahead


@dataclass
class _PoolStart:
    """A pool starting in the background while the run goes on in-process."""

    lease: PoolLease
    answered: Future[Any]  # done once a worker has answered (or the start failed)
    decision: Decision  # the decision that started it: its prediction counts the start
    planned_on: MachineProfile  # the profile it rests on, with the start cost it counted
    mid_run: bool  # started by a re-check of a serial run, not by the first decision

    def as_planned(
        self, decision: Decision, profile: MachineProfile
    ) -> tuple[Decision, MachineProfile]:
        """A decision made on the running pool, as recorded: with the prediction and the start
        (forked or loky's) that bought the pool; the running pool's profile has neither."""
        planned_on = self.planned_on
        return (
            replace(decision, predicted_speedup=self.decision.predicted_speedup),
            replace(
                profile, start_method=planned_on.start_method, pool_start_s=planned_on.pool_start_s
            ),
        )


def _batch_size(seconds: float, per_item_s: float, most: int) -> int:
    """Items that take about ``seconds`` (the time until the next re-check)."""
    if per_item_s <= 0:
        return most
    return max(1, min(most, int(seconds / per_item_s)))


def _known_length(iterables: tuple[Iterable[Any], ...]) -> int | None:
    """``min(len(...))`` if every input has a length, else ``None`` (generators)."""
    lengths = []
    for it in iterables:
        try:
            lengths.append(len(it))  # type: ignore[arg-type]
        except TypeError:
            return None
    return min(lengths)


def _check_constructor_args(
    max_workers: object,
    mp_context: Any,
    initializer: object,
    max_tasks_per_child: object,
    lane: object,
    *,
    isolate: object,
) -> None:
    """The stdlib's checks and messages, so code that catches them keeps working; then ours."""
    if max_workers is not None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int):
            raise TypeError(f"max_workers must be an int or None, not {type(max_workers).__name__}")
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
    if initializer is not None and not callable(initializer):
        raise TypeError("initializer must be a callable")
    if max_tasks_per_child is not None:
        if sys.version_info < (3, 11):
            raise TypeError("max_tasks_per_child needs Python 3.11 or newer")
        if isinstance(max_tasks_per_child, bool) or not isinstance(max_tasks_per_child, int):
            raise TypeError("max_tasks_per_child must be an integer")
        if max_tasks_per_child <= 0:
            raise ValueError("max_tasks_per_child must be >= 1")
        if max_tasks_per_child > 1:
            # The stdlib pool (the only one with worker recycling) deadlocks once a worker
            # exits at its limit with tasks queued, and we always queue a window of chunks.
            raise ValueError(
                "max_tasks_per_child > 1 deadlocks the stdlib process pool "
                "(CPython gh-115634, Python 3.11-3.14); use 1 or None"
            )
        if mp_context is not None and mp_context.get_start_method() == "fork":
            raise ValueError(
                "max_tasks_per_child is incompatible with the 'fork' multiprocessing start "
                "method; supply a different mp_context."
            )
    if lane not in LANES:
        raise ValueError(f"lane must be one of {LANES}, not {lane!r}")
    if lane == "serial" and (isolate or initializer is not None):
        why = "isolate=True" if isolate else "an initializer (fn must not run where it did not)"
        raise ValueError(f"lane='serial' runs fn in this process, which {why} forbids")


def _check_map_args(fn: object, timeout: object, chunksize: object, buffersize: object) -> None:
    if not callable(fn):
        raise TypeError(f"{type(fn).__name__!r} object is not callable")
    if timeout is not None and not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__}")
    if chunksize is not None:
        if isinstance(chunksize, bool) or not isinstance(chunksize, int):
            raise TypeError("chunksize must be an integer or None")
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
    if buffersize is not None:
        if isinstance(buffersize, bool) or not isinstance(buffersize, int):
            raise TypeError("buffersize must be an integer or None")
        if buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
