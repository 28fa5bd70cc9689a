"""What a map's first chunks in the pool teach: the item time in a worker.

The plan rests on the sample, and a sample can be wrong in ways only the workers show: it ran
beside an item sent ahead on shared cores (a 200x200 ``solve`` timed 10.7 ms there, 0.5 ms in a
worker), or it was one first call that paid for lazy set-up (the same ``solve`` took 92 ms as a
fresh interpreter's first call, 0.9 ms after: the sample's time budget ended on that one item,
and the pool got 199 chunks of one item). ``LessonFromWorkers`` watches the first two chunks
per worker, drops the dearest ``workers`` of them (each worker's first call may carry that
set-up too), and from the rest:

- re-plans this map's chunk size if it is off by more than 2x (unless the caller chose it);
- replaces what ``fn``'s later maps, and later runs of the script, assume (``learn``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import _cost_model
from ._head_start import learn

if TYPE_CHECKING:
    from ._decision import Decision
    from ._lanes import MapOptions
    from ._runtime import Runtime
    from ._stats import SampleStats

logger = logging.getLogger(__name__)

#: A chunk size is re-planned only when the workers' timings move it by more than this factor.
_REPLAN_FACTOR = 2.0


class LessonFromWorkers:
    """A ``ChunkObserver`` for a map's pool run (see the module docstring)."""

    def __init__(
        self,
        rt: Runtime,
        fn: Callable[..., Any],
        stats: SampleStats,
        decision: Decision,
        *,
        options: MapOptions,
        remaining: int | None,
    ) -> None:
        self._rt, self._fn, self._stats = rt, fn, stats
        self._decision, self._options, self._remaining = decision, options, remaining
        self._seen: list[tuple[float, float, int]] = []  # per chunk: wall, CPU, items

    def __call__(
        self,
        chunk: list[tuple[Any, ...]],
        results: list[Any],
        error: BaseException | None,
        wall_s: float,
        cpu_s: float,
    ) -> tuple[int, int] | None:
        decision = self._decision
        if error is not None or not chunk or wall_s <= 0:
            return self._plan(decision)  # nothing more to learn from this map
        self._seen.append((wall_s, cpu_s, len(chunk)))
        workers = decision.workers
        if len(self._seen) < 2 * workers:
            return None  # keep watching (their arguments are kept meanwhile: a few chunks)
        kept = sorted(self._seen, key=lambda seen: seen[0] / seen[2])[: len(self._seen) - workers]
        items = sum(n for _, _, n in kept)
        item_s = sum(wall for wall, _, _ in kept) / items
        cpu_item_s = sum(cpu for _, cpu, _ in kept) / items
        learn(self._rt, self._fn, replace(self._stats, compute_s=item_s, cpu_s=cpu_item_s))
        if self._options.chunksize is not None:
            return self._plan(decision)
        settings, cv = self._rt.settings, self._stats.cv
        # Judged on the plan's own horizon: only the item time may move it, not the items done.
        at_plan = _cost_model.choose_chunksize(item_s, self._remaining, workers, cv, settings)
        if 1 / _REPLAN_FACTOR <= at_plan / decision.chunksize <= _REPLAN_FACTOR:
            return self._plan(decision)
        done = sum(n for _, _, n in self._seen)
        left = None if self._remaining is None else max(1, self._remaining - done)
        chunksize = _cost_model.choose_chunksize(item_s, left, workers, cv, settings)
        sampled = _cost_model.format_seconds(self._stats.compute_s)
        why = (
            f"re-planned after {len(self._seen)} chunks: items take "
            f"{_cost_model.format_seconds(item_s)} in the workers, not {sampled}: "
            f"chunks of {chunksize}, not {decision.chunksize}"
        )
        logger.info("map(%s): %s", getattr(self._fn, "__qualname__", self._fn), why)
        new = replace(decision, chunksize=chunksize, reason=f"{why}; {decision.reason}")
        record = self._rt.last_decision
        if record is not None and record.decision == decision:  # not another map's since
            self._rt.revise(self._fn, new)
        return self._plan(new)

    def _plan(self, decision: Decision) -> tuple[int, int]:
        return decision.chunksize, self._options.window(decision, self._rt.settings)
