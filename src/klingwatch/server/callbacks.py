"""The callback receiver: ``POST /callbacks/kling/{token}``.

Kling posts a task object whenever a task it was given a ``callback_url`` for changes status. The
receiver answers fast and believes only what it may:

* a wrong token in the path answers 404, exactly as an unknown URL would, and records nothing;
* with ``KLINGWATCH_WEBHOOK_SECRET`` set, a missing, forged or stale Standard Webhooks signature
  answers 401 and records nothing;
* a body that is not a Kling task in any known form (legacy flat, enveloped, or the 2026 bare
  object) answers 400 with a JSON error and records nothing;
* everything else becomes an :class:`~klingwatch.store.Observation` (source ``callback``)
  passed to :meth:`Ledger.apply <klingwatch.store.Ledger.apply>`, whose rules make duplicates and
  late stale statuses harmless, and which keeps deliveries for unknown tasks as orphan events;
* except that an *unsigned* delivery claiming a final status for a task still in flight (or
  pairing a task with a Kling id the ledger has not seen for it) is not believed on its word:
  after answering 200 the receiver reads the task from Kling (once, or a few times a few seconds
  apart while Kling does not agree yet) and records what Kling says, not what the delivery said
  (``KLINGWATCH_TRUST_UNSIGNED_CALLBACKS`` skips this). Those reads are gathered for a moment
  (:class:`~klingwatch.monitor.gathered_reads.GatheredReads`): a burst of finishes is confirmed
  with one ``GET /tasks?task_ids=`` per 20, or one legacy list page, not one get each. Without a
  Kling client it asks the poller to look at the task now instead.

Every authentic delivery is also told to ``heard`` (the engine's poller, in ``serve``): while
callbacks arrive, polling reads only the tasks whose callback is overdue.

Answering fast: the receiver reads and writes through the async ledger, so a database that is
slow to give its write lock (another process holding SQLite's, a PostgreSQL row lock held by
another replica) never stops the event loop. A write that has not finished within
:data:`ACK_WITHIN` seconds is left to finish on its own and the delivery is answered 200 with
outcome ``recording``: Kling is not kept waiting (nor made to retry), and should this process die
before the write lands, the poller, the safety net, reads the task anyway.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from klingwatch.clock import Clock
from klingwatch.errors import KlingwatchError
from klingwatch.kling.client import KlingClient
from klingwatch.kling.errors import BadCallback, BadResponse, WebhookVerificationError
from klingwatch.kling.models import Task
from klingwatch.kling.webhooks import parse_callback, verify_signature
from klingwatch.monitor.gathered_reads import GatheredReads
from klingwatch.monitor.observe import observe_task
from klingwatch.store import Change, Observation, Source, TaskRecord
from klingwatch.store.async_ledger import AsyncLedger

__all__ = ["CallbackOutcome", "CallbackReceiver", "router"]

logger = logging.getLogger(__name__)


#: Seconds a delivery waits for its ledger write before it is answered anyway.
ACK_WITHIN = 0.05


class CallbackOutcome(StrEnum):
    """What became of one delivery (the ``outcome`` label of the deliveries counter)."""

    APPLIED = "applied"  # changed what the ledger knows
    RECORDING = "recording"  # answered before the ledger's write finished (it carries on)
    UNCHANGED = "unchanged"  # a duplicate or a late stale status: nothing changed
    ORPHAN = "orphan"  # no such task in the ledger: kept as an orphan event
    CONFIRMING = "confirming"  # unsigned final status: being confirmed with one get
    CONFIRMED = "confirmed"  # ... and Kling agreed
    REFUTED = "refuted"  # ... and Kling said otherwise (what Kling said was recorded)
    DEFERRED = "deferred"  # ... but no client or the get failed: the poller looks next
    WRONG_TOKEN = "wrong_token"
    BAD_SIGNATURE = "bad_signature"
    GARBLED = "garbled"


@dataclass
class CallbackReceiver:
    """Turns deliveries into observations; one per app.

    ``token`` is the secret path segment (:meth:`Operations.callback_token
    <klingwatch.operations.Operations.callback_token>`), asked for once, on the first delivery.
    """

    ledger: AsyncLedger
    clock: Clock
    token: Callable[[], Awaitable[str]]
    webhook_secret: str | None = None
    trust_unsigned: bool = False
    client: KlingClient | None = None
    #: Nominal seconds to wait before each confirming get (the first at once).
    confirm_delays: tuple[float, ...] = (0.0, 5.0, 20.0)
    #: Nominal seconds confirming reads are gathered before they are sent together.
    confirm_gather: float = 0.5
    count: Callable[[CallbackOutcome], None] = lambda outcome: None
    #: Told of every authentic delivery (the poller: callbacks are arriving).
    heard: Callable[[], None] = lambda: None

    _pending: set[asyncio.Task[CallbackOutcome]] = field(
        default_factory=set, init=False, repr=False
    )
    _writes: set[asyncio.Future[Any]] = field(default_factory=set, init=False, repr=False)
    _token: str | None = field(default=None, init=False, repr=False)
    _reads: GatheredReads | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.client is not None:
            self._reads = GatheredReads(self.client, self.clock, gather=self.confirm_gather)

    @property
    def confirm_requests(self) -> int:
        """Requests the confirming reads have sent."""
        return 0 if self._reads is None else self._reads.requests

    def start_confirm(self, record: TaskRecord, claimed: Task) -> None:
        """Confirm in a task of its own, so neither this answer nor the next delivery on the
        same connection waits for Kling."""
        job = asyncio.create_task(self.confirm(record, claimed), name=f"confirm-{claimed.id}")
        self._pending.add(job)
        job.add_done_callback(self._confirmed)

    def _confirmed(self, job: asyncio.Task[CallbackOutcome]) -> None:
        self._pending.discard(job)
        if not job.cancelled() and job.exception() is not None:
            logger.error("confirming a callback failed", exc_info=job.exception())

    async def drain(self) -> None:
        """Wait until every confirmation and ledger write in progress has ended."""
        while self._pending or self._writes:
            await asyncio.gather(*self._pending, *self._writes, return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel confirmations in progress (the poller reads those tasks anyway); let the
        ledger writes already handed over finish."""
        for job in list(self._pending):
            job.cancel()
        await asyncio.gather(*self._pending, *self._writes, return_exceptions=True)
        if self._reads is not None:
            await self._reads.aclose()

    async def token_matches(self, token: str) -> bool:
        if self._token is None:
            self._token = await self.token()
        return hmac.compare_digest(token.encode(), self._token.encode())

    async def record(self, obs: Observation) -> tuple[bool, Change | None]:
        """Pass ``obs`` through the ledger's door; ``(finished, change)``. Waits at most
        :data:`ACK_WITHIN` seconds: a write that takes longer carries on by itself."""
        write = asyncio.ensure_future(self.ledger.apply(obs))
        done, _ = await asyncio.wait({write}, timeout=ACK_WITHIN)
        if write in done:
            return True, write.result()
        self._writes.add(write)
        write.add_done_callback(self._written)
        logger.info("the ledger is slow to write; answered the callback before it finished")
        return False, None

    def _written(self, write: asyncio.Future[Any]) -> None:
        self._writes.discard(write)
        if not write.cancelled() and write.exception() is not None:
            logger.error("recording a callback failed", exc_info=write.exception())

    def verify(self, headers: dict[str, str], body: bytes) -> None:
        """Raise ``WebhookVerificationError`` unless the signature holds (when a secret is set)."""
        if self.webhook_secret is not None:
            verify_signature(self.webhook_secret, headers, body, now=self.clock.time())

    async def find(self, task: Task) -> TaskRecord | None:
        """The ledger row a delivery is about: by our external id, else by Kling's id."""
        if task.external_id:
            record = await self.ledger.task(task.external_id)
            if record is not None:
                return record
        return await self.ledger.task(task.id)

    async def accept(
        self, task: Task, *, signed: bool
    ) -> tuple[CallbackOutcome, TaskRecord | None]:
        """Record what may be believed at once; say whether a confirmation must follow."""
        now = self.clock.time()
        how = "signature verified" if signed else None
        record = await self.find(task)
        if record is None:
            # The ledger keeps it as an orphan event (not dropped): a task created elsewhere,
            # or a callback that outran the create answer.
            finished, _ = await self.record(
                observe_task(task, source=Source.CALLBACK, at=now, detail=how)
            )
            return (CallbackOutcome.ORPHAN if finished else CallbackOutcome.RECORDING), None
        # An unsigned delivery is taken on its word only when it cannot do harm: a progress
        # report about the Kling task already paired with this row. A final status, or a pairing
        # the ledger does not know yet (a forger could tie a queued task to another Kling id,
        # and the task would never be sent), is checked with Kling first.
        harmless = not task.is_terminal and record.task_id == task.id
        believe = signed or self.trust_unsigned or harmless or record.status.is_final
        if not believe:
            return CallbackOutcome.CONFIRMING, record
        finished, change = await self.record(
            observe_task(task, source=Source.CALLBACK, at=now, local_id=record.local_id, detail=how)
        )
        if not finished:
            return CallbackOutcome.RECORDING, record
        return (CallbackOutcome.APPLIED if change else CallbackOutcome.UNCHANGED), record

    async def confirm(self, record: TaskRecord, claimed: Task) -> CallbackOutcome:
        """Record what Kling says, not what the caller said.

        The task is read from Kling; while Kling does not report the claimed final status (a
        forgery, or Kling's reads lagging behind its callbacks) it is read again after each of
        :attr:`confirm_delays`, and whatever Kling said is recorded. A claim never confirmed
        leaves the task to the poller, which is asked to look at it now.
        """
        if self._reads is None:
            return await self._defer(record, "no Kling client to confirm with")
        failure: KlingwatchError | None = None
        said: Task | None = None
        for delay in self.confirm_delays:
            if delay:
                await self.clock.sleep(delay)
            current = await self.ledger.task(record.local_id)
            if current is not None and current.status.is_final:
                # Learned meanwhile (the poller, a later delivery): nothing left to confirm.
                self.count(CallbackOutcome.UNCHANGED)
                return CallbackOutcome.UNCHANGED
            try:
                said = await self._reads.get(record.product, claimed.id)
            except KlingwatchError as exc:
                failure = exc
                continue
            if said.id != record.task_id and said.external_id != record.external_task_id:
                # Kling's task by that id is some other task: the delivery paired them falsely.
                logger.warning(
                    "callback tied task %s to Kling task %s, which Kling says is %r's",
                    record.local_id,
                    said.id,
                    said.external_id,
                )
                self.count(CallbackOutcome.REFUTED)
                return CallbackOutcome.REFUTED
            if said.status == claimed.status or not claimed.is_terminal:
                # Recorded as Kling said it (results and reasons included), not as claimed.
                await self.ledger.apply(
                    observe_task(
                        said,
                        source=Source.CALLBACK,
                        at=self.clock.time(),
                        local_id=record.local_id,
                        detail="unsigned callback, confirmed by get",
                    )
                )
                self.count(CallbackOutcome.CONFIRMED)
                return CallbackOutcome.CONFIRMED
            await self.ledger.apply(
                observe_task(
                    said,
                    source=Source.GET,
                    at=self.clock.time(),
                    local_id=record.local_id,
                    detail=f"unsigned callback claimed {claimed.status}; get says {said.status}",
                )
            )
            if said.is_terminal:
                break  # Kling's own final status differs: recorded; the claim is false
        if said is None:
            return await self._defer(record, f"confirming get failed: {failure}")
        logger.warning(
            "unsigned callback claimed task %s is %s; Kling says %s",
            claimed.id,
            claimed.status,
            said.status,
        )
        if not said.is_terminal:
            await self.ledger.schedule([(record.local_id, self.clock.time())])
        self.count(CallbackOutcome.REFUTED)
        return CallbackOutcome.REFUTED

    async def _defer(self, record: TaskRecord, why: str) -> CallbackOutcome:
        logger.warning("task %s: %s; the poller will look at it next", record.local_id, why)
        await self.ledger.schedule([(record.local_id, self.clock.time())])
        self.count(CallbackOutcome.DEFERRED)
        return CallbackOutcome.DEFERRED


router = APIRouter()


def _refuse(status_code: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status_code)


@router.post("/callbacks/kling/{token}", include_in_schema=False)
async def kling_callback(token: str, request: Request) -> JSONResponse:
    """Receive one Kling callback (see the module docstring for what is believed)."""
    receiver: CallbackReceiver = request.app.state.klingwatch.callbacks
    if not await receiver.token_matches(token):
        receiver.count(CallbackOutcome.WRONG_TOKEN)
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    body = await request.body()
    try:
        receiver.verify(dict(request.headers), body)
    except WebhookVerificationError as exc:
        receiver.count(CallbackOutcome.BAD_SIGNATURE)
        logger.warning("refused a callback: %s", exc)
        return _refuse(401, "bad_signature", str(exc))
    try:
        task = parse_callback(body)
    except (BadCallback, BadResponse) as exc:
        receiver.count(CallbackOutcome.GARBLED)
        logger.warning("refused a garbled callback: %s", exc)
        return _refuse(400, "garbled_callback", str(exc))
    signed = receiver.webhook_secret is not None
    receiver.heard()
    outcome, record = await receiver.accept(task, signed=signed)
    receiver.count(outcome)
    if outcome is CallbackOutcome.CONFIRMING and record is not None:
        receiver.start_confirm(record, task)
    return JSONResponse({"ok": True, "task_id": task.id, "outcome": outcome.value})
