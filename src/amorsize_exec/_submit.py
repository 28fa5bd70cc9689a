"""``submit`` routing: cheap callables on one in-process thread, costly ones in the pool.

A callable's first call is its probe: it runs in-process, timed. Calls of the same callable
submitted meanwhile wait for the probe's verdict (their Futures are returned at once), but no
longer than ``Settings.submit_probe_wait_s``: a probe still running then is clearly not cheap,
and the waiting calls go to the pool. Later calls follow ``cost_model.choose_submit_lane``.
Profiles are keyed by code object, so lambdas made in a loop share one.

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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from . import _cost_model
from ._backends import PoolLease, wait_quietly
from ._decision import Decision, callable_name
from ._sampler import pickling_problem

if TYPE_CHECKING:
    from ._executor import AutoExecutor

SubmitLane = Literal["serial", "process"]
_Call = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


@dataclass
class _Profile:
    calls: int = 0
    inprocess_s: float = 0.0  # in-process time spent on this callable
    probe_started: float | None = None  # set while the first call runs
    lane: SubmitLane | None = None  # last lane chosen (to log changes only)
    waiting: list[_Call] = field(default_factory=list)

    @property
    def probing(self) -> bool:
        return self.probe_started is not None


class SubmitRouter:
    """Owns ``submit``'s two lanes for one ``AutoExecutor``."""

    def __init__(self, owner: AutoExecutor) -> None:
        self._owner = owner
        self._lock = threading.Lock()
        # The thread is made on first use: most executors only map.
        self._thread: ThreadPoolExecutor | None = None
        self._thread_closed = False
        self._profiles: weakref.WeakKeyDictionary[Any, _Profile] = weakref.WeakKeyDictionary()
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
        if owner.nested or owner.forced_lane == "serial":
            return self._in_process(Future(), None, fn, args, kwargs)
        if owner.forced_lane == "process":
            return self._to_pool(fn, args, kwargs)
        with self._lock:
            profile = self._profile_of(fn)
            probe = False
            if profile is not None and profile.calls == 0 and not profile.probing:
                profile.probe_started = time.monotonic()
                self._start_timer(profile)
                probe = True
            elif profile is not None and profile.probing and not self._probe_overdue(profile):
                proxy: Future[Any] = Future()
                profile.waiting.append((proxy, fn, args, kwargs))
                return proxy
        if profile is None:  # not weak-referenceable: cannot remember it, keep it cheap
            return self._in_process(Future(), None, fn, args, kwargs)
        if probe:
            return self._in_process(Future(), profile, fn, args, kwargs)
        return self._dispatch(None, profile, fn, args, kwargs)

    # --- lanes ----------------------------------------------------------------------------

    def _dispatch(
        self,
        proxy: Future[Any] | None,
        profile: _Profile,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Future[Any]:
        """Run the call in the lane its profile chooses; the Future the caller should hold.

        ``proxy`` is a pending Future someone already holds (a call that waited for a probe):
        it gets the outcome. Without one, a pool call returns the pool's own Future.
        """
        if self._choose_lane(profile, fn) == "process":
            problem = pickling_problem(fn, args, kwargs)
            if problem is None:
                return self._to_pool(fn, args, kwargs, proxy)
            if self._owner.strict:
                raise TypeError(problem)
            self._owner.record_submit_decision(
                callable_name(fn),
                Decision.serial(f"cannot use a pool: {problem}"),
            )
        return self._in_process(proxy or Future(), profile, fn, args, kwargs)

    def _in_process(
        self,
        proxy: Future[Any],
        profile: _Profile | None,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Future[Any]:
        """Queue the call on the in-process thread; ``proxy`` stays pending until it starts."""
        with self._lock:
            if self._thread is None:
                if self._thread_closed:  # as a shut-down ThreadPoolExecutor would say
                    raise RuntimeError("cannot schedule new futures after shutdown")
                self._thread = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="amorsize-inprocess"
                )
            thread = self._thread
            self._queued.add(proxy)
        try:
            thread.submit(self._run_queued, proxy, profile, fn, args, kwargs)
        except BaseException:
            with self._lock:
                self._queued.discard(proxy)
            raise
        return proxy

    def _run_queued(
        self,
        proxy: Future[Any],
        profile: _Profile | None,
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
        try:
            if profile is None:
                result = fn(*args, **kwargs)
            else:
                result = self._timed(profile, fn, args, kwargs)
        except BaseException as exc:  # as the stdlib's thread pool: the Future carries it
            proxy.set_exception(exc)
        else:
            proxy.set_result(result)

    def _choose_lane(self, profile: _Profile, fn: Callable[..., Any]) -> SubmitLane:
        owner = self._owner
        workers = owner.submit_workers()
        if workers < 2:
            return "serial"
        if profile.probing:  # overdue probe: at least this slow
            task_s = time.monotonic() - (profile.probe_started or 0.0)
        else:
            task_s = profile.inprocess_s / max(1, profile.calls)
        source = owner.pool_source(workers)
        machine = owner.probe.profile()
        lane = _cost_model.choose_submit_lane(
            task_s,
            machine,
            owner.settings,
            pool_warm=source.is_warm(),
            inprocess_spent_s=profile.inprocess_s,
        )
        if lane == "process" and not machine.calibrated:
            machine = owner.probe.calibrated_profile()
            lane = _cost_model.choose_submit_lane(
                task_s,
                machine,
                owner.settings,
                pool_warm=source.is_warm(),
                inprocess_spent_s=profile.inprocess_s,
            )
        if lane != profile.lane:
            profile.lane = lane
            owner.record_submit_decision(callable_name(fn), _submit_decision(lane, task_s, workers))
        return lane

    def _to_pool(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        proxy: Future[Any] | None = None,
    ) -> Future[Any]:
        """Submit to the pool; with a ``proxy`` someone already holds, link the two."""
        with self._lock:
            if self._lease is None or self._lease.broken:
                if self._lease is not None:
                    self._lease.release()
                self._lease = self._owner.pool_source(self._owner.submit_workers()).lease()
            lease = self._lease
            future = lease.submit(fn, *args, **kwargs)
            self._pool_futures.add(future)
        future.add_done_callback(self._forget)
        if proxy is None:
            return future
        proxy.add_done_callback(functools.partial(_cancel_inner, future))
        future.add_done_callback(functools.partial(_copy_outcome, proxy))
        return proxy

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pool_futures.discard(future)

    def _timed(
        self,
        profile: _Profile,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                profile.calls += 1
                profile.inprocess_s += elapsed
                profile.probe_started = None
                waiting, profile.waiting = profile.waiting, []
                self._releasing += 1
            self._release_waiting(profile, waiting)

    # --- calls waiting for a probe ------------------------------------------------------

    def _probe_overdue(self, profile: _Profile) -> bool:
        started = profile.probe_started
        return started is not None and (
            time.monotonic() - started >= self._owner.settings.submit_probe_wait_s
        )

    def _start_timer(self, profile: _Profile) -> None:
        wait_s = self._owner.settings.submit_probe_wait_s
        timer = threading.Timer(wait_s, self._on_overdue, (profile,))
        timer.daemon = True
        self._timers.add(timer)
        timer.start()

    def _on_overdue(self, profile: _Profile) -> None:
        with self._lock:
            me = threading.current_thread()
            self._timers = {t for t in self._timers if t.is_alive() and t is not me}
            if not profile.probing or self._closed:
                return
            waiting, profile.waiting = profile.waiting, []
            self._releasing += 1
        self._release_waiting(profile, waiting)

    def _release_waiting(self, profile: _Profile, waiting: list[_Call]) -> None:
        """Dispatch calls that waited for a probe (``_releasing`` was counted up by the caller,
        under the lock that took ``waiting``: ``shutdown`` waits for this to finish)."""
        try:
            for proxy, fn, args, kwargs in waiting:
                if proxy.cancelled():  # by its holder, while waiting
                    proxy.set_running_or_notify_cancel()
                    continue
                try:
                    self._dispatch(proxy, profile, fn, args, kwargs)
                except BaseException as exc:
                    if proxy.set_running_or_notify_cancel():
                        proxy.set_exception(exc)
        finally:
            with self._lock:
                self._releasing -= 1
                self._released.notify_all()

    # --- lifetime -----------------------------------------------------------------------

    def _profile_of(self, fn: Callable[..., Any]) -> _Profile | None:
        """The callable's profile, made if new (the caller holds the lock)."""
        key = _profile_key(fn)
        try:
            profile = self._profiles.get(key)
            if profile is None:
                profile = self._profiles[key] = _Profile()
        except TypeError:
            return None
        return profile

    def shutdown(self, wait: bool, cancel_futures: bool) -> None:
        with self._lock:
            self._closed = True
            for timer in self._timers:
                timer.cancel()
            profiles = list(self._profiles.values())
            waiting = [call for p in profiles for call in p.waiting]
            for profile in profiles:
                profile.waiting = []
            # Calls taken off a waiting list just before are being dispatched: let them land,
            # so that they are cancelled or run below, not refused by a closed thread pool.
            while self._releasing:
                self._released.wait()
            queued: list[Future[Any]] = []
            if cancel_futures:
                queued, self._queued = list(self._queued), set()
            pool_futures = list(self._pool_futures)
        for proxy, fn, args, kwargs in waiting:
            if cancel_futures:
                queued.append(proxy)
            else:  # accepted before shutdown: runs, in-process
                self._in_process(proxy, None, fn, args, kwargs)
        for proxy in queued:
            proxy.cancel()  # pending, or already cancelled by its holder
            proxy.set_running_or_notify_cancel()  # wakes wait() and as_completed()
        if cancel_futures:
            for future in pool_futures:
                future.cancel()
        with self._lock:
            thread, self._thread_closed = self._thread, True
        if thread is not None:
            thread.shutdown(wait=wait, cancel_futures=cancel_futures)
        if wait:
            for future in pool_futures:
                wait_quietly(future)
        with self._lock:
            lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()


def _copy_outcome(proxy: Future[Any], inner: Future[Any]) -> None:
    """The pool's outcome onto a proxy that stayed pending meanwhile (we alone notify it)."""
    if inner.cancelled():
        proxy.cancel()
        proxy.set_running_or_notify_cancel()
    elif not proxy.set_running_or_notify_cancel():
        return  # cancelled by its holder while the pool ran it: the outcome is dropped
    elif (exc := inner.exception()) is not None:
        proxy.set_exception(exc)
    else:
        proxy.set_result(inner.result())


def _cancel_inner(inner: Future[Any], proxy: Future[Any]) -> None:
    if proxy.cancelled():
        inner.cancel()


def _profile_key(fn: Callable[..., Any]) -> Any:
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = getattr(fn, "__func__", fn)
    return getattr(fn, "__code__", fn)


def _submit_decision(lane: SubmitLane, task_s: float, workers: int) -> Decision:
    took = _cost_model.format_seconds(task_s)
    if lane == "serial":
        return Decision.serial(f"calls take {took}: cheaper in-process")
    return Decision("process", workers, 1, 1.0, 0.0, f"calls take {took}: worth a worker")
