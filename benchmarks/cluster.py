"""``AutoExecutor(client=...)`` against Dask itself: ``python -m benchmarks.cluster [--quick]``.

One run starts a real ``distributed.LocalCluster`` (2 worker processes of 1 thread each, its
scheduler in this process, no dashboard) and a ``Client`` connected to it, once, before any
timing ("warm": no timing pays for the cluster's start-up). On each workload these contenders
map the same function over the same list, each timed end to end for one full map:

* ``loop``        ``[fn(x) for x in items]`` in this process (the serial baseline);
* ``client_map``  ``client.gather(client.map(fn, items, pure=False))``: one task per item;
* ``dask_bag``    ``dask.bag.from_sequence(items).map(fn).compute(scheduler=client)``, with the
  partitioning ``from_sequence`` picks by default (its ``npartitions`` is recorded);
* ``auto``        ``with AutoExecutor(client=client) as ex: list(ex.map(fn, items))``, the
  executor built and shut down inside the timing; ``ex.last_decision`` is recorded.

Workloads: ``ms1_x2000`` (~1 ms of CPU x 2,000), ``ms50_x40`` (~50 ms x 40), ``double_100k``
(``x*2`` over 100,000 ints) and ``mb1_args_x200`` (a cheap function over 200 distinct 1 MB
``bytes`` arguments). The functions are those of ``benchmarks.workloads`` (CPU cost from its
calibrated spin loop; the cluster's workers inherit the calibrated rate through the environment,
which is checked). Every contender's results must equal the loop's.

Per workload: one discarded warm-up round (loop first: its results are the reference), then
``--rounds`` rounds with the order rotated each round (``contenders.paired_order``). Figures are
medians of the rounds. Auto is compared with the best Dask contender (the lower median of
``client_map`` and ``dask_bag``) and with the best of all (the loop included), with the suite's
10 ms grace: a ratio counts as 1.00 when auto is within 10 ms of the reference. The target:
auto <= 1.10x the best Dask contender on every workload, and the trivial workloads (``x*2``,
1 MB arguments) stay off the cluster and beat every Dask contender.

Time is bounded (2 cores): over more than ``PROBE_ABOVE_ITEMS`` items, ``client_map`` is first
timed over the first ``PROBE_ITEMS`` items, and not run over all of them if that projects to more
than ``PROJECTED_MAX_S`` (one task per item costs ~2 ms here: 100,000 items would take minutes
a timing); the report gives the probe and the projection. A Dask contender whose warm-up timing
is above ``HOPELESS_MIN_S`` and ``HOPELESS_FACTOR`` x the workload's best is not repeated (its
warm-up timing is its figure, marked †). ``benchmarks._load`` waits for other processes to go quiet
before a timing and records their load. The ``amorsize_exec`` source is frozen for the run as in
``benchmarks.run``. See benchmarks/README.md.
"""

# Imports inside functions are deliberate: dask, distributed and amorsize_exec are imported after
# the source snapshot is in place, and the cluster's workers (which import this module to find
# its helpers) stay light.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import inspect
import json
import logging
import os
import signal
import statistics
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python benchmarks/cluster.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks import _load
from benchmarks import workloads as W
from benchmarks.contenders import paired_order
from benchmarks.report import GRACE_S, describe_source, fmt_s, graced

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "cluster"

#: Timed rounds per workload (after the discarded warm-up round), and with ``--quick``.
ROUNDS, QUICK_ROUNDS = 5, 3
#: The cluster: worker processes, threads each.
N_WORKERS, THREADS_PER_WORKER = 2, 1
#: The issue's target: auto <= this x the best Dask contender (with the grace).
TARGET_VS_DASK = 1.10
#: Over more than PROBE_ABOVE_ITEMS items, ``client_map`` is timed over the first PROBE_ITEMS
#: first, and not run over all of them if that projects (linearly) to more than PROJECTED_MAX_S:
#: one task per item costs about 2 ms on this 2-core machine (100,000 items took 202 s), and a
#: timing cannot be cut short (cancelling 20,000 queued tasks kept the scheduler busy 19 s).
PROBE_ABOVE_ITEMS, PROBE_ITEMS, PROJECTED_MAX_S = 20_000, 2_000, 30.0
#: A Dask contender whose warm-up timing is above HOPELESS_MIN_S and HOPELESS_FACTOR x the
#: workload's best warm-up timing is not repeated (its warm-up timing is its figure): the bag
#: over 100,000 trivial items takes ~20 s a timing here. The bar is high because a noisy warm-up
#: must not take a Dask contender out of the rounds (the bag over 1 MB arguments, ~3 s, once
#: took 11 s while tests ran).
HOPELESS_FACTOR, HOPELESS_MIN_S = 10.0, 15.0
#: A timing running longer than this dumps every thread's stack to stderr (and goes on).
TIMING_LIMIT_S = 120
#: Waiting for other processes to go quiet: per timing, and in all.
QUIET_WAIT_S, QUIET_BUDGET_S = 5.0, 60.0
#: Foreign load is recorded for timings at least this long (/proc/stat counts 10 ms ticks).
MIN_JUDGED_S = 0.2
#: Before a timing, wait up to this for the scheduler to forget the previous timing's tasks.
SETTLE_MAX_S = 5.0

CONTENDERS = ("loop", "client_map", "dask_bag", "auto")
DASK = ("client_map", "dask_bag")
_MB = 1 << 20


# --- workloads ---------------------------------------------------------------------------------


def _ints(n: int) -> Callable[[], list[int]]:
    return lambda: list(range(n))


def _random_blobs(n: int = 200) -> list[bytes]:
    """``n`` distinct 1 MB ``bytes`` (made once per run, before any timing)."""
    return [os.urandom(_MB) for _ in range(n)]


@dataclass(frozen=True)
class Case:
    """One workload: ``fn`` mapped over ``make_items()``; ``trivial`` ones should stay local."""

    name: str
    fn: Callable[[Any], Any]
    make_items: Callable[[], list[Any]]
    description: str
    trivial: bool = False


CASES: dict[str, Case] = {
    c.name: c
    for c in [
        Case("ms1_x2000", W.spin_1ms, _ints(2000), "~1 ms of CPU (spin loop) x 2,000"),
        Case("ms50_x40", W.spin_50ms, _ints(40), "~50 ms of CPU x 40"),
        Case("double_100k", W.double, _ints(100_000), "x*2 over range(100_000)", trivial=True),
        Case(
            "mb1_args_x200",
            W.first_and_len,
            _random_blobs,
            "1 MB bytes argument (os.urandom), returns blob[0] * 1000003 + len, x 200",
            trivial=True,
        ),
    ]
}


# --- contenders --------------------------------------------------------------------------------


def run_loop(client: Any, fn: Callable[[Any], Any], items: list[Any], info: dict[str, Any]) -> Any:
    return [fn(x) for x in items]


def run_client_map(
    client: Any, fn: Callable[[Any], Any], items: list[Any], info: dict[str, Any]
) -> Any:
    return client.gather(client.map(fn, items, pure=False))


def run_dask_bag(
    client: Any, fn: Callable[[Any], Any], items: list[Any], info: dict[str, Any]
) -> Any:
    import dask.bag as db

    bag = db.from_sequence(items)
    info["npartitions"] = bag.npartitions
    return bag.map(fn).compute(scheduler=client)


def run_auto(client: Any, fn: Callable[[Any], Any], items: list[Any], info: dict[str, Any]) -> Any:
    from amorsize_exec import AutoExecutor

    with AutoExecutor(client=client) as ex:  # type: ignore[call-arg]
        out = list(ex.map(fn, items))
        info["record"] = ex.last_decision
    return out


RUNNERS: dict[str, Callable[[Any, Callable[[Any], Any], list[Any], dict[str, Any]], Any]] = {
    "loop": run_loop,
    "client_map": run_client_map,
    "dask_bag": run_dask_bag,
    "auto": run_auto,
}


def auto_has_client() -> tuple[bool, str]:
    """Whether ``AutoExecutor`` takes ``client=``, and its signature (for the report)."""
    from amorsize_exec import AutoExecutor

    sig = inspect.signature(AutoExecutor)
    return "client" in sig.parameters, str(sig)


def decision_fields(rec: Any) -> dict[str, Any]:
    """The decision's lane, workers, chunksize, predicted speedup and reason, plus its summary."""
    if rec is None:
        return {"lane": None, "error": "last_decision is None"}
    d = getattr(rec, "decision", rec)
    out: dict[str, Any] = {
        k: getattr(d, k, None)
        for k in ("lane", "workers", "chunksize", "predicted_speedup", "reason")
    }
    with contextlib.suppress(Exception):
        out["summary"] = rec.summary()
    return out


def decision_record(rec: Any) -> Any:
    """``last_decision.as_dict()``, JSON-ready."""
    try:
        return json.loads(json.dumps(rec.as_dict(), default=str))
    except Exception as exc:
        return f"as_dict() failed: {type(exc).__name__}: {exc}"


# --- the cluster -------------------------------------------------------------------------------


def _scheduler_tasks(dask_scheduler: Any) -> int:
    """Tasks the scheduler still holds (run on the scheduler)."""
    return len(dask_scheduler.tasks)


def settle(client: Any, max_s: float) -> int:
    """Wait until the scheduler holds no task (the previous timing's futures released), at most
    ``max_s``; return the tasks left."""
    deadline = time.perf_counter() + max_s
    while True:
        n = int(client.run_on_scheduler(_scheduler_tasks))
        if n == 0 or time.perf_counter() >= deadline:
            return n
        time.sleep(0.05)


def start_cluster(stack: contextlib.ExitStack) -> tuple[Any, Any]:
    from distributed import Client, LocalCluster

    cluster = stack.enter_context(
        LocalCluster(
            n_workers=N_WORKERS,
            threads_per_worker=THREADS_PER_WORKER,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    )
    client = stack.enter_context(Client(cluster))
    return cluster, client


def cluster_info(client: Any) -> dict[str, Any]:
    import dask

    info = client.scheduler_info()
    workers = info.get("workers", {})
    rates = client.run(W.iters_per_ms)
    return {
        "n_workers": len(workers),
        "threads": sorted(w.get("nthreads") for w in workers.values()),
        "dask_config_scheduler": dask.config.get("scheduler", None),
        "multiprocessing_method": dask.config.get(
            "distributed.worker.multiprocessing-method", None
        ),
        "worker_spin_iters_per_ms": rates,
        "worker_spin_matches": all(r == W.iters_per_ms() for r in rates.values()),
    }


# --- timing ------------------------------------------------------------------------------------


class Bench:
    """Times the contenders on one cluster; keeps the run's quiet-wait budget and load figures."""

    def __init__(self, client: Any, quiet_budget_s: float) -> None:
        self.client = client
        self.quiet_left = quiet_budget_s
        self.quiet_waited = 0.0
        self.loads: list[float] = []

    def time_one(self, name: str, case: Case, items: list[Any]) -> dict[str, Any]:
        """One timing of contender ``name``: {s, out, load, info, warnings} (or {error})."""
        left = settle(self.client, SETTLE_MAX_S)
        if self.quiet_left > 0:
            waited = _load.wait_for_quiet(
                _load.live_tree_cpu_s, max_wait_s=min(QUIET_WAIT_S, self.quiet_left)
            )
            self.quiet_left -= waited
            self.quiet_waited += waited
        info: dict[str, Any] = {}
        meter = _load.Meter(_load.live_tree_cpu_s)
        result: dict[str, Any] = {"left_before": left}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            faulthandler.dump_traceback_later(TIMING_LIMIT_S, exit=False)
            meter.start()
            started = time.perf_counter()
            try:
                out = RUNNERS[name](self.client, case.fn, items, info)
                result["s"] = time.perf_counter() - started
                result["out"] = out
            except Exception as exc:
                result["error"] = f"{type(exc).__name__}: {exc}"
                result["traceback"] = traceback.format_exc()[-3000:]
            finally:
                faulthandler.cancel_dump_traceback_later()
            load = meter.stop()
        if load is not None and result.get("s", 0.0) >= MIN_JUDGED_S:
            result["load"] = round(load, 3)
            self.loads.append(load)
        result["warnings"] = sorted({str(w.message).splitlines()[0] for w in caught})
        result["npartitions"] = info.get("npartitions")
        if "record" in info:
            result["decision"] = decision_fields(info["record"])
            result["decision_record"] = decision_record(info["record"])
        return result


def _mismatch(out: Any, ref: list[Any]) -> str | None:
    """Why ``out`` differs from the loop's results (None if equal)."""
    if not isinstance(out, list):
        out = list(out)
    if out == ref:
        return None
    if len(out) != len(ref):
        return f"{len(out)} results, the loop gave {len(ref)}"
    i = next(i for i, (a, b) in enumerate(zip(out, ref, strict=True)) if a != b)
    return f"result {i} is {out[i]!r:.80}, the loop gave {ref[i]!r:.80}"


def run_case(
    bench: Bench, case: Case, rounds: int, contenders: list[str], skipped: dict[str, str]
) -> dict[str, Any]:
    """The warm-up round and ``rounds`` paired rounds of one workload."""
    items = case.make_items()
    res: dict[str, Any] = {
        "description": case.description,
        "n": len(items),
        "trivial": case.trivial,
        "warmup": {},
        "rounds": [],
        "single": {},  # contender -> its one (warm-up) timing: hopeless, not repeated
        "projected": {},  # contender -> probe over the first items, projection to all
        "failed": {},
        "skipped": dict(skipped),
        "warnings": {},
        "npartitions": None,
        "decisions": [],
        "decision_record": None,
        "left_tasks": {},
    }
    ref: list[Any] | None = None

    def take(name: str, rnd: int | None) -> tuple[float, float | None] | None:
        """One timing, checked against the loop's results: (seconds, foreign load) or None."""
        nonlocal ref
        r = bench.time_one(name, case, items)
        for w in r["warnings"]:
            res["warnings"].setdefault(name, [])
            if w not in res["warnings"][name]:
                res["warnings"][name].append(w)
        if r.get("npartitions") is not None:
            res["npartitions"] = r["npartitions"]
        if r.get("left_before"):
            res["left_tasks"][name] = max(res["left_tasks"].get(name, 0), r["left_before"])
        if "decision" in r and rnd is not None:
            res["decisions"].append(r["decision"])
        if r.get("decision_record") is not None:
            res["decision_record"] = r["decision_record"]
        if "error" in r:
            res["failed"][name] = r["error"]
            print(f"  !! {case.name}/{name} FAILED: {r['error']}", file=sys.stderr, flush=True)
            if r.get("traceback"):
                print(r["traceback"], file=sys.stderr, flush=True)
            return None
        out = r.pop("out")
        if name == "loop" and ref is None:
            ref = list(out)
        else:
            assert ref is not None
            why = _mismatch(out, ref)
            if why:
                res["failed"][name] = f"results differ from the loop's: {why}"
                print(f"  !! {case.name}/{name} WRONG RESULTS: {why}", file=sys.stderr, flush=True)
                return None
        del out
        return r["s"], r.get("load")

    active = [c for c in contenders if c not in skipped]
    if "client_map" in active and len(items) > PROBE_ABOVE_ITEMS:
        probe = items[:PROBE_ITEMS]
        r = bench.time_one("client_map", case, probe)
        if "error" in r:
            res["failed"]["client_map"] = f"(probe over {len(probe)} items) {r['error']}"
        elif r["out"] != [case.fn(x) for x in probe]:
            res["failed"]["client_map"] = f"(probe over {len(probe)} items) results differ"
        else:
            projected = r["s"] * len(items) / len(probe)
            print(
                f"  client_map probe: {len(probe)} items in {fmt_s(r['s'])}, all "
                f"{len(items)} projected to {fmt_s(projected)}",
                flush=True,
            )
            if projected > PROJECTED_MAX_S:
                res["projected"]["client_map"] = {
                    "probe_items": len(probe),
                    "probe_s": r["s"],
                    "projected_s": projected,
                }
        active = [c for c in active if c not in res["projected"] and c not in res["failed"]]
    # warm-up: the loop first (its results are the reference); discarded unless hopeless
    for name in active:
        got = take(name, None)
        if got is not None:
            res["warmup"][name] = {"s": got[0], "load": got[1]}
    if "loop" not in res["warmup"]:
        raise RuntimeError(f"{case.name}: the loop failed, no reference results")
    best = min(v["s"] for v in res["warmup"].values())
    for name in DASK:
        t = res["warmup"].get(name, {}).get("s")
        if t is not None and t > HOPELESS_MIN_S and t > HOPELESS_FACTOR * best:
            res["single"][name] = t
    repeated = [
        c
        for c in active
        if c in res["warmup"] and c not in res["single"] and c not in res["failed"]
    ]
    print(
        "  warm-up: "
        + ", ".join(
            f"{c} {fmt_s(v['s'])}{' (not repeated)' if c in res['single'] else ''}"
            for c, v in res["warmup"].items()
        )
        + "".join(f", {c} FAILED" for c in res["failed"]),
        flush=True,
    )
    for rnd in range(rounds):
        row: dict[str, Any] = {}
        for name in paired_order(repeated, rnd):
            if name in res["failed"]:
                continue
            got = take(name, rnd)
            if got is not None:
                row[name] = {"s": got[0], "load": got[1]}
        res["rounds"].append(row)
        print(
            f"  round {rnd + 1}/{rounds}: "
            + ", ".join(f"{c} {fmt_s(v['s'])}" for c, v in row.items()),
            flush=True,
        )
    return res


# --- summary and report ------------------------------------------------------------------------


def summarize(res: dict[str, Any]) -> dict[str, Any]:
    """Medians (min, max) per contender, the best Dask contender, auto's ratios and targets."""
    fig: dict[str, dict[str, Any]] = {}
    for c in CONTENDERS:
        if c in res["failed"]:
            continue
        if c in res["single"]:
            t = res["single"][c]
            fig[c] = {"median": t, "min": t, "max": t, "n": 1, "single": True}
            continue
        ts = [r[c]["s"] for r in res["rounds"] if c in r]
        if ts:
            fig[c] = {
                "median": statistics.median(ts),
                "min": min(ts),
                "max": max(ts),
                "n": len(ts),
                "single": False,
            }
    dask = {c: fig[c]["median"] for c in DASK if c in fig}
    best_dask = min(dask, key=dask.__getitem__) if dask else None
    base = {c: fig[c]["median"] for c in ("loop", *DASK) if c in fig}
    best_all = min(base, key=base.__getitem__) if base else None
    auto = fig.get("auto", {}).get("median")
    vs_dask, vs_dask_raw = graced(auto, dask.get(best_dask) if best_dask else None)
    vs_all, vs_all_raw = graced(auto, base.get(best_all) if best_all else None)
    paired = []
    for r in res["rounds"]:
        ds = [r[c]["s"] for c in DASK if c in r]
        if "auto" in r and ds:
            paired.append(r["auto"]["s"] / min(ds))
    # a contender not run over all items took at least its probe's time
    beats_all_dask = None
    if auto is not None:
        beats_all_dask = all(auto < v for v in dask.values()) and all(
            auto < p["probe_s"] for p in res["projected"].values()
        )
    decisions = res["decisions"]
    keys = Counter((d.get("lane"), d.get("workers"), d.get("chunksize")) for d in decisions)
    common = keys.most_common(1)[0][0] if keys else None
    chosen = next(
        (
            d
            for d in reversed(decisions)
            if (d.get("lane"), d.get("workers"), d.get("chunksize")) == common
        ),
        None,
    )
    lanes = {d.get("lane") for d in decisions}
    preds = [d["predicted_speedup"] for d in decisions if d.get("predicted_speedup") is not None]
    return {
        "figures": fig,
        "best_dask": best_dask,
        "best_all": best_all,
        "auto_vs_dask": vs_dask,
        "auto_vs_dask_raw": vs_dask_raw,
        "auto_vs_best": vs_all,
        "auto_vs_best_raw": vs_all_raw,
        "paired_vs_dask_median": statistics.median(paired) if paired else None,
        "target_holds": None if vs_dask is None else vs_dask <= TARGET_VS_DASK,
        "stays_local": (None if not decisions else "cluster" not in lanes),
        "beats_all_dask": beats_all_dask,
        "decision": chosen,
        "decision_counts": {f"{k[0]} {k[1]}x{k[2]}": v for k, v in keys.items()},
        "predicted_median": statistics.median(preds) if preds else None,
    }


def _cell(fig: dict[str, Any] | None) -> str:
    if not fig:
        return "-"
    if fig["single"]:
        return f"{fmt_s(fig['median'])} †"
    return f"{fmt_s(fig['median'])} [{fmt_s(fig['min'])}-{fmt_s(fig['max'])}]"


def _contender_cell(res: dict[str, Any], s: dict[str, Any], c: str, ranges: bool) -> str:
    if c in res["skipped"]:
        return "skipped"
    if c in res["failed"]:
        return "**FAILED**"
    if c in res["projected"]:
        return f"~{fmt_s(res['projected'][c]['projected_s'])} (projected, not run)"
    fig = s["figures"].get(c)
    if not ranges and fig:
        return fmt_s(fig["median"]) + (" †" if fig["single"] else "")
    return _cell(fig)


def _x(ratio: float) -> str:
    """``1.23``, or ``1/3200`` for ratios below 0.1 (auto far faster than the reference)."""
    return f"1/{1 / ratio:.0f}" if 0 < ratio < 0.1 else f"{ratio:.2f}"


def _ratio(value: float | None, raw: float | None) -> str:
    if value is None or raw is None:
        return "-"
    text = _x(value)
    return text if _x(raw) == text else f"{text} ({_x(raw)} raw)"


def _decision_cell(d: dict[str, Any] | None) -> str:
    if not d or d.get("lane") is None:
        return "-"
    if d["lane"] == "serial":
        return "serial"
    return f"{d['lane']} {d.get('workers')} x {d.get('chunksize')}"


def _yes(v: bool | None) -> str:
    return "-" if v is None else "yes" if v else "**NO**"


def results_table(raw: dict[str, Any], ranges: bool) -> list[str]:
    lines = [
        "| workload | loop | client_map | dask_bag (partitions) | auto | auto's decision "
        "| auto / best Dask | auto / best | <= 1.10x best Dask | trivial: local, beats Dask |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w, res in raw["results"].items():
        s = summarize(res)
        cells = [_contender_cell(res, s, c, ranges) for c in CONTENDERS]
        if res.get("npartitions") is not None:
            cells[2] += f" ({res['npartitions']})"
        best_dask = f" _{s['best_dask']}_" if s["best_dask"] else ""
        best_all = f" _{s['best_all']}_" if s["best_all"] else ""
        trivial = (
            f"{_yes(s['stays_local'])}, {_yes(s['beats_all_dask'])}" if res["trivial"] else "n/a"
        )
        lines.append(
            f"| {w} | "
            + " | ".join(cells)
            + f" | {_decision_cell(s['decision'])} "
            + f"| {_ratio(s['auto_vs_dask'], s['auto_vs_dask_raw'])}{best_dask} "
            + f"| {_ratio(s['auto_vs_best'], s['auto_vs_best_raw'])}{best_all} "
            + f"| {_yes(s['target_holds'])} | {trivial} |"
        )
    return lines


def report(raw: dict[str, Any]) -> str:
    m, cfg, src, cl = raw["machine"], raw["config"], raw.get("source", {}), raw.get("cluster", {})
    results = raw["results"]
    summaries = {w: summarize(r) for w, r in results.items()}
    lines = [
        "# AutoExecutor on a Dask cluster: benchmark report",
        "",
        f"- command: `{cfg['command']}`",
        f"- date: {m['date']}; {cfg.get('elapsed_s', '?')} s in all",
        f"- machine: os.cpu_count={m['os_cpu_count']} (physical {m.get('loky_physical_cores')}), "
        f"memory {m.get('memory_total_gb')} GB, {m['platform']}; Python {m['python']}",
        "- versions: "
        + ", ".join(f"{k} {v}" for k, v in {**raw.get("versions", {}), **m["versions"]}.items()),
        "- amorsize_exec measured: "
        + describe_source(src)
        + (" - **src/ changed during the run**" if src.get("live_changed_during_run") else ""),
        f"- AutoExecutor signature: `{cfg.get('auto_signature')}`",
        "- parallel capacity (aggregate spin rate of 2 processes / one alone): "
        + ", ".join(
            f"{k.split('_')[1]} {m[k]['capacity']:.2f}"
            for k in ("capacity_start", "capacity_end")
            if k in m
        )
        + f"; spin loop {m['spin_iters_per_ms']:.0f} iterations/ms"
        + (
            " (the cluster's workers use the same rate)"
            if cl.get("worker_spin_matches")
            else f" (**workers' rates differ**: {cl.get('worker_spin_iters_per_ms')})"
        ),
        f"- cluster: `LocalCluster(n_workers={N_WORKERS}, threads_per_worker="
        f"{THREADS_PER_WORKER}, processes=True, host='127.0.0.1', dashboard_address=None)` + "
        f"`Client`, started once before the timings in {cl.get('start_s', 0):.2f} s "
        f"(scheduler in this process; {cl.get('n_workers')} workers, threads "
        f"{cl.get('threads')}, started with {cl.get('multiprocessing_method')}); "
        f"dask.config scheduler: `{cl.get('dask_config_scheduler')}`, and `dask_bag` passes "
        "`scheduler=client`",
        f"- rounds: 1 discarded warm-up round (loop first) + {cfg['rounds']} timed rounds per "
        "workload, order rotated each round; figures are medians [min-max] of the rounds",
        f"- ratios: auto's median / the reference's median, counted as 1.00 when they are within "
        f"{GRACE_S * 1e3:.0f} ms (raw ratio in brackets); best Dask = the lower median of "
        "client_map and dask_bag; best = the lowest of loop, client_map and dask_bag",
        f"- other processes' CPU load during the timings of {MIN_JUDGED_S} s or more: median "
        f"{cfg.get('load_median')}, max "
        f"{cfg.get('load_max')} cores ({cfg.get('load_high')} timings above "
        f"{_load.RETRY_ABOVE_CORES}; not re-taken); {cfg.get('quiet_waited_s', 0):.0f} s waited "
        "for quiet",
    ]
    if cfg.get("auto_skipped"):
        lines.append(f"- **auto skipped**: {cfg['auto_skipped']}")
    misses = [w for w, s in summaries.items() if s["target_holds"] is False]
    unknown = [w for w, s in summaries.items() if s["target_holds"] is None]
    trivial = {w: s for w, s in summaries.items() if results[w]["trivial"]}
    trivial_miss = [w for w, s in trivial.items() if not (s["stays_local"] and s["beats_all_dask"])]
    lines += [
        "",
        "## Targets",
        "",
        "| target | holds | misses |",
        "|---|---|---|",
        f"| auto <= {TARGET_VS_DASK:.2f}x the best Dask contender on every workload "
        f"({GRACE_S * 1e3:.0f} ms grace) | "
        + ("-" if unknown and not misses else _yes(not misses))
        + " | "
        + ", ".join(
            [f"{w} {summaries[w]['auto_vs_dask']:.2f}" for w in misses]
            + [f"{w} not measured" for w in unknown]
        )
        + " |",
        "| the trivial workloads stay local (lane not `cluster`) and beat every Dask contender | "
        + (
            "-"
            if any(s["stays_local"] is None for s in trivial.values())
            else _yes(not trivial_miss)
        )
        + " | "
        + ", ".join(trivial_miss)
        + " |",
        "",
        "## Results",
        "",
        "Wall time of one full map, median [min-max] of the rounds († timed once, in the "
        "warm-up, not repeated: see the notes); auto's decision is the most common over the "
        "rounds.",
        "",
        *results_table(raw, ranges=True),
        "",
        "## AutoExecutor's decisions",
        "",
        "`last_decision` of each timed round: lane, workers x chunksize, the predicted speedup "
        "(median over the rounds) and the reason of the most common decision; `paired` is the "
        "median over rounds of auto / the faster Dask contender of the same round.",
        "",
        "| workload | decision | decisions over the rounds | predicted | paired auto / best Dask "
        "| reason |",
        "|---|---|---|---|---|---|",
    ]
    for w, s in summaries.items():
        d = s["decision"] or {}
        pred = f"{s['predicted_median']:.2f}x" if s["predicted_median"] is not None else "-"
        paired = _x(s["paired_vs_dask_median"]) if s["paired_vs_dask_median"] else "-"
        counts = ", ".join(f"{k}: {v}" for k, v in s["decision_counts"].items()) or "-"
        reason = str(d.get("reason") or "-").replace("|", "\\|")
        lines.append(f"| {w} | {_decision_cell(d)} | {counts} | {pred} | {paired} | {reason} |")
    hopeless = cfg.get("hopeless", {"factor": HOPELESS_FACTOR, "min_s": HOPELESS_MIN_S})
    notes = []
    for w, res in results.items():
        notes.append(f"- {w}: {res['description']}, {res['n']} items.")
        for c, why in res["skipped"].items():
            notes.append(f"  - {c} skipped: {why}")
        for c, t in res["single"].items():
            best = min(v["s"] for v in res["warmup"].values())
            notes.append(
                f"  - † {c}: its warm-up timing {fmt_s(t)} was above {hopeless['min_s']:.0f} s "
                f"and {hopeless['factor']:.0f}x the best warm-up timing ({fmt_s(best)}): not "
                "repeated."
            )
        for c, p in res["projected"].items():
            notes.append(
                f"  - {c} not run over all {res['n']} items: its first {p['probe_items']} took "
                f"{fmt_s(p['probe_s'])}, which projects to {fmt_s(p['projected_s'])} (more than "
                f"{PROJECTED_MAX_S:.0f} s); it is left out of best Dask (auto must beat the probe)."
            )
        high = [
            f"{c} round {i + 1} ({v['load']:.2f})"
            for i, row in enumerate(res["rounds"])
            for c, v in row.items()
            if v["load"] is not None and v["load"] > _load.RETRY_ABOVE_CORES
        ]
        if high:
            notes.append(
                f"  - timed while other processes used more than {_load.RETRY_ABOVE_CORES} "
                "cores: " + ", ".join(high)
            )
        for c, why in res["failed"].items():
            notes.append(f"  - **{c} FAILED**: {why[:400]}")
        for c, ws in res["warnings"].items():
            notes.append(f"  - {c} warned: " + "; ".join(f"`{x[:160]}`" for x in ws))
        for c, n in res["left_tasks"].items():
            notes.append(
                f"  - before a timing of {c}, the scheduler still held {n} tasks after "
                f"{SETTLE_MAX_S:.0f} s (left by the previous timing)"
            )
    lines += ["", "## Notes", "", *notes, ""]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__)
    p.add_argument("--quick", action="store_true", help=f"{QUICK_ROUNDS} rounds")
    p.add_argument("--rounds", type=int, default=None, help=f"timed rounds (default {ROUNDS})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    p.add_argument("--workloads", default="", help=f"comma-separated subset of {list(CASES)}")
    p.add_argument("--only", default="", help=f"comma-separated subset of {list(CONTENDERS)}")
    p.add_argument("--live-src", action="store_true", help="measure src/ live (no snapshot)")
    p.add_argument(
        "--report-only", action="store_true", help="rebuild report.md from --out/raw.json"
    )
    return p.parse_args(argv)


def _freeze_source(enabled: bool) -> dict[str, Any]:
    """``run.snapshot_source``, and this process imports the snapshot too (it times auto
    itself); the cluster's workers start later and inherit ``sys.path`` and ``PYTHONPATH``."""
    from benchmarks import run

    source = run.snapshot_source(enabled)
    if source.get("snapshot"):
        sys.path.insert(0, source["snapshot"])
        for mod in [m for m in sys.modules if m.split(".")[0] == "amorsize_exec"]:
            del sys.modules[mod]
    import amorsize_exec

    source["imported_from"] = str(Path(amorsize_exec.__file__).resolve().parent)
    return source


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # the cluster and client are closed on the way out


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        raw = json.loads((args.out / "raw.json").read_text())
        text = report(raw)
        (args.out / "report.md").write_text(text)
        print("\n".join(results_table(raw, ranges=False)))
        return 0
    names = [n.strip() for n in (args.workloads or ",".join(CASES)).split(",") if n.strip()]
    if unknown := [n for n in names if n not in CASES]:
        raise SystemExit(f"unknown workloads {unknown}; known: {list(CASES)}")
    contenders = [c.strip() for c in (args.only or ",".join(CONTENDERS)).split(",") if c.strip()]
    if unknown := [c for c in contenders if c not in CONTENDERS]:
        raise SystemExit(f"unknown contenders {unknown}; known: {list(CONTENDERS)}")
    if "loop" not in contenders:
        contenders.insert(0, "loop")  # the reference results
    contenders = [c for c in CONTENDERS if c in contenders]
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    signal.signal(signal.SIGTERM, _sigterm)

    from benchmarks import run

    source = _freeze_source(not args.live_src)
    W.ensure_calibrated()  # before the cluster starts: its workers inherit the rate
    has_client, signature = auto_has_client()
    skipped: dict[str, str] = {}
    if "auto" in contenders and not has_client:
        skipped["auto"] = "AutoExecutor has no `client` keyword yet (its signature has none)"
        print(f"auto skipped: {skipped['auto']}", file=sys.stderr, flush=True)
    import dask
    import dask.bag
    import distributed

    raw: dict[str, Any] = {
        "machine": run.machine_info(),
        "versions": {"dask": dask.__version__, "distributed": distributed.__version__},
        "source": source,
        "config": {
            "command": " ".join(
                [Path(sys.executable).name, "-m", "benchmarks.cluster"]
                + (argv if argv is not None else sys.argv[1:])
            ),
            "rounds": rounds,
            "workloads": names,
            "contenders": contenders,
            "auto_signature": signature,
            "auto_skipped": skipped.get("auto"),
            "probe": {
                "above_items": PROBE_ABOVE_ITEMS,
                "items": PROBE_ITEMS,
                "projected_max_s": PROJECTED_MAX_S,
            },
            "hopeless": {"factor": HOPELESS_FACTOR, "min_s": HOPELESS_MIN_S},
            "grace_s": GRACE_S,
        },
        "cluster": {},
        "results": {},
    }
    raw["machine"]["capacity_start"] = W.parallel_capacity(N_WORKERS)
    print(
        f"machine: {os.cpu_count()} CPUs, parallel capacity "
        f"{raw['machine']['capacity_start']['capacity']:.2f}, spin {W.iters_per_ms():.0f} "
        f"iterations/ms; dask {dask.__version__}, distributed {distributed.__version__}; "
        f"commit {source.get('git_head')}{' (src dirty)' if source.get('src_dirty') else ''}; "
        f"workloads {names}; contenders {[c for c in contenders if c not in skipped]}; "
        f"rounds {rounds}",
        flush=True,
    )
    started_all = time.perf_counter()
    bench: Bench | None = None
    try:
        with contextlib.ExitStack() as stack:
            t0 = time.perf_counter()
            _cluster, client = start_cluster(stack)
            raw["cluster"] = {"start_s": time.perf_counter() - t0, **cluster_info(client)}
            if raw["cluster"]["dask_config_scheduler"] != "dask.distributed":
                print(
                    f"note: dask.config scheduler is {raw['cluster']['dask_config_scheduler']!r}",
                    file=sys.stderr,
                )
            bench = Bench(client, QUIET_BUDGET_S)
            for name in names:
                print(f"{name}:", flush=True)
                started = time.perf_counter()
                raw["results"][name] = run_case(bench, CASES[name], rounds, contenders, skipped)
                raw["results"][name]["elapsed_s"] = round(time.perf_counter() - started, 1)
                (args.out / "raw.json").write_text(json.dumps(raw, indent=1, default=str))
        raw["machine"]["capacity_end"] = W.parallel_capacity(N_WORKERS)
    finally:
        if source.get("snapshot"):
            import shutil

            source["live_changed_during_run"] = (
                run._tree_sha256(Path(source["live_path"])) != source["sha256"]
            )
            shutil.rmtree(source["snapshot"], ignore_errors=True)
    loads = bench.loads if bench else []
    raw["config"].update(
        {
            "elapsed_s": round(time.perf_counter() - started_all, 1),
            "load_median": round(statistics.median(loads), 2) if loads else None,
            "load_max": round(max(loads), 2) if loads else None,
            "load_high": sum(x > _load.RETRY_ABOVE_CORES for x in loads),
            "quiet_waited_s": bench.quiet_waited if bench else 0.0,
        }
    )
    raw["summary"] = {w: summarize(r) for w, r in raw["results"].items()}
    (args.out / "raw.json").write_text(json.dumps(raw, indent=1, default=str))
    text = report(raw)
    (args.out / "report.md").write_text(text)
    print()
    print("\n".join(results_table(raw, ranges=False)))
    print(f"\nwritten: {args.out / 'report.md'}, {args.out / 'raw.json'}")
    failed = any(r["failed"] for r in raw["results"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    # Run as the module benchmarks.cluster, not __main__: functions sent to the cluster pickle by
    # reference to a module its workers can import.
    from benchmarks import cluster  # noqa: PLW0406

    sys.exit(cluster.main())
