"""What was decided and why: frozen records for ``AutoExecutor.last_decision`` and the log."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ._machine import MachineProfile
    from ._stats import SampleStats

DecisionLane = Literal["serial", "thread", "process", "cluster"]


#: What ``workers`` counts, by lane.
_UNITS = {
    "serial": "worker",
    "thread": "threads",
    "process": "workers",
    "cluster": "cluster threads",
}


@dataclass(frozen=True)
class Decision:
    """The cost model's answer for the items that remain after the sample.

    Attributes:
        lane: ``"serial"`` (in-process), ``"thread"`` (threads of this process),
            ``"process"`` (the loky pool) or ``"cluster"`` (tasks on a Dask cluster).
        workers: worker processes, threads, or the cluster's threads, to use (1 for serial).
        chunksize: items per task sent to a worker (the serial lane ignores it).
        predicted_speedup: predicted serial time / parallel time at ``workers`` (1.0 if serial).
        speedup_at_two: the card's test figure: predicted speedup with 2 workers.
        reason: one human sentence.
    """

    lane: DecisionLane
    workers: int
    chunksize: int
    predicted_speedup: float
    speedup_at_two: float
    reason: str

    @classmethod
    def serial(cls, reason: str, speedup_at_two: float = 0.0) -> Decision:
        """Run in-process, for ``reason``."""
        return cls("serial", 1, 1, 1.0, speedup_at_two, reason)


@dataclass(frozen=True)
class DecisionRecord:
    """A decision with the evidence behind it, as kept on ``AutoExecutor.last_decision``.

    Attributes:
        call: ``"map"`` or ``"submit"``.
        function: qualified name of the callable.
        decision: the cost model's answer.
        stats: what the sample measured (``None`` when nothing could be sampled).
        profile: the machine figures the model used.
        items_total: input length if known before the run.
        items_remaining: items the decision was about (after the sample).
        forced: ``True`` when ``lane=`` fixed the lane and the model was only consulted.
        sample_overhead_s: sampling wall time beyond the sampled items' own calls
            (``SampleStats.overhead_s``).
    """

    call: str
    function: str
    decision: Decision
    stats: SampleStats | None
    profile: MachineProfile | None
    items_total: int | None
    items_remaining: int | None
    forced: bool = False
    sample_overhead_s: float = 0.0

    @property
    def lane(self) -> DecisionLane:
        return self.decision.lane

    @property
    def lane_text(self) -> str:
        """Where the items run, in a few words: ``'serial'``, ``'2 workers x 49'``."""
        d = self.decision
        if d.lane == "serial":
            return "serial"
        return f"{d.workers} {_UNITS[d.lane]} x {d.chunksize}"

    def summary(self) -> str:
        """One line for logs and people."""
        d = self.decision
        where = "serial"
        if d.lane != "serial":
            where = f"{d.workers} {_UNITS[d.lane]} x chunks of {d.chunksize}"
        forced = " (forced)" if self.forced else ""
        return (
            f"{self.call}({self.function}): {where}{forced}, predicted {d.predicted_speedup:.2f}x"
            f" - {d.reason}"
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready) for reports and benchmarks."""
        return dataclasses.asdict(self)


def callable_name(fn: Callable[..., Any]) -> str:
    """How records and logs name a callable: its qualified name, else its type's name."""
    return getattr(fn, "__qualname__", None) or type(fn).__name__
