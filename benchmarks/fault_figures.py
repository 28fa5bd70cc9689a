"""Figures for the README's reliability table: detection time of worker deaths, RSS growth."""

import gc
import signal
import statistics
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _faults import segfault, sleep_then_return
from amorsize_exec import AutoExecutor


def detect(fn, args, kill=False):
    ex = AutoExecutor(lane="process")
    list(ex.map(abs, [-1, -2]))  # warm
    it = ex.map(fn, *args)
    if kill:
        time.sleep(0.3)
        w = [
            p
            for p in psutil.Process().children()
            if "resource_tracker" not in " ".join(p.cmdline())
        ]
        t = time.perf_counter()
        w[0].send_signal(signal.SIGKILL)
    else:
        t = time.perf_counter()
    try:
        list(it)
    except Exception as e:
        name = type(e).__name__
    ex.shutdown()
    return time.perf_counter() - t, name


seg = [detect(segfault, (range(4),)) for _ in range(5)]
kil = [detect(sleep_then_return, (range(4), [3.0] * 4), kill=True) for _ in range(5)]
print("segfault: median detection %.3f s (%s)" % (statistics.median(s for s, _ in seg), seg[0][1]))
print("SIGKILL: median detection %.3f s (%s)" % (statistics.median(s for s, _ in kil), kil[0][1]))
gc.collect()
proc = psutil.Process()
before = proc.memory_info().rss
peak = before
with AutoExecutor() as ex:
    for i, _ in enumerate(ex.map(abs, (i for i in range(10_000_000)))):
        if i % 500_000 == 0:
            peak = max(peak, proc.memory_info().rss)
print("10M-item generator, serial lane: peak RSS growth %.1f MB" % ((peak - before) / 2**20))
gc.collect()
before = proc.memory_info().rss
peak = before
with AutoExecutor(lane="process") as ex:
    for i, _ in enumerate(ex.map(abs, (i for i in range(2_000_000)), chunksize=10_000)):
        if i % 100_000 == 0:
            peak = max(peak, proc.memory_info().rss)
print("2M-item generator, pool lane: peak RSS growth %.1f MB" % ((peak - before) / 2**20))
