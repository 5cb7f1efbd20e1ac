"""Work queues and row leases: which tasks are due for a look, which wait to be sent, and who
holds them.

Several ``klingwatch serve`` replicas sharing one PostgreSQL ledger split the work with leases:
:func:`claim` picks rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` (rows another replica is
claiming right now are skipped, never waited for) among those nobody else holds, and stamps them
``lease_owner`` / ``lease_until``. A replica that dies simply stops renewing; its leases expire and
the others take over. On SQLite the writer holds the file lock, so the same code serializes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, or_, update

from klingwatch.store import reads
from klingwatch.store.apply import chunks
from klingwatch.store.records import ACTIVE_STATUSES, LocalStatus, TaskRecord
from klingwatch.store.schema import tasks

__all__ = ["claim", "due_query", "queued_query", "release"]

_ACTIVE = sorted(s.value for s in ACTIVE_STATUSES)


def due_query(now: float) -> Select[Any]:
    """Active tasks whose next look is due (never looked at counts as due), longest wait first."""
    return reads.TASK_SELECT.where(
        tasks.c.status.in_(_ACTIVE),
        or_(tasks.c.next_look_at.is_(None), tasks.c.next_look_at <= now),
    ).order_by(tasks.c.next_look_at.asc().nulls_first(), tasks.c.id)


def queued_query(family: str | None) -> Select[Any]:
    """Tasks waiting to be sent, oldest intent first (not those a budget cap holds)."""
    query = reads.TASK_SELECT.where(
        tasks.c.status == LocalStatus.QUEUED.value, tasks.c.hold_reason.is_(None)
    )
    if family is not None:
        query = query.where(tasks.c.family == family)
    return query.order_by(tasks.c.queued_at, tasks.c.id)


def claim(
    conn: Connection,
    query: Select[Any],
    now: float,
    *,
    owner: str,
    lease_seconds: float,
    limit: int,
) -> list[TaskRecord]:
    """Lease up to ``limit`` rows of ``query`` that are free (no lease, an expired one, or
    ``owner``'s own) to ``owner`` until ``now + lease_seconds``; the leased tasks, in order."""
    free = or_(
        tasks.c.lease_until.is_(None), tasks.c.lease_until <= now, tasks.c.lease_owner == owner
    )
    pick = (
        query.with_only_columns(tasks.c.id)
        .where(free)
        .limit(limit)
        .with_for_update(skip_locked=True, of=tasks)  # PostgreSQL; SQLite's writer holds the file
    )
    ids = list(conn.scalars(pick))
    for part in chunks(sorted(ids)):
        conn.execute(
            update(tasks)
            .where(tasks.c.id.in_(part))
            .values(lease_owner=owner, lease_until=now + lease_seconds)
        )
    found = {
        record.local_id: record
        for part in chunks(ids)
        for record in reads.task_records(conn, reads.TASK_SELECT.where(tasks.c.id.in_(part)))
    }
    return [found[i] for i in ids]


def release(conn: Connection, local_ids: Sequence[int], *, owner: str) -> None:
    """Drop ``owner``'s leases on these tasks (leases held by others stay)."""
    for part in chunks(sorted(local_ids)):
        conn.execute(
            update(tasks)
            .where(tasks.c.id.in_(part), tasks.c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )
