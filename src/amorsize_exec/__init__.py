"""amorsize_exec: a drop-in ``ProcessPoolExecutor`` that is never slower than a plain loop.

``AutoExecutor`` runs the first items in-process, measures them, and asks a cost model whether
a pool would pay; the rest runs serially or on a warm loky pool, and ``last_decision`` says why.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._backends import WorkerPools, default_pools, reset_default_pools
    from ._config import Settings
    from ._cost_model import choose_chunksize, decide, predict_parallel_s, predict_serial_s
    from ._decision import Decision, DecisionRecord
    from ._errors import AmorsizeError, AmorsizeWarning, BrokenProcessPool, UnpicklableResultError
    from ._executor import AutoExecutor
    from ._machine import (
        MachineProbe,
        MachineProfile,
        SystemProbe,
        default_probe,
        reset_default_probe,
    )
    from ._sampler import SampleStats

    __version__: str

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Where each public name lives. Names load on first use (PEP 562): every pool worker imports
#: this package on its way to ``_backends._worker``, and the executor, cost model, machine probe
#: and ``importlib.metadata`` made a cold pool's first answer ~100 ms slower (2 cores).
_SUBMODULE_OF = {
    "AmorsizeError": "._errors",
    "AmorsizeWarning": "._errors",
    "AutoExecutor": "._executor",
    "BrokenProcessPool": "._errors",
    "Decision": "._decision",
    "DecisionRecord": "._decision",
    "MachineProbe": "._machine",
    "MachineProfile": "._machine",
    "SampleStats": "._sampler",
    "Settings": "._config",
    "SystemProbe": "._machine",
    "UnpicklableResultError": "._errors",
    "WorkerPools": "._backends",
    "choose_chunksize": "._cost_model",
    "decide": "._cost_model",
    "default_pools": "._backends",
    "default_probe": "._machine",
    "predict_parallel_s": "._cost_model",
    "predict_serial_s": "._cost_model",
    "reset_default_pools": "._backends",
    "reset_default_probe": "._machine",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 - slow

    try:
        return version("amorsize-exec")
    except PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def _load(name: str) -> object:
    """The public attribute ``name``, imported now and cached as a module global."""
    if name == "__version__":
        value: object = _version()
    elif name in _SUBMODULE_OF:
        value = getattr(importlib.import_module(_SUBMODULE_OF[name], __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


# Hidden from type checkers, which would otherwise accept any attribute of the package (a typo
# included) as the return type of ``__getattr__``; the imports above give them the real types.
if not TYPE_CHECKING:
    __getattr__ = _load


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
