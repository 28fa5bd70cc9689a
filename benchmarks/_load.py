"""Foreign CPU load during a measurement: CPU time the whole machine used that was not ours.

The suite's machine may be shared (another test run, a build): a timing taken while another
process burns a core is not comparable with the others. ``Meter`` reads the system's busy CPU
time (``/proc/stat``) and this suite's own CPU time around a measurement and reports the
difference in cores; the runner re-times a measurement when it exceeds ``RETRY_ABOVE_CORES``
and records the figure either way. On systems without ``/proc/stat`` it reports ``None``.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable

#: Foreign load (cores, averaged over the measurement) above which a timing is taken again.
RETRY_ABOVE_CORES = 0.25
#: Foreign load (cores) of the previous timing below which the next one starts without first
#: checking for quiet (the check costs a 0.1 s window).
QUIET = 0.1
#: Retries of one timing at most (the last one is kept, with its load).
MAX_RETRIES = 2

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _system_busy_s() -> float | None:
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal ...
    values = [int(v) for v in fields[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, _steal = values
    return (user + nice + system + irq + softirq) / _TICK


def self_cpu_s() -> float:
    """CPU of this process alone."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def live_tree_cpu_s() -> float:
    """CPU of this process, its live descendants (pool workers) and its reaped children."""
    import psutil  # noqa: PLC0415 - only the children need it; amorsize_exec depends on it

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return total + kids.ru_utime + kids.ru_stime


class Meter:
    """Measures foreign load between ``start()`` and ``stop()``."""

    def __init__(self, ours: Callable[[], float]) -> None:
        self._ours = ours
        self._t0 = self._busy0 = self._ours0 = 0.0
        self._ok = False

    def start(self) -> None:
        busy = _system_busy_s()
        self._ok = busy is not None
        self._busy0 = busy or 0.0
        self._ours0 = self._ours()
        self._t0 = time.perf_counter()

    def stop(self) -> float | None:
        """Average foreign load in cores since ``start()`` (None if unknown)."""
        wall = time.perf_counter() - self._t0
        busy = _system_busy_s()
        if not self._ok or busy is None or wall <= 0:
            return None
        foreign = (busy - self._busy0) - (self._ours() - self._ours0)
        # /proc/stat ticks are 10 ms: short windows are quantised, so never report below zero.
        return max(0.0, foreign / wall)


#: Longest wait for a quiet machine before one measurement (seconds); then it runs anyway.
QUIET_WAIT_MAX_S = 30.0
#: Total waiting allowed in one suite run (seconds); after that timings are taken at once.
QUIET_BUDGET_S = 900.0


def wait_for_quiet(
    ours: Callable[[], float], max_wait_s: float = QUIET_WAIT_MAX_S, window_s: float = 0.1
) -> float:
    """Wait until other processes use at most ``RETRY_ABOVE_CORES`` over a ``window_s`` window,
    or ``max_wait_s`` has passed; return the seconds waited beyond the first window (0 if the
    machine was quiet). A quiet machine costs one window (0.1 s) per call."""
    if _system_busy_s() is None or max_wait_s <= 0:
        return 0.0
    meter = Meter(ours)
    started = time.perf_counter()
    while True:
        meter.start()
        time.sleep(window_s)
        load = meter.stop()
        waited = time.perf_counter() - started
        if load is None or load <= RETRY_ABOVE_CORES or waited >= max_wait_s:
            return max(0.0, waited - window_s * 1.2)
