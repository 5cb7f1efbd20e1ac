"""The ledger's side of alerts and outbound events, kept apart from the task ledger proper.

:class:`NotifyLedger` is a base of :class:`~klingwatch.store.Ledger`: its methods run the SQL of
:mod:`klingwatch.store.incidents` (one message per alert condition, claimed atomically) and
:mod:`klingwatch.store.outbox` (status changes owed to the events receiver) in the ledger's
transactions, plus the few reads the alert rules need.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Connection

from klingwatch.store import incidents, outbox, reads
from klingwatch.store.incidents import IncidentRecord, Sighting
from klingwatch.store.outbox import OutboundEvent
from klingwatch.store.records import Source

__all__ = ["NotifyLedger"]

_T = TypeVar("_T")


class NotifyLedger:
    """Incidents, the outbox and the reads of the alert rules (see the module docstring)."""

    if TYPE_CHECKING:  # provided by Ledger

        def _write(self, work: Callable[[Connection], _T]) -> _T: ...

        def _read(self, work: Callable[[Connection], _T]) -> _T: ...

        def meta_default(self, key: str, value: str) -> str: ...

    # -- incidents (one message per alert condition) ----------------------------------------
    def observe_incidents(
        self, rules: Sequence[str], sightings: Sequence[Sighting], at: float
    ) -> tuple[list[int], list[int]]:
        """Record what one round of ``rules`` found (see :func:`klingwatch.store.incidents.
        observe`): ``(ids opened, ids closed)``."""
        found = list(sightings)
        return self._write(lambda conn: incidents.observe(conn, list(rules), found, at))

    def claim_incidents(
        self,
        now: float,
        *,
        owner: str,
        lease_seconds: float,
        cooldowns: dict[str, float | None],
        limit: int = 100,
    ) -> list[IncidentRecord]:
        """Lease the open incidents owed a message to ``owner`` (one sender per message across
        replicas; :func:`klingwatch.store.incidents.claim`)."""
        return self._write(
            lambda conn: incidents.claim(
                conn,
                now,
                owner=owner,
                lease_seconds=lease_seconds,
                cooldowns=cooldowns,
                limit=limit,
            )
        )

    def finish_incident(
        self, incident_id: int, *, owner: str, at: float, owed: Sequence[str] = ()
    ) -> bool:
        """Record a round of messages: ``owed`` lists the targets it did not reach."""
        left = list(owed)
        return self._write(
            lambda conn: incidents.finish(conn, incident_id, owner=owner, now=at, owed=left)
        )

    def incidents(
        self, *, rule: str | None = None, open_only: bool = False
    ) -> list[IncidentRecord]:
        """Incidents (of one rule; only open ones if asked), oldest first."""
        return self._read(lambda conn: incidents.records(conn, rule=rule, open_only=open_only))

    def batch_last_finish(self) -> dict[str, float]:
        """Per batch, when its latest task finish was learned."""
        return self._read(reads.batch_last_finish)

    def batch_units(self, names: Iterable[str]) -> dict[str, list[str]]:
        """Per batch, the units charged to its tasks (decimal strings)."""
        wanted = list(names)
        return self._read(lambda conn: reads.batch_units(conn, wanted))

    def finishes_by_source(self, since: float) -> dict[Source, int]:
        """Finishes since ``since`` of tasks sent with a callback URL, by reporting source."""
        return self._read(lambda conn: reads.finishes_by_source(conn, since))

    # -- the outbox (events owed to KLINGWATCH_EVENTS_URL) ------------------------------------

    def enable_outbox(self) -> None:
        """From now on every status change is also owed to the outbound receiver."""
        self.meta_default(outbox.OUTBOX_META, "on")

    def claim_outbound(
        self, now: float, *, owner: str, lease_seconds: float, limit: int = 100
    ) -> list[OutboundEvent]:
        """Lease owed events that are due to ``owner``, oldest first (replicas share them)."""
        return self._write(
            lambda conn: outbox.claim(
                conn, now, owner=owner, lease_seconds=lease_seconds, limit=limit
            )
        )

    def outbound_delivered(self, event_ids: Iterable[int], *, owner: str) -> None:
        """These events reached the receiver: owed no more."""
        ids = sorted(set(event_ids))
        if ids:
            self._write(lambda conn: outbox.delivered(conn, ids, owner=owner))

    def outbound_failed(self, event_id: int, *, owner: str, next_at: float, error: str) -> None:
        """A delivery failed: try again at ``next_at``."""
        self._write(
            lambda conn: outbox.failed(conn, event_id, owner=owner, next_at=next_at, error=error)
        )

    def outbox_pending(self) -> tuple[int, float | None]:
        """``(events owed, when the soonest is due)``."""
        return self._read(outbox.pending)
