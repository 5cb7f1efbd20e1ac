"""Recovery: learning what became of creates whose answer was lost, before anything is resent.

A create that answered 5000/5002, timed out, lost its connection, answered garbage or "external id
already used", and a create a dead process sent without recording the answer, leave their task
``unknown``. :class:`Recovery` looks each one up by its ``external_task_id``:

* with an API key, 20 at a time (``GET /tasks?external_task_ids=``), falling back to single
  lookups for good if the server refuses that style;
* else one ``get_by_external_id`` each.

Found: the task's real status is applied (source ``recovery``). Not found, once the send is old
enough (``not_found_after``; Kling may not show a task it created a moment ago): back to
``queued`` (source ``recovery``), and the submitter may send it again. Lookup failed: the task stays
``unknown`` and is tried again with backoff. Nothing here ever sends a create.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from klingwatch.clock import Clock
from klingwatch.kling.errors import (
    AuthenticationError,
    ConfigurationError,
    KlingError,
    NotFound,
    PermissionDenied,
    TaskNotFound,
)
from klingwatch.kling.models import Task
from klingwatch.monitor import gates
from klingwatch.monitor.observe import observe_task
from klingwatch.store import Change, Ledger, LocalStatus, Observation, Source, TaskRecord

__all__ = ["LookupClient", "Recovery", "RecoveryStats", "RecoveryWorker"]

logger = logging.getLogger(__name__)

#: Answers meaning "this server does not serve the /tasks style to these credentials".
_STYLE_REFUSED = (AuthenticationError, PermissionDenied, NotFound, ConfigurationError)
#: Kling accepts at most this many ids per ``/tasks?external_task_ids=`` call.
_MANY = 20


class LookupClient(Protocol):
    """What recovery needs of :class:`klingwatch.kling.client.KlingClient`."""

    @property
    def has_api_key(self) -> bool: ...

    async def get_by_external_id(self, product: str, external_task_id: str) -> Task: ...

    async def get_many_by_external_id(self, ids: Sequence[str]) -> dict[str, Task]: ...


@dataclass(slots=True)
class RecoveryStats:
    """Lookups by outcome."""

    lookups: int = 0
    found: int = 0
    not_found: int = 0
    lookup_errors: int = 0


@dataclass(slots=True)
class _Retry:
    """When a task's next lookup is due, and how many failed so far."""

    at: float
    failures: int = 0


class Recovery:
    """Looks ``unknown`` tasks up by external id and applies what it learns.

    ``apply`` is the ledger's door (the submitter's, which also collects the changes);
    ``cleared(local_id, send_attempts)`` hears of every task found never to have been created
    (safe to send again without another lookup, as long as nobody has sent it since);
    ``backoff(attempt, retry_after)`` gives nominal seconds.
    """

    def __init__(
        self,
        *,
        client: LookupClient,
        ledger: Ledger,
        clock: Clock,
        apply: Callable[[Observation], Change | None],
        cleared: Callable[[int, int], None],
        backoff: Callable[[int, float | None], float],
        stats: RecoveryStats,
        lookup_delay: float = 5.0,
        not_found_after: float = 30.0,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.clock = clock
        self._apply = apply
        self._cleared = cleared
        self._backoff = backoff
        self.stats = stats
        self.lookup_delay = lookup_delay
        self.not_found_after = not_found_after
        self._retries: dict[int, _Retry] = {}
        self._tasks_refused = False

    @property
    def pending(self) -> bool:
        """True while some task this process knows of waits for a lookup."""
        return bool(self._retries)

    def next_due(self) -> float | None:
        """Clock time of the earliest lookup due, if any."""
        return min((r.at for r in self._retries.values()), default=None)

    def schedule(self, task: TaskRecord, *, answered: bool) -> None:
        """Look ``task`` up soon: ``lookup_delay`` after now when this process just saw its
        ambiguous answer, else (an orphan) ``lookup_delay`` after it was sent."""
        now = self.clock.time()
        base = now if answered or task.sent_at is None else task.sent_at
        self._retries[task.local_id] = _Retry(
            at=max(now, base + self.clock.scaled(self.lookup_delay))
        )

    async def run(self) -> int:
        """Look up every ``unknown`` task that is due; return how many were resolved."""
        now = self.clock.time()
        due: list[TaskRecord] = []
        unknown = self.ledger.tasks(status=LocalStatus.UNKNOWN, limit=100_000)
        # Tasks resolved by someone else (the engine's poller, a callback) need no lookup.
        still = {t.local_id for t in unknown}
        for local_id in [i for i in self._retries if i not in still]:
            del self._retries[local_id]
        for task in unknown:
            retry = self._retries.get(task.local_id)
            if retry is None:
                # Unknown before this process started (or marked by someone else): give any
                # create still on its way time to land before trusting a "not found".
                sent_at = task.sent_at if task.sent_at is not None else now
                retry = self._retries[task.local_id] = _Retry(
                    at=max(now, sent_at + self.clock.scaled(self.lookup_delay))
                )
            if retry.at <= now:
                due.append(task)
        if not due:
            return 0
        if self.client.has_api_key and not self._tasks_refused:
            return await self._recover_many(due)
        resolved = 0
        for task in due:
            resolved += await self._recover_one(task)
        return resolved

    async def _recover_one(self, task: TaskRecord) -> int:
        self.stats.lookups += 1
        try:
            found = await self.client.get_by_external_id(task.product, task.external_task_id)
        except TaskNotFound:
            self._missing(task)
            return 1
        except KlingError as exc:
            self._lookup_failed(task, exc)
            return 0
        self._found(task, found)
        return 1

    async def _recover_many(self, due: list[TaskRecord]) -> int:
        resolved = 0
        for start in range(0, len(due), _MANY):
            chunk = due[start : start + _MANY]
            self.stats.lookups += 1
            try:
                found = await self.client.get_many_by_external_id(
                    [t.external_task_id for t in chunk]
                )
            except _STYLE_REFUSED as exc:
                # This server (or key) does not serve /tasks: look up one by one from now on.
                logger.info("GET /tasks refused (%s); looking tasks up one by one", exc)
                self._tasks_refused = True
                for task in due[start:]:
                    resolved += await self._recover_one(task)
                return resolved
            except KlingError as exc:
                for task in chunk:
                    self._lookup_failed(task, exc)
                continue
            for task in chunk:
                hit = found.get(task.external_task_id)
                if hit is None:
                    self._missing(task)
                else:
                    self._found(task, hit)
                resolved += 1
        return resolved

    def _found(self, task: TaskRecord, found: Task) -> None:
        self.stats.found += 1
        self._retries.pop(task.local_id, None)
        self._apply(
            observe_task(
                found,
                source=Source.RECOVERY,
                at=self.clock.time(),
                local_id=task.local_id,
                detail="found by external_task_id after an ambiguous create",
            )
        )

    def _missing(self, task: TaskRecord) -> None:
        now = self.clock.time()
        sent = task.sent_at if task.sent_at is not None else task.queued_at
        trusted_from = sent + self.clock.scaled(self.not_found_after)
        if now < trusted_from:
            # Kling may not show a task it has just created: ask again once "not found" means it.
            self._retries[task.local_id] = _Retry(at=trusted_from)
            return
        self.stats.not_found += 1
        self._retries.pop(task.local_id, None)
        change = self._apply(
            Observation(
                status=LocalStatus.QUEUED,
                source=Source.RECOVERY,
                at=self.clock.time(),
                local_id=task.local_id,
                detail="not found by external_task_id: it was never created; may be sent again",
            )
        )
        if change is not None and change.status_changed and change.new is LocalStatus.QUEUED:
            self._cleared(task.local_id, task.send_attempts)

    def _lookup_failed(self, task: TaskRecord, exc: KlingError) -> None:
        self.stats.lookup_errors += 1
        retry = self._retries.setdefault(task.local_id, _Retry(at=0.0))
        retry.failures += 1
        retry.at = self.clock.time() + self.clock.scaled(
            self._backoff(retry.failures, getattr(exc, "retry_after", None))
        )
        logger.warning("lookup of %s failed (%s); will try again", task.external_task_id, exc)


class RecoveryWorker:
    """:class:`Recovery` as an engine worker, for an engine that runs no submitter.

    With a submitter, the submitter runs recovery itself (it must know which tasks it may send
    again); without one (``watch --batch``, an engine that only follows), this worker looks up
    ``unknown`` tasks the same way, so there is one implementation of the lookup rules.
    """

    def __init__(
        self,
        *,
        client: LookupClient,
        ledger: Ledger,
        clock: Clock,
        rng: random.Random | None = None,
        not_found_after: float = 30.0,
    ) -> None:
        self._changes: list[Change] = []
        self._rng = rng or random.Random()
        self.ledger = ledger
        self.stats = RecoveryStats()
        self.recovery = Recovery(
            client=client,
            ledger=ledger,
            clock=clock,
            apply=self._apply,
            # Nothing here resends: a task found never created simply waits, queued, for one.
            cleared=lambda local_id, attempts: None,
            backoff=self._backoff,
            stats=self.stats,
            not_found_after=not_found_after,
        )

    async def run_once(self) -> list[Change]:
        """Look up every ``unknown`` task that is due; the status changes that caused."""
        await self.recovery.run()
        changes, self._changes = self._changes, []
        return changes

    def busy(self) -> bool:
        return self.recovery.pending

    def _apply(self, obs: Observation) -> Change | None:
        change = self.ledger.apply(obs)
        if change is not None and change.status_changed:
            self._changes.append(change)
        return change

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        return gates.backoff_delay(
            attempt, base=2.0, cap=120.0, rng=self._rng, retry_after=retry_after
        )
