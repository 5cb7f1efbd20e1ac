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
from klingwatch.kling.retry import NO_RETRY, RetryPolicy, backoff, is_retryable_read, retry_read

KW = {"status_code": 500, "code": 5000}


def test_backoff_doubles_from_the_initial_wait_up_to_the_cap() -> None:
    policy = RetryPolicy(wait_initial=0.5, wait_max=5, wait_jitter=1.0)
    assert [backoff(policy, n, 0.0) for n in range(1, 7)] == [0.5, 1, 2, 4, 5, 5]
    assert backoff(policy, 1, 1.0) == 1.5  # plus up to wait_jitter
    with pytest.raises(ValueError, match="start at 1"):
        backoff(policy, 0, 0.0)


def test_a_policy_refuses_nonsense() -> None:
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

    policy = RetryPolicy(attempts=100, timeout=10, wait_initial=1, wait_jitter=0)
    with pytest.raises(ServerError):
        await retry_read(send, policy=policy, clock=clock, what="GET /x")
    assert calls == 4  # waits 1 + 2 + 4 = 7; the next (8) would pass the 10 s budget
    assert clock.monotonic() == 7
