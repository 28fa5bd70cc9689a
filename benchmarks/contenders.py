"""The contenders: each runs ``fn`` over an input and returns the results as a list.

* ``serial``       ``list(map(fn, xs))``: the baseline every speedup is relative to.
* ``auto``         ``AutoExecutor().map(fn, xs)`` (settings from the environment, plus any
                   ``--auto-setting`` overrides).
* ``ppe_default``  ``ProcessPoolExecutor().map(fn, xs)``: default workers, ``chunksize=1``.
* ``ppe_tuned``    ``ProcessPoolExecutor(cores).map(fn, xs, chunksize=ceil(n / (4 * cores)))``.
* ``joblib``       ``Parallel(n_jobs=-1)(delayed(fn)(x) for x in xs)``: auto batching, loky.
* ``grid_w{W}_c{C}`` ``ProcessPoolExecutor(W).map(fn, xs, chunksize=C)``: the oracle's grid (the
                   oracle is the best measured of ``serial`` and every pool configuration).

Cold: ``run_cold`` builds the executor, maps, and shuts it down, as a script does (the caller
times it in a fresh interpreter). Warm: a ``WarmSession`` builds its executor once and is
called repeatedly.
"""

# Imports inside functions are deliberate: a child interpreter imports only what its one
# contender needs (joblib, numpy, amorsize_exec are not free), and pool workers stay light.
# ruff: noqa: PLC0415

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

#: A ``chunksize=1`` process pool over more items than this is skipped: at ~90 us of dispatch per
#: item (design §8) the 1,000,000-item case alone would take about 90 s.
PPE_CHUNK1_MAX_ITEMS = 100_000

MAIN_CONTENDERS = ("serial", "auto", "ppe_default", "ppe_tuned", "joblib")

#: A pool or joblib configuration whose first timing is more than HOPELESS_FACTOR times the best
#: first timing of the workload (serial included) and above HOPELESS_MIN_S is not repeated: its
#: one timing is reported (marked) and the suite saves minutes (e.g. joblib over 1,000,000
#: trivial items, chunksize=1 over 20,000 items, BLAS oversubscription in numpy workers).
#: ``serial`` and ``auto`` are always repeated.
HOPELESS_FACTOR = 5.0
HOPELESS_MIN_S = 1.0


def hopeless(first: dict[str, float]) -> dict[str, str]:
    """Configurations not worth repeating, given each one's first timing, with the reason."""
    if not first:
        return {}
    best = min(first.values())
    return {
        name: f"timed once: {t:.2f} s > {HOPELESS_FACTOR:g}x the best ({best:.3f} s)"
        for name, t in first.items()
        if name not in ("serial", "auto") and t > HOPELESS_FACTOR * best and t > HOPELESS_MIN_S
    }


@dataclass(frozen=True)
class Spec:
    """One contender configuration.

    Attributes:
        name: id in reports.
        kind: ``serial``, ``auto``, ``ppe`` or ``joblib``.
        workers: pool size (``None``: the library's default).
        chunksize: ``chunksize=`` passed to ``map`` (ppe only).
        skip: why it is not run (``None``: it is run).
    """

    name: str
    kind: str
    workers: int | None = None
    chunksize: int | None = None
    skip: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "workers": self.workers,
            "chunksize": self.chunksize,
            "skip": self.skip,
        }


def usable_cores() -> int:
    import loky

    return max(1, loky.cpu_count())


def worker_grid(cores: int) -> list[int]:
    """Worker counts the oracle tries: 2..cores (thinned out on big machines)."""
    if cores < 2:
        return []
    if cores <= 4:
        return list(range(2, cores + 1))
    return sorted({2, 4, cores // 2, cores})


def tuned_chunksize(n: int, workers: int) -> int:
    return max(1, math.ceil(n / (4 * workers)))


def chunk_grid(n: int, workers: int, quick: bool) -> list[int]:
    """Chunk sizes the oracle tries for ``workers``: 1, n/16w and n/4w (``quick`` is accepted
    for symmetry; the quick suite is smaller by its workloads, not its grid).

    n/w (one chunk per worker) was dropped from the grid to keep the full suite under 20
    minutes: over a full run it improved the oracle by at most 4% on workloads above 100 ms.
    """
    del quick
    return sorted({1, tuned_chunksize(n, workers), max(1, math.ceil(n / (16 * workers)))})


def specs_for(n: int, cores: int, quick: bool) -> list[Spec]:
    """Every configuration run for a workload of ``n`` items; grid points that coincide with
    ``ppe_default`` or ``ppe_tuned`` are not run twice (the oracle reuses those)."""
    ppe_default_workers = os.cpu_count() or 1
    chunk1_skip = (
        f"chunksize=1 over {n:,} items: ~90 us dispatch each would take ~{n * 90e-6:.0f} s"
        if n > PPE_CHUNK1_MAX_ITEMS
        else None
    )
    tuned = tuned_chunksize(n, cores)
    specs = [
        Spec("serial", "serial"),
        Spec("auto", "auto"),
        Spec("ppe_default", "ppe", None, 1, chunk1_skip),
        Spec("ppe_tuned", "ppe", cores, tuned),
        Spec("joblib", "joblib"),
    ]
    for w in worker_grid(cores):
        for c in chunk_grid(n, w, quick):
            if (w == ppe_default_workers and c == 1) or (w == cores and c == tuned):
                continue
            specs.append(Spec(f"grid_w{w}_c{c}", "ppe", w, c, chunk1_skip if c == 1 else None))
    return specs


def oracle_members(specs: list[Spec]) -> list[str]:
    """Configurations the oracle takes the best of: serial and every process-pool configuration."""
    return [s.name for s in specs if s.kind in ("serial", "ppe")]


def auto_settings(overrides: dict[str, str]) -> Any:
    """``Settings.from_env()`` with ``--auto-setting FIELD=VALUE`` overrides applied."""
    import dataclasses

    from amorsize_exec import Settings

    base = Settings.from_env()
    if not overrides:
        return base
    kinds = {f.name: type(f.default) for f in dataclasses.fields(Settings)}
    changes: dict[str, object] = {}
    for key, raw in overrides.items():
        if key not in kinds:
            raise SystemExit(f"unknown Settings field {key!r}; known: {sorted(kinds)}")
        changes[key] = kinds[key](raw)
    return base.replace(**changes)


def preimport(spec: Spec) -> None:
    """Import what the contender needs, before any timing (imports are not what is compared)."""
    if spec.kind == "auto":
        # The package loads its modules lazily: name the class, as a script does.
        from amorsize_exec import AutoExecutor  # noqa: F401
    elif spec.kind == "joblib":
        import joblib  # noqa: F401


def decision_of(executor: Any) -> dict[str, Any] | None:
    record = getattr(executor, "last_decision", None)
    return None if record is None else record.as_dict()


def run_cold(spec: Spec, fn: Any, xs: Iterable[Any], settings: Any = None) -> tuple[list[Any], Any]:
    """One complete run as a script would do it: build the pool, map, shut down.

    Returns the results and, for ``auto``, its decision record as a dict.
    """
    if spec.kind == "serial":
        return list(map(fn, xs)), None
    if spec.kind == "auto":
        from amorsize_exec import AutoExecutor

        with AutoExecutor(settings=settings) as ex:
            results = list(ex.map(fn, xs))
        return results, decision_of(ex)
    if spec.kind == "ppe":
        with ProcessPoolExecutor(max_workers=spec.workers) as pool:
            results = list(pool.map(fn, xs, chunksize=spec.chunksize or 1))
        return results, None
    if spec.kind == "joblib":
        from joblib import Parallel, delayed

        return list(Parallel(n_jobs=-1)(delayed(fn)(x) for x in xs)), None
    raise ValueError(spec.kind)


class WarmSession:
    """One contender with its executor built once; ``call`` maps again on the same executor.

    Process pools of the same size are shared between ``ppe`` configurations (``chunksize`` is
    an argument of ``map``, not of the pool), through ``ppe_pools``.
    """

    def __init__(self, spec: Spec, ppe_pools: dict[int | None, Any], settings: Any = None):
        self.spec = spec
        #: Sessions with the same key share one pool: one warm-up call warms them all.
        self.pool_key: object = ("ppe", spec.workers) if spec.kind == "ppe" else None
        self._executor: Any = None
        if spec.kind == "auto":
            from amorsize_exec import AutoExecutor

            self._executor = AutoExecutor(settings=settings)
        elif spec.kind == "ppe":
            if spec.workers not in ppe_pools:
                ppe_pools[spec.workers] = ProcessPoolExecutor(max_workers=spec.workers)
            self._executor = ppe_pools[spec.workers]
        elif spec.kind == "joblib":
            from joblib import Parallel

            self._executor = Parallel(n_jobs=-1)
            self._executor.__enter__()

    def call(self, fn: Any, xs: Iterable[Any]) -> list[Any]:
        kind = self.spec.kind
        if kind == "serial":
            return list(map(fn, xs))
        if kind == "auto":
            return list(self._executor.map(fn, xs))
        if kind == "ppe":
            return list(self._executor.map(fn, xs, chunksize=self.spec.chunksize or 1))
        from joblib import delayed

        return list(self._executor(delayed(fn)(x) for x in xs))

    def decision(self) -> dict[str, Any] | None:
        return decision_of(self._executor) if self.spec.kind == "auto" else None

    def close(self) -> None:
        if self.spec.kind == "auto":
            self._executor.shutdown(wait=True)
        elif self.spec.kind == "joblib":
            self._executor.__exit__(None, None, None)
