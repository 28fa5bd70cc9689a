"""``IsolatedMap``: a map whose items may not run in this process, planned from the workers.

With ``isolate=True``, an ``initializer``, ``lane="process"`` or ``lane="cluster"``, ``fn``
never runs in this process, so the in-process ``Sampler`` cannot time it. The pool map then
starts with chunks of one item, a window of them in flight (every worker busy at once), and
each chunk comes back with the wall and CPU seconds it took in its worker
(``_worker.run_chunk``). ``WorkerSample`` watches them in input order (``ChunkedMap``'s
observer) until they are evidence enough, by the sampler's own rule, then asks
``IsolatedMap.plan`` for the chunk size and window of the rest. With ``lane="cluster"`` the
same happens on the Dask cluster, sized by the cluster's model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ._decision import Decision
from ._sampler import Sample, Sampler
from ._stats import SampleStats, stats_from_timings

if TYPE_CHECKING:
    from ._config import Settings
    from ._lanes import MapRequest
    from ._runtime import Runtime

#: ``(stats, items done) -> (chunksize, window)`` for the rest, or ``None`` to keep the first.
Plan = Callable[[SampleStats, int], "tuple[int, int] | None"]


class IsolatedMap:
    """Every item in the pool (``isolate``, an initializer, ``lane="process"``), or on the
    cluster (``lane="cluster"``). The first chunks go out one item each (all workers busy at
    once), timed in the workers; once they are back, the model sizes the rest
    (``WorkerSample``)."""

    def __init__(self, runtime: Runtime, request: MapRequest) -> None:
        self._rt = runtime
        self._request = request
        self._fn = request.fn
        self._total = request.total
        self._options = request.options
        self._forced = runtime.forced_lane in ("process", "cluster")
        self._cluster = runtime.cluster if runtime.forced_lane == "cluster" else None
        self._why = (
            f"lane={runtime.forced_lane!r} was asked"
            if self._forced
            else "isolated: fn never runs in this process"
        )

    def results(self) -> Iterator[Any]:
        rt, options = self._rt, self._options
        profile = rt.processes.profile()
        cluster = self._cluster
        first = Decision(
            "process" if cluster is None else "cluster",
            rt.processes.worker_cap(profile) if cluster is None else cluster.costs().threads,
            options.chunksize or 1,
            1.0,
            0.0,
            f"{self._why}; the first items are timed in the workers",
        )
        rt.record(
            "map",
            self._fn,
            first,
            stats=None,
            profile=profile,
            total=self._total,
            remaining=self._total,
            forced=self._forced,
        )
        sample = WorkerSample(
            self._fn,
            rt.settings,
            rt.sampler,
            self.plan,
            window=options.window(first, rt.settings),
        )
        lane = rt.processes if cluster is None else cluster
        return lane.run(self._fn, self._request.args(), first, options, observer=sample.observe)

    def plan(self, stats: SampleStats, done: int) -> tuple[int, int] | None:
        """Chunk size and window for the rest, from ``done`` items timed in the workers; the
        decision is recorded."""
        total = self._total
        remaining = None if total is None else total - done
        if remaining is not None and remaining <= 0:
            return None
        rt = self._rt
        decision, profile = rt.planner.decide_isolated(
            stats,
            done if remaining is None else remaining,
            self._options.chunksize,
            length_known=remaining is not None,
            on_cluster=self._cluster is not None,
        )
        decision = replace(decision, reason=f"{self._why}; {decision.reason}")
        rt.record(
            "map",
            self._fn,
            decision,
            stats=stats,
            profile=profile,
            total=total,
            remaining=remaining,
            forced=self._forced,
        )
        return decision.chunksize, self._options.window(decision, rt.settings)


class WorkerSample:
    """Collects the first chunks' timings; plans once (``observe`` is a ``ChunkObserver``)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        settings: Settings,
        sampler: Sampler,
        plan: Plan,
        *,
        window: int,
    ) -> None:
        self._fn = fn
        self._settings = settings
        self._sampler = sampler
        self._plan = plan
        self._window = window  # chunks sent before any came back: all of them count
        self._chunks = 0
        self._items = 0
        self._walls: list[float] = []  # one-item chunks
        self._cpus: list[float] = []
        self._batch_items = 0  # larger chunks (a chunksize the caller chose)
        self._batch_wall = 0.0
        self._batch_cpu = 0.0
        # Pickling, measured on the first chunks as they come back (their values are not kept:
        # a delivered result must not stay alive here).
        self._pickled = 0  # items whose arguments and results were pickled
        self._pickling = {"arg_bytes": 0.0, "result_bytes": 0.0, "serialize_s": 0.0}
        self._pickling_base: SampleStats | None = None  # the function's figures, or unpicklable

    def observe(
        self,
        chunk: list[tuple[Any, ...]],
        results: list[Any],
        error: BaseException | None,
        wall_s: float,
        cpu_s: float,
    ) -> tuple[int, int] | None:
        if error is not None:
            return None  # the map ends at this chunk: nothing left to plan
        s = self._settings
        self._chunks += 1
        self._items += len(chunk)
        if len(chunk) == 1:
            self._walls.append(wall_s)
            self._cpus.append(cpu_s)
        else:
            self._batch_items += len(chunk)
            self._batch_wall += wall_s
            self._batch_cpu += cpu_s
        self._measure_pickling(chunk, results)
        measured_s = sum(self._walls) + self._batch_wall
        enough = self._items >= s.sample_min_items and measured_s >= s.sample_min_s
        if not enough and self._chunks < self._window:
            return None
        stats = stats_from_timings(
            self._walls,
            self._cpus,
            batch_items=self._batch_items,
            batch_wall=self._batch_wall,
            batch_cpu=self._batch_cpu,
        )
        if stats is None:
            return None
        return self._plan(self._with_pickling(stats), self._items)

    def _measure_pickling(self, chunk: list[tuple[Any, ...]], results: list[Any]) -> None:
        """Pickle the first ``sample_serialized_items`` items' arguments and results, chunk by
        chunk (``Sampler.measure_pickling``); sums per item in ``_pickling``."""
        room = self._settings.sample_serialized_items - self._pickled
        count = min(room, len(chunk), len(results))
        if count <= 0:
            return
        first = self._pickling_base is None
        piece = Sample(
            fn=self._fn if first else None,
            kept_args=chunk[:count],
            kept_results=results[:count],
        )
        nothing = SampleStats(items=0, compute_s=0.0, cpu_s=0.0, cv=0.0, max_s=0.0)
        figures = self._sampler.measure_pickling(piece, nothing)
        if first or not figures.picklable:
            self._pickling_base = figures
        for name in self._pickling:
            self._pickling[name] += getattr(figures, name) * count
        self._pickled += count

    def _with_pickling(self, stats: SampleStats) -> SampleStats:
        base = self._pickling_base
        if base is None:
            return stats
        if not base.picklable:
            return replace(
                stats,
                pickling_measured=True,
                picklable=False,
                unpicklable_reason=base.unpicklable_reason,
            )
        items = max(1, self._pickled)
        return replace(
            stats,
            pickling_measured=True,
            callable_bytes=base.callable_bytes,
            callable_serialize_s=base.callable_serialize_s,
            arg_bytes=self._pickling["arg_bytes"] / items,
            result_bytes=self._pickling["result_bytes"] / items,
            serialize_s=self._pickling["serialize_s"] / items,
        )
