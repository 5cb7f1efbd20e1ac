"""The read operations every face shares: task lists, where batches stand, one task with its
timeline, stuck tasks, and waiting for tasks to end.

``klingwatch status``, ``GET /api/tasks`` and the MCP server's ``status`` / ``list_tasks`` /
``show_task`` / ``stuck`` / ``wait_for`` tools answer from these, so a filter or a count means the
same thing wherever it is asked. :func:`gather` is synchronous (the short read commands call it on
a :class:`~klingwatch.store.Ledger` without an event loop); the rest are async functions of the
:class:`~klingwatch.store.async_ledger.AsyncLedger` behind the methods of
:class:`~klingwatch.operations.Operations` of the same names.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from klingwatch.kling.errors import ConfigurationError
from klingwatch.monitor.eta import Eta, estimate, progress
from klingwatch.monitor.expiry import DEFAULT_WARN_DAYS, collection, expires_at
from klingwatch.monitor.retries import lineage
from klingwatch.monitor.service import Monitor
from klingwatch.operations.spend import summarize_spend
from klingwatch.store import (
    ACTIVE_STATUSES,
    DownloadRecord,
    EventRecord,
    Ledger,
    LocalStatus,
    TaskRecord,
)
from klingwatch.store.async_ledger import AsyncLedger
from klingwatch.store.budget import hold_message
from klingwatch.store.errors import UnknownTask
from klingwatch.store.reads import TASK_ORDERS

__all__ = [
    "MAX_PAGE",
    "MAX_WAIT_SECONDS",
    "BatchStatus",
    "Status",
    "StatusReport",
    "Tally",
    "TaskDetail",
    "TaskPage",
    "TaskQuery",
    "TaskSort",
    "WaitResult",
    "gather",
    "list_tasks",
    "prompt_of",
    "result_urls",
    "show_task",
    "status_report",
    "task_detail",
    "wait_for",
]

logger = logging.getLogger(__name__)

#: The most tasks one page may hold.
MAX_PAGE = 1000
#: The largest offset a page may start at (a SQLite/PostgreSQL integer).
MAX_OFFSET = 2**31 - 1
#: The longest a wait for tasks may last, seconds.
MAX_WAIT_SECONDS = 600.0
#: In-flight tasks read for the oldest one (Kling's slots bound them anyway).
_IN_FLIGHT_SAMPLE = 2000

TaskSort = Literal[
    "id", "queued_at", "sent_at", "finished_at", "status", "product", "batch", "external_task_id"
]
assert set(TaskSort.__args__) == set(TASK_ORDERS)  # type: ignore[attr-defined]


def prompt_of(request: dict[str, Any]) -> str | None:
    """The prompt of a request in either standard (``prompt`` or a ``contents[]`` prompt part)."""
    prompt = request.get("prompt")
    if isinstance(prompt, str):
        return prompt
    for part in request.get("contents") or ():
        if isinstance(part, dict) and part.get("type") == "prompt":
            text = part.get("text")
            if isinstance(text, str):
                return text
    return None


def result_urls(result: dict[str, Any] | None) -> list[str]:
    """Every result URL of a ledger result (videos, images, audios), in order."""
    if not result:
        return []
    urls: list[str] = []
    for key in ("videos", "images", "audios"):
        for item in result.get(key) or []:
            if isinstance(item, dict) and item.get("url"):
                urls.append(str(item["url"]))
    return urls


# -- task lists ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Which tasks to list: every filter given must match (``GET /api/tasks``'s filters).

    Raises :class:`~klingwatch.kling.errors.ConfigurationError` for a bound out of range.
    """

    status: tuple[LocalStatus, ...] = ()
    batch: str | None = None
    product: str | None = None
    model: str | None = None
    #: queued at or after / before (Unix seconds)
    since: float | None = None
    until: float | None = None
    #: text in the prompt (case-insensitive)
    text: str | None = None
    stuck: bool | None = None
    limit: int = 50
    offset: int = 0
    sort: TaskSort = "id"
    descending: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise ConfigurationError(f"limit must be between 1 and {MAX_PAGE}, not {self.limit}")
        if not 0 <= self.offset <= MAX_OFFSET:
            raise ConfigurationError(f"offset must be 0 or more, not {self.offset}")
        if self.sort not in TASK_ORDERS:
            known = ", ".join(TASK_ORDERS)
            raise ConfigurationError(f"cannot sort by {self.sort!r}; use one of {known}")

    @property
    def ledger_only(self) -> bool:
        """Whether the ledger's own query can page it (no filter it lacks)."""
        return self.model is None and self.since is None and self.until is None and not self.text


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of a task list."""

    items: list[TaskRecord]
    #: every task matching, over all pages
    total: int
    limit: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        """Where the next page starts (``None``: this is the last)."""
        after = self.offset + len(self.items)
        return after if after < self.total and self.items else None


# -- status -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Status:
    """Where a batch (or everything) stands: what ``klingwatch status`` reports (its ``--json``
    shape)."""

    batch: str | None
    total: int
    counts: dict[str, int]
    active: int
    stuck: int
    oldest_active: dict[str, Any] | None
    #: seconds until every task is final (:mod:`klingwatch.monitor.eta`), and what it rests on
    eta_seconds: float | None
    eta_basis: str
    #: results not yet downloaded that Kling deletes within the warning window (soonest first)
    expiring: list[dict[str, Any]]
    #: succeeded tasks whose results Kling has already deleted before they were collected
    results_lost: int
    #: downloads: result files in all, complete on disk, expired, failed
    files: dict[str, int]
    #: units estimated when queued and spent as Kling reported, cash charged (``spend``)
    spend: dict[str, Any]
    #: batches whose budget cap holds tasks back: batch, held, reason
    held: list[dict[str, Any]]


def gather(
    ledger: Ledger, *, batch: str | None, now: float, warn_days: float = DEFAULT_WARN_DAYS
) -> Status:
    """Counts by SQL; only in-flight tasks (few: Kling's slots bound them) are read for the ETA."""
    counts = ledger.counts(batch=batch)
    active = sum(counts.get(s, 0) for s in ACTIVE_STATUSES)
    stuck = len(ledger.tasks(stuck=True, batch=batch)) if active else 0
    in_flight = (
        ledger.tasks(status=ACTIVE_STATUSES, batch=batch, limit=_IN_FLIGHT_SAMPLE) if active else []
    )
    oldest = None
    if in_flight:
        first = in_flight[0]
        since = first.sent_at if first.sent_at is not None else first.queued_at
        if first.kling_created_ms is not None:
            since = first.kling_created_ms / 1000.0
        oldest = {
            "local_id": first.local_id,
            "external_task_id": first.external_task_id,
            "task_id": first.task_id,
            "status": first.status.value,
            "age_seconds": round(now - since, 1),
        }
    eta = estimate(progress(ledger, batch, now))
    collected = collection(ledger, now, warn_days, batch=batch)
    spent = summarize_spend(ledger.spend_lines(batch=batch), ()).total.to_dict()
    return Status(
        batch=batch,
        total=sum(counts.values()),
        counts={s.value: counts.get(s, 0) for s in LocalStatus},
        active=active,
        stuck=stuck,
        oldest_active=oldest,
        eta_seconds=eta.seconds,
        eta_basis=eta.basis.value,
        expiring=[
            {
                "external_task_id": task.external_task_id,
                "task_id": task.task_id,
                "deleted_at": when,
            }
            for task in collected.expiring
            if (when := expires_at(task)) is not None
        ],
        results_lost=collected.lost,
        files={
            "total": collected.files,
            "complete": collected.files_complete,
            "expired": collected.files_expired,
            "failed": collected.files_failed,
        },
        spend={k: spent[k] for k in ("units_estimated", "units_spent", "cash")},
        held=_held(ledger, batch) if counts.get(LocalStatus.QUEUED, 0) else [],
    )


def _held(ledger: Ledger, batch: str | None) -> list[dict[str, Any]]:
    """Each batch whose cap holds tasks back, with the reason they show."""
    names = [batch] if batch is not None else [b.name for b in ledger.batches() if b.max_units]
    out = []
    for name in names:
        budget = ledger.budget(name)
        if budget is None or not budget.held or budget.max_units is None:
            continue
        reason = hold_message(budget.max_units, budget.committed, budget.estimated)
        out.append({"batch": name, "held": budget.held, "reason": reason})
    return out


class Tally:
    """``total`` and ``done`` of anything holding ``counts`` by status (a batch's figures)."""

    __slots__ = ()
    counts: Mapping[LocalStatus, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return sum(n for s, n in self.counts.items() if s.is_final)


@dataclass(frozen=True, slots=True)
class BatchStatus(Tally):
    """One batch's counts by status and when it will be done."""

    name: str
    created_at: float
    download_dir: str | None
    counts: dict[LocalStatus, int]
    eta: Eta


@dataclass(frozen=True, slots=True)
class StatusReport:
    """What ``Operations.status`` found: the whole (or the one batch's) :class:`Status`, each
    batch's figures, and the alerts in force (submissions paused, say)."""

    overall: Status
    batches: list[BatchStatus]
    alerts: list[str]


def _status_report(
    ledger: Ledger, batch: str | None, now: float, warn_days: float, max_batches: int
) -> StatusReport:
    overall = gather(ledger, batch=batch, now=now, warn_days=warn_days)
    records = sorted(ledger.batches(), key=lambda b: b.created_at, reverse=True)
    if batch is not None:
        records = [b for b in records if b.name == batch]
    figures = [
        BatchStatus(
            name=b.name,
            created_at=b.created_at,
            download_dir=b.download_dir,
            counts={s: n for s, n in b.counts.items() if n},
            eta=estimate(progress(ledger, b.name, now)),
        )
        for b in records[:max_batches]
    ]
    return StatusReport(overall, figures, [a.message for a in ledger.alerts()])


# -- one task -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TaskDetail:
    """One task with its timeline (oldest first), its files and its retry lineage."""

    task: TaskRecord
    events: list[EventRecord]
    downloads: list[DownloadRecord]
    #: the tasks this one retries (oldest first) and those that retry it
    retries_of: list[TaskRecord] = field(default_factory=list)
    retried_by: list[TaskRecord] = field(default_factory=list)


def task_detail(ledger: Ledger, ref: str) -> TaskDetail:
    """One task by local id, external id or Kling id, with its timeline, files and lineage;
    :class:`~klingwatch.store.errors.UnknownTask` when the ledger has none."""
    key: int | str = int(ref) if ref.isdigit() and len(ref) < 12 else ref
    task = ledger.task(key)
    if task is None and isinstance(key, int):
        task = ledger.task(ref)  # a digits-only external id
    if task is None:
        raise UnknownTask(ref)
    before, after = lineage(ledger, task)
    return TaskDetail(
        task=task,
        events=ledger.events(task.local_id),
        downloads=ledger.downloads(task.local_id),
        retries_of=list(before),
        retried_by=list(after),
    )


# -- waiting ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WaitResult:
    """What ``Operations.wait_for`` saw last: every task asked for, and whether all ended."""

    tasks: list[TaskRecord]
    #: seconds waited (wall clock)
    waited: float
    #: engine passes this wait ran itself (0 when it only read the ledger)
    passes: int

    @property
    def done(self) -> bool:
        return all(t.status.is_final for t in self.tasks)

    @property
    def running(self) -> list[TaskRecord]:
        return [t for t in self.tasks if not t.status.is_final]


EngineFactory = Callable[[bool], Monitor]


async def list_tasks(ledger: AsyncLedger, q: TaskQuery) -> TaskPage:
    """One page of the tasks matching ``q``, in ``q.sort`` order."""
    status = list(q.status) or None
    if q.ledger_only:
        # Every filter is the ledger's own: let it page, and count without reading rows.
        page = await ledger.tasks(
            status=status,
            batch=q.batch,
            product=q.product,
            stuck=q.stuck,
            limit=q.limit,
            offset=q.offset,
            order=q.sort,
            newest_first=q.descending,
        )
        total = await _count(ledger, q, at_least=q.offset + len(page))
        return TaskPage(page, total, q.limit, q.offset)
    rows = await ledger.tasks(
        status=status,
        batch=q.batch,
        product=q.product,
        stuck=q.stuck,
        search=q.text or None,
        order=q.sort,
        newest_first=q.descending,
    )
    needle = q.text.lower() if q.text else None
    picked = [
        r
        for r in rows
        if (q.model is None or r.model == q.model)
        and (q.since is None or r.queued_at >= q.since)
        and (q.until is None or r.queued_at < q.until)
        # The ledger's search also matches ids and reasons; the filter is "text in the prompt".
        and (needle is None or needle in (prompt_of(r.request) or "").lower())
    ]
    return TaskPage(picked[q.offset : q.offset + q.limit], len(picked), q.limit, q.offset)


async def _count(ledger: AsyncLedger, q: TaskQuery, *, at_least: int) -> int:
    """How many tasks match, from the ledger's counts when they can say it."""
    status = list(q.status) or None
    if q.product is None and q.stuck is None:
        counts = await ledger.counts(batch=q.batch)
        wanted = status or list(LocalStatus)
        return sum(counts.get(s, 0) for s in set(wanted))
    ids = await ledger.tasks(status=status, batch=q.batch, product=q.product, stuck=q.stuck)
    return max(at_least, len(ids))


async def status_report(
    ledger: AsyncLedger, batch: str | None, *, warn_days: float, max_batches: int
) -> StatusReport:
    """See :meth:`Operations.status <klingwatch.operations.Operations.status>`."""
    return await ledger.read(_status_report, batch, ledger.clock.time(), warn_days, max_batches)


async def show_task(ledger: AsyncLedger, name_or_id: str) -> TaskDetail:
    """See :meth:`Operations.show_task <klingwatch.operations.Operations.show_task>`."""
    return await ledger.read(task_detail, name_or_id.strip())


async def wait_for(
    ledger: AsyncLedger,
    names: Sequence[str],
    timeout: float,  # noqa: ASYNC109 (see Operations.wait_for)
    *,
    interval: float,
    engine: EngineFactory | None,
) -> WaitResult:
    """See :meth:`Operations.wait_for <klingwatch.operations.Operations.wait_for>`; ``engine``
    builds the engine for a pass (its argument: whether it may send), ``None`` for none."""
    if not names:
        raise ConfigurationError("name at least one task to wait for")
    if not 0 <= timeout <= MAX_WAIT_SECONDS:
        raise ConfigurationError(
            f"timeout must be between 0 and {MAX_WAIT_SECONDS:g} seconds, not {timeout:g}"
        )
    # The caller's patience is wall-clock time, whatever KLINGWATCH_TIME_SCALE does to the engine.
    loop = asyncio.get_running_loop()
    start = loop.time()
    ids = [(await show_task(ledger, name)).task.local_id for name in names]
    passes = 0
    monitor = None
    while True:
        tasks = [t for t in [await ledger.task(i) for i in ids] if t is not None]
        left = start + timeout - loop.time()
        if all(t.status.is_final for t in tasks) or left <= 0:
            return WaitResult(tasks, round(loop.time() - start, 2), passes)
        if engine is not None:
            if monitor is None:
                monitor = engine(any(t.status is LocalStatus.QUEUED for t in tasks))
            await monitor.run_once()
            passes += 1
        await asyncio.sleep(min(interval, max(start + timeout - loop.time(), 0.0)))
