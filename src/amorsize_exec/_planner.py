"""Planning a map: the cost model asked as cheaply as the answer allows, and what an executor's
earlier maps taught it (rent-or-buy across calls, each callable's last item time)."""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import _cost_cluster, _cost_model

if TYPE_CHECKING:
    from ._config import Settings
    from ._decision import Decision
    from ._lanes._cluster import ClusterLane
    from ._lanes._process import ProcessLane
    from ._machine import MachineProfile
    from ._sampler import Sample, Sampler
    from ._stats import SampleStats


class Planner:
    """Decides for one executor's maps; remembers across them."""

    def __init__(
        self,
        settings: Settings,
        processes: ProcessLane,
        sampler: Sampler,
        cluster: ClusterLane | None = None,
    ) -> None:
        self._settings = settings
        self._processes = processes
        self._cluster = cluster
        self._sampler = sampler
        self._lock = threading.Lock()
        #: What a warm pool would have saved this executor's serial runs since the last start.
        self._forgone_s = 0.0
        self._forgone_runs = 0
        #: Each callable's sample in its last map (weakly held): send-ahead, shorter samples.
        self._last: weakref.WeakKeyDictionary[Callable[..., Any], SampleStats] = (
            weakref.WeakKeyDictionary()
        )

    def decide(
        self,
        stats: SampleStats,
        n: int,
        chunksize: int | None,
        sample: Sample,
        *,
        length_known: bool = True,
        spent_s: float = 0.0,
    ) -> tuple[Decision, MachineProfile, SampleStats]:
        """Decide on free pickling and prior pool costs first; only if a pool wins even so,
        measure pickling, then (on a warm pool only: calibrating never waits for a start) the
        machine, deciding again each time. Returns the decision, and the profile and stats it
        rests on.

        ``spent_s``: in-process seconds the run has spent; once an input without a length has
        cost a pool start, the start no longer counts against the pool (rent-or-buy).
        """
        processes = self._processes
        profile = processes.profile()
        start_paid = not length_known and spent_s >= profile.spawn_s(2)

        def again() -> Decision:
            return self._model(
                stats,
                profile,
                n,
                warm_workers=processes.warm_workers(profile),
                chunksize=chunksize,
                length_known=length_known,
                start_paid=start_paid,
                thread_cap=self._settings.thread_lane_max_threads,
            )

        decision = again()
        if decision.lane == "process" and not stats.pickling_measured:
            stats = self._sampler.measure_pickling(sample, stats)
            decision = again()
        if (
            decision.lane == "process"
            and not profile.calibrated
            and processes.is_warm(decision.workers)
        ):
            profile = processes.profile(calibrated=True)
            decision = again()
        if self._cluster is not None:
            decision, stats = self._or_cluster(
                decision, stats, n, chunksize, sample, length_known=length_known
            )
        return decision, profile, stats

    def _or_cluster(
        self,
        local: Decision,
        stats: SampleStats,
        n: int,
        chunksize: int | None,
        sample: Sample,
        *,
        length_known: bool,
    ) -> tuple[Decision, SampleStats]:
        """The cluster's decision if it beats ``local``; its costs (and pickling) are measured
        only if it could win at the optimistic priors (``cluster_could_win``)."""
        cluster, s = self._cluster, self._settings
        assert cluster is not None
        if not _cost_cluster.cluster_could_win(stats, cluster.floor(), s, n, local):
            return local, stats
        if not stats.pickling_measured:
            stats = self._sampler.measure_pickling(sample, stats)
            if not stats.picklable:
                why = f"; not the cluster: {stats.unpicklable_reason}"
                return replace(local, reason=local.reason + why), stats
            if not _cost_cluster.cluster_could_win(stats, cluster.floor(), s, n, local):
                return local, stats
        remote = _cost_cluster.decide_cluster(
            stats, cluster.costs(), s, n, local, chunksize=chunksize, length_known=length_known
        )
        return (local, stats) if remote is None else (remote, stats)

    def decide_isolated(
        self,
        stats: SampleStats,
        n: int,
        chunksize: int | None,
        *,
        length_known: bool,
        on_cluster: bool = False,
    ) -> tuple[Decision, MachineProfile]:
        """The fastest pool for ``n`` items that may not run here (their start is sunk), or
        chunks for the cluster (``on_cluster``: ``lane="cluster"``)."""
        profile = self._processes.profile()
        if on_cluster and self._cluster is not None:
            costs = self._cluster.costs()
            forced = _cost_cluster.decide_forced(
                stats, costs, self._settings, n, chunksize=chunksize, length_known=length_known
            )
            return forced, profile
        decision = self._model(
            stats,
            profile,
            n,
            warm_workers=self._processes.worker_cap(profile),
            chunksize=chunksize,
            length_known=length_known,
            start_paid=True,
            isolated=True,
        )
        return decision, profile

    def decide_unsampled(
        self, stats: SampleStats, n: int, chunksize: int | None
    ) -> tuple[Decision, MachineProfile]:
        """The model on an earlier map's figures, measuring nothing: a head start that the
        map's own first timings re-check (``_head_start.straight_to_threads``)."""
        profile = self._processes.profile()
        decision = self._model(
            stats,
            profile,
            n,
            warm_workers=self._processes.warm_workers(profile),
            chunksize=chunksize,
            thread_cap=self._settings.thread_lane_max_threads,
        )
        return decision, profile

    def _model(self, stats: SampleStats, profile: MachineProfile, n: int, **terms: Any) -> Decision:
        """``cost_model.decide`` with this executor's settings and worker cap."""
        return _cost_model.decide(
            stats, profile, self._settings, n, max_workers=self._processes.max_workers, **terms
        )

    def forgo(
        self,
        stats: SampleStats,
        profile: MachineProfile,
        n: int,
        *,
        chunksize: int | None,
        sample: Sample,
    ) -> int:
        """Rent-or-buy across calls: add up what a warm pool would have saved this executor's
        serial runs; once that reaches the start of a pool, over two runs at least, return its
        worker count (the run starts it when done), else 0. A service whose every call is too
        short to pay for a cold pool otherwise never gets a warm one (tiny_x20k, warm: 1.93x
        the best pool). Pickling, free until then, is measured before the pool is bought."""
        if n <= 0 or not stats.picklable:
            return 0
        workers = self._processes.worker_cap(profile)
        if workers < 2:
            return 0

        def warm_verdict(stats: SampleStats) -> Decision:
            return self._model(stats, profile, n, warm_workers=workers, chunksize=chunksize)

        verdict = warm_verdict(stats)
        if verdict.lane != "process":
            return 0
        saved_s = _cost_model.predict_serial_s(stats, n) * (1.0 - 1.0 / verdict.predicted_speedup)
        with self._lock:
            self._forgone_s += saved_s
            self._forgone_runs += 1
            # Across calls: a script's single map never starts a pool it will not use.
            if self._forgone_runs < 2 or self._forgone_s < profile.spawn_s(verdict.workers):
                return 0
            self._forgone_s, self._forgone_runs = 0.0, 0
        verdict = warm_verdict(self._sampler.measure_pickling(sample, stats))
        return verdict.workers if verdict.lane == "process" else 0

    def remembered_pool(self, stats: SampleStats, n: int) -> int:
        """Workers of a cold pool worth starting for ``n`` items that an earlier run measured
        as ``stats`` (0: none would pay). Only starts work early: this run's sample decides."""
        profile = self._processes.profile()
        decision = self._model(stats, profile, n, chunksize=None)
        return decision.workers if decision.lane == "process" else 0

    def remember(self, fn: Callable[..., Any], stats: SampleStats | None) -> None:
        """Keep the callable's sample figures for its next map (send-ahead, shorter samples)."""
        if stats is not None:
            with contextlib.suppress(TypeError):  # not weak-referenceable: not remembered
                self._last[fn] = stats

    def last_stats(self, fn: Callable[..., Any]) -> SampleStats | None:
        """The callable's sample figures in its previous map (``None``: none, or forgotten)."""
        try:
            return self._last.get(fn)
        except TypeError:
            return None
