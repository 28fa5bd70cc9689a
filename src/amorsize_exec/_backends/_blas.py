"""BLAS and OpenMP thread pools of this process, read and limited with threadpoolctl.

Three facts decide how a pool treats numpy-style work (measured on 2 cores, OpenBLAS 0.3.31,
numpy 2.4; scripts of issue 10):

* ``import numpy`` starts OpenBLAS's thread pool, so the process is never single-threaded
  again, and a new pool would take loky's fork+exec start (~0.27 s instead of ~20 ms).
  OpenBLAS's pthreads build stops its pool around ``fork()`` (``pthread_atfork``), so forking
  is safe when its threads are the only ones besides Python's (200 forks right after a threaded
  SVD, each running an SVD in the child: no failure, no hang). OpenMP runtimes have no such
  handler: with one loaded, we never fork.
* An environment variable reaches only a library loaded after it is set, threadpoolctl only
  one already loaded: a forked worker of a parent that loaded BLAS needs threadpoolctl.
* OpenBLAS's threads spin while they wait: a 200x200 SVD took 3.2 ms on 2 threads against
  2.7 ms on one, at twice the CPU time. The sampler's CPU / wall then says "2 cores", which
  is wrong about what a worker with one core gets; timing one item on one thread says it
  (``single_thread``).

A fourth fact decides what the sampler reads (``ProcessCpuClock``): Linux adds another
thread's CPU time to the process clock only at the scheduler's ticks (~4 ms) or when that thread
stops, so a ~1 ms item on 2 OpenBLAS threads read a CPU time equal to its wall time, or ~4 ms
more, seldom twice it (a sample of 200x200 solves read CPU / wall 1.00 in 5 of 8 fresh
interpreters, and took a pool that ran at the loop's pace). Reading a thread's own CPU clock
brings its time up to date in the process clock too.

Importing threadpoolctl costs ~24 ms, so nothing here imports it unless a BLAS-using package
is loaded already (or threadpoolctl itself is).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

#: Packages whose import loads a BLAS or OpenMP library; one of them loaded: ask threadpoolctl.
_BLAS_USERS = ("numpy", "scipy", "torch", "sklearn", "threadpoolctl")

_controller: Any = None
_controller_modules = -1  # len(sys.modules) when the controller was made
_lock = threading.Lock()


def blas_may_be_loaded() -> bool:
    """Cheap: a package that loads BLAS or OpenMP is imported (~1 us)."""
    modules = sys.modules
    return any(name in modules for name in _BLAS_USERS)


def _libraries() -> list[dict[str, Any]]:
    """threadpoolctl's view of the loaded libraries; its controller is remade when modules
    were imported since (a new one could have loaded a library). ~3 us when unchanged."""
    global _controller, _controller_modules
    if not blas_may_be_loaded():
        return []
    try:
        from threadpoolctl import ThreadpoolController  # noqa: PLC0415  (24 ms: only if needed)
    except ImportError:
        return []
    with _lock:
        if _controller is None or _controller_modules != len(sys.modules):
            _controller = ThreadpoolController()
            _controller_modules = len(sys.modules)
        return list(_controller.info())


def fork_safe_threads() -> bool:
    """True if this process runs its main thread only, besides OpenBLAS (pthreads) pools,
    which stop around ``fork()``; Linux only. Any other Python thread could hold a lock that
    the children would inherit locked."""
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    try:
        extra = len(os.listdir("/proc/self/task")) - 1
    except OSError:
        return False
    if extra == 0:
        return True
    libraries = _libraries()
    if not libraries or any(
        lib.get("internal_api") != "openblas" or lib.get("threading_layer") != "pthreads"
        for lib in libraries
    ):
        return False
    return extra <= sum(max(0, int(lib.get("num_threads", 1)) - 1) for lib in libraries)


@contextlib.contextmanager
def single_thread() -> Iterator[bool]:
    """BLAS and OpenMP limited to one thread inside the block (yields False, changing nothing,
    if no such library is loaded or threadpoolctl is missing)."""
    libraries = _libraries()
    if not libraries or _controller is None:
        yield False
        return
    with _controller.limit(limits=1):
        yield True


def limit_loaded_libraries(threads: int) -> None:
    """In a forked worker: its share of threads for the libraries the parent had loaded
    (an environment variable would not reach them)."""
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
    except ImportError:
        return
    threadpool_limits(threads)


class ProcessCpuClock:
    """``time.process_time()`` with the time of threads that Python did not start (BLAS's,
    OpenMP's) brought up to date first (module docstring), where a BLAS user is imported, on
    Linux. Python's own threads are left alone: a service's idle pool of 32 threads would
    cost ~1 us each a reading, and they do not run the sampled item. The list of threads is
    re-read only when their number changes (~2.5 us to check); ~1 us per thread read."""

    def __init__(self) -> None:
        self._threads = -1  # how many threads the process had when _clocks was listed
        self._clocks: list[int] = []

    def __call__(self) -> float:
        if _LINUX and blas_may_be_loaded():
            for clock in self._foreign_clocks():
                with contextlib.suppress(OSError):  # the thread may have ended meanwhile
                    time.clock_gettime(clock)
        return time.process_time()

    def _foreign_clocks(self) -> list[int]:
        try:
            threads = os.stat(_TASKS).st_nlink  # counts the threads (plus "." and "..")
            if threads != self._threads:
                python_threads = {t.native_id for t in threading.enumerate()}
                self._clocks = [
                    _thread_cpu_clock(tid)
                    for tid in map(int, os.listdir(_TASKS))
                    if tid not in python_threads
                ]
                self._threads = threads
        except OSError:
            return []
        return self._clocks


def _thread_cpu_clock(tid: int) -> int:
    """The CPU clock of thread ``tid`` of this process, as Linux numbers it (what glibc's
    ``pthread_getcpuclockid`` returns: ``MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)``)."""
    return ((~tid) << 3) | 6


_LINUX = sys.platform.startswith("linux")
_TASKS = "/proc/self/task"
