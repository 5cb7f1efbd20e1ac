"""Learned durations: how long tasks of one (product, model, mode) wait and run.

From the last :data:`SAMPLE` finished successful tasks the ledger computes, in Python, the
p50/p95/p99 of

* **queue time**: Kling's ``created -> processing`` (``kling_processing_ms - kling_created_ms``)
  when both are known, else klingwatch's own ``processing_at - submitted_at``;
* **run time**: ``finished_at - `` the start of processing (Kling's time when known, else
  ``processing_at``).

Tasks never seen ``processing`` add no sample (a jump from ``submitted`` straight to ``succeed``
says nothing about where the time went). :class:`DurationCache` keeps results per key until a
task of this ledger succeeds again, or a short time passes (other replicas may have learned).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from klingwatch.store.records import DurationStats

__all__ = ["CACHE_SECONDS", "SAMPLE", "DurationCache", "Timing", "percentile", "summarize"]

#: How many of the most recently finished tasks are learned from.
SAMPLE = 500
#: How long a cached figure is trusted when this process saw no new success (other replicas').
CACHE_SECONDS = 60.0

_Key = tuple[str, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Timing:
    """The times of one finished task that durations are learned from."""

    submitted_at: float | None
    processing_at: float | None
    finished_at: float | None
    kling_created_ms: int | None
    kling_processing_ms: int | None

    def queue_seconds(self) -> float | None:
        """Wait before processing, or ``None`` when it cannot be told."""
        if self.kling_processing_ms is not None and self.kling_created_ms is not None:
            value: float | None = (self.kling_processing_ms - self.kling_created_ms) / 1000.0
        elif self.processing_at is not None and self.submitted_at is not None:
            value = self.processing_at - self.submitted_at
        else:
            value = None
        return value if value is not None and value >= 0 else None

    def run_seconds(self) -> float | None:
        """Processing time, or ``None`` when it cannot be told."""
        if self.kling_processing_ms is not None:
            start: float | None = self.kling_processing_ms / 1000.0
        else:
            start = self.processing_at
        if start is None or self.finished_at is None:
            return None
        value = self.finished_at - start
        return value if value >= 0 else None


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, interpolating linearly
    between closest ranks (numpy's default)."""
    if not ordered:
        raise ValueError("percentile of no values")
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(timings: Iterable[Timing]) -> DurationStats:
    """Percentiles of queue and run time over ``timings``."""
    items = list(timings)
    queue = sorted(q for q in (t.queue_seconds() for t in items) if q is not None)
    run = sorted(r for r in (t.run_seconds() for t in items) if r is not None)
    return DurationStats(
        n=len(items),
        queue_n=len(queue),
        queue_p50=percentile(queue, 50) if queue else None,
        queue_p95=percentile(queue, 95) if queue else None,
        queue_p99=percentile(queue, 99) if queue else None,
        run_n=len(run),
        run_p50=percentile(run, 50) if run else None,
        run_p95=percentile(run, 95) if run else None,
        run_p99=percentile(run, 99) if run else None,
    )


class DurationCache:
    """Computed :class:`DurationStats` per (product, model, mode).

    An entry is good while no task succeeded in this process since (``generation``) and for at
    most ``ttl`` seconds of the caller's monotonic clock.
    """

    def __init__(self, ttl: float = CACHE_SECONDS) -> None:
        self.ttl = ttl
        self.generation = 0
        self._entries: dict[_Key, tuple[DurationStats, int, float]] = {}

    def invalidate(self) -> None:
        """Something new finished: every entry is stale."""
        self.generation += 1

    def get(self, key: _Key, now: float) -> DurationStats | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stats, generation, stamp = entry
        if generation != self.generation or now - stamp >= self.ttl or now < stamp:
            return None
        return stats

    def put(self, key: _Key, stats: DurationStats, now: float, generation: int) -> None:
        """Keep ``stats``, computed from what the ledger held at ``generation``."""
        self._entries[key] = (stats, generation, now)
