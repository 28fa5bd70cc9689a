"""``ThreadTrial``: a serial run of items that used several cores tries a batch on threads.

Which runs try (``trial_items``) is arithmetic on the sample's figures. The trial itself runs
real threads: items that sleep release the GIL as BLAS calls do, and overlap whatever the
machine's load. The numpy case runs in a fresh interpreter (see test_blas.py for why).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from typing import Any

import pytest

from amorsize_exec import AutoExecutor, Settings
from amorsize_exec._lanes import MapOptions
from amorsize_exec._stats import SampleStats
from amorsize_exec._thread_pace import PaceJudge
from amorsize_exec._thread_trial import ThreadTrial, trial_items
from amorsize_exec._trial_outcomes import MOST_UNTRIED, TrialOutcomes
from amorsize_exec.testing import FakeClock, FakeProbe, make_profile

OPTIONS = MapOptions(deadline=None, chunksize=None, buffersize=None)
ON_SEVERAL_CORES = SampleStats(
    items=5, compute_s=0.0005, cpu_s=0.001, cv=0.1, max_s=0.0006, single_thread_s=0.0007
)


def executor(settings: Settings | None = None, **options: object) -> AutoExecutor:
    probe = FakeProbe(make_profile(usable_cpus=2))
    return AutoExecutor(probe=probe, settings=settings, **options)  # type: ignore[arg-type]


@pytest.fixture
def ex() -> Iterator[AutoExecutor]:
    with executor() as running:
        yield running


def test_only_items_timed_on_one_blas_thread_are_tried(ex: AutoExecutor) -> None:
    rt = ex._runtime
    # 20 ms of 0.5 ms items: 40 on threads, if that is at most a quarter of what is left.
    assert trial_items(rt, nap, ON_SEVERAL_CORES, 200, 0.0005) == 40
    assert trial_items(rt, nap, ON_SEVERAL_CORES, 159, 0.0005) == 0
    assert trial_items(rt, nap, ON_SEVERAL_CORES, None, 0.0005) == 0  # no length
    one_core = replace(ON_SEVERAL_CORES, single_thread_s=0.0)  # pure Python: the GIL holds
    assert trial_items(rt, nap, one_core, 10_000, 0.0005) == 0


def test_after_k_lost_trials_in_a_row_the_next_2_to_the_k_minus_1_maps_run_untried() -> None:
    outcomes = TrialOutcomes()
    turns = []
    for _ in range(11):  # each map that tries loses
        due = outcomes.due(nap)
        turns.append(due)
        if due:
            outcomes.record(nap, won=False)
    #       lost, 1 untried, lost, 3 untried, lost, 7 untried (4 of them seen here)
    assert turns == [True, False, True, False, False, False, True, False, False, False, False]
    assert outcomes.due(fails_at_five)  # another function has its own count


def test_untried_maps_are_capped_so_changed_items_get_tried_again() -> None:
    outcomes = TrialOutcomes()
    for _ in range(10):
        outcomes.record(nap, won=False)  # 1023 maps untried, but for the cap
    untried = 0
    while not outcomes.due(nap):
        untried += 1
    assert untried == MOST_UNTRIED


def test_a_won_trial_forgets_the_losses_before_it() -> None:
    outcomes = TrialOutcomes()
    outcomes.record(nap, won=False)
    outcomes.record(nap, won=False)  # 3 maps untried...
    outcomes.record(nap, won=True)  # ...until a win (a map that tried anyway)
    assert outcomes.due(nap)
    outcomes.record(nap, won=False)
    assert [outcomes.due(nap), outcomes.due(nap)] == [False, True]  # one loss: one map untried


def test_trial_items_skips_the_maps_after_a_lost_trial(ex: AutoExecutor) -> None:
    rt = ex._runtime
    assert trial_items(rt, nap, ON_SEVERAL_CORES, 200, 0.0005) == 40
    rt.trials.record(nap, won=False)
    assert trial_items(rt, nap, ON_SEVERAL_CORES, 200, 0.0005) == 0
    assert trial_items(rt, nap, ON_SEVERAL_CORES, 200, 0.0005) == 40
    rt.trials.record(nap, won=False)  # a second loss in a row: 3 maps untried
    # A map that could not try anyway does not count as one untried.
    assert trial_items(rt, nap, ON_SEVERAL_CORES, None, 0.0005) == 0
    assert [trial_items(rt, nap, ON_SEVERAL_CORES, 200, 0.0005) for _ in range(4)] == [
        0,
        0,
        0,
        40,
    ]


def test_only_an_executors_first_map_of_a_function_asks_about_earlier_runs() -> None:
    outcomes = TrialOutcomes()
    asked = []

    def earlier_runs_lost(fn: object) -> bool:
        asked.append(fn)
        return False

    assert not outcomes.due(nap, earlier_runs_lost)  # this run is one left untried
    assert outcomes.due(nap, earlier_runs_lost)  # the executor's next map: its own count
    assert asked == [nap]


def test_a_cold_run_after_lost_trials_in_earlier_runs_does_not_try(ex: AutoExecutor) -> None:
    rt = ex._runtime
    rt.profiles.remember_thread_loss(nap, ON_SEVERAL_CORES)  # two earlier runs lost
    rt.profiles.remember_thread_loss(nap, ON_SEVERAL_CORES)
    assert trial_items(rt, nap, ON_SEVERAL_CORES, 200, 0.0005) == 0  # this run: untried
    assert trial_items(rt, nap, ON_SEVERAL_CORES, 200, 0.0005) == 40  # its next map tries
    with executor() as next_run:  # the run after: tried again (two losses, one run untried)
        assert trial_items(next_run._runtime, nap, ON_SEVERAL_CORES, 200, 0.0005) == 40


@pytest.mark.parametrize(
    ("settings", "options"),
    [
        (Settings(thread_trial_s=0), {}),
        (Settings(thread_lane_max_threads=1), {}),
        (None, {"max_workers": 1}),
    ],
)
def test_no_trial_where_threads_are_off_or_one_worker_is_allowed(
    settings: Settings | None, options: dict[str, object]
) -> None:
    with executor(settings, **options) as one:
        assert trial_items(one._runtime, nap, ON_SEVERAL_CORES, 10_000, 0.0005) == 0


def nap(x: int) -> int:
    time.sleep(0.004)  # releases the GIL, as a BLAS call does
    return x * 2


@pytest.mark.timeout(30)
def test_a_trial_that_beats_the_sample_moves_the_rest_to_threads(ex: AutoExecutor) -> None:
    with closing(ThreadTrial(ex._runtime, nap, 12, item_s=0.004)) as trial:
        assert list(trial.run(zip(iter(range(12))), OPTIONS)) == [x * 2 for x in range(12)]
    decision = trial.decision(left=100)
    assert decision is not None  # 2 threads overlap the naps: ~2x
    assert (decision.lane, decision.workers) == ("thread", 2)
    assert decision.predicted_speedup >= Settings().min_speedup
    assert "items release the GIL: 12 items on 2 threads" in decision.reason


@pytest.mark.timeout(30)
def test_a_trial_slower_than_the_sample_keeps_the_run_serial(ex: AutoExecutor) -> None:
    # The sample said 1 ms an item; on two threads, 4 ms naps come out at ~2 ms.
    with closing(ThreadTrial(ex._runtime, nap, 12, item_s=0.001)) as trial:
        assert list(trial.run(zip(iter(range(12))), OPTIONS)) == [x * 2 for x in range(12)]
    assert trial.decision(left=100) is None


def long_nap(x: int) -> int:
    time.sleep(0.01)
    return x * 2


@pytest.mark.timeout(30)
def test_a_trial_stops_feeding_threads_once_it_can_no_longer_win(ex: AutoExecutor) -> None:
    # The sample said 1 ms an item; threads take 10 ms naps (~5 ms an item on two). Past
    # (40 - 4) x 1 ms / 1.2 = 30 ms from its first result the trial cannot win: it reads no
    # more items, finishes those in flight (a window of 4 chunks of 2), and loses.
    source = iter(range(100))
    with closing(ThreadTrial(ex._runtime, long_nap, 40, item_s=0.001)) as trial:
        out = list(trial.run(zip(source), OPTIONS))
    assert 8 <= trial.ran < 40  # all 40 would take ~200 ms
    assert out == [x * 2 for x in range(trial.ran)]
    assert next(source) == trial.ran  # none read and dropped: the serial run goes on from here
    assert trial.decision(left=60) is None


def fails_at_five(x: int) -> int:
    if x == 5:
        raise ValueError("five")
    return x


@pytest.mark.timeout(30)
def test_an_exception_in_the_trial_ends_the_map_at_its_position(ex: AutoExecutor) -> None:
    source = iter(range(100))
    with closing(ThreadTrial(ex._runtime, fails_at_five, 12, item_s=0.001)) as trial:
        results = trial.run(zip(source), OPTIONS)
        got = [next(results) for _ in range(5)]
        with pytest.raises(ValueError, match="five"):
            next(results)
    assert got == [0, 1, 2, 3, 4]
    assert trial.failed
    assert next(source) == 12  # the trial read its 12 items and no more


def run_with_numpy(script: str) -> dict[str, Any]:
    """``script`` in a fresh interpreter (a BLAS user imported here would change what later
    tests sample), after ``TWICE_THE_WALL``; its last line of output, read as JSON."""
    if (
        importlib.util.find_spec("numpy") is None
        or importlib.util.find_spec("threadpoolctl") is None
    ):
        pytest.skip("needs numpy and threadpoolctl")
    done = subprocess.run(
        [sys.executable, "-c", TWICE_THE_WALL + script],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen


#: A CPU clock for the sampler: every item looks BLAS-threaded (see test_blas.py), whatever
#: the load lets OpenBLAS do.
TWICE_THE_WALL = r"""
import time as _time

class TwiceTheWall:
    def __call__(self):
        return 2.0 * _time.perf_counter()
"""


SCRIPT = r"""
import json, logging, os, threading
import numpy as np
from threadpoolctl import threadpool_info
from amorsize_exec import AutoExecutor, Settings
from amorsize_exec._sampler import Sampler
from amorsize_exec.testing import FakeClock, FakeProbe, make_profile

seen = []
lock = threading.Lock()

def solve(seed):
    with lock:
        seen.append(seed)
    rng = np.random.default_rng(seed)
    a = rng.random((120, 120)) + 120.0 * np.eye(120)
    return round(float(np.linalg.solve(a, rng.random(120)).sum()), 6)

tried = []
class Trials(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("thread trial of"):  # not the rest's re-check
            tried.append(record.getMessage())
log = logging.getLogger("amorsize_exec._thread_trial")
log.setLevel(logging.DEBUG)
log.addHandler(Trials())

before = [lib["num_threads"] for lib in threadpool_info()]
probe = FakeProbe(make_profile(usable_cpus=2, pool_start_s=5.0, start_method="loky"))
with AutoExecutor(probe=probe, settings=Settings(thread_trial_s=0.005)) as ex:
    ex._runtime.sampler = Sampler(Settings(), cpu_clock=TwiceTheWall())
    out = list(ex.map(solve, range(400)))
    record = ex.last_decision
ran = list(seen)
expected = [solve(x) for x in range(400)]
print(json.dumps({
    "same": out == expected,
    "once_each": sorted(ran) == list(range(400)),
    "blas_before": before,
    "blas_after": [lib["num_threads"] for lib in threadpool_info()],
    "tried": tried,
    "lane": record.decision.lane,
    "reason": record.decision.reason,
}))
"""


@pytest.mark.timeout(120)
def test_numpy_items_are_tried_on_threads_once_each_and_blas_is_given_back() -> None:
    # A pool dear to start (5 s) keeps the run serial; its sample's items "used two cores",
    # so the next 5 ms of items run on 2 threads. Whatever the
    # trial found, every item ran once, in order, and BLAS keeps its threads.
    seen = run_with_numpy(SCRIPT)
    assert seen["same"], seen
    assert seen["once_each"], seen
    assert seen["blas_after"] == seen["blas_before"], seen
    assert len(seen["tried"]) == 1, seen
    assert "items on 2 threads" in seen["tried"][0], seen
    if seen["lane"] == "thread":  # the threads kept their pace, or the rest went one at a time
        assert seen["reason"].startswith("switched mid-run: items release the GIL") or (
            seen["reason"].endswith("the rest runs one chunk at a time")
        ), seen
    else:
        assert seen["lane"] == "serial", seen


LOST_TRIAL = r"""
import json, logging, re, threading, time
import numpy  # a BLAS user: the sampler times an item on one BLAS thread
from amorsize_exec import AutoExecutor, Settings
from amorsize_exec._sampler import Sampler
from amorsize_exec.testing import FakeClock, FakeProbe, make_profile

after_trial = False

def item(x):
    # 1 ms of wall time here; on a trial's thread, 30 ms more: the trial loses. The first
    # call back here after the trial takes SETTLE_S more (BLAS's threads settling).
    global after_trial
    if threading.current_thread() is not threading.main_thread():
        after_trial = True
        time.sleep(0.03)
    elif after_trial:
        after_trial = False
        time.sleep(SETTLE_S)
    end = time.perf_counter() + 0.001
    while time.perf_counter() < end:
        pass
    return x

rechecks = []
class Rechecks(logging.Handler):
    def emit(self, record):
        found = re.search(r"re-check after (\d+) items, ([\d.]+) s", record.getMessage())
        if found:
            rechecks.append(float(found.group(2)) / int(found.group(1)))
log = logging.getLogger("amorsize_exec._map_call")
log.setLevel(logging.DEBUG)
log.addHandler(Rechecks())

probe = FakeProbe(make_profile(usable_cpus=2, pool_start_s=5.0, start_method="loky"))
with AutoExecutor(probe=probe, settings=Settings(thread_trial_s=0.02)) as ex:
    ex._runtime.sampler = Sampler(Settings(), cpu_clock=TwiceTheWall())
    out = list(ex.map(item, range(400)))
    learned = ex._runtime.planner.last_stats(item)
    lane = ex.last_decision.decision.lane
print(json.dumps({"same": out == list(range(400)), "lane": lane,
                  "learned_s": learned.compute_s if learned else None,
                  "first_recheck_s": rechecks[0] if rechecks else None}))
"""


@pytest.mark.timeout(120)
def test_a_lost_trial_leaves_the_serial_pace_as_the_loop_runs_it() -> None:
    # ~20 items on the trial's threads take ~15 ms each; counted at that wall time, the run's
    # pace (what re-checks weigh a pool against, and fn's next map assumes) read ~1.7 ms
    # for 1 ms items. It must stay at the items' own ~1 ms (a last batch counted as full
    # made it 0.92 ms).
    seen = run_with_numpy("SETTLE_S = 0.0\n" + LOST_TRIAL)
    assert seen["same"], seen
    assert seen["lane"] == "serial", seen
    assert seen["learned_s"] is not None, seen
    assert 0.00095 < seen["learned_s"] < 0.0013, seen


@pytest.mark.timeout(120)
def test_the_first_item_back_after_a_lost_trial_does_not_set_the_pace() -> None:
    # The first call back on this thread takes 25 ms more, as a solve after the trial's did
    # in a few fresh interpreters in 30 (benchmarks/blas_settle.py). The re-check right
    # after it read ~2 ms for 1 ms items when it was timed; it must read the items' own pace.
    seen = run_with_numpy("SETTLE_S = 0.025\n" + LOST_TRIAL)
    assert seen["same"], seen
    assert seen["first_recheck_s"] is not None, seen
    # 1.333 ms was read once: the debug line gives the time to 1 ms (4 ms over 3 items?).
    assert 0.00095 < seen["first_recheck_s"] < 0.0015, seen


def trial_threads_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("amorsize_exec-thread")]


def wait_for_no_trial_threads() -> None:
    deadline = time.monotonic() + 5
    while trial_threads_alive() and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize(("item_s", "won"), [(0.004, True), (0.0005, False)])
def test_the_rest_a_trial_wins_runs_on_its_threads_and_they_end_with_the_map(
    ex: AutoExecutor, item_s: float, won: bool
) -> None:
    # Naps of 4 ms overlap on 2 threads (~2x the serial 4 ms: won); against a serial pace of
    # 0.5 ms they lose. Won, the rest runs on the trial's own threads (new ones would pay
    # their first BLAS calls again); either way none is left once the map has ended.
    trial = ThreadTrial(ex._runtime, nap, 12, item_s=item_s)
    seen: set[threading.Thread] = set()

    def results() -> Iterator[Any]:
        for batch in trial.take_or_hand_back(iter(range(40)), True, ON_SEVERAL_CORES, 40, OPTIONS):
            for result in batch:
                seen.update(trial_threads_alive())
                yield result

    out = list(itertools.islice(results(), 13 if not won else 40))
    assert out == [x * 2 for x in range(len(out))]
    assert (trial.at_serial_pace == 0) is won  # lost: its 12 items and the one handed back
    assert len(seen) == 2  # the trial's two threads, and no others for the rest
    wait_for_no_trial_threads()
    assert trial_threads_alive() == []


def test_a_trial_abandoned_midway_ends_its_threads(ex: AutoExecutor) -> None:
    trial = ThreadTrial(ex._runtime, nap, 12, item_s=0.004)
    batches = trial.take_or_hand_back(iter(range(40)), True, ON_SEVERAL_CORES, 40, OPTIONS)
    first = next(batches)
    assert next(first) == 0
    assert trial_threads_alive()
    first.close()
    batches.close()  # the consumer dropped the map
    wait_for_no_trial_threads()
    assert trial_threads_alive() == []


@pytest.mark.timeout(30)
def test_a_won_trial_is_remembered_for_later_runs_and_a_lost_one_forgotten(
    ex: AutoExecutor,
) -> None:
    store = ex._runtime.profiles
    for item_s, won in ((0.004, True), (0.0005, False)):
        trial = ThreadTrial(ex._runtime, nap, 12, item_s=item_s)
        batches = trial.take_or_hand_back(iter(range(40)), True, ON_SEVERAL_CORES, 40, OPTIONS)
        assert list(itertools.chain.from_iterable(batches))[:13] == [x * 2 for x in range(13)]
        speedup = store.recall_thread_win(nap)
        if won:
            assert speedup is not None
            assert speedup >= Settings().min_speedup
            remembered = store.recall(nap)
            assert remembered is not None
            assert remembered.compute_s == pytest.approx(0.004)  # the serial pace, not the threads'
        else:
            assert speedup is None


def feed(judge: PaceJudge, clock: FakeClock, chunks: int, item_s: float) -> list[float | None]:
    """``chunks`` chunks of 2 items, each coming back ``2 * item_s`` after the last."""
    answers = []
    for _ in range(chunks):
        clock.advance(2 * item_s)
        answers.append(judge.came(2))
    return answers


def test_the_pace_is_judged_once_after_each_threads_first_chunk() -> None:
    clock = FakeClock()
    judge = PaceJudge(0.02, item_s=0.001, threads=2, chunksize=2, clock=clock)
    # Two first chunks (the threads' first calls: slow, not judged), then results every
    # 0.6 ms an item against 1 ms serially. Judged once 20 ms have passed and each thread
    # has run 4 more chunks: at the 17th chunk after the first two, and never again.
    assert feed(judge, clock, 2, item_s=0.05) == [None, None]
    answers = feed(judge, clock, 20, item_s=0.0006)
    assert answers[:16] == [None] * 16
    assert answers[16] == pytest.approx(0.001 / (0.0204 / 32))  # 34 items, less one chunk
    assert answers[17:] == [answers[16]] * 3
    assert judge.verdict == "threads ran 34 items at 638 us each against 1 ms serially (1.57x)"


def test_threads_slower_than_the_serial_pace_read_under_one() -> None:
    clock = FakeClock()
    judge = PaceJudge(0.02, item_s=0.001, threads=2, chunksize=2, clock=clock)
    feed(judge, clock, 2, item_s=0.001)
    answers = feed(judge, clock, 8, item_s=0.003)  # 3 ms an item, against 1 ms serially
    assert answers[:7] == [None] * 7
    # 48 ms for 16 items, less the other thread's chunk under way when the clock started
    assert judge.verdict == "threads ran 16 items at 3.43 ms each against 1 ms serially (0.29x)"


def nap_then_hold_the_gil(x: int) -> tuple[int, str]:
    """4 ms naps for the trial's 8 items, then 8 ms of this thread's CPU (the GIL held)."""
    if x < 8:
        time.sleep(0.004)
    else:
        end = time.thread_time() + 0.008
        while time.thread_time() < end:
            pass
    return x * 2, threading.current_thread().name


@pytest.mark.timeout(60)
def test_a_won_trials_rest_that_falls_behind_hands_the_rest_back_to_the_caller(
    ex: AutoExecutor,
) -> None:
    rt = ex._runtime
    trial = ThreadTrial(rt, nap_then_hold_the_gil, 8, item_s=0.004)
    source = iter(range(60))
    batches = trial.take_or_hand_back(source, True, ON_SEVERAL_CORES, 60, OPTIONS)
    out = list(itertools.chain.from_iterable(batches))
    assert [x for x, _ in out] == [x * 2 for x in range(len(out))]
    assert list(source) == list(range(len(out), 60))  # none read and dropped: the serial run's
    where = [name for _, name in out]
    assert where[0].startswith("amorsize_exec-thread")  # the trial won on naps...
    assert where[-1] == "MainThread"  # ...its rest fell behind: the next item came back here
    assert trial.stopped
    record = rt.last_decision
    assert record is not None
    assert record.lane == "serial", record.summary()
    pattern = r"threads ran \d+ items at [\d.]+ ms each against 4 ms serially \(0\.\d+x\): "
    assert re.fullmatch(pattern + "the rest runs here", record.decision.reason), record.summary()
    assert rt.profiles.recall_thread_win(nap_then_hold_the_gil) is None  # a loss, remembered
    assert not rt.trials.due(nap_then_hold_the_gil)
