"""The package loads its names on first use: a pool worker reaching ``_backends._worker`` must not
import the parent's executor, pools or machine probe (they cost a cold pool ~100 ms)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import amorsize_exec
from amorsize_exec import _backends

PARENT_SIDE = (
    "amorsize_exec._executor",
    "amorsize_exec._machine",
    "amorsize_exec._cost_model",
    "amorsize_exec._sampler",
    "amorsize_exec._version",
    "amorsize_exec._backends._loky",
    "amorsize_exec._backends._chunks",
)


@pytest.mark.timeout(60)
def test_a_worker_imports_only_what_runs_in_it() -> None:
    code = (
        "import sys, amorsize_exec._backends._worker\n"
        f"print(sorted(m for m in {PARENT_SIDE!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.timeout(60)
@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio's TimeoutError is its own before")
def test_the_executor_does_not_import_asyncio() -> None:
    # Only the cluster lane waits on Dask futures; asyncio cost every user ~11 ms of import.
    code = "import sys\nfrom amorsize_exec import AutoExecutor\nprint('asyncio' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("package", [amorsize_exec, _backends])
def test_every_public_name_loads_and_is_listed(package: object) -> None:
    names = package.__all__  # type: ignore[attr-defined]
    for name in names:
        assert getattr(package, name) is not None
    assert set(names) <= set(dir(package))
    with pytest.raises(AttributeError, match="has no attribute 'Setings'"):
        getattr(package, "Setings")  # noqa: B009


def test_version_is_a_string() -> None:
    assert isinstance(amorsize_exec.__version__, str)
