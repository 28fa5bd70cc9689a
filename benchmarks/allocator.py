"""Why a thread pool "wins" big_results warm: ``python -m benchmarks.allocator [--rounds N]``.

``make_blob`` returns 1 MB of fresh memory per item. In one warm process, the loop on the main
thread, the same loop on one long-lived thread, ``ThreadPoolExecutor(w).map`` for a few ``w``,
a pool of 2 started for each map (as the thread lane starts its threads), and one AutoExecutor
reused for every map (as a service holds one), interleaved round by round in turn (A, B, C / B,
C, A / ...; medians). If one thread alone beats the loop several times over, the thread pools'
gain is the allocator (glibc gives the main thread's freed heap back to the system at each call
and faults it in again; a thread's arena keeps its pages), not parallelism: AutoExecutor, which
runs serial work on the caller's thread as the loop does, does not chase it (see
benchmarks/README.md). Run it again with ``GLIBC_TUNABLES=glibc.malloc.top_pad=268435456``
(the main heap keeps 256 MB past its top) and the ranking flips: the loop and AutoExecutor
beat every thread pool several times over.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from amorsize_exec import AutoExecutor, Settings
from benchmarks.workloads import make_blob

N = 200


def _time(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    out = call()
    elapsed = time.perf_counter() - started
    del out
    return elapsed


def _pool_map(pool: ThreadPoolExecutor) -> Callable[[], Any]:
    return lambda: list(pool.map(make_blob, range(N)))


def _fresh_pool_map() -> list[bytes]:
    """A pool started for this map alone, as AutoExecutor's thread lane (and a thread trial)
    starts its threads."""
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(make_blob, range(N)))


def _malloc_settings() -> str:
    """The glibc malloc settings this process was started with: they decide who wins here."""
    names = sorted(k for k in os.environ if k == "GLIBC_TUNABLES" or k.startswith("MALLOC_"))
    return ", ".join(f"{k}={os.environ[k]}" for k in names) or "glibc's defaults"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    one = ThreadPoolExecutor(1)
    pools = {w: ThreadPoolExecutor(w) for w in (2, 4)}
    auto = AutoExecutor(settings=Settings(remember_profiles=0))  # the user's cache untouched
    contenders: dict[str, Callable[[], Any]] = {
        "loop (main thread)": lambda: list(map(make_blob, range(N))),
        "loop on one thread": lambda: one.submit(lambda: list(map(make_blob, range(N)))).result(),
        **{f"ThreadPoolExecutor({w}).map": _pool_map(p) for w, p in pools.items()},
        "ThreadPoolExecutor(2), new each map": _fresh_pool_map,
        "AutoExecutor().map, one executor": lambda: list(auto.map(make_blob, range(N))),
    }
    for call in contenders.values():  # warm: every thread started, every arena used once
        _time(call)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for turn in range(args.rounds):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            times[name].append(_time(contenders[name]))
    print(f"{N} x make_blob (1 MB each), one warm process, medians of {args.rounds} rounds")
    print(f"malloc: {_malloc_settings()}")
    for name, values in times.items():
        print(f"  {name:36} {statistics.median(values) * 1e3:7.1f} ms")
    print(f"AutoExecutor's decision: {auto.last_decision.summary() if auto.last_decision else '-'}")
    auto.shutdown()
    one.shutdown()
    for pool in pools.values():
        pool.shutdown()


if __name__ == "__main__":
    main()
