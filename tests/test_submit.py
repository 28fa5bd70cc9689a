"""``submit``: a Future at once, never the caller's thread; cheap calls in-process, costly ones
in workers; safe from many threads; usable from asyncio."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future, wait
from pathlib import Path

import pytest

from _workloads import (
    CustomError,
    double,
    raise_custom,
    spin,
    wait_for_path,
    where,
    worker_pid,
    worker_pids,
)
from amorsize_exec import AutoExecutor, WorkerPools
from amorsize_exec._backends import PoolSpec
from amorsize_exec._submit import SubmitRouter
from amorsize_exec.testing import FakeProbe, make_profile


def warm_up(pools: WorkerPools, workers: int = 2) -> set[int]:
    """Start the shared pool ``submit`` will use, as an earlier run would have; its pids."""
    lease = pools.lease(PoolSpec(workers))
    try:
        futures = [lease.submit(where, 0.05) for _ in range(workers)]
        used = {f.result(timeout=30)[0] for f in futures}
    finally:
        lease.release()
    pids = worker_pids()
    assert used <= pids
    return pids


@pytest.mark.timeout(30)
@pytest.mark.parametrize("lane", ["auto", "serial"])
def test_submit_never_runs_on_the_callers_thread(lane: str, fake_probe: FakeProbe) -> None:
    with AutoExecutor(lane=lane, probe=fake_probe) as ex:  # type: ignore[arg-type]
        futures = [ex.submit(where) for _ in range(5)]
        assert all(isinstance(f, Future) for f in futures)
        places = [f.result(timeout=10) for f in futures]
    caller = (os.getpid(), threading.get_ident())
    assert caller not in places


@pytest.mark.processes
@pytest.mark.timeout(30)
@pytest.mark.parametrize("lane", ["auto", "serial", "process"])
def test_submit_returns_before_a_slow_task_ends(
    lane: str, fake_probe: FakeProbe, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    with AutoExecutor(lane=lane, probe=fake_probe) as ex:  # type: ignore[arg-type]
        future = ex.submit(wait_for_path, str(gate))
        # Returned while the task is blocked: the caller's thread is free to let it go.
        assert not future.done()
        gate.touch()
        assert future.result(timeout=10) == str(gate)


@pytest.mark.processes
@pytest.mark.timeout(30)
def test_forced_process_lane_runs_in_workers(fake_probe: FakeProbe) -> None:
    with AutoExecutor(lane="process", probe=fake_probe) as ex:
        pids = {ex.submit(worker_pid).result(timeout=30) for _ in range(6)}
        assert [ex.submit(double, x).result(timeout=30) for x in range(5)] == [0, 2, 4, 6, 8]
    assert os.getpid() not in pids


@pytest.mark.processes
@pytest.mark.timeout(30)
def test_cheap_submits_run_in_process_once_their_first_call_was_timed_in_a_worker(
    fake_probe: FakeProbe,
) -> None:
    with AutoExecutor(probe=fake_probe) as ex:
        first = ex.submit(worker_pid).result(timeout=30)
        futures = [ex.submit(double, x) for x in range(500)]
        pids = [ex.submit(worker_pid).result(timeout=10) for _ in range(20)]
        assert [f.result(timeout=10) for f in futures] == [x * 2 for x in range(500)]
        decision = ex.last_decision
    assert first != os.getpid(), "a callable's first call is timed in a worker"
    assert set(pids) == {os.getpid()}, "once measured cheap, calls run in-process"
    assert decision is not None
    assert decision.lane == "serial"
    assert decision.call == "submit"


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_costly_submits_go_to_a_warm_pool(pools: WorkerPools) -> None:
    # The probe is timed in a worker; 50 ms calls are worth a worker (threshold 2 ms with a
    # 0.2 ms round trip), so every call runs there.
    probe = FakeProbe(make_profile(pool_start_s=0.01, chunk_roundtrip_s=0.0002))
    pool_pids = warm_up(pools)
    with AutoExecutor(probe=probe, pools=pools) as ex:
        futures = [ex.submit(where, 0.05) for _ in range(8)]
        places = [f.result(timeout=30) for f in futures]
        later = ex.submit(where, 0.05).result(timeout=30)
        decision = ex.last_decision
    assert {pid for pid, _ in [*places, later]} <= pool_pids
    assert decision is not None
    assert decision.lane == "process"


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_the_first_call_starts_a_cold_pool(cheap_pool_probe: FakeProbe) -> None:
    with AutoExecutor(probe=cheap_pool_probe) as ex:
        pids = [ex.submit(where, 0.02).result(timeout=30)[0] for _ in range(6)]
    assert os.getpid() not in pids


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", ["auto", "serial", "process"])
def test_submit_from_eight_threads_at_once(lane: str, cheap_pool_probe: FakeProbe) -> None:
    start = threading.Barrier(8)
    results: dict[int, list[int]] = {}

    def client(k: int) -> None:
        start.wait()
        futures = [ex.submit(double, k * 100 + i) for i in range(25)]
        futures += [ex.submit(spin, 0.002)]
        results[k] = [f.result(timeout=30) for f in futures[:-1]]
        futures[-1].result(timeout=30)

    with AutoExecutor(lane=lane, probe=cheap_pool_probe) as ex:  # type: ignore[arg-type]
        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert results == {k: [(k * 100 + i) * 2 for i in range(25)] for k in range(8)}


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", ["auto", "process"])
def test_run_in_executor(lane: str, fake_probe: FakeProbe) -> None:
    async def main(ex: AutoExecutor) -> list[int]:
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(ex, double, x) for x in range(10))))

    with AutoExecutor(lane=lane, probe=fake_probe) as ex:  # type: ignore[arg-type]
        assert asyncio.run(main(ex)) == [x * 2 for x in range(10)]


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", ["auto", "serial", "process"])
def test_exceptions_come_back_through_the_future(lane: str, fake_probe: FakeProbe) -> None:
    with AutoExecutor(lane=lane, probe=fake_probe) as ex:  # type: ignore[arg-type]
        futures = [ex.submit(raise_custom, f"boom {i}") for i in range(3)]
        _, not_done = wait(futures, timeout=30)
        assert not not_done
        for i, future in enumerate(futures):
            error = future.exception()
            assert isinstance(error, CustomError)
            assert str(error) == f"boom {i}"
            with pytest.raises(CustomError, match=f"boom {i}"):
                future.result()


@pytest.mark.timeout(30)
def test_submit_checks_its_callable(fake_probe: FakeProbe) -> None:
    with AutoExecutor(probe=fake_probe) as ex, pytest.raises(TypeError, match="not callable"):
        ex.submit(42)  # type: ignore[arg-type]


@pytest.mark.timeout(30)
def test_keyword_arguments_reach_the_task(fake_probe: FakeProbe) -> None:
    with AutoExecutor(probe=fake_probe) as ex:
        assert ex.submit(int, "ff", base=16).result(timeout=10) == 255
        assert ex.submit(sorted, [3, 1, 2], reverse=True).result(timeout=10) == [3, 2, 1]


def test_a_router_that_never_ran_anything_shuts_down_and_then_refuses(
    fake_probe: FakeProbe,
) -> None:
    """Its thread is made on first use: one never made must still refuse after shutdown."""
    router = SubmitRouter(AutoExecutor(lane="serial", probe=fake_probe)._runtime)
    router.shutdown(wait=True, cancel_futures=True)
    with pytest.raises(RuntimeError, match="after shutdown"):
        router.submit(double, (1,), {})
