"""``submit`` routing: where each call runs, decided per callable from its measured calls.

* **A callable's first call is its probe, and runs in a worker**, timed there. A call that
  crashes its process (a segfault, ``os._exit``) then breaks a pool, as with
  ``ProcessPoolExecutor`` (``BrokenProcessPool``), instead of killing the caller; arguments or
  results that cannot be pickled raise there too. Calls of the same callable submitted
  meanwhile wait for the probe's time (their Futures are returned at once), but no longer than
  the pool's start if it is cold plus ``Settings.submit_probe_wait_s``; then they go to the
  pool too. Until a call has been measured, every call runs in a worker.
* **Later calls follow** ``cost_model.choose_submit_lane`` on the callable's mean time: cheap
  ones run in-process (``InProcessThreads``: one thread serves a burst of them, and a call stuck
  for ``Settings.submit_stall_s`` gets the calls behind it a new thread, so none waits behind
  one it does not depend on), costly ones in the worker pool.
* **With a Dask cluster** (``client=``), calls worth two of its round trips go to it if it has
  more threads than the local pool (``_cost_cluster.submit_to_cluster``; its costs are
  measured in the background on first need): one executor spans the cluster.
* **Isolated executors** (``isolate``, an ``initializer``, ``lane="process"``) send every call
  to the pool, ``lane="cluster"`` to the cluster; ``lane="serial"`` and nested: on the threads.

Profiles are keyed by code object (lambdas made in a loop share one), builtins by name.

The Futures of in-process calls (and of calls waiting for a probe) are our own, not the
thread pool's: a call is marked running only when it starts, so ``cancel()`` works until then,
and ``shutdown(cancel_futures=True)`` notifies what it cancels, so that ``wait()`` and
``as_completed()`` see those Futures as done (the stdlib pools leave them un-notified:
CPython gh-109934, gh-87893, and such waits hang).
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from . import _cost_cluster, _cost_model
from ._backends import PoolLease, wait_quietly
from ._call_profiles import (
    Call,
    CallProfile,
    CallProfiles,
    SubmitLane,
    cancel_inner,
    copy_outcome,
    submit_decision,
)
from ._decision import Decision, callable_name
from ._inprocess import InProcessThreads

if TYPE_CHECKING:
    from ._runtime import Runtime


class SubmitRouter:
    """Owns ``submit``'s two lanes for one ``AutoExecutor``."""

    def __init__(self, owner: Runtime) -> None:
        self._owner = owner
        self._lock = threading.Lock()
        # The threads are made on first use: most executors only map.
        self._threads: InProcessThreads | None = None
        self._threads_closed = False
        self._profiles = CallProfiles()
        self._lease: PoolLease | None = None
        self._pool_futures: set[Future[Any]] = set()
        self._timers: set[threading.Timer] = set()
        self._queued: set[Future[Any]] = set()  # in-process calls not yet started
        self._releasing = 0  # calls waiting for a probe, being dispatched right now
        self._released = threading.Condition(self._lock)
        self._closed = False

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Future[Any]:
        owner = self._owner
        if owner.runs_in_process_only:
            return self._in_process(Future(), None, fn, args, kwargs)
        if owner.isolated:
            if owner.forced_lane == "cluster":
                return self._to_cluster(fn, args, kwargs)
            return self._to_pool(fn, args, kwargs)
        probe = False
        with self._lock:
            profile = self._profiles.of(fn)
            if profile is not None and profile.calls == 0 and not profile.probing:
                probe = True
                profile.probe_started = time.monotonic()
            elif profile is not None and profile.probing and not profile.overdue():
                proxy: Future[Any] = Future()
                profile.waiting.append((proxy, fn, args, kwargs))
                return proxy
        if profile is None:  # cannot be told apart from other callables: never learnt
            return self._to_pool(fn, args, kwargs)
        if probe:
            return self._probe(profile, fn, args, kwargs)
        return self._dispatch(None, profile, fn, args, kwargs)

    # --- lanes ----------------------------------------------------------------------------

    def _dispatch(
        self,
        proxy: Future[Any] | None,
        profile: CallProfile,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Future[Any]:
        """Run the call in the lane its profile chooses; the Future the caller should hold.

        ``proxy`` is a pending Future someone already holds (a call that waited for a probe):
        it gets the outcome. Without one, a pool call returns the pool's own Future.
        """
        if not profile.calls:
            return self._to_pool(fn, args, kwargs, proxy)
        lane = profile.lane
        if lane is None or profile.calls >= profile.recheck_at:
            lane = self._choose_lane(profile, fn)
        if lane == "serial":
            return self._in_process(proxy or Future(), profile, fn, args, kwargs)
        if lane == "cluster":
            return self._to_cluster(fn, args, kwargs, proxy)
        return self._to_pool(fn, args, kwargs, proxy)

    def _in_process(
        self,
        proxy: Future[Any],
        profile: CallProfile | None,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Future[Any]:
        """Queue the call on the in-process threads; ``proxy`` stays pending until it starts."""
        with self._lock:
            if self._threads is None:
                if self._threads_closed:  # as a shut-down ThreadPoolExecutor would say
                    raise RuntimeError("cannot schedule new futures after shutdown")
                settings = self._owner.settings
                self._threads = InProcessThreads(
                    max_threads=settings.submit_threads,
                    stall_s=settings.submit_stall_s,
                    name="amorsize-inprocess",
                )
            threads = self._threads
            self._queued.add(proxy)
        try:
            threads.submit(functools.partial(self._run_queued, proxy, profile, fn, args, kwargs))
        except BaseException:
            with self._lock:
                self._queued.discard(proxy)
            raise
        return proxy

    def _run_queued(
        self,
        proxy: Future[Any],
        profile: CallProfile | None,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        with self._lock:
            if proxy not in self._queued:
                return  # cancelled (and notified) by shutdown(cancel_futures=True)
            self._queued.discard(proxy)
        if not proxy.set_running_or_notify_cancel():
            return  # cancelled by its holder
        started = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # as the stdlib's thread pool: the Future carries it
            proxy.set_exception(exc)
        else:
            proxy.set_result(result)
            del result
        finally:
            if profile is not None:
                elapsed = time.perf_counter() - started
                with self._lock:
                    profile.record(elapsed, in_process=True)

    def _choose_lane(self, profile: CallProfile, fn: Callable[..., Any]) -> SubmitLane:
        """The lane for ``fn``'s calls until its measured calls double (choosing on every
        call was ~45% of a trivial submit's cost)."""
        owner = self._owner
        profile.recheck_at = 2 * profile.calls
        workers = owner.submit_workers()
        task_s = profile.measured_s / profile.calls
        # On the machine's priors: calibrating here would block this submit (or a pool's
        # callback thread) on round trips to the pool.
        lane: SubmitLane = (
            "serial"
            if workers < 2
            else _cost_model.choose_submit_lane(
                task_s,
                owner.probe.profile(),
                owner.settings,
                pool_warm=owner.processes.source(workers).is_warm(),
                inprocess_spent_s=profile.inprocess_s,
            )
        )
        costs = None if owner.cluster is None else owner.cluster.known_costs()
        if costs and _cost_cluster.submit_to_cluster(task_s, costs, workers, owner.settings):
            lane, workers = "cluster", costs.threads
        if lane != profile.lane:
            profile.lane = lane
            owner.record_submit_decision(callable_name(fn), submit_decision(lane, task_s, workers))
        return lane

    def _pool_lease(self) -> PoolLease:
        """The lease ``submit`` uses (the caller holds the lock); a broken pool is replaced."""
        if self._lease is None or self._lease.broken:
            if self._lease is not None:
                self._lease.release()
            self._lease = self._owner.processes.source(self._owner.submit_workers()).lease()
        return self._lease

    def _to_pool(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        proxy: Future[Any] | None = None,
    ) -> Future[Any]:
        """Submit to the pool; with a ``proxy`` someone already holds, link the two."""
        return self._track(lambda: self._pool_lease().submit(fn, *args, **kwargs), proxy)

    def _to_cluster(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        proxy: Future[Any] | None = None,
    ) -> Future[Any]:
        """Submit to the Dask cluster; with a ``proxy`` someone already holds, link the two."""
        cluster = self._owner.cluster
        assert cluster is not None
        return self._track(lambda: cluster.submit(fn, args, kwargs), proxy)

    def _track(self, send: Callable[[], Future[Any]], proxy: Future[Any] | None) -> Future[Any]:
        """The Future ``send`` returns, kept for ``shutdown`` until done, linked to ``proxy``."""
        with self._lock:
            future = send()
            self._pool_futures.add(future)
        future.add_done_callback(self._forget)
        if proxy is None:
            return future
        proxy.add_done_callback(functools.partial(cancel_inner, weakref.ref(future)))
        future.add_done_callback(functools.partial(copy_outcome, proxy))
        return proxy

    def _probe(
        self,
        profile: CallProfile,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Future[Any]:
        """The callable's first call: in a worker, timed there (``_worker.timed_call``)."""
        owner = self._owner
        workers = owner.submit_workers()
        warm = owner.processes.source(workers).is_warm()
        start_s = 0.0 if warm else owner.machine_profile().spawn_s(workers)
        proxy: Future[Any] = Future()
        with self._lock:
            profile.probe_wait_s = start_s + owner.settings.submit_probe_wait_s
            try:
                inner = self._pool_lease().submit_timed(fn, args, kwargs)
            except BaseException:
                profile.probe_started = None  # refused (a broken pool): the next call probes
                raise
            self._pool_futures.add(inner)
            self._start_timer(profile)
        owner.record_submit_decision(
            callable_name(fn),
            Decision(
                "process",
                workers,
                1,
                1.0,
                0.0,
                "first call of this callable: timed in a worker, where a crash breaks a pool "
                "and not this process",
            ),
        )
        inner.add_done_callback(self._forget)
        proxy.add_done_callback(functools.partial(cancel_inner, weakref.ref(inner)))
        inner.add_done_callback(functools.partial(self._probe_done, profile, proxy))
        return proxy

    def _probe_done(self, profile: CallProfile, proxy: Future[Any], inner: Future[Any]) -> None:
        """The probe's outcome onto its proxy; its time into the profile; the calls that
        waited for it are dispatched."""
        measured = False
        if inner.cancelled() or inner.exception() is not None:  # the pool's: broken, pickling
            copy_outcome(proxy, inner)
        else:
            ok, value, seconds = inner.result()
            with self._lock:
                profile.record(seconds, in_process=False)
            measured = True
            if proxy.set_running_or_notify_cancel():
                if ok:
                    proxy.set_result(value)
                else:
                    proxy.set_exception(value)
        del inner, proxy  # nothing of a delivered call stays alive here
        with self._lock:
            # Not measured (cancelled, or the pool failed it): the next call probes again.
            profile.probe_started = None
            waiting, profile.waiting = profile.waiting, []
            if not waiting:
                return
            self._releasing += 1
        # This runs on the pool's own thread (a Future's callback): dispatching from it could
        # wait on that pool. A thread of its own does it.
        threading.Thread(
            target=self._release_waiting,
            args=(profile, waiting),
            kwargs={"measured": measured},
            name="amorsize-release",
            daemon=True,
        ).start()

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pool_futures.discard(future)

    # --- calls waiting for a probe ------------------------------------------------------

    def _start_timer(self, profile: CallProfile) -> None:
        """Release the calls waiting for ``profile``'s probe once it is overdue (the caller
        holds the lock)."""
        timer = threading.Timer(profile.probe_wait_s, self._on_overdue, (profile,))
        timer.daemon = True
        self._timers.add(timer)
        timer.start()

    def _on_overdue(self, profile: CallProfile) -> None:
        with self._lock:
            me = threading.current_thread()
            self._timers = {t for t in self._timers if t.is_alive() and t is not me}
            if not profile.probing or self._closed:
                return
            waiting, profile.waiting = profile.waiting, []
            self._releasing += 1
        self._release_waiting(profile, waiting, measured=False)

    def _release_waiting(
        self, profile: CallProfile, waiting: list[Call], *, measured: bool
    ) -> None:
        """Dispatch calls that waited for a probe: by the profile if the probe was measured,
        else to the pool (``_releasing`` was counted up by the caller, under the lock that took
        ``waiting``: ``shutdown`` waits for this to finish)."""
        try:
            for proxy, fn, args, kwargs in waiting:
                if proxy.cancelled():  # by its holder, while waiting
                    proxy.set_running_or_notify_cancel()
                    continue
                try:
                    if measured:
                        self._dispatch(proxy, profile, fn, args, kwargs)
                    else:
                        self._to_pool(fn, args, kwargs, proxy)
                except BaseException as exc:
                    if proxy.set_running_or_notify_cancel():
                        proxy.set_exception(exc)
        finally:
            with self._lock:
                self._releasing -= 1
                self._released.notify_all()

    # --- lifetime -----------------------------------------------------------------------

    def shutdown(self, wait: bool, cancel_futures: bool) -> None:
        with self._lock:
            self._closed = True
            for timer in self._timers:
                timer.cancel()
            profiles = self._profiles.all()
            waiting = [call for p in profiles for call in p.waiting]
            for profile in profiles:
                profile.waiting = []
            # Calls taken off a waiting list just before are being dispatched: let them land,
            # so that they are cancelled or run below, not refused by a closed pool.
            while self._releasing:
                self._released.wait()
            queued: list[Future[Any]] = []
            if cancel_futures:
                queued, self._queued = list(self._queued), set()
        for proxy, fn, args, kwargs in waiting:
            if cancel_futures:
                queued.append(proxy)
            else:  # accepted before shutdown: runs, in a worker (its callable is unmeasured)
                try:
                    self._to_pool(fn, args, kwargs, proxy)
                except BaseException as exc:
                    if proxy.set_running_or_notify_cancel():
                        proxy.set_exception(exc)
        for proxy in queued:
            proxy.cancel()  # pending, or already cancelled by its holder
            proxy.set_running_or_notify_cancel()  # wakes wait() and as_completed()
        with self._lock:
            pool_futures = list(self._pool_futures)
        if cancel_futures:
            for future in pool_futures:
                future.cancel()
        with self._lock:
            threads, self._threads_closed = self._threads, True
        if threads is not None:
            threads.shutdown(wait=wait)
        if wait:
            for future in pool_futures:
                wait_quietly(future)
        with self._lock:
            lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()
