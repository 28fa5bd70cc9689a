"""The cost model on fixed profiles: exact tables and hypothesis invariants (design §4)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amorsize_exec import Settings, choose_chunksize, decide, predict_parallel_s
from amorsize_exec._cost_model import (
    choose_submit_lane,
    format_seconds,
    format_speedup,
    horizon_for_unknown_length,
    parent_share_while_starting,
)
from amorsize_exec._stats import SampleStats
from amorsize_exec.testing import make_profile

SETTINGS = Settings()
TWO_CORES = make_profile(usable_cpus=2)


def stats(compute_s: float, **overrides: float) -> SampleStats:
    """Stats of a small-argument function, like the sampler measures for ``f(int) -> int``."""
    fields: dict[str, float] = {
        "items": 5,
        "compute_s": compute_s,
        "cpu_s": compute_s,
        "cv": 0.05,
        "max_s": compute_s * 1.1,
        "arg_bytes": 20.0,
        "result_bytes": 20.0,
        "serialize_s": 2e-6,
        "callable_bytes": 500,
        "callable_serialize_s": 2e-5,
    }
    fields.update(overrides)
    return SampleStats(**fields)  # type: ignore[arg-type]


# --- the table ------------------------------------------------------------------------


def test_trivial_function_over_10k_items_stays_serial() -> None:
    d = decide(stats(1e-7), TWO_CORES, SETTINGS, n_remaining=10_000)
    assert d.lane == "serial"
    assert d.speedup_at_two < 1.2
    assert "2 workers would reach only" in d.reason


def test_10ms_items_x300_on_two_cores_with_cold_pool_go_to_two_workers() -> None:
    d = decide(stats(0.010), TWO_CORES, SETTINGS, n_remaining=295, warm_workers=0)
    assert (d.lane, d.workers) == ("process", 2)
    assert 1.2 <= d.speedup_at_two <= 2.0
    assert "pool start 200 ms" in d.reason


def test_half_millisecond_x40_stays_serial() -> None:
    d = decide(stats(0.0005), TWO_CORES, SETTINGS, n_remaining=37)
    assert d.lane == "serial"


def test_warm_pool_makes_a_small_job_worth_it() -> None:
    cold = decide(stats(0.002), TWO_CORES, SETTINGS, n_remaining=100)
    warm = decide(stats(0.002), TWO_CORES, SETTINGS, n_remaining=100, warm_workers=2)
    assert cold.lane == "serial"  # 200 ms of work against 200 ms of pool start
    assert warm.lane == "process"
    assert "pool warm" in warm.reason


def test_unknown_length_chunks_are_sized_by_time_not_by_the_horizon() -> None:
    # 200 items done so far, 1 ms each: the horizon would cut chunks of ceil(200 / 8.4) = 24.
    d = decide(stats(0.001), TWO_CORES, SETTINGS, 200, warm_workers=2, length_known=False)
    assert (d.lane, d.chunksize) == ("process", 50)  # target_chunk_s / t
    known = decide(stats(0.001), TWO_CORES, SETTINGS, 200, warm_workers=2)
    assert known.chunksize == 24


def test_a_start_already_paid_in_process_no_longer_counts_against_the_pool() -> None:
    # 100 items x 2 ms against a 200 ms start: serial; once the run has spent the start, buy.
    cold = decide(stats(0.002), TWO_CORES, SETTINGS, 100, length_known=False)
    paid = decide(stats(0.002), TWO_CORES, SETTINGS, 100, length_known=False, start_paid=True)
    assert cold.lane == "serial"
    assert paid.lane == "process"
    assert "rent-or-buy" in paid.reason


def test_unknown_length_with_a_free_start_assumes_a_few_chunks_per_worker() -> None:
    # 20 items done, 1 ms each: one 50-item chunk would hold all of them; with a warm pool (or
    # a start paid) the input is assumed to go on for 4 chunks per worker.
    warm = decide(stats(0.001), TWO_CORES, SETTINGS, 20, warm_workers=2, length_known=False)
    assert (warm.lane, warm.chunksize) == ("process", 50)
    assert warm.reason.startswith("400 items")
    paid = decide(stats(0.001), TWO_CORES, SETTINGS, 20, length_known=False, start_paid=True)
    assert paid.lane == "process"
    cold = decide(stats(0.001), TWO_CORES, SETTINGS, 20, length_known=False)
    assert cold.lane == "serial", "a cold start is still bought by rent-or-buy"
    known = decide(stats(0.001), TWO_CORES, SETTINGS, 20, warm_workers=2)
    assert known.reason.startswith("20 items"), "a known length is never raised"
    cheap = decide(stats(1e-6), TWO_CORES, SETTINGS, 20, warm_workers=2, length_known=False)
    assert cheap.lane == "serial", "per-item economics still decide"


def test_the_parent_runs_items_during_a_start_only_with_a_core_to_spare() -> None:
    four = make_profile(usable_cpus=4)
    assert parent_share_while_starting(2, TWO_CORES, SETTINGS) == 0.0
    assert parent_share_while_starting(2, four, SETTINGS) == SETTINGS.parent_share_during_start
    assert parent_share_while_starting(4, four, SETTINGS) == 0.0
    s = stats(0.001)
    alone = predict_parallel_s(s, four, 1000, 2, 50, spawn_s=0.3)
    helped = predict_parallel_s(s, four, 1000, 2, 50, spawn_s=0.3, parent_share=0.5)
    # 0.3 s x 0.5 / 1 ms = 150 items run here, each saving the pool about t / 2.
    assert helped == pytest.approx(alone - 150 * (alone - 0.3) / 1000, rel=1e-9)


def test_more_cores_use_more_workers_when_work_is_large() -> None:
    d = decide(stats(0.05), make_profile(usable_cpus=8), SETTINGS, n_remaining=1000)
    assert (d.lane, d.workers) == ("process", 8)
    assert d.predicted_speedup > d.speedup_at_two


def test_max_workers_caps_the_choice() -> None:
    d = decide(stats(0.05), make_profile(usable_cpus=8), SETTINGS, 1000, max_workers=3)
    assert d.workers == 3


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"max_workers": 1}, "only 1 worker allowed"),
        ({"n_remaining": 1}, "1 item left"),
        ({"n_remaining": 0}, "the sample was the whole input"),
    ],
)
def test_no_parallelism_possible(kwargs: dict[str, int], expected: str) -> None:
    args: dict[str, int] = {"n_remaining": 1000}
    args.update(kwargs)
    d = decide(stats(1.0), TWO_CORES, SETTINGS, **args)
    assert d.lane == "serial"
    assert expected in d.reason


def test_single_cpu_machine_is_always_serial() -> None:
    d = decide(stats(1.0), make_profile(usable_cpus=1), SETTINGS, n_remaining=1000)
    assert d.lane == "serial"


def test_unpicklable_work_is_serial_with_the_reason() -> None:
    s = replace(stats(1.0), picklable=False, unpicklable_reason="an argument cannot be pickled")
    d = decide(s, TWO_CORES, SETTINGS, n_remaining=1000)
    assert d.lane == "serial"
    assert "an argument cannot be pickled" in d.reason


def test_nothing_measured_is_serial() -> None:
    assert decide(None, TWO_CORES, SETTINGS, n_remaining=1000).lane == "serial"


def test_large_arguments_make_a_cheap_function_serial() -> None:
    # 1 MB per item at 1 GB/s costs 1 ms each way in the parent: more than the 0.1 ms of work.
    heavy = stats(1e-4, arg_bytes=1e6, serialize_s=5e-4)
    assert decide(heavy, TWO_CORES, SETTINGS, n_remaining=200).lane == "serial"


def test_explicit_chunksize_is_respected() -> None:
    d = decide(stats(0.01), TWO_CORES, SETTINGS, n_remaining=300, chunksize=7)
    assert (d.lane, d.chunksize) == ("process", 7)


def test_min_speedup_setting_moves_the_threshold() -> None:
    s = stats(0.0025)
    assert decide(s, TWO_CORES, SETTINGS, 300).lane == "process"
    assert decide(s, TWO_CORES, Settings(min_speedup=1.9), 300).lane == "serial"


def test_chunksize_targets_chunk_time_and_balance() -> None:
    # 10 ms items: 50 ms chunks -> 5 items; 1 us items: balance caps at n / (4 chunks x 2).
    assert choose_chunksize(0.010, 300, 2, 0.0, SETTINGS) == 5
    assert choose_chunksize(1e-6, 10_000, 2, 0.0, SETTINGS) == 1250
    # uneven items ask for more, smaller chunks
    assert choose_chunksize(1e-6, 10_000, 2, 1.0, SETTINGS) == 625


def test_predict_parallel_counts_each_term() -> None:
    s = stats(
        0.01, cv=0.0, serialize_s=0.0, arg_bytes=0.0, result_bytes=0.0, callable_serialize_s=0.0
    )
    p = make_profile(chunk_roundtrip_s=0.0, ipc_s_per_byte=0.0)
    # 100 items x 10 ms on 2 workers, chunks of 10: 0.5 s + tail 10 x 10 ms / 2 + start 0.2 s.
    assert predict_parallel_s(s, p, 100, 2, 10, spawn_s=0.2) == pytest.approx(0.75)


def test_submit_lane() -> None:
    def lane(task_s: float, warm: bool, spent_s: float = 0.0) -> str:
        return choose_submit_lane(
            task_s, TWO_CORES, SETTINGS, pool_warm=warm, inprocess_spent_s=spent_s
        )

    assert lane(1e-5, warm=True) == "serial"
    assert lane(0.05, warm=True) == "process"
    # cold pool: rent until the in-process time spent would have paid for the pool's start
    assert lane(0.05, warm=False, spent_s=0.1) == "serial"
    assert lane(0.05, warm=False, spent_s=0.2) == "process"


def test_horizon_for_unknown_length_doubles() -> None:
    assert horizon_for_unknown_length(0) == 1
    assert horizon_for_unknown_length(37) == 37


@pytest.mark.parametrize(
    ("seconds", "text"), [(12e-6, "12 us"), (0.0034, "3.4 ms"), (1.2, "1.20 s")]
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("speedup", "threshold", "text"),
    [
        (1.5678, 1.2, "1.57x"),
        (1.196, 1.2, "1.196x"),  # missed 1.2x: "1.20x" would read as a pass
        (0.996, 1.0, "0.996x"),
        (0.99996, 1.0, "0.99996x"),
        (1.1999999999, 1.2, "1.1999999999x"),
        (1.0, 1.0, "1.00x"),
        (1.2, 1.2, "1.20x"),
    ],
)
def test_a_speedup_reads_on_its_side_of_the_threshold(
    speedup: float, threshold: float, text: str
) -> None:
    assert format_speedup(speedup, threshold) == text


@given(st.floats(0.0, 100.0), st.floats(0.5, 2.0))
def test_a_formatted_speedup_never_crosses_its_threshold(speedup: float, threshold: float) -> None:
    shown = float(format_speedup(speedup, threshold).removesuffix("x"))
    assert (shown >= threshold) == (speedup >= threshold)


# --- invariants (hypothesis) ----------------------------------------------------------------

compute = st.floats(min_value=1e-8, max_value=2.0)
items = st.integers(min_value=0, max_value=2_000_000)
cpus = st.integers(min_value=1, max_value=64)
spread = st.floats(min_value=0.0, max_value=3.0)
small_cost = st.floats(min_value=0.0, max_value=0.01)


@st.composite
def profiles(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    return make_profile(
        usable_cpus=draw(cpus),
        pool_start_s=draw(st.floats(min_value=0.0, max_value=2.0)),
        chunk_roundtrip_s=draw(small_cost),
        ipc_s_per_byte=draw(st.floats(min_value=0.0, max_value=1e-7)),
    )


@st.composite
def sample_stats(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    return stats(
        draw(compute),
        cv=draw(spread),
        serialize_s=draw(small_cost),
        arg_bytes=draw(st.floats(min_value=0, max_value=1e7)),
        callable_serialize_s=draw(small_cost),
    )


@settings(max_examples=300, deadline=None)
@given(s=sample_stats(), p=profiles(), n=items, warm=st.integers(0, 8))
def test_speedup_is_positive_and_at_most_the_worker_count(s, p, n, warm) -> None:  # type: ignore[no-untyped-def]
    d = decide(s, p, SETTINGS, n, warm_workers=warm)
    assert d.predicted_speedup > 0
    assert d.predicted_speedup <= d.workers + 1e-9
    if d.lane == "process":
        assert 2 <= d.workers <= min(p.usable_cpus, n)
        assert d.predicted_speedup >= d.speedup_at_two - 1e-9
        assert 1 <= d.chunksize <= math.ceil(n / d.workers)


@settings(max_examples=300, deadline=None)
@given(s=sample_stats(), p=profiles(), n=items, factor=st.floats(1.0, 1000.0))
def test_more_compute_per_item_never_flips_parallel_to_serial(s, p, n, factor) -> None:  # type: ignore[no-untyped-def]
    if decide(s, p, SETTINGS, n).lane == "process":
        heavier = replace(s, compute_s=s.compute_s * factor)
        assert decide(heavier, p, SETTINGS, n).lane == "process"


@settings(max_examples=300, deadline=None)
@given(
    s=sample_stats(),
    p=profiles(),
    n=st.integers(2, 2_000_000),
    extra=st.floats(0.0, 1.0),
    term=st.sampled_from(["pool_start_s", "chunk_roundtrip_s", "ipc_s_per_byte", "serialize_s"]),
)
def test_higher_costs_never_raise_the_speedup(s, p, n, extra, term) -> None:  # type: ignore[no-untyped-def]
    if term == "serialize_s":
        dearer_s, dearer_p = replace(s, serialize_s=s.serialize_s + extra * 1e-3), p
    else:
        dearer_s, dearer_p = s, replace(p, **{term: getattr(p, term) + extra * 1e-3})
    before = decide(s, p, SETTINGS, n).speedup_at_two
    after = decide(dearer_s, dearer_p, SETTINGS, n).speedup_at_two
    assert after <= before + 1e-12


@settings(max_examples=200, deadline=None)
@given(t=compute, n=st.integers(1, 10_000_000), w=st.integers(1, 64), cv=spread)
def test_chunksize_bounds(t, n, w, cv) -> None:  # type: ignore[no-untyped-def]
    assert 1 <= choose_chunksize(t, n, w, cv, SETTINGS) <= math.ceil(n / w)


@settings(max_examples=100, deadline=None)
@given(s=sample_stats(), p=profiles(), n=st.integers(0, 1))
def test_tiny_inputs_are_serial(s, p, n) -> None:  # type: ignore[no-untyped-def]
    assert decide(s, p, SETTINGS, n).lane == "serial"


@settings(max_examples=100, deadline=None)
@given(s=sample_stats(), p=profiles(), n=items)
def test_decide_is_deterministic(s, p, n) -> None:  # type: ignore[no-untyped-def]
    assert decide(s, p, SETTINGS, n) == decide(s, p, SETTINGS, n)


def test_items_already_using_every_core_stay_serial() -> None:
    # numpy's BLAS kept both cores busy for each item in the sample (CPU time 2x wall time):
    # two workers with one core each would take twice as long per item.
    two_threads = stats(0.0013, cpu_s=0.0026)
    assert decide(two_threads, TWO_CORES, SETTINGS, n_remaining=196, warm_workers=2).lane == (
        "serial"
    )
    one_thread = stats(0.0013, cpu_s=0.0013)
    assert decide(one_thread, TWO_CORES, SETTINGS, n_remaining=196, warm_workers=2).lane == (
        "process"
    )


def test_multithreaded_items_still_gain_on_a_machine_with_cores_to_spare() -> None:
    # 2 threads per item on 8 cores: a pool still gains, up to 8 / 2 = 4x.
    d = decide(stats(0.05, cpu_s=0.1), make_profile(usable_cpus=8), SETTINGS, 1000)
    assert d.lane == "process"
    assert d.workers >= 4
    # 8 cores / 2 per item: no worker count can beat 4x (beyond 4 workers, items get 1 core)
    assert 3.5 < d.predicted_speedup <= 4.0
