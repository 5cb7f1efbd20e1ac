"""Queries that turn rows into records: tasks, events, counts, downloads, alerts.

Functions here take an open :class:`~sqlalchemy.Connection` and never write; the
:class:`~klingwatch.store.Ledger` wraps them in its read transactions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, RowMapping, Select, String, cast, func, or_, select

from klingwatch.store.records import (
    AlertRecord,
    DownloadRecord,
    EventRecord,
    LocalStatus,
    Source,
    TaskRecord,
)
from klingwatch.store.schema import batches, events, tasks

__all__ = [
    "TASK_SELECT",
    "alert_record",
    "batch_last_finish",
    "batch_units",
    "count_statuses",
    "download_record",
    "event_record",
    "find_task",
    "finishes_by_source",
    "select_tasks",
    "task_record",
    "task_records",
    "zero_counts",
]

#: Every task column plus its batch's name, ready for :func:`task_record`.
TASK_SELECT: Select[Any] = select(tasks, batches.c.name.label("batch_name")).join_from(
    tasks, batches, tasks.c.batch_id == batches.c.id
)


def task_record(row: RowMapping) -> TaskRecord:
    """A :class:`TaskRecord` from a row of :data:`TASK_SELECT`."""
    return TaskRecord(
        local_id=row["id"],
        batch=row["batch_name"],
        external_task_id=row["external_task_id"],
        task_id=row["task_id"],
        product=row["product"],
        family=row["family"],
        request=dict(row["request"] or {}),
        model=row["model"],
        mode=row["mode"],
        duration=row["duration"],
        slot_cost=row["slot_cost"],
        status=LocalStatus(row["status"]),
        status_msg=row["status_msg"],
        kling_created_ms=row["kling_created_ms"],
        kling_updated_ms=row["kling_updated_ms"],
        kling_processing_ms=row["kling_processing_ms"],
        queued_at=row["queued_at"],
        sent_at=row["sent_at"],
        submitted_at=row["submitted_at"],
        processing_at=row["processing_at"],
        finished_at=row["finished_at"],
        detected_at=row["detected_at"],
        result=dict(row["result"]) if row["result"] is not None else None,
        units=row["units"],
        polls=row["polls"],
        last_polled_at=row["last_polled_at"],
        next_look_at=row["next_look_at"],
        stuck=bool(row["stuck"]),
        stuck_reason=row["stuck_reason"],
        callback_url=row["callback_url"],
        retry_of=row["retry_of"],
        source_line=row["source_line"],
        send_attempts=row["send_attempts"],
        lease_owner=row["lease_owner"],
        lease_until=row["lease_until"],
        units_estimated=row["units_estimated"],
        cash_amount=row["cash_amount"],
        cash_currency=row["cash_currency"],
        hold_reason=row["hold_reason"],
    )


def task_records(conn: Connection, query: Select[Any]) -> list[TaskRecord]:
    """Run a query built on :data:`TASK_SELECT` and convert every row."""
    return [task_record(row) for row in conn.execute(query).mappings()]


def find_task(conn: Connection, ref: int | str) -> TaskRecord | None:
    """A task by local id (an ``int``, or a string of digits nothing else matches),
    ``external_task_id`` or Kling ``task_id``, in that order of preference."""
    if isinstance(ref, int):
        return _first(conn, TASK_SELECT.where(tasks.c.id == ref))
    for column in (tasks.c.external_task_id, tasks.c.task_id):
        found = _first(conn, TASK_SELECT.where(column == ref).order_by(tasks.c.id))
        if found is not None:
            return found
    if ref.isascii() and ref.isdigit() and int(ref) < 2**31:
        return _first(conn, TASK_SELECT.where(tasks.c.id == int(ref)))
    return None


def _first(conn: Connection, query: Select[Any]) -> TaskRecord | None:
    row = conn.execute(query.limit(1)).mappings().first()
    return task_record(row) if row is not None else None


#: What task lists may be ordered by (the API's and the MCP server's ``sort``).
TASK_ORDERS: dict[str, Any] = {
    "id": tasks.c.id,
    "queued_at": tasks.c.queued_at,
    "sent_at": tasks.c.sent_at,
    "finished_at": tasks.c.finished_at,
    "status": tasks.c.status,
    "product": tasks.c.product,
    "batch": batches.c.name,
    "external_task_id": tasks.c.external_task_id,
}


def select_tasks(
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
) -> Select[Any]:
    """The query behind :meth:`Ledger.tasks` (filters combine with AND), ordered by ``order``
    (one of :data:`TASK_ORDERS`; ties by local id), descending with ``newest_first``."""
    query = TASK_SELECT
    if status is not None:
        wanted = [status] if isinstance(status, LocalStatus) else list(status)
        query = query.where(tasks.c.status.in_([s.value for s in wanted]))
    if batch is not None:
        query = query.where(batches.c.name == batch)
    if product is not None:
        query = query.where(tasks.c.product == product)
    if stuck is not None:
        query = query.where(tasks.c.stuck == stuck)
    if search:
        pattern = f"%{search}%"
        query = query.where(
            or_(
                tasks.c.external_task_id.ilike(pattern),
                tasks.c.task_id.ilike(pattern),
                tasks.c.status_msg.ilike(pattern),
                tasks.c.source_line.ilike(pattern),
                cast(tasks.c.request, String).ilike(pattern),
            )
        )
    if order not in TASK_ORDERS:
        raise ValueError(f"cannot order tasks by {order!r}; use one of {', '.join(TASK_ORDERS)}")
    keys = [tasks.c.id] if order == "id" else [TASK_ORDERS[order], tasks.c.id]
    query = query.order_by(*(k.desc() if newest_first else k for k in keys))
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    return query


def zero_counts() -> dict[LocalStatus, int]:
    """Every status with a count of 0."""
    return dict.fromkeys(LocalStatus, 0)


def count_statuses(conn: Connection, *, batch_id: int | None = None) -> dict[LocalStatus, int]:
    """How many tasks are in each status (every status present, zeros included)."""
    query = select(tasks.c.status, func.count()).group_by(tasks.c.status)
    if batch_id is not None:
        query = query.where(tasks.c.batch_id == batch_id)
    counts = zero_counts()
    for status, n in conn.execute(query):
        counts[LocalStatus(status)] = n
    return counts


def event_record(row: RowMapping) -> EventRecord:
    """An :class:`EventRecord` from an ``events`` row."""
    return EventRecord(
        id=row["id"],
        local_id=row["local_id"],
        at=row["at"],
        from_status=LocalStatus(row["from_status"]) if row["from_status"] is not None else None,
        to_status=LocalStatus(row["to_status"]),
        source=Source(row["source"]),
        detail=row["detail"],
    )


def download_record(row: RowMapping) -> DownloadRecord:
    """A :class:`DownloadRecord` from a ``downloads`` row."""
    return DownloadRecord(
        local_id=row["local_id"],
        index=row["idx"],
        url=row["url"],
        path=row["path"],
        size=row["size"],
        sha256=row["sha256"],
        state=row["state"],
        error=row["error"],
        at=row["at"],
    )


def alert_record(row: RowMapping) -> AlertRecord:
    """An :class:`AlertRecord` from an ``alerts`` row."""
    return AlertRecord(
        id=row["id"],
        kind=row["kind"],
        message=row["message"],
        at=row["at"],
        last_at=row["last_at"],
        count=row["count"],
        active=bool(row["active"]),
        cleared_at=row["cleared_at"],
    )


def batch_last_finish(conn: Connection) -> dict[str, float]:
    """For each batch with a finished task, when klingwatch learned its latest final status."""
    final = [LocalStatus.SUCCEED.value, LocalStatus.FAILED.value, LocalStatus.REJECTED.value]
    when = func.max(func.coalesce(tasks.c.detected_at, tasks.c.finished_at))
    query = (
        select(batches.c.name, when)
        .join_from(tasks, batches, tasks.c.batch_id == batches.c.id)
        .where(tasks.c.status.in_(final))
        .group_by(batches.c.name)
    )
    return {name: float(at) for name, at in conn.execute(query) if at is not None}


def batch_units(conn: Connection, names: Iterable[str]) -> dict[str, list[str]]:
    """The units charged (Kling's decimal strings) to the tasks of these batches."""
    wanted = sorted(set(names))
    out: dict[str, list[str]] = {name: [] for name in wanted}
    for start in range(0, len(wanted), 400):
        query = (
            select(batches.c.name, tasks.c.units)
            .join_from(tasks, batches, tasks.c.batch_id == batches.c.id)
            .where(batches.c.name.in_(wanted[start : start + 400]), tasks.c.units.is_not(None))
        )
        for name, units in conn.execute(query):
            out[name].append(units)
    return out


def finishes_by_source(conn: Connection, since: float) -> dict[Source, int]:
    """How many tasks sent with a callback URL reached ``succeed`` / ``failed`` at or after
    ``since``, by the source that reported it (a callback, a poll, ...)."""
    final = [LocalStatus.SUCCEED.value, LocalStatus.FAILED.value]
    query = (
        select(events.c.source, func.count())
        .join_from(events, tasks, events.c.local_id == tasks.c.id)
        .where(
            events.c.at >= since,
            events.c.to_status.in_(final),
            events.c.from_status != events.c.to_status,
            tasks.c.callback_url.is_not(None),
        )
        .group_by(events.c.source)
    )
    return {Source(source): int(n) for source, n in conn.execute(query)}
