from __future__ import annotations

import asyncio

import pytest

from klingwatch.clock import ManualClock
from klingwatch.kling.budget import RequestBudget, TokenBucket


async def test_the_bucket_lets_a_burst_through_then_paces_at_the_rate() -> None:
    clock = ManualClock(start=0.0)
    bucket = TokenBucket(rate=2.0, burst=4, clock=clock)
    for _ in range(4):
        await bucket.take()
    assert clock.time() == 0.0
    for _ in range(6):
        await bucket.take()
    assert clock.time() == pytest.approx(3.0)


async def test_the_rate_is_per_nominal_second_on_a_scaled_clock() -> None:
    class Fast(ManualClock):
        scale = 0.01

    clock = Fast(start=0.0)
    bucket = TokenBucket(rate=1.0, burst=1, clock=clock)
    await bucket.take()
    assert bucket.available == 0
    clock.advance(0.01)  # one nominal second
    assert bucket.available == pytest.approx(1.0)


async def test_concurrency_is_bounded() -> None:
    clock = ManualClock(start=0.0)
    budget = RequestBudget(clock=clock, requests_per_second=1000, concurrency=3)
    inside = peak = 0
    gate = asyncio.Event()

    async def request() -> None:
        nonlocal inside, peak
        async with budget.request():
            inside += 1
            peak = max(peak, inside)
            await gate.wait()
            inside -= 1

    tasks = [asyncio.create_task(request()) for _ in range(10)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert inside == 3
    gate.set()
    await asyncio.gather(*tasks)
    assert peak == 3
    assert budget.granted == 10


def test_nonsense_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=0, burst=1, clock=ManualClock())
    with pytest.raises(ValueError, match="concurrency"):
        RequestBudget(clock=ManualClock(), concurrency=0)


async def test_waiting_for_a_token_always_moves_a_clock_at_epoch_magnitude() -> None:
    # At 1.7e9 s a float cannot hold a step below ~2e-7 s: a wait for a sliver of a token would
    # not move the clock, the bucket would never refill, and take() would spin forever.
    clock = ManualClock(start=1_767_225_600.0)
    bucket = TokenBucket(rate=5.0, burst=1.0, clock=clock)
    start = clock.time()
    for _ in range(20):
        await bucket.take()
    assert 3.5 <= clock.time() - start <= 4.5  # 19 refills at 5 per second
