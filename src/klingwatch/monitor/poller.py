"""The poller: each sweep reads every due task with the fewest requests the credentials allow.

Reading styles, cheapest first for the situation at hand::

    API key     many due    POST /tasks over a creation-time window, every status (500 a
                            request): the active tasks and the just-finished ones at once;
                            what the capped walk did not reach: GET /tasks?task_ids=
                few due     GET /tasks?task_ids= (20 a request)
    AK/SK       per product legacy list pages (500 a request, newest first), walked only while a
                            page still saves requests; tasks not found are read singly
                one due     a single GET <product path>/{id}

When to sweep: with more than one task in flight, sweeps run at most once per interval of
:class:`~klingwatch.monitor.sweeps.SweepBudget` and read every active task their requests cover;
one is due at every interval while tasks wait to be sent, else when a task's cadence says it is
worth a look (:meth:`Poller._next_look`). One task alone follows its own cadence
(:class:`~klingwatch.monitor.cadence.Cadence`). While
callbacks arrive (:meth:`Poller.heard_callback`), tasks with a callback URL are read only once
their final callback is overdue.

A server that refuses the ``/tasks`` style (401/1002 "does not support AK/SK", 403, 404) is
remembered by the client (:attr:`KlingClient.tasks_api
<klingwatch.kling.client.KlingClient.tasks_api>`), and the legacy style used from then on.
Every request passes the client's :class:`~klingwatch.kling.budget.RequestBudget` (a rate and
a concurrency bound shared with creates and lookups).

Everything read becomes an observation (:mod:`klingwatch.monitor.observe`) applied through the
ledger's one door in one ``apply_many``; every looked-at task is then counted (``note_polled``),
judged for stuckness, and rescheduled by the cadence. ``unknown`` tasks that never got a Kling id
(the create answer was lost) are not read here: :mod:`klingwatch.monitor.recovery` looks them up
by ``external_task_id`` (run by the submitter, or by the engine when there is none).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from klingwatch.clock import Clock
from klingwatch.kling.client import KlingClient
from klingwatch.kling.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequest,
    KlingError,
    NotFound,
    PermissionDenied,
    TaskNotFound,
    TasksStyleRefused,
    TokenExpired,
)
from klingwatch.kling.models import Task
from klingwatch.kling.products import has_legacy_list
from klingwatch.monitor.cadence import Cadence, phase_of
from klingwatch.monitor.observe import STATUS_MAP, observe_task
from klingwatch.monitor.replica import DEFAULT_LEASE_SECONDS, lease_span
from klingwatch.monitor.stuck import StuckDetector, Verdict
from klingwatch.monitor.sweeps import SweepBudget, callback_overdue, window_start
from klingwatch.store import Change, LocalStatus, Observation, Source, TaskRecord
from klingwatch.store.async_ledger import AsyncLedger

__all__ = ["PollSettings", "Poller", "SweepReport"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_TASKS_STYLES = frozenset({"tasks-list", "tasks-ids"})
_ACTIVE = (LocalStatus.SUBMITTED, LocalStatus.PROCESSING, LocalStatus.UNKNOWN)


@dataclass(frozen=True, slots=True)
class PollSettings:
    """How the poller reads; durations in nominal seconds (scaled by the clock)."""

    #: ids per GET /tasks?task_ids= (Kling's limit is 20)
    many_size: int = 20
    #: tasks per POST /tasks page and per legacy list page (Kling's limit is 500)
    page_size: int = 500
    #: legacy list pages walked per product per sweep at most
    max_pages: int = 20
    #: due tasks taken per sweep at most
    due_limit: int = 10_000
    #: tasks due within this long are read with the ones due now: a look a moment early
    #: costs nothing, a sweep of its own costs a request
    coalesce: float = 3.0
    #: Kling may not list a brand-new task yet: "not found" younger than this is not news
    not_found_grace: float = 300.0
    #: replicas sharing one ledger: this one's name; due tasks are then leased to it
    owner: str | None = None
    #: how long a lease on due tasks lasts
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    #: how often batched sweeps run (list pages, POST /tasks, GET /tasks?task_ids=)
    sweep: SweepBudget = field(default_factory=SweepBudget)
    #: a POST /tasks window starts this long before the oldest active task's creation
    window_margin: float = 60.0
    #: callbacks count as arriving while one came within this long (or since the start)
    callback_quiet: float = 300.0
    #: a task's final callback is overdue this long after its learned p95
    callback_margin: float = 30.0


@dataclass(slots=True)
class SweepReport:
    """What one sweep did."""

    due: int = 0
    looked: int = 0
    requests: int = 0
    errors: int = 0
    changes: list[Change] = field(default_factory=list)
    #: requests by reading style: "tasks-list", "tasks-ids", "legacy-page", "get", "lookup"
    styles: Counter[str] = field(default_factory=Counter)
    #: earliest next look scheduled by this sweep (clock seconds), if any
    next_look: float | None = None


class _TasksRefused(Exception):
    """The server does not serve the /tasks style to these credentials."""


@dataclass(slots=True)
class _Sweep:
    """The working state of one sweep."""

    now: float
    report: SweepReport
    #: every task whose state was read (or attempted), by local id
    looked: dict[int, TaskRecord] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    #: tasks Kling said it does not know
    missing: list[TaskRecord] = field(default_factory=list)
    #: tasks Kling answered about (found or not): the ones that count as polled
    read: set[int] = field(default_factory=set)
    #: callbacks are arriving: tasks with a callback URL are left to them until overdue
    callbacks: bool = False


class Poller:
    """Reads due tasks from Kling and writes what it learned through the ledger's one door."""

    def __init__(
        self,
        *,
        client: KlingClient,
        ledger: AsyncLedger,
        clock: Clock,
        cadence: Cadence,
        settings: PollSettings | None = None,
        stuck: StuckDetector | None = None,
        batch: str | None = None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.clock = clock
        self.cadence = cadence
        self.settings = settings or PollSettings()
        self.stuck = stuck or StuckDetector(cadence)
        self.batch = batch
        # Next look of every active task this poller knows of, so the engine sleeps exactly
        # until the earliest one (filled from the ledger on the first sweep, after a restart).
        self._next: dict[int, float] | None = None
        # Batched sweeps: the clock time before which the next one does not run, and the
        # interval of the last one (None: the per-task cadence applied).
        self._next_sweep = float("-inf")
        self._interval: float | None = None
        # Whether tasks waited to be sent at the last sweep (then every finish matters at once).
        self._waiting = False
        # A server that answered the POST /tasks window with "bad request": ids from then on.
        self._window_refused = False
        # When a callback last arrived; a fresh poller presumes them working until one is late.
        self._heard_at = clock.time()

    def heard_callback(self) -> None:
        """A callback arrived (the receiver says so): polling is the safety net for a while."""
        self._heard_at = self.clock.time()

    def callbacks_arriving(self, now: float) -> bool:
        """Whether a callback came within ``callback_quiet`` (or this poller is that young)."""
        return now - self._heard_at < self.clock.scaled(self.settings.callback_quiet)

    @property
    def uses_tasks_api(self) -> bool:
        """Whether sweeps read through the 2026 ``/tasks`` endpoints."""
        return self.client.tasks_api

    # -- the sweep ------------------------------------------------------------------------
    async def sweep(self) -> SweepReport:
        """Read every due task once, apply what was learned, reschedule each one.

        With a batched reading style and more than one active task, sweeps run at the budget's
        fixed interval (:class:`~klingwatch.monitor.sweeps.SweepBudget`) and take every task
        due before the next one; otherwise each task follows its own cadence.
        """
        now = self.clock.time()
        active, self._waiting = await self._active_count()
        interval: float | None = None
        if active > 1:
            budget = self.settings.sweep
            interval = self.clock.scaled(budget.interval(active, waiting=self._waiting))
            if now < self._next_sweep:
                # Not yet: every active task is read together at the next tick.
                return SweepReport(next_look=self._next_sweep)
            horizon = now + interval
        else:
            horizon = now + self.clock.scaled(self.settings.coalesce)
        self._interval = interval
        due = [t for t in await self._due(horizon) if self.batch is None or t.batch == self.batch]
        callbacks = self.callbacks_arriving(now)
        if due and callbacks:
            due = await self._overdue_only(due, now)
        sweep = _Sweep(now=now, report=SweepReport(due=len(due)), callbacks=callbacks)
        await self._forget_passed(horizon, {t.local_id for t in due})
        if not due:
            return sweep.report
        # Tasks without a Kling id (create answer lost) are recovery's, by external id.
        known = [t for t in due if t.task_id is not None]
        if known:
            await self._read_known(sweep, known)
        for task in due:  # a task whose read failed is still rescheduled, never hot-looped
            sweep.looked.setdefault(task.local_id, task)
        await self._finish(sweep, interval)
        if interval is not None:
            self._next_sweep = self.clock.time() + interval
        return sweep.report

    async def _overdue_only(self, due: list[TaskRecord], now: float) -> list[TaskRecord]:
        """While callbacks arrive, the due tasks worth a read: those without a callback URL, and
        those whose final callback is overdue. The others wait, unread, until it would be."""
        await self.cadence.prepare(due, now)
        keep: list[TaskRecord] = []
        wait: list[tuple[int, float]] = []
        for task in due:
            at = self._callback_due(task, now)
            if at is None:
                keep.append(task)
            else:
                wait.append((task.local_id, at))
        if wait:
            await self.ledger.schedule(wait)
            (await self._known_looks()).update(wait)
        return keep

    def _callback_due(self, task: TaskRecord, now: float) -> float | None:
        """When ``task``'s final callback becomes overdue, if that is still to come (``None``:
        no callback expected, or overdue already)."""
        if task.callback_url is None or task.task_id is None:
            return None
        timing = self.cadence.timing(task, now)
        start, finish = phase_of(task, timing)
        margin = self.clock.scaled(self.settings.callback_margin)
        if start is None or callback_overdue(start, finish.p95, now=now, margin=margin):
            return None
        return start + finish.p95 + margin

    async def _active_count(self) -> tuple[int, bool]:
        """How many tasks are in flight, and whether tasks wait to be sent."""
        counts = await self.ledger.counts(batch=self.batch)
        waiting = counts.get(LocalStatus.QUEUED, 0) > 0
        return sum(counts.get(status, 0) for status in _ACTIVE), waiting

    async def _due(self, now: float) -> list[TaskRecord]:
        if self.settings.owner is None:
            return await self.ledger.due(now, limit=self.settings.due_limit)
        return await self.ledger.claim_due(
            now,
            owner=self.settings.owner,
            lease_seconds=lease_span(self.clock, self.settings.lease_seconds),
            limit=self.settings.due_limit,
        )

    async def _read_known(self, sweep: _Sweep, due: list[TaskRecord]) -> None:
        if self.uses_tasks_api:
            try:
                await self._read_tasks_api(sweep, due)
                return
            except _TasksRefused:
                pass
        await self._read_legacy(sweep, due)

    # -- the 2026 /tasks style ------------------------------------------------------------
    async def _read_tasks_api(self, sweep: _Sweep, due: list[TaskRecord]) -> None:
        many_cost = math.ceil(len(due) / self.settings.many_size)
        if not self._window_refused:
            active = await self._active()
            list_cost = max(1, math.ceil(len(active) / self.settings.page_size))
            # The window holds every active task (and those just finished): worth it when it
            # costs fewer requests than the ids, or as few while covering tasks not yet due.
            covers = _covers_more(sweep, active, due)
            if list_cost < many_cost or (list_cost == many_cost and covers):
                extra = 1 if list_cost < many_cost else 0
                stragglers = await self._list_window(sweep, active, pages=list_cost + extra)
                # Only the due ones are worth a request of their own.
                due_ids = {t.local_id for t in due}
                await self._get_many(sweep, [t for t in stragglers if t.local_id in due_ids])
                return
        await self._get_many(sweep, due)

    async def _active(self) -> list[TaskRecord]:
        """Every active task with a Kling id (this batch only, when the poller has one)."""
        rows = await self.ledger.tasks(status=_ACTIVE, batch=self.batch)
        owner, now = self.settings.owner, self.clock.time()
        return [
            t
            for t in rows
            if t.task_id is not None
            # With leases, tasks another replica holds are its business.
            and (owner is None or t.lease_owner in (None, owner) or (t.lease_until or 0) <= now)
        ]

    async def _list_window(
        self, sweep: _Sweep, active: list[TaskRecord], *, pages: int
    ) -> list[TaskRecord]:
        """``POST /tasks`` for every task created since the oldest active one, whatever its
        status: the active tasks and those that just finished come back in one request (500 a
        page). Returns the active tasks it did not hold (stragglers, read by id).

        What Kling does with the window is not promised (the order of the pages, whether
        ``start_time`` is honoured): the walk stops after ``pages`` pages, and whatever it did
        not reach is read by id. A server that refuses the window outright is remembered, and
        the ids style used from then on.
        """
        margin = round(self.clock.scaled(self.settings.window_margin) * 1000)
        created = [_created(t) for t in active]
        since_ms = window_start(created, margin_ms=margin)
        since = None if since_ms is None else since_ms / 1000.0

        async def read() -> list[Task]:
            try:
                return await self.client.list_tasks(
                    since=since, limit=self.settings.page_size, max_pages=pages
                )
            except InvalidRequest as exc:
                raise _Refused(str(exc)) from exc

        try:
            listed = await self._call(sweep, "tasks-list", read)
        except _Refused as exc:
            log.warning("POST /tasks refused a creation-time window (%s); reading by id", exc)
            self._window_refused = True
            return active
        except _Skip:
            return active
        # Pages beyond the first (the walk's length is the client's).
        more = max(1, math.ceil(len(listed) / self.settings.page_size)) - 1
        sweep.report.requests += more
        sweep.report.styles["tasks-list"] += more
        by_id = {task.id: task for task in listed}
        stragglers: list[TaskRecord] = []
        for record in active:
            task = by_id.get(record.task_id or "")
            if task is None:
                stragglers.append(record)
            else:
                self._saw(sweep, record, task, Source.LIST)
        return stragglers

    async def _get_many(self, sweep: _Sweep, records: Sequence[TaskRecord]) -> None:
        size = self.settings.many_size
        chunks = [records[i : i + size] for i in range(0, len(records), size)]
        await asyncio.gather(*(self._get_chunk(sweep, chunk) for chunk in chunks))

    async def _get_chunk(self, sweep: _Sweep, chunk: Sequence[TaskRecord]) -> None:
        ids = [t.task_id for t in chunk if t.task_id is not None]
        try:
            found = await self._call(sweep, "tasks-ids", lambda: self.client.get_many(ids))
        except _Skip:
            return
        for record in chunk:
            task = found.get(record.task_id or "")
            if task is None:
                sweep.missing.append(record)
                sweep.looked[record.local_id] = record
                sweep.read.add(record.local_id)
            else:
                self._saw(sweep, record, task, Source.GET)

    # -- the legacy style -----------------------------------------------------------------
    async def _read_legacy(self, sweep: _Sweep, due: list[TaskRecord]) -> None:
        by_product: dict[str, list[TaskRecord]] = {}
        for record in due:
            by_product.setdefault(record.product, []).append(record)
        active: dict[str, TaskRecord] | None = None
        if any(len(group) > 1 for group in by_product.values()):
            active = {t.task_id or "": t for t in await self._active()}
        elif len(due) == 1 and _covers_more(sweep, listed := await self._active(), due):
            # One due task: its product's first page costs what a single get does.
            active = {t.task_id or "": t for t in listed}
        await asyncio.gather(
            *(
                self._read_product(sweep, product, group, active or {})
                for product, group in by_product.items()
            )
        )

    async def _read_product(
        self,
        sweep: _Sweep,
        product: str,
        due: list[TaskRecord],
        active: dict[str, TaskRecord],
    ) -> None:
        remaining = {t.task_id or "": t for t in due}
        page = 0
        # A page costs one request and can replace one single get per due task on it, so it is
        # worth walking while at least two due tasks are still unfound; the first page also
        # when one is due and other active tasks could be on it (the same request, read for
        # free). New-standard products have no legacy list.
        pages = self.settings.max_pages if has_legacy_list(product) else 0
        # Only the tasks this sweep may use are parsed (a page holds 500, most already final).
        wanted = {*remaining, *(i for i, t in active.items() if t.product == product)}
        while page < pages and (
            len(remaining) > 1 or (page == 0 and remaining and len(wanted) > len(remaining))
        ):
            page += 1
            try:
                listed = await self._call(
                    sweep,
                    "legacy-page",
                    functools.partial(
                        self.client.list_page_of,
                        product,
                        wanted,
                        page=page,
                        size=self.settings.page_size,
                    ),
                )
            except _Skip:
                break
            for task in listed.tasks:
                record = remaining.pop(task.id, None) or active.get(task.id)
                if record is not None and record.product == product:
                    self._saw(sweep, record, task, Source.LIST)
            if listed.size < self.settings.page_size or _walked_past(
                listed.created_ms, remaining.values()
            ):
                break
        await asyncio.gather(*(self._get_one(sweep, record) for record in remaining.values()))

    async def _get_one(self, sweep: _Sweep, record: TaskRecord) -> None:
        try:
            task = await self._call(
                sweep, "get", lambda: self.client.get(record.product, record.task_id or "")
            )
        except _NotFound:
            sweep.missing.append(record)
            sweep.looked[record.local_id] = record
            sweep.read.add(record.local_id)
        except _Skip:
            return
        else:
            self._saw(sweep, record, task, Source.GET)

    # -- plumbing -------------------------------------------------------------------------
    def _saw(self, sweep: _Sweep, record: TaskRecord, task: Task, source: Source) -> None:
        sweep.looked[record.local_id] = record
        sweep.read.add(record.local_id)
        if (
            STATUS_MAP[task.status] is record.status
            and task.updated_ms == record.kling_updated_ms
            and task.id == record.task_id
            and record.kling_created_ms is not None
        ):
            # Nothing new (the common case for a listed active task): the door would change
            # nothing, so spare it the work; the look still counts.
            return
        # Stamped when the answer arrived: that is when klingwatch learned it (detection lag).
        sweep.observations.append(
            observe_task(task, source=source, at=self.clock.time(), local_id=record.local_id)
        )

    async def _call(
        self, sweep: _Sweep, style: str, call: Callable[[], Awaitable[_T]], *, pages: int = 1
    ) -> _T:
        """Run one client call (``pages`` requests, as far as is known), counting it; translate
        failures.

        Raises ``_TasksRefused`` (the /tasks style is not served: remembered), ``_NotFound``
        (the task does not exist), or ``_Skip`` (any other failure, logged: the tasks involved
        are read again at their next look). Bad credentials propagate: nothing can work.
        """
        sweep.report.requests += pages
        sweep.report.styles[style] += pages
        # The client's budget paces every request, these and everyone else's.
        try:
            return await call()
        except TaskNotFound as exc:
            raise _NotFound from exc
        except TasksStyleRefused as exc:
            # The client remembers it: every later sweep reads the legacy way.
            raise _TasksRefused from exc
        except (ConfigurationError, AuthenticationError, PermissionDenied, NotFound) as exc:
            if isinstance(exc, AuthenticationError) and not isinstance(exc, TokenExpired):
                raise
            sweep.report.errors += 1
            log.warning("%s read failed: %s", style, exc)
            raise _Skip from exc
        except KlingError as exc:
            sweep.report.errors += 1
            log.warning("%s read failed: %s", style, exc)
            raise _Skip from exc

    async def _finish(self, sweep: _Sweep, interval: float | None) -> None:
        """Apply, count, judge and reschedule everything this sweep looked at: at the next
        batched sweep (``interval`` from now), else by each task's cadence."""
        changes = await self.ledger.apply_many(sweep.observations) if sweep.observations else []
        sweep.report.changes = changes
        # Reads (and their retries) take time: schedule from when they ended.
        now = self.clock.time()
        by_id = {c.local_id: c for c in changes}
        lost = self._lost(sweep)
        await self.cadence.prepare(sweep.looked.values(), now)
        looks: list[tuple[int, float]] = []
        for local_id, record in sweep.looked.items():
            change = by_id.get(local_id)
            # The door says how the row stands now; nothing to re-derive.
            view = (
                record
                if change is None or change.state is None
                else record.with_state(change.state)
            )
            if not view.status.is_active:
                continue
            looks.append((local_id, self._next_look(view, now, interval)))
            verdict = lost.get(local_id) or self.stuck.judge(view, now)
            if verdict.stuck != record.stuck:
                await self.ledger.set_stuck(local_id, verdict.stuck, verdict.reason, now)
        polled = sorted(sweep.read)
        if polled:
            await self.ledger.note_polled(polled, now)
        if looks:
            await self.ledger.schedule(looks)
            sweep.report.next_look = min(at for _, at in looks)
        known = await self._known_looks()
        for local_id in sweep.looked:
            known.pop(local_id, None)
        known.update(looks)
        sweep.report.looked = len(sweep.looked)

    def _next_look(self, view: TaskRecord, now: float, interval: float | None) -> float:
        """The task's cadence, and with batched reads never before the next sweep (``interval``
        from now).

        While tasks wait to be sent, every active task is read at every sweep: a finish frees
        the slot a waiting task needs, so it is worth seeing at once. Otherwise, with batched
        reads, the cadence says when a task is *worth* a sweep (its first look, then
        dense looks from its finish window on, backing off past p95) and the budget says
        how often a sweep may run. A sweep reads every active task its requests cover, so a
        task finishing early is still seen; but a batch whose tasks are all far from their
        finish costs no requests at all, and one long batch pays for its finish windows, not
        for its whole length.
        """
        if interval is None:
            return self.cadence.next_look(view, now)
        if self._waiting and not (view.callback_url is not None and self.callbacks_arriving(now)):
            # Work waits for a slot: any finish frees one, so every sweep reads every task.
            return now + interval
        return max(now + interval, self.cadence.next_look(view, now, batched=True))

    async def next_due(self) -> float | None:
        """When the earliest known active task is next due (clock seconds), if any."""
        known = await self._known_looks()
        earliest = min(known.values()) if known else None
        if earliest is not None and self._interval is not None:
            return max(earliest, self._next_sweep)
        return earliest

    async def _known_looks(self) -> dict[int, float]:
        if self._next is None:
            now = self.clock.time()
            self._next = {
                t.local_id: t.next_look_at if t.next_look_at is not None else now
                for t in await self.ledger.tasks(status=_ACTIVE, batch=self.batch)
            }
        return self._next

    async def _forget_passed(self, now: float, due: set[int]) -> None:
        """Drop looks that came due but were not handed out: the task ended some other way
        (a callback, another replica) or someone else rescheduled it."""
        known = await self._known_looks()
        for local_id in [i for i, at in known.items() if at <= now and i not in due]:
            del known[local_id]

    def _lost(self, sweep: _Sweep) -> dict[int, Verdict]:
        """Tasks Kling says it does not know although they are old enough to be listed.

        Never a status (Kling may answer again; calling a live task dead is the costly
        mistake): the task is flagged stuck with the reason, keeps being watched, and the flag
        clears once Kling reports it again.
        """
        grace = self.clock.scaled(self.settings.not_found_grace)
        out: dict[int, Verdict] = {}
        for record in sweep.missing:
            if sweep.now - _created(record) / 1000.0 < grace:
                continue
            if not record.stuck:
                log.warning("Kling does not know task %s (%s)", record.task_id, record.local_id)
            out[record.local_id] = Verdict(
                True, f"Kling answers 'not found' for task {record.task_id}; still watching"
            )
        return out


class _Refused(Exception):
    """The server refused a request's parameters (400): asking again will not help."""


class _Skip(Exception):
    """A read failed; its tasks are read again at their next look."""


class _NotFound(Exception):
    """Kling does not know the task read."""


def _covers_more(sweep: _Sweep, active: Iterable[TaskRecord], due: Sequence[TaskRecord]) -> bool:
    """Whether ``active`` holds tasks beyond ``due`` worth reading when a request covers them
    for free (while callbacks arrive, those with a callback URL are left to their callbacks)."""
    due_ids = {t.local_id for t in due}
    return any(
        t.local_id not in due_ids and not (sweep.callbacks and t.callback_url is not None)
        for t in active
    )


def _walked_past(created: list[int], unfound: Iterable[TaskRecord]) -> bool:
    """Whether a newest-first page already reaches past the oldest unfound task, so later pages
    cannot hold the rest. The order is not documented: a page that is not newest first never
    stops the walk (the page cap and the single gets still bound the cost)."""
    oldest_due = min((_created(t) for t in unfound), default=None)
    newest_first = created[:1] > created[-1:] and created == sorted(created, reverse=True)
    if not newest_first or oldest_due is None:
        return False
    return created[-1] < oldest_due


def _created(record: TaskRecord) -> int:
    """Kling's creation time of a task (ms), else when it was sent or queued."""
    if record.kling_created_ms is not None:
        return record.kling_created_ms
    sent = record.sent_at if record.sent_at is not None else record.queued_at
    return round(sent * 1000)
