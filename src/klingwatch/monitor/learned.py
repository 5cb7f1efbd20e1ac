"""Learned timings: how long tasks of one product, model and mode took, as cadence timings.

The ledger keeps queue and run time percentiles of finished tasks
(:meth:`Ledger.durations <klingwatch.store.Ledger.durations>`). Two sources hand them to a
:class:`~klingwatch.monitor.cadence.Cadence`, both built on :func:`timing_from`:

* :func:`learned_timing`, for code off the event loop (``klingwatch status``): reads the ledger
  when asked;
* :class:`LearnedTimings`, for the engine: :meth:`LearnedTimings.refresh` reads through the
  async ledger before a sweep schedules its looks, and the cadence's (synchronous) questions
  are then answered from memory, never blocking the loop.
"""

from __future__ import annotations

from collections.abc import Iterable

from klingwatch.kling.pacing import Percentiles, Timing
from klingwatch.monitor.cadence import TimingSource
from klingwatch.store import DurationStats, Ledger
from klingwatch.store.async_ledger import AsyncLedger

__all__ = ["LearnedTimings", "learned_timing", "timing_from"]

_Key = tuple[str, str | None, str | None]


def timing_from(stats: DurationStats) -> Timing | None:
    """Cadence timings from learned durations; ``None`` until every percentile is known."""
    q = (stats.queue_p50, stats.queue_p95, stats.queue_p99)
    r = (stats.run_p50, stats.run_p95, stats.run_p99)
    if any(v is None for v in (*q, *r)):
        return None
    qp = sorted(float(v or 0.0) for v in q)
    rp = sorted(float(v or 0.0) for v in r)
    return Timing(Percentiles(*qp), Percentiles(*rp), samples=min(stats.queue_n, stats.run_n))


def learned_timing(ledger: Ledger) -> TimingSource:
    """A timing source that reads ``ledger`` directly (for code that runs off the event loop)."""

    def source(product: str, model: str | None, mode: str | None) -> Timing | None:
        return timing_from(ledger.durations(product, model, mode))

    return source


class LearnedTimings:
    """The engine's timing source: filled by :meth:`refresh`, read from memory."""

    def __init__(self, ledger: AsyncLedger) -> None:
        self.ledger = ledger
        self._known: dict[_Key, Timing | None] = {}

    async def refresh(self, keys: Iterable[_Key]) -> None:
        """Read the learned timings of ``keys`` (the ledger caches them for a minute)."""
        for key in set(keys):
            self._known[key] = timing_from(await self.ledger.durations(*key))

    def __call__(self, product: str, model: str | None, mode: str | None) -> Timing | None:
        return self._known.get((product, model, mode))
