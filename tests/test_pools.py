"""Warm pools and who owns them (design §6): shared between executors, untouched by one
executor's shutdown, replaced when broken, and gone when the interpreter exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import loky
import psutil
import pytest

from _polling import wait_until
from _workloads import (
    exit_now,
    exit_on,
    note_pid,
    pid_after_spin,
    square_after_spin,
    worker_pid,
    worker_pids,
)
from amorsize_exec import AutoExecutor, WorkerPools
from amorsize_exec._backends import PoolSpec, PrivatePool
from amorsize_exec.testing import FakeProbe

pytestmark = [pytest.mark.processes, pytest.mark.timeout(60)]

TESTS_DIR = Path(__file__).resolve().parent


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_two_executors_share_one_warm_pool(fake_probe: FakeProbe, pools: WorkerPools) -> None:
    spec = PoolSpec(2)
    assert not pools.is_warm(spec)
    with AutoExecutor(lane="process", probe=fake_probe, pools=pools) as first:
        first_pids = {pid for _, pid in first.map(pid_after_spin, range(20), [0.01] * 20)}
    assert pools.is_warm(spec), "the pool stays warm after its executor's shutdown"
    lease = pools.lease(spec)
    assert lease.warm
    lease.release()
    with AutoExecutor(lane="process", probe=fake_probe, pools=pools) as second:
        second_pids = {pid for _, pid in second.map(pid_after_spin, range(20), [0.01] * 20)}
    assert second_pids <= first_pids, "the second executor ran on the first one's workers"
    assert os.getpid() not in second_pids


def test_auto_lane_counts_a_warm_pool_as_free(fake_probe: FakeProbe, pools: WorkerPools) -> None:
    with AutoExecutor(lane="process", probe=fake_probe, pools=pools) as first:
        list(first.map(worker_pid, range(4)))
    with AutoExecutor(probe=fake_probe, pools=pools) as second:
        results = list(second.map(square_after_spin, range(30), [0.01] * 30))
        decision = second.last_decision
    assert results == [x * x for x in range(30)]
    assert decision is not None
    assert decision.lane == "process", decision.summary()
    assert "pool warm" in decision.decision.reason


def test_one_executors_shutdown_does_not_break_anothers_map(
    fake_probe: FakeProbe, pools: WorkerPools
) -> None:
    first = AutoExecutor(lane="process", probe=fake_probe, pools=pools)
    second = AutoExecutor(lane="process", probe=fake_probe, pools=pools)
    try:
        mine = first.map(square_after_spin, range(40), [0.01] * 40, chunksize=1)
        theirs = second.map(square_after_spin, range(40), [0.01] * 40, chunksize=1)
        got = [next(theirs) for _ in range(5)]
        assert next(mine) == 0
        first.shutdown(wait=True, cancel_futures=True)
        got += list(theirs)
        assert got == [x * x for x in range(40)]
        # The shared pool is still there for everyone.
        assert pools.is_warm(PoolSpec(2))
        with pytest.raises(RuntimeError):
            first.submit(worker_pid)
        assert second.submit(worker_pid).result(timeout=30) != os.getpid()
    finally:
        first.shutdown()
        second.shutdown()


def test_a_broken_pool_is_replaced_on_the_next_lease(pools: WorkerPools) -> None:
    spec = PoolSpec(2)
    lease = pools.lease(spec)
    first_pid = lease.submit(worker_pid).result(timeout=30)
    with pytest.raises(BrokenProcessPool):
        lease.submit(exit_now).result(timeout=10)
    assert lease.broken
    assert not pools.is_warm(spec)
    lease.release()
    fresh = pools.lease(spec)
    try:
        assert not fresh.broken
        assert not fresh.warm
        pid = fresh.submit(worker_pid).result(timeout=30)
    finally:
        fresh.release()
    assert pid != first_pid
    assert pools.is_warm(spec)


def test_a_broken_private_pool_is_replaced(fake_probe: FakeProbe, tmp_path: Path) -> None:
    with AutoExecutor(
        lane="process", probe=fake_probe, initializer=note_pid, initargs=(str(tmp_path / "i"),)
    ) as ex:
        with pytest.raises(BrokenProcessPool):
            list(ex.map(exit_on, range(20), timeout=10))
        assert list(ex.map(square_after_spin, range(10), [0.0] * 10)) == [x * x for x in range(10)]


def test_private_pool_workers_stop_at_shutdown(fake_probe: FakeProbe, tmp_path: Path) -> None:
    ex = AutoExecutor(
        lane="process", probe=fake_probe, initializer=note_pid, initargs=(str(tmp_path / "i"),)
    )
    pids = {pid for _, pid in ex.map(pid_after_spin, range(10), [0.01] * 10)}
    assert pids
    ex.shutdown(wait=True)
    assert wait_until(lambda: all(gone(p) for p in pids), 10)


def test_least_recently_used_idle_pool_is_stopped(pools: WorkerPools) -> None:
    pids: dict[int, int] = {}
    for workers in (1, 2, 3):
        lease = pools.lease(PoolSpec(workers))
        pids[workers] = lease.submit(worker_pid).result(timeout=30)
        lease.release()
    assert not pools.is_warm(PoolSpec(1))
    assert pools.is_warm(PoolSpec(2))
    assert pools.is_warm(PoolSpec(3))
    assert wait_until(lambda: gone(pids[1]), 10)
    assert not gone(pids[2])
    assert pids[1] not in worker_pids()


_EXIT_SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
import loky
import psutil
from _workloads import note_pid, pid_after_spin, sleep_then_return
from amorsize_exec import AutoExecutor
from amorsize_exec.testing import FakeProbe

setup = {setup}
ex = AutoExecutor(lane="process", probe=FakeProbe(), **setup)
used = sorted({{pid for _, pid in ex.map(pid_after_spin, range(12), [0.01] * 12)}})
if {in_flight}:
    pending = ex.map(sleep_then_return, range(8), [0.2] * 8)
    next(pending)
    future = ex.submit(sleep_then_return, 1, 0.3)
children = [p.pid for p in psutil.Process().children(recursive=True)]
print(json.dumps({{"used": used, "children": children}}), flush=True)
# no shutdown: the interpreter exits with the pools (and maybe work) still there
"""


@pytest.mark.parametrize(
    ("setup", "in_flight"),
    [
        ("{}", False),
        ("{}", True),
        ("{'initializer': note_pid, 'initargs': ('/dev/null',)}", False),
    ],
    ids=["shared-idle", "shared-busy", "private-idle"],
)
def test_interpreter_exit_leaves_no_orphan_workers(setup: str, in_flight: bool) -> None:
    script = _EXIT_SCRIPT.format(tests=str(TESTS_DIR), setup=setup, in_flight=in_flight)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["used"], "the script ran its map on workers"
    assert set(report["used"]) <= set(report["children"])
    children = report["children"]
    assert wait_until(lambda: all(gone(p) for p in children), 10), [
        p for p in children if not gone(p)
    ]


def test_a_pool_whose_idle_worker_was_killed_is_replaced(
    fake_probe: FakeProbe, pools: WorkerPools
) -> None:
    # A worker killed between two maps (OOM killer, an operator): the next map gets a fresh
    # pool instead of failing on the dead one.
    with AutoExecutor(lane="process", probe=fake_probe, pools=pools) as ex:
        before = {pid for _, pid in ex.map(pid_after_spin, range(20), [0.01] * 20)}
        victim = psutil.Process(sorted(before)[0])
        victim.kill()
        victim.wait(timeout=10)
        time.sleep(0.5)  # let the pool notice
        after = list(ex.map(pid_after_spin, range(20), [0.001] * 20))
        assert ex.submit(worker_pid).result(timeout=30) != os.getpid()
    assert [x for x, _ in after] == list(range(20))
    assert victim.pid not in {pid for _, pid in after}


def _blas_threads() -> tuple[str | None, str | None]:
    return os.environ.get("OMP_NUM_THREADS"), os.environ.get("OPENBLAS_NUM_THREADS")


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_workers_get_their_share_of_blas_threads(fake_probe: FakeProbe) -> None:
    with AutoExecutor(lane="process", probe=fake_probe) as ex:
        limits = ex.submit(_blas_threads).result(timeout=30)
    share = str(max(1, loky.cpu_count() // 2))
    assert limits == (share, share)


@pytest.mark.timeout(60)
def test_a_pool_counts_as_warm_once_a_worker_has_answered_not_when_asked() -> None:
    # Decisions treat a warm pool as free: one still starting (0.3 s initializer) is not.
    pool = PrivatePool(
        2, mp_context=None, initializer=time.sleep, initargs=(0.3,), max_tasks_per_child=None
    )
    lease = pool.lease()
    try:
        answered = lease.start()
        assert not pool.is_warm()
        answered.result(timeout=30)
        assert wait_until(pool.is_warm, timeout_s=5.0)
    finally:
        lease.release()
        pool.shutdown(wait=True)
