"""The read retry policy as pure functions: backoff growth, cap, jitter, what is retryable."""

from __future__ import annotations

import pytest

from klingwatch.clock import ManualClock
from klingwatch.kling.errors import (
    BadResponse,
    ConcurrencyLimited,
    InvalidRequest,
    KlingConnectionError,
    KlingError,
    KlingTimeout,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    TaskNotFound,
    TokenExpired,
    UnknownTaskStatus,
)
from klingwatch.kling.retry import NO_RETRY, Backoff, RetryPolicy, is_retryable_read, retry_read

KW = {"status_code": 500, "code": 5000}


def test_backoff_grows_from_the_initial_wait_up_to_the_cap() -> None:
    rule = Backoff(initial=0.5, cap=5, jitter=0.5)
    assert [rule.delay(n, 0.0) for n in range(1, 7)] == [0.5, 1, 2, 4, 5, 5]
    assert Backoff(initial=1, cap=100, growth=3).delay(3, 0.0) == 9


def test_jitter_takes_up_to_its_share_off_so_the_cap_is_a_true_maximum() -> None:
    equal = Backoff(initial=2, cap=60, jitter=0.5)
    assert [equal.delay(1, d) for d in (0.0, 0.5, 1.0)] == [2.0, 1.5, 1.0]
    assert equal.delay(10, 1.0) == 30.0  # half the cap, at the least
    assert Backoff(initial=2, cap=60, jitter=0).delay(3, 1.0) == 8.0  # no jitter: the same
    assert Backoff(initial=2, cap=60, jitter=1).delay(3, 1.0) == 0.0  # "full jitter"


def test_retry_after_is_a_floor_never_a_shortcut() -> None:
    rule = Backoff(initial=2, cap=60)
    assert rule.delay(1, 0.0, retry_after=45) == 45
    assert rule.delay(6, 0.0, retry_after=1) == 60  # asked for 1 s, but we are backing off


def test_a_very_long_streak_does_not_overflow() -> None:
    assert Backoff(initial=1, cap=120).delay(10_000, 0.0) == 120


def test_backoffs_and_policies_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        Backoff().delay(0, 0.0)
    for bad in ({"initial": 5, "cap": 1}, {"growth": 0.5}, {"jitter": 1.5}):
        with pytest.raises(ValueError, match="backoff"):
            Backoff(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(timeout=-1)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (RateLimited("slow", **KW), True),
        (ServerError("x", **KW), True),
        (ServiceUnavailable("x", **KW), True),
        (KlingTimeout("x"), True),
        (KlingConnectionError("x", may_exist=False), True),
        (BadResponse("x"), True),
        (UnknownTaskStatus("exploded", {}), False),
        (ConcurrencyLimited("x", **KW), False),
        (TokenExpired("x", **KW), False),
        (InvalidRequest("x", **KW), False),
        (TaskNotFound("x", **KW), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, KlingError) else str(v),
)
def test_what_a_read_retries(error: KlingError, retryable: bool) -> None:
    assert is_retryable_read(error) is retryable


async def test_no_retry_tries_once() -> None:
    calls = 0

    async def send() -> None:
        nonlocal calls
        calls += 1
        raise ServerError("x", **KW)

    with pytest.raises(ServerError):
        await retry_read(send, policy=NO_RETRY, clock=ManualClock(), what="GET /x")
    assert calls == 1


async def test_the_time_budget_ends_retries_before_the_attempts_do() -> None:
    clock = ManualClock()
    calls = 0

    async def send() -> None:
        nonlocal calls
        calls += 1
        raise ServerError("x", **KW)

    policy = RetryPolicy(attempts=100, timeout=10, backoff=Backoff(initial=1, jitter=0))
    with pytest.raises(ServerError):
        await retry_read(send, policy=policy, clock=clock, what="GET /x")
    assert calls == 4  # waits 1 + 2 + 4 = 7; the next (8) would pass the 10 s budget
    assert clock.monotonic() == 7
