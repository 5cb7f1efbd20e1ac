"""The :class:`Ledger`: every task klingwatch knows, durably, behind one door.

Methods are synchronous and short; async callers call them directly. Every write runs in one
transaction (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: row locks, retried on a deadlock), and
database failures surface as :class:`~klingwatch.store.errors.LedgerUnavailable`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from klingwatch.clock import Clock, RealClock
from klingwatch.environment import ledger_url
from klingwatch.store import budget, intents, leases, reads, spend
from klingwatch.store.apply import apply_observations, chunks
from klingwatch.store.budget import BatchBudget, SendClaim
from klingwatch.store.database import WRITE_OPTION, create_ledger_engine, describe, migrate
from klingwatch.store.durations import SAMPLE, DurationCache, Timing, summarize
from klingwatch.store.errors import LedgerUnavailable, UnknownTask, redact
from klingwatch.store.ledger_notify import NotifyLedger
from klingwatch.store.records import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    AddResult,
    AlertRecord,
    BatchRecord,
    Change,
    DownloadRecord,
    DurationStats,
    EventRecord,
    LocalStatus,
    NewTask,
    Observation,
    Source,
    TaskRecord,
)
from klingwatch.store.schema import alerts, batches, downloads, events, meta
from klingwatch.store.schema import tasks as task_table
from klingwatch.store.spend import SpendLine
from klingwatch.store.verify import find_inconsistencies

__all__ = ["Ledger"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_ACTIVE = sorted(s.value for s in ACTIVE_STATUSES)
# PostgreSQL deadlock_detected / serialization_failure: the transaction is safe to run again.
_RETRY_SQLSTATES = {"40P01", "40001"}
_WRITE_ATTEMPTS = 3


class Ledger(NotifyLedger):
    """Durable record of every task, batch, event, download and alert.

    Open with :meth:`open`; use as a context manager or call :meth:`close`. ``apply`` and
    ``apply_many`` are the one door: nothing else changes a task's status (see
    :mod:`klingwatch.store.door` for the rules).
    """

    def __init__(self, engine: Engine, url: str, *, clock: Clock) -> None:
        """Wrap an engine whose database is already at head; prefer :meth:`open`."""
        self._engine = engine
        self.url = url
        self.dialect: str = engine.dialect.name
        self.clock = clock
        self._durations = DurationCache()

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str | None = None, *, clock: Clock | None = None) -> Ledger:
        """Connect to ``url`` and migrate its schema to head (an up-to-date database opens
        without work). Without a URL: ``KLINGWATCH_DB``, else ``klingwatch.db`` in the working
        directory (a library ledger reads no ``.env`` nor ``klingwatch.toml``; the command line
        passes the URL its settings chose). A relative SQLite file is made absolute."""
        url = ledger_url(url)
        engine = create_ledger_engine(url)
        try:
            migrate(engine, url)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, url, clock=clock or RealClock())

    def close(self) -> None:
        """Release every connection (the ledger cannot be used afterwards)."""
        self._engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({redact(self.url)!r})"

    def _write(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in one write transaction (retried whole on a PostgreSQL deadlock)."""
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                with self._engine.connect() as conn:
                    conn.execution_options(**{WRITE_OPTION: True})
                    with conn.begin():
                        return work(conn)
            except OperationalError as exc:
                code = getattr(exc.orig, "sqlstate", None)
                if code in _RETRY_SQLSTATES and attempt < _WRITE_ATTEMPTS:
                    logger.info("ledger write hit %s; running it again", code)
                    continue
                raise LedgerUnavailable(self.url, describe(exc)) from exc
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise LedgerUnavailable(self.url, describe(exc)) from exc
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in one read-only transaction (a consistent snapshot on SQLite)."""
        try:
            with self._engine.connect() as conn, conn.begin():
                return work(conn)
        except OperationalError as exc:
            raise LedgerUnavailable(self.url, describe(exc)) from exc

    # -- intents ---------------------------------------------------------------------------

    def ensure_batch(self, name: str, *, download_dir: str | None = None) -> BatchRecord:
        """The batch called ``name``, created if new; a given ``download_dir`` is recorded.

        ``download_dir`` is stored absolute (a relative one is taken from the working
        directory), so a process started anywhere else finds the same folder.
        """
        now = self.clock.time()
        if download_dir is not None:
            download_dir = _absolute(download_dir)

        def work(conn: Connection) -> BatchRecord:
            intents.batch_id(conn, name, now)
            if download_dir is not None:
                conn.execute(
                    update(batches).where(batches.c.name == name).values(download_dir=download_dir)
                )
            row = conn.execute(select(batches).where(batches.c.name == name)).mappings().one()
            return BatchRecord(
                row["name"], row["created_at"], row["download_dir"], max_units=row["max_units"]
            )

        return self._write(work)

    def batches(self) -> list[BatchRecord]:
        """Every batch, oldest first, with its task counts by status."""

        def work(conn: Connection) -> list[BatchRecord]:
            counts: dict[int, dict[LocalStatus, int]] = {}
            query = select(task_table.c.batch_id, task_table.c.status, func.count()).group_by(
                task_table.c.batch_id, task_table.c.status
            )
            for batch_id, status, n in conn.execute(query):
                counts.setdefault(batch_id, reads.zero_counts())[LocalStatus(status)] = n
            rows = conn.execute(select(batches).order_by(batches.c.id)).mappings()
            return [
                BatchRecord(
                    r["name"],
                    r["created_at"],
                    r["download_dir"],
                    counts.get(r["id"], reads.zero_counts()),
                    max_units=r["max_units"],
                )
                for r in rows
            ]

        return self._read(work)

    def add_tasks(self, batch: str, tasks: Sequence[NewTask]) -> AddResult:
        """Commit intents as ``queued`` (one creation event each), idempotently by
        ``external_task_id``: a task already in the ledger is reported in ``existing``, never
        added twice. The batch is created if new. Ids come back in input order."""
        now = self.clock.time()
        return self._write(lambda conn: intents.add_tasks(conn, batch, tasks, now))

    def adopt(self, batch: str, product: str, task_id: str, *, family: str = "video") -> int:
        """Track a task created elsewhere (``klingwatch track``): status ``submitted``, external
        id ``adopted-<task_id>``. Idempotent: a Kling task already in the ledger (adopted or sent
        by klingwatch) returns its existing local id."""
        now = self.clock.time()
        return self._write(lambda conn: intents.adopt(conn, batch, product, task_id, family, now))

    # -- the one door ----------------------------------------------------------------------

    def apply(self, obs: Observation) -> Change | None:
        """Pass one status report through the door; what it changed, or ``None``.

        ``None`` also for a report about a task the ledger does not hold (an orphan event
        records it)."""
        changes = self.apply_many([obs])
        return changes[-1] if changes else None

    def apply_many(self, observations: Iterable[Observation]) -> list[Change]:
        """Pass many reports through the door, in order, in one transaction.

        Returns one :class:`Change` per report that changed something (a task moving twice in
        one batch yields two). Duplicates and stale reports change nothing."""
        batch = list(observations)
        if not batch:
            return []
        outcome = self._write(lambda conn: apply_observations(conn, batch))
        if outcome.succeeded:
            self._durations.invalidate()
        return outcome.changes

    # -- engine support --------------------------------------------------------------------

    def due(self, now: float, *, limit: int = 1000) -> list[TaskRecord]:
        """Active tasks (unknown/submitted/processing) whose next look is due (never looked at
        counts as due), the longest-waiting first."""
        query = leases.due_query(now).limit(limit)
        return self._read(lambda conn: reads.task_records(conn, query))

    def claim_due(
        self, now: float, *, owner: str, lease_seconds: float, limit: int = 1000
    ) -> list[TaskRecord]:
        """Like :meth:`due`, but leases the tasks to ``owner`` until ``now + lease_seconds``
        so several replicas split the work: tasks leased to someone else are skipped (and, on
        PostgreSQL, rows another replica is claiming right now, ``FOR UPDATE SKIP LOCKED``).
        An expired lease is free to take. On SQLite, with one owner, this is :meth:`due`."""
        query = leases.due_query(now)
        return self._write(
            lambda conn: leases.claim(
                conn, query, now, owner=owner, lease_seconds=lease_seconds, limit=limit
            )
        )

    def claim_queued(
        self,
        now: float,
        *,
        owner: str,
        lease_seconds: float,
        family: str | None = None,
        limit: int = 100,
    ) -> list[TaskRecord]:
        """Like :meth:`queued`, leased to ``owner`` as :meth:`claim_due` does: the submitter's
        way of making sure two replicas never send the same queued task at once."""
        query = leases.queued_query(family)
        return self._write(
            lambda conn: leases.claim(
                conn, query, now, owner=owner, lease_seconds=lease_seconds, limit=limit
            )
        )

    def claim_to_send(
        self,
        now: float,
        *,
        owner: str,
        lease_seconds: float,
        family: str,
        slot_limit: int | None,
        most: int,
    ) -> list[TaskRecord]:
        """The submitter's claim: lease to ``owner`` the oldest queued tasks of ``family`` that
        fit the account's free slots (``slot_limit`` less :meth:`slots_in_use`), at most
        ``most``, in one transaction serialized per family so that replicas sharing the ledger
        never send more creates together than the account has slots (see
        :func:`klingwatch.store.leases.claim_to_send`)."""
        return self._write(
            lambda conn: leases.claim_to_send(
                conn,
                now,
                owner=owner,
                lease_seconds=lease_seconds,
                family=family,
                slot_limit=slot_limit,
                most=most,
            )
        )

    def claim_succeeded(
        self, local_ids: Iterable[int], now: float, *, owner: str, lease_seconds: float
    ) -> list[TaskRecord]:
        """Lease the succeeded tasks among ``local_ids`` that nobody else holds to ``owner``
        (a download's claim: one replica fetches a task's files), by local id."""
        query = leases.succeeded_query(sorted(set(local_ids)))
        return self._write(
            lambda conn: leases.claim(
                conn, query, now, owner=owner, lease_seconds=lease_seconds, limit=1_000_000
            )
        )

    def renew(self, local_ids: Iterable[int], until: float, *, owner: str) -> list[int]:
        """Extend ``owner``'s leases on these tasks to ``until``; the ids still held."""
        ids = sorted(set(local_ids))
        if not ids:
            return []
        return self._write(lambda conn: leases.renew(conn, ids, until, owner=owner))

    def release(self, local_ids: Iterable[int], *, owner: str) -> None:
        """Give up ``owner``'s leases on these tasks (others may claim them at once)."""
        ids = sorted(set(local_ids))
        if ids:
            self._write(lambda conn: leases.release(conn, ids, owner=owner))

    def schedule(self, looks: Iterable[tuple[int, float]]) -> None:
        """Set each task's next look time: ``(local_id, next_look_at)`` pairs."""
        params = [{"p_id": i, "p_next": t} for i, t in sorted(dict(looks).items())]
        if not params:
            return
        stmt = (
            update(task_table)
            .where(task_table.c.id == bindparam("p_id"))
            .values(next_look_at=bindparam("p_next"))
        )
        self._write(lambda conn: conn.execute(stmt, params))

    def note_polled(self, local_ids: Iterable[int], at: float) -> None:
        """Count one more poll of each task (once per call, however often it is listed)."""
        ids = sorted(set(local_ids))

        def work(conn: Connection) -> None:
            for part in chunks(ids):
                conn.execute(
                    update(task_table)
                    .where(task_table.c.id.in_(part))
                    .values(polls=task_table.c.polls + 1, last_polled_at=at)
                )

        if ids:
            self._write(work)

    def queued(self, *, family: str | None = None, limit: int = 100) -> list[TaskRecord]:
        """Tasks waiting to be sent, oldest intent first."""
        query = leases.queued_query(family).limit(limit)
        return self._read(lambda conn: reads.task_records(conn, query))

    def mark_sending(self, local_ids: int | Iterable[int], at: float) -> SendClaim:
        """Record a send attempt of each task (``sent_at``, ``send_attempts += 1``) in one
        transaction, before the creates leave; not a status change.

        Budget caps are checked in the same transaction (:mod:`klingwatch.store.budget`): a
        task whose estimate would take its batch past its cap is held (left ``queued``, with
        a ``hold_reason``) instead. Only the tasks in :attr:`SendClaim.marked` may be sent.
        """
        ids = list(dict.fromkeys([local_ids] if isinstance(local_ids, int) else local_ids))
        if not ids:
            return SendClaim(marked=[], held=[])
        return self._write(lambda conn: budget.mark_sending(conn, ids, at))

    # -- budget caps -----------------------------------------------------------------------

    def set_cap(self, batch: str, max_units: Decimal | None) -> BatchBudget:
        """Set (``None``: remove) the budget cap of ``batch``, creating the batch if new; held
        tasks that fit the new cap are freed at once. The batch's budget after the change."""
        now = self.clock.time()

        def work(conn: Connection) -> BatchBudget:
            budget.set_cap(conn, intents.batch_id(conn, batch, now), max_units)
            found = budget.batch_budget(conn, batch)
            assert found is not None  # made just above
            return found

        return self._write(work)

    def budget(self, batch: str) -> BatchBudget | None:
        """The cap of ``batch`` and what counts against it (``None``: no such batch)."""
        return self._read(lambda conn: budget.batch_budget(conn, batch))

    def review_holds(self) -> int:
        """Free the held tasks that fit their batch's cap now (see
        :func:`klingwatch.store.budget.review_holds`); how many were freed."""
        return self._write(budget.review_holds)

    def held_count(self, *, batch: str | None = None) -> int:
        """Queued tasks a budget cap holds back (of ``batch``, or of all)."""

        def work(conn: Connection) -> int:
            if batch is None:
                return budget.held_count(conn)
            batch_id = conn.scalar(select(batches.c.id).where(batches.c.name == batch))
            return 0 if batch_id is None else budget.held_count(conn, batch_id)

        return self._read(work)

    def spend_lines(
        self, *, batch: str | None = None, since: float | None = None
    ) -> list[SpendLine]:
        """Each task's estimate and charges, with what it is grouped by (see
        :mod:`klingwatch.store.spend`)."""
        return self._read(lambda conn: spend.spend_lines(conn, batch=batch, since=since))

    def set_stuck(self, local_id: int, stuck: bool, reason: str | None, at: float) -> bool:
        """Flag (or clear) a task as stuck; ``True`` when the flag changed, which writes an
        event (source ``monitor``, same status before and after). A finished task is never
        flagged."""

        def work(conn: Connection) -> bool:
            row = conn.execute(
                select(task_table.c.status, task_table.c.stuck, task_table.c.stuck_reason)
                .where(task_table.c.id == local_id)
                .with_for_update()
            ).first()
            if row is None:
                raise UnknownTask(local_id)
            status = LocalStatus(row.status)
            if stuck and status.is_final:
                return False
            if bool(row.stuck) == stuck:
                if stuck and reason != row.stuck_reason:
                    conn.execute(
                        update(task_table)
                        .where(task_table.c.id == local_id)
                        .values(stuck_reason=reason)
                    )
                return False
            conn.execute(
                update(task_table)
                .where(task_table.c.id == local_id)
                .values(stuck=stuck, stuck_reason=reason if stuck else None)
            )
            detail = (
                f"stuck: {reason}" if stuck else f"moving again{f': {reason}' if reason else ''}"
            )
            conn.execute(
                insert(events).values(
                    local_id=local_id,
                    at=at,
                    from_status=status.value,
                    to_status=status.value,
                    source=Source.MONITOR.value,
                    detail=detail,
                )
            )
            return True

        return self._write(work)

    def active_count(self, family: str | None = None) -> int:
        """Slots in use: the summed ``slot_cost`` of unknown, submitted and processing tasks
        (an ``unknown`` task may hold a slot until its lookup says otherwise)."""
        query = select(func.coalesce(func.sum(task_table.c.slot_cost), 0)).where(
            task_table.c.status.in_(_ACTIVE)
        )
        if family is not None:
            query = query.where(task_table.c.family == family)
        return self._read(lambda conn: int(conn.scalar(query) or 0))

    def slots_in_use(self, family: str | None, now: float) -> int:
        """Slots taken across every replica: :meth:`active_count` plus queued tasks under a
        live lease (creates on the wire, or claimed to be sent)."""
        return self._read(lambda conn: leases.slots_in_use(conn, family, now))

    # -- reads -----------------------------------------------------------------------------

    def task(self, ref: int | str) -> TaskRecord | None:
        """A task by local id, ``external_task_id`` or Kling ``task_id`` (``None`` if absent)."""
        return self._read(lambda conn: reads.find_task(conn, ref))

    def tasks(
        self,
        *,
        status: LocalStatus | Iterable[LocalStatus] | None = None,
        batch: str | None = None,
        product: str | None = None,
        stuck: bool | None = None,
        search: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
        order: str = "id",
    ) -> list[TaskRecord]:
        """Tasks matching every given filter, by local id (oldest first unless
        ``newest_first``) or by ``order`` (a name in :data:`~klingwatch.store.reads.TASK_ORDERS`).
        ``search`` matches ids, reason, source line and request text."""
        query = reads.select_tasks(
            status=status,
            batch=batch,
            product=product,
            stuck=stuck,
            search=search,
            limit=limit,
            offset=offset,
            newest_first=newest_first,
            order=order,
        )
        return self._read(lambda conn: reads.task_records(conn, query))

    def events(self, local_id: int) -> list[EventRecord]:
        """One task's timeline, oldest first."""
        query = select(events).where(events.c.local_id == local_id).order_by(events.c.id)
        return self._read(
            lambda conn: [reads.event_record(r) for r in conn.execute(query).mappings()]
        )

    def recent_events(self, *, limit: int = 50, after_id: int | None = None) -> list[EventRecord]:
        """The newest events across all tasks, oldest first (so the last id can be passed back
        as ``after_id`` to get only what came since). Orphans are included."""
        if after_id is not None:
            query = select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
        else:
            query = select(events).order_by(events.c.id.desc()).limit(limit)
        found = self._read(
            lambda conn: [reads.event_record(r) for r in conn.execute(query).mappings()]
        )
        return sorted(found, key=lambda e: e.id)

    def counts(self, *, batch: str | None = None) -> dict[LocalStatus, int]:
        """How many tasks are in each status (all statuses present; an unknown batch is all 0)."""

        def work(conn: Connection) -> dict[LocalStatus, int]:
            if batch is None:
                return reads.count_statuses(conn)
            batch_id = conn.scalar(select(batches.c.id).where(batches.c.name == batch))
            if batch_id is None:
                return reads.zero_counts()
            return reads.count_statuses(conn, batch_id=batch_id)

        return self._read(work)

    def finishes(self, *, batch: str | None = None, since: float) -> tuple[int, float | None]:
        """``(tasks finished at or after since, when the first task ever finished)``, of one
        batch or of all: what a throughput (and so an ETA) is measured from."""

        def work(conn: Connection) -> tuple[int, float | None]:
            final = [s.value for s in FINAL_STATUSES]
            when = func.coalesce(task_table.c.finished_at, task_table.c.detected_at)
            query = select(func.count().filter(when >= since), func.min(when)).where(
                task_table.c.status.in_(final)
            )
            if batch is not None:
                query = query.join(batches, batches.c.id == task_table.c.batch_id).where(
                    batches.c.name == batch
                )
            recent, first = conn.execute(query).one()
            return int(recent or 0), (None if first is None else float(first))

        return self._read(work)

    def durations(self, product: str, model: str | None, mode: str | None) -> DurationStats:
        """Learned queue and run time percentiles for finished successful tasks of this
        product, model and mode (``None`` for model or mode means any). Cached until a task
        succeeds again (or a minute passes), so it is cheap to call every sweep."""
        key = (product, model, mode)
        now = self.clock.monotonic()
        cached = self._durations.get(key, now)
        if cached is not None:
            return cached
        generation = self._durations.generation
        query = select(
            task_table.c.submitted_at,
            task_table.c.processing_at,
            task_table.c.finished_at,
            task_table.c.kling_created_ms,
            task_table.c.kling_processing_ms,
        ).where(task_table.c.product == product, task_table.c.status == LocalStatus.SUCCEED.value)
        if model is not None:
            query = query.where(task_table.c.model == model)
        if mode is not None:
            query = query.where(task_table.c.mode == mode)
        query = query.order_by(task_table.c.finished_at.desc()).limit(SAMPLE)
        rows = self._read(lambda conn: list(conn.execute(query)))
        stats = summarize(Timing(*row) for row in rows)
        self._durations.put(key, stats, now, generation)
        return stats

    def verify(self) -> list[str]:
        """Consistency problems between tasks and their timelines (empty when sound): every
        status agrees with the task's last status event, timelines form one unbroken chain."""
        return self._read(find_inconsistencies)

    # -- small key/value state -------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A stored value (pause flag, callback token, learned slot counts, ...)."""
        return self._read(lambda conn: conn.scalar(select(meta.c.value).where(meta.c.key == key)))

    def set_meta(self, key: str, value: str | None) -> None:
        """Store ``value`` under ``key``; ``None`` deletes it."""

        def work(conn: Connection) -> None:
            if value is None:
                conn.execute(meta.delete().where(meta.c.key == key))
                return
            stmt = intents.dialect_insert(conn, meta).values(key=key, value=value)
            conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))

        self._write(work)

    def meta_default(self, key: str, value: str) -> str:
        """The value stored under ``key``, storing ``value`` first if there is none: atomic, so
        replicas racing to make one (a generated secret) all end up with the same."""

        def work(conn: Connection) -> str:
            stmt = intents.dialect_insert(conn, meta).values(key=key, value=value)
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
            return str(conn.scalar(select(meta.c.value).where(meta.c.key == key)))

        return self._write(work)

    # -- alerts ----------------------------------------------------------------------------

    def add_alert(self, kind: str, message: str, at: float) -> None:
        """Raise an alert. While one of this ``kind`` is active, raising it again updates its
        message and ``last_at`` and counts it, rather than adding another."""

        def work(conn: Connection) -> None:
            current = conn.scalar(
                select(alerts.c.id)
                .where(alerts.c.kind == kind, alerts.c.active.is_(True))
                .with_for_update()
            )
            if current is None:
                conn.execute(
                    insert(alerts).values(
                        kind=kind, message=message, at=at, last_at=at, count=1, active=True
                    )
                )
            else:
                conn.execute(
                    update(alerts)
                    .where(alerts.c.id == current)
                    .values(message=message, last_at=at, count=alerts.c.count + 1)
                )

        self._write(work)

    def alerts(self, *, active: bool = True) -> list[AlertRecord]:
        """Active alerts (or, with ``active=False``, every alert ever raised), oldest first."""
        query = select(alerts).order_by(alerts.c.id)
        if active:
            query = query.where(alerts.c.active.is_(True))
        return self._read(
            lambda conn: [reads.alert_record(r) for r in conn.execute(query).mappings()]
        )

    def clear_alerts(self, kind: str | None = None) -> None:
        """Clear the active alerts of ``kind`` (all kinds when ``None``); they stay on record."""
        now = self.clock.time()
        stmt = update(alerts).where(alerts.c.active.is_(True))
        if kind is not None:
            stmt = stmt.where(alerts.c.kind == kind)
        self._write(lambda conn: conn.execute(stmt.values(active=False, cleared_at=now)))

    # -- downloads -------------------------------------------------------------------------

    def record_download(
        self,
        local_id: int,
        index: int,
        *,
        url: str,
        path: str | None,
        size: int | None,
        sha256: str | None,
        state: str,
        error: str | None,
        at: float,
    ) -> None:
        """Record the outcome of fetching result file ``index`` of a task (``state``:
        ``complete``, ``expired`` or ``failed``); one row per file, replaced on each attempt.

        ``path`` is stored absolute. A ``complete`` record is only ever replaced by another
        ``complete`` one: a later attempt that failed (a wrong folder, an expired URL, a file
        deleted by hand) says nothing against the file having been collected, and must not
        turn it into a failure to collect it again.
        """
        values = {
            "url": url,
            "path": None if path is None else _absolute(path),
            "size": size,
            "sha256": sha256,
            "state": state,
            "error": error,
            "at": at,
        }

        def work(conn: Connection) -> None:
            if conn.scalar(select(task_table.c.id).where(task_table.c.id == local_id)) is None:
                raise UnknownTask(local_id)
            stmt = intents.dialect_insert(conn, downloads).values(
                local_id=local_id, idx=index, **values
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["local_id", "idx"],
                    set_=values,
                    where=(downloads.c.state != "complete") | (stmt.excluded.state == "complete"),
                )
            )

        self._write(work)

    def downloads(self, local_id: int | None = None) -> list[DownloadRecord]:
        """Download records of one task (or of all), by task then file index."""
        query = select(downloads).order_by(downloads.c.local_id, downloads.c.idx)
        if local_id is not None:
            query = query.where(downloads.c.local_id == local_id)
        return self._read(
            lambda conn: [reads.download_record(r) for r in conn.execute(query).mappings()]
        )


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().absolute())
