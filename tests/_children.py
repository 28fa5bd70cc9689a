"""Child processes of the test process: which are workers a test left behind."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import psutil

#: Helper processes that live as long as the interpreter by design (one each, shared by every
#: pool): loky's and multiprocessing's resource trackers, and the forkserver if a test asked for
#: that start method. They are not workers and are not leftovers of a test.
_INTERPRETER_HELPERS = ("resource_tracker", "semaphore_tracker", "multiprocessing.forkserver")


#: Sources of process ids that outlive single tests by design (a module's Dask cluster): those
#: processes and their children are not leftovers. Asked at each check: Dask restarts workers.
long_lived: list[Callable[[], Iterable[int]]] = []


def _long_lived_pids() -> set[int]:
    pids: set[int] = set()
    for source in long_lived:
        for pid in source():
            pids.add(pid)
            try:
                pids.update(child.pid for child in psutil.Process(pid).children(recursive=True))
            except psutil.Error:
                continue
    return pids


def _is_helper(process: psutil.Process) -> bool:
    """A helper is a direct child (workers forked by a forkserver keep its command line, but
    are its children, not ours)."""
    try:
        command = " ".join(process.cmdline())
        parent = process.ppid()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return False
    return parent == os.getpid() and any(tag in command for tag in _INTERPRETER_HELPERS)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def leftover_children() -> list[psutil.Process]:
    """Live child processes of this test process, interpreter helpers and long-lived
    processes (``long_lived``) excepted."""
    spared = _long_lived_pids() if long_lived else set()
    return [
        p
        for p in psutil.Process().children(recursive=True)
        if _alive(p) and not _is_helper(p) and p.pid not in spared
    ]
