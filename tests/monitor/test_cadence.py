"""The engine's cadence: learned timings on the look schedule, cached; phases from records."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from klingwatch.kling.pacing import CadencePolicy, Percentiles, Timing, interval_for
from klingwatch.kling.products import ExpectedTiming
from klingwatch.monitor.cadence import Cadence, phase_of, product_cold_start

NO_JITTER = CadencePolicy(jitter=0.0)


@dataclass(frozen=True)
class FakeTask:
    status: str = "submitted"
    product: str = "text2video"
    model: str | None = "kling-v2-6"
    mode: str | None = "std"
    request: Mapping[str, Any] = field(default_factory=dict)
    kling_created_ms: int | None = 1_000_000
    kling_updated_ms: int | None = 1_000_000
    kling_processing_ms: int | None = None
    sent_at: float | None = 999.5
    queued_at: float | None = 990.0
    processing_at: float | None = None


def test_jitter_stays_within_bounds_and_is_repeatable_with_a_seed() -> None:
    policy = CadencePolicy(jitter=0.2)
    task = FakeTask()

    def intervals(seed: int) -> list[float]:
        cadence = Cadence(policy=policy, rng=random.Random(seed))
        return [cadence.interval(task, 1000.0 + 40) for _ in range(50)]

    base = interval_for(40.0, Timing.from_expected(_video()).total, policy)
    first = intervals(7)
    assert first == intervals(7)
    assert len(set(first)) > 10
    assert all(base * 0.8 - 1e-9 <= s <= base * 1.2 + 1e-9 for s in first)


def test_time_scale_shrinks_every_interval() -> None:
    task = FakeTask(kling_created_ms=None, sent_at=None, queued_at=None)
    real = Cadence(policy=NO_JITTER, scale=1.0)
    fast = Cadence(policy=NO_JITTER, scale=0.01)
    assert fast.interval(task, 0.0) == pytest.approx(real.interval(task, 0.0) * 0.01)
    assert fast.policy.floor == pytest.approx(0.02)


def test_learned_timing_outweighs_the_cold_start_as_tasks_finish() -> None:
    task = FakeTask()
    cold = product_cold_start()(task)

    def learned(samples: int) -> Timing:
        return Timing(Percentiles(1, 2, 3), Percentiles(4, 8, 12), samples=samples)

    def run_p95(samples: int) -> float:
        cadence = Cadence(policy=NO_JITTER, learned=lambda p, m, mode: learned(samples))
        return cadence.timing(task, 0.0).run.p95

    assert run_p95(2) == cold.run.p95  # too few to say anything
    assert run_p95(20) == pytest.approx((8 + cold.run.p95) / 2)  # as much as the prior
    assert run_p95(100_000) == pytest.approx(8, rel=1e-2)


def test_learned_timings_are_cached_per_kind_for_a_while() -> None:
    calls: list[tuple[str, str | None, str | None]] = []

    def source(product: str, model: str | None, mode: str | None) -> Timing | None:
        calls.append((product, model, mode))
        return None

    cadence = Cadence(policy=NO_JITTER, learned=source, cache_ttl=60)
    for now in (0.0, 10.0, 59.0):
        cadence.timing(FakeTask(), now)
    cadence.timing(FakeTask(mode="pro"), 59.0)
    cadence.timing(FakeTask(), 61.0)
    assert calls == [
        ("text2video", "kling-v2-6", "std"),
        ("text2video", "kling-v2-6", "pro"),
        ("text2video", "kling-v2-6", "std"),
    ]


def test_cold_start_follows_the_product_registry_and_pro_runs_longer() -> None:
    cold = product_cold_start()
    std = cold(FakeTask(request={"mode": "std"}))
    pro = cold(FakeTask(request={"mode": "pro"}))
    assert pro.run.p50 == 2 * std.run.p50
    assert std.samples == 0
    assert cold(FakeTask(product="no-such-product")).run.p50 > 0


def test_processing_phase_is_timed_from_when_it_started_running() -> None:
    timing = Timing(Percentiles(10, 30, 50), Percentiles(70, 180, 300))
    task = FakeTask(status="processing", kling_updated_ms=1_030_000, processing_at=1032.0)
    start, finish = phase_of(task, timing)
    assert start == 1030.0
    assert finish == timing.run
    known = FakeTask(status="processing", kling_processing_ms=1_020_000, kling_updated_ms=1_040_000)
    assert phase_of(known, timing)[0] == 1020.0
    submitted = FakeTask(status="submitted")
    assert phase_of(submitted, timing) == (1000.0, timing.total)


def test_a_task_without_kling_times_is_timed_from_when_it_was_sent() -> None:
    timing = Timing(Percentiles(10, 30, 50), Percentiles(70, 180, 300))
    task = FakeTask(kling_created_ms=None, kling_updated_ms=None)
    assert phase_of(task, timing)[0] == 999.5


def _video() -> ExpectedTiming:
    return ExpectedTiming(queue_p50=10, queue_p95=30, run_p50=75, run_p95=180)
