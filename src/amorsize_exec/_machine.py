"""What this machine can do: usable CPUs, memory, and the measured costs of a pool.

``profile()`` reads only what every decision needs, usable CPUs (~0.2 ms on a first call);
physical cores and available memory (~1.1 ms more through psutil, and no decision uses them)
are read with the costs (pool start, chunk round trip, pipe bandwidth), which are measured on a
real pool only when a pool could win, once per probe instance, and kept on disk for a day
(``ProfileStore.recall_calibration``): later runs of a script do not pay for them again. The
calibration pool is a shared warm pool, so its start is not wasted: the run that needed the
measurement then uses it.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import Protocol

import loky
import psutil

from ._backends import PoolSpec, WorkerPools, default_pools
from ._backends._worker import byte_length, noop
from ._config import Settings
from ._profile_store import ProfileStore

_IPC_PROBE_BYTES = 1 << 20
_ROUND_TRIPS = 7
#: Costs that only a pool can measure, as ``MachineProfile`` fields (the starts: only when cold).
_MEASURED_ALWAYS = ("chunk_roundtrip_s", "ipc_s_per_byte")


@dataclass(frozen=True)
class MachineProfile:
    """Machine facts and pool costs, as the cost model consumes them.

    Attributes:
        usable_cpus: CPUs this process may use (affinity and cgroup quota, via loky).
        physical_cores: physical cores per psutil (``None`` if unknown or not read: only a
            calibrated profile reads it).
        memory_available_bytes: memory available when probed (``None`` if not read: only a
            calibrated profile reads it).
        start_method: how pool workers start (loky's name).
        pool_start_s: start of a cold 2-worker pool including one trivial task.
        worker_launch_s: extra start cost per worker beyond two.
        chunk_roundtrip_s: warm round trip of one small task.
        ipc_s_per_byte: pipe cost per byte sent to or from a worker.
        calibrated: ``True`` if the three costs were measured here, ``False`` if priors.
        fork_start_s: start of a cold 2-worker pool whose workers are forked, or ``None`` where
            pools never fork (not Linux); see ``forking()``.
        blas_spin_s: how long this process's idle BLAS threads go on taking a core each after
            its last call (a prior; 0: they never do).
    """

    usable_cpus: int
    physical_cores: int | None
    memory_available_bytes: int | None
    start_method: str
    pool_start_s: float
    worker_launch_s: float
    chunk_roundtrip_s: float
    ipc_s_per_byte: float
    calibrated: bool = False
    fork_start_s: float | None = None
    blas_spin_s: float = 0.0

    def spawn_s(self, workers: int) -> float:
        """Predicted start cost of a cold pool of ``workers``."""
        return self.pool_start_s + self.worker_launch_s * max(0, workers - 2)

    def forking(self) -> MachineProfile:
        """This profile for a pool whose workers will be forked (``WorkerPools`` forks them
        while the process runs a single thread): the same, with the fork's start cost."""
        if self.fork_start_s is None:
            return self
        return replace(self, start_method="fork", pool_start_s=self.fork_start_s)


class MachineProbe(Protocol):
    """Source of ``MachineProfile``: ``SystemProbe`` here, ``testing.FakeProbe`` in tests."""

    def profile(self) -> MachineProfile:
        """Usable CPUs plus prior costs: cheap, never starts a process (other facts may be
        ``None``)."""
        ...

    def calibrated_profile(self) -> MachineProfile:
        """All facts plus measured costs: may start a pool the first time."""
        ...


class SystemProbe:
    """Reads this machine with psutil and loky and calibrates on a real pool, lazily, once."""

    def __init__(
        self,
        settings: Settings | None = None,
        pools: WorkerPools | None = None,
        store: ProfileStore | None = None,
    ) -> None:
        # Settings are read when first needed: an executor whose sample covers its whole input
        # never asks, and reading the environment costs ~0.1 ms.
        self._settings = settings
        self._pools = pools
        self._store = store  # None: the settings' cache file
        self._lock = threading.Lock()
        self._profile: MachineProfile | None = None
        self._calibrated: MachineProfile | None = None

    def profile(self) -> MachineProfile:
        with self._lock:
            if self._profile is None:
                s = self._settings = self._settings or Settings.from_env()
                # Only what decisions read: psutil's physical cores (a glob over sysfs) and
                # memory would triple a first serial decision's cost for nothing.
                self._profile = MachineProfile(
                    usable_cpus=max(1, loky.cpu_count()),
                    physical_cores=None,
                    memory_available_bytes=None,
                    start_method="loky",
                    pool_start_s=s.prior_pool_start_s,
                    worker_launch_s=s.worker_launch_s,
                    chunk_roundtrip_s=s.prior_chunk_roundtrip_s,
                    ipc_s_per_byte=s.prior_ipc_s_per_byte,
                    fork_start_s=(
                        s.prior_fork_start_s if sys.platform.startswith("linux") else None
                    ),
                    blas_spin_s=s.prior_blas_spin_s,
                )
            return self._profile

    def calibrated_profile(self) -> MachineProfile:
        base = self.profile()
        with self._lock:
            if self._calibrated is None:
                base = replace(
                    base,
                    physical_cores=psutil.cpu_count(logical=False),
                    memory_available_bytes=int(psutil.virtual_memory().available),
                )
                store = self._store
                if store is None:
                    store = ProfileStore.for_settings(self._settings or Settings())
                figures = store.recall_calibration()
                if not all(name in figures for name in _MEASURED_ALWAYS):
                    figures = self._calibrate(base)
                    store.remember_calibration(figures)
                self._calibrated = replace(
                    base,
                    chunk_roundtrip_s=figures["chunk_roundtrip_s"],
                    ipc_s_per_byte=figures["ipc_s_per_byte"],
                    pool_start_s=figures.get("pool_start_s", base.pool_start_s),
                    fork_start_s=figures.get("fork_start_s", base.fork_start_s),
                    calibrated=True,
                )
            return self._calibrated

    def _calibrate(self, base: MachineProfile) -> dict[str, float]:
        """The pool costs measured now, by ``MachineProfile`` field (a start only if cold)."""
        pools = self._pools or default_pools()
        spec = PoolSpec(workers=min(2, base.usable_cpus))
        lease = pools.lease(spec)
        try:
            started = time.perf_counter()
            lease.submit(noop).result()
            start_s = time.perf_counter() - started
            round_trips = [_timed(lambda: lease.submit(noop).result()) for _ in range(_ROUND_TRIPS)]
            roundtrip_s = statistics.median(round_trips)
            payload = bytes(_IPC_PROBE_BYTES)
            transfer_s = statistics.median(
                _timed(lambda: lease.submit(byte_length, payload).result()) for _ in range(3)
            )
        finally:
            lease.release()
        figures = {
            "chunk_roundtrip_s": roundtrip_s,
            "ipc_s_per_byte": max(0.0, transfer_s - roundtrip_s) / _IPC_PROBE_BYTES,
        }
        # A pool that was already warm tells nothing about a cold start: keep the prior.
        if not lease.warm:
            figures["fork_start_s" if lease.forked else "pool_start_s"] = start_s
        return figures

    def reset(self) -> None:
        """Forget all measurements; the next call measures again."""
        with self._lock:
            self._profile = None
            self._calibrated = None


def _timed(call: object) -> float:
    started = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - started


_default_probe: SystemProbe | None = None
_default_lock = threading.Lock()


def default_probe() -> SystemProbe:
    """The probe executors use unless given ``probe=``; measures once per process."""
    global _default_probe
    probe = _default_probe  # every executor asks: no lock once made
    if probe is not None:
        return probe
    with _default_lock:
        if _default_probe is None:
            _default_probe = SystemProbe()
        return _default_probe


def reset_default_probe() -> None:
    """Forget the default probe's measurements (tests)."""
    global _default_probe
    with _default_lock:
        _default_probe = None
