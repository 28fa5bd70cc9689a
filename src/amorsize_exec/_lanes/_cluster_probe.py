"""A Dask cluster's costs, measured once per client through the path the cluster lane uses."""

from __future__ import annotations

import statistics
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from .._backends._worker import byte_length, noop, run_chunk
from .._cost_cluster import ClusterCosts

_PROBE_BYTES = 1 << 20
_ROUND_TRIPS = 5
_STREAM_TASKS = 16


class ClusterProbe:
    """Measured costs of each Dask cluster, once per client (held weakly); ``reset()`` forgets
    them. One default instance serves the process (``default_cluster_probe``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._costs: weakref.WeakKeyDictionary[Any, ClusterCosts] = weakref.WeakKeyDictionary()

    def known(self, client: Any) -> ClusterCosts | None:
        """The client's costs if measured, without measuring."""
        return self._costs.get(client)

    def costs(self, client: Any) -> ClusterCosts:
        """The client's costs, measured on first use (~0.1-0.2 s on a loopback cluster)."""
        with self._lock:
            known = self._costs.get(client)
            if known is None:
                known = self._costs[client] = measure(client)
            return known

    def reset(self) -> None:
        with self._lock:
            self._costs.clear()


_default_probe = ClusterProbe()


def default_cluster_probe() -> ClusterProbe:
    """The process-wide ``ClusterProbe``."""
    return _default_probe


def measure(client: Any) -> ClusterCosts:
    """Measure the cluster through the path the lane uses (``submit`` with ``pure=False``,
    results received in order): medians of a few round trips, a stream of small tasks, and a
    1 MB argument."""
    threads = sum(client.nthreads().values())

    def timed(fn: Callable[..., Any], *args: Any) -> float:
        started = time.perf_counter()
        client.submit(fn, *args, pure=False).result()
        return time.perf_counter() - started

    timed(noop)  # the first task ships the function and warms connections
    roundtrip_s = statistics.median(timed(noop) for _ in range(_ROUND_TRIPS))
    # A stream as the lane sends one: a window of two tasks per thread, the next submitted as
    # each result is received (a burst of 16 at once measured ~2.3 ms a task, the lane paid
    # ~5 ms on a loopback cluster whose scheduler shares the cores).
    window = max(1, 2 * threads)
    started = time.perf_counter()
    stream: deque[Any] = deque()
    for _ in range(_STREAM_TASKS):
        if len(stream) >= window:
            stream.popleft().result()
        stream.append(client.submit(run_chunk, noop, [()], pure=False))
    while stream:
        stream.popleft().result()
    stream_s = time.perf_counter() - started
    task_s = max(0.0, (stream_s - roundtrip_s) / (_STREAM_TASKS - 1))
    payload = bytes(_PROBE_BYTES)
    moved_s = statistics.median(timed(byte_length, payload) for _ in range(3)) - roundtrip_s
    return ClusterCosts(
        address=str(client.scheduler.address),
        threads=threads,
        roundtrip_s=roundtrip_s,
        task_s=task_s,
        s_per_byte=max(0.0, moved_s) / _PROBE_BYTES,
    )
