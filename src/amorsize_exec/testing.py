"""Test doubles for code that uses amorsize_exec: a fake clock and a fake machine probe.

Use them to test decisions without timing anything::

    probe = FakeProbe(make_profile(usable_cpus=8, pool_start_s=0.5))
    ex = AutoExecutor(probe=probe)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ._machine import MachineProfile


def make_profile(**overrides: Any) -> MachineProfile:
    """A 2-core machine with the design's measured costs; override any field."""
    fields: dict[str, Any] = {
        "usable_cpus": 2,
        "physical_cores": 2,
        "memory_available_bytes": 8 << 30,
        "start_method": "loky",
        "pool_start_s": 0.2,
        "worker_launch_s": 0.005,
        "chunk_roundtrip_s": 0.0005,
        "ipc_s_per_byte": 1e-9,
        "calibrated": True,
    }
    fields.update(overrides)
    return MachineProfile(**fields)


class FakeProbe:
    """A ``MachineProbe`` that returns a fixed profile and counts how often it was asked."""

    def __init__(self, profile: MachineProfile | None = None) -> None:
        self._profile = profile or make_profile()
        self.calls = 0
        self.calibrations = 0

    def profile(self) -> MachineProfile:
        self.calls += 1
        return self._profile

    def calibrated_profile(self) -> MachineProfile:
        self.calibrations += 1
        return dataclasses.replace(self._profile, calibrated=True)


class FakeClock:
    """A clock that moves only when told: ``clock.advance(0.01)``; call it to read it."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.now += seconds
