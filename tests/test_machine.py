"""``SystemProbe``: the cheap profile reads only what decisions use; the rest waits for
calibration (on a fake pool here: no test calibrates the machine), which later runs read from
the cache file."""

from __future__ import annotations

import json
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import psutil
import pytest

import amorsize_exec._machine as machine
import amorsize_exec._profile_store as profile_store
from amorsize_exec import Settings, SystemProbe
from amorsize_exec._profile_store import ProfileStore


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


# --- the calibration, remembered across runs ------------------------------------------------


def _probe(pools: _Pools, path: Path | None) -> SystemProbe:
    """A probe of a new process on the cache file at ``path`` (``None``: no file)."""
    store = ProfileStore(path, costly_s=0.005, waits_below=0.5)
    return SystemProbe(Settings(), pools=pools, store=store)  # type: ignore[arg-type]


def test_a_later_run_uses_the_remembered_calibration(tmp_path: Path) -> None:
    first_pools, later_pools = _Pools(), _Pools()
    measured = _probe(first_pools, tmp_path / "p.json").calibrated_profile()
    later = _probe(later_pools, tmp_path / "p.json").calibrated_profile()
    assert (first_pools.leases, later_pools.leases) == (1, 0)  # no pool: read from the file
    assert later.calibrated
    assert later.chunk_roundtrip_s == measured.chunk_roundtrip_s
    assert later.ipc_s_per_byte == measured.ipc_s_per_byte
    assert later.pool_start_s == measured.pool_start_s  # measured cold (the fake lease is cold)
    assert later.physical_cores == psutil.cpu_count(logical=False)


def test_a_calibration_older_than_a_day_is_measured_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _probe(_Pools(), tmp_path / "p.json").calibrated_profile()
    now = time.time()
    monkeypatch.setattr(profile_store.time, "time", lambda: now + 25 * 3600)
    pools = _Pools()
    _probe(pools, tmp_path / "p.json").calibrated_profile()
    assert pools.leases == 1


@pytest.mark.parametrize(
    "calibration",
    [
        {"figures": {"chunk_roundtrip_s": -1.0, "ipc_s_per_byte": 1e-9}, "saved": 0},
        {"figures": {"chunk_roundtrip_s": "fast"}, "saved": "now"},
        {"figures": {"ipc_s_per_byte": 1e-9}},
        "not a dict",
    ],
)
def test_a_corrupt_calibration_is_measured_again(tmp_path: Path, calibration: object) -> None:
    path = tmp_path / "p.json"
    _probe(_Pools(), path).calibrated_profile()
    data = json.loads(path.read_text())
    data["calibration"] = calibration
    path.write_text(json.dumps(data))
    pools = _Pools()
    _probe(pools, path).calibrated_profile()
    assert pools.leases == 1


def test_without_remembered_profiles_every_run_measures() -> None:
    for _ in range(2):
        pools = _Pools()
        _probe(pools, None).calibrated_profile()
        assert pools.leases == 1
