"""``submit`` routing: cheap callables on one in-process thread, costly ones in the pool.

A callable's first call is its probe: it runs in-process, timed. Calls of the same callable
submitted meanwhile wait for the probe's verdict (their Futures are returned at once), but no
longer than ``Settings.submit_probe_wait_s``: a probe still running then is clearly not cheap,
and the waiting calls go to the pool. Later calls follow ``cost_model.choose_submit_lane``.
Profiles are keyed by code object, so lambdas made in a loop share one.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from . import _cost_model
from ._backends import PoolLease
from ._decision import Decision

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
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amorsize-inprocess")
        self._profiles: weakref.WeakKeyDictionary[Any, _Profile] = weakref.WeakKeyDictionary()
        self._lease: PoolLease | None = None
        self._pool_futures: set[Future[Any]] = set()
        self._timers: set[threading.Timer] = set()
        self._closed = False

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        owner = self._owner
        if owner.nested or owner.forced_lane == "serial":
            return self._thread.submit(fn, *args, **kwargs)
        if owner.forced_lane == "process":
            return self._to_pool(fn, args, kwargs)
        with self._lock:
            profile = self._profile_of(fn)
            if profile is None:  # not weak-referenceable: cannot remember it, keep it cheap
                return self._thread.submit(fn, *args, **kwargs)
            if profile.calls == 0 and not profile.probing:
                profile.probe_started = time.monotonic()
                self._start_timer(profile)
                return self._thread.submit(self._timed, profile, fn, args, kwargs)
            if profile.probing and not self._probe_overdue(profile):
                proxy: Future[Any] = Future()
                profile.waiting.append((proxy, fn, args, kwargs))
                return proxy
        return self._dispatch(profile, fn, args, kwargs)

    # --- lanes ----------------------------------------------------------------------------

    def _dispatch(
        self, profile: _Profile, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Future[Any]:
        if self._choose_lane(profile, fn) == "process":
            return self._to_pool(fn, args, kwargs)
        return self._thread.submit(self._timed, profile, fn, args, kwargs)

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
            task_s, machine, owner.settings, pool_warm=source.is_warm(),
            inprocess_spent_s=profile.inprocess_s,
        )
        if lane == "process" and not machine.calibrated:
            machine = owner.probe.calibrated_profile()
            lane = _cost_model.choose_submit_lane(
                task_s, machine, owner.settings, pool_warm=source.is_warm(),
                inprocess_spent_s=profile.inprocess_s,
            )
        if lane != profile.lane:
            profile.lane = lane
            owner.record_submit_decision(_name(fn), _submit_decision(lane, task_s, workers))
        return lane

    def _to_pool(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        with self._lock:
            if self._lease is None or self._lease.broken:
                if self._lease is not None:
                    self._lease.release()
                self._lease = self._owner.pool_source(self._owner.submit_workers()).lease()
            lease = self._lease
            future = lease.submit(fn, *args, **kwargs)
            self._pool_futures.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pool_futures.discard(future)

    def _timed(
        self, profile: _Profile, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
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
            self._release_waiting(profile, waiting)

    # --- calls waiting for a probe ------------------------------------------------------

    def _probe_overdue(self, profile: _Profile) -> bool:
        started = profile.probe_started
        return started is not None and (
            time.monotonic() - started >= self._owner.settings.submit_probe_wait_s
        )

    def _start_timer(self, profile: _Profile) -> None:
        timer = threading.Timer(self._owner.settings.submit_probe_wait_s, self._on_overdue, (profile,))
        timer.daemon = True
        self._timers.add(timer)
        timer.start()

    def _on_overdue(self, profile: _Profile) -> None:
        with self._lock:
            self._timers = {t for t in self._timers if t.is_alive() and t is not threading.current_thread()}
            if not profile.probing or self._closed:
                return
            waiting, profile.waiting = profile.waiting, []
        self._release_waiting(profile, waiting)

    def _release_waiting(self, profile: _Profile, waiting: list[_Call]) -> None:
        for proxy, fn, args, kwargs in waiting:
            if not proxy.set_running_or_notify_cancel():
                continue  # cancelled while waiting
            try:
                inner = self._dispatch(profile, fn, args, kwargs)
            except BaseException as exc:
                proxy.set_exception(exc)
                continue
            inner.add_done_callback(functools.partial(_copy_outcome, proxy))

    # --- lifetime -----------------------------------------------------------------------

    def _profile_of(self, fn: Callable[..., Any]) -> _Profile | None:
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
            waiting = [call for p in list(self._profiles.values()) for call in p.waiting]
            for profile in list(self._profiles.values()):
                profile.waiting = []
            pool_futures = list(self._pool_futures)
        for proxy, fn, args, kwargs in waiting:
            if cancel_futures:
                proxy.cancel()
            elif proxy.set_running_or_notify_cancel():
                inner = self._thread.submit(fn, *args, **kwargs)
                inner.add_done_callback(functools.partial(_copy_outcome, proxy))
        if cancel_futures:
            for future in pool_futures:
                future.cancel()
        self._thread.shutdown(wait=wait, cancel_futures=cancel_futures)
        if wait:
            for future in pool_futures:
                try:
                    future.exception()
                except CancelledError:
                    pass
        with self._lock:
            lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()


def _copy_outcome(proxy: Future[Any], inner: Future[Any]) -> None:
    if inner.cancelled():
        proxy.set_exception(CancelledError())
    elif (exc := inner.exception()) is not None:
        proxy.set_exception(exc)
    else:
        proxy.set_result(inner.result())


def _profile_key(fn: Callable[..., Any]) -> Any:
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = getattr(fn, "__func__", fn)
    return getattr(fn, "__code__", fn)


def _submit_decision(lane: SubmitLane, task_s: float, workers: int) -> Decision:
    took = _cost_model.format_seconds(task_s)
    if lane == "serial":
        return Decision("serial", 1, 1, 1.0, 0.0, f"calls take {took}: cheaper in-process")
    return Decision("process", workers, 1, 1.0, 0.0, f"calls take {took}: worth a worker")


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__
