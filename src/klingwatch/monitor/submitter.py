"""The submitter: sends queued tasks to Kling while a concurrency slot is free, never twice.

Submitting is where money is spent, so every step is ordered to survive a crash at any moment:

1. A task is in the ledger as ``queued`` (committed by ``submit``) before anything is sent.
2. Before its create leaves, the task is **claimed** (a lease, so two replicas never send the same
   task) and **marked sending** (``sent_at``, ``send_attempts + 1``), both committed.
3. The create carries the task's ``external_task_id`` (and ``callback_url``). What its answer
   means is one pure table (:mod:`klingwatch.kling.outcomes`); what follows from it (rejected,
   unknown, learned slot limits, backoff, a pause) is the create policy's
   (:mod:`klingwatch.monitor.create_policy`); how many slots are free is :mod:`.slots`'.
4. **Recovery** (:mod:`klingwatch.monitor.recovery`): an ``unknown`` task is looked up by its
   external id before anything is sent again. **A create is never sent for an ``unknown`` task.**
5. **Restart**: a ``queued`` task with ``send_attempts > 0`` whose last answer this process did not
   see (its create may have left just before the process died) is an *orphan*: once its lease has
   run out it is turned ``unknown`` and looked up like any other before it can be sent again.
   Only tasks whose "not created" is known (a refusal this process saw, or a recovery lookup that
   found nothing since the last send, by anyone) are resent without one.

This module is the loop that claims and sends. The engine runs it as its submitter worker
(``Monitor(submitter=Submitter(...))``): after each sweep, which may have seen tasks end and slots
free, :meth:`Submitter.run_once` makes one pass and returns the status changes it caused.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Any, Protocol

from klingwatch.clock import Clock
from klingwatch.errors import KlingwatchError
from klingwatch.kling.models import Task
from klingwatch.kling.outcomes import MAX_CREATE_SENDS, CreateAction
from klingwatch.kling.products import Family
from klingwatch.monitor import gates
from klingwatch.monitor.create_policy import CreatePolicy, SubmitterStats
from klingwatch.monitor.recovery import LookupClient, Recovery, ambiguous_sends
from klingwatch.monitor.replica import DEFAULT_LEASE_SECONDS, kept, lease_span, replica_id
from klingwatch.monitor.slots import Slots
from klingwatch.settings import Settings
from klingwatch.store import Change, LocalStatus, Observation, Source, TaskRecord
from klingwatch.store.async_ledger import AsyncLedger

__all__ = ["SubmitClient", "Submitter", "SubmitterStats", "slot_limits", "unknown_limit_batch"]

logger = logging.getLogger(__name__)

#: Statuses of tasks that hold a slot on Kling's side for sure.
_HOLDING = (LocalStatus.SUBMITTED, LocalStatus.PROCESSING)


def unknown_limit_batch(created: int, concurrency: int) -> int:
    """Creates sent at once while the account's slot limit is unknown (no 1303 seen yet).

    One at first, one more per 100 tasks created without a 1303, up to ``concurrency``: a batch
    that meets the limit costs at most its size less two 1303 answers beyond the one that
    teaches the limit, under 1% of the creates sent so far; and a large account is not held to
    one create per round trip while it never fills (10000 tasks on 500 slots would be).
    """
    return max(1, min(concurrency, 1 + created // 100))


class SubmitClient(LookupClient, Protocol):
    """What the submitter needs of :class:`klingwatch.kling.client.KlingClient`."""

    async def create(
        self,
        product: str,
        request: Mapping[str, Any],
        *,
        external_task_id: str | None = None,
        callback_url: str | None = None,
    ) -> Task: ...


def slot_limits(settings: Settings) -> dict[str, int]:
    """The slot limits configured per pack family (``KLINGWATCH_SLOTS_VIDEO``, ...)."""
    given = {
        Family.VIDEO: settings.slots_video,
        Family.IMAGE: settings.slots_image,
        Family.TRY_ON: settings.slots_try_on,
    }
    return {family.value: n for family, n in given.items() if n}


class Submitter:
    """Sends queued tasks when slots are free; recovers ambiguous creates; survives restarts.

    ``slots`` maps a pack family (``video``, ``image``, ``try_on``) to the account's concurrency
    limit when known in advance (a lower learned one wins; a family with neither is probed one
    create at a time until the first 1303 teaches it). Once a family's limit is known, up to
    ``create_concurrency`` creates go out at once, never more than the free slots; a pass sends
    at most ``max_pass_creates`` so the engine's status sweeps run between passes. An ambiguous
    create is first looked up ``lookup_delay`` seconds after it was sent, and a "not found" is
    believed only ``not_found_after`` seconds after the send (Kling may not show a task it has
    just created). ``max_sends`` caps the sends that may have created one task. ``lease`` is
    how long a claim lasts unless renewed (it is, while its creates are on the wire). While
    work waits for a slot, the tasks holding the slots are looked at at least every
    ``slot_watch`` seconds (``None``: leave it to the cadence).
    Times are nominal seconds on ``clock``.
    """

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        client: SubmitClient,
        ledger: AsyncLedger,
        clock: Clock,
        callback_url: str | None = None,
        owner: str | None = None,
    ) -> Submitter:
        """The submitter as ``submit``, ``watch``, ``serve`` and ``demo`` run it, with the
        engine's replica id as ``owner``."""
        return cls(
            client=client,
            ledger=ledger,
            clock=clock,
            slots=slot_limits(settings),
            resume_after_1102=settings.resume_after_1102,
            callback_url=callback_url,
            create_concurrency=settings.max_concurrency,
            lease=settings.lease_seconds,
            owner=owner,
        )

    def __init__(
        self,
        *,
        client: SubmitClient,
        ledger: AsyncLedger,
        clock: Clock,
        slots: Mapping[str, int] | None = None,
        resume_after_1102: float | None = None,
        callback_url: str | None = None,
        create_concurrency: int = 1,
        max_pass_creates: int = 100,
        max_sends: int = MAX_CREATE_SENDS,
        lookup_delay: float = 5.0,
        not_found_after: float = 30.0,
        lease: float = DEFAULT_LEASE_SECONDS,
        slot_watch: float | None = 2.0,
        owner: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.clock = clock
        #: Sent with every create whose task has no ``callback_url`` of its own (``serve``).
        self.callback_url = callback_url
        self.create_concurrency = max(1, create_concurrency)
        self.max_pass_creates = max(1, max_pass_creates)
        self.lease = lease
        self.slot_watch = slot_watch
        self.owner = owner or replica_id()
        self.stats = SubmitterStats()
        self.slots = Slots(ledger, slots)
        self.policy = CreatePolicy(
            ledger=ledger,
            clock=clock,
            slots=self.slots,
            stats=self.stats,
            resume_after_1102=resume_after_1102,
            max_sends=max_sends,
            rng=rng,
        )
        # Tasks whose last send is known to have created nothing (a refusal seen here, or a
        # lookup that found nothing): local id -> the send attempt it covers. Valid only while
        # the row's send_attempts still says so (another replica may have sent it since).
        self._cleared: dict[int, int] = {}
        self.recovery = Recovery(
            client=client,
            ledger=ledger,
            clock=clock,
            policy=self.policy,
            cleared=self._cleared.__setitem__,
            lookup_delay=lookup_delay,
            not_found_after=not_found_after,
        )
        self._orphans_checked = False
        self._watched: dict[str, float] = {}
        self._pass_left = self.max_pass_creates
        #: creates sent by the last :meth:`run_once`
        self.last_sent = 0

    def __repr__(self) -> str:
        return f"Submitter(owner={self.owner!r}, {self.stats})"

    async def slot_limit(self, family: str) -> int | None:
        """The slot limit in force for ``family`` now (setting, or learned from a 1303)."""
        await self.slots.refresh()
        return self.slots.limit(family)

    # -- the engine's worker protocol --------------------------------------------------------
    async def run_once(self) -> list[Change]:
        """One pass: recover what is unknown, then send what the free slots allow.

        Returns the status changes it caused (the engine reports them); :attr:`last_sent` says
        how many creates were sent.
        """
        self.last_sent = 0
        self._pass_left = self.max_pass_creates
        await self._adopt_orphans()
        await self.recovery.run()
        # A raised cap or a refused task may have made room for tasks a cap held.
        if await self.ledger.held_count():
            await self.ledger.review_holds()
        # The pause and the learned limits are read once a pass: another process may change them.
        self.policy.stopped = await self.policy.pause_state() is not None
        await self.slots.refresh()
        if not self.policy.stopped and await self.ledger.queued(limit=1):
            for family in Family:  # served in the registry's order
                if self.policy.stopped:
                    break
                if await self.ledger.queued(family=family.value, limit=1):
                    self.last_sent += await self._send_family(family.value)
        changes, self.policy.changes = self.policy.changes, []
        return changes

    def busy(self) -> bool:
        """True while a lookup of an ambiguous create is pending."""
        return self.recovery.pending

    def next_due(self) -> float | None:
        """Clock time when this worker next has something to do (a backoff ends, a lookup)."""
        due = [t for t in (self.policy.next_open(), self.recovery.next_due()) if t is not None]
        return min(due, default=None)

    async def paused(self) -> gates.PauseState | None:
        """Why sending is paused, or ``None``."""
        return await self.ledger.read(gates.pause_state)

    # -- claim and send ----------------------------------------------------------------------
    async def _send_family(self, family: str) -> int:
        sent = 0
        while self._pass_left > 0 and self.policy.open_for(family, self.clock.time()):
            batch = await self._claim(family)
            if not batch:
                await self._watch_slots(family)
                break
            # Marked sending together (one transaction, which also checks the batches' budget
            # caps) before any of them leaves; a task a cap holds stays queued, unsent. The
            # leases outlive the creates however long they take, and stop when this process dies.
            claim = await self.ledger.mark_sending([t.local_id for t in batch], self.clock.time())
            if claim.held:
                self.stats.held += len(claim.held)
                await self.ledger.release(claim.held, owner=self.owner)
            marked = set(claim.marked)
            batch = [t for t in batch if t.local_id in marked]
            ids = [t.local_id for t in batch]
            async with kept(
                self.ledger, self.clock, ids, owner=self.owner, lease_seconds=self.lease
            ):
                await asyncio.gather(*(self._send(task) for task in batch))
            sent += len(batch)
            self._pass_left -= len(batch)
        return sent

    async def _claim(self, family: str) -> list[TaskRecord]:
        """The next tasks of ``family`` to create at once, oldest first, that fit the free
        slots together: up to ``create_concurrency``; while the limit is unknown, as many as
        :func:`unknown_limit_batch` allows.

        The free slots are counted in the ledger, across every replica, in the claim's own
        transaction (:meth:`~klingwatch.store.Ledger.claim_to_send`). Orphans met on the way are
        turned ``unknown`` instead (they then hold a slot), and the claim goes on past them.
        """
        while True:
            most = min(self.create_concurrency, self._pass_left)
            limit = self.slots.limit(family)
            if limit is None:
                most = unknown_limit_batch(self.stats.created, most)
            if most <= 0:
                return []
            now = self.clock.time()
            claimed = await self.ledger.claim_to_send(
                now,
                owner=self.owner,
                lease_seconds=lease_span(self.clock, self.lease),
                family=family,
                slot_limit=limit,
                most=most,
            )
            batch: list[TaskRecord] = []
            orphans: list[int] = []
            for task in claimed:
                if task.send_attempts > 0 and not await self._is_cleared(task):
                    await self._orphan(task, now)
                    orphans.append(task.local_id)
                else:
                    batch.append(task)
            if orphans:
                await self.ledger.release(orphans, owner=self.owner)
            if batch or not orphans:
                return batch

    async def _send(self, task: TaskRecord) -> None:
        """Send one claimed task, already marked sending, and settle its answer."""
        self._cleared.pop(task.local_id, None)
        self.stats.creates += 1
        answer: Task | BaseException
        try:
            answer = await self.client.create(
                task.product,
                task.request,
                external_task_id=task.external_task_id,
                callback_url=task.callback_url or self.callback_url,
            )
        except Exception as exc:  # every failure is an answer the table knows how to read
            if not isinstance(exc, KlingwatchError):
                logger.exception("create of task %s failed unexpectedly", task.local_id)
            answer = exc
        try:
            outcome = await self.policy.settle(
                task, answer, sends=await self._ambiguous_sends(task)
            )
        finally:
            # Until here the task counted as a create on the wire in every replica's claim.
            await self.ledger.release([task.local_id], owner=self.owner)
        if outcome.action is CreateAction.LOOK_UP:
            self.recovery.schedule(task, answered=True)
        elif outcome.action.created_nothing:
            # ``task`` was read before mark_sending counted this attempt.
            self._cleared[task.local_id] = task.send_attempts + 1

    async def _ambiguous_sends(self, task: TaskRecord) -> int:
        """This send, plus the earlier sends of ``task`` Kling answered ambiguously."""
        if task.send_attempts == 0:
            return 1
        return 1 + ambiguous_sends(await self.ledger.events(task.local_id))

    async def _watch_slots(self, family: str) -> None:
        """Work is waiting for a slot of ``family``: have the engine look at the tasks holding
        them at least every ``slot_watch`` seconds, so a freed slot is seen (and refilled) soon.

        With an API key the engine reads every active task in one request, so this costs about
        one request per ``slot_watch`` while the account is saturated.
        """
        if self.slot_watch is None:
            return
        now = self.clock.time()
        # Once per half interval is enough: the sweeps in between reschedule only what they read.
        if now < self._watched.get(family, float("-inf")) + self.clock.scaled(self.slot_watch) / 2:
            return
        if not await self.ledger.queued(family=family, limit=1):
            return
        self._watched[family] = now
        soon = now + self.clock.scaled(self.slot_watch)
        holding = await self.ledger.tasks(status=_HOLDING, limit=100_000)
        looks = [
            (task.local_id, soon)
            for task in holding
            if task.family == family and (task.next_look_at is None or task.next_look_at > soon)
        ]
        if looks:
            await self.ledger.schedule(looks)

    # -- orphans: sent by a process that never saw the answer --------------------------------
    async def _adopt_orphans(self) -> None:
        """Once per process: every queued task sent before without a known answer becomes
        ``unknown`` before anything is sent, so the slot count includes them."""
        if self._orphans_checked:
            return
        self._orphans_checked = True
        now = self.clock.time()
        for task in await self.ledger.queued(limit=1_000_000):
            if task.send_attempts == 0 or await self._is_cleared(task):
                continue
            if task.lease_owner not in (None, self.owner) and (task.lease_until or 0.0) > now:
                continue  # a live replica is sending it right now
            await self._orphan(task, now)

    async def _is_cleared(self, task: TaskRecord) -> bool:
        """Is it known that the last send of ``task`` created nothing?

        Either this process saw the refusal (1303, 1302, ...), or the task's last event is a
        recovery lookup that found nothing after it was last sent (by anyone, before a restart).
        """
        if self._cleared.get(task.local_id) == task.send_attempts:
            return True
        events = await self.ledger.events(task.local_id)
        last = events[-1] if events else None
        return (
            last is not None
            and last.to_status is LocalStatus.QUEUED
            and last.source is Source.RECOVERY
            and (task.sent_at is None or last.at >= task.sent_at)
        )

    async def _orphan(self, task: TaskRecord, now: float) -> None:
        """A task sent by a process that never saw the answer: look it up before anything else."""
        self.stats.orphans += 1
        logger.info(
            "task %s (%s) was sent before without an answer this process saw; looking it up "
            "by external_task_id before any resend",
            task.local_id,
            task.external_task_id,
        )
        await self.policy.apply(
            Observation(
                status=LocalStatus.UNKNOWN,
                source=Source.RECOVERY,
                at=now,
                local_id=task.local_id,
                detail="sent before without a recorded answer (klingwatch may have stopped "
                "mid-send): look it up by external_task_id before any resend",
            )
        )
        self.recovery.schedule(task, answered=False)
