"""``map(timeout=...)`` for items that run in this process.

The stdlib pool raises ``TimeoutError`` at the deadline whatever its workers are doing. An item
that runs on the consumer's own thread cannot be interrupted, so a map with a timeout runs its
in-process work on a thread of its own, and the consumer waits for each result at most until
the deadline.

Each result is handed over as soon as it exists: the thread appends the results to a deque in C
(``deque.extend``), ``batch`` items at a time, and the consumer takes them from the other end as
they arrive. A batch of quick items costs no Python code per item; a batch of slow ones is one
item long (``batch`` doubles only while a batch takes under ``_BATCH_S``). The thread runs at
most two batches ahead of the consumer (an endless input stays lazy); once the consumer stops
(deadline, ``close()``, garbage collection), it starts no new batch, and what is running ends as
a running task does in a worker. No item runs twice.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import TimeoutError as FuturesTimeoutError
from typing import Any

#: Wall seconds a batch may take before it stops growing.
_BATCH_S = 0.002
#: Largest batch: what may still run after the consumer has gone.
_BATCH_MAX = 1024
#: Longest a waiting consumer sleeps before it looks at the deque again (results appended in
#: the middle of a batch notify nobody; the end of each batch does).
_POLL_S = 0.002
_END = object()
#: ``(publish, wanted) -> results``: see ``DeadlineStream``.
Produce = Callable[[Callable[[Any], None], Callable[[], bool]], Iterator[Any]]


class _Raised:
    """The exception that ended the results, in its place after the results before it."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class DeadlineStream:
    """Iterates ``produce(publish, wanted)`` on a daemon thread; the consumer waits until
    ``deadline`` at most (``time.monotonic()``), then gets ``TimeoutError``. ``publish`` hands
    one result over at once, ahead of those ``produce`` yields (the sampler's); ``wanted()`` is
    False once the consumer has gone, so that ``produce`` starts nothing new (a pool bought
    for nobody would outlive the map). Work starts at construction."""

    def __init__(self, produce: Produce, deadline: float) -> None:
        self._deadline = deadline
        self._results: deque[Any] = deque()
        self._changed = threading.Condition()
        self._stopped = False
        threading.Thread(
            target=self._produce, args=(produce,), name="amorsize-map-deadline", daemon=True
        ).start()

    def _wanted(self) -> bool:
        return not self._stopped

    def _produce(self, produce: Produce) -> None:
        results = self._results
        end: object = _END
        try:
            source = produce(results.append, self._wanted)
            batch = 1
            while not self._stopped:
                started = time.perf_counter()
                results.extend(itertools.islice(source, batch - 1))
                last = next(source, _END)  # whether the input goes on
                if last is _END:
                    break
                results.append(last)
                if time.perf_counter() - started < _BATCH_S:
                    batch = min(2 * batch, _BATCH_MAX)
                else:
                    batch = max(1, batch // 2)
                with self._changed:
                    self._changed.notify_all()
                    while len(results) >= batch and not self._stopped:
                        self._changed.wait()
        except BaseException as error:  # extend() kept the results before it
            end = _Raised(error)
        with self._changed:
            results.append(end)
            self._changed.notify_all()

    def __iter__(self) -> Iterator[Any]:
        results = self._results
        try:
            while True:
                try:
                    item = results.popleft()
                except IndexError:
                    self._wait()
                    continue
                if item is _END:
                    return
                if isinstance(item, _Raised):
                    raise item.error
                yield item
                del item  # nothing delivered stays alive here
                if not results:
                    with self._changed:
                        self._changed.notify_all()  # room for the next batch
        finally:
            with self._changed:
                self._stopped = True
                self._changed.notify_all()

    def _wait(self) -> None:
        with self._changed:
            if self._results:
                return
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise FuturesTimeoutError()
            self._changed.wait(min(remaining, _POLL_S))
