"""The demo: a few embedded workloads, each timed as a plain loop, ``ProcessPoolExecutor`` and
``AutoExecutor``, with the decision and its reason. Finishes in well under a minute on 2 cores."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TextIO

from ._backends import reset_default_pools
from ._cost_model import format_seconds
from ._decision import DecisionRecord
from ._executor import AutoExecutor

_SPIN_CALIBRATION_S = 0.05
_spins_per_ms: int | None = None


def spins_per_ms() -> int:
    """Loop iterations that take about 1 ms of CPU here (measured once per process)."""
    global _spins_per_ms
    if _spins_per_ms is None:
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < _SPIN_CALIBRATION_S:
            for _ in range(1000):
                n += 1
        _spins_per_ms = max(1, int(n / (_SPIN_CALIBRATION_S * 1000)))
    return _spins_per_ms


def spin(x: int, iterations: int) -> int:
    """CPU-bound work: ``iterations`` additions (no sleep: a sleeping worker costs no CPU)."""
    total = 0
    for i in range(iterations):
        total += i
    return x + total % 7


def double(x: int) -> int:
    return x * 2


def wait(x: int, seconds: float) -> int:
    """I/O-like work: waits without using CPU (a network call, a disk read)."""
    time.sleep(seconds)
    return x


@dataclass(frozen=True)
class Workload:
    name: str
    items: int
    fn: Callable[..., Any]
    make_args: Callable[[], Iterable[Any]]
    extra: tuple[Any, ...] = ()
    as_generator: bool = False

    def inputs(self) -> list[Iterable[Any]]:
        args: Iterable[Any] = self.make_args()
        if self.as_generator:
            args = (x for x in args)
        return [args, *([e] * self.items for e in self.extra)]


def default_workloads() -> list[Workload]:
    ms = spins_per_ms()
    return [
        Workload("trivial x*2", 20_000, double, lambda: range(20_000)),
        Workload("~1 ms per item", 400, spin, lambda: range(400), (ms,)),
        Workload("~20 ms per item", 80, spin, lambda: range(80), (20 * ms,)),
        Workload("generator, ~1 ms", 800, spin, lambda: range(800), (ms,), as_generator=True),
        Workload("I/O-like, 10 ms", 60, wait, lambda: range(60), (0.01,)),
    ]


def _collect(mapper: Callable[..., Iterable[Any]], w: Workload) -> list[Any]:
    return list(mapper(w.fn, *w.inputs()))


def _time(run: Callable[[], list[Any]]) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    out = run()
    return time.perf_counter() - started, out


def run_demo(out: TextIO, repeats: int = 1, workloads: list[Workload] | None = None) -> None:
    """Run every workload with each contender and print times, speedups and decisions.

    Each run is timed as a script would run it: the pool is started and stopped inside the
    timing (``ProcessPoolExecutor`` in a ``with`` block; ``AutoExecutor`` likewise, then its
    shared pool stopped, as the script's exit would). The process then has no pool threads
    left, so each AutoExecutor run may fork its workers, as in a fresh script.
    """
    workloads = default_workloads() if workloads is None else workloads
    out.write(
        f"{'workload':<18} {'items':>6} {'loop':>9} {'ProcessPool':>17} {'AutoExecutor':>17}\n"
    )
    for w in workloads:
        loop_s, expected = _median(repeats, partial(_collect, map, w))
        pool_s, pooled = _median(repeats, partial(_stdlib_script, w))
        records: list[DecisionRecord] = []
        auto_s, got = _median(repeats, partial(_auto_script, w, records))
        if got != expected or pooled != expected:
            raise AssertionError(f"{w.name}: results differ from the plain loop")
        out.write(
            f"{w.name:<18} {w.items:>6} {format_seconds(loop_s):>9} "
            f"{_cell(pool_s, loop_s):>17} {_cell(auto_s, loop_s):>17}\n"
        )
        out.write(f"    decision: {records[-1].summary()}\n")
        if records[-1].lane == "serial":
            # Serial runs the loop's own code: what it costs beyond the loop is deciding.
            extra_s = max(0.0, auto_s - loop_s)
            out.write(
                f"    ran as the loop: the {format_seconds(extra_s)} over it is the cost of "
                "deciding (executor, sample, decision), paid once per map\n"
            )
    out.write(
        "(speedup = loop time / time; each run starts and stops its pool, as a script does)\n"
    )


def _stdlib_script(w: Workload) -> list[Any]:
    with ProcessPoolExecutor() as pool:
        return _collect(pool.map, w)


def _auto_script(w: Workload, records: list[DecisionRecord]) -> list[Any]:
    with AutoExecutor() as auto:
        results = _collect(auto.map, w)
    reset_default_pools()  # what the script's exit does to the shared pool
    if auto.last_decision is not None:
        records.append(auto.last_decision)
    return results


def _median(repeats: int, run: Callable[[], list[Any]]) -> tuple[float, list[Any]]:
    times: list[float] = []
    result: list[Any] = []
    for _ in range(repeats):
        t, result = _time(run)
        times.append(t)
    return statistics.median(times), result


def _cell(seconds: float, loop_s: float) -> str:
    return f"{format_seconds(seconds)} ({loop_s / seconds:.2f}x)"
