"""The process lane: the warm loky pools shared by every executor, or this executor's own.

Besides running a map's chunks (``run``), the lane answers what only a pool has: whether a
pool of ``w`` workers is warm, the machine profile with the start this executor's next cold
pool would pay (forked workers answer in ~15 ms, loky's in ~0.24 s), and starting a pool in
the background while the map goes on in-process (``start``, ``PoolStart``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .. import _cost_model
from .._backends import PoolSpec, SharedPool
from .._backends import default_pools as _default_pools

if TYPE_CHECKING:
    from .._backends import ChunkObserver, PoolLease, PoolSource, PrivatePool, WorkerPools
    from .._config import Settings
    from .._decision import Decision
    from .._machine import MachineProbe, MachineProfile
    from . import LiveStreams, MapOptions


class ProcessLane:
    """An executor's view of its worker processes."""

    def __init__(
        self,
        settings: Settings,
        probe: MachineProbe,
        streams: LiveStreams,
        *,
        max_workers: int | None,
        start_method: str,
        pools: WorkerPools | None,
        private: PrivatePool | None,
    ) -> None:
        self._settings = settings
        self._probe = probe
        self._streams = streams
        self.max_workers = max_workers
        self._start_method = start_method
        # Found on first use: a map whose sample covers its input never needs the shared
        # pools, and making them reads the environment again (~0.1 ms).
        self._pools = pools
        self._private = private

    def source(self, workers: int) -> PoolSource:
        """The pool work of ``workers`` processes runs on (private if the setup is ours only)."""
        if self._private is not None:
            return self._private
        if self._pools is None:
            self._pools = _default_pools()
        return SharedPool(self._pools, PoolSpec(workers, self._start_method))

    def is_warm(self, workers: int) -> bool:
        return self.source(workers).is_warm()

    def profile(self, *, calibrated: bool = False) -> MachineProfile:
        """The probe's profile, with the start cost of this executor's next cold pool
        (``WorkerPools.forks_new_pools``)."""
        profile = self._probe.calibrated_profile() if calibrated else self._probe.profile()
        if profile.fork_start_s is None or self._private is not None:
            return profile
        if self._pools is None:
            self._pools = _default_pools()
        return profile.forking() if self._pools.forks_new_pools(self._start_method) else profile

    def worker_cap(self, profile: MachineProfile) -> int:
        """Most workers allowed: the user's ``max_workers``, else the usable CPUs."""
        return min(profile.usable_cpus, self.max_workers or profile.usable_cpus)

    def warm_workers(self, profile: MachineProfile) -> int:
        """Size of the largest pool this executor may use that is warm now (0 if none)."""
        cap = self.worker_cap(profile)
        return max((w for w in range(2, cap + 1) if self.is_warm(w)), default=0)

    def run(
        self,
        fn: Callable[..., Any],
        args: Iterator[tuple[Any, ...]],
        decision: Decision,
        options: MapOptions,
        observer: ChunkObserver | None = None,
    ) -> Iterator[Any]:
        """Chunks of ``args`` through a bounded window over a lease of the pool; an
        ``observer`` re-plans chunk size and window from the first chunks' timings."""
        lease = self.source(decision.workers).lease()
        return self._streams.start(
            lease.submit_chunk,
            fn,
            args,
            decision=decision,
            options=options,
            settings=self._settings,
            on_close=lease.release,
            on_interrupt=lease.abort,
            observer=observer,
        )

    def start(
        self, decision: Decision, profile: MachineProfile, *, mid_run: bool = False
    ) -> PoolStart:
        """Start the pool ``decision`` wants. If a core is left to the parent, do not wait: the
        run goes on in-process and hands the rest over once a worker has answered. Otherwise
        wait for the answer: items run here would slow the start more than they gain
        (``_cost_model.parent_share_while_starting``)."""
        lease = self.source(decision.workers).lease()
        try:
            starting = PoolStart(lease, lease.start(), decision, profile, mid_run)
        except BaseException:
            lease.release()
            raise
        if not _cost_model.parent_share_while_starting(decision.workers, profile, self._settings):
            futures_wait([starting.answered])
        return starting

    def warm_up(self, workers: int) -> None:
        """Start a pool of ``workers`` for later calls, without waiting for it."""
        lease = self.source(workers).lease()
        try:
            answered = lease.start()
        except BaseException:
            lease.release()
            raise
        answered.add_done_callback(lambda _: lease.release())

    def shutdown(self, *, wait: bool) -> None:
        """Stop the private pool (once its last map ends); shared pools stay warm for others."""
        if self._private is not None:
            self._private.shutdown(wait=wait)


@dataclass
class PoolStart:
    """A pool starting in the background while the run goes on in-process."""

    lease: PoolLease
    answered: Future[Any]  # done once a worker has answered (or the start failed)
    decision: Decision  # the decision that started it: its prediction counts the start
    planned_on: MachineProfile  # the profile it rests on, with the start cost it counted
    mid_run: bool  # started by a re-check of a serial run, not by the first decision

    def as_planned(
        self, decision: Decision, profile: MachineProfile
    ) -> tuple[Decision, MachineProfile]:
        """A decision made on the running pool, as recorded: with the prediction and the start
        (forked or loky's) that bought the pool; the running pool's profile has neither."""
        planned_on = self.planned_on
        return (
            replace(decision, predicted_speedup=self.decision.predicted_speedup),
            replace(
                profile, start_method=planned_on.start_method, pool_start_s=planned_on.pool_start_s
            ),
        )
