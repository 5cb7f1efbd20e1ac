"""The create policy: what the submitter does with each create's answer, and when it may send.

What an answer *means* is decided by the pure table :func:`klingwatch.kling.outcomes.create_outcome`
(shared with :meth:`KlingClient.create_and_wait`). This module turns each of its actions into the
ledger changes and waits that follow:

==============  ==================================================================================
action          what happens
==============  ==================================================================================
CREATED         ``submitted`` with Kling's ``task_id``; the backoff streaks reset
REJECT          ``rejected`` with Kling's reason; never sent again on its own
LOOK_UP         ``unknown``; :class:`~klingwatch.monitor.recovery.Recovery` looks it up by
                external id before anything is sent again
WAIT_FOR_SLOT   stays ``queued``; the family's slot limit is learned (N in use means the limit is
                N); when nothing was learned (slots held by work klingwatch does not track), the
                family backs off
BACK_OFF        stays ``queued``; every create waits (exponential, jittered, ``Retry-After``
                honoured)
PAUSE           stays ``queued``; every create stops until ``klingwatch resume`` (a 1102 may lift
                by itself after ``resume_after_1102``), with an alert saying why
GIVE_UP         ``rejected``, with an alert: the task was sent ``max_sends`` times and never found
==============  ==================================================================================

The pause and learned limits live in the ledger (:mod:`klingwatch.monitor.gates`), so they hold
across restarts and replicas; the backoff gates are this process's own.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from klingwatch.clock import Clock
from klingwatch.kling.errors import RateLimited
from klingwatch.kling.models import Task
from klingwatch.kling.outcomes import (
    LOOKUP_MISS,
    MAX_CREATE_SENDS,
    CreateAction,
    CreateOutcome,
    create_outcome,
)
from klingwatch.kling.retry import Backoff
from klingwatch.monitor import gates
from klingwatch.monitor.observe import observe_create
from klingwatch.monitor.slots import Slots
from klingwatch.store import Change, LocalStatus, Observation, Source, TaskRecord
from klingwatch.store.async_ledger import AsyncLedger

__all__ = ["CREATE_BACKOFF", "GIVE_UP_ALERT", "CreatePolicy", "SubmitterStats"]

logger = logging.getLogger(__name__)

#: Alert kind raised when a task was given up after ``max_sends`` unconfirmed sends.
GIVE_UP_ALERT = "creates_given_up"
#: How long creates wait after a refusal that may pass (1302, 5001, an unlearnable 1303) and a
#: failed lookup waits before the next: 1-2 s, 2-4 s, ... up to 60-120 s.
CREATE_BACKOFF = Backoff(initial=2.0, cap=120.0)


@dataclass(slots=True)
class SubmitterStats:
    """Counters of what the submitter did (creates by outcome, lookups by outcome)."""

    creates: int = 0
    created: int = 0
    rejected: int = 0
    concurrency_limited: int = 0
    rate_limited: int = 0
    deferred: int = 0
    ambiguous: int = 0
    given_up: int = 0
    pauses: int = 0
    orphans: int = 0
    lookups: int = 0
    found: int = 0
    not_found: int = 0
    lookup_errors: int = 0
    #: Tasks a budget cap kept from being sent (counted each time one is held back).
    held: int = 0

    def __str__(self) -> str:
        return (
            f"creates={self.creates} created={self.created} rejected={self.rejected} "
            f"1303={self.concurrency_limited} 1302={self.rate_limited} "
            f"ambiguous={self.ambiguous} given_up={self.given_up} orphans={self.orphans} "
            f"lookups={self.lookups} found={self.found} not_found={self.not_found} "
            f"held={self.held}"
        )


@dataclass(slots=True)
class _Gate:
    """A family's (or everyone's) "not before" time, and how many waits in a row led there."""

    not_before: float = 0.0
    streak: int = 0


class CreatePolicy:
    """Acts on create outcomes and keeps the backoff gates (see the module docstring).

    Durations are nominal seconds on ``clock``. ``on_change`` hears every status change made.
    """

    def __init__(
        self,
        *,
        ledger: AsyncLedger,
        clock: Clock,
        slots: Slots,
        stats: SubmitterStats,
        resume_after_1102: float | None = None,
        max_sends: int = MAX_CREATE_SENDS,
        backoff: Backoff = CREATE_BACKOFF,
        rng: random.Random | None = None,
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.slots = slots
        self.stats = stats
        self.resume_after_1102 = resume_after_1102
        self.max_sends = max_sends
        self.backoff_rule = backoff
        self._rng = rng or random.Random()
        self._gates: dict[str, _Gate] = {}
        self._everyone = _Gate()
        #: Set by a PAUSE during a pass: nothing more is sent until the next pass reads the flag.
        self.stopped = False
        self.changes: list[Change] = []

    # -- when sending may happen ---------------------------------------------------------------
    def open_for(self, family: str, now: float) -> bool:
        """Whether ``family`` may send now (no backoff of its own or of everyone pending)."""
        return not self.stopped and now >= max(
            self._everyone.not_before, self._gate(family).not_before
        )

    def next_open(self) -> float | None:
        """Clock time when the earliest backoff ends, if one is pending."""
        now = self.clock.time()
        ends = [g.not_before for g in (self._everyone, *self._gates.values()) if g.not_before > now]
        return min(ends, default=None)

    async def pause_state(self) -> gates.PauseState | None:
        """The pause in force, after lifting one whose auto-resume time has come."""
        state = await self.ledger.read(gates.pause_state)
        if state is None or state.resume_at is None or self.clock.time() < state.resume_at:
            return state
        await self.ledger.write(gates.resume)
        logger.info("auto-resumed submissions after %s s: %s", state.resume_after, state.reason)
        return None

    # -- after a send ----------------------------------------------------------------------------
    async def settle(
        self, task: TaskRecord, answer: Task | BaseException, *, sends: int
    ) -> CreateOutcome:
        """Record what ``answer`` (the created task, or what the create raised) means for
        ``task``; ``sends`` counts its sends that may have created it, this one included."""
        outcome = create_outcome(answer, sends=sends, max_sends=self.max_sends)
        action = outcome.action
        now = self.clock.time()
        if action is CreateAction.CREATED:
            assert isinstance(answer, Task)
            self.stats.created += 1
            self._gate(task.family).streak = 0
            self._everyone.streak = 0
            await self.apply(observe_create(answer, local_id=task.local_id, at=now))
        elif action is CreateAction.REJECT:
            await self.reject(task, outcome.kling_message or outcome.reason, detail=outcome.reason)
        elif action is CreateAction.LOOK_UP:
            self.stats.ambiguous += 1
            await self.apply(_unknown(task, now, outcome.reason))
            logger.info("create of %s is ambiguous (%s)", task.external_task_id, outcome.reason)
        elif action is CreateAction.WAIT_FOR_SLOT:
            await self._slot_refused(task, outcome, now)
        elif action is CreateAction.BACK_OFF:
            if isinstance(answer, RateLimited):
                self.stats.rate_limited += 1
            else:
                self.stats.deferred += 1
            self._everyone.streak += 1
            self._everyone.not_before = now + self.clock.scaled(
                self.backoff(self._everyone.streak, outcome.retry_after)
            )
            logger.info("create of %s deferred: %s", task.external_task_id, outcome.reason)
        elif action is CreateAction.PAUSE:
            await self._pause(outcome, now, code=getattr(answer, "code", None))
        else:  # RESEND and GIVE_UP answer lookups, not sends
            raise AssertionError(f"{action} is not an answer to a send")
        return outcome

    async def lookup_missed(self, task: TaskRecord, *, sends: int) -> CreateOutcome:
        """A trusted lookup found no task with ``task``'s external id: requeue it to be sent
        again, or give it up once it was sent ``max_sends`` times (rejected, with an alert)."""
        outcome = create_outcome(LOOKUP_MISS, sends=sends, max_sends=self.max_sends)
        now = self.clock.time()
        if outcome.action is CreateAction.GIVE_UP:
            self.stats.given_up += 1
            await self.reject(task, outcome.reason, detail=outcome.reason)
            await self.ledger.add_alert(
                GIVE_UP_ALERT, f"gave up on {task.external_task_id}: {outcome.reason}", now
            )
            logger.warning("gave up on %s: %s", task.external_task_id, outcome.reason)
            return outcome
        self.stats.not_found += 1
        await self.apply(
            Observation(
                status=LocalStatus.QUEUED,
                source=Source.RECOVERY,
                at=now,
                local_id=task.local_id,
                detail=f"{outcome.reason}; may be sent again",
            )
        )
        return outcome

    async def reject(self, task: TaskRecord, reason: str, *, detail: str | None = None) -> None:
        """``task`` is refused for good: ``rejected`` with ``reason``."""
        self.stats.rejected += 1
        await self.apply(
            Observation(
                status=LocalStatus.REJECTED,
                source=Source.CREATE,
                at=self.clock.time(),
                local_id=task.local_id,
                status_msg=reason,
                detail=detail or reason,
            )
        )
        logger.info("task %s rejected: %s", task.external_task_id, reason)

    async def apply(self, obs: Observation) -> Change | None:
        """Pass ``obs`` through the ledger's door, keeping status changes for the engine."""
        change = await self.ledger.apply(obs)
        if change is not None and change.status_changed:
            self.changes.append(change)
        return change

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Nominal seconds before the next try after ``attempt`` waits in a row."""
        return self.backoff_rule.delay(attempt, self._rng.random(), retry_after)

    def _gate(self, family: str) -> _Gate:
        return self._gates.setdefault(family, _Gate())

    async def _slot_refused(self, task: TaskRecord, outcome: CreateOutcome, now: float) -> None:
        self.stats.concurrency_limited += 1
        # Creates sent alongside this one (by any replica) may have taken slots before it
        # arrived; this one still counts among them until its lease is released.
        in_flight = await self.slots.in_use(task.family, now) - task.slot_cost
        limit = await self.slots.learn(task.family, in_flight)
        gate = self._gate(task.family)
        gate.streak += 1
        if in_flight <= 0 or (limit is not None and in_flight < limit):
            # Slots held by work klingwatch does not track: nothing to learn, back off.
            gate.not_before = now + self.clock.scaled(
                self.backoff(gate.streak, outcome.retry_after)
            )
        logger.info(
            "1303 for %s with %d %s slots in use; limit now %s",
            task.external_task_id,
            in_flight,
            task.family,
            limit,
        )

    async def _pause(self, outcome: CreateOutcome, now: float, *, code: object) -> None:
        self.stats.pauses += 1
        self.stopped = True
        kling_code = code if isinstance(code, int) else None
        after = self.resume_after_1102 if kling_code == 1102 else None
        state = gates.PauseState(
            reason=outcome.reason,
            at=now,
            code=kling_code,
            # kept in clock seconds, so any process reading the flag agrees on when
            resume_after=None if after is None else self.clock.scaled(after),
        )
        await self.ledger.write(gates.pause, state)


def _unknown(task: TaskRecord, now: float, detail: str) -> Observation:
    return Observation(
        status=LocalStatus.UNKNOWN,
        source=Source.CREATE,
        at=now,
        local_id=task.local_id,
        detail=detail,
    )
