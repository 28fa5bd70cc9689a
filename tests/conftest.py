"""Shared fixtures: no test may leave a worker process behind, and none calibrates the machine."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import psutil
import pytest

import amorsize_exec
from _polling import wait_until
from amorsize_exec import WorkerPools
from amorsize_exec.testing import FakeProbe, make_profile

#: Helper processes that live as long as the interpreter by design (one each, shared by every
#: pool): loky's and multiprocessing's resource trackers, and the forkserver if a test asked for
#: that start method. They are not workers and are not leftovers of a test.
_INTERPRETER_HELPERS = ("resource_tracker", "semaphore_tracker", "multiprocessing.forkserver")

#: Seconds a test's workers get to exit after the pools are reset.
_GRACE_S = 5.0


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


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    """After each test: stop the shared pools, forget the probe, and check no worker is left."""
    yield
    amorsize_exec.reset_default_pools()
    amorsize_exec.reset_default_probe()
    if wait_until(lambda: not leftover_children(), _GRACE_S):
        return
    left = leftover_children()
    described = []
    for p in left:
        try:
            described.append(f"{p.pid} {p.cmdline()}")
        except psutil.Error:
            described.append(str(p.pid))
        with contextlib.suppress(psutil.Error):
            p.kill()  # so that one failing test does not fail the next ones too
    pytest.fail(f"worker processes left behind after the test: {described}")


@pytest.fixture
def fake_probe() -> FakeProbe:
    """A 2-CPU machine with the design's measured costs; never starts a process to measure."""
    return FakeProbe(make_profile())


@pytest.fixture
def cheap_pool_probe() -> FakeProbe:
    """A 2-CPU machine whose pools start almost for free: a costly workload takes the pool."""
    return FakeProbe(make_profile(pool_start_s=0.01))


@pytest.fixture
def pools() -> Iterator[WorkerPools]:
    """A private set of shared pools for the test, stopped at its end."""
    owned = WorkerPools()
    yield owned
    owned.shutdown(wait=True)
