"""What ``submit`` knows per callable (``CallProfiles``), and how a call's outcome reaches the
Future its caller holds when the pool's own Future is not that one (``copy_outcome``)."""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal

from . import _cost_model
from ._decision import Decision

SubmitLane = Literal["serial", "process", "cluster"]
#: A call accepted but not yet dispatched: the Future its caller holds, and the call.
Call = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


@dataclass
class CallProfile:
    """One callable's measured calls, and its calls waiting for its first (the probe)."""

    calls: int = 0  # calls measured (in a worker or in-process)
    measured_s: float = 0.0  # their total time
    inprocess_s: float = 0.0  # the part spent in-process (rent-or-buy of a cold pool)
    probe_started: float | None = None  # set while the first call runs in a worker
    probe_wait_s: float = 0.0  # how long later calls wait for it
    lane: SubmitLane | None = None  # last lane chosen
    recheck_at: int = 0  # calls measured when the lane is chosen again (doubling)
    waiting: list[Call] = field(default_factory=list)

    @property
    def probing(self) -> bool:
        return self.probe_started is not None

    def overdue(self) -> bool:
        started = self.probe_started
        return started is not None and time.monotonic() - started >= self.probe_wait_s

    def record(self, seconds: float, *, in_process: bool) -> None:
        self.calls += 1
        self.measured_s += seconds
        if in_process:
            self.inprocess_s += seconds


class CallProfiles:
    """Profiles keyed by code object (lambdas made in a loop share one), builtins by name.
    Not thread-safe: the router calls it under its lock."""

    def __init__(self) -> None:
        self._by_code: weakref.WeakKeyDictionary[Any, CallProfile] = weakref.WeakKeyDictionary()
        self._by_name: dict[tuple[str, str], CallProfile] = {}  # builtins: no weak refs

    def of(self, fn: Callable[..., Any]) -> CallProfile | None:
        """The callable's profile, made if new; ``None`` if it cannot be told apart from other
        callables."""
        key = _profile_key(fn)
        try:
            profile = self._by_code.get(key)
            if profile is None:
                profile = self._by_code[key] = CallProfile()
            return profile
        except TypeError:  # not weak-referenceable: builtins are known by their names
            pass
        module, name = getattr(key, "__module__", None), getattr(key, "__qualname__", None)
        if not isinstance(name, str):
            return None
        profile = self._by_name.get((str(module), name))
        if profile is None:
            profile = self._by_name[str(module), name] = CallProfile()
        return profile

    def all(self) -> list[CallProfile]:
        return [*self._by_code.values(), *self._by_name.values()]


def _profile_key(fn: Callable[..., Any]) -> Any:
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = getattr(fn, "__func__", fn)
    return getattr(fn, "__code__", fn)


def copy_outcome(proxy: Future[Any], inner: Future[Any]) -> None:
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


def cancel_inner(inner: weakref.ref[Future[Any]], proxy: Future[Any]) -> None:
    """Cancel the pool's Future with its proxy. Held weakly: a Future keeps its callbacks after
    running them, and a strong reference both ways would keep a delivered result alive until
    the garbage collector finds the cycle (the pool holds the Future while it matters)."""
    future = inner()
    if future is not None and proxy.cancelled():
        future.cancel()


def submit_decision(lane: SubmitLane, task_s: float, workers: int) -> Decision:
    """The record of a lane chosen for a callable's calls."""
    took = _cost_model.format_seconds(task_s)
    if lane == "serial":
        return Decision.serial(f"calls take {took}: cheaper in-process")
    if lane == "cluster":
        return Decision(
            "cluster", workers, 1, 1.0, 0.0, f"calls take {took}: worth a task on the cluster"
        )
    return Decision("process", workers, 1, 1.0, 0.0, f"calls take {took}: worth a worker")
