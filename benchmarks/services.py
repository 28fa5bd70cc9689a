"""``AutoExecutor.submit`` for services: ``python -m benchmarks.services [--quick] [--mode ...]``.

Scenarios (see ``SCENARIOS``), each timed side by side with ``ProcessPoolExecutor()`` (default
workers, the stdlib's default context), a plain loop (the calls made directly, in the calling
thread) and, where named, ``ThreadPoolExecutor(max_workers=1)``:

* ``submit_cpu_10ms``    300 submits of a 10 ms CPU-bound call, then wait for all results;
* ``threads_8x100_5ms``  8 client threads, each submits 100 calls of 5 ms and waits for them;
* ``asyncio_200_5ms``    ``loop.run_in_executor(executor, f)`` x 200 (5 ms each), gathered;
* ``trivial_2000``       2,000 submits of ``square(x)``, then wait (target: <= 1.5x TPE(1));
* ``submit_return_300``  time for 300 ``submit()`` calls of the 10 ms function to *return*
  (target < 50 ms); completion is waited for outside the timing;
* ``latency_cheap``      submit + ``.result()`` of a ~0.1 ms call, one at a time, 300 times:
  p50 and p90 per call (target, warm: AutoExecutor p50 <= loop p50 + 0.2 ms).

Modes: *cold*, each timing in a fresh interpreter, the executor built and shut down inside the
timing (imports outside it); *warm*, one interpreter per scenario, one executor per contender
built before the rounds and reused, the first round discarded. Contenders are interleaved
(order rotated each round) and every figure is a median of the rounds. The helpers of
``benchmarks.run`` freeze the source measured and record the machine; ``benchmarks._load``
re-times a timing taken while other processes used the CPU. See benchmarks/README.md.
"""

# Imports inside functions are deliberate: a child interpreter imports only what it needs, and
# pool workers (which import this module to find the submitted functions) stay light.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python benchmarks/services.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks import _load
from benchmarks import workloads as W
from benchmarks.report import fmt_s

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "services"
#: A timing not over after this long is a hang: the child prints every thread's stack and exits
#: (the error in the report names the library frames it was stuck in).
TIMING_LIMIT_S = 30
#: Backstops of the parent (a cold child makes up to 3 attempts, each under TIMING_LIMIT_S).
COLD_TIMEOUT_S = 4 * TIMING_LIMIT_S
WARM_TIMEOUT_S = 900

#: No user notices 10 ms: AutoExecutor within this of a contender is marked "≈" in the table.
GRACE_S = 0.010
#: trivial_2000: AutoExecutor <= this x ThreadPoolExecutor(1).
TRIVIAL_VS_TPE1 = 1.5
#: submit_return_300: 300 submits return in less than this.
SUBMIT_RETURN_MAX_S = 0.050
#: latency_cheap (warm): AutoExecutor p50 <= loop p50 + this.
LATENCY_SLACK_S = 0.0002

#: Default rounds per mode, and with ``--quick``.
ROUNDS = {"warm": 5, "cold": 3}
QUICK_ROUNDS = 2

CONTENDERS = {
    "auto": "AutoExecutor",
    "ppe": "PPE",
    "tpe1": "TPE(1)",
    "loop": "loop",
}


# --- what is submitted (top level: pool workers import it from here) --------------------------
# The CPU-bound calls return (i, pid) so the report can say where AutoExecutor ran them.


def burn_10ms(i: int) -> tuple[int, int]:
    W.spin(10.0)
    return i, os.getpid()


def burn_5ms(i: int) -> tuple[int, int]:
    W.spin(5.0)
    return i, os.getpid()


def burn_0p1ms(i: int) -> tuple[int, int]:
    W.spin(0.1)
    return i, os.getpid()


def square(x: int) -> int:
    return x * x


# --- scenarios ------------------------------------------------------------------------------


class _Use:
    """The executor one timing uses: built on entry and shut down on exit (cold: inside the
    timing, as a script does), or one built beforehand and kept (warm). ``None`` is the loop."""

    def __init__(self, make: Callable[[], Executor | None] | None, ex: Executor | None = None):
        self._make = make
        self.ex = ex

    def __enter__(self) -> Executor | None:
        if self._make is not None:
            self.ex = self._make()
        return self.ex

    def __exit__(self, *exc: object) -> None:
        if self._make is not None and self.ex is not None:
            self.ex.shutdown(wait=True)


@dataclass
class Outcome:
    """One timing: the figure ``t`` (seconds), the results, per-call latencies if measured."""

    t: float
    results: list[Any]
    latencies: list[float] | None = None


def _submit_all(ex: Executor | None, fn: Callable[[int], Any], n: int, first: int = 0) -> list[Any]:
    if ex is None:
        return [fn(i) for i in range(first, first + n)]
    futures = [ex.submit(fn, i) for i in range(first, first + n)]
    return [f.result() for f in futures]


def run_submit_cpu(use: _Use) -> Outcome:
    started = time.perf_counter()
    with use as ex:
        results = _submit_all(ex, burn_10ms, 300)
    return Outcome(time.perf_counter() - started, results)


def run_threads(use: _Use) -> Outcome:
    clients, per_client = 8, 100
    out: list[list[Any]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def client(k: int, ex: Executor | None) -> None:
        try:
            out[k] = _submit_all(ex, burn_5ms, per_client, first=k * per_client)
        except BaseException as exc:
            errors.append(exc)

    started = time.perf_counter()
    with use as ex:
        threads = [threading.Thread(target=client, args=(k, ex)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return Outcome(elapsed, [r for rs in out for r in rs])


async def _gather(ex: Executor | None, n: int) -> list[Any]:
    if ex is None:  # the loop: the calls made in the coroutine, blocking the event loop
        return [burn_5ms(i) for i in range(n)]
    loop = asyncio.get_running_loop()
    return list(await asyncio.gather(*(loop.run_in_executor(ex, burn_5ms, i) for i in range(n))))


def run_asyncio(use: _Use) -> Outcome:
    started = time.perf_counter()
    with use as ex:
        results = asyncio.run(_gather(ex, 200))
    return Outcome(time.perf_counter() - started, results)


def run_trivial(use: _Use) -> Outcome:
    started = time.perf_counter()
    with use as ex:
        results = _submit_all(ex, square, 2000)
    return Outcome(time.perf_counter() - started, results)


def run_submit_return(use: _Use) -> Outcome:
    started = time.perf_counter()
    with use as ex:  # cold: building the executor is part of "submit returns"
        assert ex is not None
        futures = [ex.submit(burn_10ms, i) for i in range(300)]
        elapsed = time.perf_counter() - started
        results = [f.result() for f in futures]
    return Outcome(elapsed, results)


def run_latency(use: _Use) -> Outcome:
    latencies = []
    results = []
    started = time.perf_counter()
    with use as ex:
        for i in range(300):
            t0 = time.perf_counter()
            r = burn_0p1ms(i) if ex is None else ex.submit(burn_0p1ms, i).result()
            latencies.append(time.perf_counter() - t0)
            results.append(r)
    return Outcome(time.perf_counter() - started, results, latencies)


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[_Use], Outcome]
    expected: Callable[[], list[Any]]  # results, with the (i, pid) calls reduced to i
    contenders: tuple[str, ...]
    description: str


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            "submit_cpu_10ms",
            run_submit_cpu,
            lambda: list(range(300)),
            ("auto", "ppe", "loop"),
            "300 submits of a 10 ms CPU call, then wait for all",
        ),
        Scenario(
            "threads_8x100_5ms",
            run_threads,
            lambda: list(range(800)),
            ("auto", "ppe", "loop"),
            "8 client threads x 100 submits of 5 ms CPU, each waits for its own",
        ),
        Scenario(
            "asyncio_200_5ms",
            run_asyncio,
            lambda: list(range(200)),
            ("auto", "ppe", "loop"),
            "loop.run_in_executor(ex, f) x 200 of 5 ms CPU, gathered",
        ),
        Scenario(
            "trivial_2000",
            run_trivial,
            lambda: [x * x for x in range(2000)],
            ("auto", "ppe", "tpe1", "loop"),
            "2,000 submits of square(x), then wait",
        ),
        Scenario(
            "submit_return_300",
            run_submit_return,
            lambda: list(range(300)),
            ("auto", "ppe"),
            "time for 300 submit() of the 10 ms call to return (completion not timed)",
        ),
        Scenario(
            "latency_cheap",
            run_latency,
            lambda: list(range(300)),
            ("auto", "ppe", "loop"),
            "submit + result() of a 0.1 ms call, one at a time, x 300: per-call p50/p90",
        ),
    ]
}


def _executor_factory(contender: str, auto_kwargs: dict[str, Any]) -> Callable[[], Executor | None]:
    if contender == "auto":
        from amorsize_exec import AutoExecutor

        kwargs = dict(auto_kwargs)
        if isinstance(kwargs.get("settings"), dict):  # {"settings": {"field": value}}
            from amorsize_exec import Settings

            kwargs["settings"] = Settings.from_env().replace(**kwargs["settings"])
        return lambda: AutoExecutor(**kwargs)
    if contender == "ppe":
        return ProcessPoolExecutor
    if contender == "tpe1":
        return lambda: ThreadPoolExecutor(max_workers=1)
    if contender == "loop":
        return lambda: None
    raise ValueError(contender)


def _watchdog(seconds: int) -> None:
    """After ``seconds`` (0: never), dump every thread's stack and exit with status 3.

    A SIGALRM, not ``faulthandler.dump_traceback_later``: that starts a watchdog thread, and a
    process running a thread makes AutoExecutor start its pool through loky's fork + exec
    (~0.25 s) instead of forking it (~15 ms), as it would in the script measured.
    """
    signal.signal(signal.SIGALRM, _on_hang)
    signal.alarm(seconds)


def _on_hang(signum: int, frame: object) -> None:
    sys.stderr.write(f"Timeout ({TIMING_LIMIT_S} s)!\n")  # what _failure looks for
    sys.stderr.flush()
    faulthandler.dump_traceback(all_threads=True)
    os._exit(3)


def _measure(scenario: Scenario, use: _Use, ours: Callable[[], float]) -> dict[str, Any]:
    """One timing: the figure, where the calls ran, AutoExecutor's last decision, the foreign
    load over the whole run (``None`` under 0.2 s: /proc/stat counts 10 ms ticks)."""
    meter = _load.Meter(ours)
    meter.start()
    started = time.perf_counter()
    _watchdog(TIMING_LIMIT_S)
    try:
        out = scenario.run(use)
    finally:
        _watchdog(0)
    wall = time.perf_counter() - started
    foreign = meter.stop() if wall >= 0.2 else None
    me = os.getpid()
    pids = [r[1] for r in out.results if isinstance(r, tuple)]
    values = [r[0] if isinstance(r, tuple) else r for r in out.results]
    if values != scenario.expected():
        print(f"RESULT MISMATCH: {scenario.name}: {len(values)} results", file=sys.stderr)
        raise SystemExit(3)
    record = getattr(use.ex, "last_decision", None)
    row: dict[str, Any] = {
        "t": out.t,
        "wall": wall,
        "foreign": foreign,
        "in_pool": sum(p != me for p in pids) / len(pids) if pids else None,
        "decision": record.summary() if record is not None else None,
    }
    if out.latencies is not None:
        lat = sorted(out.latencies)
        row["p50"] = statistics.median(lat)
        row["p90"] = lat[int(0.9 * (len(lat) - 1))]
        row["max"] = lat[-1]
    return row


def _measure_retrying(
    scenario: Scenario, make_use: Callable[[], _Use], ours: Callable[[], float]
) -> tuple[dict[str, Any], int]:
    """``_measure``, taken again (twice at most) while other processes loaded the CPU; the
    number of timings taken again."""
    retries = 0
    while True:
        row = _measure(scenario, make_use(), ours)
        if row["foreign"] is None or row["foreign"] <= _load.RETRY_ABOVE_CORES:
            return row, retries
        if retries == _load.MAX_RETRIES:
            return row, retries
        retries += 1


# --- children ---------------------------------------------------------------------------------


def _child_cold(args: argparse.Namespace) -> dict[str, Any]:
    scenario = SCENARIOS[args.scenario]
    make = _executor_factory(args.contender, json.loads(args.auto_kwargs))
    W.iters_per_ms()
    row, retries = _measure_retrying(scenario, lambda: _Use(make), _load.live_tree_cpu_s)
    row["retries"] = retries
    return row


def _child_warm(args: argparse.Namespace) -> dict[str, Any]:
    """All rounds of one scenario; the state so far is written after every timing, so that a
    hang (the watchdog exits the process) still tells the parent which contender hung."""
    scenario = SCENARIOS[args.scenario]
    auto_kwargs = json.loads(args.auto_kwargs)
    names = args.contenders.split(",") if args.contenders else list(scenario.contenders)
    W.iters_per_ms()
    executors = {c: _executor_factory(c, auto_kwargs)() for c in names}
    state: dict[str, Any] = {
        "rows": {c: [] for c in names},
        "retries": 0,
        "waited_s": 0.0,
        "running": None,
    }
    progress = Path(args.child_out)
    last_load: float | None = None
    for rnd in range(args.rounds + 1):  # round 0 warms every executor up: discarded
        k = rnd % len(names)
        for contender in names[k:] + names[:k]:
            if rnd > 0 and not (last_load is not None and last_load <= _load.QUIET):
                wait = min(args.quiet_wait, args.quiet_budget - state["waited_s"])
                state["waited_s"] += _load.wait_for_quiet(_load.live_tree_cpu_s, wait)
            state["running"] = f"{contender}, round {rnd}"
            progress.write_text(json.dumps(state))
            ex = executors[contender]
            if rnd == 0:
                row, n = _measure(scenario, _Use(None, ex), _load.live_tree_cpu_s), 0
            else:
                row, n = _measure_retrying(
                    scenario, lambda ex=ex: _Use(None, ex), _load.live_tree_cpu_s
                )
            state["retries"] += n
            last_load = row["foreign"]
            row["round"] = rnd
            state["rows"][contender].append(row)
    for contender, ex in executors.items():
        if ex is not None:
            state["running"] = f"{contender}, shutdown"
            progress.write_text(json.dumps(state))
            _watchdog(TIMING_LIMIT_S)
            ex.shutdown(wait=True)
            _watchdog(0)
    state["running"] = None
    return state


def _failure(returncode: int, stderr: str) -> str:
    """What went wrong in a child, in one line: for a hang (the watchdog's dump), the
    amorsize_exec frames of each thread stuck in the library, innermost first."""
    if "Timeout (" not in stderr:
        return f"exit {returncode}: {stderr.strip()[-1500:]}"
    stuck = []
    for block in re.split(r"\n(?=(?:Current thread|Thread) 0x)", stderr):
        frames = re.findall(r'File "[^"]*amorsize_exec/([^"]+)", line (\d+) in (\w+)', block)
        if frames:
            stuck.append(" <- ".join(f"{f}:{n} {fn}" for f, n, fn in frames[:8]))
    where = " | ".join(stuck) or "no amorsize_exec frame"
    return f"hung: not done after {TIMING_LIMIT_S:.0f} s; stuck in {where}"


def _spawn(
    argv: list[str], timeout: float
) -> tuple[dict[str, Any] | None, str, float, dict[str, Any] | None]:
    """Run ``python -m benchmarks.services --child ...``; its JSON (None on failure), an error
    text, its wall time, and on failure what the child had written so far (warm children write
    their progress) with its stderr.

    The child's output goes to a file, not a pipe: worker processes orphaned by a child that
    died hung would hold a pipe open and block the parent. The child runs in a session of its
    own, and when it fails its session (its own pool workers, resource trackers) is killed.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as tmp:
        out_path = Path(tmp.name)
    cmd = [sys.executable, "-m", "benchmarks.services", *argv, "--child-out", str(out_path)]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            try:
                code: int | None = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                code = None
            wall = time.perf_counter() - started
            if code == 0:
                return json.loads(out_path.read_text()), "", wall, None
            _kill_session(proc)
            log.seek(0)
            stderr = log.read()
            if code == 3:
                raise SystemExit(stderr.strip()[-2000:])
            err = f"timeout after {timeout:.0f} s" if code is None else _failure(code, stderr)
            return None, err, wall, _partial(out_path, stderr)
        except BaseException:
            _kill_session(proc)
            raise
        finally:
            out_path.unlink(missing_ok=True)


def _kill_session(proc: subprocess.Popen[Any]) -> None:
    """Kill a failed child's session: the child and what it started, nothing else."""
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _partial(path: Path, stderr: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data["stderr"] = stderr[-8000:]
    return data


# --- the parent -------------------------------------------------------------------------------


def _entry() -> dict[str, Any]:
    return {"rows": [], "proc_wall": [], "errors": [], "stderr": []}


def run_cold(args: argparse.Namespace, scenarios: list[Scenario]) -> dict[str, Any]:
    out = {s.name: {c: _entry() for c in s.contenders} for s in scenarios}
    last_load: float | None = None
    stats = args.load_stats.setdefault("cold", {"retries": 0, "waited_s": 0.0})
    hung: set[tuple[str, str]] = set()  # not run again in later rounds
    for rnd in range(args.rounds):
        for scenario in scenarios:
            names = list(scenario.contenders)
            k = rnd % len(names)
            line = []
            for contender in names[k:] + names[:k]:
                if (scenario.name, contender) in hung:
                    continue
                if not (last_load is not None and last_load <= _load.QUIET):
                    wait = min(args.quiet_wait, args.quiet_budget - args.quiet_waited)
                    w = _load.wait_for_quiet(_load.self_cpu_s, wait)
                    args.quiet_waited += w
                    stats["waited_s"] = round(stats["waited_s"] + w, 1)
                argv = ["--child", "cold", "--scenario", scenario.name, "--contender", contender]
                data, err, wall, partial = _spawn(
                    [*argv, "--auto-kwargs", args.auto_kwargs], COLD_TIMEOUT_S
                )
                entry = out[scenario.name][contender]
                entry["proc_wall"].append(wall)
                if data is None:
                    entry["errors"].append(f"round {rnd + 1}: {err}")
                    entry["stderr"].append((partial or {}).get("stderr", ""))
                    if err.startswith(("hung", "timeout")):
                        hung.add((scenario.name, contender))
                    last_load = None
                    print(f"  ERROR cold {scenario.name}/{contender}: {err}", flush=True)
                    continue
                data["round"] = rnd + 1
                stats["retries"] += data["retries"]
                last_load = data["foreign"]
                entry["rows"].append(data)
                line.append(f"{contender}={_cell(data, scenario)}")
            print(f"[cold {rnd + 1}/{args.rounds}] {scenario.name}: " + " ".join(line), flush=True)
    return out


def run_warm(args: argparse.Namespace, scenarios: list[Scenario]) -> dict[str, Any]:
    """One child per scenario. A contender that hangs is dropped and the scenario run again
    without it (the others' figures must come from rounds they shared)."""
    out: dict[str, Any] = {}
    stats = args.load_stats.setdefault("warm", {"retries": 0, "waited_s": 0.0})
    for scenario in scenarios:
        out[scenario.name] = entries = {c: _entry() for c in scenario.contenders}
        names = list(scenario.contenders)
        while names:
            argv = [
                "--child",
                "warm",
                "--scenario",
                scenario.name,
                "--contenders",
                ",".join(names),
                "--rounds",
                str(args.rounds),
                "--auto-kwargs",
                args.auto_kwargs,
                "--quiet-wait",
                str(args.quiet_wait),
                "--quiet-budget",
                str(max(0.0, args.quiet_budget - args.quiet_waited)),
            ]
            data, err, wall, partial = _spawn(argv, WARM_TIMEOUT_S)
            if data is not None:
                break
            running = str((partial or {}).get("running") or "")
            culprit = running.partition(",")[0] if running else None
            print(f"  ERROR warm {scenario.name} ({running or 'before any timing'}): {err}")
            for c in [culprit] if culprit in names else names:
                entries[c]["errors"].append(f"{running}: {err}" if running else err)
                entries[c]["stderr"].append((partial or {}).get("stderr", ""))
            names = [c for c in names if c != culprit] if culprit in names else []
        if data is None:
            continue
        for contender, rows in data["rows"].items():
            entries[contender]["warmup"] = [r for r in rows if r["round"] == 0]
            entries[contender]["rows"] = [r for r in rows if r["round"] > 0]
            entries[contender]["proc_wall"] = [wall]
        stats["retries"] += data["retries"]
        stats["waited_s"] = round(stats["waited_s"] + data["waited_s"], 1)
        args.quiet_waited += data["waited_s"]
        figures = summarize_scenario(scenario, entries)
        print(
            f"[warm] {scenario.name} ({wall:.1f} s): "
            + " ".join(f"{c}={_cell(f, scenario)}" for c, f in figures.items() if f),
            flush=True,
        )
    return out


# --- figures and the report -------------------------------------------------------------------


def _cell(fig: dict[str, Any], scenario: Scenario) -> str:
    if scenario.name == "latency_cheap":
        return f"p50 {fig['p50'] * 1e3:.3f} / p90 {fig['p90'] * 1e3:.3f} ms"
    return fmt_s(fig["t"])


def summarize_scenario(
    scenario: Scenario, entries: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any] | None]:
    """Per contender: medians over the rounds of each figure, and the decision seen most."""
    out: dict[str, dict[str, Any] | None] = {}
    for contender in scenario.contenders:
        rows = entries.get(contender, {}).get("rows", [])
        if not rows:
            out[contender] = None
            continue
        fig: dict[str, Any] = {"rounds": len(rows)}
        for key in ("t", "p50", "p90", "in_pool", "foreign"):
            values = [r[key] for r in rows if r.get(key) is not None]
            fig[key] = statistics.median(values) if values else None
        decisions = [r["decision"] for r in rows if r.get("decision")]
        fig["decision"] = Counter(decisions).most_common(1)[0][0] if decisions else None
        out[contender] = fig
    return out


def _missing(entry: dict[str, Any] | None) -> str:
    """The table cell of a contender without figures: not run here, hung, or failed."""
    if not entry or not entry["errors"]:
        return "-"
    return (
        "**hung**" if any("hung" in e or "timeout" in e for e in entry["errors"]) else "**error**"
    )


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None, scenario: Scenario) -> str:
    """AutoExecutor / contender; "≈" when the two whole timings are within GRACE_S (for
    latency_cheap the ratio is of the p50s, the grace judged on the 300 calls' total)."""
    if not a or not b:
        return "-"
    key = "p50" if scenario.name == "latency_cheap" else "t"
    ratio = a[key] / b[key] if b[key] else float("inf")
    grace = " ≈" if abs(a["t"] - b["t"]) <= GRACE_S else ""
    return f"{ratio:.2f}{grace}" if ratio < 100 else f"{ratio:.0f}{grace}"


def targets(mode: str, figures: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(target, value, holds) for the scenarios that ran."""
    out = []
    fig = figures.get("trivial_2000")
    if fig and fig.get("auto") and fig.get("tpe1"):
        r = fig["auto"]["t"] / fig["tpe1"]["t"]
        out.append(
            (
                f"trivial_2000: AutoExecutor <= {TRIVIAL_VS_TPE1:g}x TPE(1)",
                f"{r:.2f}x ({fmt_s(fig['auto']['t'])} vs {fmt_s(fig['tpe1']['t'])})",
                "yes" if r <= TRIVIAL_VS_TPE1 else "**NO**",
            )
        )
    fig = figures.get("submit_return_300")
    if fig and fig.get("auto"):
        t = fig["auto"]["t"]
        out.append(
            (
                f"submit_return_300: 300 submits return in < {SUBMIT_RETURN_MAX_S * 1e3:.0f} ms",
                fmt_s(t),
                "yes" if t < SUBMIT_RETURN_MAX_S else "**NO**",
            )
        )
    fig = figures.get("latency_cheap")
    if fig and fig.get("auto") and fig.get("loop"):
        a, s = fig["auto"]["p50"], fig["loop"]["p50"]
        holds = "yes" if a <= s + LATENCY_SLACK_S else "**NO**"
        out.append(
            (
                f"latency_cheap: AutoExecutor p50 <= loop p50 + {LATENCY_SLACK_S * 1e3:.1f} ms",
                f"{a * 1e3:.3f} vs {s * 1e3:.3f} ms (+{(a - s) * 1e3:.3f} ms)",
                holds if mode == "warm" else f"(info: target is warm) {holds}",
            )
        )
    return out


def report(raw: dict[str, Any]) -> str:
    m, src, cfg = raw["machine"], raw["source"], raw["config"]
    lines = [
        "# AutoExecutor.submit for services",
        "",
        f"- date: {m['date']}; command: `{cfg['command']}`",
        f"- machine: os.cpu_count={m['os_cpu_count']}, loky.cpu_count={m['loky_cpu_count']}, "
        f"Python {m['python']}, start method {m['start_method']}; spin loop "
        f"{m['spin_iters_per_ms']:.0f} iterations/ms",
        f"- amorsize_exec measured: commit {src.get('git_head')}"
        f"{' + uncommitted changes in src/' if src.get('src_dirty') else ''}, src sha256 "
        f"{src['sha256']} ({'snapshot at start' if src.get('snapshot') else 'live src/'})"
        + ("; src/ changed during the run" if src.get("live_changed_during_run") else ""),
        f"- AutoExecutor kwargs: `{cfg['auto_kwargs']}`; PPE: `ProcessPoolExecutor()` "
        f"({m['os_cpu_count']} workers, {m['start_method']})",
    ]
    cap = [
        f"{k.split('_')[1]} {m[k]['capacity']:.2f}"
        for k in ("capacity_start", "capacity_end")
        if k in m
    ]
    if cap:
        lines.append("- parallel capacity (ceiling of any CPU-bound speedup): " + ", ".join(cap))
    lines.append(f"- other processes' CPU load: {cfg.get('foreign_load', {})}")
    lines.append(
        f"- ratios are AutoExecutor / contender (medians); ≈: the two within {GRACE_S * 1e3:.0f}"
        " ms of each other (no user notices); latency_cheap: ratio of p50s, ≈ on the 300 calls'"
        " total; 'in pool': share of AutoExecutor's calls that ran in a worker process"
    )
    for mode in cfg["modes"]:
        results = raw["results"].get(mode)
        if not results:
            continue
        figures = {
            name: summarize_scenario(SCENARIOS[name], entries) for name, entries in results.items()
        }
        n_rounds = cfg["rounds"][mode]
        lines += [
            "",
            f"## {mode} ({n_rounds} round{'s' if n_rounds > 1 else ''}, medians"
            + (", after one discarded warm-up round" if mode == "warm" else "")
            + f"; {cfg.get(f'{mode}_elapsed_s', '?')} s)",
            "",
            "| scenario | AutoExecutor | PPE | TPE(1) | loop | auto/PPE | auto/TPE(1) "
            "| auto/loop | in pool |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, fig in figures.items():
            scenario = SCENARIOS[name]
            cells = [
                _cell(fig[c], scenario) if fig.get(c) else _missing(results[name].get(c))
                for c in CONTENDERS
            ]
            ratios = [
                _ratio(fig.get("auto"), fig.get(c), scenario) for c in ("ppe", "tpe1", "loop")
            ]
            auto = fig.get("auto") or {}
            in_pool = f"{auto['in_pool']:.0%}" if auto.get("in_pool") is not None else "-"
            lines.append(f"| {name} | " + " | ".join([*cells, *ratios, in_pool]) + " |")
        errors = [
            f"{name}/{c}: {e}"
            for name, entries in results.items()
            for c, entry in entries.items()
            for e in entry["errors"]
        ]
        loaded = [
            f"{name}/{c} round {r['round']} ({r['foreign']:.2f} cores)"
            for name, entries in results.items()
            for c, entry in entries.items()
            for r in entry["rows"]
            if (r.get("foreign") or 0.0) > _load.RETRY_ABOVE_CORES
        ]
        if loaded:
            lines += [
                "",
                f"Timings kept although other processes used > {_load.RETRY_ABOVE_CORES} cores "
                "(after re-tries): " + ", ".join(loaded),
            ]
        rows = targets(mode, figures)
        if rows:
            lines += ["", "| target | value | holds |", "|---|---|---|"]
            lines += [f"| {t} | {v} | {h} |" for t, v, h in rows]
        lines += ["", "AutoExecutor's last decision (most common over the rounds):", ""]
        for name, fig in figures.items():
            auto = fig.get("auto") or {}
            lines.append(f"- {name}: {auto.get('decision') or '(none recorded)'}")
        if errors:
            lines += ["", "Errors (stderr in raw.json):", ""] + [f"- {e[:700]}" for e in errors]
    lines += ["", "Scenarios:", ""]
    lines += [f"- `{s}`: {SCENARIOS[s].description}" for s in cfg["scenarios"]]
    return "\n".join(lines) + "\n"


# --- entry point --------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.services", description=__doc__)
    p.add_argument("--mode", choices=("cold", "warm", "both"), default="both")
    p.add_argument(
        "--rounds", type=int, default=None, help="paired rounds (default: warm 5, cold 3)"
    )
    p.add_argument("--scenarios", default=None, help=f"comma-separated, of {list(SCENARIOS)}")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_ROUNDS} rounds per mode")
    p.add_argument(
        "--auto-kwargs",
        default="{}",
        metavar="JSON",
        help='keyword arguments for AutoExecutor, e.g. \'{"max_workers": 2}\'; "settings" may be '
        "a dict of Settings fields",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=10.0,
        metavar="S",
        help="before a timing, wait up to S s for other processes to use less than "
        f"{_load.RETRY_ABOVE_CORES} cores (0: never wait)",
    )
    p.add_argument(
        "--quiet-budget", type=float, default=60.0, metavar="S", help="total waiting per run"
    )
    p.add_argument("--live-src", action="store_true", help="measure src/ as it is, not a snapshot")
    p.add_argument("--child", choices=("cold", "warm"), help=argparse.SUPPRESS)
    p.add_argument("--scenario", help=argparse.SUPPRESS)
    p.add_argument("--contender", help=argparse.SUPPRESS)
    p.add_argument("--contenders", help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.child:
        data = _child_cold(args) if args.child == "cold" else _child_warm(args)
        Path(args.child_out).write_text(json.dumps(data))
        return 0

    from benchmarks import run

    try:
        auto_kwargs = json.loads(args.auto_kwargs)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"--auto-kwargs is not JSON: {exc}") from None
    if not isinstance(auto_kwargs, dict):
        raise SystemExit("--auto-kwargs must be a JSON object")
    names = [n.strip() for n in (args.scenarios or ",".join(SCENARIOS)).split(",") if n.strip()]
    if unknown := [n for n in names if n not in SCENARIOS]:
        raise SystemExit(f"unknown scenarios {unknown}; known: {list(SCENARIOS)}")
    scenarios = [SCENARIOS[n] for n in names]
    modes = ["cold", "warm"] if args.mode == "both" else [args.mode]
    rounds = {
        m: args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS[m]) for m in ("cold", "warm")
    }

    source = run.snapshot_source(not args.live_src)
    _executor_factory("auto", auto_kwargs)().shutdown()  # bad kwargs fail here, not per child
    W.ensure_calibrated()  # before any child: all inherit the same spin rate
    cores = max(1, os.cpu_count() or 1)
    args.out.mkdir(parents=True, exist_ok=True)
    raw: dict[str, Any] = {
        "machine": run.machine_info(),
        "source": source,
        "config": {
            "modes": modes,
            "rounds": rounds,
            "scenarios": names,
            "auto_kwargs": auto_kwargs,
            "command": " ".join(
                [Path(sys.executable).name, "-m", "benchmarks.services"]
                + (argv if argv is not None else sys.argv[1:])
            ),
        },
        "results": {},
    }
    raw["machine"]["capacity_start"] = W.parallel_capacity(cores)
    print(
        f"machine: {cores} CPUs, parallel capacity "
        f"{raw['machine']['capacity_start']['capacity']:.2f}, spin {W.iters_per_ms():.0f} "
        f"iterations/ms; commit {source.get('git_head')}"
        f"{' (src dirty)' if source.get('src_dirty') else ''}; scenarios {names}; modes "
        f"{modes}; rounds {rounds}; AutoExecutor kwargs {auto_kwargs}",
        flush=True,
    )
    args.load_stats = {}
    args.quiet_waited = 0.0
    started_all = time.perf_counter()
    try:
        for mode in modes:
            args.rounds = rounds[mode]
            started = time.perf_counter()
            runner = run_cold if mode == "cold" else run_warm
            raw["results"][mode] = runner(args, scenarios)
            raw["config"][f"{mode}_elapsed_s"] = round(time.perf_counter() - started, 1)
            raw["config"]["foreign_load"] = args.load_stats
            print(f"{mode} mode took {raw['config'][f'{mode}_elapsed_s']:.0f} s", flush=True)
            (args.out / "raw.json").write_text(json.dumps(raw, indent=1))
        raw["machine"]["capacity_end"] = W.parallel_capacity(cores)
    finally:
        source["live_changed_during_run"] = (
            run._tree_sha256(Path(source["live_path"])) != source["sha256"]
        )
        if source.get("snapshot"):
            import shutil

            shutil.rmtree(source["snapshot"], ignore_errors=True)
    raw["config"]["elapsed_s"] = round(time.perf_counter() - started_all, 1)
    (args.out / "raw.json").write_text(json.dumps(raw, indent=1))
    text = report(raw)
    (args.out / "report.md").write_text(text)
    print()
    print(text)
    print(f"written: {args.out / 'report.md'}, {args.out / 'raw.json'}")
    return 0


if __name__ == "__main__":
    # Run as the module benchmarks.services, not __main__: the functions submitted must pickle
    # by reference to a module that pool workers can import.
    from benchmarks import services  # noqa: PLW0406

    sys.exit(services.main())
