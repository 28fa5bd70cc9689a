"""The cluster lane on a real Dask ``LocalCluster`` (loopback, 2 worker processes x 1 thread).

The drop-in suite runs against ``lane="cluster"``; then what only a cluster has: equal items
run once each (``pure=False``), cancelled Dask futures, the choice between local lanes and the
cluster, ``submit`` routed to it, ``dask.compute`` on the executor, a worker killed mid-map,
a scheduler that goes away. No client is mocked; only the local machine is faked where the
decision must not depend on this machine's cores.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import itertools
import logging
import os
import pickle
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Executor
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

import _children
from _suite_map import EndlessInputSuite, MapSuite
from _workloads import double, pid_after_spin, sleep_then_return, square_after_spin
from amorsize_exec import AutoExecutor, ClusterLostError, Settings, default_cluster_probe
from amorsize_exec.testing import FakeProbe, make_profile

if TYPE_CHECKING:
    import distributed

CLUSTER_TEST = [pytest.mark.cluster, pytest.mark.processes, pytest.mark.timeout(120)]
pytestmark = CLUSTER_TEST


def dd() -> ModuleType:
    """Dask distributed, imported when a cluster test runs, not when tests are collected: it
    loads numpy (and its BLAS threads), which the other tests want absent from this process."""
    return importlib.import_module("distributed")


def start_cluster() -> distributed.LocalCluster:
    return dd().LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        silence_logs=logging.CRITICAL,
    )


def _worker_pids(cluster: distributed.LocalCluster) -> set[int]:
    pids = set()
    for nanny in list(cluster.workers.values()):
        process = getattr(nanny, "process", None)
        pid = getattr(process, "pid", None)
        if pid is not None:
            pids.add(pid)
    return pids


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.LocalCluster]:
    started = start_cluster()
    _children.long_lived.append(lambda: _worker_pids(started))
    try:
        yield started
    finally:
        _children.long_lived.clear()
        started.close()


@pytest.fixture(scope="module")
def client(cluster: distributed.LocalCluster) -> Iterator[distributed.Client]:
    with dd().Client(cluster, set_as_default=False) as made:
        yield made


@pytest.fixture(scope="module")
def scheduler_address(cluster: distributed.LocalCluster) -> str:
    return str(cluster.scheduler_address)


def _one_cpu() -> FakeProbe:
    """A local machine of one CPU: no local pool can win, so a costly map goes to the cluster."""
    return FakeProbe(make_profile(usable_cpus=1))


# --- the drop-in suite ------------------------------------------------------------------------


class TestClusterLane(MapSuite, EndlessInputSuite):
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = CLUSTER_TEST

    @pytest.fixture(autouse=True)
    def _client(self, client: distributed.Client) -> None:
        self._dask_client = client

    def make_executor(self, **kw: Any) -> Executor:
        return AutoExecutor(lane="cluster", client=self._dask_client, **kw)


# --- what only a cluster has ------------------------------------------------------------------


def fresh_token(_: object) -> str:
    return uuid.uuid4().hex


def test_equal_items_each_run(client: distributed.Client) -> None:
    """``pure=False``: with Dask's default, equal chunks would share a key and run once."""
    with AutoExecutor(lane="cluster", client=client) as ex:
        tokens = list(ex.map(fresh_token, [0] * 40, chunksize=1))
    assert len(set(tokens)) == 40


def test_forced_lane_records_the_cluster(client: distributed.Client) -> None:
    with AutoExecutor(lane="cluster", client=client) as ex:
        assert list(ex.map(square_after_spin, range(20), [0.002] * 20)) == [
            x * x for x in range(20)
        ]
        decision = ex.last_decision
    assert decision is not None
    assert decision.lane == "cluster"
    assert decision.forced
    assert decision.decision.workers == 2  # the cluster's threads
    assert "cluster threads" in decision.summary()


def test_cancel_futures_cancels_the_dask_tasks(client: distributed.Client) -> None:
    ex = AutoExecutor(lane="cluster", client=client)
    results = ex.map(sleep_then_return, range(40), [0.2] * 40, chunksize=1)
    first = next(results)
    ex.shutdown(wait=False, cancel_futures=True)
    rest: list[int] = []
    with pytest.raises(concurrent.futures.CancelledError):
        rest.extend(results)
    assert first == 0
    assert len(rest) <= 4  # at most the window (2 threads x 2 chunks) finished; none sent after
    # Nothing of the map stays on the cluster.
    assert _wait_for(lambda: not any(client.processing().values()), 10)


def test_generator_read_lazily(client: distributed.Client) -> None:
    read = itertools.count()

    def numbers() -> Iterator[int]:
        for x in itertools.count():
            next(read)
            yield x

    with AutoExecutor(lane="cluster", client=client) as ex:
        results = ex.map(double, numbers(), chunksize=2)
        assert list(itertools.islice(results, 10)) == [x * 2 for x in range(10)]
        assert next(read) < 40  # the window is bounded: 2 threads x 2 chunks x 2 items, ahead
        del results


def test_a_scheduler_address_gets_a_client_of_its_own(scheduler_address: str) -> None:
    ex = AutoExecutor(lane="cluster", client=scheduler_address)
    made = ex._runtime.cluster.client  # type: ignore[union-attr]
    assert list(ex.map(double, range(10))) == [x * 2 for x in range(10)]
    ex.shutdown(wait=True)
    assert made.status == "closed"


def test_a_client_given_is_never_closed(client: distributed.Client) -> None:
    with AutoExecutor(lane="cluster", client=client) as ex:
        list(ex.map(double, range(4)))
    assert client.status == "running"


def test_wrong_client_or_lane_is_refused() -> None:
    with pytest.raises(TypeError, match="client must be"):
        AutoExecutor(client=42)
    with pytest.raises(ValueError, match="lane='cluster' needs"):
        AutoExecutor(lane="cluster")
    with pytest.raises(ValueError, match="initializer"):
        AutoExecutor(client="tcp://127.0.0.1:1", initializer=print)


# --- the decision -----------------------------------------------------------------------------


def test_a_costly_map_goes_to_the_cluster(client: distributed.Client) -> None:
    with AutoExecutor(client=client, probe=_one_cpu()) as ex:
        results = list(ex.map(square_after_spin, range(200), [0.01] * 200))
        decision = ex.last_decision
    assert results == [x * x for x in range(200)]
    assert decision is not None
    assert decision.lane == "cluster", decision.summary()
    assert "beats the best local lane" in decision.decision.reason
    assert decision.decision.chunksize > 1


def test_a_cheap_map_stays_local_without_asking_the_cluster(client: distributed.Client) -> None:
    probe = default_cluster_probe()
    probe.reset()
    with AutoExecutor(client=client, probe=_one_cpu()) as ex:
        assert list(ex.map(double, range(10_000))) == [x * 2 for x in range(10_000)]
        decision = ex.last_decision
    assert decision is not None
    assert decision.lane == "serial", decision.summary()
    assert probe.known(client) is None  # no round trip to the scheduler was made


def test_a_small_costly_job_stays_local(client: distributed.Client) -> None:
    with AutoExecutor(client=client, probe=_one_cpu()) as ex:
        assert list(ex.map(square_after_spin, range(6), [0.002] * 6)) == [x * x for x in range(6)]
        decision = ex.last_decision
    assert decision is not None
    assert decision.lane == "serial", decision.summary()


def test_costs_are_measured_once_per_client(client: distributed.Client) -> None:
    probe = default_cluster_probe()
    probe.reset()
    first = probe.costs(client)
    assert probe.costs(client) is first
    assert first.threads == 2
    assert first.measured
    assert 0 < first.roundtrip_s < 5
    assert first.task_s >= 0
    assert first.s_per_byte >= 0  # 1 MB on loopback: a few ms, within the round trips' noise
    with AutoExecutor(client=client) as ex:
        used = ex._runtime.cluster.costs()  # type: ignore[union-attr]
    floor = Settings()
    assert used.roundtrip_s >= floor.prior_cluster_roundtrip_s
    assert used.s_per_byte >= floor.prior_cluster_s_per_byte


def unpicklable_closure() -> Any:
    lock = threading.Lock()

    def uses_lock(x: int) -> int:
        with lock:
            return square_after_spin(x, 0.005)

    return uses_lock


def test_an_unpicklable_function_stays_local_and_says_why(client: distributed.Client) -> None:
    fn = unpicklable_closure()
    with AutoExecutor(client=client, probe=_one_cpu()) as ex:
        assert list(ex.map(fn, range(100))) == [x * x for x in range(100)]
        decision = ex.last_decision
    assert decision is not None
    assert decision.lane == "serial"
    assert "cannot be pickled" in decision.decision.reason


def test_unpicklable_work_on_the_forced_lane_raises_as_the_local_pool_does(
    client: distributed.Client,
) -> None:
    with AutoExecutor(lane="cluster", client=client) as ex:
        with pytest.raises(pickle.PicklingError, match="Could not pickle the task"):
            list(ex.map(unpicklable_closure(), range(3)))
        with pytest.raises(pickle.PicklingError, match="Could not pickle the task"):
            ex.submit(double, threading.Lock()).result(timeout=30)


class RefusesPickling:
    def __reduce__(self) -> Any:
        raise pickle.PicklingError("Error in pickle")


def unpicklable_result(_: object) -> RefusesPickling:
    return RefusesPickling()


def test_a_result_that_cannot_be_pickled_raises_a_pickling_error(
    client: distributed.Client,
) -> None:
    """As the stdlib's pool (CPython's test_error_during_result_pickle_on_worker)."""
    with AutoExecutor(lane="cluster", client=client) as ex:
        with pytest.raises(pickle.PicklingError, match="Could not pickle the result"):
            ex.submit(unpicklable_result, 0).result(timeout=30)
        with pytest.raises(pickle.PicklingError, match="Could not pickle the result"):
            list(ex.map(unpicklable_result, range(2)))


# --- submit and dask.compute ---------------------------------------------------------------


def test_submit_on_the_forced_lane(client: distributed.Client) -> None:
    with AutoExecutor(lane="cluster", client=client) as ex:
        future = ex.submit(double, 21)
        failing = ex.submit(int, "not a number")
        assert future.result(timeout=30) == 42
        with pytest.raises(ValueError, match="invalid literal"):
            failing.result(timeout=30)


def test_submit_routes_costly_calls_to_a_larger_cluster(client: distributed.Client) -> None:
    """0.2 s calls: worth two round trips (~10-20 ms) even on a loaded machine."""
    default_cluster_probe().costs(client)  # known: submit never waits for a measurement
    cluster_pids = set(client.run(os.getpid).values())
    with AutoExecutor(client=client, probe=FakeProbe(make_profile(usable_cpus=1))) as ex:
        first = [ex.submit(pid_after_spin, x, 0.2) for x in range(4)]  # the probe, then a lane
        assert [f.result(timeout=60)[0] for f in first] == list(range(4))
        later = [ex.submit(pid_after_spin, x, 0.2) for x in range(6)]
        ran_in = {f.result(timeout=60)[1] for f in later}
        decision = ex.last_decision
    assert ran_in <= cluster_pids, (ran_in, cluster_pids)
    assert decision is not None
    assert decision.lane == "cluster", decision.summary()


def test_dask_compute_with_the_executor_as_scheduler(client: distributed.Client) -> None:
    dask = importlib.import_module("dask")
    tasks = [dask.delayed(double)(x) for x in range(20)]
    with AutoExecutor(client=client) as ex:
        assert ex._max_workers == 2  # Dask sizes its window from this: the cluster's threads
        (results,) = dask.compute(tasks, scheduler=ex)
    assert list(results) == [x * 2 for x in range(20)]


# --- faults -----------------------------------------------------------------------------------


def die_once(x: int, flag: str) -> int:
    """Kills its worker the first time it sees item 5 (``flag`` records that it did)."""
    if x == 5 and not os.path.exists(flag):
        Path(flag).touch()
        os._exit(1)
    time.sleep(0.01)
    return x * 2


def always_die(x: int) -> int:
    os._exit(1)


def test_a_worker_killed_mid_map_is_rerun_by_dask(tmp_path: Path) -> None:
    cluster = start_cluster()
    try:
        with dd().Client(cluster, set_as_default=False) as client:
            flag = str(tmp_path / "died")
            with AutoExecutor(lane="cluster", client=client) as ex:
                results = list(ex.map(die_once, range(20), [flag] * 20, chunksize=2))
            assert results == [x * 2 for x in range(20)]
            assert os.path.exists(flag)  # a worker did die
    finally:
        cluster.close()


def test_a_task_that_kills_every_worker_raises_within_seconds() -> None:
    cluster = start_cluster()
    try:
        with (
            dd().Client(cluster, set_as_default=False) as client,
            AutoExecutor(lane="cluster", client=client) as ex,
        ):
            started = time.monotonic()
            with pytest.raises(dd().KilledWorker):
                list(ex.map(always_die, range(4), timeout=60))
            assert time.monotonic() - started < 30  # 4 workers die in turn: ~2-7 s here
    finally:
        cluster.close()


def test_a_scheduler_that_goes_away_raises_a_clear_error() -> None:
    cluster = start_cluster()
    client = dd().Client(cluster, set_as_default=False)
    try:
        with AutoExecutor(lane="cluster", client=client) as ex:
            results = ex.map(sleep_then_return, range(40), [0.2] * 40, chunksize=1)
            assert next(results) == 0
            cluster.close()
            with pytest.raises(ClusterLostError, match="lost task"):
                list(results)
    finally:
        client.close()
        cluster.close()


def _wait_for(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
