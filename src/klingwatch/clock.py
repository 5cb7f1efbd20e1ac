"""Clocks: where klingwatch gets the time.

Engine and sandbox code never call ``time.time()`` or ``asyncio.sleep()`` directly; they ask a
clock they were given. Three are provided:

* :class:`RealClock`: the wall clock, real sleeping.
* :class:`ScaledClock`: the wall clock, but every *duration* is multiplied by ``scale``
  (``KLINGWATCH_TIME_SCALE``); ``scale=0.01`` turns a 60 s wait into 0.6 s. Timestamps stay real,
  so a sandbox and an engine in different processes agree on what ``updated_at`` means.
* :class:`ManualClock`: time moves only when a test says so (``advance``), or, by default, when
  someone sleeps on it. A ten-minute lifecycle runs in milliseconds.

Durations handed to a clock are *nominal* seconds (what they would be on a real account);
``clock.scaled(seconds)`` says how long that is on this clock.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

__all__ = [
    "Clock",
    "ManualClock",
    "RealClock",
    "ScaledClock",
    "format_duration",
    "to_datetime",
    "to_ms",
]


@runtime_checkable
class Clock(Protocol):
    """What engine and sandbox code may ask of time."""

    @property
    def scale(self) -> float:
        """Factor applied to every nominal duration (1.0 = real time)."""
        ...

    def time(self) -> float:
        """Wall time, Unix seconds."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""
        ...

    def scaled(self, seconds: float) -> float:
        """How long ``seconds`` of nominal time lasts on this clock."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of nominal time (scaled)."""
        ...


class RealClock:
    """The wall clock."""

    scale = 1.0

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def scaled(self, seconds: float) -> float:
        return seconds

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "RealClock()"


class ScaledClock(RealClock):
    """The wall clock with every duration multiplied by ``scale``."""

    def __init__(self, scale: float) -> None:
        if not scale > 0:
            raise ValueError(f"time scale must be > 0, got {scale!r}")
        self._scale = float(scale)

    @property
    def scale(self) -> float:  # type: ignore[override]
        return self._scale

    def scaled(self, seconds: float) -> float:
        return seconds * self._scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds * self._scale))

    def __repr__(self) -> str:
        return f"ScaledClock(scale={self._scale})"


class ManualClock:
    """A clock that moves only when told to.

    With ``auto_advance=True`` (the default) ``await clock.sleep(s)`` moves the clock forward by
    ``s`` and returns at once, so code that polls with sleeps runs a long lifecycle instantly.
    With ``auto_advance=False`` sleepers wait until ``advance()`` carries the clock past their
    wake-up time.
    """

    scale = 1.0

    def __init__(self, start: float = 1_767_225_600.0, *, auto_advance: bool = True) -> None:
        # Default start: 2026-01-01T00:00:00Z, a fixed, readable epoch for tests.
        self._now = float(start)
        self._origin = float(start)
        self.auto_advance = auto_advance
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now - self._origin

    def scaled(self, seconds: float) -> float:
        return seconds

    def advance(self, seconds: float) -> None:
        """Move the clock forward and wake every sleeper whose time has come."""
        if seconds < 0:
            raise ValueError("a clock never goes backwards")
        self._now += seconds
        still: list[tuple[float, asyncio.Future[None]]] = []
        for wake_at, fut in self._sleepers:
            if wake_at <= self._now:
                if not fut.done():
                    fut.set_result(None)
            else:
                still.append((wake_at, fut))
        self._sleepers = still

    def set(self, when: float) -> None:
        """Jump to an absolute time (not earlier than now)."""
        self.advance(when - self._now)

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        if self.auto_advance:
            self.advance(seconds)
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, fut))
        await fut

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r}, auto_advance={self.auto_advance})"


def to_datetime(ms: int | float | None) -> datetime | None:
    """Kling's epoch milliseconds as an aware UTC datetime (``None`` stays ``None``)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(float(ms) / 1000.0, tz=UTC)


def to_ms(when: datetime | float) -> int:
    """An aware datetime or Unix seconds as epoch milliseconds."""
    if isinstance(when, datetime):
        return round(when.timestamp() * 1000)
    return round(when * 1000)


def format_duration(seconds: float, *, precise: bool = False) -> str:
    """A duration for people: ``5`` -> ``5s``, ``95`` -> ``1m35s``, ``7300`` -> ``2h01m``.

    ``precise=True`` keeps the seconds past an hour too (``3725`` -> ``1h02m05s``), for elapsed
    times printed one under another.
    """
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s" if precise else f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
