"""The figures the dashboard, ``/api/stats`` and ``/metrics`` share, computed from the ledger.

One :class:`Overview` is built from one read of the task table and kept until the ledger changes
(its newest event id moves) or it is a few seconds old, so a dashboard open in ten tabs and a
Prometheus scrape every 15 s cost one read between changes, not one each.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from klingwatch.clock import Clock
from klingwatch.monitor.eta import Eta, estimate, progress
from klingwatch.monitor.expiry import DEFAULT_WARN_DAYS, expires_at, is_collected
from klingwatch.operations.queries import Tally
from klingwatch.operations.results import BudgetResult, SpendReport
from klingwatch.operations.spend import budget_result, summarize_spend
from klingwatch.store import FINAL_STATUSES, DownloadRecord, Ledger, LocalStatus, TaskRecord
from klingwatch.store.async_ledger import AsyncLedger

__all__ = [
    "DURATION_BOUNDS",
    "GroupDurations",
    "Overview",
    "OverviewCache",
    "build_overview",
]

logger = logging.getLogger(__name__)

#: Histogram bounds (seconds) for queue, run and total times.
DURATION_BOUNDS: tuple[float, ...] = (15, 30, 60, 120, 180, 300, 600, 1200, 1800, 3600, 7200)
#: Throughput windows, seconds: the shortest that holds the last day's finishes is shown.
WINDOWS: tuple[float, ...] = (600.0, 1800.0, 3600.0, 6 * 3600.0, 86400.0)


@dataclass
class GroupDurations:
    """Times of finished tasks of one (product, model, mode), seconds."""

    queue: list[float] = field(default_factory=list)
    run: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)


@dataclass
class BatchFigures(Tally):
    name: str
    counts: Counter[LocalStatus] = field(default_factory=Counter)
    #: When it will be done (:mod:`klingwatch.monitor.eta`, as ``status`` and the live view).
    eta: Eta | None = None
    #: Its budget cap and what counts against it (``None``: the batch has no cap).
    budget: BudgetResult | None = None
    #: When the batch was made (``/metrics`` reports the newest batches only).
    created_at: float = 0.0


@dataclass
class Overview:
    """Everything counted in one pass over the tasks, at ``at`` (clock seconds)."""

    at: float
    event_id: int | None
    counts: Counter[LocalStatus] = field(default_factory=Counter)
    #: (status, product, model) -> tasks; model ``""`` when unset.
    by_group: Counter[tuple[LocalStatus, str, str]] = field(default_factory=Counter)
    batches: dict[str, BatchFigures] = field(default_factory=dict)
    #: (product, model, mode) -> durations of finished tasks.
    durations: dict[tuple[str, str, str], GroupDurations] = field(default_factory=dict)
    #: (finished_at, status) of every final task (for throughput).
    finishes: list[tuple[float, LocalStatus]] = field(default_factory=list)
    slots_in_use: Counter[str] = field(default_factory=Counter)
    stuck: list[TaskRecord] = field(default_factory=list)
    #: Failed and rejected tasks, newest first.
    failed: list[TaskRecord] = field(default_factory=list)
    expiring: int = 0
    #: Spend summed by batch, by day and by (product, model, mode) (``klingwatch spend``).
    spend_by_batch: SpendReport | None = None
    spend_by_day: SpendReport | None = None
    spend_by_kind: SpendReport | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def throughput(
        self, now: float, buckets: int = 30
    ) -> tuple[float, float, list[int], list[int]]:
        """``(bucket_seconds, start, succeeded[], failed[])`` over a window that shows something.

        The window is the shortest of 10 min, 30 min, 1 h, 6 h and 24 h that holds every finish
        of the last day (so a fast run is not one bar, and a day's work fits); with nothing
        finished in a day, the last 30 days: an idle dashboard still shows last week's work.
        """
        recent = [now - t for t, _ in self.finishes if 0 <= now - t <= 86400.0]
        span = 30 * 86400.0
        if recent:
            oldest = max(recent)
            span = next(w for w in WINDOWS if w >= oldest)
        width = span / buckets
        start = now - span
        ok = [0] * buckets
        bad = [0] * buckets
        for when, status in self.finishes:
            if when < start or when > now:
                continue
            i = min(buckets - 1, int((when - start) // width))
            if status is LocalStatus.SUCCEED:
                ok[i] += 1
            else:
                bad[i] += 1
        return width, start, ok, bad


def histogram(values: list[float], bounds: tuple[float, ...] = DURATION_BOUNDS) -> list[int]:
    """Per-bucket counts (not cumulative): ``len(bounds) + 1`` entries, the last is overflow."""
    counts = [0] * (len(bounds) + 1)
    for v in values:
        counts[bisect_left(bounds, v)] += 1
    return counts


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by nearest rank; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[rank]


def downloads_by_task(ledger: Ledger) -> dict[int, list[DownloadRecord]]:
    """Every download record, by task."""
    out: dict[int, list[DownloadRecord]] = defaultdict(list)
    for d in ledger.downloads():
        out[d.local_id].append(d)
    return out


def build_overview(ledger: Ledger, now: float, *, warn_days: float = DEFAULT_WARN_DAYS) -> Overview:
    """Count everything from one read of the ledger's tasks (and one of its downloads)."""
    latest = ledger.recent_events(limit=1)
    ov = Overview(at=now, event_id=latest[0].id if latest else None)
    downloads = downloads_by_task(ledger)
    warn = warn_days * 86400.0
    for t in ledger.tasks():
        ov.counts[t.status] += 1
        ov.by_group[(t.status, t.product, t.model or "")] += 1
        batch = ov.batches.get(t.batch)
        if batch is None:
            batch = ov.batches[t.batch] = BatchFigures(t.batch)
        batch.counts[t.status] += 1
        if t.status.is_active and t.status is not LocalStatus.UNKNOWN:
            ov.slots_in_use[t.family] += t.slot_cost
        if t.stuck and not t.status.is_final:
            ov.stuck.append(t)
        if t.status in FINAL_STATUSES:
            _finished(ov, batch, t, now)
            deletion = expires_at(t)
            if (
                deletion is not None
                and now < deletion <= now + warn
                and not is_collected(t, downloads.get(t.local_id, ()))
            ):
                ov.expiring += 1
    ov.failed.sort(key=lambda t: t.finished_at or t.detected_at or 0.0, reverse=True)
    for name, figures in ov.batches.items():
        figures.eta = estimate(progress(ledger, name, now))
    for record in ledger.batches():
        figures = ov.batches.setdefault(record.name, BatchFigures(record.name))
        figures.created_at = record.created_at
        found = ledger.budget(record.name) if record.max_units else None
        if found is not None:
            figures.budget = budget_result(found)
    lines = ledger.spend_lines()
    ov.spend_by_batch = summarize_spend(lines, ("batch",))
    ov.spend_by_day = summarize_spend(lines, ("day",))
    ov.spend_by_kind = summarize_spend(lines, ("product", "model", "mode"))
    return ov


def _finished(ov: Overview, batch: BatchFigures, t: TaskRecord, now: float) -> None:
    when = t.finished_at or t.detected_at
    if when is not None:
        ov.finishes.append((when, t.status))
    key = (t.product, t.model or "", t.mode or "")
    group = ov.durations.get(key)
    if group is None:
        group = ov.durations[key] = GroupDurations()
    if t.detected_at is not None and t.kling_updated_ms is not None:
        group.lag.append(max(0.0, t.detected_at - t.kling_updated_ms / 1000.0))
    if t.status is not LocalStatus.SUCCEED:
        ov.failed.append(t)
        return
    start = t.submitted_at or t.sent_at
    if start is not None and t.processing_at is not None:
        group.queue.append(max(0.0, t.processing_at - start))
    if t.processing_at is not None and t.finished_at is not None:
        group.run.append(max(0.0, t.finished_at - t.processing_at))
    if start is not None and t.finished_at is not None:
        group.total.append(max(0.0, t.finished_at - start))


class OverviewCache:
    """Rebuilds the :class:`Overview` only when the ledger changed or it is ``max_age`` old."""

    def __init__(
        self,
        ledger: AsyncLedger,
        clock: Clock,
        *,
        max_age: float = 5.0,
        warn_days: float = DEFAULT_WARN_DAYS,
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        self._base_age = max_age
        self._max_age = max_age
        self._warn_days = warn_days
        self._current: Overview | None = None
        self._built_mono = 0.0
        # Ten tabs asking at once wait for one count, not ten.
        self._lock = asyncio.Lock()

    async def get(self) -> Overview:
        async with self._lock:
            latest = await self._ledger.recent_events(limit=1)
            newest = latest[0].id if latest else None
            fresh = (
                self._current is not None
                and self._current.event_id == newest
                and self._clock.monotonic() - self._built_mono < self._max_age
            )
            if not fresh:
                began = self._clock.monotonic()
                self._current = await self._ledger.read(
                    build_overview, self._clock.time(), warn_days=self._warn_days
                )
                self._built_mono = self._clock.monotonic()
                # A big ledger takes a while to count: never spend more than a fifth of the
                # time counting, however busy the ledger is.
                self._max_age = max(self._base_age, 5 * (self._built_mono - began))
            assert self._current is not None
            return self._current


def group_key_text(key: tuple[str, str, str]) -> str:
    """``product · model · mode`` for display."""
    return " · ".join(part for part in key if part)


def by_product(ov: Overview) -> dict[str, dict[str, dict[str, int]]]:
    """``{product: {model: {status: n}}}``."""
    out: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for (status, product, model), n in sorted(ov.by_group.items()):
        out[product][model][status.value] = n
    return {p: dict(models) for p, models in out.items()}
