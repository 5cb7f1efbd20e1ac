"""Budget caps: a batch may spend at most ``max_units`` units, counted at the moment of sending.

A task's cost is its unit estimate, made when it was queued (``tasks.units_estimated``): Kling
says what a task cost only once it ended, too late to stop anything. What a batch has
**committed** is the summed estimate of every task of it that was ever marked sending (sent,
in flight, ``unknown``, ``submitted``, ... finished), except those Kling refused for good
(``rejected``: refused creates make nothing). A task sent before and queued again (a 1303, a
lookup that found nothing) is counted once.

:func:`mark_sending` is the one place a send is recorded, and it checks the cap in the same
transaction, under a lock on the batch's row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
writer already holds the file's write lock): of the tasks asked for, those that fit are marked
sending (``sent_at``, ``send_attempts + 1``), the others are **held** (``hold_reason``) and left
``queued``. A process killed at any moment therefore never lets the committed sum pass the cap:
a task is counted before its create can leave, and two replicas never count against the same
room at once.

Held tasks are skipped by the send queue (:func:`klingwatch.store.leases.queued_query`) until
:func:`review_holds` finds room for them again (a raised cap, a refused task giving its estimate
back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, func, select, update

from klingwatch.store.apply import chunks
from klingwatch.store.errors import UnknownTask
from klingwatch.store.records import LocalStatus
from klingwatch.store.schema import batches, tasks

__all__ = [
    "BatchBudget",
    "SendClaim",
    "batch_budget",
    "committed",
    "format_units",
    "held_count",
    "hold_message",
    "mark_sending",
    "parse_units",
    "review_holds",
    "set_cap",
]


@dataclass(frozen=True, slots=True)
class SendClaim:
    """What :func:`mark_sending` did: the tasks marked sending, and those a cap held back."""

    marked: list[int]
    held: list[int]


@dataclass(frozen=True, slots=True)
class BatchBudget:
    """One batch's cap and what counts against it."""

    batch: str
    #: The cap in units, or ``None``.
    max_units: Decimal | None
    #: Summed estimate of the tasks sent (see the module docstring).
    committed: Decimal
    #: Summed estimate of every task of the batch, sent or not.
    estimated: Decimal
    #: Queued tasks held back by the cap.
    held: int


def parse_units(value: str | None) -> Decimal | None:
    """A stored decimal string as a :class:`Decimal` (``None`` for none, or for garbage)."""
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def format_units(value: Decimal) -> str:
    """Units as people write them: ``10``, ``1.5`` (never ``1E+1``)."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def hold_message(cap: Decimal, sent: Decimal, estimate: Decimal | None) -> str:
    """Why a task waits: shown by ``status``, ``tasks``, ``show`` and the dashboard."""
    if estimate is None:
        return f"held: budget cap {format_units(cap)} units, and this task has no unit estimate"
    return f"held: budget cap {format_units(cap)} units, {format_units(sent)} sent"


# A task counts against its batch's cap once it was marked sending, unless Kling refused it.
_COUNTS = and_(tasks.c.send_attempts > 0, tasks.c.status != LocalStatus.REJECTED.value)


def committed(conn: Connection, batch_ids: Sequence[int]) -> dict[int, Decimal]:
    """Summed estimates of the tasks of these batches that count against a cap."""
    out = dict.fromkeys(batch_ids, Decimal(0))
    for part in chunks(sorted(batch_ids)):
        query = select(tasks.c.batch_id, tasks.c.units_estimated).where(
            tasks.c.batch_id.in_(part), _COUNTS
        )
        for batch_id, value in conn.execute(query):
            out[batch_id] += parse_units(value) or Decimal(0)
    return out


def _lock_caps(conn: Connection, batch_ids: Sequence[int]) -> dict[int, Decimal | None]:
    """Lock these batches' rows (in id order, so replicas never deadlock) and read their caps."""
    caps: dict[int, Decimal | None] = {}
    for part in chunks(sorted(set(batch_ids))):
        query = (
            select(batches.c.id, batches.c.max_units)
            .where(batches.c.id.in_(part))
            .order_by(batches.c.id)
            .with_for_update()
        )
        caps.update((i, parse_units(cap)) for i, cap in conn.execute(query))
    return caps


def mark_sending(conn: Connection, local_ids: Sequence[int], at: float) -> SendClaim:
    """Record a send attempt of each task that its batch's cap allows, in the caller's (write)
    transaction, in the order given; hold the rest (see the module docstring)."""
    order = list(dict.fromkeys(local_ids))
    rows: dict[int, Row[Any, Any, Any, Any, Any]] = {}
    for part in chunks(sorted(order)):
        query = select(
            tasks.c.id,
            tasks.c.batch_id,
            tasks.c.units_estimated,
            tasks.c.send_attempts,
            tasks.c.status,
        ).where(tasks.c.id.in_(part))
        rows.update((row.id, row) for row in conn.execute(query))
    missing = set(order) - set(rows)
    if missing:
        raise UnknownTask(min(missing))
    caps = _lock_caps(conn, [row.batch_id for row in rows.values()])
    capped = [b for b, cap in caps.items() if cap is not None]
    sent = committed(conn, capped)
    marked: list[int] = []
    holds: dict[int, str] = {}
    for local_id in order:
        row = rows[local_id]
        cap = caps.get(row.batch_id)
        counted = row.send_attempts > 0 and row.status != LocalStatus.REJECTED.value
        if cap is None or counted:
            marked.append(local_id)
            continue
        estimate = parse_units(row.units_estimated)
        if estimate is None or sent[row.batch_id] + estimate > cap:
            holds[local_id] = hold_message(cap, sent[row.batch_id], estimate)
            continue
        sent[row.batch_id] += estimate
        marked.append(local_id)
    for part in chunks(sorted(marked)):
        conn.execute(
            update(tasks)
            .where(tasks.c.id.in_(part))
            .values(sent_at=at, send_attempts=tasks.c.send_attempts + 1, hold_reason=None)
        )
    _write_holds(conn, holds)
    return SendClaim(marked=marked, held=[i for i in order if i in holds])


def _write_holds(conn: Connection, holds: Mapping[int, str | None]) -> None:
    if not holds:
        return
    stmt = (
        update(tasks)
        .where(tasks.c.id == bindparam("p_id"))
        .values(hold_reason=bindparam("p_reason"))
    )
    conn.execute(stmt, [{"p_id": i, "p_reason": r} for i, r in sorted(holds.items())])


def review_holds(conn: Connection, batch_ids: Sequence[int] | None = None) -> int:
    """Free the held tasks (of these batches, or of all) that fit their batch's cap now, and
    bring the others' reasons up to date; how many were freed.

    A freed task is only free to be *claimed*: :func:`mark_sending` checks the cap again.
    """
    query = select(
        tasks.c.id, tasks.c.batch_id, tasks.c.units_estimated, tasks.c.hold_reason
    ).where(tasks.c.hold_reason.is_not(None), tasks.c.status == LocalStatus.QUEUED.value)
    if batch_ids is not None:
        query = query.where(tasks.c.batch_id.in_(list(batch_ids)))
    held = list(conn.execute(query.order_by(tasks.c.queued_at, tasks.c.id)))
    if not held:
        return 0
    caps = _lock_caps(conn, [row.batch_id for row in held])
    sent = committed(conn, [b for b, cap in caps.items() if cap is not None])
    changes: dict[int, str | None] = {}
    freed = 0
    # Room is handed out oldest first, as the send queue would.
    room = {b: cap - sent[b] for b, cap in caps.items() if cap is not None}
    for row in held:
        cap = caps.get(row.batch_id)
        estimate = parse_units(row.units_estimated)
        if cap is None or (estimate is not None and estimate <= room[row.batch_id]):
            if cap is not None and estimate is not None:
                room[row.batch_id] -= estimate
            changes[row.id] = None
            freed += 1
            continue
        reason = hold_message(cap, sent[row.batch_id], estimate)
        if reason != row.hold_reason:
            changes[row.id] = reason
    _write_holds(conn, changes)
    return freed


def set_cap(conn: Connection, batch_id: int, max_units: Decimal | None) -> int:
    """Set (or, with ``None``, remove) a batch's cap and review its held tasks at once; how
    many were freed."""
    value = None if max_units is None else format_units(max_units)
    conn.execute(update(batches).where(batches.c.id == batch_id).values(max_units=value))
    return review_holds(conn, [batch_id])


def batch_budget(conn: Connection, name: str) -> BatchBudget | None:
    """The cap of batch ``name`` and what counts against it; ``None`` for an unknown batch."""
    row = conn.execute(
        select(batches.c.id, batches.c.max_units).where(batches.c.name == name)
    ).first()
    if row is None:
        return None
    estimated = Decimal(0)
    held = 0
    query = select(tasks.c.units_estimated, tasks.c.hold_reason, tasks.c.status).where(
        tasks.c.batch_id == row.id
    )
    for value, reason, status in conn.execute(query):
        estimated += parse_units(value) or Decimal(0)
        held += reason is not None and status == LocalStatus.QUEUED.value
    return BatchBudget(
        batch=name,
        max_units=parse_units(row.max_units),
        committed=committed(conn, [row.id])[row.id],
        estimated=estimated,
        held=held,
    )


def held_count(conn: Connection, batch_id: int | None = None) -> int:
    """Queued tasks a cap holds back (of one batch, or of all)."""
    query = select(func.count()).where(
        tasks.c.hold_reason.is_not(None), tasks.c.status == LocalStatus.QUEUED.value
    )
    if batch_id is not None:
        query = query.where(tasks.c.batch_id == batch_id)
    return int(conn.scalar(query) or 0)
