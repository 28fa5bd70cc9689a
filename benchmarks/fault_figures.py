"""Figures for the README's reliability table: how fast worker deaths are reported, and how much
memory a huge generator input costs. Run: ``python benchmarks/fault_figures.py``."""

from __future__ import annotations

import gc
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

# tests/ holds the faulty workloads
from _faults import segfault, sleep_then_return
from amorsize_exec import AutoExecutor

REPEATS = 5


def detection_s(fn: Callable[..., Any], *args: Iterable[Any], kill: bool = False) -> float:
    """Seconds from a worker's death (a segfault, or our SIGKILL) to the error in ``map``."""
    with AutoExecutor(lane="process") as ex:
        list(ex.map(abs, [-1, -2]))  # pool warm: time the death, not the start
        results = ex.map(fn, *args)
        if kill:
            time.sleep(0.3)
            workers = [
                p
                for p in psutil.Process().children()
                if "resource_tracker" not in " ".join(p.cmdline())
            ]
            workers[0].send_signal(signal.SIGKILL)
        started = time.perf_counter()
        try:
            list(results)
        except Exception as exc:
            print(f"  {type(exc).__name__}: {str(exc).splitlines()[-2]}", file=sys.stderr)
        return time.perf_counter() - started


def peak_rss_growth_mb(lane: str, items: int, **map_kwargs: Any) -> float:
    """Peak RSS growth while a generator of ``items`` ints flows through ``map``."""
    gc.collect()
    process = psutil.Process()
    before = peak = process.memory_info().rss
    with AutoExecutor(lane=lane) as ex:  # type: ignore[arg-type]
        for i, _ in enumerate(ex.map(abs, (i for i in range(items)), **map_kwargs)):
            if i % 100_000 == 0:
                peak = max(peak, process.memory_info().rss)
    return (peak - before) / 2**20


def main() -> None:
    segv = statistics.median(detection_s(segfault, range(4)) for _ in range(REPEATS))
    killed = statistics.median(
        detection_s(sleep_then_return, range(4), [3.0] * 4, kill=True) for _ in range(REPEATS)
    )
    print(f"segfault in a worker: reported after {segv:.3f} s (median of {REPEATS})")
    print(f"SIGKILL of a worker: reported after {killed:.3f} s (median of {REPEATS})")
    serial_mb = peak_rss_growth_mb("serial", 10_000_000)
    pool_mb = peak_rss_growth_mb("process", 2_000_000, chunksize=10_000)
    print(f"10,000,000-item generator, serial lane: peak RSS growth {serial_mb:.1f} MB")
    print(f"2,000,000-item generator, pool lane: peak RSS growth {pool_mb:.1f} MB")


if __name__ == "__main__":
    main()
