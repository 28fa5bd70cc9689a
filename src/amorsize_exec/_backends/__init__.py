"""Where the pool lane's work runs. A ``PoolSource`` hands out leases on a pool; ``ChunkedMap``
drives any lease. Later lanes (threads, Dask) plug in as further ``PoolSource`` kinds."""

from __future__ import annotations

from typing import Protocol

from ._chunks import ChunkedMap, wait_quietly
from ._loky import (
    PoolLease,
    PoolSpec,
    PrivatePool,
    SharedPool,
    WorkerPools,
    default_pools,
    reset_default_pools,
)


class PoolSource(Protocol):
    """Something that can lend a pool: shared warm loky pools, a private pool, later Dask."""

    def is_warm(self) -> bool:
        """True if a lease now would not pay the pool's start cost."""
        ...

    def lease(self) -> PoolLease:
        """A lease on the pool; the caller must ``release()`` it."""
        ...


__all__ = [
    "ChunkedMap",
    "PoolLease",
    "PoolSource",
    "PoolSpec",
    "PrivatePool",
    "SharedPool",
    "WorkerPools",
    "default_pools",
    "reset_default_pools",
    "wait_quietly",
]
