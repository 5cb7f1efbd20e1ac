"""What every request handler of one app shares (``app.state.klingwatch``)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

from klingwatch.clock import Clock
from klingwatch.kling.client import KlingClient
from klingwatch.monitor.service import Monitor
from klingwatch.server.callbacks import CallbackReceiver
from klingwatch.server.metrics import Metrics
from klingwatch.server.overview import DURATION_BOUNDS, OverviewCache
from klingwatch.settings import Settings
from klingwatch.store import Ledger, TaskRecord

__all__ = ["CALLBACK_TOKEN_META", "AppState", "callback_token", "callback_url"]

#: Ledger meta key keeping the generated callback token (when KLINGWATCH_CALLBACK_TOKEN is unset).
CALLBACK_TOKEN_META = "server.callback_token"


def callback_token(ledger: Ledger, settings: Settings) -> str:
    """The secret path segment of the callback URL.

    ``KLINGWATCH_CALLBACK_TOKEN`` when set; otherwise one generated on first use and kept in the
    ledger, so the URL stays valid across restarts (tasks in flight carry it) and every replica
    sharing the ledger accepts it.
    """
    if settings.callback_token is not None:
        return settings.callback_token.get_secret_value()
    token = ledger.get_meta(CALLBACK_TOKEN_META)
    if not token:
        token = secrets.token_urlsafe(24)
        ledger.set_meta(CALLBACK_TOKEN_META, token)
        # Another replica may have written its own at the same moment: the ledger's wins.
        token = ledger.get_meta(CALLBACK_TOKEN_META) or token
    return token


def callback_url(ledger: Ledger, settings: Settings) -> str | None:
    """``<public-url>/callbacks/kling/<token>``, or ``None`` without ``KLINGWATCH_PUBLIC_URL``."""
    if not settings.public_url:
        return None
    base = settings.public_url.rstrip("/")
    return f"{base}/callbacks/kling/{callback_token(ledger, settings)}"


@dataclass
class AppState:
    """The ledger, the engine (when running), and the app's own caches and counters."""

    ledger: Ledger
    settings: Settings
    clock: Clock
    callbacks: CallbackReceiver
    overview: OverviewCache
    metrics: Metrics
    monitor: Monitor | None = None
    client: KlingClient | None = None
    #: Seconds between two reads of the ledger by an open event stream.
    stream_interval: float = 1.0
    duration_bounds: tuple[float, ...] = DURATION_BOUNDS
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    #: The engine's task while the app runs it.
    engine: asyncio.Task[None] | None = None
    #: Tasks seen by the change stream, by local id (only their fixed fields are read).
    task_labels: dict[int, TaskRecord] = field(default_factory=dict)

    def remember_task(self, task: TaskRecord, *, limit: int = 20_000) -> None:
        """Keep ``task`` for :attr:`task_labels`, forgetting the oldest beyond ``limit``."""
        if len(self.task_labels) >= limit:
            self.task_labels.pop(next(iter(self.task_labels)))
        self.task_labels[task.local_id] = task

    @property
    def api_token(self) -> str | None:
        token = self.settings.api_token
        return token.get_secret_value() if token is not None else None
