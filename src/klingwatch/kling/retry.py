"""When and how long a read is retried.

Reads (single gets, list pages, ``/tasks``) are safe to send again; creates are not, and never go
through here. A read is retried on what may pass by itself: rate limiting (1302), Kling's server
errors (5000-5002), dropped connections, timeouts and garbled answers. ``Retry-After`` is
honoured: the wait is what the server asked for, and a server asking for longer than the policy
allows ends the retries at once (the caller sees the error and its ``retry_after``).

The shape is stamina's (attempts, a time budget, exponential backoff with jitter, one pure backoff
function), but sleeping goes through the injected :class:`~klingwatch.clock.Clock`: stamina sleeps
with ``asyncio.sleep`` and measures its budget on the real monotonic clock, so it could neither be
scaled for sandbox simulations nor driven by a test's manual clock.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from klingwatch.clock import Clock
from klingwatch.kling.errors import (
    BadResponse,
    KlingError,
    RateLimited,
    ServerError,
    TransportError,
    UnknownTaskStatus,
)

__all__ = ["NO_RETRY", "RetryPolicy", "backoff", "is_retryable_read", "retry_read"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard a read is retried. Durations are nominal seconds (scaled by the clock).

    ``attempts`` counts every try, the first included. ``timeout`` bounds the total time spent
    waiting between tries. The wait before retry *n* is
    ``min(wait_max, wait_initial * wait_exp_base ** (n - 1) + uniform(0, wait_jitter))``, or the
    server's ``Retry-After`` when it sent one (up to ``max_retry_after``).
    """

    attempts: int = 5
    timeout: float = 60.0
    wait_initial: float = 0.5
    wait_max: float = 15.0
    wait_jitter: float = 1.0
    wait_exp_base: float = 2.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if min(self.timeout, self.wait_initial, self.wait_max, self.wait_jitter) < 0:
            raise ValueError("retry durations must not be negative")


#: Try once, never again.
NO_RETRY = RetryPolicy(attempts=1)


def backoff(policy: RetryPolicy, retry: int, jitter: float) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first); ``jitter`` is in [0, 1]."""
    if retry < 1:
        raise ValueError("retry numbers start at 1")
    grown = policy.wait_initial * policy.wait_exp_base ** (retry - 1)
    return min(policy.wait_max, grown + jitter * policy.wait_jitter)


def is_retryable_read(exc: BaseException) -> bool:
    """May the same read succeed if sent again unchanged?"""
    if isinstance(exc, UnknownTaskStatus):
        return False  # a newer API, not a passing fault: re-reading will not help
    return isinstance(exc, RateLimited | ServerError | TransportError | BadResponse)


async def retry_read(
    send: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    clock: Clock,
    what: str,
    rng: random.Random | None = None,
    on_retry: Callable[[KlingError], None] | None = None,
) -> T:
    """Call ``send`` until it succeeds, fails for good, or ``policy`` is spent.

    The last error is raised unchanged. ``what`` names the read in log lines; ``on_retry`` is
    told of every error that is about to be retried (for statistics).
    """
    rng = rng or random.Random()
    waited = 0.0
    retry = 0
    while True:
        try:
            return await send()
        except KlingError as exc:
            retry += 1
            if not is_retryable_read(exc) or retry >= policy.attempts:
                raise
            asked = getattr(exc, "retry_after", None)
            if asked is not None:
                if asked > policy.max_retry_after:
                    raise  # the server wants a pause longer than a read should block
                wait = max(0.0, float(asked))
            else:
                wait = backoff(policy, retry, rng.random())
            if waited + wait > policy.timeout:
                raise
            logger.info(
                "%s failed (%s); retry %d/%d in %.1fs",
                what,
                type(exc).__name__,
                retry,
                policy.attempts - 1,
                wait,
            )
            if on_retry is not None:
                on_retry(exc)
            waited += wait
            await clock.sleep(wait)
