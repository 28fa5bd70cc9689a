"""Errors of our own. Pool failures are not wrapped: loky's and the stdlib's errors pass through
(``loky.process_executor.TerminatedWorkerError`` subclasses ``BrokenProcessPool``), so code written
for ``ProcessPoolExecutor`` keeps catching what it caught before."""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool

__all__ = [
    "AmorsizeError",
    "AmorsizeWarning",
    "BrokenProcessPool",
    "ClusterLostError",
    "UnpicklableResultError",
]


class AmorsizeError(Exception):
    """Base class of the errors this package raises itself."""


class AmorsizeWarning(UserWarning):
    """Something the user can act on, e.g. a setting that makes every run serial."""


class UnpicklableResultError(AmorsizeError):
    """A worker's result or exception could not be pickled back to the parent.

    The message names the original type and text, so the cause is not lost with the object.
    """


class ClusterLostError(AmorsizeError):
    """The Dask cluster can no longer run or return a task: its scheduler is gone, or the
    client was closed. Raised where the lost task's results were due, never a hang."""
