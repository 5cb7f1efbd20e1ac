"""Writing intents: batches, new tasks (``queued``) and adopted tasks (``submitted``).

These are the only rows the ledger creates with a status; from then on only the one door
(:mod:`klingwatch.store.apply`) changes it. Every function runs in the caller's transaction and
is safe against a concurrent replica inserting the same row (``ON CONFLICT DO NOTHING``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from klingwatch.store.apply import chunks
from klingwatch.store.records import AddResult, LocalStatus, NewTask, Source
from klingwatch.store.schema import batches, events, tasks

__all__ = ["add_tasks", "adopt", "batch_id", "dialect_insert"]


def dialect_insert(conn: Connection, table: Any) -> Any:
    """The connection's dialect-specific INSERT, which knows ON CONFLICT."""
    return pg_insert(table) if conn.dialect.name == "postgresql" else sqlite_insert(table)


def batch_id(conn: Connection, name: str, now: float) -> int:
    """The id of batch ``name``, created if new."""
    stmt = (
        dialect_insert(conn, batches)
        .values(name=name, created_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    conn.execute(stmt)
    found = conn.scalar(select(batches.c.id).where(batches.c.name == name))
    assert found is not None  # inserted just above, or already there
    return int(found)


def add_tasks(conn: Connection, batch: str, new: Sequence[NewTask], now: float) -> AddResult:
    """Insert intents as ``queued`` with a creation event each, idempotently by
    ``external_task_id`` (see :meth:`klingwatch.store.Ledger.add_tasks`)."""
    first: dict[str, NewTask] = {}
    for task in new:
        first.setdefault(task.external_task_id, task)
    owner = batch_id(conn, batch, now)
    ids = _ids_by_external(conn, list(first))
    fresh = [t for ext, t in first.items() if ext not in ids]
    added: set[int] = set()
    stmt = (
        dialect_insert(conn, tasks)
        .on_conflict_do_nothing(index_elements=["external_task_id"])
        .returning(tasks.c.id, tasks.c.external_task_id)
    )
    for part in chunks(fresh):
        # executemany with RETURNING: one cached statement, batched by SQLAlchemy.
        for local_id, ext in conn.execute(stmt, [_task_row(t, owner, now) for t in part]):
            ids[ext] = local_id
            added.add(local_id)
    missing = [ext for ext in first if ext not in ids]
    ids.update(_ids_by_external(conn, missing))  # inserted meanwhile by another replica
    if added:
        conn.execute(
            insert(events),
            [
                _creation_event(ids[t.external_task_id], now, t)
                for t in fresh
                if ids[t.external_task_id] in added
            ],
        )
    unique = list(dict.fromkeys(ids[t.external_task_id] for t in new))
    return AddResult(
        added=[i for i in unique if i in added],
        existing=[i for i in unique if i not in added],
    )


def adopt(conn: Connection, batch: str, product: str, task_id: str, family: str, now: float) -> int:
    """Insert a task created elsewhere as ``submitted``, or return the row that already holds
    this Kling task (see :meth:`klingwatch.store.Ledger.adopt`)."""
    external = f"adopted-{task_id}"
    query = (
        select(tasks.c.id)
        .where(or_(tasks.c.external_task_id == external, tasks.c.task_id == task_id))
        .order_by(tasks.c.id)
        .limit(1)
    )
    existing = conn.scalar(query)
    if existing is not None:
        return int(existing)
    intent = NewTask(product=product, request={}, external_task_id=external, family=family)
    row = _task_row(intent, batch_id(conn, batch, now), now)
    row.update(status=LocalStatus.SUBMITTED.value, task_id=task_id, submitted_at=now)
    stmt = (
        dialect_insert(conn, tasks)
        .values(row)
        .on_conflict_do_nothing(index_elements=["external_task_id"])
        .returning(tasks.c.id)
    )
    local_id = conn.scalar(stmt)
    if local_id is None:  # another replica adopted it a moment ago
        return int(conn.scalar(query) or 0)
    conn.execute(
        insert(events).values(
            local_id=local_id,
            at=now,
            from_status=None,
            to_status=LocalStatus.SUBMITTED.value,
            source=Source.MANUAL.value,
            detail=f"adopted Kling task {task_id}",
        )
    )
    return int(local_id)


def _ids_by_external(conn: Connection, externals: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for part in chunks(externals):
        query = select(tasks.c.external_task_id, tasks.c.id).where(
            tasks.c.external_task_id.in_(part)
        )
        found.update((ext, local_id) for ext, local_id in conn.execute(query))
    return found


def _task_row(task: NewTask, batch: int, now: float) -> dict[str, Any]:
    # Every row carries the same keys, so executemany can batch them.
    return {
        "batch_id": batch,
        "external_task_id": task.external_task_id,
        "product": task.product,
        "family": task.family,
        "request": dict(task.request),
        "model": task.model,
        "mode": task.mode,
        "duration": task.duration,
        "slot_cost": task.slot_cost,
        "status": LocalStatus.QUEUED.value,
        "queued_at": now,
        "callback_url": task.callback_url,
        "retry_of": task.retry_of,
        "source_line": task.source_line,
        "units_estimated": task.units_estimated,
        "task_id": None,
        "submitted_at": None,
    }


def _creation_event(local_id: int, now: float, task: NewTask) -> dict[str, Any]:
    return {
        "local_id": local_id,
        "at": now,
        "from_status": None,
        "to_status": LocalStatus.QUEUED.value,
        "source": Source.MANUAL.value,
        "detail": f"added from {task.source_line}" if task.source_line else "added",
    }
