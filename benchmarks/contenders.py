"""The contenders: each runs ``fn`` over an input and returns the results as a list.

* ``serial``       ``list(map(fn, xs))``: the baseline every speedup is relative to.
* ``auto``         ``AutoExecutor().map(fn, xs)`` (settings from the environment, plus any
                   ``--auto-setting`` overrides).
* ``ppe_default``  ``ProcessPoolExecutor().map(fn, xs)``: default workers, ``chunksize=1``.
* ``ppe_tuned``    ``ProcessPoolExecutor(cores).map(fn, xs, chunksize=ceil(n / (4 * cores)))``.
* ``joblib``       ``Parallel(n_jobs=-1)(delayed(fn)(x) for x in xs)``: auto batching, loky.
* ``grid_w{W}_c{C}`` ``ProcessPoolExecutor(W).map(fn, xs, chunksize=C)``: the oracle's grid (the
                   oracle is the best measured of ``serial`` and every pool configuration).
* ``tpe_w{K}``     ``ThreadPoolExecutor(K).map(fn, xs)`` for K in ``TPE_WORKERS`` (no
                   ``chunksize``: ``ThreadPoolExecutor.map`` ignores it); oracle members too.

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
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

#: A ``chunksize=1`` process pool over more items than this is skipped: at ~90 us of dispatch per
#: item (design §8) the 1,000,000-item case alone would take about 90 s.
PPE_CHUNK1_MAX_ITEMS = 100_000

MAIN_CONTENDERS = ("serial", "auto", "ppe_default", "ppe_tuned", "joblib")

#: Thread-pool sizes tried (kind ``tpe``). 32 is the stdlib's own cap: ``ThreadPoolExecutor()``
#: defaults to ``min(32, os.cpu_count() + 4)`` workers (6 on 2 cores).
TPE_WORKERS = (2, 4, 8, 16, 32)

#: Over more items than this only the smallest thread pool is run: ``ThreadPoolExecutor.map``
#: makes a future per item up front (~25 us each here, whatever the pool size), so one timing
#: over 1,000,000 trivial items takes ~25 s, and each further size would cost as much again.
TPE_MAX_ITEMS = 100_000

#: Kinds the oracle ("the best hand-tuned pool") takes the best of.
ORACLE_KINDS = ("serial", "ppe", "tpe")

#: A pool or joblib configuration whose first timing is more than HOPELESS_FACTOR times the best
#: first timing of the workload (serial included) and above HOPELESS_MIN_S is not repeated: its
#: one timing is reported (marked) and the suite saves minutes (e.g. joblib over 1,000,000
#: trivial items, chunksize=1 over 20,000 items, BLAS oversubscription in numpy workers).
#: ``serial`` and ``auto`` are always repeated.
HOPELESS_FACTOR = 5.0
HOPELESS_MIN_S = 1.0

#: Thread pools (kind ``tpe``) are cut sooner: a thread-pool configuration whose first timing is
#: more than THREAD_HOPELESS_FACTOR times the workload's best first timing and above
#: THREAD_HOPELESS_MIN_S is not repeated. On CPU-bound pure-Python work the GIL holds every
#: size to about the loop's time (2x the process pool's on 2 cores), so the five sizes would
#: cost five serial runs per repeat for figures that cannot be the oracle; where threads do help
#: (waits, GIL-free LAPACK) the sizes worth having are within a few tens of percent of the best.
THREAD_HOPELESS_FACTOR = 1.3
THREAD_HOPELESS_MIN_S = 0.3


def hopeless(first: dict[str, float], kinds: dict[str, str] | None = None) -> dict[str, str]:
    """Configurations not worth repeating, given each one's first timing, with the reason.

    ``kinds`` maps names to their ``Spec.kind``; thread pools (``tpe``) are judged by the
    tighter THREAD_HOPELESS_* thresholds.
    """
    if not first:
        return {}
    kinds = kinds or {}
    best = min(first.values())
    out = {}
    for name, t in first.items():
        if name in ("serial", "auto"):
            continue
        if t > HOPELESS_FACTOR * best and t > HOPELESS_MIN_S:
            out[name] = f"timed once: {t:.2f} s > {HOPELESS_FACTOR:g}x the best ({best:.3f} s)"
        elif (
            kinds.get(name) == "tpe"
            and t > THREAD_HOPELESS_FACTOR * best
            and t > THREAD_HOPELESS_MIN_S
        ):
            out[name] = (
                f"thread pool timed once: {t:.2f} s > {THREAD_HOPELESS_FACTOR:g}x the best "
                f"({best:.3f} s)"
            )
    return out


@dataclass(frozen=True)
class Spec:
    """One contender configuration.

    Attributes:
        name: id in reports.
        kind: ``serial``, ``auto``, ``ppe`` (process pool), ``tpe`` (thread pool) or ``joblib``.
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
    for k in TPE_WORKERS:
        skip = None
        if n > TPE_MAX_ITEMS and k != TPE_WORKERS[0]:
            skip = (
                f"thread pool over {n:,} items: ~25 us of futures per item, whatever the size "
                f"(~{n * 25e-6:.0f} s); tpe_w{TPE_WORKERS[0]} stands for all sizes"
            )
        specs.append(Spec(f"tpe_w{k}", "tpe", k, None, skip))
    return specs


def oracle_members(specs: list[Spec]) -> list[str]:
    """Configurations the oracle takes the best of: serial and every process- and thread-pool
    configuration."""
    return [s.name for s in specs if s.kind in ORACLE_KINDS]


def oracle_choice(medians: dict[str, float | None], kinds: dict[str, str]) -> str | None:
    """The oracle's configuration: the name with the lowest median among the oracle's kinds
    (``ORACLE_KINDS``: serial, process pools, thread pools); ``None`` if none has a timing.

    The report picks the same one from the same medians; the paired rounds re-time it.
    """
    pool = {n: t for n, t in medians.items() if t is not None and kinds.get(n) in ORACLE_KINDS}
    return min(pool, key=pool.__getitem__) if pool else None


def paired_order(names: list[str], rnd: int) -> list[str]:
    """Round ``rnd`` of the paired rounds: ``names`` rotated by ``rnd`` (A, B, C, then B, C, A,
    then C, A, B, ...), so that each contender takes each place in turn."""
    k = rnd % max(1, len(names))
    return names[k:] + names[:k]


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
    if spec.kind == "tpe":
        with ThreadPoolExecutor(max_workers=spec.workers) as threads:
            results = list(threads.map(fn, xs))  # no chunksize: TPE.map ignores it
        return results, None
    if spec.kind == "joblib":
        from joblib import Parallel, delayed

        return list(Parallel(n_jobs=-1)(delayed(fn)(x) for x in xs)), None
    raise ValueError(spec.kind)


def _start_threads(pool: ThreadPoolExecutor, count: int) -> None:
    """Make ``pool`` start all ``count`` threads now (it starts them lazily, one per ``submit``
    while none is idle): ``count`` tasks that wait for each other keep every thread busy."""
    import threading

    barrier = threading.Barrier(count)
    for f in [pool.submit(barrier.wait, 10.0) for _ in range(count)]:
        f.result()


class WarmSession:
    """One contender with its executor built once; ``call`` maps again on the same executor.

    Process pools of the same size are shared between ``ppe`` configurations (``chunksize`` is
    an argument of ``map``, not of the pool), through ``pools`` (keyed by ``pool_key``; the
    caller shuts them down). A thread pool starts all its threads when the session is built,
    so it needs no warm-up call (``needs_warmup``): a full warm-up map per size would cost five
    serial runs on a CPU-bound workload.
    """

    def __init__(self, spec: Spec, pools: dict[object, Any], settings: Any = None):
        self.spec = spec
        #: Sessions with the same key share one pool: one warm-up call warms them all.
        self.pool_key: object = (spec.kind, spec.workers) if spec.kind in ("ppe", "tpe") else None
        #: Whether round 0 (untimed) must call it: not for the loop or a pre-started thread pool.
        self.needs_warmup = spec.kind not in ("serial", "tpe")
        self._executor: Any = None
        if spec.kind == "auto":
            from amorsize_exec import AutoExecutor

            self._executor = AutoExecutor(settings=settings)
        elif spec.kind == "ppe":
            if self.pool_key not in pools:
                pools[self.pool_key] = ProcessPoolExecutor(max_workers=spec.workers)
            self._executor = pools[self.pool_key]
        elif spec.kind == "tpe":
            if self.pool_key not in pools:
                threads = ThreadPoolExecutor(max_workers=spec.workers)
                _start_threads(threads, spec.workers or 1)
                pools[self.pool_key] = threads
            self._executor = pools[self.pool_key]
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
        if kind == "tpe":
            return list(self._executor.map(fn, xs))
        from joblib import delayed

        return list(self._executor(delayed(fn)(x) for x in xs))

    def decision(self) -> dict[str, Any] | None:
        return decision_of(self._executor) if self.spec.kind == "auto" else None

    def close(self) -> None:
        if self.spec.kind == "auto":
            self._executor.shutdown(wait=True)
        elif self.spec.kind == "joblib":
            self._executor.__exit__(None, None, None)
