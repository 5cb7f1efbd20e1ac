"""Outbound events: every status change, POSTed to ``KLINGWATCH_EVENTS_URL``, signed, at least once.

The door owes each accepted status change to the receiver in the same transaction that writes
it (:mod:`klingwatch.store.outbox`); :class:`EventDelivery`, a
:class:`~klingwatch.monitor.service.Worker`, claims what is owed (replicas share it), POSTs each
event as the JSON of :func:`event_payload`, and forgets it once the receiver answers 2xx. Any
other answer, a timeout or a refused connection leaves it owed, tried again after the house
backoff (:class:`klingwatch.kling.retry.Backoff`, 1 s doubling up to 5 minutes), forever. A
process killed at any moment loses nothing: what it had not seen acknowledged is sent again, with
the same ``webhook-id``, so a receiver drops duplicates by that header.

Each request is signed the Standard Webhooks way (``standardwebhooks``): headers ``webhook-id``
(stable per event), ``webhook-timestamp`` and ``webhook-signature``, with
``KLINGWATCH_EVENTS_SECRET`` or, when it is unset, a secret generated once and kept in the ledger
(:func:`events_secret`; ``klingwatch notify --show-secret`` prints it). Events may arrive out of
order (retries, concurrent sends, replicas): order them by ``id`` or ``at_ms``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from klingwatch.clock import Clock, to_ms
from klingwatch.errors import ConfigurationError
from klingwatch.kling.retry import Backoff
from klingwatch.monitor.replica import lease_span, replica_id
from klingwatch.settings import Settings
from klingwatch.store import Change, LocalStatus
from klingwatch.store.async_ledger import AsyncLedger
from klingwatch.store.outbox import OutboundEvent

__all__ = [
    "EVENT_BACKOFF",
    "EVENT_TYPE",
    "INSTANCE_META",
    "SECRET_META",
    "TEST_EVENT_TYPE",
    "EventDelivery",
    "event_payload",
    "events_instance",
    "events_secret",
    "events_url",
    "send_test_event",
    "signed_request",
    "webhook_id",
]

logger = logging.getLogger(__name__)

EVENT_TYPE = "task.status_changed"
#: Ledger meta keys: the generated signing secret, and this ledger's share of every webhook-id.
SECRET_META = "events.secret"
INSTANCE_META = "events.instance"
#: Waits between deliveries of one event: 0.5-1 s, 1-2 s, ... up to 2.5-5 minutes.
EVENT_BACKOFF = Backoff(initial=1.0, cap=300.0)


def event_payload(event: OutboundEvent) -> dict[str, Any]:
    """The JSON an event receiver gets: one shape whichever Kling standard the task used."""
    final = event.to_status.is_final
    # The task's result and message belong to its final status (they never change after it).
    current = event.status is event.to_status
    return {
        "type": EVENT_TYPE,
        "id": event.event_id,
        "at": datetime.fromtimestamp(event.at, tz=UTC).isoformat().replace("+00:00", "Z"),
        "at_ms": to_ms(event.at),
        "batch": event.batch,
        "external_task_id": event.external_task_id,
        "local_id": event.local_id,
        "task_id": event.task_id,
        "product": event.product,
        "model": event.model,
        "mode": event.mode,
        "from": None if event.from_status is None else event.from_status.value,
        "to": event.to_status.value,
        "source": event.source.value,
        "status_msg": event.status_msg if final and current else None,
        "result": event.result if event.to_status is LocalStatus.SUCCEED and current else None,
        "units": event.units if final and current else None,
    }


def events_url(url: str) -> str:
    """``url`` if it is one events can be POSTed to; a clear error otherwise."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"KLINGWATCH_EVENTS_URL {url!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"KLINGWATCH_EVENTS_URL {url!r} must be an http:// or https:// URL "
            "(e.g. https://my-app.example/kling-events)"
        )
    return url


def webhook_id(instance: str, event_id: int) -> str:
    """The ``webhook-id`` of one event: the same on every delivery of it."""
    return f"evt_{instance}_{event_id}"


def signed_request(secret: str, msg_id: str, body: str, at: float) -> dict[str, str]:
    """The Standard Webhooks headers of one delivery (``at``: Unix seconds, now)."""
    when = datetime.fromtimestamp(int(at), tz=UTC)
    try:
        signature = Webhook(secret).sign(msg_id, when, body)
    except Exception as exc:  # a secret that is not base64: the library's own error types vary
        raise ConfigurationError(
            "KLINGWATCH_EVENTS_SECRET is not a Standard Webhooks secret (whsec_ followed by "
            f"base64): {exc}"
        ) from None
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at)),
        "webhook-signature": signature,
    }


async def events_secret(ledger: AsyncLedger, configured: str | None = None) -> str:
    """``configured`` (``KLINGWATCH_EVENTS_SECRET``), else the ledger's own, made on first use
    (atomically, so every replica signs with the same). Either is checked to sign."""
    if configured is not None:
        signed_request(configured, "check", "{}", 0.0)
        return configured
    made = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    return await ledger.meta_default(SECRET_META, made)


#: The ``type`` of the event ``klingwatch notify --test`` sends.
TEST_EVENT_TYPE = "klingwatch.test"


async def send_test_event(url: str, *, secret: str, instance: str, at: float) -> str | None:
    """POST one signed test event to ``url``; ``None`` when it was acknowledged (2xx), else
    what went wrong."""
    body = json.dumps(
        {"type": TEST_EVENT_TYPE, "at_ms": to_ms(at), "message": "klingwatch notify --test"},
        separators=(",", ":"),
    )
    headers = signed_request(secret, f"evt_{instance}_test_{to_ms(at)}", body, at)
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            response = await http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None if response.is_success else f"HTTP {response.status_code}"


async def events_instance(ledger: AsyncLedger) -> str:
    """This ledger's part of every ``webhook-id`` (made once, kept in the ledger)."""
    return await ledger.meta_default(INSTANCE_META, secrets.token_hex(4))


class EventDelivery:
    """Delivers the outbox to one URL (see the module docstring)."""

    def __init__(
        self,
        ledger: AsyncLedger,
        *,
        clock: Clock,
        url: str,
        secret: str | None = None,
        concurrency: int = 8,
        batch_size: int = 100,
        lease: float = 120.0,
        timeout: float = 10.0,
        drain_timeout: float = 10.0,
        backoff: Backoff = EVENT_BACKOFF,
        transport: httpx.AsyncBaseTransport | None = None,
        owner: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.url = url
        self._configured_secret = secret
        self._secret: str | None = None
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.lease = lease
        self.timeout = timeout
        self.drain_timeout = drain_timeout
        self.backoff = backoff
        self._transport = transport
        self.owner = owner or f"{replica_id()}:events"
        self._rng = rng or random.Random()
        self._instance: str | None = None
        self._round: asyncio.Task[None] | None = None
        self._next_check = float("-inf")
        # counters, shown in __repr__
        self.delivered = self.failures = self.rounds = 0
        self.last_error: str | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, ledger: AsyncLedger, clock: Clock, owner: str | None = None
    ) -> EventDelivery:
        """Delivery to ``KLINGWATCH_EVENTS_URL``, signed with ``KLINGWATCH_EVENTS_SECRET`` (or
        the ledger's generated secret)."""
        if not settings.events_url:
            raise ConfigurationError("set KLINGWATCH_EVENTS_URL to deliver outbound events")
        secret = settings.events_secret
        return cls(
            ledger,
            clock=clock,
            url=events_url(settings.events_url),
            secret=None if secret is None else secret.get_secret_value(),
            owner=owner,
        )

    def __repr__(self) -> str:
        return (
            f"<EventDelivery delivered={self.delivered} failures={self.failures} "
            f"rounds={self.rounds}{' running' if self.busy() else ''}>"
        )

    # -- the Worker protocol ------------------------------------------------------------------
    async def run_once(self) -> Sequence[Change]:
        """Start delivering when something is owed and due (never waits for the sends)."""
        if self._instance is None:
            await self.start()
        now = self.clock.time()
        if self.busy():
            return []
        count, soonest = await self.ledger.outbox_pending()
        if count and soonest is not None and soonest <= now:
            # Not a time to wake for while the round runs: the engine would spin until it ends.
            self._next_check = float("-inf")
            self._round = asyncio.create_task(self._guarded_round(), name="events")
        else:
            self._next_check = soonest if soonest is not None else float("-inf")
        return []

    def busy(self) -> bool:
        return self._round is not None and not self._round.done()

    def next_due(self) -> float | None:
        """When the soonest owed event that waits for its backoff is due (``None``: none)."""
        return None if self._next_check == float("-inf") else self._next_check

    async def drain(self) -> None:
        """Deliver what is due before the engine stops (at most ``drain_timeout`` seconds; what
        is left stays owed for the next run)."""
        try:
            async with asyncio.timeout(self.drain_timeout):
                if self._round is not None:
                    await self._round
                if self._instance is None:
                    await self.start()
                await self._guarded_round()
        except TimeoutError:
            logger.warning("events: not everything was delivered in time; the rest stays owed")
        finally:
            if self._round is not None and not self._round.done():
                self._round.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._round

    # -- delivering ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Switch the ledger's outbox on and learn the signing secret and webhook-id prefix."""
        self._secret = await events_secret(self.ledger, self._configured_secret)
        await self.ledger.enable_outbox()
        self._instance = await events_instance(self.ledger)

    async def deliver_due(self) -> int:
        """Deliver every event owed and due now, batch after batch; how many went."""
        if self._instance is None:
            await self.start()
        sent = 0
        limit = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout, transport=self._transport) as http:
            while True:
                now = self.clock.time()
                batch = await self.ledger.claim_outbound(
                    now,
                    owner=self.owner,
                    lease_seconds=lease_span(self.clock, self.lease),
                    limit=self.batch_size,
                )
                if not batch:
                    break
                results = await asyncio.gather(*(self._post(http, limit, e) for e in batch))
                went = sum(results)
                sent += went
                if went < len(batch):
                    break  # the receiver is struggling: the rest waits for its backoff
        self.rounds += 1
        return sent

    async def _post(
        self, http: httpx.AsyncClient, limit: asyncio.Semaphore, event: OutboundEvent
    ) -> bool:
        assert self._secret is not None
        assert self._instance is not None
        body = json.dumps(event_payload(event), separators=(",", ":"), sort_keys=True)
        msg_id = webhook_id(self._instance, event.event_id)
        headers = signed_request(self._secret, msg_id, body, self.clock.time())
        async with limit:
            try:
                response = await http.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    # Forgotten at once, not with the rest of the batch: a process killed now
                    # sends again only the events whose answer it had not seen.
                    await self.ledger.outbound_delivered([event.event_id], owner=self.owner)
                    self.delivered += 1
                    return True
                error = f"HTTP {response.status_code}"
        self.failures += 1
        self.last_error = error
        wait = self.backoff.delay(event.attempts + 1, self._rng.random())
        logger.info("event %s not delivered (%s); again in %.0fs", msg_id, error, wait)
        await self.ledger.outbound_failed(
            event.event_id,
            owner=self.owner,
            next_at=self.clock.time() + self.clock.scaled(wait),
            error=error,
        )
        return False

    async def _guarded_round(self) -> None:
        try:
            await self.deliver_due()
        except Exception as exc:  # the ledger busy: the engine carries on, the events stay owed
            self.last_error = str(exc)
            logger.warning("events: delivery round failed (%s)", exc, exc_info=True)
