"""Warm loky pools, and who owns them.

Ownership (design §6): loky's ``get_reusable_executor()`` is one process-wide pool that any
caller (joblib included) shuts down by asking for other kwargs, so we never use it. Instead a
``WorkerPools`` object owns our pools:

* pools with default worker setup are **shared** by every ``AutoExecutor`` using this
  ``WorkerPools`` (one per worker count and start method) and stay warm after an executor's
  ``shutdown()``: a service that builds an executor per request pays the start cost once.
  An executor only *leases* a pool; its ``shutdown()`` never stops shared workers.
* idle workers exit after ``Settings.pool_idle_timeout_s`` (loky's ``timeout``); loky's own
  ``atexit`` hook stops the rest, so no worker outlives the interpreter.
* a new shared pool **forks** its workers if this process runs a single thread (Linux), as the
  stdlib's pool does there: ~15 ms to a first answer instead of loky's ~0.24 s fork+exec. With
  one thread, no other thread can hold a lock that the children would inherit locked. Such a
  pool never forks again: loky would re-fork idle-expired workers from a process that then runs
  the pool's own threads, so its workers stay until a lease finds it idle past the timeout and
  replaces it (or the interpreter exits). Workers then get their BLAS thread limits from the
  initializer, before the code they run can load a BLAS library.
* a pool whose worker died is broken for good; the next lease replaces it with a fresh one.
* pools with an ``initializer`` or ``max_tasks_per_child`` are **private** to one executor
  (``PrivatePool``) and stopped by its ``shutdown()``.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import cloudpickle
import loky

from .._config import Settings
from ._blas import blas_may_be_loaded, fork_safe_threads
from ._worker import (
    ChunkResult,
    TimedCall,
    call,
    initialize_worker,
    noop,
    run_chunk,
    run_pickled_call,
    timed_call,
)

#: Shared pools kept at most (warm ones beyond this, if idle, are stopped: least recently used).
_MAX_SHARED_POOLS = 2


@dataclass(frozen=True)
class PoolSpec:
    """What makes two pools interchangeable: worker count and start method (loky's names)."""

    workers: int
    start_method: str = "loky"


class _Pool:
    """One executor plus the bookkeeping the lease logic needs."""

    def __init__(self, executor: Executor, *, stdlib: bool, forked: bool = False) -> None:
        self.executor = executor
        self.stdlib = stdlib  # the stdlib pickles with pickle: calls travel as cloudpickle bytes
        self.forked = forked  # workers forked from this process (see the module docstring)
        self.leases = 0
        self._seen_broken = False
        #: True once a task came back: workers are up. Set on completion, not on submission,
        #: so that a pool still starting in the background is not taken for a warm one.
        self.started = False
        self.last_used = time.monotonic()

    @property
    def broken(self) -> bool:
        """True once a task failed with ``BrokenProcessPool``, or the executor knows it is
        broken: a worker that died while the pool was idle fails no task of ours."""
        if self._seen_broken:
            return True
        flags = getattr(self.executor, "_flags", None)  # loky
        if flags is not None and getattr(flags, "broken", None) is not None:
            return True
        return bool(getattr(self.executor, "_broken", False))  # stdlib

    def abort(self) -> None:
        """Kill the workers now (Ctrl-C): running tasks cannot be cancelled any other way, and
        the interpreter would otherwise wait for them at exit. The next lease starts afresh."""
        self._seen_broken = True
        self.shutdown(wait=False)

    def watch(self, future: Future[Any]) -> None:
        if future.cancelled():
            return
        if isinstance(future.exception(), BrokenProcessPool):
            self._seen_broken = True
        else:
            self.started = True

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """``fn(*args, **kwargs)`` in a worker; keywords travel inside the task (``call``), so
        that ``fn=`` or ``self=`` reach ``fn`` and not the pool's own ``submit``."""
        if kwargs:
            return self.submit_task(call, fn, args, kwargs)
        return self.submit_task(fn, *args)

    def submit_task(self, task: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """``task(*args)`` in a worker (positional arguments only)."""
        try:
            if self.stdlib:
                payload = cloudpickle.dumps((task, args, {}))
                future = self.executor.submit(run_pickled_call, payload)
            else:
                future = self.executor.submit(task, *args)
        except BrokenProcessPool:
            self._seen_broken = True
            raise
        self.last_used = time.monotonic()
        future.add_done_callback(self.watch)
        return future

    def submit_chunk(self, fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> Future[Any]:
        return self.submit_task(run_chunk, fn, chunk)

    def shutdown(self, wait: bool, *, graceful: bool = False) -> None:
        """Stop the pool. Unless ``graceful``, ``wait=False`` also kills the workers and drops
        queued work (for pools nobody uses any more); a graceful stop lets submitted work
        finish, as ``Executor.shutdown(wait=False)`` promises its caller."""
        abandon = not wait and not graceful
        if isinstance(self.executor, loky.ProcessPoolExecutor):
            self.executor.shutdown(wait=wait, kill_workers=abandon)
        elif not wait and graceful:
            # The stdlib's shutdown(wait=False) drops its worker list at once, so a worker that
            # exits at max_tasks_per_child is never replaced and the work left hangs, as does
            # interpreter exit (CPython gh-132969, gh-119592): wait, but on another thread.
            threading.Thread(
                target=self.executor.shutdown, name="amorsize-pool-shutdown", daemon=True
            ).start()
        else:
            self.executor.shutdown(wait=wait, cancel_futures=abandon)


class PoolLease:
    """An executor's right to use a pool until ``release()``; submitting marks the pool used."""

    def __init__(self, pool: _Pool, release: Callable[[_Pool], None], *, warm: bool) -> None:
        self._pool = pool
        self._release = release
        self._released = False
        self._lock = threading.Lock()
        #: Whether workers were already running when the lease was taken.
        self.warm = warm
        #: Whether the pool's workers are forked from this process (their start is cheaper).
        self.forked = pool.forked

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._pool.submit(fn, *args, **kwargs)

    def submit_chunk(
        self, fn: Callable[..., Any], chunk: list[tuple[Any, ...]]
    ) -> Future[ChunkResult]:
        return self._pool.submit_chunk(fn, chunk)

    def submit_timed(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Future[TimedCall]:
        """``fn(*args, **kwargs)`` timed in the worker (``_worker.timed_call``)."""
        return self._pool.submit_task(timed_call, fn, args, kwargs)

    def start(self) -> Future[Any]:
        """Start the workers without waiting: loky launches them all on the first task, and
        this task's future is done once one of them answers."""
        return self._pool.submit(noop)

    @property
    def broken(self) -> bool:
        return self._pool.broken

    def abort(self) -> None:
        """Kill the pool's workers (see ``_Pool.abort``)."""
        self._pool.abort()

    def release(self) -> None:
        """Give the pool back (idempotent). Shared pools stay warm; private ones are unaffected."""
        with self._lock:
            if self._released:
                return
            self._released = True
        self._release(self._pool)


#: Variables that size the thread pools of BLAS and OpenMP libraries (as joblib sets them).
_THREAD_LIMIT_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def thread_limits(workers: int, start_method: str) -> dict[str, str] | None:
    """Environment giving each worker its share of the CPUs for BLAS/OpenMP threads.

    Without it, ``w`` workers each start one BLAS thread per CPU: on 2 cores, numpy's linear
    algebra ran 5.8x slower in a warm pool than in a loop (benchmarks, numpy_linalg). loky
    applies ``env`` only with its own start method; forked workers apply it in their
    initializer; other start methods may have loaded BLAS before either (``__main__`` is
    re-imported), so they get none.
    """
    if start_method != "loky":
        return None
    share = str(max(1, loky.cpu_count() // max(1, workers)))
    return dict.fromkeys(_THREAD_LIMIT_VARS, share)


def single_threaded() -> bool:
    """True if this process runs one OS thread, BLAS and OpenMP pools included (Linux: the
    entries of ``/proc/self/task``, ~20 us): only then is forking it safe."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _loky_context(start_method: str) -> Any:
    return loky.backend.context.get_context(start_method)


class WorkerPools:
    """Owns the shared warm pools of one process (see the module docstring for the rules)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        worker_setup: tuple[Callable[..., object], tuple[Any, ...]] | None = None,
    ) -> None:
        """``worker_setup``: ``(callable, args)`` every worker of these pools runs when it
        starts (tests make a start slow with it; the shared workers otherwise need none)."""
        self._settings = settings or Settings()
        no_setup: tuple[None, tuple[Any, ...]] = (None, ())
        self._setup = worker_setup or no_setup
        self._lock = threading.Lock()
        self._pools: dict[PoolSpec, _Pool] = {}
        self._finalizer: multiprocessing.util.Finalize | None = None

    def _idle(self, pool: _Pool) -> bool:
        return time.monotonic() - pool.last_used >= self._settings.pool_idle_timeout_s

    def _is_warm(self, pool: _Pool | None) -> bool:
        if pool is None or pool.broken or not pool.started:
            return False
        return not self._idle(pool)

    def _stale(self, pool: _Pool) -> bool:
        """True if the next lease replaces ``pool``: broken, or forked and idle past the
        timeout (forked workers do not exit on their own; see the module docstring)."""
        return pool.broken or (pool.forked and pool.leases == 0 and self._idle(pool))

    def forks_new_pools(self, start_method: str = "loky") -> bool:
        """True if a pool made now for ``start_method`` would fork its workers, so that its
        start costs ``MachineProfile.forking()``'s. A live pool's own threads make it False."""
        return (
            start_method == "loky"
            and bool(self._settings.fork_single_threaded)
            and (single_threaded() or fork_safe_threads())
        )

    def is_warm(self, spec: PoolSpec) -> bool:
        """True if a lease on ``spec`` would not pay the start cost."""
        with self._lock:
            return self._is_warm(self._pools.get(spec))

    def lease(self, spec: PoolSpec) -> PoolLease:
        """A lease on the shared pool for ``spec``, started (lazily, by loky) if needed."""
        retired: list[_Pool] = []
        with self._lock:
            pool = self._pools.get(spec)
            if pool is not None and self._stale(pool):
                retired.append(self._pools.pop(spec))
                pool = None
            warm = self._is_warm(pool)
            if pool is None:
                pool = self._new_pool(spec)
                self._pools[spec] = pool
                self._stop_before_queues_close()
                retired.extend(self._evict_idle(keep=spec))
            pool.leases += 1
        for old in retired:
            old.shutdown(wait=False)
        return PoolLease(pool, self._give_back, warm=warm)

    def _new_pool(self, spec: PoolSpec) -> _Pool:
        forked = self.forks_new_pools(spec.start_method)
        limits = thread_limits(spec.workers, spec.start_method)
        # Forked from a parent that loaded BLAS: env would not reach it (see _blas).
        blas_share = (
            max(1, loky.cpu_count() // spec.workers) if forked and blas_may_be_loaded() else None
        )
        # Forked: multiprocessing's context (loky's get_context("fork") would warn about the
        # threads just ruled out), no idle timeout (see the module docstring), and the BLAS
        # limits set by the initializer, since loky applies ``env`` only to its own start.
        executor = loky.ProcessPoolExecutor(
            max_workers=spec.workers,
            timeout=None if forked else self._settings.pool_idle_timeout_s,
            context=(
                multiprocessing.get_context("fork") if forked else _loky_context(spec.start_method)
            ),
            initializer=initialize_worker,
            initargs=(*self._setup, limits if forked else None, blas_share),
            env=None if forked else limits,
        )
        return _Pool(executor, stdlib=False, forked=forked)

    def _stop_before_queues_close(self) -> None:
        """Have multiprocessing's finalizers stop our pools before they close the pools' queues.

        Those finalizers run at exit, but also whenever ``multiprocessing.util._run_finalizers()``
        is called: CPython's test suites call it (``_cleanup_tests``) after each test module.
        Each priority-10 one closes the feeder thread of a ``Queue``; loky's call queue then
        keeps what is put in it, and at exit loky's manager thread waits forever for workers
        that never get their exit sentinel. Stopping the pools first (priority 20, like
        ``multiprocessing.Pool``'s 15) sends the sentinels while the feeder still runs. A run
        of the finalizers drops them all: the next new pool registers again (caller holds the
        lock). Held by weak reference: a ``WorkerPools`` dropped unused is not kept alive.
        """
        if self._finalizer is not None and self._finalizer.still_active():
            return
        self._finalizer = multiprocessing.util.Finalize(
            self, _shutdown_pools, args=(weakref.ref(self),), exitpriority=20
        )

    def _evict_idle(self, keep: PoolSpec) -> list[_Pool]:
        idle = sorted(
            (p.last_used, s) for s, p in self._pools.items() if s != keep and p.leases == 0
        )
        evicted = []
        while len(self._pools) > _MAX_SHARED_POOLS and idle:
            _, spec = idle.pop(0)
            evicted.append(self._pools.pop(spec))
        return evicted

    def _give_back(self, pool: _Pool) -> None:
        with self._lock:
            pool.leases -= 1
            pool.last_used = time.monotonic()

    def shutdown(self, wait: bool = True) -> None:
        """Stop every pool (tests, or a service going down); later leases start new ones."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=wait)


def _shutdown_pools(pools: weakref.ref[WorkerPools]) -> None:
    owner = pools()
    if owner is not None:
        owner.shutdown(wait=True)


_default_pools: WorkerPools | None = None
_default_lock = threading.Lock()


def default_pools() -> WorkerPools:
    """The process's shared ``WorkerPools`` (created on first use)."""
    global _default_pools
    with _default_lock:
        if _default_pools is None:
            _default_pools = WorkerPools(Settings.from_env())
        return _default_pools


def reset_default_pools(wait: bool = True) -> None:
    """Stop the shared pools and forget them (tests; after fork)."""
    global _default_pools
    with _default_lock:
        pools, _default_pools = _default_pools, None
    if pools is not None:
        pools.shutdown(wait=wait)


class SharedPool:
    """The ``PoolSource`` view of one shared pool spec in a ``WorkerPools``."""

    def __init__(self, pools: WorkerPools, spec: PoolSpec) -> None:
        self._pools = pools
        self.spec = spec

    def is_warm(self) -> bool:
        return self._pools.is_warm(self.spec)

    def lease(self) -> PoolLease:
        return self._pools.lease(self.spec)
