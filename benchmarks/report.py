"""Turn raw.json into figures: medians, speedups, oracle and regret, decisions, targets.

``summarize`` is pure (raw dict in, summary dict out); ``write_all`` writes report.md and
speedup.png next to raw.json and prints which targets hold.
"""

# Imports inside functions are deliberate: a child interpreter imports only what its one
# contender needs (joblib, numpy, amorsize_exec are not free), and pool workers stay light.
# ruff: noqa: PLC0415

from __future__ import annotations

import math
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.contenders import MAIN_CONTENDERS, ORACLE_KINDS

# --- targets ------------------------------------------------------------------------------------
#: Geometric-mean regret (AutoExecutor / oracle) allowed over all workloads. The issue names the
#: figure without a threshold; 1.10 ("within 10% of the best hand-tuned pool") is this suite's.
GEOMEAN_REGRET_MAX = 1.10
#: Worst single-workload regret allowed (the suite's threshold, same caveat).
MAX_REGRET_MAX = 1.50
#: Negative scaling: AutoExecutor <= NEG_FACTOR * serial + NEG_SLACK_S on every workload.
NEG_FACTOR, NEG_SLACK_S = 1.05, 0.010
#: Predicted speedup within +-25% of the measured one, for decisions that chose the pool.
PREDICTION_TOLERANCE = 0.25
#: trivial_1m: AutoExecutor within 10% of the plain loop.
TRIVIAL_FACTOR = 1.10

#: Foreign CPU load (cores) above which a timing is flagged in the report (see _load.py).
FOREIGN_FLAG_CORES = 0.25

#: Workloads whose serial time is at least this are "substantial" for the informational regret
#: figure (sub-millisecond workloads make ratios explode on microseconds of overhead).
SUBSTANTIAL_S = 0.1

#: Columns of the main table and bars of the chart. ``best_ppe`` / ``best_tpe`` are the best
#: median over the process-pool (``ppe_*``, ``grid_*``) / thread-pool (``tpe_w*``) configurations.
SHOWN = ("auto", "ppe_default", "ppe_tuned", "joblib", "best_ppe", "best_tpe", "oracle")
#: Pseudo-contenders: the best configuration of a kind (``Spec.kind``).
BEST_OF = {"best_ppe": "ppe", "best_tpe": "tpe"}


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _geomean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x and x > 0]
    return math.exp(statistics.fmean(math.log(x) for x in xs)) if xs else None


def _decision_summary(decisions: list[dict[str, Any]]) -> dict[str, Any]:
    """Most common decision over the repeats, with the figures behind it."""
    if not decisions:
        return {}
    keys = []
    for d in decisions:
        dec = d["decision"]
        switched = dec["reason"].startswith("switched mid-run")
        keys.append((dec["lane"], dec["workers"], switched))
    (lane, workers, switched), count = Counter(keys).most_common(1)[0]
    same = [d for d, k in zip(decisions, keys, strict=True) if k == (lane, workers, switched)]
    sizes = sorted(d["decision"]["chunksize"] for d in same)
    stats = [d["stats"] for d in same if d.get("stats")]
    profiles = [d["profile"] for d in same if d.get("profile")]
    lanes = Counter(f"{k[0]}{' (switched)' if k[2] else ''}" for k in keys)
    return {
        "lane": lane,
        "workers": workers,
        "chunksize": sizes[len(sizes) // 2],
        "chunksize_range": [sizes[0], sizes[-1]],
        "switched": switched,
        "count": count,
        "of": len(decisions),
        "lanes_seen": dict(lanes),
        "predicted_speedup": _median([d["decision"]["predicted_speedup"] for d in same]),
        "speedup_at_two": _median([d["decision"]["speedup_at_two"] for d in same]),
        "sample_overhead_s": _median([d["sample_overhead_s"] for d in decisions]),
        "sample_items": _median([s["items"] for s in stats]) if stats else None,
        "sample_elapsed_s": _median([s["elapsed_s"] for s in stats]) if stats else None,
        "compute_s": _median([s["compute_s"] for s in stats]) if stats else None,
        "cpu_s": _median([s["cpu_s"] for s in stats]) if stats else None,
        "cv": _median([s["cv"] for s in stats]) if stats else None,
        "serialize_s": _median([s["serialize_s"] for s in stats]) if stats else None,
        "arg_bytes": _median([s["arg_bytes"] for s in stats]) if stats else None,
        "result_bytes": _median([s["result_bytes"] for s in stats]) if stats else None,
        "pool_start_s": _median([p["pool_start_s"] for p in profiles]) if profiles else None,
        "chunk_roundtrip_s": _median([p["chunk_roundtrip_s"] for p in profiles])
        if profiles
        else None,
        "ipc_s_per_byte": _median([p["ipc_s_per_byte"] for p in profiles]) if profiles else None,
        "calibrated": all(p["calibrated"] for p in profiles) if profiles else None,
        "items_remaining": same[-1].get("items_remaining"),
        "reason": same[-1]["decision"]["reason"],
    }


def _config_label(spec: dict[str, Any]) -> str:
    """``serial``, ``PPE w=2 c=25`` or ``TPE w=32``."""
    if spec["kind"] == "serial":
        return "serial"
    if spec["kind"] == "tpe":
        return f"TPE w={spec['workers']}"
    return f"PPE w={spec['workers'] or 'default'} c={spec['chunksize']}"


def _best(
    med: dict[str, float | None], entries: dict[str, Any], kinds: tuple[str, ...]
) -> tuple[str | None, float | None]:
    """The name and median of the fastest configuration of the given kinds."""
    pool = {
        n: t
        for n, t in med.items()
        if t is not None and n in entries and entries[n]["spec"]["kind"] in kinds
    }
    if not pool:
        return None, None
    name = min(pool, key=pool.__getitem__)
    return name, pool[name]


def summarize_mode(results: dict[str, Any], workloads: dict[str, Any]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for wl, entries in results.items():
        med = {name: _median(e["times"]) for name, e in entries.items()}
        serial = med.get("serial")
        best_config: dict[str, str | None] = {}
        best_name: dict[str, str | None] = {}
        for pseudo, kind in BEST_OF.items():
            name, t = _best(med, entries, (kind,))
            best_config[pseudo] = _config_label(entries[name]["spec"]) if name else None
            best_name[pseudo] = name
            med[pseudo] = t
        oracle_name, oracle_t = _best(med, entries, ORACLE_KINDS)
        oracle_cfg = _config_label(entries[oracle_name]["spec"]) if oracle_name else None
        med["oracle"] = oracle_t
        speed = {n: (serial / t if serial and t else None) for n, t in med.items()}
        auto = med.get("auto")
        dec = _decision_summary(entries.get("auto", {}).get("decisions", []))
        measured = speed.get("auto")
        pred = dec.get("predicted_speedup") if dec.get("lane", "serial") != "serial" else None
        rows[wl] = {
            "n": workloads[wl]["n"],
            "description": workloads[wl]["description"],
            "median_s": med,
            "speedup": speed,
            "oracle_config": oracle_cfg,
            "oracle_kind": entries[oracle_name]["spec"]["kind"] if oracle_name else None,
            "best_config": best_config,
            "best_name": best_name,
            "regret": auto / oracle_t if auto and oracle_t else None,
            "decision": dec,
            "measured_speedup": measured,
            "prediction_error": measured / pred - 1.0 if pred and measured else None,
            "skipped": {n: e["spec"]["skip"] for n, e in entries.items() if e["spec"]["skip"]},
            "capped": {n: e["capped"] for n, e in entries.items() if e.get("capped")},
            "errors": {n: e["errors"] for n, e in entries.items() if e["errors"]},
            "repeats": {n: len(e["times"]) for n, e in entries.items()},
            "foreign": [x for e in entries.values() for x in e.get("foreign", []) if x is not None],
            "foreign_max": {
                n: max(f)
                for n, e in entries.items()
                if (f := [x for x in e.get("foreign", []) if x is not None])
            },
        }
    return rows


def targets(summary: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target per mode: value, whether it holds, and the workloads that break it."""
    out = []
    for mode, rows in summary.items():
        regrets = {w: r["regret"] for w, r in rows.items() if r["regret"]}
        g = _geomean(list(regrets.values()))
        out.append(
            {
                "target": f"geomean regret <= {GEOMEAN_REGRET_MAX:.2f}",
                "mode": mode,
                "value": f"{g:.3f}" if g else "n/a",
                "holds": g is not None and g <= GEOMEAN_REGRET_MAX,
                "misses": "",
            }
        )
        big = [
            r["regret"]
            for r in rows.values()
            if r["regret"] and (r["median_s"].get("serial") or 0) >= SUBSTANTIAL_S
        ]
        gb = _geomean(big)
        out.append(
            {
                "target": "(info) geomean regret, workloads with serial >= "
                f"{SUBSTANTIAL_S * 1e3:.0f} ms",
                "mode": mode,
                "value": f"{gb:.3f} ({len(big)} workloads)" if gb else "n/a",
                "holds": None,
                "misses": "",
            }
        )
        worst = max(regrets, key=regrets.__getitem__) if regrets else None
        out.append(
            {
                "target": f"max regret <= {MAX_REGRET_MAX:.2f}",
                "mode": mode,
                "value": f"{regrets[worst]:.2f} ({worst})" if worst else "n/a",
                "holds": worst is not None and regrets[worst] <= MAX_REGRET_MAX,
                "misses": ", ".join(
                    f"{w} {v:.2f}"
                    for w, v in sorted(regrets.items(), key=lambda kv: -kv[1])
                    if v > MAX_REGRET_MAX
                ),
            }
        )
        bad = []
        for w, r in rows.items():
            s, a = r["median_s"].get("serial"), r["median_s"].get("auto")
            if s is not None and a is not None and a > NEG_FACTOR * s + NEG_SLACK_S:
                bad.append(f"{w} {a / s:.2f}x serial")
        checked = sum(
            1 for r in rows.values() if r["median_s"].get("serial") and r["median_s"].get("auto")
        )
        out.append(
            {
                "target": f"no negative scaling: auto <= {NEG_FACTOR} x serial + "
                f"{NEG_SLACK_S * 1e3:.0f} ms",
                "mode": mode,
                "value": f"{checked - len(bad)}/{checked} workloads",
                "holds": checked > 0 and not bad,
                "misses": ", ".join(bad),
            }
        )
        common = [
            w
            for w, r in rows.items()
            if all(r["speedup"].get(c) for c in ("auto", "joblib", "ppe_tuned"))
        ]
        gm = {
            c: _geomean([rows[w]["speedup"][c] for w in common])
            for c in ("auto", "joblib", "ppe_tuned")
        }
        if all(gm.values()):
            out.append(
                {
                    "target": "geomean speedup: auto >= joblib and >= ppe_tuned",
                    "mode": mode,
                    "value": f"auto {gm['auto']:.2f}, joblib {gm['joblib']:.2f}, "
                    f"ppe_tuned {gm['ppe_tuned']:.2f} ({len(common)} workloads)",
                    "holds": gm["auto"] >= gm["joblib"] and gm["auto"] >= gm["ppe_tuned"],
                    "misses": "",
                }
            )
        errs = {
            w: r["prediction_error"] for w, r in rows.items() if r["prediction_error"] is not None
        }
        off = {w: e for w, e in errs.items() if abs(e) > PREDICTION_TOLERANCE}
        out.append(
            {
                "target": f"predicted speedup within +-{PREDICTION_TOLERANCE:.0%} of measured "
                "(pool decisions)",
                "mode": mode,
                "value": f"{len(errs) - len(off)}/{len(errs)} pool decisions",
                "holds": (not off) if errs else None,
                "misses": ", ".join(
                    f"{w} pred {rows[w]['decision']['predicted_speedup']:.2f} vs "
                    f"{rows[w]['measured_speedup']:.2f}"
                    for w in off
                ),
            }
        )
        t = rows.get("trivial_1m")
        if t and t["median_s"].get("auto") and t["median_s"].get("serial"):
            ratio = t["median_s"]["auto"] / t["median_s"]["serial"]
            out.append(
                {
                    "target": f"trivial_1m: auto <= {TRIVIAL_FACTOR:.2f} x loop",
                    "mode": mode,
                    "value": f"{ratio:.3f}x",
                    "holds": ratio <= TRIVIAL_FACTOR,
                    "misses": "",
                }
            )
    return out


# --- formatting -----------------------------------------------------------------------------


def fmt_s(t: float | None) -> str:
    if t is None:
        return "-"
    if t < 1e-6:
        return f"{t * 1e9:.0f} ns"
    if t < 1e-3:
        return f"{t * 1e6:.0f} us"
    if t < 0.9995:
        return f"{t * 1e3:.3g} ms"
    return f"{t:.2f} s"


def fmt_x(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _decision_cell(d: dict[str, Any]) -> str:
    if not d:
        return "-"
    lo, hi = d.get("chunksize_range") or (d["chunksize"], d["chunksize"])
    size = f"c{lo}" if lo == hi else f"c{lo}-{hi}"
    if d["lane"] == "serial":
        where = "serial"
    elif d["lane"] == "thread":
        where = f"thread {d['workers']}w"
    else:
        where = f"{d['lane']} {d['workers']}w x {size}"
    if d["switched"]:
        where += " (switched mid-run)"
    if d["count"] != d["of"]:
        seen = ", ".join(f"{k} {v}" for k, v in d["lanes_seen"].items())
        where += f" [{d['count']} of {d['of']}; seen: {seen}]"
    return where


def _mode_tables(mode: str, rows: dict[str, Any]) -> list[str]:
    lines = [f"## {mode.capitalize()} mode", ""]
    loads = [x for r in rows.values() for x in r["foreign"]]
    if loads:
        high = sorted(
            {
                f"{w}/{n}"
                for w, r in rows.items()
                for n, v in r["foreign_max"].items()
                if v > FOREIGN_FLAG_CORES
            }
        )
        lines += [
            f"Foreign CPU load (other processes) during {len(loads)} judged timings: median "
            f"{statistics.median(loads):.2f} cores, max {max(loads):.2f}; timings above "
            f"{FOREIGN_FLAG_CORES} cores were re-taken up to twice; still above after that: "
            + (", ".join(high) if high else "none")
            + ".",
            "",
        ]
    lines += [
        "Median wall time per call (speedup vs serial in brackets); best ppe / best tpe = the "
        "fastest process-pool / thread-pool configuration (which one in italics); oracle = best "
        "of serial, every process-pool and every thread-pool configuration; regret = auto / "
        "oracle.",
        "",
        "| workload | serial | auto | ppe_default | ppe_tuned | joblib | best ppe | best tpe "
        "| oracle | oracle config | regret |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w, r in rows.items():
        med, sp = r["median_s"], r["speedup"]
        cells = []
        for c in ("serial", *SHOWN):
            if c in r["skipped"]:
                cells.append("skipped")
            elif c == "serial":
                cells.append(fmt_s(med.get(c)))
            else:
                capped_as = r.get("best_name", {}).get(c, c)
                mark = " †" if c in r["capped"] or capped_as in r["capped"] else ""
                cfg = r.get("best_config", {}).get(c)
                which = f" _{cfg.split(' ', 1)[1]}_" if cfg and med.get(c) is not None else ""
                cells.append(f"{fmt_s(med.get(c))}{mark} ({fmt_x(sp.get(c))}){which}")
        regret = f"**{r['regret']:.2f}**" if r["regret"] else "-"
        lines.append(
            f"| {w} | " + " | ".join(cells) + f" | {r['oracle_config'] or '-'} | {regret} |"
        )
    tpe_names = sorted(
        {n for r in rows.values() for n in r["median_s"] if n.startswith("tpe_w")}
        | {n for r in rows.values() for n in r["skipped"] if n.startswith("tpe_w")},
        key=lambda n: int(n.removeprefix("tpe_w")),
    )
    if tpe_names:
        lines += [
            "",
            "Thread pools: `ThreadPoolExecutor(w).map(fn, xs)` per size (median, speedup vs "
            "serial; † timed once, not repeated).",
            "",
            "| workload | " + " | ".join(tpe_names) + " |",
            "|---|" + "---|" * len(tpe_names),
        ]
        for w, r in rows.items():
            cells = []
            for n in tpe_names:
                if n in r["skipped"]:
                    cells.append("skipped")
                elif r["median_s"].get(n) is None:
                    cells.append("-")
                else:
                    mark = " †" if n in r["capped"] else ""
                    cells.append(f"{fmt_s(r['median_s'][n])}{mark} ({fmt_x(r['speedup'].get(n))})")
            lines.append(f"| {w} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "AutoExecutor's decision (most common over the repeats) against what it measured. "
        "`predicted` is the model's speedup for the items after the sample; `measured` is "
        "serial / auto for the whole call. Sample: items run in-process, their mean time, "
        "and the sampling overhead (sample wall time beyond the items' own work).",
        "",
        "| workload | decision | predicted | measured | error | sample items | t/item (cv) "
        "| sample overhead | pool start / round trip used |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for w, r in rows.items():
        d = r["decision"]
        if not d:
            lines.append(f"| {w} | - | - | - | - | - | - | - | - |")
            continue
        pred = fmt_x(d["predicted_speedup"]) if d["lane"] != "serial" else "(serial)"
        err = f"{r['prediction_error']:+.0%}" if r["prediction_error"] is not None else "-"
        tpi = f"{fmt_s(d['compute_s'])} ({d['cv']:.2f})" if d["compute_s"] is not None else "-"
        items = f"{d['sample_items']:.0f}" if d["sample_items"] is not None else "-"
        costs = (
            f"{fmt_s(d['pool_start_s'])} / {fmt_s(d['chunk_roundtrip_s'])}"
            + ("" if d["calibrated"] else " (priors)")
            if d["pool_start_s"] is not None
            else "-"
        )
        lines.append(
            f"| {w} | {_decision_cell(d)} | {pred} | {fmt_x(r['measured_speedup'])} | {err} "
            f"| {items} | {tpi} | {fmt_s(d['sample_overhead_s'])} | {costs} |"
        )
    notes = []
    for w, r in rows.items():
        for c, why in r["skipped"].items():
            notes.append(f"- {w}/{c} skipped: {why}")
        for c, why in r["capped"].items():
            notes.append(f"- † {w}/{c} {why}")
        for c, errs in r["errors"].items():
            notes.append(f"- **{w}/{c} failed** ({len(errs)}x): {errs[0][:300]}")
    if notes:
        lines += ["", *notes]
    lines.append("")
    return lines


def markdown(raw: dict[str, Any], summary: dict[str, Any], tgt: list[dict[str, Any]]) -> str:
    m, cfg, src = raw["machine"], raw["config"], raw.get("source", {})
    lines = [
        "# amorsize_exec benchmark report",
        "",
        f"- date: {m['date']}; command: `{cfg.get('command', '')}`",
        f"- machine: os.cpu_count={m['os_cpu_count']}, loky.cpu_count={m['loky_cpu_count']} "
        f"(physical {m.get('loky_physical_cores')}), memory {m.get('memory_total_gb')} GB, "
        f"{m['platform']}",
        f"- Python {m['python']} ({m['implementation']}), start method {m['start_method']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"- BLAS: {m.get('blas')}; spin loop {m['spin_iters_per_ms']:.0f} iterations/ms",
        "- amorsize_exec measured: "
        + (
            f"commit {src.get('git_head')}"
            + (" + uncommitted src changes" if src.get("src_dirty") else "")
            + f", src sha256 {src.get('sha256')}"
            + (" (snapshot at start)" if src.get("snapshot") else " (live src)")
            if src
            else "unknown"
        ),
        "- parallel capacity (aggregate spin rate of one process per core / one alone; the "
        "ceiling of any CPU-bound speedup here): "
        + ", ".join(
            f"{k.split('_')[1]} {m[k]['capacity']:.2f} (rounds {m[k]['rounds']})"
            for k in ("capacity_start", "capacity_end")
            if k in m
        ),
        f"- suite: {'quick' if cfg['quick'] else 'full'}, modes {cfg['modes']}, "
        f"{cfg['repeats']} repeats per figure (median), {cfg.get('elapsed_s', '?')} s in all",
    ]
    if cfg.get("foreign_load"):
        lines.append(
            "- other processes' CPU load: "
            + "; ".join(
                f"{mode}: {v['retries']} timings re-taken, {v['waited_s']:.0f} s waited for quiet"
                for mode, v in cfg["foreign_load"].items()
            )
        )
    if cfg.get("auto_settings") or m.get("amorsize_env"):
        lines.append(
            f"- AutoExecutor settings overrides: {cfg.get('auto_settings')} "
            f"env {m.get('amorsize_env')}"
        )
    if cfg.get("only"):
        lines.append(f"- only contenders: {cfg['only']} (oracle/regret cover only these)")
    lines += [
        "",
        "## Targets",
        "",
        "| target | mode | value | holds | misses |",
        "|---|---|---|---|---|",
    ]
    for t in tgt:
        holds = "-" if t["holds"] is None else "yes" if t["holds"] else "**NO**"
        lines.append(
            f"| {t['target']} | {t['mode']} | {t['value']} | {holds} | {t['misses'] or ''} |"
        )
    lines.append("")
    for mode, rows in summary.items():
        lines += _mode_tables(mode, rows)
    lines += ["![speedup vs serial](speedup.png)", ""]
    return "\n".join(lines)


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(summary)
    fig, axes = plt.subplots(len(modes), 1, figsize=(18, 5 * len(modes)), squeeze=False)
    colors = {
        "auto": "#d62728",
        "ppe_default": "#7f7f7f",
        "ppe_tuned": "#1f77b4",
        "joblib": "#2ca02c",
        "best_ppe": "#17becf",
        "best_tpe": "#ff7f0e",
        "oracle": "#000000",
    }
    for ax, mode in zip(axes[:, 0], modes, strict=True):
        rows = summary[mode]
        names = list(rows)
        width = 0.8 / len(SHOWN)
        for i, c in enumerate(SHOWN):
            xs, ys = [], []
            for j, w in enumerate(names):
                s = rows[w]["speedup"].get(c)
                if s:
                    xs.append(j + (i - (len(SHOWN) - 1) / 2) * width)
                    ys.append(s)
            ax.bar(xs, ys, width, label=c, color=colors[c], alpha=0.85 if c != "oracle" else 0.5)
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right")
        ax.set_ylabel("speedup vs serial (median, log)")
        ax.set_title(f"{mode} mode: speedup vs list(map(...)) (>1 is faster)")
        ax.legend(ncol=len(SHOWN), fontsize=8, loc="upper left")
        ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(raw: dict[str, Any], out: Path) -> int:
    summary = {mode: summarize_mode(res, raw["workloads"]) for mode, res in raw["results"].items()}
    tgt = targets(summary)
    raw_summary = {"summary": summary, "targets": tgt}
    (out / "summary.json").write_text(__import__("json").dumps(raw_summary, indent=1))
    (out / "report.md").write_text(markdown(raw, summary, tgt))
    plot(summary, out / "speedup.png")
    print()
    for mode, rows in summary.items():
        print(
            f"{mode}: "
            + "; ".join(
                f"{w} auto {fmt_x(r['speedup'].get('auto'))} regret {r['regret']:.2f}"
                if r["regret"]
                else f"{w} -"
                for w, r in rows.items()
            )
        )
    print("\nTargets:")
    for t in tgt:
        mark = "-" if t["holds"] is None else "HOLDS" if t["holds"] else "MISSES"
        extra = f"  <- {t['misses']}" if t["misses"] else ""
        print(f"  [{mark:6s}] {t['mode']:4s} {t['target']}: {t['value']}{extra}")
    print(f"\nwrote {out / 'report.md'}, {out / 'speedup.png'}, {out / 'raw.json'}")
    errors = any(r["errors"] for rows in summary.values() for r in rows.values())
    return 1 if errors else 0


__all__ = ["MAIN_CONTENDERS", "summarize_mode", "targets", "write_all"]
