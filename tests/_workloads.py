"""Top-level (hence picklable by reference) functions the executor tests run in workers.

CPU cost is made with ``spin`` (a busy loop on the clock), not ``sleep``, wherever a workload
must look costly to the sampler; ``sleep`` is used only where the test needs a slow item.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil

from amorsize_exec import AutoExecutor


def spin(seconds: float) -> None:
    """Burn CPU for about ``seconds`` (the sampler measures this as compute, like real work)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def double(x: int) -> int:
    return x * 2


def add(x: int, y: int) -> int:
    return x + y


def square_after_spin(x: int, seconds: float = 0.01) -> int:
    spin(seconds)
    return x * x


def pid_after_spin(x: int, seconds: float = 0.01) -> tuple[int, int]:
    spin(seconds)
    return x, os.getpid()


def sleep_then_return(x: int, seconds: float = 0.5) -> int:
    time.sleep(seconds)
    return x


def fail_at(x: int, bad: int = 7) -> int:
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x * 2


def spin_then_fail_at(x: int, seconds: float, bad: int) -> int:
    spin(seconds)
    return fail_at(x, bad)


class CustomError(Exception):
    """An exception type of our own, to check that the type survives the trip back."""


def raise_custom(message: str) -> None:
    raise CustomError(message)


def where(seconds: float = 0.0) -> tuple[int, int]:
    """``(pid, thread id)`` of the code running this call, after ``seconds`` of spinning."""
    spin(seconds)
    return os.getpid(), threading.get_ident()


def worker_pid(_: object = None) -> int:
    return os.getpid()


def worker_pids() -> set[int]:
    """Pids of this process's live worker processes (interpreter helpers such as the resource
    trackers excepted)."""
    pids = set()
    for child in psutil.Process().children(recursive=True):
        try:
            command = " ".join(child.cmdline())
            helper = "resource_tracker" in command or "multiprocessing.forkserver" in command
            if helper and child.ppid() == os.getpid():
                continue
            if child.status() != psutil.STATUS_ZOMBIE:
                pids.add(child.pid)
        except psutil.Error:
            continue
    return pids


def append_line(path: str, x: int, seconds: float = 0.0) -> int:
    """Side effect per item: a line ``"x pid"`` appended to ``path`` (O_APPEND: one write per
    line, so lines from several processes do not mix)."""
    spin(seconds)
    with open(path, "a", encoding="ascii") as f:
        f.write(f"{x} {os.getpid()}\n")
    return x * 3


def append_line_slow_in(path: str, x: int, slow_pid: int) -> int:
    """``append_line`` taking 20 ms in process ``slow_pid`` and 1 ms elsewhere: the sample sees
    costly items, and a run stuck in-process would take long enough to notice."""
    return append_line(path, x, 0.02 if os.getpid() == slow_pid else 0.001)


def read_lines(path: str | Path) -> list[tuple[int, int]]:
    """``(item, pid)`` for each line ``append_line`` wrote, in file order."""
    text = Path(path).read_text(encoding="ascii") if Path(path).exists() else ""
    return [(int(x), int(pid)) for x, pid in (line.split() for line in text.splitlines())]


def note_pid(path: str) -> None:
    """A worker initializer: leaves its pid in ``path``."""
    Path(path).write_text(str(os.getpid()), encoding="ascii")


def exit_on(x: int, bad: int = 3) -> int:
    """Kills the worker process (no exception, no cleanup) when it meets item ``bad``."""
    if x == bad:
        os._exit(1)
    return x


def exit_in_a_worker_on(x: int, parent_pid: int, bad: int = 30) -> int:
    """10 ms of work; kills the process at item ``bad`` unless it is ``parent_pid`` (the
    in-process sample must not kill the test)."""
    spin(0.01)
    if x == bad and os.getpid() != parent_pid:
        os._exit(1)
    return x


def exit_now() -> None:
    os._exit(1)


def wait_for_path(path: str, timeout_s: float = 20.0) -> str:
    """Block until ``path`` exists (a test's way to hold a task 'running' as long as it likes)."""
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.005)
    return path


def announce_then_wait(announce: str, path: str, timeout_s: float = 20.0) -> str:
    """Create ``announce`` (the task has started), then block until ``path`` exists."""
    Path(announce).touch()
    return wait_for_path(path, timeout_s)


def nested_map(n: int) -> tuple[list[int], str, str, int]:
    """Uses an ``AutoExecutor`` inside a worker: it must run serially, and say why."""
    with AutoExecutor(lane="process") as ex:
        results = list(ex.map(double, range(n)))
        decision = ex.last_decision
    assert decision is not None
    return results, decision.lane, decision.decision.reason, os.getpid()


def nested_submit(x: int) -> tuple[int, int, int]:
    """``submit`` inside a worker: the task runs in this same worker process."""
    with AutoExecutor() as ex:
        pid = ex.submit(worker_pid).result()
    return x * 2, pid, os.getpid()


# --- the contract's edges (test_contract.py) -----------------------------------------------------

_factor = 1  # set in workers by ``set_factor`` (an initializer); never in the test process


def set_factor(k: int) -> None:
    global _factor
    _factor = k


def times_factor(x: int, seconds: float = 0.005) -> int:
    """``x`` times the factor the initializer set (1 where it did not run)."""
    spin(seconds)
    return x * _factor


class Dummy:
    """A result whose lifetime a test follows with a weak reference."""


def make_dummy(_: object = None) -> Dummy:
    return Dummy()


def identity(x: object) -> object:
    return x


def keywords(**kwargs: object) -> dict[str, object]:
    return kwargs


def join_lane_threads(timeout_s: float = 10.0) -> None:
    """Wait for the thread lane's threads of earlier maps to exit. They exit in the background
    (2-3 ms of CPU for 32, up to 13 ms on a busy machine), which a sample running meanwhile
    counts as the process's CPU: its waiting items then pass for CPU work."""
    for thread in threading.enumerate():
        if thread.name.startswith("amorsize_exec-thread"):
            thread.join(timeout_s)
