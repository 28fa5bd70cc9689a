"""The cluster's term of the cost model (``_cost_cluster``): exact cases and invariants on fixed
cluster costs, no cluster needed."""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from amorsize_exec import ClusterCosts, Decision, Settings, decide
from amorsize_exec._cost_cluster import (
    cluster_chunksize,
    cluster_could_win,
    decide_cluster,
    decide_forced,
    predict_cluster_s,
    submit_to_cluster,
)
from amorsize_exec.testing import make_profile
from test_cost_model import stats

SETTINGS = Settings()
TWO_CORES = make_profile(usable_cpus=2)
#: A 64-thread cluster with a loopback LocalCluster's measured costs (test_cluster.py figures).
BIG = ClusterCosts("tcp://scheduler:8786", 64, roundtrip_s=0.01, task_s=0.003, s_per_byte=1e-8)
#: A cluster as large as this machine: no more threads than the local pool.
SMALL = ClusterCosts("tcp://scheduler:8786", 2, roundtrip_s=0.01, task_s=0.003, s_per_byte=1e-8)
FLOOR = ClusterCosts("tcp://scheduler:8786", 1, 0.002, 0.0, 1e-9, measured=False)


def local(compute_s: float, n: int) -> Decision:
    """What the local model decides for ``n`` items on a 2-core machine with a warm pool."""
    return decide(stats(compute_s), TWO_CORES, SETTINGS, n, warm_workers=2)


def test_the_formula_term_by_term() -> None:
    s = stats(
        0.01, cv=0.0, serialize_s=1e-5, arg_bytes=1000.0, result_bytes=0.0, callable_serialize_s=0.0
    )
    n, chunk = 1000, 10
    expected = (
        0.01  # round trip
        + n * (1e-5 + 1000 * 1e-8)  # the client pickles and sends every item
        + 100 * 0.003  # 100 tasks through the scheduler, in turn
        + n * 0.01 / 64  # the workers' share
        + chunk * 0.01 / 2  # the tail
    )
    assert math.isclose(predict_cluster_s(s, BIG, n, chunk), expected)


def test_a_large_costly_job_goes_to_a_larger_cluster() -> None:
    here = local(0.01, 10_000)
    assert here.lane == "process"
    remote = decide_cluster(stats(0.01), BIG, SETTINGS, 10_000, here)
    assert remote is not None
    assert remote.lane == "cluster"
    assert remote.workers == 64
    assert remote.predicted_speedup > here.predicted_speedup
    assert "beats the best local lane" in remote.reason
    # Chunks sized for the cluster: ~20 task costs of work each, and a few per thread.
    assert remote.chunksize == cluster_chunksize(0.01, 10_000, BIG, 0.05, SETTINGS)
    assert remote.chunksize * 0.01 >= SETTINGS.cluster_chunk_cost_ratio * BIG.task_s


def test_a_cheap_function_stays_local_without_measuring() -> None:
    here = local(1e-7, 1_000_000)
    assert here.lane == "serial"
    assert not cluster_could_win(stats(1e-7), FLOOR, SETTINGS, 1_000_000, here)
    assert decide_cluster(stats(1e-7), BIG, SETTINGS, 1_000_000, here) is None


def test_a_small_job_stays_local() -> None:
    here = local(0.002, 5)
    assert decide_cluster(stats(0.002), BIG, SETTINGS, 5, here) is None


def test_a_cluster_no_larger_than_the_machine_loses_to_a_warm_pool() -> None:
    here = local(0.01, 2000)
    assert decide_cluster(stats(0.01), SMALL, SETTINGS, 2000, here) is None


def test_large_arguments_stay_local() -> None:
    """1 MB arguments at 10 ns a byte: 10 ms each to move, for 1 ms of work."""
    heavy = stats(0.001, arg_bytes=1e6, serialize_s=2e-4)
    here = decide(heavy, TWO_CORES, SETTINGS, 200, warm_workers=2)
    assert decide_cluster(heavy, BIG, SETTINGS, 200, here) is None


def test_unpicklable_items_never_go_to_the_cluster() -> None:
    s = replace(stats(0.01), picklable=False)
    here = Decision.serial("cannot use a pool")
    assert not cluster_could_win(s, FLOOR, SETTINGS, 10_000, here)
    assert decide_cluster(s, BIG, SETTINGS, 10_000, here) is None


def test_forced_lane_sizes_chunks_whatever_it_costs() -> None:
    forced = decide_forced(stats(1e-6), SMALL, SETTINGS, 1000, chunksize=None, length_known=True)
    assert forced.lane == "cluster"
    assert forced.workers == 2
    assert forced.chunksize == cluster_chunksize(1e-6, 1000, SMALL, 0.05, SETTINGS)
    chosen = decide_forced(stats(1e-6), SMALL, SETTINGS, 1000, chunksize=7, length_known=True)
    assert chosen.chunksize == 7


def test_submit_goes_to_the_cluster_only_if_larger_and_the_call_is_worth_a_trip() -> None:
    assert submit_to_cluster(0.05, BIG, 2, SETTINGS)
    assert not submit_to_cluster(0.05, SMALL, 2, SETTINGS)  # no more threads than here
    assert not submit_to_cluster(0.015, BIG, 2, SETTINGS)  # under 2 round trips


@given(
    compute_s=st.floats(1e-7, 1.0),
    n=st.integers(1, 100_000),
    threads=st.integers(1, 512),
)
def test_the_cluster_is_taken_only_if_it_beats_both_the_loop_and_the_local_lane(
    compute_s: float, n: int, threads: int
) -> None:
    costs = ClusterCosts("tcp://s:1", threads, 0.01, 0.003, 1e-8)
    here = local(compute_s, n)
    remote = decide_cluster(stats(compute_s), costs, SETTINGS, n, here)
    if remote is None:
        return
    assert remote.predicted_speedup >= SETTINGS.min_speedup
    assert remote.predicted_speedup >= SETTINGS.cluster_min_gain * here.predicted_speedup
    assert 1 <= remote.chunksize <= max(1, n)


@given(compute_s=st.floats(1e-7, 1.0), n=st.integers(1, 100_000))
def test_the_floor_never_skips_a_cluster_that_would_win(compute_s: float, n: int) -> None:
    """Measured costs are never below the floor's, so a cluster the floor rules out loses."""
    here = local(compute_s, n)
    if not cluster_could_win(stats(compute_s), FLOOR, SETTINGS, n, here):
        assert decide_cluster(stats(compute_s), BIG, SETTINGS, n, here) is None
