"""``SystemProbe``: the cheap profile reads only what decisions use; the rest waits for
calibration (on a fake pool here: no test calibrates the machine)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import psutil
import pytest

import amorsize_exec._machine as machine
from amorsize_exec import Settings, SystemProbe


class _Refuse:
    """Stands in for psutil: any use fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"psutil.{name} read by the cheap profile")


class _Lease:
    warm = False
    forked = False

    def __init__(self, pools: _Pools) -> None:
        self._pools = pools

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args))
        return future

    def release(self) -> None:
        self._pools.released += 1


class _Pools:
    """Runs 'pool' tasks at once, in-process, and counts leases."""

    def __init__(self) -> None:
        self.leases = 0
        self.released = 0

    def lease(self, spec: Any) -> _Lease:
        self.leases += 1
        return _Lease(self)


def test_cheap_profile_reads_no_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "psutil", _Refuse())
    profile = SystemProbe(Settings()).profile()
    assert profile.usable_cpus >= 1
    assert profile.physical_cores is None
    assert profile.memory_available_bytes is None
    assert not profile.calibrated


def test_settings_are_read_at_the_first_profile_not_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probe = SystemProbe()
    monkeypatch.setenv("AMORSIZE_EXEC_PRIOR_POOL_START_S", "0.75")
    assert probe.profile().pool_start_s == pytest.approx(0.75)


def test_calibration_reads_the_other_facts_once() -> None:
    pools = _Pools()
    probe = SystemProbe(Settings(), pools=pools)  # type: ignore[arg-type]
    calibrated = probe.calibrated_profile()
    assert calibrated.calibrated
    assert calibrated.physical_cores == psutil.cpu_count(logical=False)
    assert calibrated.memory_available_bytes is not None
    assert calibrated.memory_available_bytes > 0
    assert calibrated.usable_cpus == probe.profile().usable_cpus
    assert probe.profile().physical_cores is None  # the cheap profile stays cheap
    assert probe.calibrated_profile() is calibrated
    assert (pools.leases, pools.released) == (1, 1)


def test_default_probe_is_one_per_process_until_reset() -> None:
    first = machine.default_probe()
    assert machine.default_probe() is first
    machine.reset_default_probe()
    assert machine.default_probe() is not first
