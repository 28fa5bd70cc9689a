"""``SampleStats``: what was measured about a function's items, as the cost model reads it,
and how timings (the sampler's, or chunks timed in the workers) become one.

A module of its own, so that the pure cost model and the decision records depend on it
without depending on the sampler that measures it (or on cloudpickle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SampleStats:
    """Per-item figures measured by the sampler (means unless said otherwise).

    Attributes:
        items: items measured.
        compute_s: wall seconds per item.
        cpu_s: CPU seconds per item of the whole process, all threads: far below
            ``compute_s`` the item mostly waits; above it, the item already runs on several
            cores (BLAS threads), and a pool gains less.
        cv: coefficient of variation of per-item wall time (0 if not measurable).
        max_s: slowest single item measured.
        arg_bytes: pickled size of one item's arguments.
        result_bytes: pickled size of one item's result.
        serialize_s: time to pickle one item's arguments and its result, measured on a batch
            (the parent pays about this per item to send arguments and read results, and a
            worker pays it again).
        callable_bytes: pickled size of the function (sent with every chunk).
        callable_serialize_s: time to pickle the function once.
        pickling_measured: ``True`` once the fields about pickling were measured (only done
            when a pool could win: see ``Sampler.measure_pickling``).
        picklable: ``False`` if the function, an argument or a result could not be pickled.
        unpicklable_reason: what could not be pickled, and why.
        elapsed_s: wall time of the whole sample, measurement included.
        measured_s: wall seconds the sampled items took, summed as timed (the first item
            included even when the mean leaves it out): ``overhead_s`` rests on it.
        ready_s: wall seconds per item the sampling thread was runnable but waiting for a core
            (preempted: the machine is busy); part of ``compute_s`` that is no wait of the
            item's own (0 if not measured, or the items kept a core all along).
        single_thread_s: wall seconds of one item run with BLAS/OpenMP limited to one thread,
            measured only when the items ran on several cores (0: not measured).
    """

    items: int
    compute_s: float
    cpu_s: float
    cv: float
    max_s: float
    arg_bytes: float = 0.0
    result_bytes: float = 0.0
    serialize_s: float = 0.0
    callable_bytes: int = 0
    callable_serialize_s: float = 0.0
    pickling_measured: bool = False
    picklable: bool = True
    unpicklable_reason: str | None = None
    elapsed_s: float = 0.0
    measured_s: float = 0.0
    ready_s: float = 0.0
    single_thread_s: float = 0.0

    @property
    def work_s(self) -> float:
        """Seconds of work of ``items`` items at the mean ``compute_s`` (an estimate: the mean
        may leave out a slow first call, or be replaced by a later one)."""
        return self.items * self.compute_s

    @property
    def overhead_s(self) -> float:
        """Wall seconds the sample spent beyond the items' own calls (the sampler's cost).

        From ``measured_s``, not ``work_s``: when the mean leaves out the first item, ``work_s``
        can exceed what the items took, and the overhead read as zero.
        """
        return max(0.0, self.elapsed_s - self.measured_s)

    @property
    def busy_s(self) -> float:
        """Seconds per item that need a core: CPU time, plus time preempted (capped by
        ``compute_s``). The rest of ``compute_s`` is waiting that threads can overlap."""
        return min(self.compute_s, self.cpu_s + self.ready_s)


#: A measured time below which the cost arithmetic takes it as this long (a zero measurement
#: must not divide): chunk sizes of the pool, thread and cluster lanes.
TINY_S = 1e-9


def mostly_waits(cpu_s: float, wall_s: float, cpu_fraction: float) -> bool:
    """Whether work that took ``wall_s`` mostly waited: its CPU time is under ``cpu_fraction``
    of it (``Settings.waiting_cpu_fraction``). The one test for the sampler, the head start, the
    thread lane's re-check and the profile store."""
    return cpu_s < cpu_fraction * wall_s


@dataclass
class Measurements:
    """Timings as the sampler (or the workers) took them: single items, and batches timed as one."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    batch_items: int = 0  # items timed in batches (no per-item spread)
    batch_wall: float = 0.0
    batch_cpu: float = 0.0


def stats_from_timings(
    walls: list[float], cpus: list[float], *, batch_items: int, batch_wall: float, batch_cpu: float
) -> SampleStats | None:
    """``SampleStats`` from timings taken elsewhere (chunks timed in the workers): single
    items' wall and CPU seconds, and batches timed as one. No pickling figures yet."""
    m = Measurements(list(walls), list(cpus), batch_items, batch_wall, batch_cpu)
    return stats_from_measurements(m, sum(walls) + batch_wall)


def stats_from_measurements(m: Measurements, elapsed_s: float) -> SampleStats | None:
    count = len(m.wall) + m.batch_items
    if count == 0:
        return None
    # The first call often pays one-time costs (imports, caches): leave it out once there
    # are enough single-item timings to do without it.
    wall = m.wall[1:] if len(m.wall) >= 3 else m.wall
    cpu = m.cpu[1:] if len(m.cpu) >= 3 else m.cpu
    n = len(wall) + m.batch_items
    mean_wall = sum(wall) / len(wall) if wall else 0.0
    spread = 0.0
    if len(wall) >= 2 and mean_wall > 0:  # floats, not statistics.pstdev's exact fractions
        spread = math.sqrt(sum((w - mean_wall) ** 2 for w in wall) / len(wall)) / mean_wall
    return SampleStats(
        items=count,
        compute_s=(sum(wall) + m.batch_wall) / n,
        cpu_s=(sum(cpu) + m.batch_cpu) / n,
        cv=spread,
        max_s=max(m.wall, default=m.batch_wall / max(1, m.batch_items)),
        elapsed_s=elapsed_s,
        measured_s=sum(m.wall) + m.batch_wall,
    )
