"""Shared fixtures: no test may leave a worker process behind, and none calibrates the machine."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psutil
import pytest

import amorsize_exec
from _children import leftover_children
from _polling import wait_until
from amorsize_exec import WorkerPools
from amorsize_exec.testing import FakeProbe, make_profile

#: Seconds a test's workers get to exit after the pools are reset.
_GRACE_S = 5.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``cluster`` run last: Dask leaves two threads behind in this process (its
    offload and callback pools), and a process with threads never forks its pools, so every
    later test would start loky's slower way."""
    items.sort(key=lambda item: item.get_closest_marker("cluster") is not None)


@pytest.fixture(autouse=True)
def _own_profile_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Remembered profiles go to a directory of the test's own (never the user's cache), so
    that no test sees what another one ran; child interpreters inherit the variable."""
    monkeypatch.setenv("AMORSIZE_EXEC_CACHE_DIR", str(tmp_path_factory.mktemp("profiles")))


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
