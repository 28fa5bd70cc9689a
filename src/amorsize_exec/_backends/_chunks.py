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


class ChunkedMap:
    """Ordered results of ``fn`` over ``args``, computed by ``submit_chunk`` in bounded chunks.

    The first ``window`` chunks are submitted by the constructor, so that work starts when
    ``map()`` is called, as with the stdlib; later chunks are submitted as the consumer takes
    results. ``cancel()`` may be called from any thread (``shutdown(cancel_futures=True)``).
    On ``KeyboardInterrupt`` while waiting, ``on_interrupt`` runs (the executor kills the pool).
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
    ) -> None:
        self._submit_chunk = submit_chunk
        self._fn = fn
        self._args = args
        self._chunksize = chunksize
        self._deadline = deadline
        self._pending: deque[Future[ChunkResult]] = deque()
        self._on_interrupt = on_interrupt
        # Runs once: at the end of iteration, or when a never-consumed map is garbage collected.
        self._close = weakref.finalize(self, _cancel_and_release, self._pending, on_close)
        self._lock = threading.Lock()
        self._cancelled = False
        self._input_done = False
        for _ in range(max(1, window)):
            if not self._submit_next():
                break

    def _submit_next(self) -> bool:
        with self._lock:
            if self._cancelled or self._input_done:
                return False
            chunk = list(itertools.islice(self._args, self._chunksize))
            if not chunk:
                self._input_done = True
                return False
            self._pending.append(self._submit_chunk(self._fn, chunk))
            return True

    def in_flight(self) -> list[Future[ChunkResult]]:
        """Chunks submitted and not yet consumed (for ``shutdown(wait=True)``)."""
        with self._lock:
            return list(self._pending)

    def cancel(self) -> None:
        """Cancel chunks not yet started; positions never submitted raise ``CancelledError``."""
        with self._lock:
            self._cancelled = True
            for future in self._pending:
                future.cancel()

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                with self._lock:
                    if not self._pending:
                        break
                    future = self._pending.popleft()
                timeout = None if self._deadline is None else self._deadline - time.monotonic()
                results, error = future.result(timeout)
                self._submit_next()
                yield from results
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


def _cancel_and_release(pending: deque[Future[ChunkResult]], on_close: Callable[[], None]) -> None:
    for future in pending:
        future.cancel()
    on_close()
