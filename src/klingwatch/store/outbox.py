"""The outbox: status-change events owed to ``KLINGWATCH_EVENTS_URL``, durable in the ledger.

Why a table filled by the door rather than a cursor over ``events``: the door writes an outbox
row in the same transaction as the event it announces (:func:`enqueue`, called by
:func:`klingwatch.store.apply.apply_observations`), so an event is owed exactly when it exists;
a process killed at any moment loses nothing, and nothing is owed twice. A cursor ("delivered
up to event id N") is simpler but wrong on PostgreSQL, where two replicas' transactions commit
out of id order: the cursor would pass an event whose transaction had not committed yet, and
that event would never be sent. Rows are claimed like tasks (:mod:`klingwatch.store.leases`):
``FOR UPDATE SKIP LOCKED`` plus a lease, so replicas share the work instead of each sending
everything, and a dead replica's claims expire to the others. A delivered row is deleted; a
failed one waits ``next_at`` (the caller's backoff) and is tried again, forever.

The outbox is switched on per ledger (:data:`OUTBOX_META`, set by the delivering engine), so a
ledger nobody delivers from does not pile up rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from klingwatch.store.records import LocalStatus, Source
from klingwatch.store.schema import batches, events, meta, outbox, tasks

__all__ = [
    "MAX_CLAIM",
    "OUTBOX_META",
    "OutboundEvent",
    "claim",
    "delivered",
    "enabled",
    "enqueue",
    "failed",
    "pending",
]

#: Ledger meta key: present when status changes are queued for outbound delivery.
OUTBOX_META = "events.outbox"
#: Events one claim takes at most (well under every backend's parameter limit).
MAX_CLAIM = 500


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    """One owed event, with what a receiver needs to know of its task."""

    event_id: int
    attempts: int
    at: float
    from_status: LocalStatus | None
    to_status: LocalStatus
    source: Source
    detail: str | None
    local_id: int
    batch: str
    external_task_id: str
    task_id: str | None
    product: str
    model: str | None
    mode: str | None
    #: The task's status now (``to_status`` unless it moved on since).
    status: LocalStatus
    status_msg: str | None
    result: dict[str, Any] | None
    units: str | None


def enabled(conn: Connection) -> bool:
    """Whether this ledger queues outbound events (read inside the writer's transaction)."""
    return conn.scalar(select(meta.c.value).where(meta.c.key == OUTBOX_META)) is not None


def enqueue(conn: Connection, event_ids: Sequence[int], now: float) -> None:
    """Owe these events (the caller's transaction is the one that wrote them)."""
    if event_ids:
        conn.execute(insert(outbox), [{"event_id": i, "next_at": now} for i in event_ids])


def claim(
    conn: Connection, now: float, *, owner: str, lease_seconds: float, limit: int
) -> list[OutboundEvent]:
    """Lease up to ``limit`` (at most :data:`MAX_CLAIM`) owed events that are due and free to
    ``owner``, oldest first."""
    free = or_(
        outbox.c.lease_until.is_(None), outbox.c.lease_until <= now, outbox.c.lease_owner == owner
    )
    pick = (
        select(outbox.c.event_id)
        .where(outbox.c.next_at <= now, free)
        .order_by(outbox.c.event_id)
        .limit(min(limit, MAX_CLAIM))
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite's writer holds the file lock
    )
    ids = list(conn.scalars(pick))
    if not ids:
        return []
    conn.execute(
        update(outbox)
        .where(outbox.c.event_id.in_(ids))
        .values(lease_owner=owner, lease_until=now + lease_seconds)
    )
    rows = conn.execute(_EVENT_SELECT.where(outbox.c.event_id.in_(ids))).mappings()
    found = {row["event_id"]: _record(row) for row in rows}
    return [found[i] for i in ids if i in found]


def delivered(conn: Connection, event_ids: Sequence[int], *, owner: str) -> None:
    """Forget events ``owner`` delivered (a row another replica took over meanwhile stays)."""
    ids = sorted(event_ids)
    for start in range(0, len(ids), MAX_CLAIM):
        part = ids[start : start + MAX_CLAIM]
        conn.execute(
            delete(outbox).where(outbox.c.event_id.in_(part), outbox.c.lease_owner == owner)
        )


def failed(conn: Connection, event_id: int, *, owner: str, next_at: float, error: str) -> None:
    """Count a failed delivery and free the row for another try at ``next_at``."""
    conn.execute(
        update(outbox)
        .where(outbox.c.event_id == event_id, outbox.c.lease_owner == owner)
        .values(
            attempts=outbox.c.attempts + 1,
            next_at=next_at,
            last_error=error[:1000],
            lease_owner=None,
            lease_until=None,
        )
    )


def pending(conn: Connection) -> tuple[int, float | None]:
    """``(events owed, when the soonest is due)``."""
    count, soonest = conn.execute(select(func.count(), func.min(outbox.c.next_at))).one()
    return int(count or 0), (None if soonest is None else float(soonest))


_EVENT_SELECT = (
    select(
        outbox.c.event_id,
        outbox.c.attempts,
        events.c.at,
        events.c.from_status,
        events.c.to_status,
        events.c.source,
        events.c.detail,
        tasks.c.id.label("local_id"),
        batches.c.name.label("batch"),
        tasks.c.external_task_id,
        tasks.c.task_id,
        tasks.c.product,
        tasks.c.model,
        tasks.c.mode,
        tasks.c.status,
        tasks.c.status_msg,
        tasks.c.result,
        tasks.c.units,
    )
    .select_from(outbox)
    .join(events, events.c.id == outbox.c.event_id)
    .join(tasks, tasks.c.id == events.c.local_id)
    .join(batches, batches.c.id == tasks.c.batch_id)
)


def _record(row: Any) -> OutboundEvent:
    return OutboundEvent(
        event_id=row["event_id"],
        attempts=row["attempts"],
        at=row["at"],
        from_status=None if row["from_status"] is None else LocalStatus(row["from_status"]),
        to_status=LocalStatus(row["to_status"]),
        source=Source(row["source"]),
        detail=row["detail"],
        local_id=row["local_id"],
        batch=row["batch"],
        external_task_id=row["external_task_id"],
        task_id=row["task_id"],
        product=row["product"],
        model=row["model"],
        mode=row["mode"],
        status=LocalStatus(row["status"]),
        status_msg=row["status_msg"],
        result=row["result"],
        units=row["units"],
    )
