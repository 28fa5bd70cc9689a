"""Child processes of the test process: which are workers a test left behind."""

from __future__ import annotations

import os

import psutil

#: Helper processes that live as long as the interpreter by design (one each, shared by every
#: pool): loky's and multiprocessing's resource trackers, and the forkserver if a test asked for
#: that start method. They are not workers and are not leftovers of a test.
_INTERPRETER_HELPERS = ("resource_tracker", "semaphore_tracker", "multiprocessing.forkserver")


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
    """Live child processes of this test process, interpreter helpers excepted."""
    return [p for p in psutil.Process().children(recursive=True) if _alive(p) and not _is_helper(p)]
