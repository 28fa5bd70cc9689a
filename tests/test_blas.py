"""BLAS-threaded items: the model uses their one-thread time; a parent whose only extra threads
are OpenBLAS's still forks its workers, and they get their share of BLAS threads.

The numpy cases run in fresh interpreters: importing numpy here would start OpenBLAS threads in
the test process and change what every later test's pool does.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from amorsize_exec import Settings, decide
from amorsize_exec._cost_model import parent_spin_s, predict_parallel_s, worker_item_s
from amorsize_exec._sampler import Sampler
from amorsize_exec._stats import SampleStats
from amorsize_exec.testing import FakeClock, make_profile

SETTINGS = Settings()
TWO_CORES = make_profile(usable_cpus=2, pool_start_s=0.02)


def sampled(compute_s: float, cpu_s: float, single_thread_s: float) -> SampleStats:
    """Four items sampled in-process, small arguments and results, pickling measured."""
    return SampleStats(
        items=4,
        compute_s=compute_s,
        cpu_s=cpu_s,
        cv=0.05,
        max_s=compute_s * 1.1,
        arg_bytes=40.0,
        result_bytes=40.0,
        serialize_s=2e-6,
        pickling_measured=True,
        single_thread_s=single_thread_s,
    )


def svd_like(single_thread_s: float = 0.0) -> SampleStats:
    """As sampled for a 200x200 SVD on 2 OpenBLAS threads: 3.2 ms wall, 6.3 ms CPU."""
    return sampled(0.0032, 0.0063, single_thread_s)


def test_without_a_one_thread_time_two_cores_per_item_leave_a_pool_nothing() -> None:
    assert worker_item_s(svd_like(), TWO_CORES, 2) == pytest.approx(0.0063, rel=0.02)
    assert decide(svd_like(), TWO_CORES, SETTINGS, 96).lane == "serial"


def test_a_one_thread_time_is_what_a_one_core_worker_takes() -> None:
    stats = svd_like(single_thread_s=0.0027)
    assert worker_item_s(stats, TWO_CORES, 2) == pytest.approx(0.0027)
    assert worker_item_s(stats, TWO_CORES, 1) == pytest.approx(0.0032)  # both cores: as sampled
    d = decide(stats, TWO_CORES, SETTINGS, 96)
    assert (d.lane, d.workers) == ("process", 2), d.reason


def solve_like() -> SampleStats:
    """As sampled for a 200x200 matmul + solve on 2 OpenBLAS threads, in a fresh interpreter:
    0.74 ms wall at twice the CPU, 0.75 ms on one thread (its decision: 1.37x predicted)."""
    return sampled(0.00074, 0.00148, 0.00075)


def test_the_samples_spinning_blas_threads_cost_a_pool_on_every_core() -> None:
    spinning = make_profile(usable_cpus=2, pool_start_s=0.02, blas_spin_s=0.1)
    # One thread spins 100 ms on one of the two cores both workers use: 50 ms more each.
    assert parent_spin_s(solve_like(), spinning, 2) == pytest.approx(0.05)
    with_spin = predict_parallel_s(solve_like(), spinning, 197, 2, 25, spawn_s=0.02)
    without = predict_parallel_s(solve_like(), TWO_CORES, 197, 2, 25, spawn_s=0.02)
    assert with_spin - without == pytest.approx(0.05)
    # 146 ms of loop: 1.37x predicted without the spin; it ran at 0.9x its loop (cold).
    assert decide(solve_like(), TWO_CORES, SETTINGS, 197).lane == "process"
    assert decide(solve_like(), spinning, SETTINGS, 197).lane == "serial"


def test_spinning_threads_cost_nothing_on_spare_cores_or_after_one_core_items() -> None:
    four_cores = make_profile(usable_cpus=4, blas_spin_s=0.1)
    assert parent_spin_s(solve_like(), four_cores, 2) == 0.0  # two cores left to the spin
    assert parent_spin_s(solve_like(), four_cores, 4) == pytest.approx(0.1 / 4)
    one_core = make_profile(usable_cpus=2, blas_spin_s=0.1)
    assert parent_spin_s(svd_like(single_thread_s=0.0), one_core, 2) == 0.0  # not timed alone


def test_items_on_several_cores_get_one_more_timed_on_one_thread() -> None:
    clock, cpu = FakeClock(), FakeClock()

    def two_cores(x: int) -> int:
        clock.advance(0.003)
        cpu.advance(0.006)
        return x

    sample = Sampler(SETTINGS, clock=clock, cpu_clock=cpu).run(two_cores, [iter(range(50))])
    # No BLAS library is loaded in this process: the extra item runs as the others did, and
    # says nothing about one thread.
    assert sample.results == [0, 1, 2, 3]
    assert sample.stats is not None
    assert sample.stats.items == 4
    assert sample.stats.single_thread_s == 0.0


SCRIPT = r"""
import json, os, time
import numpy as np
from threadpoolctl import threadpool_info
from amorsize_exec import AutoExecutor

np.linalg.svd(np.eye(50))  # OpenBLAS's threads are running now

def svd(seed):
    a = np.random.default_rng(seed).random((200, 200))
    return round(float(np.linalg.svd(a, compute_uv=False).sum()), 4)

def blas_threads(_):
    return os.getpid(), [lib["num_threads"] for lib in threadpool_info()]

class TwiceTheWall:
    # A CPU clock at twice the wall clock: every item looks BLAS-threaded, whatever the
    # machine's load lets OpenBLAS's second thread do.
    def __call__(self):
        return 2.0 * time.perf_counter()

from amorsize_exec import Settings
from amorsize_exec._sampler import Sampler

sample = Sampler(Settings(), cpu_clock=TwiceTheWall()).run(svd, [iter(range(20))])
# No trial on threads (test_thread_trial.py): this map is about the pool it starts.
with AutoExecutor(settings=Settings(thread_trial_s=0)) as ex:
    assert list(ex.map(svd, range(40))) == [svd(x) for x in range(40)]
    record = ex.last_decision
with AutoExecutor(lane="process") as ex:
    workers = list(ex.map(blas_threads, range(2), chunksize=1))
print(json.dumps({
    "parent_blas": [lib["num_threads"] for lib in threadpool_info()],
    "single_thread_s": sample.stats.single_thread_s,
    "start_method": record.profile.start_method,
    "workers_blas": [n for _, n in workers],
}))
"""


THREAD_SCRIPT = r"""
import threading
import numpy as np
from amorsize_exec._backends._blas import fork_safe_threads

np.linalg.svd(np.eye(50))
alone = fork_safe_threads()
stop = threading.Event()
threading.Thread(target=stop.wait, daemon=True).start()
print(alone, fork_safe_threads())
"""


@pytest.mark.timeout(60)
def test_a_python_thread_beside_openblas_means_no_fork() -> None:
    pytest.importorskip("numpy")
    done = subprocess.run(
        [sys.executable, "-c", THREAD_SCRIPT],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


@pytest.mark.processes
@pytest.mark.timeout(120)
def test_numpy_parent_forks_workers_that_get_one_blas_thread_each() -> None:
    pytest.importorskip("numpy")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    del threadpoolctl
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=100, check=False
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    if seen["parent_blas"] == [1]:
        pytest.skip("this machine's BLAS runs one thread: nothing to limit")
    assert seen["single_thread_s"] > 0, seen  # the sample timed one item on one thread
    assert seen["start_method"] == "fork", seen  # OpenBLAS's threads stop around fork()
    assert all(n == [1] for n in seen["workers_blas"]), seen  # 2 cores / 2 workers


CLOCK_SCRIPT = r"""
import json, os, sys, threading, time
import numpy as np
from amorsize_exec._backends._blas import ProcessCpuClock, _thread_cpu_clock

clock = time.process_time if sys.argv[1:] == ["plain"] else ProcessCpuClock()
python_threads = {t.native_id for t in threading.enumerate()}
blas = [int(t) for t in os.listdir("/proc/self/task") if int(t) not in python_threads]
threading.Thread(target=threading.Event().wait, args=(30,), daemon=True).start()  # idle
a = np.random.default_rng(0).random((300, 300))

def read():
    # Preempted midway, a reading misses what BLAS ran meanwhile: one that took longer than
    # 0.2 ms is not a fair one (a busy machine).
    started = time.perf_counter()
    process = clock()
    fair = time.perf_counter() - started < 0.0002
    others = sum(time.clock_gettime(_thread_cpu_clock(tid)) for tid in blas)
    return process, others + time.thread_time(), fair

windows = []
for _ in range(40):
    process0, threads0, fair0 = read()
    for _ in range(3):
        a @ a
    process1, threads1, fair1 = read()
    if fair0 and fair1:
        windows.append((process1 - process0, threads1 - threads0))
print(json.dumps({"blas_threads": len(blas), "windows": windows}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's per-thread clocks")
@pytest.mark.timeout(60)
def test_the_samplers_clock_counts_blas_threads_up_to_date() -> None:
    # Linux adds another thread's CPU to the process clock at its ticks (~4 ms) only: without
    # reading BLAS's threads' own clocks first, ~2 ms windows of matrix products missed or
    # over-counted their time. Each window's reading must be what the threads' clocks say.
    pytest.importorskip("numpy")
    done = subprocess.run(
        [sys.executable, "-c", CLOCK_SCRIPT],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    if seen["blas_threads"] == 0:
        pytest.skip("this machine's BLAS runs on the calling thread only")
    windows = seen["windows"]
    if len(windows) < 10:
        pytest.skip("too few readings were fair: the machine is too busy")
    assert all(abs(process - threads) < 0.0005 for process, threads in windows), windows
