"""Remembered profiles, cold: ``python -m benchmarks.remembered [--rounds N]``.

Each timing is a fresh interpreter that maps a CPU-bound function once, as a script does,
imports included: ``AutoExecutor()`` with its profile remembered from an earlier run, the same
with ``AMORSIZE_EXEC_REMEMBER_PROFILES=0``, and ``ProcessPoolExecutor(2)`` with the fork context
(the stdlib's default on Linux before 3.14). The three alternate round by round; the cache
directory is a temporary one, filled by one discarded run first. Medians are printed.
"""

# ruff: noqa: PLC0415  (the child imports only what its contender needs)

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOADS = {"ms200_x8": (0.2, 8), "ms50_x40": (0.05, 40)}


def spin(x: int, seconds: float) -> int:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return x


def _child(contender: str, seconds: float, n: int) -> None:
    started = time.perf_counter()
    if contender == "ppe":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(2, mp_context=context) as pool:
            out = list(pool.map(spin, range(n), [seconds] * n))
    else:
        from amorsize_exec import AutoExecutor

        with AutoExecutor() as executor:
            out = list(executor.map(spin, range(n), [seconds] * n))
    assert out == list(range(n))
    print(time.perf_counter() - started)


def _time(contender: str, seconds: float, n: int, env: dict[str, str]) -> float:
    command = [sys.executable, "-m", "benchmarks.remembered", "--child", contender]
    command += [str(seconds), str(n)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], float(args.child[1]), int(args.child[2]))
        return
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, AMORSIZE_EXEC_CACHE_DIR=cache)
        env_off = dict(env, AMORSIZE_EXEC_REMEMBER_PROFILES="0")
        print(f"{'workload':10} {'remembered':>11} {'not':>8} {'ppe fork':>9}  (medians, s)")
        for name, (seconds, n) in WORKLOADS.items():
            _time("auto", seconds, n, env)  # the earlier run that leaves the profile
            times: dict[str, list[float]] = {"remembered": [], "not": [], "ppe": []}
            for _ in range(args.rounds):
                times["remembered"].append(_time("auto", seconds, n, env))
                times["not"].append(_time("auto", seconds, n, env_off))
                times["ppe"].append(_time("ppe", seconds, n, env))
            medians = {k: statistics.median(v) for k, v in times.items()}
            print(
                f"{name:10} {medians['remembered']:11.3f} {medians['not']:8.3f} "
                f"{medians['ppe']:9.3f}"
            )


if __name__ == "__main__":
    main()
