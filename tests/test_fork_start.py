"""A new shared pool forks its workers only while the process runs a single thread (Linux).

Each case runs in a fresh interpreter, because whether this test process has threads of its own
(pools of earlier tests, plugins) is not the test's to choose. The pool's start priors are set
through the environment so that the decision hangs on the start method alone: a loky start of
5 s makes 40 x 20 ms of work serial, a forked start of 10 ms makes it parallel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from amorsize_exec._backends import PoolSpec, WorkerPools
from amorsize_exec._backends._loky import single_threaded
from amorsize_exec.testing import make_profile

SCRIPT = r"""
import json, os, sys, threading, time
from amorsize_exec import AutoExecutor

def spin(x):
    end = time.perf_counter() + 0.02
    while time.perf_counter() < end:
        pass
    return x

def about_me(_):
    with open("/proc/self/cmdline", "rb") as f:
        command = f.read()
    return command.decode(errors="replace"), os.environ.get("OMP_NUM_THREADS")

if sys.argv[1] == "thread":
    stop = threading.Event()
    threading.Thread(target=stop.wait, daemon=True).start()
with open("/proc/self/cmdline", "rb") as f:
    me = f.read().decode(errors="replace")
with AutoExecutor() as ex:
    assert list(ex.map(spin, range(40))) == list(range(40))
    record = ex.last_decision
with AutoExecutor(lane="process") as ex:
    workers = list(ex.map(about_me, range(2), chunksize=1))
print(json.dumps({
    "lane": record.decision.lane,
    "reason": record.decision.reason,
    "start_method": record.profile.start_method,
    "worker_is_fork": [command == me for command, _ in workers],
    "worker_omp": [omp for _, omp in workers],
}))
"""

PRIORS = {
    "AMORSIZE_EXEC_PRIOR_POOL_START_S": "5.0",
    "AMORSIZE_EXEC_PRIOR_FORK_START_S": "0.01",
}

needs_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="pools fork their workers on Linux only (and the scripts read /proc)",
)


def script_case(test: Callable[[], None]) -> Callable[[], None]:
    """A case run in a fresh interpreter: Linux only, starts processes, 60 s at most."""
    for mark in (pytest.mark.timeout(60), pytest.mark.processes, needs_linux):
        test = mark(test)
    return test


def run_script(mode: str, **env: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=50,
        env={**os.environ, **PRIORS, **env},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


@script_case
def test_a_single_threaded_script_forks_its_pool_and_counts_the_cheaper_start() -> None:
    result = run_script("plain")
    assert result["start_method"] == "fork"
    assert result["lane"] == "process", result["reason"]
    assert "pool start 10 ms (forked)" in str(result["reason"])
    assert result["worker_is_fork"] == [True, True]
    share = str(max(1, (os.cpu_count() or 1) // 2))
    assert result["worker_omp"] == [share, share], "BLAS limits set by the initializer"


@script_case
def test_a_process_with_a_thread_never_forks() -> None:
    result = run_script("thread")
    assert result["start_method"] == "loky"
    assert result["lane"] == "serial", "a loky start of 5 s does not pay for 0.8 s of work"
    assert result["worker_is_fork"] == [False, False]


@script_case
def test_the_setting_turns_forking_off() -> None:
    result = run_script("plain", AMORSIZE_EXEC_FORK_SINGLE_THREADED="0")
    assert result["start_method"] == "loky"
    assert result["worker_is_fork"] == [False, False]


IDLE_SCRIPT = r"""
import json, os
from amorsize_exec import Settings, WorkerPools
from amorsize_exec._backends import PoolSpec

pools = WorkerPools(Settings(pool_idle_timeout_s=0.0))
first = pools.lease(PoolSpec(2))
first_pid = first.submit(os.getpid).result()
first.release()
second = pools.lease(PoolSpec(2))  # idle past the timeout: replaced, not re-forked by loky
second_pid = second.submit(os.getpid).result()
second.release()
pools.shutdown()
print(json.dumps({"forked": [first.forked, second.forked], "same": first_pid == second_pid}))
"""


@script_case
def test_an_idle_forked_pool_is_replaced_by_a_loky_one() -> None:
    """The first pool's threads still run when the second is made: it must not fork."""
    out = subprocess.run(
        [sys.executable, "-c", IDLE_SCRIPT], capture_output=True, text=True, timeout=50, check=False
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"forked": [True, False], "same": False}


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_a_live_pool_makes_the_next_one_loky(pools: WorkerPools) -> None:
    first = pools.lease(PoolSpec(2))
    try:
        first.start().result()
        assert not single_threaded(), "the pool's own threads run in this process"
        assert not pools.forks_new_pools()
        second = pools.lease(PoolSpec(3))
        second.release()
        assert not second.forked
    finally:
        first.release()


def test_a_forking_profile_has_the_fork_start_cost() -> None:
    profile = make_profile(pool_start_s=0.3, fork_start_s=0.02, worker_launch_s=0.005)
    forked = profile.forking()
    assert forked.start_method == "fork"
    assert forked.spawn_s(2) == 0.02
    assert forked.spawn_s(4) == pytest.approx(0.03)
    assert make_profile(fork_start_s=None).forking() == make_profile(fork_start_s=None)
