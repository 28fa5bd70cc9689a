"""The cluster's term of the cost model (design §5): pure arithmetic, like ``_cost_model``.

A Dask cluster is one more lane beside serial, threads and local processes. It is already
running (no start), but each task travels through its scheduler, and every argument and result
crosses the network. Predicted time of ``n`` items in chunks of ``c`` (``k = ceil(n / c)``
tasks) on a cluster of ``W`` worker threads::

    T_cl(c) = rt                               # the first task's round trip (latency)
            + n * (s + b * beta)               # the client pickles and sends every item
            + k * (tau + f)                    # each task through client and scheduler, in turn
            + n * t / min(W, k)                # the workers' share
            + c * t * (1 + cv) / 2             # tail: the last chunk finishing alone

with ``rt`` the measured round trip, ``tau`` the measured cost of one more task in a stream of
them, ``beta`` seconds per byte moved, ``f`` the function's pickling (sent with each task) and
``s``, ``b``, ``t``, ``cv`` from the sample, as in the local model. The terms add up: on a
loopback cluster, where scheduler, client and workers share the cores, dispatch did not hide
behind the work (200 x 10 ms on 2 threads: 2.0 s in one-item tasks, 1.06 s in tasks of 10;
2,000 x 1 ms: 2.5 s in tasks of 8, 1.17 s in tasks of 64). The cluster is taken if it reaches
``Settings.min_speedup`` over the loop and beats the best local lane by
``Settings.cluster_min_gain``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._cost_model import format_seconds
from ._decision import Decision
from ._stats import TINY_S

if TYPE_CHECKING:
    from ._config import Settings
    from ._stats import SampleStats


@dataclass(frozen=True)
class ClusterCosts:
    """What the model needs to know of a Dask cluster, measured once per client.

    Attributes:
        address: the scheduler's address (for explanations).
        threads: worker threads in the whole cluster.
        roundtrip_s: one small task submitted and its result received (latency).
        task_s: each more task in a stream of them, submitted together and received in order.
        s_per_byte: moving one byte of argument (or result) between this process and a worker.
        measured: ``False`` for priors (used only to skip measuring when even they lose).
    """

    address: str
    threads: int
    roundtrip_s: float
    task_s: float
    s_per_byte: float
    measured: bool = True


def cluster_chunksize(
    compute_s: float, n: int | None, costs: ClusterCosts, cv: float, settings: Settings
) -> int:
    """Items per task: enough work that one task's cost (``task_s``) is a small share of it,
    and enough tasks to keep every thread busy (as ``choose_chunksize`` does locally)."""
    target_s = max(settings.target_chunk_s, settings.cluster_chunk_cost_ratio * costs.task_s)
    by_time = max(1, round(target_s / max(compute_s, TINY_S)))
    if n is None:
        return by_time
    if n <= 0:
        return 1
    wanted = max(1.0, settings.chunks_per_worker * (1.0 + cv)) * costs.threads
    by_balance = math.ceil(n / wanted)
    return max(1, min(by_time, by_balance))


def predict_cluster_s(stats: SampleStats, costs: ClusterCosts, n: int, chunksize: int) -> float:
    """Predicted wall time of ``n`` items on the cluster (formula in the module doc)."""
    tasks = math.ceil(n / chunksize)
    move_s = n * (stats.serialize_s + (stats.arg_bytes + stats.result_bytes) * costs.s_per_byte)
    dispatch_s = tasks * (costs.task_s + stats.callable_serialize_s)
    work_s = n * stats.compute_s / max(1, min(costs.threads, tasks))
    tail_s = chunksize * stats.compute_s * (1.0 + stats.cv) / 2.0
    return costs.roundtrip_s + move_s + dispatch_s + work_s + tail_s


def plan_cluster(
    stats: SampleStats,
    costs: ClusterCosts,
    settings: Settings,
    n: int,
    *,
    chunksize: int | None,
    length_known: bool,
) -> tuple[float, int]:
    """``(seconds, chunksize)``: the caller's chunk size, else ``cluster_chunksize``'s."""
    size = chunksize or cluster_chunksize(
        stats.compute_s, n if length_known else None, costs, stats.cv, settings
    )
    return predict_cluster_s(stats, costs, n, size), size


def cluster_could_win(
    stats: SampleStats, floor: ClusterCosts, settings: Settings, n: int, local: Decision
) -> bool:
    """Whether the cluster could beat ``local`` even with as many threads as items and the
    optimistic ``floor`` costs: if not, its costs need not be measured (a cheap function or a
    small job stays local without a round trip to the scheduler)."""
    if not stats.picklable or n <= 0:
        return False
    # A lower bound of predict_cluster_s over every chunk size and thread count: no dispatch,
    # no tail, one item's work; only the latency and the client's pickling and sending remain.
    per_item_s = stats.serialize_s + (stats.arg_bytes + stats.result_bytes) * floor.s_per_byte
    best_case = floor.roundtrip_s + n * per_item_s + stats.compute_s
    serial_s = n * stats.compute_s
    local_s = _local_s(local, serial_s)
    return (
        serial_s >= settings.min_speedup * best_case
        and settings.cluster_min_gain * best_case < local_s
    )


def decide_cluster(
    stats: SampleStats,
    costs: ClusterCosts,
    settings: Settings,
    n: int,
    local: Decision,
    *,
    chunksize: int | None = None,
    length_known: bool = True,
) -> Decision | None:
    """The cluster's decision if it reaches ``min_speedup`` and beats ``local`` (the best local
    lane's decision for the same ``n`` items) by ``cluster_min_gain``, else ``None``."""
    if not stats.picklable or n <= 0 or costs.threads < 1:
        return None
    time_s, size = plan_cluster(
        stats, costs, settings, n, chunksize=chunksize, length_known=length_known
    )
    serial_s = n * stats.compute_s
    local_s = _local_s(local, serial_s)
    if serial_s < settings.min_speedup * time_s or settings.cluster_min_gain * time_s >= local_s:
        return None
    return Decision(
        lane="cluster",
        workers=costs.threads,
        chunksize=size,
        predicted_speedup=serial_s / time_s,
        speedup_at_two=local.speedup_at_two,
        reason=f"the cluster at {costs.address} ({costs.threads} threads) beats the best local "
        f"lane ({format_seconds(local_s)}): " + _budget(stats, costs, n, size),
    )


def decide_forced(
    stats: SampleStats,
    costs: ClusterCosts,
    settings: Settings,
    n: int,
    *,
    chunksize: int | None,
    length_known: bool,
) -> Decision:
    """Chunks for ``lane="cluster"``: every item on the cluster, whatever it costs."""
    time_s, size = plan_cluster(
        stats, costs, settings, n, chunksize=chunksize, length_known=length_known
    )
    serial_s = n * stats.compute_s
    return Decision(
        lane="cluster",
        workers=costs.threads,
        chunksize=size,
        predicted_speedup=serial_s / time_s if time_s > 0 else 1.0,
        speedup_at_two=0.0,
        reason=_budget(stats, costs, n, size),
    )


def submit_to_cluster(
    task_s: float, costs: ClusterCosts, local_workers: int, settings: Settings
) -> bool:
    """Whether a ``submit`` call that costs ``task_s`` (and goes to a pool) goes to the cluster
    rather than the local pool: the cluster has more threads, and its round trip is a small
    share of the call (the local rule, ``choose_submit_lane``, with the cluster's figures)."""
    return (
        costs.threads > local_workers
        and task_s >= settings.submit_min_cost_ratio * costs.roundtrip_s
    )


def _local_s(local: Decision, serial_s: float) -> float:
    return serial_s / local.predicted_speedup if local.predicted_speedup > 0 else serial_s


def _budget(stats: SampleStats, costs: ClusterCosts, n: int, chunksize: int) -> str:
    tasks = math.ceil(n / chunksize)
    moved = n * (stats.arg_bytes + stats.result_bytes)
    return (
        f"{n} items x {format_seconds(stats.compute_s)} = "
        f"{format_seconds(n * stats.compute_s)} of work; {tasks} tasks x "
        f"{format_seconds(costs.task_s)}, {moved / 1e6:.3g} MB moved at "
        f"{format_seconds(moved * costs.s_per_byte)}, round trip "
        f"{format_seconds(costs.roundtrip_s)}"
    )
