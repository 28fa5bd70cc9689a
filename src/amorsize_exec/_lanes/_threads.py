"""The thread lane: items that mostly wait run on threads of this process.

When the sample shows an item's CPU time far below its wall time (network or disk I/O,
``sleep``, C code that releases the GIL), threads overlap the waits with no pickling and no
start: 200 x 10 ms of ``sleep`` took 0.074 s on 32 threads against 1.02 s on the best process
pool (2 cores). The cost model sizes the lane from the wait fraction (``_cost_model``); pure
CPU work never comes here, the GIL would serialise it.

Each map gets its own ``ThreadPoolExecutor`` of the decided size, driven by ``ChunkedMap`` as
the process lane drives a pool: ordered results, exceptions at their positions, ``timeout``,
a bounded window over endless inputs, and ``shutdown(cancel_futures=True)``. Its threads start
as chunks are submitted (~60 us each) and go when the map ends: nothing outlives the map.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .._backends._worker import run_chunk

if TYPE_CHECKING:
    from .._backends import ChunkObserver
    from .._config import Settings
    from .._decision import Decision
    from . import LiveStreams, MapOptions


class ThreadLane:
    """Runs a map's items on ``decision.workers`` threads, ``decision.chunksize`` at a time."""

    def __init__(self, settings: Settings, streams: LiveStreams) -> None:
        self._settings = settings
        self._streams = streams

    def run(
        self,
        fn: Callable[..., Any],
        args: Iterator[tuple[Any, ...]],
        decision: Decision,
        options: MapOptions,
        observer: ChunkObserver | None = None,
        *,
        threads: ThreadPoolExecutor | None = None,
    ) -> Iterator[Any]:
        """With ``threads`` (``new_threads``), the map runs on them and leaves them to their
        owner (a thread trial keeps its threads for the rest it wins); else on its own."""
        owned = threads is None
        if threads is None:
            threads = self.new_threads(decision.workers)

        def submit_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> Future[Any]:
            return threads.submit(run_chunk, fn, chunk, in_thread=True)

        return self._streams.start(
            submit_chunk,
            fn,
            args,
            decision=decision,
            options=options,
            settings=self._settings,
            on_close=lambda: threads.shutdown(wait=False) if owned else None,
            observer=observer,
        )

    @staticmethod
    def new_threads(workers: int) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(workers, thread_name_prefix="amorsize_exec-thread")
