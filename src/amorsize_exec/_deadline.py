"""``map(timeout=...)`` for items that run in this process.

The stdlib pool raises ``TimeoutError`` at the deadline whatever its workers are doing. An item
that runs on the consumer's own thread cannot be interrupted, so a map with a timeout runs its
in-process work on a thread of its own, and the consumer waits for it at most until the
deadline. Results are handed over in batches that take about ``_BATCH_S`` each (the hand-over
costs a few microseconds, about as much as a trivial item), so the deadline is kept to within
about a batch, and the thread runs at most ``_AHEAD`` batches ahead of the consumer (an endless
input stays lazy). Once the consumer stops (deadline, ``close()``, garbage collection), the
thread starts no new item; the one running finishes, as a running task does in a worker. No item
runs twice.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import TimeoutError as FuturesTimeoutError
from typing import Any

from ._backends import draining

#: Wall seconds of work per hand-over: small against the ~0.2 s a deadline may be late.
_BATCH_S = 0.002
#: Batches the thread may run ahead of the consumer.
_AHEAD = 2
#: How often a thread blocked on a full queue checks that the consumer is still there.
_POLL_S = 0.05
_END = object()


class _Raised:
    """The exception that ended the producer, in its place in the stream."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class DeadlineStream:
    """Iterates ``produce()`` on a daemon thread; the consumer waits until ``deadline`` at most
    (``time.monotonic()``), then gets ``TimeoutError``. Work starts at construction."""

    def __init__(self, produce: Callable[[], Iterator[Any]], deadline: float) -> None:
        self._deadline = deadline
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=_AHEAD)
        self._stop = threading.Event()
        thread = threading.Thread(
            target=self._produce, args=(produce,), name="amorsize-map-deadline", daemon=True
        )
        thread.start()

    def _put(self, item: Any) -> bool:
        """Hand ``item`` over unless the consumer has gone; False if it has."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
            except queue.Full:
                continue
            return True
        return False

    def _produce(self, produce: Callable[[], Iterator[Any]]) -> None:
        batch: list[Any] = []
        try:
            results = produce()
            size = 1
            while not self._stop.is_set():
                started = time.perf_counter()
                batch = []
                # extend() keeps what it appended before an exception: positions stay exact.
                batch.extend(itertools.islice(results, size))
                if len(batch) < size:
                    self._put(batch)
                    self._put(_END)
                    return
                if not self._put(batch):
                    return
                batch = []
                if time.perf_counter() - started < _BATCH_S / 2:
                    size *= 2
        except BaseException as error:  # in its place: after the results before it
            self._put(batch)
            self._put(_Raised(error))

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=max(0.0, self._deadline - time.monotonic()))
                except queue.Empty:
                    raise FuturesTimeoutError() from None
                if item is _END:
                    return
                if isinstance(item, _Raised):
                    raise item.error
                yield from draining(item)
        finally:
            self._stop.set()
