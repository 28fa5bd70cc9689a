"""The first BLAS call back on the caller's thread after a thread trial, in fresh interpreters.

``python -m benchmarks.blas_settle [--runs N] [--pause-ms P]``: each run is a fresh interpreter,
as a cold script is: 4 solves (``workloads.linalg``) on the main thread, 34 on
``ThreadPoolExecutor(2)`` (what ``ThreadTrial`` does), then 6 more on the main thread, timed one
by one; with ``--pause-ms``, after a pause. It counts the runs where the first solve back, or a
later one, took over 3 ms (a solve takes ~0.6 ms on 2 cores). A slow first call only is why
``ThreadTrial.take_or_hand_back`` counts that item at the serial pace.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_RUN = r"""
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
from benchmarks.workloads import linalg
for i in range(4):
    linalg(i)
threads = ThreadPoolExecutor(2)
list(threads.map(linalg, range(34)))
threads.shutdown(wait=False)
time.sleep(float(sys.argv[1]) / 1e3)
times = []
for i in range(6):
    started = time.perf_counter()
    linalg(i)
    times.append(time.perf_counter() - started)
print(json.dumps(times))
"""

SLOW_S = 0.003


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--pause-ms", type=float, default=0.0)
    args = parser.parse_args()
    first_slow = later_slow = 0
    firsts = []
    for _ in range(args.runs):
        out = subprocess.run(
            [sys.executable, "-c", _RUN, str(args.pause_ms)],
            capture_output=True,
            text=True,
            check=True,
        )
        times = json.loads(out.stdout.strip().splitlines()[-1])
        firsts.append(times[0])
        first_slow += times[0] > SLOW_S
        later_slow += any(t > SLOW_S for t in times[1:])
    firsts.sort()
    print(
        f"{args.runs} fresh interpreters, pause {args.pause_ms:g} ms: first solve back over "
        f"{SLOW_S * 1e3:g} ms in {first_slow}, a later one in {later_slow}; first solve "
        f"median {firsts[len(firsts) // 2] * 1e3:.2f} ms, max {firsts[-1] * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    main()
