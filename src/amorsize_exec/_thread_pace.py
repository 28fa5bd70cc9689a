"""Whether threads chosen on a trial's word keep up with the serial pace, read as results come.

A thread trial is short (``_thread_trial``), and the threads' pace can move after it: cold
SVDs' trials read 1.23-1.54x, and the rest ran slower than the loop. So threads chosen on a
trial's word, this map's or an earlier run's (``_head_start.threads_first``), are judged once
more on the map itself (``PaceJudge``); if they fall behind the serial pace, no more items go
to them and the rest runs on the caller's thread (one chunk at a time on a worker thread ran
cold SVDs ~15% behind the loop: 299 against 249 ms).

They are judged as results come, so that the consumer's time counts as it does in a loop,
from the results after each thread's first chunk (a fresh process's threads paid their first
BLAS calls over 2-4 chunks: 3-17 ms an item against ~0.5 ms), once ``thread_trial_s`` has
passed and each thread has run ``JUDGED_CHUNKS_PER_THREAD`` chunks more. Each chunk's own time
in its thread would not do: over the threads, it read cold solves at 0.17-0.26 ms an item
where results came every 0.39-0.54 ms (the threads mostly took turns)."""

from __future__ import annotations

import time
from collections.abc import Callable

from ._cost_model import format_seconds, format_speedup

#: Chunks a thread runs, besides its first, before the judge reads the pace: a fresh
#: process's threads paid their first calls over 2-4 chunks each, and one chunk in 4-5 took
#: 3-4x the others' time.
JUDGED_CHUNKS_PER_THREAD = 4


class PaceJudge:
    """Told of results as they come (``came``), it reads the threads' pace once and says
    how it compares with the serial pace ``item_s`` (``speedup``, ``verdict``)."""

    def __init__(
        self,
        thread_trial_s: float,
        item_s: float,
        threads: int,
        chunksize: int,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._trial_s, self._item_s, self._threads, self._chunk = (
            thread_trial_s,
            item_s,
            threads,
            chunksize,
        )
        self._clock = clock
        self._first_items = threads * chunksize  # each thread's first chunk: not judged
        self._since = 0.0  # when the last of them came
        self._items = 0  # judged: the items after those
        self.speedup: float | None = None  # once judged: serial pace over the threads'
        self.verdict = ""  # the figures, in words

    def came(self, items: int) -> float | None:
        """``items`` more results have come; the speedup once judged (``None`` until then)."""
        if self.speedup is not None:
            return self.speedup
        now = self._clock()
        if self._first_items > 0:
            self._first_items -= items
            self._since = now
            return None
        self._items += items
        elapsed_s = now - self._since
        enough = JUDGED_CHUNKS_PER_THREAD * self._threads * self._chunk
        if elapsed_s < self._trial_s or self._items < enough:
            return None
        # The other threads' chunks under way when the clock started had begun before it.
        steady = self._items - (self._threads - 1) * self._chunk
        pace_s = elapsed_s / max(1, steady)
        self.speedup = self._item_s / pace_s
        self.verdict = (
            f"threads ran {self._items} items at {format_seconds(pace_s)} each against "
            f"{format_seconds(self._item_s)} serially ({format_speedup(self.speedup, 1.0)})"
        )
        return self.speedup
