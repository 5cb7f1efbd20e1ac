"""A consistency check of the whole ledger: do tasks and their timelines agree?

Used by tests after a process was killed mid-write, and available to operators through
:meth:`klingwatch.store.Ledger.verify`. Because every status change and its event are written in
one transaction, a sound ledger always passes; a failure means a bug (or a hand-edited database).
"""

from __future__ import annotations

from itertools import pairwise

from sqlalchemy import Connection, select

from klingwatch.store.door import accepts
from klingwatch.store.records import LocalStatus, Source
from klingwatch.store.schema import events, tasks

__all__ = ["find_inconsistencies"]


def find_inconsistencies(conn: Connection) -> list[str]:
    """Every disagreement found, one line each (empty when the ledger is consistent).

    Checked per task: its timeline starts with one creation event (``from_status`` NULL); each
    status event starts where the previous one ended and is a move the door allows; the last one
    ends at the task's current status.
    """
    statuses = {
        local_id: LocalStatus(status)
        for local_id, status in conn.execute(select(tasks.c.id, tasks.c.status))
    }
    chains: dict[int, list[tuple[LocalStatus | None, LocalStatus, Source]]] = {}
    query = (
        select(events.c.local_id, events.c.from_status, events.c.to_status, events.c.source)
        .where(events.c.local_id.is_not(None))
        .order_by(events.c.id)
    )
    for local_id, from_status, to_status, source in conn.execute(query):
        if from_status == to_status:
            continue  # a note (stuck / unstuck), not a status change
        start = LocalStatus(from_status) if from_status is not None else None
        chains.setdefault(local_id, []).append((start, LocalStatus(to_status), Source(source)))

    problems: list[str] = []
    for local_id, status in sorted(statuses.items()):
        chain = chains.get(local_id, [])
        if not chain or chain[0][0] is not None:
            problems.append(f"task {local_id}: timeline does not start with its creation")
            continue
        for (_, prev_to, _), (start, end, source) in pairwise(chain):
            if start is None:
                problems.append(f"task {local_id}: created twice")
            elif start is not prev_to:
                problems.append(f"task {local_id}: event {start}->{end} follows one to {prev_to}")
            elif not accepts(start, end, source):
                problems.append(f"task {local_id}: {start}->{end} ({source}) is not allowed")
        if chain[-1][1] is not status:
            problems.append(
                f"task {local_id}: status {status} but its last event says {chain[-1][1]}"
            )
    return problems
