"""Settings: every tunable constant in one frozen record, and the one place that reads os.environ.

Each constant says where its value comes from: a benchmark figure (`benchmarks/`, 2 cores),
a measurement named with it, or the product card.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Lane = Literal["auto", "serial", "thread", "process", "cluster"]
LANES: tuple[Lane, ...] = ("auto", "serial", "thread", "process", "cluster")

#: Set in every worker process this package starts, so that nested use runs serially.
WORKER_ENV_VAR = "AMORSIZE_EXEC_WORKER"
_ENV_PREFIX = "AMORSIZE_EXEC_"


@dataclass(frozen=True)
class Settings:
    """Tunable constants of sampling, the cost model and dispatch."""

    # Figures cited: "full run" is `python -m benchmarks.run` on commit 87174d5 (2 cores; its
    # report is in git history under benchmarks/results/), "quick run" is `--quick` on 4c6d21a.

    # --- the card's rule -------------------------------------------------------------------
    #: A pool is used only if 2 workers are predicted to reach this speedup (the product card).
    min_speedup: float = 1.2

    # --- sampling (design §3) -------------------------------------------------------------
    #: Items the sampler runs at least, so that one odd first call does not decide alone.
    #: With 3, warm predictions were within 25% on 8 of 9 pool decisions (full run).
    sample_min_items: int = 3
    #: Items that suffice when every one of them mostly waited (CPU under
    #: ``waiting_cpu_fraction`` of wall): two agreeing items, not one odd first call, decide
    #: for the thread lane, which has no start to amortise. With 3, 200 x 10 ms of ``sleep``
    #: took 1.37x ``ThreadPoolExecutor(32)`` (104 vs 76 ms): the sample was 30 of them.
    #: One suffices when the function's previous map (or an earlier run) saw its items wait:
    #: that map is the second item that agrees.
    sample_min_items_waiting: int = 2
    #: An item whose CPU time is under this fraction of its wall time mostly waits.
    waiting_cpu_fraction: float = 0.2
    #: Items whose CPU time exceeds their wall time this many times ran on several cores (BLAS
    #: threads): one more is timed on one thread (``Sampler``; a 200x200 SVD: CPU / wall 1.97
    #: on 2 OpenBLAS threads, 1.0 on one).
    multicore_cpu_ratio: float = 1.3
    #: Measured seconds of work the sampler wants before it trusts the mean: sample overheads
    #: were 54-562 us (full run), under 1% of every workload the pool won.
    sample_min_s: float = 0.005
    #: Hard cap on sampling time: one 200 ms item already ends the sample (ms200_x8: 1 item).
    sample_budget_s: float = 0.05
    #: Items whose pickled size and time are measured, as one batch (pickling every item would
    #: cost more than a trivial function; one batch of 16 spreads the pickler's ~30 us set-up
    #: cost as a chunk does).
    sample_serialized_items: int = 16
    #: Below this mean per-item time the sampler times whole batches, not single items, so that
    #: the clock calls do not cost more than the function (x*2 takes ~50 ns, a clock ~60 ns).
    batch_timing_below_s: float = 20e-6

    # --- chunking (design §4) ----------------------------------------------------------------
    #: Wanted wall time of one chunk: long enough to hide the 0.5-1.4 ms round trip (calibrated
    #: in the benchmarks), short enough that the last chunk finishing alone costs little. At
    #: 50 ms, warm regret was 1.01-1.08 on ms1_x2000, tiny_x20k and hetero_500 (full run), whose
    #: best grid chunks held 60-125 ms of work.
    target_chunk_s: float = 0.05
    #: At least this many chunks per worker, scaled up by the sample's spread, for balance
    #: (hetero_500, cv 0.57: warm regret 1.01 in the full run, 1.07 in the quick run).
    chunks_per_worker: int = 4
    #: Chunks in flight per worker: 2 keeps a worker busy while its next chunk is pickled.
    chunks_in_flight_per_worker: int = 2

    # --- machine priors, used until measured ---------------------------------------------------
    #: Start of a cold 2-worker loky pool until its first answer, as a map call pays it:
    #: 242-265 ms from the first task (medians, quiet 2 cores, lazy package imports) plus
    #: ~40 ms of launching in the parent; a cold map of 2,000 x 1 ms waited 302-346 ms. With
    #: 0.3 s, cold predictions were within 25% (quick run: -11% and +3%; with 0.2 s they were
    #: 17-44% too high in the full run). Calibration measures the warm costs, never this one.
    prior_pool_start_s: float = 0.3
    #: Start of a cold 2-worker pool whose workers are forked (``fork_single_threaded``), until
    #: its first answer: 12-16 ms from the first task (5 fresh interpreters, quiet 2 cores,
    #: against 220-268 ms for loky's fork+exec), plus the parent's launch of the pool.
    prior_fork_start_s: float = 0.02
    #: How long a BLAS thread pool's idle threads spin after the last call, each taking a core
    #: (OpenBLAS's default THREAD_TIMEOUT, 2^28 cycles; OpenMP's blocktime is 0.2 s): after a
    #: 200x200 ``solve`` or SVD on 2 OpenBLAS threads, the process burned one core for 100-105
    #: ms (4 runs). A pool started after such a sample shares the cores with that spin.
    prior_blas_spin_s: float = 0.1
    #: Extra start cost per worker beyond two (parent-side launch of one more interpreter); a
    #: guess: the 2-core benchmark machine never starts more than two.
    worker_launch_s: float = 0.005
    #: Warm round trip of one chunk through the pool: calibrated values were 0.51-1.36 ms in the
    #: benchmark runs (median about 0.75 ms).
    prior_chunk_roundtrip_s: float = 0.00075
    #: Pipe transfer cost per byte, both directions, before calibration (~1 GB/s).
    prior_ipc_s_per_byte: float = 1e-9
    #: Part of a core the parent keeps for its in-process items while a cold pool starts, when
    #: a core is left to it (0.37-0.63 measured, median 0.47, with none left on 2 cores).
    parent_share_during_start: float = 0.5
    #: While a pool starts, the in-process run checks this often whether it has answered.
    start_poll_s: float = 0.005

    # --- warm pools ---------------------------------------------------------------------------
    #: A callable whose items took this long in its previous map gets its next items sent to a
    #: warm pool (one per core left free) while its first is sampled: ms200_x8 ran 1.52x the
    #: best pool warm (full run) while workers idled through a 200 ms sample. If the items have
    #: turned cheap, the cost is one round trip (0.5-1.4 ms), under 15% of one such item.
    send_ahead_above_s: float = 0.01
    #: Idle workers exit after this many seconds; after that the pool counts as cold again.
    pool_idle_timeout_s: float = 300.0
    #: 1: a new shared pool forks its workers when this process runs a single thread (Linux),
    #: as the stdlib's pool does there; 0: always loky's fork+exec start. With one thread no
    #: lock can be held mid-update by another thread, so forking is safe; it cut a cold pool's
    #: start from ~0.24 s to ~15 ms (see ``prior_fork_start_s``).
    fork_single_threaded: int = 1

    #: 1: remember costly functions' item times on disk (``_profile_store``), so that a later
    #: run of the script starts its pool while the first item is sampled; 0: never read or
    #: write the file.
    remember_profiles: int = 1

    # --- adaptation of serial runs (design §4, rent-or-buy) ----------------------------------
    #: A serial run re-checks its decision each time its measured work has doubled, starting here.
    recheck_first_s: float = 0.02
    #: Largest batch of items a serial run hands to the built-in map between re-checks.
    serial_batch_max_items: int = 65536

    # --- the thread lane (items that mostly wait) ------------------------------------------------
    #: Most threads a map's thread lane uses (the stdlib ``ThreadPoolExecutor``'s default cap).
    thread_lane_max_threads: int = 32
    #: Start (and stop) of one of a map's threads: 32 threads started, each given a 1 ms
    #: ``sleep``, and stopped took 10.9 ms (median of 20), ~0.3 ms a thread.
    thread_start_s: float = 0.0003
    #: The consumer's cost of one chunk on a thread (submit, hand-back, wake-up): 14-17 us a
    #: task through ``ThreadPoolExecutor.submit`` with 2-32 threads; ChunkedMap adds its own.
    thread_chunk_overhead_s: float = 0.00003
    #: Wanted work per chunk on a thread: long against that overhead (1.5% of 2 ms), short
    #: enough that a 10 ms item travels alone and the threads stay balanced.
    thread_target_chunk_s: float = 0.002
    #: Work a serial run of items that used several cores (BLAS) tries on one thread per core
    #: (``_thread_trial``): long against thread starts and wake-ups (~0.1 ms), short against
    #: the run (0: never try).
    thread_trial_s: float = 0.02
    #: The trial is at most this part of the items left, else the run stays serial untried.
    thread_trial_max_part: float = 0.25

    # --- the cluster lane (Dask distributed, ``client=``) -----------------------------------
    #: A task on the cluster holds at least this many times its measured per-task cost of work
    #: (loopback cluster: 2-3 ms a task, so chunks of ~50 ms or more: ~5% dispatch).
    cluster_chunk_cost_ratio: float = 20.0
    #: The cluster is taken only if predicted this many times faster than the best local lane:
    #: its figures are less sure (a scheduler and a network shared with others), and a local
    #: pool of the same size ties it in the model (2 x 1-thread LocalCluster, 2 cores).
    cluster_min_gain: float = 1.1
    #: Optimistic round trip through a scheduler, used only to skip measuring a cluster that
    #: could not win even so (measured: 9-18 ms on a loopback ``LocalCluster``, 2 cores).
    prior_cluster_roundtrip_s: float = 0.002
    #: Optimistic cost per byte moved to or from a cluster worker, for the same purpose
    #: (~1 GB/s; measured: ~10 ns a byte on loopback).
    prior_cluster_s_per_byte: float = 1e-9

    # --- submit() -------------------------------------------------------------------------------
    #: How long, beyond the pool's start if it is cold, the first call of a new callable (timed
    #: in a worker) keeps further calls of it waiting for its time; then they go to the pool
    #: too (the call is then clearly not cheap).
    submit_probe_wait_s: float = 0.005
    #: Most threads for in-process ``submit`` calls (the stdlib ``ThreadPoolExecutor``'s default
    #: cap). One serves a burst of cheap calls; another starts only when every thread is stuck.
    submit_threads: int = 32
    #: A thread on one call this long counts as stuck: the calls queued behind it get a new
    #: thread. Calls run here were measured under ~1.5 ms (``submit_min_cost_ratio`` round
    #: trips), but a thread that waits for the GIL looks busy too (switch interval 5 ms): at
    #: 2 ms, bursts of trivial submits started up to 5 threads and ran 1.2-2.3x slower. 20 ms
    #: is four switch intervals, and no user notices it behind a slow call.
    submit_stall_s: float = 0.02
    #: A task goes to the pool if it costs at least this many times the pool's per-task
    #: overhead (prior round trip 0.75 ms: 1.5 ms). At 10, calls of 5 ms stayed in-process,
    #: where threads share one GIL: 8 threads x 100 submits of 5 ms CPU ran 1.7-2.0x the
    #: stdlib pool's time (benchmarks/services.py, cold); workers run them on every core.
    submit_min_cost_ratio: float = 2.0

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (validated like the constructor)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"Settings.{field.name} must be a number >= 0, got {value!r}")
        if self.min_speedup < 1.0:
            raise ValueError("Settings.min_speedup must be >= 1.0")
        if self.cluster_min_gain < 1.0:
            raise ValueError("Settings.cluster_min_gain must be >= 1.0")
        if self.waiting_cpu_fraction > 1.0:
            raise ValueError("Settings.waiting_cpu_fraction must be <= 1.0")
        if self.parent_share_during_start > 1.0:
            raise ValueError("Settings.parent_share_during_start must be <= 1.0")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Defaults overridden by ``AMORSIZE_EXEC_<FIELD>`` variables (e.g. ``..._MIN_SPEEDUP``)."""
        env = os.environ if environ is None else environ
        # Mostly none is set: one pass over the names (~35 us on a first call in a process)
        # spares a failed os.environ lookup per field (~150 us; every executor calls this).
        if not any(name.startswith(_ENV_PREFIX) for name in env):
            return cls()
        changes: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(_ENV_PREFIX + field.name.upper())
            if raw is not None:
                kind = int if isinstance(field.default, int) else float
                try:
                    changes[field.name] = kind(raw)
                except ValueError:
                    raise ValueError(
                        f"{_ENV_PREFIX}{field.name.upper()}={raw!r} is not a valid {kind.__name__}"
                    ) from None
        return cls(**changes)  # type: ignore[arg-type]


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where remembered profiles live: ``AMORSIZE_EXEC_CACHE_DIR``, else the user's cache
    directory (``$XDG_CACHE_HOME``, else ``~/.cache``) / ``amorsize_exec``."""
    env = os.environ if environ is None else environ
    chosen = env.get(_ENV_PREFIX + "CACHE_DIR")
    if chosen:
        return Path(chosen)
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "amorsize_exec"


def in_worker_process(environ: Mapping[str, str] | None = None) -> bool:
    """True inside a worker this package started: nested pools would fork-bomb, so run serially."""
    env = os.environ if environ is None else environ
    return env.get(WORKER_ENV_VAR) == "1"
