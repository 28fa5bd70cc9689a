"""The cost model (design §4): pure arithmetic, no clocks, no processes, no I/O.

Predicted parallel time of ``n`` items on ``w`` workers with chunks of ``c`` items
(``k = ceil(n / c)`` chunks)::

    T_par(w, c) = T_spawn(w)                          # pool start, 0 when warm
                + n * (s + b * ipc)                   # the parent pickles and pipes every item
                + (n * (t + s) + k * (rt + f)) / w    # the workers' share
                + c * t * (1 + cv) / 2                # tail: the last chunk finishing alone
                + T_spin * e / w                      # the sample's BLAS threads still spinning
                - m * min(T_pool / n, t / share)      # items the parent runs while workers start
    m           = min(n, T_spawn(w) * share / t)
    T_serial    = n * t

with ``t`` compute per item, ``s`` serialization per item, ``b`` pickled bytes per item,
``rt`` the chunk round trip, ``f`` the cost of pickling the function (sent with each chunk),
``T_pool`` the four middle terms, ``e`` the cores the sample's idle BLAS threads take from
the workers (``parent_spin_s``), and ``share`` the part of a core the parent keeps while
workers start (it goes on running items in-process until the pool answers). The card's rule:
a pool only if 2 workers reach ``Settings.min_speedup``.

The thread lane's arithmetic is ``_cost_threads``'s; its plan is taken only if it reaches
``min_speedup`` too, and beats the best pool.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from ._cost_threads import expect_threads_s, plan_threads
from ._decision import Decision
from ._stats import TINY_S

if TYPE_CHECKING:
    from ._config import Settings
    from ._machine import MachineProfile
    from ._stats import SampleStats


def choose_chunksize(
    compute_s: float, n: int | None, workers: int, cv: float, settings: Settings
) -> int:
    """Items per chunk: about ``target_chunk_s`` of work, but enough chunks to keep balance.

    At least ``chunks_per_worker * (1 + cv)`` chunks per worker, so uneven items still spread
    out; always ``1 <= c <= ceil(n / workers)``. With ``n=None`` (the input has no length)
    only the time target counts: a horizon guessed from the items done so far would cut a
    long generator into tiny chunks (chunks of 4-7 where 85 was right, benchmarks/generator).
    """
    by_time = max(1, round(settings.target_chunk_s / max(compute_s, TINY_S)))
    if n is None:
        return by_time
    if n <= 0:
        return 1
    chunks_wanted = max(1.0, settings.chunks_per_worker * (1.0 + cv)) * workers
    by_balance = math.ceil(n / chunks_wanted)
    return max(1, min(by_time, by_balance, math.ceil(n / workers)))


def predict_serial_s(stats: SampleStats, n: int) -> float:
    """Predicted time of ``n`` items in a plain loop."""
    return n * stats.compute_s


def predict_parallel_s(
    stats: SampleStats,
    profile: MachineProfile,
    n: int,
    workers: int,
    chunksize: int,
    *,
    spawn_s: float,
    parent_share: float = 0.0,
) -> float:
    """Predicted wall time of ``n`` items on ``workers`` processes (formula in the module doc).

    ``parent_share`` > 0: the parent runs items in-process while the pool starts; each one
    saves the pool its average per-item time (counted at most ``t / share``, the parent's own
    pace, so that dearer pools or starts never look faster).
    """
    pool_s = _pool_s(stats, profile, n, workers, chunksize)
    if spawn_s > 0 and parent_share > 0 and stats.compute_s > 0:
        in_parent = min(float(n), spawn_s * parent_share / stats.compute_s)
        pool_s -= in_parent * min(pool_s / n, stats.compute_s / parent_share)
    return spawn_s + pool_s


def _pool_s(
    stats: SampleStats, profile: MachineProfile, n: int, workers: int, chunksize: int
) -> float:
    """Time of ``n`` items on a running pool: parent's pickling, workers' share, the tail."""
    chunks = math.ceil(n / chunksize)
    per_item_bytes = stats.arg_bytes + stats.result_bytes
    parent_s = n * (stats.serialize_s + per_item_bytes * profile.ipc_s_per_byte)
    per_chunk_s = profile.chunk_roundtrip_s + stats.callable_serialize_s
    item_s = worker_item_s(stats, profile, workers)
    workers_s = (n * (item_s + stats.serialize_s) + chunks * per_chunk_s) / workers
    tail_s = chunksize * item_s * (1.0 + stats.cv) / 2.0
    return parent_s + workers_s + tail_s + parent_spin_s(stats, profile, workers)


def parent_spin_s(stats: SampleStats, profile: MachineProfile, workers: int) -> float:
    """What the sample's idle BLAS threads cost a pool: they spin on after its last item
    (``MachineProfile.blas_spin_s``), each on a core that the workers then share.

    Without it a 200x200 ``solve`` x 200 (2 OpenBLAS threads, 2 cores) predicted 1.37x and ran
    0.9x its loop, cold: the workers' first ~100 ms ran at half speed. Only items that ran on
    several cores here count (``single_thread_s`` was timed), and only spinning threads beyond
    the cores no worker uses.
    """
    if stats.single_thread_s <= 0 or stats.compute_s <= 0 or profile.blas_spin_s <= 0:
        return 0.0
    spinning = min(stats.cpu_s / stats.compute_s, float(profile.usable_cpus)) - 1.0
    taken = max(0.0, spinning - max(0, profile.usable_cpus - workers))
    return profile.blas_spin_s * taken / workers


def _thread_decision(
    stats: SampleStats,
    plan: tuple[float, int, int],
    n: int,
    serial_s: float,
    speedup_at_two: float,
    *,
    settings: Settings,
    why: str = "",
) -> Decision:
    _, threads, size = plan
    time_s = expect_threads_s(stats, settings, n, threads, size)
    wait = 1.0 - stats.busy_s / stats.compute_s if stats.compute_s else 0.0
    return Decision(
        lane="thread",
        workers=threads,
        chunksize=size,
        predicted_speedup=serial_s / time_s,
        speedup_at_two=speedup_at_two,
        reason=f"{why}items wait {wait:.0%} of their {format_seconds(stats.compute_s)}: "
        f"{threads} threads overlap the waits (no pickling, no start); {n} items x "
        f"{format_seconds(stats.compute_s)} = {format_seconds(serial_s)} of work",
    )


def parent_share_while_starting(workers: int, profile: MachineProfile, settings: Settings) -> float:
    """Part of a core the parent keeps for its own items while ``workers`` processes start.

    Only a core no worker will use counts: with as many workers as cores, the booting
    interpreters took the parent's core too (2 cores: the parent ran items at 0.37-0.49 of its
    speed and the first answer came 130 ms later, 394 vs 265 ms, medians of 6), which cost
    more than the items it ran saved; the parent then waits for the start instead.
    """
    return settings.parent_share_during_start if workers < profile.usable_cpus else 0.0


def worker_item_s(stats: SampleStats, profile: MachineProfile, workers: int) -> float:
    """An item's time in a worker: longer than sampled if it ran on several cores in-process.

    An item that kept ``k`` cores busy (``cpu_s / compute_s``, e.g. BLAS threads) gets only
    ``usable_cpus / workers`` of them in a worker (pools cap BLAS threads to that share). If
    one item was timed on one thread (``single_thread_s``), that is a one-core worker's time,
    and shares between one core and ``k`` are interpolated; else the CPU time is taken as
    all useful (spinning BLAS threads make that pessimistic: the pool then looks dearer).
    """
    if stats.compute_s <= 0:
        return stats.compute_s
    cores = min(max(1.0, stats.cpu_s / stats.compute_s), float(profile.usable_cpus))
    share = max(1.0, profile.usable_cpus / workers)
    if share >= cores:
        return stats.compute_s
    if stats.single_thread_s > 0:
        return stats.single_thread_s + (stats.compute_s - stats.single_thread_s) * (
            (share - 1.0) / (cores - 1.0)
        )
    return stats.compute_s * cores / share


def horizon_for_unknown_length(items_done: int) -> int:
    """Items assumed to remain when the input has no length: as many as done so far.

    Deciding on this horizon is the rent-or-buy rule: a serial run switches to a pool once
    the work it has done would have paid for starting one, which bounds the regret by about 2x
    whatever the true length turns out to be.
    """
    return max(1, items_done)


def horizon_once_start_is_free(stats: SampleStats, workers: int, settings: Settings) -> int:
    """Items an input without a length is assumed to go on for once its pool costs nothing to
    start (warm, or its start paid in-process): enough for a few chunks per worker, so that
    only the per-item economics decide.

    On the items done so far, a chunk of ``target_chunk_s`` held them all: a generator of
    1 ms items stayed serial beside a warm pool until ~90 items (the demo). If the input ends
    sooner, a warm pool has cost one round trip and the pickling of the items it ran.
    """
    chunk = choose_chunksize(stats.compute_s, None, workers, stats.cv, settings)
    return workers * settings.chunks_per_worker * chunk


def decide(
    stats: SampleStats | None,
    profile: MachineProfile,
    settings: Settings,
    n_remaining: int,
    *,
    max_workers: int | None = None,
    warm_workers: int = 0,
    chunksize: int | None = None,
    length_known: bool = True,
    start_paid: bool = False,
    isolated: bool = False,
    thread_cap: int = 0,
) -> Decision:
    """Serial, threads or processes, with how many and what chunksize, for ``n_remaining`` items.

    Args:
        stats: what the sample measured; ``None`` if nothing could be measured.
        profile: machine facts and pool costs.
        settings: thresholds and targets.
        n_remaining: items left to run (for an input without a length: the horizon assumed,
            raised to a few chunks per worker once the start is free; see
            ``horizon_once_start_is_free``).
        max_workers: the user's cap on workers.
        warm_workers: size of a pool that is already running (0 if none): no start cost for it.
        chunksize: the user's chunk size, respected if given.
        length_known: ``False`` if ``n_remaining`` is a guess; chunks are then sized by time.
        start_paid: the run has already spent a pool start's worth of time in-process, so
            buying the pool no longer depends on the start (rent-or-buy, design §4).
        isolated: ``fn`` may not run in this process (``isolate=True``, an initializer): the
            pool is used whatever it costs, and the model picks the fastest of 1..cap workers
            and their chunk size; the card's rule does not apply.
        thread_cap: most threads the thread lane may use (0: not a choice here).
    """
    if stats is None:
        return Decision.serial("nothing was measured (the input ended or the first item failed)")
    if n_remaining <= 0:
        return Decision.serial("the sample was the whole input")
    allowed = min(profile.usable_cpus, max_workers or profile.usable_cpus)
    if not length_known and (start_paid or warm_workers >= 2):
        n_remaining = max(n_remaining, horizon_once_start_is_free(stats, allowed, settings))
    serial_s = predict_serial_s(stats, n_remaining)
    threads = (
        None if isolated else plan_threads(stats, settings, n_remaining, thread_cap, chunksize)
    )
    threads_pay = threads is not None and serial_s >= settings.min_speedup * threads[0]
    if not stats.picklable:
        why = f"cannot use a pool: {stats.unpicklable_reason}"
        if threads is not None and threads_pay:
            return _thread_decision(
                stats, threads, n_remaining, serial_s, 0.0, settings=settings, why=why + "; "
            )
        return Decision.serial(why)
    cap = min(allowed, n_remaining)
    if isolated:
        return _decide_isolated(
            stats, profile, settings, n_remaining, cap=max(1, cap), chunksize=chunksize
        )
    if cap < 2:
        if threads is not None and threads_pay:
            return _thread_decision(stats, threads, n_remaining, serial_s, 0.0, settings=settings)
        why = "1 item left" if n_remaining < 2 else f"only {cap} worker allowed"
        return Decision.serial(f"no parallelism possible: {why}")

    def plan(workers: int) -> tuple[float, int]:
        size = chunksize or choose_chunksize(
            stats.compute_s, n_remaining if length_known else None, workers, stats.cv, settings
        )
        cold = workers != warm_workers and not start_paid
        spawn = profile.spawn_s(workers) if cold else 0.0
        time_s = predict_parallel_s(
            stats,
            profile,
            n_remaining,
            workers,
            size,
            spawn_s=spawn,
            parent_share=parent_share_while_starting(workers, profile, settings),
        )
        return time_s, size

    def start_note(workers: int) -> str:
        if workers == warm_workers:
            return "pool warm"
        if start_paid:
            return "pool start paid by the in-process run so far (rent-or-buy)"
        meanwhile = parent_share_while_starting(workers, profile, settings) > 0
        forked = " (forked)" if profile.start_method == "fork" else ""
        return f"pool start {format_seconds(profile.spawn_s(workers))}{forked}" + (
            " (items run here meanwhile)" if meanwhile else ""
        )

    time_at_two, size_at_two = plan(2)
    speedup_at_two = serial_s / time_at_two
    if speedup_at_two < settings.min_speedup:
        if threads is not None and threads_pay:
            return _thread_decision(
                stats, threads, n_remaining, serial_s, speedup_at_two, settings=settings
            )
        return Decision.serial(
            f"2 workers would reach only {format_speedup(speedup_at_two, settings.min_speedup)} "
            f"(< {settings.min_speedup:g}x): "
            + _budget(stats, profile, n_remaining, size_at_two, start_note(2)),
            speedup_at_two=speedup_at_two,
        )
    best_time, best_workers, best_size = time_at_two, 2, size_at_two
    for workers in range(3, cap + 1):
        t, size = plan(workers)
        if t < best_time:
            best_time, best_workers, best_size = t, workers, size
    if threads is not None and threads_pay and threads[0] < best_time:
        return _thread_decision(
            stats, threads, n_remaining, serial_s, speedup_at_two, settings=settings
        )
    return Decision(
        lane="process",
        workers=best_workers,
        chunksize=best_size,
        predicted_speedup=serial_s / best_time,
        speedup_at_two=speedup_at_two,
        reason=_budget(stats, profile, n_remaining, best_size, start_note(best_workers)),
    )


def _decide_isolated(
    stats: SampleStats,
    profile: MachineProfile,
    settings: Settings,
    n: int,
    *,
    cap: int,
    chunksize: int | None,
) -> Decision:
    """The fastest pool of 1..``cap`` workers for ``n`` items that may not run here; its start
    is sunk (the items that measured ``stats`` ran on it)."""
    plans = []
    for workers in range(1, cap + 1):
        size = chunksize or choose_chunksize(stats.compute_s, n, workers, stats.cv, settings)
        plans.append(
            (predict_parallel_s(stats, profile, n, workers, size, spawn_s=0.0), workers, size)
        )
    best_s, workers, size = min(plans)
    at_two = [t for t, w, _ in plans if w == 2]
    serial_s = predict_serial_s(stats, n)
    return Decision(
        lane="process",
        workers=workers,
        chunksize=size,
        predicted_speedup=serial_s / best_s if best_s > 0 else 1.0,
        speedup_at_two=serial_s / at_two[0] if at_two and at_two[0] > 0 else 0.0,
        reason=f"fastest of 1-{cap} workers for items timed in them: "
        + _budget(stats, profile, n, size, "pool running"),
    )


def choose_submit_lane(
    task_s: float,
    profile: MachineProfile,
    settings: Settings,
    *,
    pool_warm: bool,
    inprocess_spent_s: float,
) -> Literal["serial", "process"]:
    """Lane for one more call of a callable whose calls take ``task_s``.

    Cheap calls stay in-process. Costly ones go to a warm pool at once; to a cold pool only
    once the in-process time spent on the callable would have paid for starting it (rent-or-buy).
    """
    if task_s < settings.submit_min_cost_ratio * profile.chunk_roundtrip_s:
        return "serial"
    if pool_warm or inprocess_spent_s >= profile.spawn_s(2):
        return "process"
    return "serial"


def _budget(stats: SampleStats, profile: MachineProfile, n: int, chunksize: int, start: str) -> str:
    work = n * stats.compute_s
    pickling = n * (
        stats.serialize_s + (stats.arg_bytes + stats.result_bytes) * profile.ipc_s_per_byte
    )
    dispatch = math.ceil(n / chunksize) * profile.chunk_roundtrip_s
    return (
        f"{n} items x {format_seconds(stats.compute_s)} = {format_seconds(work)} of work; "
        f"{start}, pickling {format_seconds(pickling)}, dispatch {format_seconds(dispatch)}"
    )


def format_speedup(speedup: float, threshold: float) -> str:
    """``'1.57x'``: two decimals, or as many more as it takes to stay on ``speedup``'s side of
    the ``threshold`` it was judged against (a 1.196x that missed 1.2x reads ``'1.196x'``, not
    ``'1.20x'``)."""
    for decimals in range(2, 7):
        text = f"{speedup:.{decimals}f}"
        if (float(text) >= threshold) == (speedup >= threshold):
            return text + "x"
    return f"{speedup!r}x"  # closer still: every digit (float(repr(x)) == x)


def format_seconds(seconds: float) -> str:
    """Seconds in the unit a person reads best: ``'12 us'``, ``'3.4 ms'``, ``'1.20 s'``."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.2f} s"
