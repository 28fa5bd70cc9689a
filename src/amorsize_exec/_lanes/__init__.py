"""The lanes a map's items run in, behind one small interface that the planner chooses between.

* ``SerialLane``: this process, on the consumer's thread, as fast as a plain loop;
* ``ThreadLane``: threads of this process, for items that mostly wait (I/O, ``sleep``, C code
  that releases the GIL): no pickling, no start;
* ``ProcessLane``: the warm loky pools (or the executor's private pool), for CPU work;
* ``ClusterLane``: tasks on a Dask cluster, with ``client=`` (``_cluster``).

Each turns ``(fn, args, decision, options)`` into ordered results, with exceptions at their
positions (``Lane.run``). What only a pool has (warmth, a start to wait for, a machine profile
with its start cost) stays on ``ProcessLane``. ``LiveStreams.start`` runs a lane's chunks
(``ChunkedMap``) and keeps them, so that ``shutdown`` reaches the maps under way in any lane.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .._backends import ChunkedMap, wait_quietly

if TYPE_CHECKING:
    from .._backends import ChunkObserver
    from .._backends._chunks import SubmitChunk
    from .._config import Settings
    from .._decision import Decision


@dataclass(frozen=True)
class MapOptions:
    """What one ``map`` call asked for, carried to whichever lane runs it."""

    deadline: float | None  # time.monotonic() by which each result must be ready
    chunksize: int | None  # the caller's, or None to let the cost model choose
    buffersize: int | None  # most items in flight, or None for our window

    def window(self, decision: Decision, settings: Settings) -> int:
        """Chunks in flight: ``buffersize`` items if given, else a few chunks per worker."""
        if self.buffersize is not None:
            return max(1, -(-self.buffersize // decision.chunksize))
        return decision.workers * settings.chunks_in_flight_per_worker


@dataclass(frozen=True)
class MapRequest:
    """One ``map`` call once its arguments are checked, as whichever object runs it reads it."""

    fn: Callable[..., Any]
    iterators: list[Iterator[Any]]  # one per input; what is not yet read
    total: int | None  # the input's length, if every input has one
    options: MapOptions

    def args(self) -> Iterator[tuple[Any, ...]]:
        """The arguments not yet read, one tuple per item."""
        return zip(*self.iterators, strict=False)


class Lane(Protocol):
    """Where the rest of a map runs once it is planned."""

    def run(
        self,
        fn: Callable[..., Any],
        args: Iterator[tuple[Any, ...]],
        decision: Decision,
        options: MapOptions,
    ) -> Iterator[Any]:
        """Ordered results of ``fn`` over ``args``, as ``decision`` sized them; an exception
        raised by ``fn`` surfaces at its position. Input is read lazily, a window at a time."""
        ...


class LiveStreams:
    """The chunked maps under way in an executor's lanes (held weakly), for ``shutdown``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet[ChunkedMap] = weakref.WeakSet()

    def add(self, stream: ChunkedMap) -> None:
        with self._lock:
            self._streams.add(stream)

    def start(
        self,
        submit_chunk: SubmitChunk,
        fn: Callable[..., Any],
        args: Iterator[tuple[Any, ...]],
        *,
        decision: Decision,
        options: MapOptions,
        settings: Settings,
        on_close: Callable[[], None],
        on_interrupt: Callable[[], None] = lambda: None,
        observer: ChunkObserver | None = None,
    ) -> Iterator[Any]:
        """A lane's map: ``args`` in chunks through ``submit_chunk``, sized by ``decision``,
        windowed by ``options``, kept here for ``shutdown``. ``on_close`` gives back what the
        lane took for it (a lease, threads), also if the map cannot start."""
        try:
            stream = ChunkedMap(
                submit_chunk,
                fn,
                args,
                chunksize=decision.chunksize,
                window=options.window(decision, settings),
                deadline=options.deadline,
                on_close=on_close,
                on_interrupt=on_interrupt,
                observer=observer,
            )
        except BaseException:
            on_close()
            raise
        self.add(stream)
        return iter(stream)

    def snapshot(self) -> list[ChunkedMap]:
        with self._lock:
            return list(self._streams) if self._streams else []  # iterating costs ~30 us

    @staticmethod
    def cancel(streams: list[ChunkedMap]) -> None:
        """Positions not yet started raise ``CancelledError``; running ones finish."""
        for stream in streams:
            stream.cancel()

    @staticmethod
    def wait(streams: list[ChunkedMap]) -> None:
        for stream in streams:
            for future in stream.in_flight():
                wait_quietly(future)
