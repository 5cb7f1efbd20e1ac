from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from klingwatch.clock import format_duration
from klingwatch.kling.pacing import CadencePolicy, Percentiles, Timing
from klingwatch.monitor.cadence import Cadence
from klingwatch.monitor.stuck import StuckDetector, StuckPolicy

LEARNED = Timing(Percentiles(5, 10, 20), Percentiles(60, 90, 120), samples=100)
T0 = 1_000_000.0


@dataclass(frozen=True)
class FakeTask:
    status: str = "processing"
    product: str = "text2video"
    model: str | None = "kling-v2-6"
    mode: str | None = "std"
    request: Mapping[str, Any] = field(default_factory=dict)
    kling_created_ms: int | None = int(T0 * 1000)
    kling_updated_ms: int | None = int((T0 + 10) * 1000)
    kling_processing_ms: int | None = int((T0 + 10) * 1000)
    sent_at: float | None = T0
    queued_at: float | None = T0
    processing_at: float | None = T0 + 12


def detector(policy: StuckPolicy | None = None, scale: float = 1.0) -> StuckDetector:
    # prior_weight=0: judge by what was learned alone, so the figures below are exact.
    exact = CadencePolicy(prior_weight=0)
    cadence = Cadence(policy=exact, learned=lambda *kind: LEARNED, scale=scale)
    return StuckDetector(cadence, policy or StuckPolicy(min_age=60))


def test_a_task_within_its_learned_p99_is_not_stuck() -> None:
    assert not detector().judge(FakeTask(), T0 + 10 + 119).stuck


def test_a_task_past_its_learned_p99_in_its_status_is_stuck_with_a_reason() -> None:
    verdict = detector().judge(FakeTask(), T0 + 10 + 121)
    assert verdict.stuck
    assert verdict.reason == (
        "processing for 2m01s, past its p99 of 2m00s for text2video kling-v2-6 std"
    )


def test_submitted_tasks_are_judged_against_the_queue_time() -> None:
    waiting = FakeTask(status="submitted", kling_processing_ms=None, processing_at=None)
    assert not detector().judge(waiting, T0 + 59).stuck  # min_age 60 s beats the 20 s p99
    assert detector().judge(waiting, T0 + 61).stuck


def test_a_set_threshold_replaces_the_learned_p99() -> None:
    fixed = detector(StuckPolicy(threshold=600))
    assert not fixed.judge(FakeTask(), T0 + 10 + 500).stuck
    verdict = fixed.judge(FakeTask(), T0 + 10 + 601)
    assert verdict.stuck
    assert "the set threshold of 10m00s" in (verdict.reason or "")


def test_a_task_kling_has_not_updated_for_long_is_stuck() -> None:
    quiet = detector(StuckPolicy(threshold=10_000, stale_after=1800))
    verdict = quiet.judge(FakeTask(), T0 + 10 + 1801)
    assert verdict.stuck
    assert verdict.reason == "no update from Kling for 30m01s"


def test_a_task_that_moved_on_is_judged_afresh_in_its_new_status() -> None:
    d = detector()
    stuck_waiting = FakeTask(status="submitted", kling_processing_ms=None, processing_at=None)
    assert d.judge(stuck_waiting, T0 + 300).stuck
    moved = FakeTask(kling_processing_ms=int((T0 + 299) * 1000), processing_at=T0 + 300)
    assert not d.judge(moved, T0 + 300).stuck


def test_finished_tasks_are_never_stuck() -> None:
    assert not detector().judge(FakeTask(status="succeed"), T0 + 100_000).stuck


def test_thresholds_follow_the_time_scale() -> None:
    fast = detector(StuckPolicy(threshold=600), scale=0.01)
    assert fast.judge(FakeTask(), T0 + 10 + 6.1).stuck
    assert not fast.judge(FakeTask(), T0 + 10 + 5.9).stuck


def test_ages_read_like_a_person_writes_them() -> None:
    assert [format_duration(s) for s in (5, 95, 3600, 7300)] == ["5s", "1m35s", "1h00m", "2h01m"]
