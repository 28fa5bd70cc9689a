"""``amorsize-exec explain MODULE:FUNCTION``: what ``AutoExecutor`` would do with a function, and
why, before a user trusts it in production.

The decision shown is the executor's own, not a re-enactment: ``explain`` calls
``AutoExecutor.map`` on the input and reads ``last_decision`` once the map has decided (the
sample has run; if a pool won, its first chunks are in flight), then stops the map. Around it:
the model's predicted time for each worker count and a few chunk sizes, and the machine's
costs. ``--run`` then times the plain loop and a fresh ``AutoExecutor`` on the whole input and
sets the measured speedup beside the predicted one.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable
from typing import Any

from ._backends import reset_default_pools
from ._config import Settings
from ._cost_model import format_seconds, predict_parallel_s, predict_serial_s
from ._cost_threads import expect_threads_s, plan_threads
from ._decision import DecisionRecord
from ._executor import AutoExecutor
from ._machine import default_probe


def load_function(spec: str) -> Callable[..., Any]:
    """``"package.module:function"`` (``"module:Class.method"`` too) -> the callable."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"expected MODULE:FUNCTION, got {spec!r}")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{spec} is not callable")
    return target  # type: ignore[no-any-return]


def explain(fn: Callable[..., Any], items: list[Any], *, run: bool = False) -> dict[str, Any]:
    """What ``AutoExecutor().map(fn, items)`` decides, the predictions around it, the machine,
    and with ``run`` the measured times. Plain data (JSON-ready)."""
    with AutoExecutor() as ex:
        results = ex.map(fn, items)
        record = ex.last_decision
        close = getattr(results, "close", None)
        if close is not None:
            close()  # a pool map's chunks not yet started are cancelled
        del results
    measured = default_probe().calibrated_profile()  # round trip and pipe, on a real pool
    reset_default_pools()
    if record is None:
        raise RuntimeError("the executor made no decision (empty input?)")
    report: dict[str, Any] = {
        "function": record.function,
        "items": len(items),
        "decision": {
            "lane": record.lane_text,
            "predicted_speedup": record.decision.predicted_speedup,
            "reason": record.decision.reason,
            "summary": record.summary(),
        },
        "sample": None if record.stats is None else dataclasses.asdict(record.stats),
        "machine": dataclasses.asdict(measured),
        "decided_on": None if record.profile is None else dataclasses.asdict(record.profile),
        "predictions": _predictions(record),
    }
    if run:
        report["run"] = _run(fn, items, record)
    return report


def _predictions(record: DecisionRecord) -> list[dict[str, Any]]:
    """Predicted seconds for the items left after the sample: the loop, and 2..cores workers
    (cold pool, as a script pays it) at the model's chunk size, a quarter and four times it."""
    stats, profile, n = record.stats, record.profile, record.items_remaining
    if stats is None or profile is None or not n:
        return []
    rows: list[dict[str, Any]] = [
        {"lane": "serial", "workers": 1, "chunksize": None, "seconds": predict_serial_s(stats, n)}
    ]
    chosen = record.decision.chunksize if record.decision.lane == "process" else None
    for workers in range(2, profile.usable_cpus + 1):
        base = chosen or max(1, n // (4 * workers))
        for chunksize in sorted({max(1, base // 4), base, min(n, base * 4)}):
            seconds = predict_parallel_s(
                stats, profile, n, workers, chunksize, spawn_s=profile.spawn_s(workers)
            )
            rows.append(
                {"lane": "process", "workers": workers, "chunksize": chunksize, "seconds": seconds}
            )
    settings = Settings.from_env()
    threads = plan_threads(stats, settings, n, settings.thread_lane_max_threads)
    if threads is not None:
        _, count, chunksize = threads
        seconds = expect_threads_s(stats, settings, n, count, chunksize)
        rows.append(
            {"lane": "thread", "workers": count, "chunksize": chunksize, "seconds": seconds}
        )
    return rows


def _run(fn: Callable[..., Any], items: list[Any], record: DecisionRecord) -> dict[str, Any]:
    started = time.perf_counter()
    expected = list(map(fn, items))
    loop_s = time.perf_counter() - started
    started = time.perf_counter()
    with AutoExecutor() as ex:
        got = list(ex.map(fn, items))
    auto_s = time.perf_counter() - started
    reset_default_pools()
    return {
        "loop_s": loop_s,
        "auto_s": auto_s,
        "measured_speedup": loop_s / auto_s if auto_s > 0 else None,
        "predicted_speedup": record.decision.predicted_speedup,
        "same_results": got == expected,
    }


def format_report(report: dict[str, Any]) -> str:
    """The report for people."""
    d = report["decision"]
    lines = [
        f"{report['function']} over {report['items']} items: {d['lane']}, "
        f"predicted {d['predicted_speedup']:.2f}x",
        f"  why: {d['reason']}",
    ]
    sample = report["sample"]
    if sample is not None:
        cores_busy = sample["cpu_s"] / max(sample["compute_s"], 1e-12)
        lines.append(
            f"  sample: {sample['items']} items, {format_seconds(sample['compute_s'])} each "
            f"(cv {sample['cv']:.2f}), CPU/wall {cores_busy:.2f}"
        )
    if report["predictions"]:
        lines.append("  predicted time of the rest (cold pool; threads: the best count):")
        lines.append(f"    {'lane':>7} {'workers':>7} {'chunksize':>9} {'time':>10}")
        for row in report["predictions"]:
            size = "-" if row["chunksize"] is None else str(row["chunksize"])
            lines.append(
                f"    {row['lane']:>7} {row['workers']:>7} {size:>9} "
                f"{format_seconds(row['seconds']):>10}"
            )
    machine = report["machine"]
    if machine is not None:
        lines.append(
            f"  machine: {machine['usable_cpus']} usable CPUs, pool start "
            f"{format_seconds(machine['pool_start_s'])} (loky's fork + exec)"
            + (
                ""
                if machine["fork_start_s"] is None
                else f" or {format_seconds(machine['fork_start_s'])} (forked)"
            )
            + ", round trip "
            f"{format_seconds(machine['chunk_roundtrip_s'])}, pipe "
            f"{machine['ipc_s_per_byte'] * 1e9:.2f} ns/byte"
        )
    decided_on = report["decided_on"]
    if decided_on is not None and not decided_on["calibrated"]:
        lines.append(
            f"  (the decision used priors: pool start {format_seconds(decided_on['pool_start_s'])}"
            f", round trip {format_seconds(decided_on['chunk_roundtrip_s'])}; it measures the "
            "machine only once a pool wins and is warm)"
        )
    run = report.get("run")
    if run is not None:
        lines.append(
            f"  run: loop {format_seconds(run['loop_s'])}, AutoExecutor "
            f"{format_seconds(run['auto_s'])}: measured {run['measured_speedup']:.2f}x, "
            f"predicted {run['predicted_speedup']:.2f}x"
            + ("" if run["same_results"] else "  (RESULTS DIFFER)")
        )
    return "\n".join(lines)
