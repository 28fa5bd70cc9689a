"""The demo behind the README's first command: it runs, checks results and shows decisions."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from amorsize_exec import __version__
from amorsize_exec._demo import Workload, default_workloads, double, run_demo, spin, wait


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_demo_prints_times_and_decisions_for_each_workload() -> None:
    workloads = [
        Workload("trivial", 2000, double, lambda: range(2000)),
        Workload("generator", 30, spin, lambda: range(30), (10,), as_generator=True),
        Workload("waits", 30, wait, lambda: range(30), (0.01,)),
    ]
    out = io.StringIO()
    run_demo(out, workloads=workloads)
    text = out.getvalue()
    assert "trivial" in text
    assert "generator" in text
    assert text.count("decision: map(") == 3
    assert "decision: map(double): serial" in text
    assert "decision: map(wait): " in text
    assert "threads x chunks of" in text
    serial_rows = [
        line for line in text.splitlines() if "decision:" in line and ": serial," in line
    ]
    assert text.count("is the cost of deciding") == len(serial_rows), "said on serial rows only"


def test_default_workloads_cover_the_issue() -> None:
    names = [w.name for w in default_workloads()]
    assert names == [
        "trivial x*2",
        "~1 ms per item",
        "~20 ms per item",
        "generator, ~1 ms",
        "I/O-like, 10 ms",
    ]
    assert any(w.as_generator for w in default_workloads())


def test_cli_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "amorsize_exec", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == __version__
