"""Callbacks: POSTing a task to its ``callback_url`` when its status changes.

A task's transitions are known when it is created, so its deliveries are scheduled then, on one
heap ordered by due time; :meth:`CallbackDeliverer.deliver_due` sends whatever is due, and
:meth:`CallbackDeliverer.run` (started by the app's lifespan) does so as the clock reaches it.
In-process tests with a manual clock call ``deliver_due()`` themselves.

Each body is the task as it stood at that transition, in the shape of the standard it was
created with: legacy flat (or wrapped in ``{code, message, data}`` when configured), new standard
the bare task object. With a ``whsec_`` secret, deliveries carry Standard Webhooks headers. A
receiver that fails (non-2xx or no answer) is retried with doubling backoff; knobs drop,
duplicate, delay and reorder deliveries. The transport is injectable, so a test can deliver
straight into an ASGI app.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
import threading
import uuid
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from klingwatch.clock import Clock
from klingwatch.kling.envelope import callback_payload, dumps
from klingwatch.kling.models import TaskStatus
from klingwatch.sandbox.config import SandboxConfig
from klingwatch.sandbox.lifecycle import SandboxTask
from klingwatch.sandbox.outputs import epoch_ms, task_at
from klingwatch.sandbox.state import SandboxState

__all__ = ["CallbackDeliverer", "Delivery", "callback_body", "sign_headers"]

logger = logging.getLogger(__name__)

#: Longest the background loop sleeps without looking (real seconds): bounds the cost of a
#: missed wake-up.
_MAX_IDLE = 0.5


@dataclass(slots=True)
class Delivery:
    """One planned POST: the task as it stood at ``at``, sent at ``due`` (sandbox seconds)."""

    task: SandboxTask
    at: float
    status: TaskStatus
    due: float
    webhook_id: str
    attempt: int = 0
    duplicate: bool = False
    log: dict[str, Any] = field(default_factory=dict)


def callback_body(task: SandboxTask, at: float, config: SandboxConfig) -> bytes:
    """The JSON a callback of ``task`` carries for its state at sandbox time ``at``."""
    enveloped = config.callback_envelope == "enveloped"
    return dumps(callback_payload(task_at(task, at), enveloped=enveloped))


def sign_headers(
    secret: str | Sequence[str], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Standard Webhooks headers for ``body`` (KLING_PROTOCOL.md section 8).

    Several secrets give several ``v1,<signature>`` values separated by spaces, as Kling sends
    them during a secret rotation (kling-get-started-callbacks.md): a receiver that knows any
    one of the secrets verifies the delivery.
    """
    secrets = [secret] if isinstance(secret, str) else list(secret)
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    signatures = [Webhook(s).sign(webhook_id, when, body.decode()) for s in secrets]
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }


class CallbackDeliverer:
    """Schedules and sends every task's callbacks."""

    def __init__(
        self,
        state: SandboxState,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.state = state
        self.config = state.config
        self.clock: Clock = state.clock
        self.transport = transport
        self._lock = threading.Lock()
        self._client: httpx.AsyncClient | None = None
        self._wake: asyncio.Event | None = None
        self._seq = itertools.count()
        state.on_created.append(self.schedule)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._rng = random.Random(f"callbacks:{self.config.seed}")
            self._heap: list[tuple[float, int, Delivery]] = []
            self.counts: Counter[str] = Counter()
            #: the most recent deliveries and what became of them (ground truth)
            self.log: deque[dict[str, Any]] = deque(maxlen=10_000)

    # -- planning ---------------------------------------------------------------------------
    def schedule(self, task: SandboxTask) -> None:
        """Plan the deliveries of a new task (called by the state on every create)."""
        if not task.callback_url:
            return
        cfg, rng, scaled = self.config, self._rng, self.clock.scaled
        planned: list[Delivery] = []
        with self._lock:
            for at, status in task.transitions():
                if cfg.callbacks == "terminal" and not status.is_terminal:
                    continue
                if task.status_at(at) is not status:
                    continue  # a zero-length stage (no queue): nothing to report
                self.counts["planned"] += 1
                if rng.random() < cfg.callback_drop_rate:
                    self.counts["dropped"] += 1
                    self._note(task, status, "dropped", attempt=0)
                    continue
                delay = cfg.callback_delay + rng.random() * cfg.callback_delay_jitter
                planned.append(
                    Delivery(task, at, status, at + scaled(delay), webhook_id=str(uuid.uuid4()))
                )
                if rng.random() < cfg.callback_duplicate_rate:
                    self.counts["duplicated"] += 1
                    copy = planned[-1]
                    planned.append(
                        Delivery(
                            task,
                            at,
                            status,
                            copy.due + scaled(1.0),
                            copy.webhook_id,
                            duplicate=True,
                        )
                    )
            if len(planned) >= 2 and rng.random() < cfg.callback_reorder_rate:
                self.counts["reordered"] += 1
                a, b = planned[-2], planned[-1]
                a.due, b.due = b.due + scaled(0.5), a.due
            for d in planned:
                heapq.heappush(self._heap, (d.due, next(self._seq), d))
            task.callbacks["planned"] = task.callbacks.get("planned", 0) + len(planned)
        if self._wake is not None:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._heap)

    def next_due(self) -> float | None:
        with self._lock:
            return self._heap[0][0] if self._heap else None

    # -- sending ----------------------------------------------------------------------------
    async def deliver_due(self) -> int:
        """Send every delivery due by now (concurrently); return how many were attempted."""
        now = self.clock.time()
        batch: list[Delivery] = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                batch.append(heapq.heappop(self._heap)[2])
        if batch:
            await asyncio.gather(*(self._send(d) for d in batch))
        return len(batch)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self.transport, timeout=self.config.callback_timeout
            )
        return self._client

    async def _send(self, d: Delivery) -> None:
        task, cfg = d.task, self.config
        assert task.callback_url is not None
        body = callback_body(task, d.at, cfg)
        headers = {"content-type": "application/json", "user-agent": "klingwatch-sandbox"}
        if cfg.webhook_secrets:
            headers.update(
                sign_headers(cfg.webhook_secrets, d.webhook_id, int(self.clock.time()), body)
            )
        try:
            response = await self._http().post(task.callback_url, content=body, headers=headers)
            outcome = f"http {response.status_code}"
            ok = 200 <= response.status_code < 300
        except httpx.HTTPError as exc:
            outcome, ok = f"error {type(exc).__name__}", False
        with self._lock:
            task.callbacks["attempts"] = task.callbacks.get("attempts", 0) + 1
            if ok:
                self.counts["delivered"] += 1
                task.callbacks["delivered"] = task.callbacks.get("delivered", 0) + 1
            else:
                self.counts["failed_attempts"] += 1
            self._note(task, d.status, outcome, attempt=d.attempt, duplicate=d.duplicate)
            if not ok:
                if d.attempt < cfg.callback_retries:
                    d.attempt += 1
                    d.due = self.clock.time() + self.clock.scaled(
                        cfg.callback_retry_backoff * 2 ** (d.attempt - 1)
                    )
                    heapq.heappush(self._heap, (d.due, next(self._seq), d))
                else:
                    self.counts["gave_up"] += 1
        if not ok:
            logger.debug("callback %s for task %s: %s", d.status, task.task_id, outcome)

    def _note(
        self,
        task: SandboxTask,
        status: TaskStatus,
        outcome: str,
        *,
        attempt: int,
        duplicate: bool = False,
    ) -> None:
        self.log.append(
            {
                "task_id": task.task_id,
                "status": status.value,
                "url": task.callback_url,
                "attempt": attempt,
                "duplicate": duplicate,
                "outcome": outcome,
                "at": epoch_ms(self.clock.time()),
            }
        )

    # -- the background loop ----------------------------------------------------------------
    async def run(self) -> None:
        """Deliver callbacks as they fall due, until cancelled."""
        self._wake = asyncio.Event()
        try:
            while True:
                await self.deliver_due()
                self._wake.clear()
                due = self.next_due()
                wait = _MAX_IDLE if due is None else max(0.0, due - self.clock.time())
                wait = min(wait, _MAX_IDLE)
                # The clock decides how long "wait" sandbox seconds are; a new schedule wakes us.
                sleeper = asyncio.ensure_future(self.clock.sleep(wait / self.clock.scale))
                waker = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for fut in (sleeper, waker):
                        fut.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await fut
        finally:
            self._wake = None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
