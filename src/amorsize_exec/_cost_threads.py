"""The thread lane's arithmetic (design §4): pure, like ``_cost_model``, which decides with it.

Items that wait (``u`` CPU seconds of each item's ``t``) on ``k`` threads, as the choice of
``k`` sees it (``predict_threads_s``)::

    T_thr(k, c) = n * u + n * (t - u) / k   # the GIL runs one thread's Python; waits overlap
                + k * T_thread + k' * o      # thread starts; the consumer's cost per chunk
                + c * t / 2                  # tail

The speedup a thread decision predicts comes from the time the chosen plan is expected to take
(``expect_threads_s``)::

    E_thr(k, c) = max(n * u + k * T_thread + k' * o,   # all that holds the GIL, one at a time
                      ceil(k' / k) * c * t)            # rounds of chunks on k threads

since the GIL's work and the threads' waits overlap.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ._stats import TINY_S

if TYPE_CHECKING:
    from ._config import Settings
    from ._stats import SampleStats


def predict_threads_s(
    stats: SampleStats, settings: Settings, n: int, threads: int, chunksize: int
) -> float:
    """Predicted wall time of ``n`` items on ``threads`` threads of this process (module doc).

    CPU time, and time preempted (``busy_s``), counts as holding the GIL: work that releases
    it (numpy) looks like pure CPU and is never sent here, where it could still have gained
    (conservative on purpose). The CPU and the waits add up rather than overlap perfectly
    (``max``): with just enough threads to cover the waits, jitter leaves the GIL idle. With
    ``max``, 200 items of 5 ms wait and 3.4 ms CPU took 3 threads and ran 1.26x the best
    thread pool (16 threads, warm).
    """
    t = stats.compute_s
    gil_s = n * stats.busy_s
    overlapped_s = n * (t - stats.busy_s) / threads
    chunks = math.ceil(n / chunksize)
    overhead_s = threads * settings.thread_start_s + chunks * settings.thread_chunk_overhead_s
    return gil_s + overlapped_s + overhead_s + chunksize * t / 2.0


def expect_threads_s(
    stats: SampleStats, settings: Settings, n: int, threads: int, chunksize: int
) -> float:
    """Wall time a thread plan is expected to take, for its predicted speedup.

    What holds the GIL (the items' CPU, starting the threads, the consumer's work per chunk)
    runs one thing at a time, and overlaps the rounds of waits: a thread waits while another
    runs Python. The sum that chooses the thread count (``predict_threads_s``) is kept there on
    purpose (just enough threads lose to jitter), but predicted the wall time 20-60% long:
    ``time.sleep(10 ms)`` x 200 on 32 threads, 7 rounds (71 ms), took 74 ms where it predicted
    105 ms; 100 x (10 ms sleep, 1 MB result), 4 rounds (43 ms), took 42.5 ms warm.
    """
    chunks = math.ceil(n / chunksize)
    gil_s = n * stats.busy_s + threads * settings.thread_start_s
    gil_s += chunks * settings.thread_chunk_overhead_s
    rounds_s = math.ceil(chunks / threads) * chunksize * stats.compute_s
    return max(gil_s, rounds_s)


def plan_threads(
    stats: SampleStats, settings: Settings, n: int, cap: int, chunksize: int | None = None
) -> tuple[float, int, int] | None:
    """The fastest thread plan for ``n`` items: ``(seconds, threads, chunksize)``; ``None`` if
    fewer than 2 threads are possible. Threads are tried in powers of two up to ``cap``, and
    the count that just covers the waits (``t / u``)."""
    cap = min(cap, n)
    if cap < 2:
        return None
    t = stats.compute_s
    covering = math.ceil(t / max(stats.busy_s, TINY_S))
    counts = {min(cap, max(2, covering)), cap}
    counts.update(k for k in (2, 4, 8, 16, 32, 64) if k < cap)
    best: tuple[float, int, int] | None = None
    for k in sorted(counts):
        by_time = max(1, round(settings.thread_target_chunk_s / max(t, TINY_S)))
        by_balance = math.ceil(n / (k * settings.chunks_per_worker))
        size = chunksize or max(1, min(by_time, by_balance))
        plan = (predict_threads_s(stats, settings, n, k, size), k, size)
        if best is None or plan[0] < best[0]:
            best = plan
    return best
