"""The wait cadence as a pure function: quick first look, converge on the expected end, back off."""

from __future__ import annotations

import itertools

import pytest

from klingwatch.kling.models import TaskStatus
from klingwatch.kling.pacing import CEILING, EARLY_LOOK, FLOOR, JITTER, jittered, poll_delay
from klingwatch.kling.products import ExpectedTiming

VIDEO = ExpectedTiming(queue_p50=10, queue_p95=30, run_p50=75, run_p95=180)
IMAGE = ExpectedTiming(queue_p50=5, queue_p95=20, run_p50=20, run_p95=60)


def test_a_young_task_gets_a_quick_early_look() -> None:
    assert poll_delay(TaskStatus.SUBMITTED, VIDEO, age=0, in_status=0) == EARLY_LOOK
    assert poll_delay(TaskStatus.SUBMITTED, VIDEO, age=2.5, in_status=2.5) == FLOOR


def test_looks_converge_on_the_expected_end_then_back_off_when_overdue() -> None:
    ages, age = [], EARLY_LOOK
    while age < 400:
        ages.append(age)
        age += poll_delay(TaskStatus.SUBMITTED, VIDEO, age=age, in_status=age)
    gaps = [b - a for a, b in itertools.pairwise(ages)]
    before = [g for a, g in zip(ages, gaps, strict=False) if a < VIDEO.total_p50]
    after = [g for a, g in zip(ages, gaps, strict=False) if a > VIDEO.total_p50 + 60]
    assert before == sorted(before, reverse=True)  # shrinking towards the expected end
    assert after == sorted(after)  # growing once overdue
    assert max(gaps) <= CEILING
    assert min(gaps) >= FLOOR
    assert len(ages) < 30  # 400 s of waiting in fewer than 30 looks


def test_a_processing_task_is_paced_by_its_run_time() -> None:
    just_started = poll_delay(TaskStatus.PROCESSING, IMAGE, age=6, in_status=0)
    nearly_done = poll_delay(TaskStatus.PROCESSING, IMAGE, age=22, in_status=16)
    assert just_started == pytest.approx(IMAGE.run_p50 / 2 - 0.5)
    assert nearly_done == FLOOR
    long_overdue = poll_delay(TaskStatus.PROCESSING, VIDEO, age=3600, in_status=3000)
    assert long_overdue == CEILING


def test_a_task_seen_running_already_is_credited_with_its_age() -> None:
    fresh = poll_delay(TaskStatus.PROCESSING, VIDEO, age=80, in_status=0)
    assert fresh < VIDEO.run_p50 / 2


@pytest.mark.parametrize("unit", [0.0, 0.5, 1.0])
def test_jitter_stays_within_twenty_percent(unit: float) -> None:
    assert jittered(10.0, unit) == pytest.approx(10.0 * (1 + JITTER * (2 * unit - 1)))
    assert 8.0 <= jittered(10.0, unit) <= 12.0
