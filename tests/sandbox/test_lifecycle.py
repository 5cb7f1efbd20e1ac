"""Lifecycle draws: durations, outcomes and reasons, from a seed and the product registry."""

from __future__ import annotations

from collections import Counter

from klingwatch.clock import ManualClock, ScaledClock
from klingwatch.kling.models import TaskStatus
from klingwatch.kling.products import get_product
from klingwatch.kling.results import format_amount
from klingwatch.sandbox import SandboxConfig
from klingwatch.sandbox.lifecycle import Lifecycle, units_for


def test_failure_reasons_fit_the_request() -> None:
    life = Lifecycle(SandboxConfig(failure_rate=1.0), ManualClock())
    text = Counter(life.draw(get_product("text2video"), {"prompt": "x"}).reason for _ in range(200))
    image = Counter(
        life.draw(get_product("image2video"), {"image": "https://e.x/a.png"}).reason
        for _ in range(200)
    )
    assert "Image pixel is invalid" not in text
    assert "Image pixel is invalid" in image
    assert all(reason for reason in text)


def test_the_failure_rate_is_honoured() -> None:
    life = Lifecycle(SandboxConfig(failure_rate=0.2, seed=1), ManualClock())
    outcomes = Counter(
        life.draw(get_product("text2video"), {"prompt": "x"}).outcome for _ in range(2000)
    )
    assert 0.15 < outcomes[TaskStatus.FAILED] / 2000 < 0.25


def test_pro_and_longer_videos_take_longer() -> None:
    def median(request: dict[str, str]) -> float:
        life = Lifecycle(SandboxConfig(straggler_rate=0, failure_rate=0), ManualClock())
        runs = sorted(life.draw(get_product("text2video"), request).run for _ in range(301))
        return runs[150]

    std = median({"prompt": "x"})
    assert median({"prompt": "x", "mode": "pro"}) > 1.5 * std
    assert median({"prompt": "x", "duration": "10"}) > 1.3 * std


def test_durations_are_on_the_clock_scale() -> None:
    config = SandboxConfig(straggler_rate=0, failure_rate=0)
    real = Lifecycle(config, ManualClock()).draw(get_product("text2video"), {"prompt": "x"})
    fast = Lifecycle(config, ScaledClock(0.01)).draw(get_product("text2video"), {"prompt": "x"})
    assert abs(fast.run - real.run * 0.01) < 1e-9
    assert abs(fast.queue - real.queue * 0.01) < 1e-9


def test_ids_are_unique_18_digit_numbers() -> None:
    life = Lifecycle(SandboxConfig(), ManualClock())
    ids = {life.new_task_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(len(i) == 18 and i.isdigit() for i in ids)


def test_units_follow_quality_duration_and_n() -> None:
    def units(product: str, request: dict[str, object]) -> str:
        return format_amount(units_for(get_product(product), request))

    assert units("text2video", {"prompt": "x"}) == "1.5"
    assert units("text2video", {"mode": "pro", "duration": "10"}) == "5"
    assert units("image-generation", {"n": 4}) == "1"
    assert units("image-generation", {"n": 3}) == "0.75"
