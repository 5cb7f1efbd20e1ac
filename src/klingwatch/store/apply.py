"""The one door's SQL side: apply a batch of observations inside one transaction.

:func:`apply_observations` finds the rows the observations name, locks them (``FOR UPDATE`` on
PostgreSQL, in id order so concurrent batches never deadlock; SQLite's writer already holds the
file's write lock), runs :func:`klingwatch.store.door.decide` on each observation in order, and
writes back with batched statements: one ``UPDATE`` executemany for the changed rows, one
``INSERT`` executemany for the events (and, when outbound events are on, one for the outbox rows
that owe them: :mod:`klingwatch.store.outbox`). A few thousand observations cost a handful of
round trips.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, RowMapping, bindparam, insert, select, update

from klingwatch.store import outbox
from klingwatch.store.door import decide
from klingwatch.store.records import STATE_FIELDS, Change, LocalStatus, Observation, TaskState
from klingwatch.store.schema import events, tasks

__all__ = ["CHUNK", "ApplyOutcome", "apply_observations", "chunks"]

logger = logging.getLogger(__name__)

#: Keys per ``IN (...)`` list: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 500

_T = TypeVar("_T")

_STATE_COLUMNS = [tasks.c[name] for name in STATE_FIELDS]

_UPDATE_STATE = (
    update(tasks)
    .where(tasks.c.id == bindparam("p_id"))
    .values({name: bindparam(f"p_{name}", type_=tasks.c[name].type) for name in STATE_FIELDS})
)


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What one batch did: the accepted changes, and how many tasks newly succeeded."""

    changes: list[Change]
    succeeded: int


def chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def apply_observations(conn: Connection, observations: Sequence[Observation]) -> ApplyOutcome:
    """Run every observation through the door, in order, in the caller's transaction."""
    if not observations:
        return ApplyOutcome([], 0)
    index = _Index.build(conn, observations)
    states, externals = _load(conn, sorted(index.rows()))

    changes: list[Change] = []
    new_events: list[dict[str, Any]] = []
    dirty: set[int] = set()
    succeeded = 0
    for obs in observations:
        local_id = index.find(obs)
        if local_id is None or local_id not in states:
            new_events.append(_orphan_event(obs))
            continue
        before = states[local_id]
        verdict = decide(before, obs)
        if not verdict.changed:
            continue
        after = verdict.state
        states[local_id] = after
        if after.task_id is not None and before.task_id is None:
            index.attach(after.task_id, local_id)  # later reports in this batch may name only it
        dirty.add(local_id)
        if verdict.status_changed:
            detail = obs.detail or (after.status_msg if after.status.is_final else None)
            new_events.append(
                {
                    "local_id": local_id,
                    "at": obs.at,
                    "from_status": before.status.value,
                    "to_status": after.status.value,
                    "source": obs.source.value,
                    "detail": detail,
                }
            )
            if after.status is LocalStatus.SUCCEED:
                succeeded += 1
        changes.append(
            Change(
                local_id=local_id,
                external_task_id=externals[local_id],
                task_id=after.task_id,
                old=before.status,
                new=after.status,
                status_changed=verdict.status_changed,
                state=after,
            )
        )

    if dirty:
        conn.execute(_UPDATE_STATE, [_row_params(i, states[i]) for i in sorted(dirty)])
    if new_events:
        _insert_events(conn, new_events, observations[-1].at)
    return ApplyOutcome(changes, succeeded)


def _insert_events(conn: Connection, new_events: list[dict[str, Any]], now: float) -> None:
    """Write the events; when outbound events are on, owe each status change in the same
    transaction (orphans are not announced: no task of this ledger changed)."""
    if not outbox.enabled(conn):
        conn.execute(insert(events), new_events)
        return
    stmt = insert(events).returning(events.c.id, sort_by_parameter_order=True)
    ids = list(conn.scalars(stmt, new_events))
    owed = [i for i, e in zip(ids, new_events, strict=True) if e["local_id"] is not None]
    outbox.enqueue(conn, owed, now)


@dataclass(slots=True)
class _Index:
    """Which row each observation names: by local id, else external_task_id, else Kling task_id."""

    known: set[int]
    by_ext: dict[str, int]
    by_kling: dict[str, int]

    @classmethod
    def build(cls, conn: Connection, observations: Sequence[Observation]) -> _Index:
        local_ids = sorted({o.local_id for o in observations if o.local_id is not None})
        ext_ids = sorted({o.external_task_id for o in observations if o.external_task_id})
        kling_ids = sorted({o.task_id for o in observations if o.task_id})

        known: set[int] = set()
        for part in chunks(local_ids):
            known.update(conn.scalars(select(tasks.c.id).where(tasks.c.id.in_(part))))
        by_ext: dict[str, int] = {}
        for ext_part in chunks(ext_ids):
            column = tasks.c.external_task_id
            rows = conn.execute(select(column, tasks.c.id).where(column.in_(ext_part)))
            by_ext.update((ext, local) for ext, local in rows)
        by_kling: dict[str, int] = {}
        for kling_part in chunks(kling_ids):
            rows = conn.execute(
                select(tasks.c.task_id, tasks.c.id)
                .where(tasks.c.task_id.in_(kling_part))
                .order_by(tasks.c.id.desc())
            )
            # Should two rows ever share a Kling id, the oldest row wins (it was there first).
            by_kling.update((kling, local) for kling, local in rows)
        return cls(known, by_ext, by_kling)

    def rows(self) -> set[int]:
        """Every row any observation may name."""
        return self.known | set(self.by_ext.values()) | set(self.by_kling.values())

    def find(self, obs: Observation) -> int | None:
        if obs.local_id is not None and obs.local_id in self.known:
            return obs.local_id
        if obs.external_task_id and obs.external_task_id in self.by_ext:
            return self.by_ext[obs.external_task_id]
        if obs.task_id:
            return self.by_kling.get(obs.task_id)
        return None

    def attach(self, task_id: str, local_id: int) -> None:
        self.by_kling.setdefault(task_id, local_id)


def _load(conn: Connection, local_ids: list[int]) -> tuple[dict[int, TaskState], dict[int, str]]:
    """Current state of ``local_ids`` (sorted), row-locked for the rest of the transaction."""
    states: dict[int, TaskState] = {}
    externals: dict[int, str] = {}
    for part in chunks(local_ids):
        query = (
            select(tasks.c.id, tasks.c.external_task_id, *_STATE_COLUMNS)
            .where(tasks.c.id.in_(part))
            .order_by(tasks.c.id)
            .with_for_update()  # ignored by SQLite, whose writer holds the file lock already
        )
        for row in conn.execute(query).mappings():
            states[row["id"]] = state_from_row(row)
            externals[row["id"]] = row["external_task_id"]
    return states, externals


def state_from_row(row: RowMapping) -> TaskState:
    """The door's view of a task row."""
    values = {name: row[name] for name in STATE_FIELDS}
    values["status"] = LocalStatus(values["status"])
    values["stuck"] = bool(values["stuck"])
    return TaskState(**values)


def _row_params(local_id: int, state: TaskState) -> dict[str, Any]:
    params: dict[str, Any] = {"p_id": local_id}
    for name in STATE_FIELDS:
        value = getattr(state, name)
        if name == "status":
            value = value.value
        elif name == "result" and value is not None:
            value = dict(value)
        params[f"p_{name}"] = value
    return params


def _orphan_event(obs: Observation) -> dict[str, Any]:
    named = ", ".join(
        f"{key}={value}"
        for key, value in (
            ("local_id", obs.local_id),
            ("external_task_id", obs.external_task_id),
            ("task_id", obs.task_id),
        )
        if value is not None
    )
    logger.warning("report about a task the ledger does not hold (%s): %s", named, obs.status)
    detail = f"orphan report ({named or 'no id'})"
    if obs.detail:
        detail += f": {obs.detail}"
    return {
        "local_id": None,
        "at": obs.at,
        "from_status": None,
        "to_status": obs.status.value,
        "source": obs.source.value,
        "detail": detail,
    }
