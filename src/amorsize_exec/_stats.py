"""``SampleStats``: what was measured about a function's items, as the cost model reads it.

A value object of its own, so that the pure cost model and the decision records depend on it
without depending on the sampler that measures it (or on cloudpickle).
"""

from __future__ import annotations

from dataclasses import dataclass


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
