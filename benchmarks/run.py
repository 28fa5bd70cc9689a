"""Run the benchmark suite: ``python -m benchmarks.run [--quick] [--mode cold|warm|both]``.

The parent process only orchestrates: every measurement runs in a child interpreter
(``--child cold``: one fresh interpreter per timing; ``--child warm``: one interpreter per
workload in which each contender's executor is built once and called repeatedly). Results go to
``--out`` (default ``benchmarks/results/``): ``raw.json``, ``report.md``, ``speedup.png``.
See benchmarks/README.md for what each figure means.
"""

# Imports inside functions are deliberate: a child interpreter imports only what its one
# contender needs (joblib, numpy, amorsize_exec are not free), and pool workers stay light.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks import _load
from benchmarks import contenders as C
from benchmarks import workloads as W

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results"
COLD_TIMEOUT_S = 600
WARM_TIMEOUT_S = 3000
#: Paired rounds per workload and mode. On the full suite (2 cores) one round of auto + loop +
#: the oracle's configuration costs about 48 s cold and 40 s warm against 1,136 s for the whole
#: run: 5 rounds add ~38%. A median of 3 gave way to two slow rounds of 3: small_total warm
#: read auto 28.3 ms against 19.7 ms for the loop (f795253), 19 against 17 ms rerun alone with 5.
DEFAULT_PAIRED_ROUNDS = 5


class ResultMismatch(SystemExit):
    """A contender's results differ from list(map(fn, xs)): the suite stops at once."""


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="the quick subset (< 5 min on 2 cores)")
    p.add_argument("--mode", choices=("cold", "warm", "both"), default="both")
    p.add_argument("--repeats", type=int, default=None, help="timings per figure (default 3)")
    p.add_argument(
        "--paired-rounds",
        type=int,
        default=DEFAULT_PAIRED_ROUNDS,
        metavar="N",
        help="after the grid has chosen the oracle's configuration, time auto, the loop and that "
        "configuration again in N interleaved rounds (A,B,C / B,C,A / ...); regret is judged on "
        f"their medians (default {DEFAULT_PAIRED_ROUNDS}; 0: judge on the grid medians)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    p.add_argument("--workloads", default=None, help="comma-separated names (default: all/quick)")
    p.add_argument(
        "--auto-setting",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a Settings field for AutoExecutor (repeatable); AMORSIZE_EXEC_* env vars "
        "work too",
    )
    p.add_argument(
        "--only",
        default=None,
        help="comma-separated contenders to run (e.g. serial,auto for Settings experiments; "
        "the oracle and regret then cover only what ran)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=_load.QUIET_WAIT_MAX_S,
        metavar="S",
        help="before each timing, wait up to S seconds for other processes to use less than "
        f"{_load.RETRY_ABOVE_CORES} cores (0: never wait)",
    )
    p.add_argument(
        "--quiet-budget",
        type=float,
        default=_load.QUIET_BUDGET_S,
        metavar="S",
        help="total seconds the whole run may spend waiting for a quiet machine",
    )
    p.add_argument(
        "--live-src",
        action="store_true",
        help="import amorsize_exec from src/ as it is when each child starts, instead of a "
        "snapshot taken at the start of the run",
    )
    p.add_argument("--report-only", action="store_true", help="rebuild report/chart from raw.json")
    p.add_argument("--child", choices=("cold", "warm"), help=argparse.SUPPRESS)
    p.add_argument("--workload", help=argparse.SUPPRESS)
    p.add_argument("--specs", help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    out = {}
    for item in args.auto_setting:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--auto-setting wants FIELD=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


# --- children ------------------------------------------------------------------------------


def _child_cold(args: argparse.Namespace) -> int:
    wl = W.WORKLOADS[args.workload]
    spec = C.Spec(**json.loads(args.specs))
    settings = C.auto_settings(_overrides(args)) if spec.kind == "auto" else None
    items = wl.make_items()
    C.preimport(spec)
    for module in wl.imports:
        __import__(module)
    W.iters_per_ms()
    xs = wl.iterable(items)
    meter = _load.Meter(_load.live_tree_cpu_s)
    meter.start()
    started = time.perf_counter()
    results, decision = C.run_cold(spec, wl.fn, xs, settings)
    elapsed = time.perf_counter() - started
    # /proc/stat counts 10 ms ticks: shorter timings cannot be judged
    foreign = meter.stop() if elapsed >= 0.2 else None
    count, digest = W.digest(results)
    Path(args.child_out).write_text(
        json.dumps(
            {
                "t": elapsed,
                "count": count,
                "digest": digest,
                "decision": decision,
                "foreign": foreign,
            }
        )
    )
    return 0


def _child_warm(args: argparse.Namespace) -> int:
    wl = W.WORKLOADS[args.workload]
    specs = [C.Spec(**d) for d in json.loads(args.specs)]
    settings = C.auto_settings(_overrides(args))
    repeats = int(args.repeats)
    items = wl.make_items()
    for module in wl.imports:
        __import__(module)
    reference = list(map(wl.fn, wl.iterable(items)))
    pools: dict[object, Any] = {}
    sessions = [C.WarmSession(s, pools, settings) for s in specs]
    kinds = {s.name: s.kind for s in specs}
    times: dict[str, list[float]] = {s.name: [] for s in specs}
    decisions: dict[str, list[Any]] = {"auto": []}
    capped: dict[str, str] = {}
    loads: dict[str, list[float | None]] = {s.name: [] for s in specs}
    meter = _load.Meter(_load.live_tree_cpu_s)
    retries = 0
    waited = 0.0
    last_load: float | None = None
    warmed: set[object] = set()
    paired: dict[str, Any] = {}

    def timed(session: C.WarmSession, judge: bool, where: str) -> tuple[float, float | None] | None:
        """One call, timed; taken again (twice at most) under foreign load when ``judge``.
        Returns (seconds, foreign load), or None if the results differ from the loop's. The
        results are dropped here, before the next call (see below)."""
        nonlocal retries, waited, last_load
        results: list[Any] = []
        elapsed, load = 0.0, None
        for _attempt in range(_load.MAX_RETRIES + 1):
            if judge and not (last_load is not None and last_load <= _load.QUIET):
                wait = min(args.quiet_wait, args.quiet_budget - waited)
                waited += _load.wait_for_quiet(_load.live_tree_cpu_s, wait)
            # Free the previous call's results first: holding 200 MB of big_results
            # while the next call allocates made glibc hand out fresh pages to one
            # call and reused ones to the next (40 vs 160 ms for the same code).
            results = []
            meter.start()
            started = time.perf_counter()
            results = session.call(wl.fn, wl.iterable(items))
            elapsed = time.perf_counter() - started
            # /proc/stat counts 10 ms ticks: shorter calls cannot be judged
            load = meter.stop() if elapsed >= 0.2 else None
            last_load = load
            if not judge or load is None or load <= _load.RETRY_ABOVE_CORES:
                break
            retries += 1
        if results == reference:
            return elapsed, load
        print(
            f"RESULT MISMATCH: {wl.name}/{session.spec.name} (warm, {where}): "
            f"{len(results)} results vs {len(reference)} from list(map(...))",
            file=sys.stderr,
        )
        return None

    try:
        for rnd in range(repeats + 1):  # round 0 warms every executor up and is not timed
            if rnd == 2:
                capped = C.hopeless({n: t[0] for n, t in times.items() if t}, kinds)
            order = sessions[rnd % len(sessions) :] + sessions[: rnd % len(sessions)]
            for session in order:
                if session.spec.name in capped:
                    continue
                if rnd == 0 and (not session.needs_warmup or session.pool_key in warmed):
                    # warm already: the reference run, a pre-started thread pool, or the same
                    # process pool's warm-up
                    continue
                if rnd == 0 and session.pool_key is not None:
                    warmed.add(session.pool_key)
                got = timed(session, rnd > 0, f"round {rnd}")
                if got is None:
                    return 3
                elapsed, load = got
                name = session.spec.name
                if rnd > 0:
                    times[name].append(elapsed)
                    loads[name].append(load)
                    if name == "auto":
                        decisions["auto"].append(session.decision())
                elif name == "auto":
                    decisions.setdefault("auto_first_call", []).append(session.decision())
        # Paired rounds: the grid has chosen the oracle's configuration; time auto, the loop and
        # that configuration again, interleaved, on the same (warm) executors.
        by_name = {s.spec.name: s for s in sessions}
        best = C.oracle_choice(
            {n: (statistics.median(t) if t else None) for n, t in times.items()}, kinds
        )
        if args.paired_rounds > 0 and best is not None and "auto" in by_name:
            names = list(dict.fromkeys(["auto", "serial", best]))
            paired = {
                "config": best,
                "rounds": args.paired_rounds,
                "times": {n: [] for n in names},
                "foreign": {n: [] for n in names},
                "orders": [],
                "decisions": [],
            }
            for rnd in range(args.paired_rounds):
                order = C.paired_order(names, rnd)
                paired["orders"].append(order)
                for name in order:
                    got = timed(by_name[name], True, f"paired round {rnd + 1}")
                    if got is None:
                        return 3
                    elapsed, load = got
                    paired["times"][name].append(elapsed)
                    paired["foreign"][name].append(load)
                    if name == "auto":
                        paired["decisions"].append(by_name[name].decision())
    finally:
        for session in sessions:
            session.close()
        for pool in pools.values():
            pool.shutdown(wait=True)
    Path(args.child_out).write_text(
        json.dumps(
            {
                "times": times,
                "decisions": decisions,
                "capped": capped,
                "foreign": loads,
                "retries": retries,
                "waited_s": waited,
                "paired": paired,
            }
        )
    )
    return 0


def _spawn_child(
    argv: list[str], timeout: float
) -> tuple[dict[str, Any] | None, str, float, float | None]:
    """Run a child; return its JSON (None on failure), an error text, its process wall time and
    the foreign CPU load (cores) the child measured around its timing (cold children only)."""
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as tmp:
        out_path = tmp.name
    cmd = [sys.executable, "-m", "benchmarks.run", *argv, "--child-out", out_path]
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        Path(out_path).unlink(missing_ok=True)
        return None, f"timeout after {timeout:.0f} s", time.perf_counter() - started, None
    wall = time.perf_counter() - started
    try:
        if proc.returncode == 3:
            raise ResultMismatch(proc.stderr.strip()[-2000:])
        if proc.returncode != 0:
            return None, f"exit {proc.returncode}: {proc.stderr.strip()[-1500:]}", wall, None
        data = json.loads(Path(out_path).read_text())
        return data, "", wall, data.get("foreign") if isinstance(data, dict) else None
    finally:
        Path(out_path).unlink(missing_ok=True)


# --- the parent -------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    import multiprocessing

    import loky

    info: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "os_cpu_count": os.cpu_count(),
        "loky_cpu_count": loky.cpu_count(),
        "loky_physical_cores": loky.cpu_count(only_physical_cores=True),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "start_method": multiprocessing.get_start_method(),
        "spin_iters_per_ms": W.iters_per_ms(),
    }
    versions = {}
    for mod in ("amorsize_exec", "loky", "joblib", "numpy", "cloudpickle"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception as exc:  # pragma: no cover - report what is missing
            versions[mod] = f"unavailable: {exc}"
    info["versions"] = versions
    try:
        import psutil

        info["memory_total_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # pragma: no cover
        pass
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: d.get(k) for k in ("internal_api", "num_threads", "version")}
            for d in threadpool_info()
        ]
    except Exception:  # pragma: no cover
        pass
    info["amorsize_env"] = {k: v for k, v in os.environ.items() if k.startswith("AMORSIZE_EXEC_")}
    return info


def _tree_sha256(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def snapshot_source(enabled: bool) -> dict[str, Any]:
    """Freeze the amorsize_exec source for the whole run.

    The package is installed editable, so a child interpreter imports whatever is in src/ when
    it starts: a commit landing mid-run would mix two versions in one report. The source is
    copied to a temporary directory put first on PYTHONPATH, which every child and pool worker
    inherits; the report records the commit and a hash of what was measured.
    """
    import amorsize_exec

    live = Path(amorsize_exec.__file__).resolve().parent
    info: dict[str, Any] = {"live_path": str(live), "sha256": _tree_sha256(live)}
    try:
        git = ["git", "-C", str(live)]
        info["git_head"] = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        info["src_dirty"] = bool(
            subprocess.run(
                [*git, "status", "--porcelain", "--", str(live)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        info["git_head"] = None
    if enabled:
        tmp = Path(tempfile.mkdtemp(prefix="amorsize-bench-src-"))
        shutil.copytree(live, tmp / "amorsize_exec", ignore=shutil.ignore_patterns("__pycache__"))
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(tmp), os.environ.get("PYTHONPATH", "")) if p
        )
        info["snapshot"] = str(tmp)
    return info


def _select(args: argparse.Namespace) -> list[W.Workload]:
    if args.workloads:
        names = [n.strip() for n in args.workloads.split(",") if n.strip()]
        unknown = [n for n in names if n not in W.WORKLOADS]
        if unknown:
            raise SystemExit(f"unknown workloads {unknown}; known: {list(W.WORKLOADS)}")
        return [W.WORKLOADS[n] for n in names]
    return [w for w in W.WORKLOADS.values() if not w.extra and (w.quick or not args.quick)]


def _specs(wl: W.Workload, cores: int, args: argparse.Namespace) -> list[C.Spec]:
    specs = C.specs_for(wl.n, cores, args.quick)
    if args.only:
        keep = {n.strip() for n in args.only.split(",")} | {"serial"}
        specs = [s for s in specs if s.name in keep]
    return specs


def _settings_argv(args: argparse.Namespace) -> list[str]:
    out = []
    for item in args.auto_setting:
        out += ["--auto-setting", item]
    return out


def _waited_total(args: argparse.Namespace) -> float:
    return float(getattr(args, "quiet_waited", 0.0))


def _empty_entry(spec: C.Spec) -> dict[str, Any]:
    return {
        "spec": spec.as_dict(),
        "times": [],
        "proc_wall": [],
        "foreign": [],
        "errors": [],
        "decisions": [],
        "capped": None,
    }


def _fresh_profile_cache() -> str:
    """Remembered profiles (``amorsize_exec._profile_store``) in a directory of this run's own,
    inherited by every child: a workload's first cold timing finds nothing remembered, the
    later ones what the earlier ones wrote, as a script run again would; never the profiles of
    the user's own scripts or of an earlier benchmark run. ``AMORSIZE_EXEC_CACHE_DIR`` set by
    the caller is kept (``AMORSIZE_EXEC_REMEMBER_PROFILES=0``: none at all)."""
    if os.environ.get("AMORSIZE_EXEC_REMEMBER_PROFILES") == "0":
        return "off (AMORSIZE_EXEC_REMEMBER_PROFILES=0)"
    if "AMORSIZE_EXEC_CACHE_DIR" in os.environ:
        return f"the caller's AMORSIZE_EXEC_CACHE_DIR ({os.environ['AMORSIZE_EXEC_CACHE_DIR']})"
    os.environ["AMORSIZE_EXEC_CACHE_DIR"] = tempfile.mkdtemp(prefix="amorsize-bench-profiles-")
    return "a directory fresh at the start of this run"


def run_cold(
    args: argparse.Namespace, workloads: list[W.Workload], cores: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The grid (every contender, ``--repeats`` rounds), then the paired rounds; returns both."""
    out: dict[str, Any] = {}
    retries = [0]
    waited = [0.0]
    last_load: list[float | None] = [None]
    digests: dict[str, list[Any]] = {}

    def timed(wl: W.Workload, spec: C.Spec) -> tuple[dict[str, Any] | None, str, float, Any]:
        """One timing in a fresh interpreter; taken again (twice at most) under foreign load.
        Stops the suite if the results differ from the loop's."""
        argv = [
            "--child",
            "cold",
            "--workload",
            wl.name,
            "--specs",
            json.dumps(spec.as_dict()),
            *_settings_argv(args),
        ]
        for _attempt in range(_load.MAX_RETRIES + 1):
            if not (last_load[0] is not None and last_load[0] <= _load.QUIET):
                wait = min(args.quiet_wait, args.quiet_budget - _waited_total(args))
                waited[0] += (w := _load.wait_for_quiet(_load.self_cpu_s, wait))
                args.quiet_waited += w
            data, err, wall, load = _spawn_child(argv, COLD_TIMEOUT_S)
            last_load[0] = load
            if data is None or load is None or load <= _load.RETRY_ABOVE_CORES:
                break
            retries[0] += 1
        if data is not None:
            ref = digests.get(wl.name)
            if spec.name == "serial" and ref is None:
                digests[wl.name] = ref = [data["count"], data["digest"]]
            if ref is not None and [data["count"], data["digest"]] != ref:
                raise ResultMismatch(
                    f"RESULT MISMATCH: {wl.name}/{spec.name} (cold): {data['count']} results, "
                    f"digest {data['digest'][:12]} vs list(map(...)) {ref[0]}, {ref[1][:12]}"
                )
        return data, err, wall, load

    for wl in workloads:
        out[wl.name] = {s.name: _empty_entry(s) for s in _specs(wl, cores, args)}
    for rnd in range(args.repeats):
        for wl in workloads:
            entries = out[wl.name]
            if rnd == 1:
                for name, why in C.hopeless(
                    {n: e["times"][0] for n, e in entries.items() if e["times"]},
                    {n: e["spec"]["kind"] for n, e in entries.items()},
                ).items():
                    entries[name]["capped"] = why
            specs = [
                s
                for s in _specs(wl, cores, args)
                if s.skip is None and entries[s.name]["capped"] is None
            ]
            rest = specs[1:]
            k = rnd % max(1, len(rest))
            order = [specs[0], *rest[k:], *rest[:k]]  # serial first (the reference), then rotated
            line = []
            for spec in order:
                data, err, wall, load = timed(wl, spec)
                entry = out[wl.name][spec.name]
                entry["proc_wall"].append(wall)
                if data is None:
                    entry["errors"].append(err)
                    print(f"  ERROR cold {wl.name}/{spec.name}: {err}", flush=True)
                    continue
                if spec.name == "serial" and "digest" not in entry:
                    entry["digest"] = digests.get(wl.name)
                entry["times"].append(data["t"])
                entry["foreign"].append(load)
                if data.get("decision") is not None:
                    entry["decisions"].append(data["decision"])
                line.append(f"{spec.name}={data['t']:.3f}")
            print(f"[cold {rnd + 1}/{args.repeats}] {wl.name}: " + " ".join(line), flush=True)
    # Paired rounds: the grid has chosen each workload's oracle configuration; time auto, the
    # loop and that configuration again, interleaved (A,B,C / B,C,A / ...), one interpreter each.
    paired: dict[str, Any] = {}
    for wl in workloads:
        entries = out[wl.name]
        best = C.oracle_choice(
            {
                n: (statistics.median(e["times"]) if e["times"] else None)
                for n, e in entries.items()
            },
            {n: e["spec"]["kind"] for n, e in entries.items()},
        )
        if args.paired_rounds > 0 and best is not None and "auto" in entries:
            names = list(dict.fromkeys(["auto", "serial", best]))
            paired[wl.name] = {
                "config": best,
                "rounds": args.paired_rounds,
                "times": {n: [] for n in names},
                "proc_wall": {n: [] for n in names},
                "foreign": {n: [] for n in names},
                "orders": [],
                "decisions": [],
                "errors": {},
            }
    for rnd in range(args.paired_rounds):
        for wl in workloads:
            if wl.name not in paired:
                continue
            p = paired[wl.name]
            order = C.paired_order(list(p["times"]), rnd)
            p["orders"].append(order)
            line = []
            for name in order:
                data, err, wall, load = timed(wl, C.Spec(**out[wl.name][name]["spec"]))
                p["proc_wall"][name].append(wall)
                if data is None:
                    p["errors"].setdefault(name, []).append(err)
                    print(f"  ERROR cold paired {wl.name}/{name}: {err}", flush=True)
                    continue
                p["times"][name].append(data["t"])
                p["foreign"][name].append(load)
                if name == "auto" and data.get("decision") is not None:
                    p["decisions"].append(data["decision"])
                line.append(f"{name}={data['t']:.3f}")
            print(
                f"[cold paired {rnd + 1}/{args.paired_rounds}] {wl.name}: " + " ".join(line),
                flush=True,
            )
    print(
        f"cold: {retries[0]} timings re-taken because of foreign CPU load; "
        f"{waited[0]:.0f} s spent waiting for a quiet machine",
        flush=True,
    )
    args.load_stats["cold"] = {"retries": retries[0], "waited_s": round(waited[0], 1)}
    return out, paired


def run_warm(
    args: argparse.Namespace, workloads: list[W.Workload], cores: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One warm child per workload: the grid, then the paired rounds; returns both."""
    out: dict[str, Any] = {}
    paired: dict[str, Any] = {}
    for wl in workloads:
        all_specs = _specs(wl, cores, args)
        out[wl.name] = {s.name: _empty_entry(s) for s in all_specs}
        specs = [s for s in all_specs if s.skip is None]
        argv = [
            "--child",
            "warm",
            "--workload",
            wl.name,
            "--repeats",
            str(args.repeats),
            "--paired-rounds",
            str(args.paired_rounds),
            "--specs",
            json.dumps([s.as_dict() for s in specs]),
            "--quiet-wait",
            str(args.quiet_wait),
            "--quiet-budget",
            str(max(0.0, args.quiet_budget - _waited_total(args))),
            *_settings_argv(args),
        ]
        data, err, wall, _ = _spawn_child(argv, WARM_TIMEOUT_S)
        if data is None:
            for s in specs:
                out[wl.name][s.name]["errors"].append(err)
            print(f"  ERROR warm {wl.name}: {err}", flush=True)
            continue
        for name, times in data["times"].items():
            out[wl.name][name]["times"] = times
            out[wl.name][name]["foreign"] = data["foreign"].get(name, [])
        for name, why in data.get("capped", {}).items():
            out[wl.name][name]["capped"] = why
        stats = args.load_stats.setdefault("warm", {"retries": 0, "waited_s": 0.0})
        stats["retries"] += data["retries"]
        stats["waited_s"] = round(stats["waited_s"] + data["waited_s"], 1)
        args.quiet_waited += data["waited_s"]
        out[wl.name]["auto"]["decisions"] = data["decisions"].get("auto", [])
        out[wl.name]["auto"]["first_call_decisions"] = data["decisions"].get("auto_first_call", [])
        meds = {n: sorted(t)[len(t) // 2] for n, t in data["times"].items() if t}
        print(
            f"[warm] {wl.name} ({wall:.1f} s, {data['retries']} re-timed for foreign load, "
            f"{data['waited_s']:.0f} s waited for quiet): "
            + " ".join(f"{n}={v:.3f}" for n, v in meds.items()),
            flush=True,
        )
        if data.get("paired"):
            paired[wl.name] = data["paired"]
            pm = {n: statistics.median(t) for n, t in data["paired"]["times"].items() if t}
            print(
                f"[warm paired x{data['paired']['rounds']}] {wl.name}: "
                + " ".join(f"{n}={v:.3f}" for n, v in pm.items()),
                flush=True,
            )
    return out, paired


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.child == "cold":
        return _child_cold(args)
    if args.child == "warm":
        return _child_warm(args)

    from benchmarks import report

    args.out.mkdir(parents=True, exist_ok=True)
    raw_path = args.out / "raw.json"
    if args.report_only:
        raw = json.loads(raw_path.read_text())
        return report.write_all(raw, args.out)

    if args.repeats is None:
        args.repeats = 3  # 5 made the full suite 27 min on 2 cores (limit 20)
    source = snapshot_source(not args.live_src)
    W.ensure_calibrated()  # before any child exists: all inherit the same spin rate
    args.load_stats = {}
    args.quiet_waited = 0.0
    cores = C.usable_cores()
    workloads = _select(args)
    modes = ["cold", "warm"] if args.mode == "both" else [args.mode]
    raw: dict[str, Any] = {
        "machine": machine_info(),
        "source": source,
        "config": {
            "quick": args.quick,
            "modes": modes,
            "repeats": args.repeats,
            "paired_rounds": args.paired_rounds,
            "cores": cores,
            "auto_settings": _overrides(args),
            "only": args.only,
            "command": " ".join(
                [
                    Path(sys.executable).name,
                    "-m",
                    "benchmarks.run",
                    *(argv if argv is not None else sys.argv[1:]),
                ]
            ),
        },
        "workloads": {
            w.name: {"n": w.n, "description": w.description, "generator": w.generator}
            for w in workloads
        },
        "results": {},
        "paired": {},
    }
    raw["config"]["profile_cache"] = _fresh_profile_cache()
    raw["machine"]["capacity_start"] = W.parallel_capacity(cores)
    print(
        f"machine: {raw['machine']['os_cpu_count']} CPUs (loky {cores}), "
        f"parallel capacity {raw['machine']['capacity_start']['capacity']:.2f} "
        f"(rounds {raw['machine']['capacity_start']['rounds']}), "
        f"Python {raw['machine']['python']}, spin {W.iters_per_ms():.0f} iterations/ms; "
        f"{len(workloads)} workloads, modes {modes}, repeats {args.repeats}",
        flush=True,
    )
    suite_started = time.perf_counter()
    for mode in modes:
        started = time.perf_counter()
        runner = run_cold if mode == "cold" else run_warm
        raw["results"][mode], raw["paired"][mode] = runner(args, workloads, cores)
        raw["config"][f"{mode}_elapsed_s"] = round(time.perf_counter() - started, 1)
        raw["config"]["foreign_load"] = args.load_stats
        print(f"{mode} mode took {raw['config'][f'{mode}_elapsed_s']:.0f} s", flush=True)
        raw_path.write_text(json.dumps(raw, indent=1))
    raw["machine"]["capacity_end"] = W.parallel_capacity(cores)
    print(
        f"parallel capacity at the end: {raw['machine']['capacity_end']['capacity']:.2f} "
        f"(rounds {raw['machine']['capacity_end']['rounds']})",
        flush=True,
    )
    raw["config"]["elapsed_s"] = round(time.perf_counter() - suite_started, 1)
    live_now = _tree_sha256(Path(source["live_path"]))
    source["live_changed_during_run"] = live_now != source["sha256"]
    if source.get("snapshot"):
        shutil.rmtree(source["snapshot"], ignore_errors=True)
    if source["live_changed_during_run"]:
        print(
            "note: src/ changed during the run"
            + (
                " (the run used the snapshot taken at its start)"
                if source.get("snapshot")
                else " and --live-src was given: results mix versions"
            ),
            flush=True,
        )
    raw_path.write_text(json.dumps(raw, indent=1))
    return report.write_all(raw, args.out)


if __name__ == "__main__":
    sys.exit(main())
