"""What every request handler of one app shares (``app.state.klingwatch``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from klingwatch.clock import Clock
from klingwatch.kling.client import KlingClient
from klingwatch.monitor.service import Monitor
from klingwatch.operations import Operations
from klingwatch.server.callbacks import CallbackReceiver
from klingwatch.server.metrics import Metrics
from klingwatch.server.overview import DURATION_BOUNDS, OverviewCache
from klingwatch.settings import Settings
from klingwatch.store import TaskRecord
from klingwatch.store.async_ledger import AsyncLedger

__all__ = ["AppState"]


@dataclass
class AppState:
    """The operations (the ledger, the client, the clock), the engine (when running), and the
    app's own caches and counters."""

    ops: Operations
    callbacks: CallbackReceiver
    overview: OverviewCache
    metrics: Metrics
    monitor: Monitor | None = None
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
    def ledger(self) -> AsyncLedger:
        return self.ops.ledger

    @property
    def settings(self) -> Settings:
        return self.ops.settings

    @property
    def clock(self) -> Clock:
        return self.ops.clock

    @property
    def client(self) -> KlingClient | None:
        return self.ops.client

    @property
    def api_token(self) -> str | None:
        token = self.settings.api_token
        return token.get_secret_value() if token is not None else None
