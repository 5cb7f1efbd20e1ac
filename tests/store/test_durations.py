"""Learned durations (klingwatch.store.durations and Ledger.durations)."""

from __future__ import annotations

import pytest

from klingwatch.clock import ManualClock
from klingwatch.store import DurationStats, Ledger, LocalStatus, NewTask, Observation, Source
from klingwatch.store.durations import Timing, percentile, summarize

S = LocalStatus
BASE_MS = 1_767_225_600_000


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 95) == pytest.approx(4.8)
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_kling_times_are_preferred_and_local_times_are_the_fallback() -> None:
    kling = Timing(
        submitted_at=100.0,
        processing_at=150.0,
        finished_at=300.0,
        kling_created_ms=95_000,
        kling_processing_ms=120_000,
    )
    assert kling.queue_seconds() == 25.0
    assert kling.run_seconds() == 180.0
    local = Timing(100.0, 150.0, 300.0, None, None)
    assert (local.queue_seconds(), local.run_seconds()) == (50.0, 150.0)
    never_seen_processing = Timing(100.0, None, 300.0, 95_000, None)
    assert never_seen_processing.queue_seconds() is None
    assert never_seen_processing.run_seconds() is None


def test_nothing_learned_is_n_zero() -> None:
    assert summarize([]) == DurationStats(n=0)


def _lifecycle(ext: str, *, queue_s: int, run_s: int, at: float) -> list[Observation]:
    """A whole lifecycle's reports with the given Kling queue and run times."""
    created = BASE_MS
    started = created + queue_s * 1000
    done = started + run_s * 1000
    return [
        Observation(
            S.SUBMITTED,
            Source.CREATE,
            at,
            external_task_id=ext,
            kling_created_ms=created,
            kling_updated_ms=created,
        ),
        Observation(
            S.PROCESSING, Source.LIST, at + 1, external_task_id=ext, kling_updated_ms=started
        ),
        Observation(S.SUCCEED, Source.LIST, at + 2, external_task_id=ext, kling_updated_ms=done),
    ]


def _finish(ledger: Ledger, ext: str, *, model: str, queue_s: int, run_s: int, at: float) -> None:
    """One task of ``model`` through a whole lifecycle."""
    ledger.add_tasks("b", [NewTask("text2video", {}, ext, model=model, mode="std")])
    ledger.apply_many(_lifecycle(ext, queue_s=queue_s, run_s=run_s, at=at))


def test_ledger_learns_percentiles_per_product_model_and_mode(
    ledger: Ledger, clock: ManualClock
) -> None:
    assert ledger.durations("text2video", "kling-v2-6", "std").n == 0
    ledger.add_tasks(
        "b",
        [NewTask("text2video", {}, f"v26-{i}", model="kling-v2-6", mode="std") for i in range(100)],
    )
    ledger.apply_many(
        r
        for i in range(1, 101)
        for r in _lifecycle(f"v26-{i - 1}", queue_s=i, run_s=10 * i, at=clock.time())
    )
    _finish(ledger, "v1-1", model="kling-v1", queue_s=1000, run_s=5000, at=clock.time())

    stats = ledger.durations("text2video", "kling-v2-6", "std")
    assert (stats.n, stats.queue_n, stats.run_n) == (100, 100, 100)
    assert stats.queue_p50 == pytest.approx(50.5)
    assert stats.queue_p95 == pytest.approx(95.05)
    assert stats.queue_p99 == pytest.approx(99.01)
    assert stats.run_p50 == pytest.approx(505.0)
    # ``None`` means any model: the product-wide figure includes the slow kling-v1 task.
    assert ledger.durations("text2video", None, None).n == 101
    assert ledger.durations("image_generation", None, None).n == 0


def test_failed_tasks_teach_nothing(ledger: Ledger, clock: ManualClock) -> None:
    ledger.add_tasks("b", [NewTask("text2video", {}, "f1", model="m", mode="std")])
    ledger.apply_many(
        [
            Observation(S.PROCESSING, Source.GET, clock.time(), external_task_id="f1"),
            Observation(S.FAILED, Source.GET, clock.time() + 5, external_task_id="f1"),
        ]
    )
    assert ledger.durations("text2video", "m", "std").n == 0


def test_a_new_success_refreshes_the_cached_figures(ledger: Ledger, clock: ManualClock) -> None:
    _finish(ledger, "a", model="m", queue_s=10, run_s=100, at=clock.time())
    first = ledger.durations("text2video", "m", "std")
    assert first.n == 1
    assert ledger.durations("text2video", "m", "std") is first  # cached
    _finish(ledger, "b", model="m", queue_s=30, run_s=300, at=clock.time())
    second = ledger.durations("text2video", "m", "std")
    assert second.n == 2
    assert second.run_p50 == pytest.approx(200.0)


def test_cached_figures_expire_for_what_other_replicas_learned(
    ledger_url: str, clock: ManualClock
) -> None:
    with (
        Ledger.open(ledger_url, clock=clock) as mine,
        Ledger.open(ledger_url, clock=clock) as other,
    ):
        _finish(mine, "a", model="m", queue_s=10, run_s=100, at=clock.time())
        assert mine.durations("text2video", "m", "std").n == 1
        _finish(other, "b", model="m", queue_s=10, run_s=100, at=clock.time())
        assert mine.durations("text2video", "m", "std").n == 1
        clock.advance(61)
        assert mine.durations("text2video", "m", "std").n == 2
