"""CPython's own process-pool tests pass with ``AutoExecutor`` plugged in (lanes process and
auto, the latter also with ``isolate=True``), but for the differences the runner lists.

Runs ``tests/cpython_contract.py`` (which says how) in a subprocess; skipped unless
``AMORSIZE_CPYTHON_TESTS`` names the folder holding CPython's ``test_concurrent_futures/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).with_name("cpython_contract.py")

#: The runner stops a hung group after its watchdogs (120 s per test, 60 s at exit), so a
#: lane normally ends well inside this; 30 s of tests on a quiet 2-core machine.
_LANE_TIMEOUT_S = 1500

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(
        not os.environ.get("AMORSIZE_CPYTHON_TESTS"),
        reason="AMORSIZE_CPYTHON_TESTS is not set (see tests/cpython_contract.py)",
    ),
]


@pytest.mark.timeout(_LANE_TIMEOUT_S + 60)
@pytest.mark.parametrize("lane", [["process"], ["auto"], ["auto", "--isolate"]], ids=" ".join)
def test_cpython_process_pool_tests_pass(lane: list[str], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(RUNNER), "--lane", *lane, "--out", str(tmp_path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=_LANE_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
