"""Recovery: learning what became of creates whose answer was lost, before anything is resent.

A create that answered 5000/5002, timed out, lost its connection, answered garbage or "external id
already used", and a create a dead process sent without recording the answer, leave their task
``unknown``. :class:`Recovery` looks each one up by its ``external_task_id``:

* through ``GET /tasks?external_task_ids=`` (20 a request) while the client may use the
  new-standard ``/tasks`` style (an API key the server has not refused);
* else one ``get_by_external_id`` each.

Found: the task's real status is applied (source ``recovery``). Not found, once the send is old
enough (``not_found_after``; Kling may not show a task it created a moment ago): the create
policy decides (:meth:`CreatePolicy.lookup_missed
<klingwatch.monitor.create_policy.CreatePolicy.lookup_missed>`): back to ``queued``, to be sent
again, or, after ``max_sends`` such sends, given up. Lookup failed: the task stays ``unknown``
and is tried again with backoff. Nothing here ever sends a create.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from klingwatch.clock import Clock
from klingwatch.errors import KlingwatchError
from klingwatch.kling.client import MAX_IDS_PER_CALL
from klingwatch.kling.errors import TaskNotFound, TasksStyleRefused
from klingwatch.kling.models import Task
from klingwatch.kling.outcomes import CreateAction
from klingwatch.monitor.create_policy import CreatePolicy
from klingwatch.monitor.observe import observe_task
from klingwatch.store import Change, EventRecord, LocalStatus, Source, TaskRecord
from klingwatch.store.async_ledger import AsyncLedger

__all__ = ["LookupClient", "Recovery", "RecoveryWorker", "ambiguous_sends"]

logger = logging.getLogger(__name__)


class LookupClient(Protocol):
    """What recovery needs of :class:`klingwatch.kling.client.KlingClient`."""

    @property
    def tasks_api(self) -> bool: ...

    async def get_by_external_id(self, product: str, external_task_id: str) -> Task: ...

    async def get_many_by_external_id(self, ids: Sequence[str]) -> dict[str, Task]: ...


def ambiguous_sends(timeline: Sequence[EventRecord]) -> int:
    """How many sends of a task Kling answered ambiguously (5000, a timeout, a garbled answer):
    its moves to ``unknown`` made by a create's answer. What the send cap counts.

    Sends a killed process never saw answered are not counted: Kling said nothing about them,
    and the lookup that follows each one either finds the task or proves nothing was created
    (a process crashing over and over must not turn a task into ``rejected``). Stuck notes, which
    stay in ``unknown``, are not moves."""
    return sum(
        1
        for e in timeline
        if e.to_status is LocalStatus.UNKNOWN
        and e.from_status is not LocalStatus.UNKNOWN
        and e.source is Source.CREATE
    )


@dataclass(slots=True)
class _Retry:
    """When a task's next lookup is due, and how many failed so far."""

    at: float
    failures: int = 0


class Recovery:
    """Looks ``unknown`` tasks up by external id and applies what it learns.

    ``policy`` records what each lookup means (its ``apply`` collects the status changes);
    ``cleared(local_id, send_attempts)`` hears of every task found never to have been created
    (safe to send again without another lookup, as long as nobody has sent it since).
    """

    def __init__(
        self,
        *,
        client: LookupClient,
        ledger: AsyncLedger,
        clock: Clock,
        policy: CreatePolicy,
        cleared: Callable[[int, int], None] = lambda local_id, attempts: None,
        lookup_delay: float = 5.0,
        not_found_after: float = 30.0,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.clock = clock
        self.policy = policy
        self.stats = policy.stats
        self._cleared = cleared
        self.lookup_delay = lookup_delay
        self.not_found_after = not_found_after
        self._retries: dict[int, _Retry] = {}

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
        unknown = await self.ledger.tasks(status=LocalStatus.UNKNOWN, limit=100_000)
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
        if self.client.tasks_api:
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
            await self._missing(task)
            return 1
        except KlingwatchError as exc:  # Kling failed, or the lookup cannot be made yet
            self._lookup_failed(task, exc)
            return 0
        await self._found(task, found)
        return 1

    async def _recover_many(self, due: list[TaskRecord]) -> int:
        resolved = 0
        for start in range(0, len(due), MAX_IDS_PER_CALL):
            chunk = due[start : start + MAX_IDS_PER_CALL]
            self.stats.lookups += 1
            try:
                found = await self.client.get_many_by_external_id(
                    [t.external_task_id for t in chunk]
                )
            except TasksStyleRefused:
                # The client now knows: look up one by one from here on.
                for task in due[start:]:
                    resolved += await self._recover_one(task)
                return resolved
            except KlingwatchError as exc:
                for task in chunk:
                    self._lookup_failed(task, exc)
                continue
            for task in chunk:
                hit = found.get(task.external_task_id)
                if hit is None:
                    await self._missing(task)
                else:
                    await self._found(task, hit)
                resolved += 1
        return resolved

    async def _found(self, task: TaskRecord, found: Task) -> None:
        self.stats.found += 1
        self._retries.pop(task.local_id, None)
        await self.policy.apply(
            observe_task(
                found,
                source=Source.RECOVERY,
                at=self.clock.time(),
                local_id=task.local_id,
                detail="found by external_task_id after an ambiguous create",
            )
        )

    async def _missing(self, task: TaskRecord) -> None:
        now = self.clock.time()
        sent = task.sent_at if task.sent_at is not None else task.queued_at
        trusted_from = sent + self.clock.scaled(self.not_found_after)
        if now < trusted_from:
            # Kling may not show a task it has just created: ask again once "not found" means it.
            self._retries[task.local_id] = _Retry(at=trusted_from)
            return
        self._retries.pop(task.local_id, None)
        sends = ambiguous_sends(await self.ledger.events(task.local_id))
        outcome = await self.policy.lookup_missed(task, sends=sends)
        if outcome.action is CreateAction.RESEND:
            self._cleared(task.local_id, task.send_attempts)

    def _lookup_failed(self, task: TaskRecord, exc: KlingwatchError) -> None:
        self.stats.lookup_errors += 1
        retry = self._retries.setdefault(task.local_id, _Retry(at=0.0))
        retry.failures += 1
        retry.at = self.clock.time() + self.clock.scaled(
            self.policy.backoff(retry.failures, getattr(exc, "retry_after", None))
        )
        logger.warning("lookup of %s failed (%s); will try again", task.external_task_id, exc)


class RecoveryWorker:
    """:class:`Recovery` as an engine worker, for an engine that runs no submitter.

    With a submitter, the submitter runs recovery itself (it must know which tasks it may send
    again); without one (``watch --batch``, an engine that only follows), this worker looks up
    ``unknown`` tasks the same way, so there is one implementation of the lookup rules. A task
    found never created simply waits, queued, for a submitter.
    """

    def __init__(
        self,
        *,
        client: LookupClient,
        ledger: AsyncLedger,
        clock: Clock,
        policy: CreatePolicy,
        not_found_after: float = 30.0,
    ) -> None:
        self.policy = policy
        self.recovery = Recovery(
            client=client,
            ledger=ledger,
            clock=clock,
            policy=policy,
            not_found_after=not_found_after,
        )

    async def run_once(self) -> list[Change]:
        """Look up every ``unknown`` task that is due; the status changes that caused."""
        await self.recovery.run()
        changes, self.policy.changes = self.policy.changes, []
        return changes

    def busy(self) -> bool:
        return self.recovery.pending

    def next_due(self) -> float | None:
        return self.recovery.next_due()
