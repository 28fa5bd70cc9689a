"""amorsize_exec: a drop-in ``ProcessPoolExecutor`` that is never slower than a plain loop.

``AutoExecutor`` runs the first items in-process, measures them, and asks a cost model whether
a pool would pay; the rest runs serially or on a warm loky pool, and ``last_decision`` says why.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from ._backends import WorkerPools, default_pools, reset_default_pools
from ._config import Settings
from ._cost_model import choose_chunksize, decide, predict_parallel_s, predict_serial_s
from ._decision import Decision, DecisionRecord
from ._errors import AmorsizeError, AmorsizeWarning, BrokenProcessPool, UnpicklableResultError
from ._executor import AutoExecutor
from ._machine import MachineProbe, MachineProfile, SystemProbe, default_probe, reset_default_probe
from ._sampler import SampleStats

try:
    __version__ = version("amorsize-exec")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AmorsizeError",
    "AmorsizeWarning",
    "AutoExecutor",
    "BrokenProcessPool",
    "Decision",
    "DecisionRecord",
    "MachineProbe",
    "MachineProfile",
    "SampleStats",
    "Settings",
    "SystemProbe",
    "UnpicklableResultError",
    "WorkerPools",
    "__version__",
    "choose_chunksize",
    "decide",
    "default_pools",
    "default_probe",
    "predict_parallel_s",
    "predict_serial_s",
    "reset_default_pools",
    "reset_default_probe",
]
