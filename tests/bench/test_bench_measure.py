"""The benchmark's pure figures: percentiles, lags, slot use, the ideal per-task cadence,
reads, duplicate creates and rates."""

import math

import pytest

from measure import (
    count_reads,
    count_requests,
    duplicates,
    ideal_baseline,
    ideal_polls,
    lag_summary,
    per_second,
    percentile,
    queued_window,
    slot_utilisation,
)


def test_percentile_interpolates_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 100) == 4.0
    assert percentile(list(map(float, range(101))), 95) == pytest.approx(95.0)


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(percentile([], 50))


def test_lag_summary_skips_unfinished_and_converts_ms_to_seconds() -> None:
    lag = lag_summary([(1000, 3000), (1000, None), (None, 5000), (2000, 2500)])
    assert lag.count == 2
    assert lag.max == pytest.approx(2.0)
    assert lag.p50 == pytest.approx(1.25)
    nominal = lag.nominal(0.05)
    assert nominal.max == pytest.approx(40.0)


def test_a_detection_stamped_before_klings_counts_as_no_lag() -> None:
    assert lag_summary([(2000, 1990)]).max == 0.0


def test_slot_utilisation_integrates_the_step_timeline_over_the_window() -> None:
    # 2 slots: one busy from 0, both from 500, none from 1500; window 0..1000.
    timeline = [[0, 1], [500, 2], [1500, 0]]
    assert slot_utilisation(timeline, 2, 0, 1000) == pytest.approx(0.75)
    # A window starting inside a step takes that step's level.
    assert slot_utilisation(timeline, 2, 600, 1000) == pytest.approx(1.0)
    assert slot_utilisation(timeline, 2, 1000, 2000) == pytest.approx(0.5)


def test_slot_utilisation_of_an_empty_window_is_nan() -> None:
    assert math.isnan(slot_utilisation([[0, 1]], 2, 10, 10))


def test_queued_window_runs_from_first_to_last_create() -> None:
    tasks = [{"created_at": 30}, {"created_at": 10}, {"created_at": None}, {"created_at": 20}]
    assert queued_window(tasks) == (10.0, 30.0)


def test_ideal_polls_follow_10_s_then_x1_2_after_the_fifth_up_to_30_s() -> None:
    # Polls at 10, 20, 30, 40, 50, then 62, 76.4, ...
    assert ideal_polls(50) == (5, 0.0)
    assert ideal_polls(51) == (6, pytest.approx(11.0))
    polls, lag = ideal_polls(10_000)
    assert lag < 30.0
    # Past the growth the cadence is one poll per 30 s.
    assert ideal_polls(10_030)[0] == polls + 1


def test_ideal_baseline_counts_one_create_plus_the_polls() -> None:
    scale = 0.5
    # 25 nominal seconds long (12.5 real): polls at 10, 20, 30 -> 3 polls, 5 s late.
    tasks = [{"created_at": 0, "finished_at": 12_500}, {"created_at": 0, "finished_at": None}]
    ideal = ideal_baseline(tasks, scale)
    assert ideal.requests_per_task == pytest.approx(4.0)
    assert ideal.lag_p50 == pytest.approx(5.0)


def test_count_requests_reads_the_sandbox_stats() -> None:
    stats = {
        "requests": {"total": 120},
        "creates": {"created": 100, "refused": {"1303": 7, "1302": 3}},
    }
    assert count_requests(stats) == (120, 110, 7)


def test_count_reads_counts_only_status_reads_answered_200() -> None:
    stats = {
        "requests": {
            "by_route": {
                "GET /v1/videos/text2video/{id}": {"200 0": 40, "429 1302": 5},
                "GET /v1/videos/text2video": {"200 0": 2},
                "POST /v1/videos/text2video": {"200 0": 30, "429 1303": 4},
            }
        }
    }
    assert count_reads(stats) == 42


def test_duplicates_find_the_worst_external_id() -> None:
    tasks = [
        {"external_task_id": "a", "creates_seen": 1},
        {"external_task_id": "b", "creates_seen": 3},  # two refused with 1303, then made
        {"external_task_id": "c", "creates_seen": 1},
        {"external_task_id": "c", "creates_seen": 1},  # a second Kling task for one line
        {"external_task_id": None, "creates_seen": 1},  # made by someone else: not ours
    ]
    found = duplicates(tasks)
    assert found.tasks_per_external_id == 2
    assert found.creates_per_external_id == 3


def test_duplicates_of_a_clean_run_are_one_and_one() -> None:
    found = duplicates([{"external_task_id": f"t{i}", "creates_seen": 1} for i in range(5)])
    assert (found.tasks_per_external_id, found.creates_per_external_id) == (1, 1)
    assert duplicates([]).tasks_per_external_id == 0


def test_per_second_is_nan_for_an_empty_interval() -> None:
    assert per_second(300, 60.0) == pytest.approx(5.0)
    assert math.isnan(per_second(10, 0.0))
    assert math.isnan(per_second(10, math.nan))
