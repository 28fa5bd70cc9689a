"""The pool lane's engine: feed any executor chunk by chunk through a bounded window.

Neither loky's nor Dask's ``map`` fits (loky's consumes the input eagerly, Dask's ignores
``chunksize``), so we chunk ourselves on top of ``submit``: input is read only as results are
consumed, at most ``window`` chunks are in flight, and results come back in input order.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from typing import Any

from ._worker import ChunkResult

SubmitChunk = Callable[[Callable[..., Any], list[tuple[Any, ...]]], "Future[ChunkResult]"]
#: Sees each chunk's arguments and outcome in input order, before its results are yielded:
#: ``(args, results, error, wall_s, cpu_s) -> (chunksize, window)`` to use from then on, or
#: ``None`` to keep watching. It is dropped once it has answered (a plan is made once).
ChunkObserver = Callable[
    [list[tuple[Any, ...]], list[Any], "BaseException | None", float, float],
    "tuple[int, int] | None",
]


class ChunkedMap:
    """Ordered results of ``fn`` over ``args``, computed by ``submit_chunk`` in bounded chunks.

    The first ``window`` chunks are submitted by the constructor, so that work starts when
    ``map()`` is called, as with the stdlib; later chunks are submitted as the consumer takes
    results. ``cancel()`` may be called from any thread (``shutdown(cancel_futures=True)``).
    On ``KeyboardInterrupt`` while waiting, ``on_interrupt`` runs (the executor kills the pool).
    An ``observer`` re-plans chunk size and window from the first chunks' timings in the
    workers. A result is dropped as it is yielded: nothing delivered stays alive here.
    """

    def __init__(
        self,
        submit_chunk: SubmitChunk,
        fn: Callable[..., Any],
        args: Iterator[tuple[Any, ...]],
        *,
        chunksize: int,
        window: int,
        deadline: float | None,
        on_close: Callable[[], None] = lambda: None,
        on_interrupt: Callable[[], None] = lambda: None,
        observer: ChunkObserver | None = None,
    ) -> None:
        self._submit_chunk = submit_chunk
        self._fn = fn
        self._args = args
        self._chunksize = chunksize
        self._window = max(1, window)
        self._deadline = deadline
        self._observer = observer
        # Each chunk's future, and its arguments while an observer wants them.
        self._pending: deque[tuple[Future[ChunkResult], list[tuple[Any, ...]] | None]] = deque()
        self._on_interrupt = on_interrupt
        # Runs once: at the end of iteration, or when a never-consumed map is garbage collected.
        self._close = weakref.finalize(self, _cancel_and_release, self._pending, on_close)
        self._lock = threading.Lock()
        self._cancelled = False
        self._input_done = False
        self._fill()

    def _fill(self) -> None:
        """Submit chunks until ``window`` are in flight (or the input ends)."""
        while True:
            with self._lock:
                if self._cancelled or self._input_done or len(self._pending) >= self._window:
                    return
                chunk = list(itertools.islice(self._args, self._chunksize))
                if not chunk:
                    self._input_done = True
                    return
                future = self._submit_chunk(self._fn, chunk)
                self._pending.append((future, chunk if self._observer is not None else None))

    def in_flight(self) -> list[Future[ChunkResult]]:
        """Chunks submitted and not yet consumed (for ``shutdown(wait=True)``)."""
        with self._lock:
            return [future for future, _ in self._pending]

    def cancel(self) -> None:
        """Cancel chunks not yet started; positions never submitted raise ``CancelledError``."""
        with self._lock:
            self._cancelled = True
            for future, _ in self._pending:
                future.cancel()

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                with self._lock:
                    if not self._pending:
                        break
                    future, chunk = self._pending.popleft()
                timeout = None if self._deadline is None else self._deadline - time.monotonic()
                results, error, wall_s, cpu_s = future.result(timeout)
                del future  # it holds the results: drop them as they are yielded
                if chunk is not None and self._observer is not None:
                    plan = self._observer(chunk, results, error, wall_s, cpu_s)
                    if plan is not None:
                        self._chunksize, self._window = max(1, plan[0]), max(1, plan[1])
                        self._observer = None
                del chunk
                self._fill()
                yield from draining(results)
                if error is not None:
                    raise error
            if self._cancelled and not self._input_done and next(self._args, None) is not None:
                raise CancelledError()
        except KeyboardInterrupt:
            self.cancel()
            self._on_interrupt()  # chunks already running would hold the interpreter's exit
            raise
        finally:
            self.cancel()
            self._close()


def wait_quietly(future: Future[Any]) -> None:
    """Wait until ``future`` is done, whatever its outcome (cancelled included)."""
    with contextlib.suppress(BaseException):
        future.exception()


def draining(items: list[Any]) -> Iterator[Any]:
    """The items in order, each dropped from ``items`` as it is yielded, in C: a delivered
    result must not stay alive in the executor (CPython's ``test_free_reference``). ``items``
    is consumed. ``map(list.pop, ...)`` rather than ``iter(items.pop, sentinel)``: 196,587
    results took 3.4 against 4.8 ms (a list iterator, which keeps them alive: 2.0 ms)."""
    items.reverse()
    return map(list.pop, itertools.repeat(items, len(items)))


def _cancel_and_release(
    pending: deque[tuple[Future[ChunkResult], Any]], on_close: Callable[[], None]
) -> None:
    for future, _ in pending:
        future.cancel()
    on_close()
