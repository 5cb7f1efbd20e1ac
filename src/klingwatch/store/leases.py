"""Work queues and row leases: which tasks are due for a look, which wait to be sent, and who
holds them.

Several ``klingwatch serve`` replicas sharing one PostgreSQL ledger split the work with leases:
:func:`claim` picks rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` (rows another replica is
claiming right now are skipped, never waited for) among those nobody else holds, and stamps them
``lease_owner`` / ``lease_until``. A replica that dies simply stops renewing (:func:`renew`); its
leases expire and the others take over. On SQLite the writer holds the file lock, so the same code
serializes.

The account's slots are shared by every replica, so what may be sent is decided by the ledger,
not by any process's memory: :func:`claim_to_send` counts the slots in use (:func:`slots_in_use`:
active tasks, plus queued ones under a live lease, which are creates on the wire or about to be)
and leases what fits, in one transaction serialized per pack family (a PostgreSQL advisory
transaction lock; SQLite's write lock does the same). A killed sender's leases stop counting once
they expire; its tasks are then the oldest queued ones, so the next claim meets them first and
the submitter looks them up as orphans before anything else is sent in their place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, and_, func, or_, select, text, update

from klingwatch.store import reads
from klingwatch.store.apply import chunks
from klingwatch.store.records import ACTIVE_STATUSES, LocalStatus, TaskRecord
from klingwatch.store.schema import tasks

__all__ = [
    "claim",
    "claim_to_send",
    "due_query",
    "queued_query",
    "release",
    "renew",
    "slots_in_use",
    "succeeded_query",
]

_ACTIVE = sorted(s.value for s in ACTIVE_STATUSES)
# The first key of every per-family send lock (pg_advisory_xact_lock(int, int)); the second is
# the family's hashtext. The one-key migration lock lives in a key space of its own.
_PG_SEND_LOCK = 0x6B77


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


def succeeded_query(local_ids: Sequence[int]) -> Select[Any]:
    """Succeeded tasks among ``local_ids`` (whose files are to be collected), by id."""
    return reads.TASK_SELECT.where(
        tasks.c.id.in_(list(local_ids)), tasks.c.status == LocalStatus.SUCCEED.value
    ).order_by(tasks.c.id)


def _free(owner: str, now: float) -> Any:
    return or_(
        tasks.c.lease_until.is_(None), tasks.c.lease_until <= now, tasks.c.lease_owner == owner
    )


def _sending(now: float) -> Any:
    """Queued tasks under a live lease: creates on the wire, or claimed to be sent."""
    return and_(tasks.c.status == LocalStatus.QUEUED.value, tasks.c.lease_until > now)


def slots_in_use(conn: Connection, family: str | None, now: float) -> int:
    """The summed ``slot_cost`` of active tasks and of queued ones being sent (see the module
    docstring), across every replica."""
    query = select(func.coalesce(func.sum(tasks.c.slot_cost), 0)).where(
        or_(tasks.c.status.in_(_ACTIVE), _sending(now))
    )
    if family is not None:
        query = query.where(tasks.c.family == family)
    return int(conn.scalar(query) or 0)


def claim_to_send(
    conn: Connection,
    now: float,
    *,
    owner: str,
    lease_seconds: float,
    family: str,
    slot_limit: int | None,
    most: int,
) -> list[TaskRecord]:
    """Lease to ``owner`` the oldest queued tasks of ``family`` that fit the account's free
    slots together, at most ``most``. With ``slot_limit`` unknown, ``most`` bounds the family's
    creates on the wire anywhere (whatever their slot cost: an image of n=4 must not wait for a
    limit nobody has told). A task that does not fit stops the claim (the
    queue's order is kept). Serialized per family, so two replicas never both spend one slot."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:ns, hashtext(:family))"),
            {"ns": _PG_SEND_LOCK, "family": family},
        )
    room: int | None  # None: the limit is unknown, and tasks go whatever their slot cost
    if slot_limit is None:
        # ``most`` is then how many creates may be on the wire at once, ledger-wide, while the
        # limit is learned (the submitter ramps it up: monitor/submitter.unknown_limit_batch).
        busy = conn.scalar(select(func.count()).where(tasks.c.family == family, _sending(now)))
        room, most = None, most - int(busy or 0)
    else:
        room = slot_limit - slots_in_use(conn, family, now)
    if (room is not None and room <= 0) or most <= 0:
        return []
    pick = (
        queued_query(family)
        .with_only_columns(tasks.c.id, tasks.c.slot_cost)
        .where(_free(owner, now))
        .limit(most)
        .with_for_update(skip_locked=True, of=tasks)
    )
    ids: list[int] = []
    for local_id, cost in conn.execute(pick):
        if room is not None:
            if cost > room:
                break
            room -= cost
        ids.append(local_id)
    return _lease(conn, ids, now, owner=owner, lease_seconds=lease_seconds)


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
    pick = (
        query.with_only_columns(tasks.c.id)
        .where(_free(owner, now))
        .limit(limit)
        .with_for_update(skip_locked=True, of=tasks)  # PostgreSQL; SQLite's writer holds the file
    )
    return _lease(conn, list(conn.scalars(pick)), now, owner=owner, lease_seconds=lease_seconds)


def _lease(
    conn: Connection, ids: list[int], now: float, *, owner: str, lease_seconds: float
) -> list[TaskRecord]:
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


def renew(conn: Connection, local_ids: Sequence[int], until: float, *, owner: str) -> list[int]:
    """Extend ``owner``'s leases on these tasks to ``until``; the ids it still held (a lease
    that ran out and was taken by another replica is not taken back)."""
    kept: list[int] = []
    for part in chunks(sorted(local_ids)):
        held = and_(tasks.c.id.in_(part), tasks.c.lease_owner == owner)
        conn.execute(update(tasks).where(held).values(lease_until=until))
        kept.extend(conn.scalars(select(tasks.c.id).where(held)))
    return kept
