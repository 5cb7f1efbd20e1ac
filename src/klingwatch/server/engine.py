"""The engine as ``klingwatch serve`` runs it: the poller, the submitter and the downloads, in the
app's event loop.

With a public URL, every task the submitter sends without a ``callback_url`` of its own gets
``<public-url>/callbacks/kling/<token>``, so Kling's callbacks reach this server (polling stays
the safety net for callbacks that never arrive).
"""

from __future__ import annotations

import logging

from klingwatch.clock import Clock
from klingwatch.kling.client import KlingClient
from klingwatch.monitor.download_worker import DownloadWorker
from klingwatch.monitor.service import Monitor
from klingwatch.monitor.stuck import StuckPolicy
from klingwatch.monitor.submitter import Submitter
from klingwatch.settings import Settings
from klingwatch.store import Ledger
from klingwatch.store.async_ledger import AsyncLedger

__all__ = ["build_engine"]

logger = logging.getLogger(__name__)


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
    aledger = AsyncLedger(ledger)
    submitter = Submitter.from_settings(
        settings, client=client, ledger=aledger, clock=clock, callback_url=callback_url
    )
    if callback_url:
        logger.info("tasks sent from here carry a callback URL on %s", settings.public_url)
    return Monitor(
        client=client,
        ledger=aledger,
        clock=clock,
        stuck=StuckPolicy(threshold=settings.stuck_after),
        submitter=submitter,
        workers=[DownloadWorker.from_settings(settings, ledger=aledger, clock=clock)],
        handle_signals=False,
    )
