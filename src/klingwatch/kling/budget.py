"""Budget: how fast and how many-at-once one client may talk to Kling.

:class:`RequestBudget` combines a token bucket (a requests-per-second rate with a burst) and a
semaphore (bounded concurrency). It belongs to the Kling session
(:class:`~klingwatch.kling.session.Session`): every request a client sends passes it, creates,
single reads, list pages, recovery lookups, callback confirmations and ``track`` alike, because
Kling's rate limit (1302) counts the account's requests, not one kind of them. A sweep that fans
out over many products or id chunks therefore never exceeds either bound.

The rate is in requests per *nominal* second: on a clock with ``scale=0.01`` (a sandbox run 100x
faster) the budget allows 100x more requests per wall second, so a simulation keeps the same
shape as a real run. Time comes from the injected clock only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from klingwatch.clock import Clock

__all__ = ["RequestBudget", "TokenBucket"]

_MIN_WAIT = 0.001


class TokenBucket:
    """``rate`` tokens per nominal second, at most ``burst`` saved up; starts full."""

    def __init__(self, rate: float, burst: float, *, clock: Clock) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        nominal = (now - self._stamp) / self._clock.scale
        self._stamp = now
        self._tokens = min(self.burst, self._tokens + nominal * self.rate)

    @property
    def available(self) -> float:
        """Tokens that could be taken right now."""
        self._refill()
        return self._tokens

    async def take(self, tokens: float = 1.0) -> None:
        """Wait until ``tokens`` are available, then take them."""
        # The lock keeps waiters in arrival order, so a steady stream cannot starve one.
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= tokens:
                    self._tokens -= tokens
                    return
                # At least a millisecond: a clock at Unix-epoch magnitude cannot represent a
                # smaller step, and a wait that moves nothing would spin forever.
                await self._clock.sleep(max(_MIN_WAIT, (tokens - self._tokens) / self.rate))


class RequestBudget:
    """A global rate (token bucket) and a concurrency bound (semaphore) for Kling requests."""

    def __init__(
        self,
        *,
        clock: Clock,
        requests_per_second: float = 10.0,
        burst: float | None = None,
        concurrency: int = 4,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.bucket = TokenBucket(
            requests_per_second,
            burst if burst is not None else max(1.0, requests_per_second),
            clock=clock,
        )
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        #: requests let through so far
        self.granted = 0

    @contextlib.asynccontextmanager
    async def request(self) -> AsyncIterator[None]:
        """Hold one concurrency slot and one token for the duration of a request."""
        async with self._slots:
            await self.bucket.take()
            self.granted += 1
            yield
