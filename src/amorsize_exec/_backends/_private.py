"""``PrivatePool``: a pool owned by one executor, for worker setups that cannot be shared (an
``initializer``, ``max_tasks_per_child``); see ``_loky`` for the shared ones."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from concurrent.futures import ProcessPoolExecutor as StdlibProcessPool
from typing import Any

import loky

from ._loky import PoolLease, _loky_context, _Pool, thread_limits
from ._worker import initialize_worker


class PrivatePool:
    """A pool owned by one executor, for worker setups that cannot be shared.

    loky has no ``max_tasks_per_child``; when it is given, the pool is the stdlib's
    ``ProcessPoolExecutor`` (calls travel as cloudpickle bytes, so lambdas still work).

    ``shutdown()`` stops the pool once no lease is out: a ``map`` whose results are read after
    the executor's ``with`` block keeps its workers until it ends (or is dropped).
    """

    def __init__(
        self,
        workers: int,
        *,
        mp_context: Any,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        max_tasks_per_child: int | None,
    ) -> None:
        self.workers = workers
        self._lock = threading.Lock()
        self._factory: Callable[[], _Pool] = lambda: self._make(
            workers, mp_context, initializer, initargs, max_tasks_per_child
        )
        self._pool: _Pool | None = None
        self._closed = False

    @staticmethod
    def _make(
        workers: int,
        mp_context: Any,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        max_tasks_per_child: int | None,
    ) -> _Pool:
        if max_tasks_per_child is not None:
            context = mp_context or multiprocessing.get_context("spawn")
            # A keyword Python 3.10's stdlib lacks (the executor refuses it there).
            recycling: dict[str, Any] = {"max_tasks_per_child": max_tasks_per_child}
            executor: Executor = StdlibProcessPool(
                max_workers=workers,
                mp_context=context,
                initializer=initialize_worker,
                initargs=(initializer, initargs),
                **recycling,
            )
            return _Pool(executor, stdlib=True)
        method = mp_context.get_start_method() if mp_context is not None else "loky"
        executor = loky.ProcessPoolExecutor(
            max_workers=workers,
            context=_loky_context(method),
            initializer=initialize_worker,
            initargs=(initializer, initargs),
            env=thread_limits(workers, method),
        )
        return _Pool(executor, stdlib=False)

    def is_warm(self) -> bool:
        with self._lock:
            return self._pool is not None and self._pool.started and not self._pool.broken

    def lease(self) -> PoolLease:
        """A lease on this executor's pool; a broken pool is replaced by a fresh one."""
        retired = None
        with self._lock:
            if self._pool is not None and self._pool.broken:
                retired, self._pool = self._pool, None
            if self._pool is None:
                self._pool = self._factory()
            pool = self._pool
            pool.leases += 1
            lease = PoolLease(pool, self._give_back, warm=pool.started)
        if retired is not None:
            retired.shutdown(wait=False)
        return lease

    def _give_back(self, pool: _Pool) -> None:
        with self._lock:
            pool.leases -= 1
            stop = self._closed and pool is self._pool and pool.leases == 0
            if stop:
                self._pool = None
        if stop:  # the executor was shut down while this lease was out: its turn now
            pool.shutdown(wait=False, graceful=True)

    def shutdown(self, wait: bool) -> None:
        """Stop the pool now, or when the last lease comes back; running work finishes."""
        with self._lock:
            self._closed = True
            pool = self._pool
            if pool is None or pool.leases > 0:
                return
            self._pool = None
        pool.shutdown(wait=wait, graceful=True)
