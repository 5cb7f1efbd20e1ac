"""``/metrics``: Prometheus figures, in a registry of the app's own (never the global one).

Ledger figures are computed at scrape time by a custom collector from the shared
:class:`~klingwatch.server.overview.Overview` (one read of the ledger between changes), so they are
exact whichever process or replica changed the ledger:

======================================== ===============================================
``klingwatch_tasks``                     gauge; tasks by ``status``, ``product``, ``model``
``klingwatch_transitions_total``         counter; status changes by ``from_status``,
                                         ``to_status``, ``source`` (the ledger's events)
``klingwatch_queue_seconds``             histogram; submitted -> processing, finished tasks
``klingwatch_run_seconds``               histogram; processing -> final, finished tasks
``klingwatch_detection_lag_seconds``     histogram; Kling's update -> klingwatch learned it
``klingwatch_kling_requests_total``      counter; requests to Kling by ``method``, ``route``
``klingwatch_kling_responses_total``     counter; answers by HTTP ``status`` and Kling ``code``
``klingwatch_callback_deliveries_total`` counter; callbacks by ``outcome``
``klingwatch_slots_in_use``              gauge; concurrency slots held, by ``family``
``klingwatch_stuck_tasks``               gauge
``klingwatch_downloads_expiring``        gauge; succeeded, not downloaded, deleted soon
``klingwatch_submissions_paused``        gauge; 1 while submissions are paused
``klingwatch_pack_exhausted``            gauge; 1 while paused by 1102 (pack exhausted)
``klingwatch_alert_active``              gauge; 1 per active alert ``kind``
``klingwatch_units_spent_total``         counter; units Kling deducted, by ``product``,
                                         ``model``, ``mode``
``klingwatch_units_estimated_total``     counter; units estimated when queued, same labels
``klingwatch_cash_spent_total``          counter; cash Kling charged, by ``currency``
``klingwatch_batch_units_spent``         gauge; units Kling deducted, by ``batch``
``klingwatch_batch_units_estimated``     gauge; units estimated when queued, by ``batch``
``klingwatch_batch_units_cap``           gauge; the batch's budget cap, by ``batch``
``klingwatch_batch_units_sent_estimate`` gauge; estimates of its tasks sent, by ``batch``
``klingwatch_batch_tasks_held``          gauge; queued tasks its cap holds, by ``batch``
======================================== ===============================================

Label cardinality stays bounded: the spend counters are labelled by kind (product, model, mode:
a few dozen at most), never by batch, and the per-batch gauges cover only the
:data:`BATCH_SERIES` newest batches and those whose cap holds tasks now (``klingwatch spend``
has them all).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from klingwatch.kling.products import Family
from klingwatch.kling.stats import ClientStats
from klingwatch.monitor import gates
from klingwatch.monitor.gates import PauseState
from klingwatch.server.overview import DURATION_BOUNDS, Overview, OverviewCache
from klingwatch.store import AlertRecord, LocalStatus
from klingwatch.store.async_ledger import AsyncLedger

__all__ = ["BATCH_SERIES", "PACK_EXHAUSTED", "LedgerCollector", "Metrics", "TransitionTail"]

#: Kling's code for "resource pack exhausted or expired".
PACK_EXHAUSTED = 1102
#: Batches with series of their own in ``/metrics`` (the newest).
BATCH_SERIES = 20

logger = logging.getLogger(__name__)


class TransitionTail:
    """Counts the ledger's status-change events, reading only the ones it has not seen."""

    def __init__(self, ledger: AsyncLedger, *, page: int = 5000) -> None:
        self._ledger = ledger
        self._page = page
        self._after: int | None = None
        self._lock = asyncio.Lock()
        self.counts: Counter[tuple[str, str, str]] = Counter()

    async def catch_up(self) -> Counter[tuple[str, str, str]]:
        """Read new events (oldest first) and return the counts so far."""
        async with self._lock:
            while True:
                events = await self._ledger.recent_events(
                    limit=self._page, after_id=self._after or 0
                )
                for e in events:
                    # Notes (stuck, unstuck) repeat the status; orphans are about no task.
                    if e.local_id is not None and e.from_status != e.to_status:
                        frm = e.from_status.value if e.from_status else "none"
                        self.counts[(frm, e.to_status.value, str(e.source))] += 1
                if events:
                    self._after = max(e.id for e in events)
                if len(events) < self._page:
                    return Counter(self.counts)


def _histogram(
    name: str, doc: str, groups: dict[tuple[str, str, str], list[float]]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["product", "model", "mode"])
    for (product, model, mode), values in sorted(groups.items()):
        if not values:
            continue
        buckets: list[tuple[str, float]] = []
        cumulative = 0
        ordered = sorted(values)
        i = 0
        for bound in DURATION_BOUNDS:
            while i < len(ordered) and ordered[i] <= bound:
                i += 1
            cumulative = i
            buckets.append((repr(float(bound)), cumulative))
        buckets.append(("+Inf", len(ordered)))
        family.add_metric([product, model, mode], buckets, sum(ordered))
    return family


@dataclass(frozen=True, slots=True)
class Scrape:
    """What one scrape reports, read from the ledger (asynchronously) just before it."""

    overview: Overview
    transitions: Counter[tuple[str, str, str]]
    alerts: list[AlertRecord]
    pause: PauseState | None


class LedgerCollector(Collector):
    """Reports the ledger's figures as read by :meth:`Metrics.prepare` for this scrape
    (prometheus-client collects synchronously; the reads happen before, on the async ledger)."""

    def __init__(self, *, client_stats: Callable[[], ClientStats | None] = lambda: None) -> None:
        self._client_stats = client_stats
        self.scrape: Scrape | None = None

    def collect(self) -> Iterator[Metric]:
        if self.scrape is None:
            return
        ov = self.scrape.overview
        tasks = GaugeMetricFamily(
            "klingwatch_tasks", "Tasks in the ledger.", labels=["status", "product", "model"]
        )
        seen: set[LocalStatus] = set()
        for (status, product, model), n in sorted(ov.by_group.items()):
            tasks.add_metric([status.value, product, model], n)
            seen.add(status)
        yield tasks

        transitions = CounterMetricFamily(
            "klingwatch_transitions",
            "Status changes recorded by the ledger.",
            labels=["from_status", "to_status", "source"],
        )
        for (frm, to, source), n in sorted(self.scrape.transitions.items()):
            transitions.add_metric([frm, to, source], n)
        yield transitions

        queue = {k: g.queue for k, g in ov.durations.items()}
        run = {k: g.run for k, g in ov.durations.items()}
        lag = {k: g.lag for k, g in ov.durations.items()}
        yield _histogram(
            "klingwatch_queue_seconds", "Seconds succeeded tasks waited before processing.", queue
        )
        yield _histogram("klingwatch_run_seconds", "Seconds succeeded tasks processed.", run)
        yield _histogram(
            "klingwatch_detection_lag_seconds",
            "Seconds from Kling's final update to klingwatch learning it.",
            lag,
        )

        slots = GaugeMetricFamily(
            "klingwatch_slots_in_use", "Concurrency slots held.", labels=["family"]
        )
        for family in sorted(set(ov.slots_in_use) | {f.value for f in Family}):
            slots.add_metric([family], ov.slots_in_use.get(family, 0))
        yield slots
        yield GaugeMetricFamily(
            "klingwatch_stuck_tasks", "Active tasks marked stuck.", value=len(ov.stuck)
        )
        yield GaugeMetricFamily(
            "klingwatch_downloads_expiring",
            "Succeeded tasks not downloaded whose results Kling deletes soon.",
            value=ov.expiring,
        )
        pause = self.scrape.pause
        paused, code = pause is not None, (pause.code if pause is not None else None)
        yield GaugeMetricFamily(
            "klingwatch_submissions_paused", "1 while submissions are paused.", value=int(paused)
        )
        yield GaugeMetricFamily(
            "klingwatch_pack_exhausted",
            "1 while submissions are paused because the resource pack is exhausted (1102).",
            value=int(paused and code == PACK_EXHAUSTED),
        )
        alerts = GaugeMetricFamily(
            "klingwatch_alert_active", "Active alerts by kind.", labels=["kind"]
        )
        for alert in self.scrape.alerts:
            alerts.add_metric([alert.kind], 1)
        yield alerts
        yield from _spend_metrics(ov)
        yield from self._client_metrics()

    def _client_metrics(self) -> Iterator[Metric]:
        stats = self._client_stats()
        requests = CounterMetricFamily(
            "klingwatch_kling_requests",
            "HTTP requests sent to Kling (retries included).",
            labels=["method", "route"],
        )
        responses = CounterMetricFamily(
            "klingwatch_kling_responses",
            "Kling's answers by HTTP status (or failure kind) and Kling code.",
            labels=["status", "code"],
        )
        if stats is not None:
            for (method, route), n in sorted(stats.by_route.items()):
                requests.add_metric([method, route], n)
            for (status, code), n in sorted(stats.by_outcome.items()):
                responses.add_metric([status, code], n)
        yield requests
        yield responses


def _spend_metrics(ov: Overview) -> Iterator[Metric]:
    """The spend ledger's figures (see the module docstring for the label rules)."""
    kinds = ["product", "model", "mode"]
    spent = CounterMetricFamily(
        "klingwatch_units_spent", "Units Kling deducted (final_unit_deduction).", labels=kinds
    )
    estimated = CounterMetricFamily(
        "klingwatch_units_estimated", "Units estimated when the tasks were queued.", labels=kinds
    )
    cash = CounterMetricFamily(
        "klingwatch_cash_spent", "Cash Kling charged (billing[]).", labels=["currency"]
    )
    if ov.spend_by_kind is not None:
        for row in ov.spend_by_kind.rows:
            labels = [row.keys.get(k) or "" for k in kinds]
            spent.add_metric(labels, float(row.units_spent))
            estimated.add_metric(labels, float(row.units_estimated))
        for currency, amount in ov.spend_by_kind.total.cash:
            cash.add_metric([currency or ""], float(amount))
    yield spent
    yield estimated
    yield cash

    by_age = sorted(ov.batches.values(), key=lambda b: b.created_at, reverse=True)
    # The newest batches, and any whose cap holds tasks now (those wait for a person).
    newest = by_age[:BATCH_SERIES] + [
        b for b in by_age[BATCH_SERIES:] if b.budget is not None and b.budget.held
    ]
    rows = {r.keys.get("batch"): r for r in (ov.spend_by_batch.rows if ov.spend_by_batch else [])}
    gauges = {
        name: GaugeMetricFamily(f"klingwatch_batch_{name}", doc, labels=["batch"])
        for name, doc in (
            ("units_spent", "Units Kling deducted, by batch (the newest batches)."),
            ("units_estimated", "Units estimated when queued, by batch (the newest batches)."),
            ("units_cap", "The batch's budget cap in units (batches with a cap)."),
            ("units_sent_estimate", "Estimates of the batch's tasks sent (what its cap counts)."),
            ("tasks_held", "Queued tasks the batch's budget cap holds back."),
        )
    }
    for batch in newest:
        summed = rows.get(batch.name)
        if summed is not None:
            gauges["units_spent"].add_metric([batch.name], float(summed.units_spent))
            gauges["units_estimated"].add_metric([batch.name], float(summed.units_estimated))
        budget = batch.budget
        if budget is not None and budget.max_units is not None:
            gauges["units_cap"].add_metric([batch.name], float(budget.max_units))
            gauges["units_sent_estimate"].add_metric([batch.name], float(budget.sent_estimate))
            gauges["tasks_held"].add_metric([batch.name], budget.held)
    yield from gauges.values()


class Metrics:
    """The app's registry: the ledger collector plus in-process counters."""

    def __init__(
        self,
        ledger: AsyncLedger,
        overview: OverviewCache,
        *,
        client_stats: Callable[[], ClientStats | None] = lambda: None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.ledger = ledger
        self.overview = overview
        self.tail = TransitionTail(ledger)
        self.collector = LedgerCollector(client_stats=client_stats)
        self.registry.register(self.collector)
        self.callbacks = PromCounter(
            "klingwatch_callback_deliveries",
            "Callback deliveries by outcome.",
            labelnames=["outcome"],
            registry=self.registry,
        )
        self.callback_counts: Counter[str] = Counter()

    async def prepare(self) -> None:
        """Read what the next scrape reports (call before ``generate_latest``)."""
        self.collector.scrape = Scrape(
            overview=await self.overview.get(),
            transitions=await self.tail.catch_up(),
            alerts=await self.ledger.alerts(active=True),
            pause=await self.ledger.read(gates.pause_state),
        )

    def count_callback(self, outcome: str) -> None:
        self.callbacks.labels(outcome=outcome).inc()
        self.callback_counts[outcome] += 1
