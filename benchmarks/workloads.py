"""The workloads: top-level (picklable) functions and the inputs they run over.

CPU cost comes from a calibrated pure-Python spin loop, not ``sleep``: ``spin(1.0)`` burns about
1 ms of CPU on this machine. The rate (loop iterations per ms) is calibrated once per suite run
by the parent process and handed to every child interpreter and pool worker through the
environment variable ``BENCH_SPIN_ITERS_PER_MS`` (read at import), so that "1 ms" means the same
number of iterations everywhere in one run. A process that imports this module without the
variable calibrates on first use and exports the result for its own children.

Every function returns a value that depends on its input only, so results can be compared with
``list(map(fn, xs))`` across processes.
"""

# Imports inside functions are deliberate: a child interpreter imports only what its one
# contender needs (joblib, numpy, amorsize_exec are not free), and pool workers stay light.
# ruff: noqa: PLC0415

from __future__ import annotations

import hashlib
import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

SPIN_ENV_VAR = "BENCH_SPIN_ITERS_PER_MS"
_MB = 1 << 20

_iters_per_ms: float | None = None


def _loop(iterations: int) -> int:
    x = 0
    for i in range(iterations):
        x += i
    return x


def calibrate(target_ms: float = 50.0, rounds: int = 40) -> float:
    """Measure spin-loop iterations per millisecond: the 25th percentile of ``rounds`` timings of
    about ``target_ms`` each (2 s in all by default).

    The loop runs a while first (Python 3.11+ specialises bytecode on its first executions). On
    the shared 2-core host this suite was built on, the loop's speed swings between two levels
    about 2x apart within seconds; a median lands on whichever level dominated the window (runs
    then took 1.2x longer than nominal). The lower quartile tracks the slow level, so "1 ms" is
    at most about 1 ms and the suite's run time stays bounded.
    """
    _loop(200_000)
    n = 10_000
    while True:  # grow until one round takes about target_ms
        started = time.perf_counter()
        _loop(n)
        elapsed_ms = (time.perf_counter() - started) * 1e3
        if elapsed_ms >= target_ms / 4:
            break
        n *= 2
    n = max(1, int(n * target_ms / elapsed_ms))
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        _loop(n)
        rates.append(n / ((time.perf_counter() - started) * 1e3))
    return statistics.quantiles(rates, n=4)[0]


def iters_per_ms() -> float:
    """The spin rate of this run: from the environment, else calibrated here once and exported."""
    global _iters_per_ms
    if _iters_per_ms is None:
        raw = os.environ.get(SPIN_ENV_VAR)
        if raw:
            _iters_per_ms = float(raw)
        else:
            _iters_per_ms = calibrate()
            os.environ[SPIN_ENV_VAR] = repr(_iters_per_ms)
    return _iters_per_ms


def ensure_calibrated() -> float:
    """Calibrate (if needed) before any child process or pool exists, so all of them inherit it."""
    return iters_per_ms()


def spin(ms: float) -> None:
    """Burn about ``ms`` milliseconds of CPU in pure Python (holds the GIL, like typical code)."""
    _loop(int(ms * iters_per_ms()))


# --- the functions (top level, so plain pickle and every pool can send them by reference) ------


def double(x: int) -> int:
    """Trivial: far cheaper than any dispatch."""
    return x * 2


def pair(x: int) -> tuple[int, int]:
    """Trivial, but its result is a tuple: a GC-tracked allocation per item (see ``tuples_1m``)."""
    return (x, x * 2)


def spin_0p05ms(i: int) -> int:
    spin(0.05)
    return i


def spin_0p5ms(i: int) -> int:
    spin(0.5)
    return i


def spin_1ms(i: int) -> int:
    spin(1.0)
    return i


def spin_10ms(i: int) -> int:
    spin(10.0)
    return i


def spin_50ms(i: int) -> int:
    spin(50.0)
    return i


def spin_200ms(i: int) -> int:
    spin(200.0)
    return i


def spin_var(ms: float) -> int:
    """Heterogeneous cost: the item is its own cost in ms."""
    spin(ms)
    return int(ms * 1000)


def first_and_len(blob: bytes) -> int:
    """Cheap function over a large argument."""
    return blob[0] * 1_000_003 + len(blob)


def make_blob(i: int) -> bytes:
    """Cheap function returning a large (1 MB) result."""
    return bytes((i % 256,)) * _MB


def sleep_10ms(i: int) -> int:
    """I/O-like: waits without using CPU."""
    time.sleep(0.010)
    return i


def sleep_5ms_spin_5ms(i: int) -> int:
    """Half waiting, half CPU: a 5 ms sleep, then 5 ms of spin (threads overlap the waits
    only; the spins hold the GIL)."""
    time.sleep(0.005)
    spin(5.0)
    return i


def sleep_10ms_blob(i: int) -> bytes:
    """I/O-like with a large result: waits 10 ms, then returns 1 MB (a process pool must ship it
    back; a thread hands over a reference)."""
    time.sleep(0.010)
    return bytes((i % 256,)) * _MB


def svd_sum(seed: int) -> float:
    """numpy/LAPACK: the singular values of a seeded 200x200 float64 matrix (no U, V); the
    answer is rounded so BLAS threading or summation order cannot change it. LAPACK releases
    the GIL, and OpenBLAS may itself run several threads per call."""
    import numpy as np

    a = np.random.default_rng(seed).random((200, 200))
    s = np.linalg.svd(a, compute_uv=False)
    return round(float(s.sum()) / 200.0, 4)


def linalg(seed: int) -> float:
    """numpy: a 200x200 matrix product and solve; the answer is rounded so BLAS threading or
    summation order cannot change it."""
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.random((200, 200)) + 200.0 * np.eye(200)
    b = rng.random(200)
    x = np.linalg.solve(a, a @ (a @ b))
    return round(float(x.sum()) / 200.0, 4)


# --- inputs ------------------------------------------------------------------------------------


def _hetero_costs(n: int = 500, seed: int = 12345) -> list[float]:
    """Seeded lognormal costs in ms, clipped to [0.1, 20] (median ~1.6 ms, heavy right tail)."""
    import random

    rng = random.Random(seed)
    return [min(20.0, max(0.1, rng.lognormvariate(0.5, 1.2))) for _ in range(n)]


def _sorted_tail_costs(n: int = 1000) -> list[float]:
    """Costs in ms of a sorted input: 1 ms items, then a last tenth at 20 ms each."""
    tail = n // 10
    return [1.0] * (n - tail) + [20.0] * tail


def _blobs(n: int) -> list[bytes]:
    return [bytes((i % 256,)) * _MB for i in range(n)]


@dataclass(frozen=True)
class Workload:
    """One benchmark case.

    Attributes:
        name: short id used on the command line and in reports.
        fn: the function mapped.
        make_items: builds the (list) input, once per process; not timed.
        n: number of items.
        description: what it stands for.
        quick: part of the ``--quick`` subset.
        generator: the input is passed to ``map`` as a generator (no ``len``).
        extra: not part of the default suite; run it by naming it in ``--workloads``.
        imports: modules a timing child imports before the clock starts (imports are not what
            is compared).
    """

    name: str
    fn: Callable[[Any], Any]
    make_items: Callable[[], list[Any]]
    n: int
    description: str
    quick: bool = False
    generator: bool = False
    extra: bool = False
    imports: tuple[str, ...] = ()

    def iterable(self, items: list[Any]) -> Iterable[Any]:
        """What is passed to ``map``: the list, or a fresh generator over it."""
        if self.generator:
            return (x for x in items)
        return items


def _range(n: int) -> Callable[[], list[int]]:
    return lambda: list(range(n))


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload("trivial_10k", double, _range(10_000), 10_000, "x*2 over 10,000 ints", quick=True),
        Workload("trivial_1m", double, _range(1_000_000), 1_000_000, "x*2 over 1,000,000 ints"),
        Workload(
            "small_total", spin_0p5ms, _range(40), 40, "0.5 ms x 40 (20 ms in all)", quick=True
        ),
        Workload("ms1_x2000", spin_1ms, _range(2000), 2000, "1 ms x 2,000", quick=True),
        Workload("ms10_x300", spin_10ms, _range(300), 300, "10 ms x 300"),
        Workload("ms50_x40", spin_50ms, _range(40), 40, "50 ms x 40"),
        Workload("ms200_x8", spin_200ms, _range(8), 8, "200 ms x 8"),
        Workload("tiny_x20k", spin_0p05ms, _range(20_000), 20_000, "0.05 ms x 20,000"),
        Workload(
            "hetero_500",
            spin_var,
            _hetero_costs,
            500,
            "lognormal 0.1-20 ms x 500 (seeded)",
            quick=True,
        ),
        Workload(
            "sorted_tail",
            spin_var,
            _sorted_tail_costs,
            1000,
            "sorted input: 1 ms x 900, then 20 ms x 100 (the sample sees only the head)",
        ),
        Workload(
            "big_args",
            first_and_len,
            lambda: _blobs(200),
            200,
            "1 MB bytes argument, cheap fn, x 200",
        ),
        Workload("big_results", make_blob, _range(200), 200, "cheap fn returning 1 MB, x 200"),
        Workload(
            "generator",
            spin_0p5ms,
            _range(5000),
            5000,
            "0.5 ms x 5,000 passed as a generator",
            generator=True,
        ),
        Workload("sleep_10ms", sleep_10ms, _range(200), 200, "time.sleep(10 ms) x 200", quick=True),
        Workload(
            "numpy_linalg",
            linalg,
            _range(200),
            200,
            "200x200 matmul + solve per item x 200",
            imports=("numpy",),
        ),
        # For the thread lane: waits (threads overlap them), waits with large results (threads
        # ship nothing), and LAPACK calls that release the GIL.
        Workload(
            "mixed_wait_cpu",
            sleep_5ms_spin_5ms,
            _range(200),
            200,
            "sleep 5 ms then 5 ms CPU, x 200",
            quick=True,
        ),
        Workload(
            "wait_1mb_result",
            sleep_10ms_blob,
            _range(100),
            100,
            "sleep 10 ms then return 1 MB, x 100",
        ),
        Workload(
            "svd_100",
            svd_sum,
            _range(100),
            100,
            "singular values of a seeded 200x200 float64 matrix, x 100 (BLAS threads as they are)",
            imports=("numpy",),
        ),
        # Beyond the list (opt-in): a trivial function whose results are tuples. Each
        # result is a GC-tracked allocation, so the collector runs during the sample, and its
        # first passes traverse the freshly built 1,000,000-item input list (~20 ms each here).
        Workload(
            "tuples_1m",
            pair,
            _range(1_000_000),
            1_000_000,
            "(x, 2x) tuples over 1,000,000 ints (GC pauses in the sample)",
            extra=True,
        ),
    ]
}


def digest(results: Iterable[Any]) -> tuple[int, str]:
    """Count and SHA-256 of results (bytes hashed raw, others by ``repr``), for cross-process
    comparison without shipping the results themselves."""
    h = hashlib.sha256()
    count = 0
    for r in results:
        count += 1
        if isinstance(r, (bytes, bytearray)):
            h.update(b"b%d:" % len(r))
            h.update(r)
        else:
            h.update(repr(r).encode())
        h.update(b"\x00")
    return count, h.hexdigest()


def _capacity_worker(seconds: float) -> float:
    """Spin-loop rate (iterations/ms) of one process over about ``seconds``."""
    n = int(iters_per_ms() * seconds * 1e3)
    _loop(20_000)
    started = time.perf_counter()
    _loop(n)
    return n / ((time.perf_counter() - started) * 1e3)


def parallel_capacity(processes: int, seconds: float = 0.3, rounds: int = 3) -> dict[str, Any]:
    """How much CPU ``processes`` simultaneous spinners really get, relative to one alone.

    ``capacity`` is the aggregate rate of ``processes`` concurrent spin loops divided by the rate
    of one loop alone: ``processes`` on an idle machine with that many real cores, less when
    vCPUs share a physical core or the host steals time. The best speedup any pool can reach on
    CPU-bound work is about this figure. Median of ``rounds``.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    solo, together = [], []
    with ctx.Pool(processes) as pool:
        pool.map(_capacity_worker, [0.01] * processes)  # start-up out of the way
        for _ in range(rounds):
            solo.append(_capacity_worker(seconds))
            together.append(sum(pool.map(_capacity_worker, [seconds] * processes, chunksize=1)))
    s, t = statistics.median(solo), statistics.median(together)
    return {
        "processes": processes,
        "solo_rate": s,
        "aggregate_rate": t,
        "capacity": t / s,
        "rounds": [round(b / a, 2) for a, b in zip(solo, together, strict=True)],
    }
