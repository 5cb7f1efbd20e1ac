"""The submitter: sends queued tasks to Kling while a concurrency slot is free, never twice.

Submitting is where money is spent, so every step is ordered to survive a crash at any moment:

1. A task is in the ledger as ``queued`` (committed by ``submit``) before anything is sent.
2. Before its create leaves, the task is **claimed** (a lease, so two replicas never send the same
   task) and **marked sending** (``sent_at``, ``send_attempts + 1``), both committed.
3. The create carries the task's ``external_task_id`` (and ``callback_url``). Its answer goes
   through the ledger's one door (:mod:`klingwatch.monitor.observe`):

   * created: ``submitted`` with Kling's ``task_id``;
   * 1200-1203, 1300/1301: ``rejected`` with the reason, never sent again on its own;
   * 1303 (slots busy): stays ``queued``; the account's slot limit is learned (N in flight means
     the limit is N) and not exceeded afterwards; sent again when a slot frees;
   * 1302 (rate limit), 5001 (maintenance), a connection refused before sending: stays ``queued``
     with backoff (exponential, jittered, ``Retry-After`` honoured);
   * 1000-1002, 1100-1103, 1304: every create pauses (:mod:`klingwatch.monitor.gates`), an alert
     says why, nothing is lost; ``klingwatch resume`` (or, for 1102, an optional delay) resumes;
   * 5000/5002, timeouts, dropped connections, garbage, "external id already used": ``unknown``.

4. **Recovery** (:mod:`klingwatch.monitor.recovery`): an ``unknown`` task is looked up by its
   external id. Found: its real status is applied. Not found, once the send is old enough for
   Kling to show the task: back to ``queued``, so it may be sent again. Lookup failed: stays
   ``unknown``, tried again with backoff. **A create is never sent for an ``unknown`` task.**

5. **Restart**: a ``queued`` task with ``send_attempts > 0`` whose last answer this process did not
   see (its create may have left just before the process died) is an *orphan*: once its lease has
   run out it is turned ``unknown`` and looked up like any other before it can be sent again.
   Only tasks whose "not created" is known (a refusal this process saw: 1303, 1302, 5001; or a
   recovery lookup that found nothing since the last send, by anyone) are resent without one.

The engine runs it as its submitter worker (``Monitor(submitter=Submitter(...))``): after each
sweep, which may have seen tasks end and slots free, :meth:`Submitter.run_once` makes one pass and
returns the status changes it caused. :meth:`Submitter.run` is a stand-alone loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from klingwatch.clock import Clock
from klingwatch.kling.errors import (
    AccountError,
    AuthenticationError,
    ConcurrencyLimited,
    ConfigurationError,
    KlingError,
    PermissionDenied,
    RateLimited,
    RequestValidationError,
)
from klingwatch.kling.models import Task
from klingwatch.kling.products import Family
from klingwatch.monitor import gates
from klingwatch.monitor.observe import observe_create, observe_create_error
from klingwatch.monitor.recovery import LookupClient, Recovery, RecoveryStats
from klingwatch.monitor.retries import retry_external_id, retry_task
from klingwatch.settings import Settings
from klingwatch.store import Change, Ledger, LocalStatus, Observation, Source, TaskRecord

__all__ = [
    "SubmitClient",
    "Submitter",
    "SubmitterStats",
    "retry_external_id",
    "retry_task",
    "slot_limits",
]

logger = logging.getLogger(__name__)

_FAMILIES: tuple[str, ...] = tuple(f.value for f in Family)
#: Errors that stop every create until an operator acts (credentials, account, permission, setup).
_PAUSING = (AuthenticationError, AccountError, PermissionDenied, ConfigurationError)
#: Statuses of tasks that hold a slot on Kling's side for sure.
_HOLDING = (LocalStatus.SUBMITTED, LocalStatus.PROCESSING)


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
        "video": settings.slots_video,
        "image": settings.slots_image,
        "try_on": settings.slots_try_on,
    }
    return {family: n for family, n in given.items() if n}


@dataclass(slots=True)
class SubmitterStats(RecoveryStats):
    """Counters of what the submitter did (creates by outcome, lookups by outcome)."""

    creates: int = 0
    created: int = 0
    rejected: int = 0
    concurrency_limited: int = 0
    rate_limited: int = 0
    deferred: int = 0
    ambiguous: int = 0
    pauses: int = 0
    orphans: int = 0

    def __str__(self) -> str:
        return (
            f"creates={self.creates} created={self.created} rejected={self.rejected} "
            f"1303={self.concurrency_limited} 1302={self.rate_limited} "
            f"ambiguous={self.ambiguous} orphans={self.orphans} lookups={self.lookups} "
            f"found={self.found} not_found={self.not_found}"
        )


@dataclass(slots=True)
class _Gate:
    """A family's (or everyone's) "not before" time after 1302/1303/5001, and its streak."""

    not_before: float = 0.0
    streak: int = 0


class Submitter:
    """Sends queued tasks when slots are free; recovers ambiguous creates; survives restarts.

    ``slots`` maps a pack family (``video``, ``image``, ``try_on``) to the account's concurrency
    limit when known in advance; a limit learned from a 1303 (kept in the ledger) is used when
    lower, and a family with neither is probed until the first 1303 teaches its limit.
    ``resume_after_1102`` (seconds) lets a 1102 pause lift by itself. An ambiguous create is
    first looked up ``lookup_delay`` seconds after it was sent, and a "not found" is believed
    (the task sent again) only ``not_found_after`` seconds after it was sent, since Kling may not
    show a task it has just created. ``lease`` must outlast one create request. While work
    waits for a slot, the tasks holding the slots are looked at at least every ``slot_watch``
    seconds (``None``: leave it to the cadence). Times are nominal seconds on ``clock``.
    """

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        client: SubmitClient,
        ledger: Ledger,
        clock: Clock,
        callback_url: str | None = None,
    ) -> Submitter:
        """The submitter as ``submit``, ``watch``, ``serve`` and ``demo`` run it."""
        return cls(
            client=client,
            ledger=ledger,
            clock=clock,
            slots=slot_limits(settings),
            resume_after_1102=settings.resume_after_1102,
            callback_url=callback_url,
            create_concurrency=settings.max_concurrency,
        )

    def __init__(
        self,
        *,
        client: SubmitClient,
        ledger: Ledger,
        clock: Clock,
        slots: Mapping[str, int] | None = None,
        resume_after_1102: float | None = None,
        callback_url: str | None = None,
        create_concurrency: int = 1,
        max_pass_creates: int = 100,
        backoff_base: float = 2.0,
        backoff_cap: float = 120.0,
        lookup_delay: float = 5.0,
        not_found_after: float = 30.0,
        lease: float = 120.0,
        idle_interval: float = 5.0,
        slot_watch: float | None = 2.0,
        owner: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.clock = clock
        self.slots = {k: int(v) for k, v in (slots or {}).items() if v}
        self.resume_after_1102 = resume_after_1102
        #: Sent with every create whose task has no ``callback_url`` of its own (``serve``).
        self.callback_url = callback_url
        #: Creates in flight at once when the slot limit is known (while it is not, one at a
        #: time, so the first 1303 teaches the limit exactly).
        self.create_concurrency = max(1, create_concurrency)
        #: Creates one pass may send: the engine's status sweeps run between passes, so a
        #: thousand free slots do not keep it from looking at anything for minutes.
        self.max_pass_creates = max(1, max_pass_creates)
        self._pass_left = self.max_pass_creates
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.lease = lease
        self.idle_interval = idle_interval
        self.slot_watch = slot_watch
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.stats = SubmitterStats()
        self._rng = rng or random.Random()
        # Tasks whose last send this process saw refused ("not created"): resendable as they are.
        # local id -> the send attempt whose "not created" is known; valid only while the row's
        # send_attempts still says so (another replica may have sent it since).
        self._cleared: dict[int, int] = {}
        self._gates: dict[str, _Gate] = {}
        self._everyone = _Gate()
        self._wake = asyncio.Event()
        self._changes: list[Change] = []
        self._orphans_checked = False
        self._limits: dict[str, int | None] = {}
        self._stop_sending = False
        self._watched: dict[str, float] = {}
        # Slots held by creates in flight from this process (not yet active in the ledger).
        self._sending: dict[str, int] = {}
        #: creates sent by the last :meth:`run_once`
        self.last_sent = 0
        self.recovery = Recovery(
            client=client,
            ledger=ledger,
            clock=clock,
            apply=self._apply,
            cleared=self._cleared.__setitem__,
            backoff=self._backoff,
            stats=self.stats,
            lookup_delay=lookup_delay,
            not_found_after=not_found_after,
        )

    def __repr__(self) -> str:
        return f"Submitter(owner={self.owner!r}, {self.stats})"

    # -- limits ----------------------------------------------------------------------------------
    def slot_limit(self, family: str) -> int | None:
        """The slot limit in force for ``family``: the lower of the setting and the learned one."""
        return self._read_limit(family)

    def _read_limit(self, family: str) -> int | None:
        known = [v for v in (self.slots.get(family), gates.learned_slots(self.ledger, family)) if v]
        return min(known) if known else None

    def free_slots(self, family: str) -> int | None:
        """Slots of ``family`` free now by the ledger's count (``None``: limit not known yet)."""
        if family not in self._limits:
            self._limits[family] = self._read_limit(family)
        limit = self._limits[family]
        if limit is None:
            return None
        return max(0, limit - self.ledger.active_count(family))

    # -- the engine's hooks ----------------------------------------------------------------------
    def wake(self) -> None:
        """Ask :meth:`run` for a pass now (a task turned final, so a slot may be free)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Pass after pass until ``stop`` is set; sleeps on the clock between passes."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            await self.run_once()
            self._wake.clear()
            delay = self.next_pass_in()
            sleeper = asyncio.ensure_future(self.clock.sleep(delay))
            waker = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({sleeper, waker, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for fut in (sleeper, waker, stopper):
                    fut.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await fut

    def next_pass_in(self) -> float:
        """Nominal seconds until something is due (a backoff ends, a lookup, an auto-resume)."""
        now = self.clock.time()
        per_second = self.clock.scaled(1.0) or 1.0
        waits = [g.not_before - now for g in (self._everyone, *self._gates.values())]
        lookup = self.recovery.next_due()
        if lookup is not None:
            waits.append(lookup - now)
        paused = gates.pause_state(self.ledger)
        if paused is not None and paused.resume_at is not None:
            waits.append(paused.resume_at - now)
        # Clock times are wall seconds; a scaled clock sleeps nominal ones.
        nominal = [w / per_second for w in waits if w > 0]
        return min([self.idle_interval, *nominal])

    def _later(self, seconds: float) -> float:
        """The clock time ``seconds`` nominal seconds from now."""
        return self.clock.time() + self.clock.scaled(seconds)

    async def run_once(self) -> list[Change]:
        """One pass: recover what is unknown, then send what the free slots allow.

        Returns the status changes it caused (the engine reports them); :attr:`last_sent` says
        how many creates were sent.
        """
        self._changes = []
        self.last_sent = 0
        self._pass_left = self.max_pass_creates
        self._adopt_orphans()
        await self.recovery.run()
        # The flag and the learned limits are read once a pass (another process may change
        # them); this process's own changes are tracked as it makes them.
        self._limits = {}
        self._stop_sending = self._paused()
        waiting = {t.family for t in self.ledger.queued(limit=1)} if not self._stop_sending else ()
        for family in _FAMILIES:
            if self._stop_sending or not waiting:
                break
            if family in waiting or self.ledger.queued(family=family, limit=1):
                self.last_sent += await self._send_family(family)
        changes, self._changes = self._changes, []
        return changes

    def busy(self) -> bool:
        """True while a lookup of an ambiguous create is pending."""
        return self.recovery.pending

    def paused(self) -> gates.PauseState | None:
        """Why sending is paused, or ``None``."""
        return gates.pause_state(self.ledger)

    def _apply(self, obs: Observation) -> Change | None:
        change = self.ledger.apply(obs)
        if change is not None and change.status_changed:
            self._changes.append(change)
        return change

    # -- sending ---------------------------------------------------------------------------------
    def _paused(self) -> bool:
        state = gates.pause_state(self.ledger)
        if state is None:
            return False
        if state.resume_at is not None and self.clock.time() >= state.resume_at:
            gates.resume(self.ledger)
            logger.info("auto-resumed submissions after %s s: %s", state.resume_after, state.reason)
            return False
        return True

    def _gate(self, family: str) -> _Gate:
        return self._gates.setdefault(family, _Gate())

    async def _send_family(self, family: str) -> int:
        sent = 0
        while True:
            now = self.clock.time()
            if now < self._everyone.not_before or now < self._gate(family).not_before:
                return sent
            if self._pass_left <= 0:
                return sent  # more next pass, after the engine's sweep
            batch = self._claim_batch(family, now)
            if not batch:
                self._watch_slots(family, now)
                return sent
            if len(batch) == 1:
                await self._send(batch[0])
            else:
                await asyncio.gather(*(self._send(task) for task in batch))
            sent += len(batch)
            self._pass_left -= len(batch)
            if self._stop_sending:
                return sent

    def _claim_batch(self, family: str, now: float) -> list[TaskRecord]:
        """The next tasks to create at once, oldest first, that fit the free slots together.

        One while the slot limit is unknown; up to ``create_concurrency`` once it is known.
        """
        first = self._next_sendable(family, now)
        most = min(self.create_concurrency, self._pass_left)
        if first is None or most == 1:
            return [] if first is None else [first]
        free = self.free_slots(family)
        if free is None:
            return [first]
        free -= first.slot_cost  # ``first`` is still queued: not in the ledger's count yet
        batch = [first]
        lease = self.clock.scaled(self.lease)
        # Our own leases count as free to us, so ``first`` comes back among these.
        claimed = self.ledger.claim_queued(
            now, owner=self.owner, lease_seconds=lease, family=family, limit=most
        )
        unused: list[int] = []
        for task in claimed:
            if task.local_id == first.local_id:
                continue
            if len(batch) >= most or free <= 0:
                unused.append(task.local_id)
            elif task.send_attempts > 0 and not self._is_cleared(task):
                self._orphan(task, now)  # now ``unknown``: it holds a slot
                unused.append(task.local_id)
                free -= task.slot_cost
            elif task.slot_cost > free:
                free = 0  # keep the order: the next pass starts with this one
                unused.append(task.local_id)
            else:
                batch.append(task)
                free -= task.slot_cost
        if unused:
            self.ledger.release(unused, owner=self.owner)
        return batch

    def _next_sendable(self, family: str, now: float) -> TaskRecord | None:
        """The oldest queued task of ``family`` that fits the free slots, leased to this process.

        Orphans met on the way are turned ``unknown`` (for recovery) instead; they then count as
        in flight, so the free slots are counted again after each one.
        """
        lease = self.clock.scaled(self.lease)
        while True:
            free = self.free_slots(family)
            if free is not None and free <= 0:
                return None
            claimed = self.ledger.claim_queued(
                now, owner=self.owner, lease_seconds=lease, family=family, limit=1
            )
            if not claimed:
                return None
            task = claimed[0]
            if task.send_attempts > 0 and not self._is_cleared(task):
                self._orphan(task, now)
                self.ledger.release([task.local_id], owner=self.owner)
                continue
            if free is not None and task.slot_cost > free:
                # Keep the order: wait until the oldest task fits rather than jump the queue.
                self.ledger.release([task.local_id], owner=self.owner)
                return None
            return task

    def _watch_slots(self, family: str, now: float) -> None:
        """Work is waiting for a slot of ``family``: have the engine look at the tasks holding
        them at least every ``slot_watch`` seconds, so a freed slot is seen (and refilled) soon.

        With an API key the engine reads every active task in one request, so this costs about
        one request per ``slot_watch`` while the account is saturated.
        """
        if self.slot_watch is None:
            return
        # Once per half interval is enough: the engine's sweeps in between reschedule only the
        # tasks they looked at.
        if now < self._watched.get(family, 0.0) + self.clock.scaled(self.slot_watch) / 2:
            return
        if not self.ledger.queued(family=family, limit=1):
            return
        self._watched[family] = now
        soon = now + self.clock.scaled(self.slot_watch)
        looks = [
            (task.local_id, soon)
            for task in self.ledger.tasks(status=_HOLDING, limit=100_000)
            if task.family == family and (task.next_look_at is None or task.next_look_at > soon)
        ]
        if looks:
            self.ledger.schedule(looks)

    def _adopt_orphans(self) -> None:
        """Once per process: every queued task sent before without a known answer becomes
        ``unknown`` before anything is sent, so the slot count includes them."""
        if self._orphans_checked:
            return
        self._orphans_checked = True
        now = self.clock.time()
        for task in self.ledger.queued(limit=1_000_000):
            if task.send_attempts == 0 or self._is_cleared(task):
                continue
            if task.lease_owner not in (None, self.owner) and (task.lease_until or 0.0) > now:
                continue  # a live replica is sending it right now
            self._orphan(task, now)

    def _is_cleared(self, task: TaskRecord) -> bool:
        """Is it known that the last send of ``task`` created nothing?

        Either this process saw the refusal (1303, 1302, ...), or the task's last event is a
        recovery lookup that found nothing after it was last sent (by anyone, before a restart).
        """
        if self._cleared.get(task.local_id) == task.send_attempts:
            return True
        events = self.ledger.events(task.local_id)
        last = events[-1] if events else None
        return (
            last is not None
            and last.to_status is LocalStatus.QUEUED
            and last.source is Source.RECOVERY
            and (task.sent_at is None or last.at >= task.sent_at)
        )

    def _orphan(self, task: TaskRecord, now: float) -> None:
        """A task sent by a process that never saw the answer: look it up before anything else."""
        self.stats.orphans += 1
        logger.info(
            "task %s (%s) was sent before without an answer this process saw; looking it up "
            "by external_task_id before any resend",
            task.local_id,
            task.external_task_id,
        )
        self._apply(
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

    async def _send(self, task: TaskRecord) -> None:
        now = self.clock.time()
        self.ledger.mark_sending(task.local_id, now)
        self._cleared.pop(task.local_id, None)
        self.stats.creates += 1
        self._sending[task.family] = self._sending.get(task.family, 0) + task.slot_cost
        try:
            created = await self.client.create(
                task.product,
                task.request,
                external_task_id=task.external_task_id,
                callback_url=task.callback_url or self.callback_url,
            )
        except KlingError as exc:
            self._on_error(task, exc)
        except Exception as exc:
            # A bug or an unforeseen failure after the request may have left: assume it did.
            logger.exception("create of task %s failed unexpectedly", task.local_id)
            self._ambiguous(task, f"create failed unexpectedly: {exc!r}")
        else:
            self.stats.created += 1
            self._gate(task.family).streak = 0
            self._everyone.streak = 0
            self._apply(observe_create(created, local_id=task.local_id, at=self.clock.time()))
        finally:
            self._sending[task.family] -= task.slot_cost
            self.ledger.release([task.local_id], owner=self.owner)

    def _on_error(self, task: TaskRecord, exc: KlingError) -> None:
        now = self.clock.time()
        if isinstance(exc, RequestValidationError):
            # Caught before sending: nothing left, and it will not pass later either.
            self._reject(task, str(exc), now)
            return
        if isinstance(exc, ConcurrencyLimited):
            self.stats.concurrency_limited += 1
            self._not_created(task)
            # Creates sent alongside this one may have taken slots before it arrived.
            siblings = self._sending.get(task.family, 0) - task.slot_cost
            in_flight = self.ledger.active_count(task.family) + siblings
            limit = gates.learn_slots(self.ledger, task.family, in_flight)
            self._limits[task.family] = self._read_limit(task.family)
            gate = self._gate(task.family)
            gate.streak += 1
            if in_flight <= 0 or (limit is not None and in_flight < limit):
                # Slots held by work klingwatch does not track: nothing to learn, back off.
                gate.not_before = now + self.clock.scaled(
                    self._backoff(gate.streak, exc.retry_after)
                )
            logger.info(
                "1303 for %s with %d %s slots in flight; limit now %s",
                task.external_task_id,
                in_flight,
                task.family,
                limit,
            )
            return
        if isinstance(exc, _PAUSING):
            self.stats.pauses += 1
            self._stop_sending = True
            self._not_created(task)
            code = getattr(exc, "code", None)
            after = self.resume_after_1102 if code == 1102 else None
            gates.pause(
                self.ledger,
                gates.PauseState(
                    reason=str(exc),
                    at=now,
                    code=code,
                    # kept in clock seconds, so any process reading the flag agrees on when
                    resume_after=None if after is None else self.clock.scaled(after),
                ),
            )
            return
        obs = observe_create_error(exc, local_id=task.local_id, at=now)
        if obs is not None and obs.status is LocalStatus.UNKNOWN:
            self._ambiguous(task, obs.detail or str(exc), obs)
            return
        if obs is not None and obs.status is LocalStatus.REJECTED:
            self.stats.rejected += 1
            self._apply(obs)
            logger.info("task %s rejected: %s", task.external_task_id, exc)
            return
        # 1302, 5001, a refused connection, anything else that did not create the task.
        if isinstance(exc, RateLimited):
            self.stats.rate_limited += 1
        else:
            self.stats.deferred += 1
        self._not_created(task)
        self._everyone.streak += 1
        self._everyone.not_before = self._later(
            self._backoff(self._everyone.streak, getattr(exc, "retry_after", None))
        )
        logger.info("create of %s deferred: %s", task.external_task_id, exc)

    def _not_created(self, task: TaskRecord) -> None:
        # ``task`` was read before mark_sending counted this attempt.
        self._cleared[task.local_id] = task.send_attempts + 1

    def _reject(self, task: TaskRecord, reason: str, now: float) -> None:
        self.stats.rejected += 1
        self._apply(
            Observation(
                status=LocalStatus.REJECTED,
                source=Source.CREATE,
                at=now,
                local_id=task.local_id,
                status_msg=reason,
                detail=reason,
            )
        )

    def _ambiguous(self, task: TaskRecord, detail: str, obs: Observation | None = None) -> None:
        self.stats.ambiguous += 1
        now = self.clock.time()
        self._apply(
            obs
            or Observation(
                status=LocalStatus.UNKNOWN,
                source=Source.CREATE,
                at=now,
                local_id=task.local_id,
                detail=detail,
            )
        )
        self.recovery.schedule(task, answered=True)
        logger.info(
            "create of %s is ambiguous (%s); will look it up", task.external_task_id, detail
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        return gates.backoff_delay(
            attempt,
            base=self.backoff_base,
            cap=self.backoff_cap,
            rng=self._rng,
            retry_after=retry_after,
        )
