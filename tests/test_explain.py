"""``amorsize-exec explain`` (issue 13), end to end as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


def explain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amorsize_exec", "explain", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=TESTS,  # so that `_workloads` imports
    )


@pytest.mark.processes
@pytest.mark.timeout(150)
def test_a_costly_function_explained_as_json_then_run() -> None:
    done = explain("_workloads:square_after_spin", "--items", "80", "--json", "--run")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["function"] == "square_after_spin"
    assert report["items"] == 80
    assert "workers x" in report["decision"]["lane"], report["decision"]
    assert report["decision"]["reason"]
    assert report["sample"]["compute_s"] > 0.005
    rows = report["predictions"]
    workers = {row["workers"] for row in rows if row["lane"] != "thread"}
    assert workers == set(range(1, report["machine"]["usable_cpus"] + 1))
    (threads,) = [row for row in rows if row["lane"] == "thread"]
    assert threads["seconds"] >= rows[0]["seconds"] * 0.9  # CPU work: threads gain nothing
    assert report["machine"]["calibrated"] is True
    run = report["run"]
    assert run["same_results"] is True
    assert run["measured_speedup"] > 0
    assert run["predicted_speedup"] == report["decision"]["predicted_speedup"]


@pytest.mark.processes
@pytest.mark.timeout(150)
def test_a_cheap_function_explained_for_people() -> None:
    done = explain("amorsize_exec._demo:double", "--input", "range(500)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("double over 500 items: serial")
    assert "why:" in done.stdout
    assert "machine:" in done.stdout


def test_a_target_that_does_not_load_is_a_usage_error() -> None:
    done = explain("no_such_module_here:f")
    assert done.returncode == 2
    assert "cannot load no_such_module_here:f" in done.stderr
