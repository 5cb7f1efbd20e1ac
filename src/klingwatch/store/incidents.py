"""Incidents: one row per alert condition, so one incident is one message, whoever is watching.

An incident is keyed by ``(rule, subject)``, e.g. ``("stuck", <external id>)`` or
``("batch_finished", <batch>)``. Its life, in SQL that is atomic on SQLite and PostgreSQL:

* :func:`observe` records what a round of rules found: an absent incident is inserted
  (``INSERT ... ON CONFLICT DO NOTHING``: two replicas finding it at once make one row), a closed
  one is opened again (a new incident, owed a new message), and the open incidents of the rules
  evaluated that were not found are closed.
* :func:`claim` leases the open incidents owed a message to one sender: never notified since
  they opened, owed by a round that failed for some targets, or notified longer than their
  rule's cool-down ago (rules without a cool-down are told once). The pick is
  ``FOR UPDATE SKIP LOCKED`` plus a lease, like :mod:`klingwatch.store.leases`, so N replicas
  on one PostgreSQL send one message; a sender that dies mid-round lets its lease expire and
  the message is sent by someone else.
* :func:`finish` records the round: every target reached (``notified_at``), or the targets
  still owed (tried again on the next round).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, false, or_, select, update

from klingwatch.store.intents import dialect_insert
from klingwatch.store.schema import incidents

__all__ = ["IncidentRecord", "Sighting", "claim", "finish", "observe", "records"]

#: Keys per ``IN (...)`` list.
_CHUNK = 400


@dataclass(frozen=True, slots=True)
class Sighting:
    """A rule found its condition true for ``subject`` now; ``title``/``message`` say it."""

    rule: str
    subject: str
    title: str
    message: str


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """One incident row, as read."""

    id: int
    rule: str
    subject: str
    title: str
    message: str
    opened_at: float
    seen_at: float
    closed_at: float | None
    notified_at: float | None
    notifications: int
    #: Targets the current round still owes (``None``: no round half done).
    pending_targets: list[str] | None

    @property
    def open(self) -> bool:
        return self.closed_at is None


def observe(
    conn: Connection, rules: Sequence[str], sightings: Sequence[Sighting], now: float
) -> tuple[list[int], list[int]]:
    """Record one round of ``rules``: open (or reopen) every sighting, refresh its text, close
    the incidents of ``rules`` that were not sighted. Returns ``(opened ids, closed ids)``."""
    opened: list[int] = []
    for s in sightings:
        key = and_(incidents.c.rule == s.rule, incidents.c.subject == s.subject)
        inserted = conn.execute(
            dialect_insert(conn, incidents)
            .values(
                rule=s.rule,
                subject=s.subject,
                title=s.title,
                message=s.message,
                opened_at=now,
                seen_at=now,
            )
            .on_conflict_do_nothing(index_elements=["rule", "subject"])
            .returning(incidents.c.id)
        ).scalar()
        reopened = conn.execute(
            update(incidents)
            .where(key, incidents.c.closed_at.is_not(None))
            .values(
                closed_at=None,
                opened_at=now,
                notified_at=None,
                pending_targets=None,
                lease_owner=None,
                lease_until=None,
            )
        )
        conn.execute(
            update(incidents).where(key).values(title=s.title, message=s.message, seen_at=now)
        )
        if inserted is not None or reopened.rowcount:
            found = conn.scalar(select(incidents.c.id).where(key))
            if found is not None:
                opened.append(int(found))
    seen = {(s.rule, s.subject) for s in sightings}
    stale = [
        row.id
        for row in conn.execute(
            select(incidents.c.id, incidents.c.rule, incidents.c.subject).where(
                incidents.c.rule.in_(list(rules)), incidents.c.closed_at.is_(None)
            )
        )
        if (row.rule, row.subject) not in seen
    ]
    for start in range(0, len(stale), _CHUNK):
        conn.execute(
            update(incidents)
            .where(incidents.c.id.in_(stale[start : start + _CHUNK]))
            .values(closed_at=now, lease_owner=None, lease_until=None)
        )
    return opened, stale


def claim(
    conn: Connection,
    now: float,
    *,
    owner: str,
    lease_seconds: float,
    cooldowns: Mapping[str, float | None],
    limit: int = 100,
) -> list[IncidentRecord]:
    """Lease to ``owner`` the open incidents of the rules in ``cooldowns`` that are owed a
    message now (see the module docstring); ``None`` as a cool-down: told once."""
    again = [
        and_(incidents.c.rule == rule, incidents.c.notified_at <= now - seconds)
        for rule, seconds in cooldowns.items()
        if seconds is not None
    ]
    owed = or_(
        incidents.c.notified_at.is_(None),
        incidents.c.pending_targets.is_not(None),
        *again,
    )
    free = or_(
        incidents.c.lease_until.is_(None),
        incidents.c.lease_until <= now,
        incidents.c.lease_owner == owner,
    )
    rules = list(cooldowns)
    pick = (
        select(incidents.c.id)
        .where(
            incidents.c.rule.in_(rules) if rules else false(),
            incidents.c.closed_at.is_(None),
            owed,
            free,
        )
        .order_by(incidents.c.id)
        .limit(min(limit, _CHUNK))
        .with_for_update(skip_locked=True)
    )
    ids = list(conn.scalars(pick))
    if not ids:
        return []
    conn.execute(
        update(incidents)
        .where(incidents.c.id.in_(ids))
        .values(lease_owner=owner, lease_until=now + lease_seconds)
    )
    return _select(conn, incidents.c.id.in_(ids))


def finish(
    conn: Connection, incident_id: int, *, owner: str, now: float, owed: Sequence[str]
) -> bool:
    """Record ``owner``'s round for one incident: ``owed`` lists the targets still owed (empty:
    every target got it). ``False`` when the lease was lost meanwhile (nothing recorded)."""
    values: dict[str, Any] = {"lease_owner": None, "lease_until": None}
    if owed:
        values["pending_targets"] = list(owed)
    else:
        values.update(
            pending_targets=None, notified_at=now, notifications=incidents.c.notifications + 1
        )
    done = conn.execute(
        update(incidents)
        .where(incidents.c.id == incident_id, incidents.c.lease_owner == owner)
        .values(**values)
    )
    return bool(done.rowcount)


def records(
    conn: Connection, *, rule: str | None = None, open_only: bool = False
) -> list[IncidentRecord]:
    """Incidents, oldest first: of one ``rule``, and only the open ones if asked."""
    clauses = []
    if rule is not None:
        clauses.append(incidents.c.rule == rule)
    if open_only:
        clauses.append(incidents.c.closed_at.is_(None))
    return _select(conn, and_(*clauses) if clauses else None)


def _select(conn: Connection, where: Any) -> list[IncidentRecord]:
    query = select(incidents).order_by(incidents.c.id)
    if where is not None:
        query = query.where(where)
    return [
        IncidentRecord(
            id=r["id"],
            rule=r["rule"],
            subject=r["subject"],
            title=r["title"],
            message=r["message"],
            opened_at=r["opened_at"],
            seen_at=r["seen_at"],
            closed_at=r["closed_at"],
            notified_at=r["notified_at"],
            notifications=r["notifications"],
            pending_targets=None if r["pending_targets"] is None else list(r["pending_targets"]),
        )
        for r in conn.execute(query).mappings()
    ]
