"""``map(..., progress=...)`` (issue 13): a callback or a tqdm bar, in every lane."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest

from _workloads import double, fail_at, square_after_spin
from amorsize_exec import AutoExecutor

LANES: dict[str, dict[str, Any]] = {
    "auto": {},
    "serial": {"lane": "serial"},
    "process": {"lane": "process"},
}


class Reports:
    """A progress callback that keeps what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))


@pytest.mark.processes
@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", list(LANES))
def test_a_callback_sees_every_result_counted_against_the_length(lane: str) -> None:
    reports = Reports()
    with AutoExecutor(**LANES[lane]) as ex:
        out = list(ex.map(square_after_spin, range(60), [0.002] * 60, progress=reports))
    assert out == [x * x for x in range(60)]
    assert reports.calls[-1] == (60, 60)
    dones = [done for done, _ in reports.calls]
    assert dones == sorted(dones), "progress never goes back"


@pytest.mark.timeout(60)
def test_an_input_without_a_length_has_no_total_and_a_failure_still_reports() -> None:
    reports = Reports()
    with AutoExecutor(lane="serial") as ex:
        results = ex.map(fail_at, iter(range(20)), progress=reports)
        with pytest.raises(ValueError, match="7"):
            list(results)
    assert reports.calls[-1] == (7, None)


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_the_tqdm_bar_counts_to_the_end_and_shows_the_decision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)  # where tqdm draws
    with AutoExecutor(lane="process") as ex:
        assert list(ex.map(double, range(500), progress=True)) == [2 * x for x in range(500)]
    drawn = stream.getvalue()
    assert "500/500" in drawn
    assert "workers x" in drawn, "the bar says where the items run"


def test_progress_true_without_tqdm_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now fails
    with AutoExecutor(lane="serial") as ex, pytest.raises(ImportError, match="amorsize-exec"):
        ex.map(double, range(3), progress=True)


def test_progress_of_another_type_is_refused() -> None:
    with AutoExecutor(lane="serial") as ex, pytest.raises(TypeError, match="progress"):
        ex.map(double, range(3), progress="yes")  # type: ignore[arg-type]


def test_without_progress_the_results_are_the_lanes_own_iterator() -> None:
    # Off costs nothing: no wrapper between the consumer and the lane (a list iterator here).
    with AutoExecutor(lane="serial") as ex:
        assert not hasattr(ex.map(double, range(3)), "gi_frame")
