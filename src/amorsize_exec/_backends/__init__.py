"""Where the pool lane's work runs. A ``PoolSource`` hands out leases on a pool; ``ChunkedMap``
drives any lease. Later lanes (threads, Dask) plug in as further ``PoolSource`` kinds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from ._chunks import ChunkedMap, ChunkObserver, draining, wait_quietly
    from ._loky import (
        PoolLease,
        PoolSpec,
        SharedPool,
        WorkerPools,
        default_pools,
        reset_default_pools,
    )
    from ._private import PrivatePool


class PoolSource(Protocol):
    """Something that can lend a pool: shared warm loky pools, a private pool, later Dask."""

    def is_warm(self) -> bool:
        """True if a lease now would not pay the pool's start cost."""
        ...

    def lease(self) -> PoolLease:
        """A lease on the pool; the caller must ``release()`` it."""
        ...


#: Where each name lives, imported on first use (PEP 562) so that a worker, which imports this
#: package only to reach ``_worker``, does not load the parent-side ``_loky`` and ``_chunks``.
_SUBMODULE_OF = {
    "ChunkedMap": "._chunks",
    "ChunkObserver": "._chunks",
    "draining": "._chunks",
    "wait_quietly": "._chunks",
    "PoolLease": "._loky",
    "PoolSpec": "._loky",
    "PrivatePool": "._private",
    "SharedPool": "._loky",
    "WorkerPools": "._loky",
    "default_pools": "._loky",
    "reset_default_pools": "._loky",
}


_load, __dir__ = lazy_attributes(__name__, _SUBMODULE_OF, globals())

# Hidden from type checkers, which would take any attribute (a typo included) for a
# ``__getattr__`` result; the imports above give them the real types.
if not TYPE_CHECKING:
    __getattr__ = _load


__all__ = [
    "ChunkObserver",
    "ChunkedMap",
    "PoolLease",
    "PoolSource",
    "PoolSpec",
    "PrivatePool",
    "SharedPool",
    "WorkerPools",
    "default_pools",
    "draining",
    "reset_default_pools",
    "wait_quietly",
]
