"""Remembered profiles (``_profile_store``): the file, and what a cold map does with it."""

from __future__ import annotations

import json
import logging
import re
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

import amorsize_exec
from _workloads import square_after_spin, worker_pids
from amorsize_exec import AutoExecutor, Settings
from amorsize_exec._config import cache_dir
from amorsize_exec._profile_store import ProfileStore, function_key
from amorsize_exec._stats import SampleStats
from amorsize_exec.testing import FakeProbe, make_profile


def costly(seconds: float = 0.05) -> SampleStats:
    return SampleStats(
        items=3,
        compute_s=seconds,
        cpu_s=seconds,
        cv=0.1,
        max_s=seconds,
        arg_bytes=20.0,
        result_bytes=20.0,
        serialize_s=1e-5,
        callable_serialize_s=1e-4,
        pickling_measured=True,
    )


def store(path: Path) -> ProfileStore:
    return ProfileStore(path / "profiles.json", costly_s=0.01, waits_below=0.2)


def make_adder(n: int) -> Callable[[int], int]:
    def add(x: int) -> int:
        return x + n

    return add


def test_a_costly_function_is_remembered_as_plain_json_for_the_user_alone(tmp_path: Path) -> None:
    store(tmp_path).remember(square_after_spin, costly(0.05))
    path = tmp_path / "profiles.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())  # JSON, never pickle: a cache file cannot run code
    (entry,) = data["entries"].values()
    assert entry["name"] == "square_after_spin"
    recalled = store(tmp_path).recall(square_after_spin)  # a new process reads the file
    assert recalled is not None
    assert recalled.compute_s == pytest.approx(0.05)
    assert recalled.serialize_s == pytest.approx(1e-5)
    assert recalled.pickling_measured


def test_cheap_functions_and_unmeasured_pickling_are_not_written(tmp_path: Path) -> None:
    profiles = store(tmp_path)
    profiles.remember(square_after_spin, costly(0.001))  # under send_ahead_above_s
    profiles.remember(square_after_spin, SampleStats(3, 0.05, 0.05, 0.0, 0.05))
    assert not (tmp_path / "profiles.json").exists()
    assert profiles.recall(square_after_spin) is None


def test_items_that_wait_are_written_even_cheap_and_unpickled(tmp_path: Path) -> None:
    # A thread run measures no pickling: the entry says so, and says the items wait.
    profiles = store(tmp_path)
    profiles.remember(square_after_spin, SampleStats(2, 0.002, 0.0001, 0.0, 0.002))
    recalled = store(tmp_path).recall(square_after_spin)
    assert recalled is not None
    assert (recalled.compute_s, recalled.cpu_s) == (0.002, 0.0001)
    assert not recalled.pickling_measured
    # Same item time, but they burn CPU now: rewritten, though the time did not move.
    profiles.remember(square_after_spin, costly(0.002))
    recalled = store(tmp_path).recall(square_after_spin)
    assert recalled is not None
    assert recalled.cpu_s == 0.002
    assert recalled.pickling_measured


def test_an_entry_is_rewritten_only_when_the_item_time_moved(tmp_path: Path) -> None:
    profiles = store(tmp_path)
    profiles.remember(square_after_spin, costly(0.05))
    path = tmp_path / "profiles.json"
    written = path.stat().st_mtime_ns
    profiles.remember(square_after_spin, costly(0.055))  # within 25%: no write
    assert path.stat().st_mtime_ns == written
    profiles.remember(square_after_spin, costly(0.002))  # now cheap: kept up to date
    recalled = store(tmp_path).recall(square_after_spin)
    assert recalled is not None
    assert recalled.compute_s == pytest.approx(0.002)


@pytest.mark.parametrize(
    "content",
    [
        "not json at all {",
        json.dumps({"version": 99, "entries": {}}),
        json.dumps({"version": 1, "machine": "another|64|cpython-399", "entries": {}}),
        json.dumps([1, 2, 3]),
    ],
)
def test_a_corrupt_or_foreign_file_is_ignored_with_a_debug_line(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "profiles.json"
    path.write_text(content)
    with caplog.at_level(logging.DEBUG, logger="amorsize_exec._profile_store"):
        assert store(tmp_path).recall(square_after_spin) is None
    assert "ignored" in caplog.text or content == json.dumps([1, 2, 3])
    store(tmp_path).remember(square_after_spin, costly())  # and replaced by a good one
    assert store(tmp_path).recall(square_after_spin) is not None


def test_a_won_thread_trial_is_remembered_even_cheap_until_threads_lose(tmp_path: Path) -> None:
    profiles = store(tmp_path)
    cheap = SampleStats(5, 0.0005, 0.001, 0.1, 0.0006)  # under send_ahead_above_s, unpickled
    profiles.remember_thread_win(square_after_spin, cheap, 1.7)
    again = store(tmp_path)  # a new process reads the file
    assert again.recall_thread_win(square_after_spin) == 1.7
    recalled = again.recall(square_after_spin)
    assert recalled is not None
    assert recalled.compute_s == 0.0005
    again.remember(square_after_spin, costly(0.002))  # the item time moved: rewritten...
    assert store(tmp_path).recall_thread_win(square_after_spin) == 1.7  # ...the win kept
    again.remember_thread_loss(square_after_spin, None)
    third = store(tmp_path)
    assert third.recall_thread_win(square_after_spin) is None
    assert third.recall(square_after_spin) is not None  # the figures stay


def test_lost_thread_trials_leave_the_next_runs_untried_from_the_second_loss_on(
    tmp_path: Path,
) -> None:
    cheap = costly(0.001)
    turns = []
    for _ in range(11):  # each run a new process, and each run that tries loses
        due = store(tmp_path).trial_due_this_run(square_after_spin)
        turns.append(due)
        if due:
            store(tmp_path).remember_thread_loss(square_after_spin, cheap)
    #       lost, lost, 1 untried, lost, 3 untried, lost, 7 untried (3 of them seen here)
    assert turns == [True, True, False, True, False, False, False, True, False, False, False]
    store(tmp_path).remember_thread_win(square_after_spin, cheap, 1.5)  # a map that tried anyway
    assert store(tmp_path).trial_due_this_run(square_after_spin)  # the losses are forgotten
    assert store(tmp_path).trial_due_this_run(make_adder(1))  # nothing known: tried


@pytest.mark.parametrize("bad", [[1], [-1, 3], [1.5, 1], "1,1", None, [True, True]])
def test_a_bad_thread_loss_record_counts_as_none(tmp_path: Path, bad: object) -> None:
    store(tmp_path).remember_thread_loss(square_after_spin, costly(0.001))
    path = tmp_path / "profiles.json"
    data = json.loads(path.read_text())
    for entry in data["entries"].values():
        entry["threads_lost"] = bad
    path.write_text(json.dumps(data))
    assert store(tmp_path).trial_due_this_run(square_after_spin)
    store(tmp_path).remember_thread_loss(square_after_spin, None)  # counted afresh: one loss
    assert store(tmp_path).trial_due_this_run(square_after_spin)
    store(tmp_path).remember_thread_loss(square_after_spin, None)  # two in a row
    assert not store(tmp_path).trial_due_this_run(square_after_spin)


@pytest.mark.parametrize("bad", [-1.0, "2", None, 0.0, True, float("nan")])
def test_a_bad_thread_win_is_not_trusted(tmp_path: Path, bad: object) -> None:
    store(tmp_path).remember_thread_win(square_after_spin, costly(0.001), 1.7)
    path = tmp_path / "profiles.json"
    data = json.loads(path.read_text())
    for entry in data["entries"].values():
        entry["threads_won"] = bad
    path.write_text(json.dumps(data))
    assert store(tmp_path).recall_thread_win(square_after_spin) is None


@pytest.mark.parametrize("bad", [-1.0, "0.05", None, float("inf"), True])
def test_a_bad_entry_is_not_trusted_and_is_replaced(tmp_path: Path, bad: object) -> None:
    store(tmp_path).remember(square_after_spin, costly())
    path = tmp_path / "profiles.json"
    data = json.loads(path.read_text())
    for entry in data["entries"].values():
        entry["compute_s"] = bad
        entry["saved"] = bad
    path.write_text(json.dumps(data))
    edited = store(tmp_path)
    assert edited.recall(square_after_spin) is None
    edited.remember(square_after_spin, costly(0.05))  # rewritten, not a crash
    recalled = store(tmp_path).recall(square_after_spin)
    assert recalled is not None
    assert recalled.compute_s == pytest.approx(0.05)


def test_settings_turn_it_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AMORSIZE_EXEC_CACHE_DIR", str(tmp_path))
    off = ProfileStore.for_settings(Settings(remember_profiles=0))
    off.remember(square_after_spin, costly())
    assert off.recall(square_after_spin) is None
    assert not any(tmp_path.iterdir())
    on = ProfileStore.for_settings(Settings())
    assert on.path == tmp_path / "profiles.json"


def test_the_cache_directory_is_the_users() -> None:
    assert cache_dir({"AMORSIZE_EXEC_CACHE_DIR": "/x"}) == Path("/x")
    assert cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/amorsize_exec")
    assert cache_dir({}).parts[-2:] == (".cache", "amorsize_exec")


def test_keys_follow_the_code() -> None:
    assert function_key(square_after_spin) == function_key(square_after_spin)
    assert function_key(make_adder(1)) == function_key(make_adder(2))  # same code
    assert function_key(square_after_spin) != function_key(make_adder(1))
    assert function_key(len) is None  # builtins have no bytecode: not remembered


# --- what a cold map does with a remembered profile -----------------------------------------


def run_cold(probe: FakeProbe, *args: Any) -> tuple[list[int], str, str]:
    amorsize_exec.reset_default_pools()  # a cold start, as a new run of the script has
    with AutoExecutor(probe=probe) as ex:
        results = list(ex.map(square_after_spin, *args))
        record = ex.last_decision
    assert record is not None
    return results, record.decision.reason, record.lane


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_a_remembered_costly_function_starts_its_pool_at_once(
    cheap_pool_probe: FakeProbe,
) -> None:
    items = range(12)
    first, why_first, _ = run_cold(cheap_pool_probe, items, [0.02] * 12)
    assert "started at once" not in why_first
    again, why_again, lane = run_cold(cheap_pool_probe, items, [0.02] * 12)
    assert first == again == [x * x for x in items]
    # The time remembered is the first run's sample: 20 ms items (24 ms on a loaded machine).
    found = re.search(r"sent ahead to a pool started at once \(items took ([\d.]+) ms", why_again)
    assert found is not None, why_again
    assert 20 <= float(found.group(1)) < 100, why_again
    assert lane == "process"


@pytest.mark.processes
@pytest.mark.timeout(60)
def test_a_stale_profile_is_rechecked_by_the_sample(cheap_pool_probe: FakeProbe) -> None:
    """Remembered as costly, cheap now: one item went to the pool early, the rest runs here."""
    run_cold(cheap_pool_probe, range(12), [0.02] * 12)
    results, why, lane = run_cold(cheap_pool_probe, range(3000), [0.0] * 3000)
    assert results == [x * x for x in range(3000)]
    assert "started at once" in why
    assert lane == "serial", why


def sleep_20ms(x: int) -> int:
    time.sleep(0.02)
    return x


@pytest.mark.timeout(60)
def test_a_remembered_waiting_function_goes_to_threads_unsampled_and_starts_no_pool() -> None:
    """Items that waited in an earlier run: straight to the threads, no pool started."""
    amorsize_exec.reset_default_pools()  # a cold start, as a new run of the script has
    workers_before = worker_pids()
    records = []
    for _ in range(2):
        with AutoExecutor(probe=FakeProbe(make_profile(usable_cpus=2))) as ex:
            assert list(ex.map(sleep_20ms, range(60))) == list(range(60))
            records.append(ex.last_decision)
    first, again = records
    assert first is not None
    assert again is not None
    assert (first.lane, again.lane) == ("thread", "thread"), again.summary()
    assert "no sample here" not in first.decision.reason
    assert "items waited in an earlier run" in again.decision.reason, again.summary()
    assert worker_pids() <= workers_before


def nap_4ms(x: int) -> tuple[int, str]:
    time.sleep(0.004)  # releases the GIL, as a BLAS call does
    return x * 3, threading.current_thread().name


def burn_2ms_of_cpu(x: int) -> tuple[int, str]:
    """2 ms of this thread's CPU: two threads of it take turns at the GIL."""
    end = time.thread_time() + 0.002
    while time.thread_time() < end:
        pass
    return x * 3, threading.current_thread().name


def blas_like(compute_s: float) -> SampleStats:
    """What a serial run that tried threads remembers: its pace, on several cores."""
    return SampleStats(5, compute_s, 2 * compute_s, 0.1, compute_s, single_thread_s=compute_s)


@pytest.mark.timeout(60)
def test_a_function_whose_thread_trial_won_runs_on_threads_unsampled_in_a_later_run() -> None:
    probe = FakeProbe(make_profile(usable_cpus=2))
    with AutoExecutor(probe=probe) as earlier:  # an earlier run's trial won, 6 ms an item
        earlier._runtime.profiles.remember_thread_win(nap_4ms, blas_like(0.006), 1.9)
    with AutoExecutor(probe=probe) as ex:
        out = list(ex.map(nap_4ms, range(60)))
        record = ex.last_decision
        assert list(ex.map(nap_4ms, range(60))) == [(x * 3, ANY) for x in range(60)]
        second = ex.last_decision
    assert second is not None
    assert "in an earlier run" not in second.decision.reason  # decided on its own
    assert [x for x, _ in out] == [x * 3 for x in range(60)]
    assert {name.startswith("amorsize_exec-thread") for _, name in out} == {True}  # none here
    assert record is not None
    assert (record.lane, record.decision.workers) == ("thread", 2), record.summary()
    assert record.decision.reason == (
        "items released the GIL in an earlier run (1.90x, 6 ms each serially): no sample "
        "here; the rest runs here if the threads fall behind that pace"
    )
    assert ex._runtime.profiles.recall_thread_win(nap_4ms) == 1.9  # still remembered


@pytest.mark.timeout(60)
def test_a_remembered_thread_win_that_no_longer_holds_hands_the_rest_back_to_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Remembered at 1 ms an item serially; now each item holds the GIL for 2 ms. A dear pool
    (5 s to start) keeps the rest here (on a loaded machine, the serial run's re-checks may
    still move it to the thread lane: CPU work can look like waiting there)."""
    probe = FakeProbe(make_profile(usable_cpus=2, pool_start_s=5.0, start_method="loky"))
    with AutoExecutor(probe=probe) as earlier:
        earlier._runtime.profiles.remember_thread_win(burn_2ms_of_cpu, blas_like(0.001), 1.9)
    with caplog.at_level(logging.INFO, logger="amorsize_exec"), AutoExecutor(probe=probe) as ex:
        out = list(ex.map(burn_2ms_of_cpu, range(100)))
        store = ex._runtime.profiles
    assert [x for x, _ in out] == [x * 3 for x in range(100)]
    ran_on = [name for _, name in out]
    back = ran_on.index("MainThread")  # the first item handed back to the caller
    assert 0 < back < 100
    assert all(name.startswith("amorsize_exec-thread") for name in ran_on[:back])
    pattern = r"threads ran \d+ items at [\d.]+ ms each against 1 ms serially \(0\.\d+x\): "
    messages = [r.getMessage() for r in caplog.records]
    revised = [m for m in messages if re.search(pattern + "the rest runs here$", m)]
    assert len(revised) == 1, messages
    assert store.recall_thread_win(burn_2ms_of_cpu) is None  # the next run samples first
