"""How long to wait after a failure (:class:`Backoff`, for every retry klingwatch makes), and
when and how long a read is retried (:class:`RetryPolicy`, :func:`retry_read`).

:class:`Backoff` is the one backoff rule: reads retried here, creates deferred by the submitter
(1302, 5001, a 1303 with no slot to learn from), failed lookups in recovery, and result files
fetched again (:mod:`klingwatch.monitor.fetch`) all wait ``Backoff.delay``, each with its own
numbers. It is pure: the random draw and the server's ``Retry-After`` are arguments.

Reads (single gets, list pages, ``/tasks``) are safe to send again; creates are not, and never go
through :func:`retry_read`. A read is retried on what may pass by itself: rate limiting (1302),
Kling's server errors (5000-5002), dropped connections, timeouts and garbled answers.
``Retry-After`` is honoured: the wait is at least what the server asked for, and a server asking
for longer than the policy allows ends the retries at once (the caller sees the error and its
``retry_after``).

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

__all__ = ["NO_RETRY", "READ_BACKOFF", "Backoff", "RetryPolicy", "is_retryable_read", "retry_read"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: the wait after the ``n``-th failure in a row.

    ``min(cap, initial * growth ** (n - 1))``, less up to ``jitter`` of itself at random: 0 waits
    the full amount every time, 0.5 (the default) is "equal jitter" (half fixed, half random, so
    waits still grow while many waiters spread out), 1 is "full jitter". The cap is therefore a
    true maximum. A server's ``Retry-After`` is a floor: never retry sooner than it asked.
    Durations are nominal seconds (a clock scales them when sleeping).
    """

    initial: float = 0.5
    cap: float = 15.0
    growth: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.initial <= self.cap:
            raise ValueError("backoff needs 0 <= initial <= cap")
        if self.growth < 1:
            raise ValueError("backoff growth must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter must be within [0, 1]")

    def delay(self, retry: int, draw: float, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first); ``draw`` is a random
        number in [0, 1] (pass ``rng.random()``), ``retry_after`` the server's, if it sent one."""
        if retry < 1:
            raise ValueError("retry numbers start at 1")
        # A bounded exponent: growth ** retry overflows a float long before a loop gives up.
        grown = self.initial * self.growth ** min(retry - 1, 64)
        wait = min(self.cap, grown)
        wait -= wait * self.jitter * draw
        return wait if retry_after is None else max(wait, float(retry_after))


#: Waits between tries of one read: 0.5-1 s, 1-2 s, 2-4 s, ... up to 7.5-15 s.
READ_BACKOFF = Backoff(initial=1.0, cap=15.0)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard a read is retried. Durations are nominal seconds (scaled by the clock).

    ``attempts`` counts every try, the first included. ``timeout`` bounds the total time spent
    waiting between tries. The wait before retry *n* is ``backoff.delay(n, ...)``; a server's
    ``Retry-After`` longer than ``max_retry_after`` ends the retries instead.
    """

    attempts: int = 5
    timeout: float = 60.0
    backoff: Backoff = READ_BACKOFF
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if min(self.timeout, self.max_retry_after) < 0:
            raise ValueError("retry durations must not be negative")


#: Try once, never again.
NO_RETRY = RetryPolicy(attempts=1)


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
            if asked is not None and asked > policy.max_retry_after:
                raise  # the server wants a pause longer than a read should block
            wait = policy.backoff.delay(retry, rng.random(), asked)
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
