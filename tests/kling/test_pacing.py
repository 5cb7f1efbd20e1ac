"""The one look schedule, as pure functions: what wait() and the engine's cadence both follow."""

from __future__ import annotations

import itertools

import pytest

from klingwatch.kling.pacing import (
    CadencePolicy,
    Percentiles,
    Timing,
    expected_looks,
    interval_for,
    next_interval,
    phase,
)
from klingwatch.kling.products import ExpectedTiming

NO_JITTER = CadencePolicy(jitter=0.0)
FINISH = Percentiles(p50=85.0, p95=210.0, p99=340.0)
TIMING = Timing(Percentiles(10, 30, 50), Percentiles(70, 180, 300))


def schedule(finish: Percentiles, until: float, policy: CadencePolicy = NO_JITTER) -> list[float]:
    looks, t = [], 0.0
    while t <= until:
        t += interval_for(t, finish, policy)
        looks.append(t)
    return looks


def test_first_look_comes_soon_after_submit() -> None:
    assert interval_for(0.0, FINISH, NO_JITTER) == NO_JITTER.first_look


def test_looks_are_sparse_before_the_expected_finish_and_dense_around_it() -> None:
    looks = schedule(FINISH, 400)
    gaps = [b - a for a, b in itertools.pairwise(looks)]
    before = [g for t, g in zip(looks, gaps, strict=False) if t < 0.6 * FINISH.p50]
    around = [g for t, g in zip(looks, gaps, strict=False) if 0.6 * FINISH.p50 <= t <= FINISH.p95]
    assert len(before) <= 4
    assert max(around) <= NO_JITTER.dense_max
    assert min(before[1:]) >= min(around)


def test_interval_grows_geometrically_after_p95_up_to_the_ceiling() -> None:
    late = [interval_for(FINISH.p95 + over, FINISH, NO_JITTER) for over in (100, 200, 400, 5000)]
    assert late[0] < late[1] < late[2]
    assert late[-1] == NO_JITTER.ceiling


def test_every_interval_respects_floor_and_ceiling() -> None:
    tiny = Percentiles(0.5, 1.0, 1.5)
    huge = Percentiles(5000, 20000, 40000)
    for finish in (tiny, FINISH, huge):
        for t in range(0, 50000, 97):
            step = interval_for(float(t), finish, NO_JITTER)
            assert NO_JITTER.floor <= step <= NO_JITTER.ceiling


def test_detection_lag_in_the_dense_window_is_bounded_by_dense_max() -> None:
    looks = schedule(FINISH, FINISH.p95)
    for finish_at in range(60, int(FINISH.p95), 7):
        detected = min(t for t in looks if t >= finish_at)
        assert detected - finish_at <= NO_JITTER.dense_max


def test_a_long_task_costs_few_looks_compared_with_fixed_30s_polling() -> None:
    hour = 3600.0
    assert expected_looks(FINISH, hour, NO_JITTER) < 0.6 * hour / 30


def test_cold_start_p99_lies_beyond_p95() -> None:
    timing = Timing.from_expected(_video(), scale=2.0)
    assert timing.run.p99 > timing.run.p95 == 360.0


def test_bad_policies_and_percentiles_are_refused() -> None:
    with pytest.raises(ValueError, match="floor"):
        CadencePolicy(floor=0)
    with pytest.raises(ValueError, match="jitter"):
        CadencePolicy(jitter=1.5)
    with pytest.raises(ValueError, match="p50"):
        Percentiles(10, 5, 20)


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 1.0])
def test_jitter_moves_an_interval_by_at_most_its_share_and_stays_clamped(draw: float) -> None:
    policy = CadencePolicy(jitter=0.2)
    base = interval_for(40.0, FINISH, policy)
    assert next_interval(40.0, FINISH, policy, draw) == pytest.approx(
        base * (1 + 0.2 * (2 * draw - 1))
    )
    assert next_interval(40.0, FINISH, policy, 0.5) == base
    late = 10 * FINISH.p99  # an interval at the ceiling is never jittered past it
    assert next_interval(late, FINISH, policy, 1.0) == policy.ceiling


def test_a_running_task_is_timed_by_its_run_everything_else_from_creation() -> None:
    assert phase("processing", TIMING, created=1000.0, running_since=1030.0) == (1030.0, TIMING.run)
    assert phase("processing", TIMING, created=1000.0, running_since=None) == (1000.0, TIMING.total)
    assert phase("submitted", TIMING, created=1000.0, running_since=1030.0) == (
        1000.0,
        TIMING.total,
    )
    assert phase("submitted", TIMING, created=None, running_since=None) == (None, TIMING.total)


def test_a_scaled_policy_keeps_its_shape_on_a_faster_clock() -> None:
    fast = NO_JITTER.scaled(0.01)
    assert fast.floor == pytest.approx(0.02)
    assert interval_for(40 * 0.01, FINISH.times(0.01), fast) == pytest.approx(
        interval_for(40, FINISH, NO_JITTER) * 0.01
    )


def _video() -> ExpectedTiming:
    return ExpectedTiming(queue_p50=10, queue_p95=30, run_p50=75, run_p95=180)
