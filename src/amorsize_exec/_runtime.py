"""What every call of one ``AutoExecutor`` shares: settings, the machine probe, the sampler, the
lanes, the decisions taken, and what earlier calls taught (``Planner``).

``AutoExecutor`` keeps the contract (checks, its lock, shutdown) and owns one ``Runtime``;
``MapCall``, ``IsolatedMap`` and ``SubmitRouter`` take the runtime, never the executor, so
that none of them imports it back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._backends._blas import ProcessCpuClock
from ._decision import DecisionRecord, callable_name
from ._lanes import LiveStreams
from ._lanes._cluster import ClusterLane
from ._lanes._process import ProcessLane
from ._lanes._serial import SerialLane
from ._lanes._threads import ThreadLane
from ._planner import Planner
from ._profile_store import ProfileStore
from ._sampler import Sampler
from ._trial_outcomes import TrialOutcomes

if TYPE_CHECKING:
    from ._backends import PrivatePool, WorkerPools
    from ._config import Lane as LaneName
    from ._config import Settings
    from ._decision import Decision
    from ._lanes import Lane
    from ._machine import MachineProbe, MachineProfile
    from ._stats import SampleStats

logger = logging.getLogger(__name__)


class Runtime:
    """One executor's lanes and memory (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        probe: MachineProbe,
        *,
        lane: LaneName,
        max_workers: int | None,
        strict: bool,
        isolated: bool,
        nested: bool,
        start_method: str,
        pools: WorkerPools | None,
        private: PrivatePool | None,
        client: Any = None,
        owns_client: bool = False,
    ) -> None:
        self.settings = settings
        self.probe = probe
        self.forced_lane = lane
        self.strict = strict
        self.nested = nested
        self._isolated = isolated
        #: The sampler's and the serial lane's CPU clock (BLAS threads' time up to date).
        self.cpu_clock = ProcessCpuClock()
        self.sampler = Sampler(settings, cpu_clock=self.cpu_clock)
        #: Which functions' thread trials lost lately (their next maps run untried).
        self.trials = TrialOutcomes()
        self.streams = LiveStreams()
        self.serial = SerialLane()
        self.threads = ThreadLane(settings, self.streams)
        self.processes = ProcessLane(
            settings,
            probe,
            self.streams,
            max_workers=max_workers,
            start_method=start_method,
            pools=pools,
            private=private,
        )
        #: The Dask cluster's lane (``client=``), else ``None``.
        self.cluster = (
            None
            if client is None
            else ClusterLane(settings, self.streams, client, owned=owns_client)
        )
        self.planner = Planner(settings, self.processes, self.sampler, self.cluster)
        #: Costly functions' figures from earlier runs, on disk (``_profile_store``).
        self.profiles = ProfileStore.for_settings(settings)
        self.last_decision: DecisionRecord | None = None
        self.closed = False  # set by the executor's shutdown: no pool is bought after it

    def lane(self, name: str) -> Lane:
        """The lane a decision names."""
        if name == "process":
            return self.processes
        if name == "thread":
            return self.threads
        if name == "cluster" and self.cluster is not None:
            return self.cluster
        return self.serial

    @property
    def runs_in_process_only(self) -> bool:
        """True if every call runs in this process: ``lane="serial"``, or nested in a worker
        (a pool there would fork-bomb)."""
        return self.nested or self.forced_lane == "serial"

    @property
    def isolated(self) -> bool:
        """True if ``fn`` never runs in this process (``isolate``, an initializer,
        ``lane="process"`` or ``lane="cluster"``), unless nested in a worker."""
        return self._isolated and not self.nested

    # --- what SubmitRouter asks -------------------------------------------------------------

    def submit_workers(self) -> int:
        """Workers for the pool that ``submit`` uses."""
        return self.processes.worker_cap(self.probe.profile())

    def machine_profile(self) -> MachineProfile:
        """The machine as the next decision sees it (with this executor's next pool start)."""
        return self.processes.profile()

    # --- the decision log --------------------------------------------------------------------

    def record(
        self,
        call: str,
        fn: Callable[..., Any] | str,
        decision: Decision,
        *,
        stats: SampleStats | None,
        profile: MachineProfile | None,
        total: int | None,
        remaining: int | None,
        forced: bool = False,
    ) -> None:
        """Keep the decision as ``last_decision`` and log it (one INFO line)."""
        record = DecisionRecord(
            call=call,
            function=fn if isinstance(fn, str) else callable_name(fn),
            decision=decision,
            stats=stats,
            profile=profile,
            items_total=total,
            items_remaining=remaining,
            forced=forced,
            sample_overhead_s=0.0 if stats is None else stats.overhead_s,
        )
        self.last_decision = record
        if logger.isEnabledFor(logging.INFO):
            logger.info("%s", record.summary())

    def revise(self, fn: Callable[..., Any], decision: Decision) -> None:
        """Record ``decision`` for a map under way in place of its last one, on the same
        figures (the map changed course: its input ended early, its items stopped waiting,
        its chunks were re-planned)."""
        last = self.last_decision
        self.record(
            "map",
            fn,
            decision,
            stats=None if last is None else last.stats,
            profile=None if last is None else last.profile,
            total=None if last is None else last.items_total,
            remaining=None if last is None else last.items_remaining,
        )

    def record_submit_decision(self, name: str, decision: Decision) -> None:
        self.record(
            "submit",
            name,
            decision,
            stats=None,
            profile=self.probe.profile(),
            total=None,
            remaining=None,
        )
