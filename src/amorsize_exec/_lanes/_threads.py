"""The thread lane: items that mostly wait run on threads of this process.

When the sample shows an item's CPU time far below its wall time (network or disk I/O,
``sleep``, C code that releases the GIL), threads overlap the waits with no pickling and no
start: 200 x 10 ms of ``sleep`` took 0.074 s on 32 threads against 1.02 s on the best process
pool (2 cores). The cost model sizes the lane from the wait fraction (``_cost_model``); pure
CPU work never comes here, the GIL would serialise it.

The executor's maps share one ``ThreadPoolExecutor`` (made on first use, up to
``thread_lane_max_threads``), driven by ``ChunkedMap`` as the process lane drives a pool:
ordered results, exceptions at their positions, ``timeout``, a bounded window over endless
inputs, and ``shutdown(cancel_futures=True)``. A map keeps ``decision.workers`` chunks in
flight, so that many threads run it. The threads stay for the executor's next maps: starting
32 of them and stopping them again cost ~10 ms a map, which a service paid on every call. The
pool stops at the executor's ``shutdown``, or once the last map under way then ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .._backends import ChunkedMap
from .._backends._worker import run_chunk

if TYPE_CHECKING:
    from .._config import Settings
    from .._decision import Decision
    from . import LiveStreams, MapOptions


class ThreadLane:
    """Runs a map's items on ``decision.workers`` threads, ``decision.chunksize`` at a time."""

    def __init__(self, settings: Settings, streams: LiveStreams, *, max_threads: int) -> None:
        self._settings = settings
        self._streams = streams
        self._max_threads = max_threads
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._maps = 0  # maps under way on the pool
        self._closed = False

    def run(
        self,
        fn: Callable[..., Any],
        args: Iterator[tuple[Any, ...]],
        decision: Decision,
        options: MapOptions,
    ) -> Iterator[Any]:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self._max_threads, thread_name_prefix="amorsize_exec-thread"
                )
            pool = self._pool
            self._maps += 1

        def submit_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> Future[Any]:
            return pool.submit(run_chunk, fn, chunk, in_thread=True)

        # One chunk in flight per thread the decision wants: the pool is shared and larger.
        window = (
            decision.workers
            if options.buffersize is None
            else options.window(decision, self._settings)
        )
        try:
            stream = ChunkedMap(
                submit_chunk,
                fn,
                args,
                chunksize=decision.chunksize,
                window=window,
                deadline=options.deadline,
                on_close=self._map_ended,
            )
        except BaseException:
            self._map_ended()
            raise
        self._streams.add(stream)
        return iter(stream)

    def _map_ended(self) -> None:
        with self._lock:
            self._maps -= 1
            pool = self._pool if self._closed and self._maps == 0 else None
        if pool is not None:  # shut down while this map went on: its turn now
            pool.shutdown(wait=False)

    def shutdown(self, *, wait: bool) -> None:
        """Stop the threads now, or when the last map under way ends."""
        with self._lock:
            self._closed = True
            pool = self._pool if self._maps == 0 else None
        if pool is not None:
            pool.shutdown(wait=wait)
