"""amorsize_exec: a drop-in ``ProcessPoolExecutor`` that is never slower than a plain loop.

``AutoExecutor`` runs the first items in-process, measures them, and asks a cost model whether
a pool would pay; the rest runs serially or on a warm loky pool, and ``last_decision`` says why.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._lazy import lazy_attributes

if TYPE_CHECKING:
    from ._backends import WorkerPools, default_pools, reset_default_pools
    from ._config import Settings
    from ._cost_cluster import ClusterCosts
    from ._cost_model import choose_chunksize, decide, predict_parallel_s, predict_serial_s
    from ._decision import Decision, DecisionRecord
    from ._errors import (
        AmorsizeError,
        AmorsizeWarning,
        BrokenProcessPool,
        ClusterLostError,
        UnpicklableResultError,
    )
    from ._executor import AutoExecutor
    from ._lanes._cluster_probe import ClusterProbe, default_cluster_probe
    from ._machine import (
        MachineProbe,
        MachineProfile,
        SystemProbe,
        default_probe,
        reset_default_probe,
    )
    from ._stats import SampleStats

    __version__: str

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Where each public name lives; it is loaded on first use (see ``_lazy``).
_SUBMODULE_OF = {
    "AmorsizeError": "._errors",
    "AmorsizeWarning": "._errors",
    "AutoExecutor": "._executor",
    "BrokenProcessPool": "._errors",
    "ClusterCosts": "._cost_cluster",
    "ClusterLostError": "._errors",
    "ClusterProbe": "._lanes._cluster_probe",
    "Decision": "._decision",
    "DecisionRecord": "._decision",
    "MachineProbe": "._machine",
    "MachineProfile": "._machine",
    "SampleStats": "._stats",
    "Settings": "._config",
    "SystemProbe": "._machine",
    "UnpicklableResultError": "._errors",
    "WorkerPools": "._backends",
    "__version__": "._version",
    "choose_chunksize": "._cost_model",
    "decide": "._cost_model",
    "default_cluster_probe": "._lanes._cluster_probe",
    "default_pools": "._backends",
    "default_probe": "._machine",
    "predict_parallel_s": "._cost_model",
    "predict_serial_s": "._cost_model",
    "reset_default_pools": "._backends",
    "reset_default_probe": "._machine",
}

_load, __dir__ = lazy_attributes(__name__, _SUBMODULE_OF, globals())

# Hidden from type checkers, which would otherwise accept any attribute of the package (a typo
# included) as the return type of ``__getattr__``; the imports above give them the real types.
if not TYPE_CHECKING:
    __getattr__ = _load


__all__ = [
    "AmorsizeError",
    "AmorsizeWarning",
    "AutoExecutor",
    "BrokenProcessPool",
    "ClusterCosts",
    "ClusterLostError",
    "ClusterProbe",
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
    "default_cluster_probe",
    "default_pools",
    "default_probe",
    "predict_parallel_s",
    "predict_serial_s",
    "reset_default_pools",
    "reset_default_probe",
]
