"""The engine as ``klingwatch serve`` runs it: the poller, the submitter and the downloads, in the
app's event loop.

With a public URL, every task the submitter sends without a ``callback_url`` of its own gets
``<public-url>/callbacks/kling/<token>``, so Kling's callbacks reach this server (polling stays
the safety net for callbacks that never arrive).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from klingwatch.clock import Clock
from klingwatch.kling.client import KlingClient
from klingwatch.kling.models import Task
from klingwatch.kling.products import Product
from klingwatch.monitor.download_worker import DownloadWorker
from klingwatch.monitor.poller import PollSettings
from klingwatch.monitor.service import Monitor
from klingwatch.monitor.stuck import StuckPolicy
from klingwatch.monitor.submitter import Submitter
from klingwatch.settings import Settings
from klingwatch.store import Ledger

__all__ = ["CallbackClient", "build_engine"]

logger = logging.getLogger(__name__)


class CallbackClient:
    """A Kling client whose creates carry ``callback_url`` unless the task has its own.

    It is what the submitter is given; everything else goes to the wrapped client unchanged.
    """

    def __init__(self, client: KlingClient, callback_url: str | None) -> None:
        self._client = client
        self.callback_url = callback_url

    @property
    def has_api_key(self) -> bool:
        return self._client.has_api_key

    async def create(
        self,
        product: str | Product,
        request: Mapping[str, Any],
        *,
        external_task_id: str | None = None,
        callback_url: str | None = None,
    ) -> Task:
        return await self._client.create(
            product,
            request,
            external_task_id=external_task_id,
            callback_url=callback_url or self.callback_url,
        )

    async def get_by_external_id(self, product: str, external_task_id: str) -> Task:
        return await self._client.get_by_external_id(product, external_task_id)

    async def get_many_by_external_id(self, ids: Sequence[str]) -> dict[str, Task]:
        return await self._client.get_many_by_external_id(ids)


def build_engine(
    settings: Settings,
    *,
    client: KlingClient,
    ledger: Ledger,
    clock: Clock,
    callback_url: str | None = None,
) -> Monitor:
    """A :class:`Monitor` with a :class:`Submitter` and a :class:`DownloadWorker` (which collects
    batches that have a download folder, or all with ``KLINGWATCH_DOWNLOAD_DIR``), configured
    from ``settings``.

    Signals are left to the web server (uvicorn), which stops the app, which stops the engine.
    """
    submitter = Submitter.from_settings(
        settings, client=CallbackClient(client, callback_url), ledger=ledger, clock=clock
    )
    if callback_url:
        logger.info("tasks sent from here carry a callback URL on %s", settings.public_url)
    return Monitor(
        client=client,
        ledger=ledger,
        clock=clock,
        poll=PollSettings(
            requests_per_second=settings.requests_per_second,
            concurrency=settings.max_concurrency,
        ),
        stuck=StuckPolicy(threshold=settings.stuck_after),
        submitter=submitter,
        workers=[DownloadWorker.from_settings(settings, ledger=ledger, clock=clock)],
        handle_signals=False,
    )
