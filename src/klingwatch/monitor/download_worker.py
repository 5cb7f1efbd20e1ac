"""Downloads inside the engine: a :class:`~klingwatch.monitor.service.Worker` for ``Monitor``.

Opt-in: a batch is collected when it has a download folder (``submit --download DIR``) or when
a global one is set (``KLINGWATCH_DOWNLOAD_DIR``). :meth:`DownloadWorker.run_once` is called
once per engine iteration and never waits for a transfer: it notices new successes (one cheap
count query), starts a background round that downloads them with a
:class:`~klingwatch.monitor.downloads.Downloader`, and returns. :meth:`DownloadWorker.busy` is
true while a round runs, so an engine run ``until_done`` waits for the files.

With an ``owner`` (the engine's replica id), every task is claimed in the ledger before its files
are fetched (a lease on the task, renewed while the transfer runs), so replicas sharing one
ledger fetch each file once; a task another replica holds is left to it, and looked at again
when that lease would have run out (a killed replica's downloads are resumed by another then,
from its ``.part`` file when they share the folder).

A full disk or unwritable folder pauses downloads and raises the ``downloads`` alert until a
later round (every ``rescan_interval``) succeeds; results close to Kling's 30-day deletion and
not collected raise the ``results_expiring`` alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx

from klingwatch.clock import Clock
from klingwatch.monitor.downloads import Downloader, Summary
from klingwatch.monitor.expiry import DEFAULT_WARN_DAYS, collection, expires_at, format_when
from klingwatch.monitor.fetch import Opener, RetryPolicy, open_part
from klingwatch.monitor.layout import DEFAULT_TEMPLATE, PathTemplate, TemplateError
from klingwatch.monitor.replica import DEFAULT_LEASE_SECONDS, kept, lease_span
from klingwatch.settings import Settings
from klingwatch.store import Change, LocalStatus, TaskRecord
from klingwatch.store.async_ledger import AsyncLedger

__all__ = ["DOWNLOAD_ALERT", "EXPIRY_ALERT", "DownloadWorker"]

logger = logging.getLogger(__name__)

#: Alert kind raised when downloads stopped (disk full, folder unwritable).
DOWNLOAD_ALERT = "downloads"
#: Alert kind raised while uncollected results are close to Kling's deletion.
EXPIRY_ALERT = "results_expiring"


class DownloadWorker:
    """Collects results of succeeded tasks in the background while the engine runs."""

    def __init__(
        self,
        ledger: AsyncLedger,
        *,
        clock: Clock,
        download_dir: str | Path | None = None,
        template: str = DEFAULT_TEMPLATE,
        watermark: bool = False,
        concurrency: int = 4,
        batch: str | None = None,
        rescan_interval: float = 300.0,
        min_scan_interval: float = 10.0,
        warn_days: float = DEFAULT_WARN_DAYS,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        opener: Opener = open_part,
        owner: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self.ledger = ledger
        #: replica id the downloads are claimed for (``None``: no claims, one process only)
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.download_dir = Path(download_dir) if download_dir is not None else None
        self.template = PathTemplate(template)  # a bad template fails now, not mid-run
        self.watermark = watermark
        self.concurrency = concurrency
        self.batch = batch
        self.rescan_interval = rescan_interval
        self.min_scan_interval = min_scan_interval
        self.warn_days = warn_days
        self._transport = transport
        self._retry = retry
        self._opener = opener
        self._round: asyncio.Task[None] | None = None
        self._last_count = -1
        self._next_scan = self._earliest_scan = self._next_expiry_check = float("-inf")
        self._stopped_until = float("-inf")
        self._pending = False
        self._finished: set[int] = set()  # every file complete or expired: never looked at again
        self._retry_after: dict[int, float] = {}  # a file failed: not before the next rescan
        # counters, shown in __repr__
        self.rounds = self.downloaded = self.skipped = self.expired = self.failed = 0
        self.stopped: str | None = None
        self.last_error: BaseException | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        ledger: AsyncLedger,
        clock: Clock,
        batch: str | None = None,
        owner: str | None = None,
    ) -> DownloadWorker:
        """A worker configured from the settings (download folder, template, warning days,
        lease period), claiming its downloads for ``owner``."""
        return cls(
            ledger,
            clock=clock,
            download_dir=settings.download_dir,
            template=settings.download_template,
            warn_days=settings.expiry_warn_days,
            batch=batch,
            owner=owner,
            lease_seconds=settings.lease_seconds,
        )

    def __repr__(self) -> str:
        return (
            f"<DownloadWorker rounds={self.rounds} downloaded={self.downloaded} "
            f"skipped={self.skipped} expired={self.expired} failed={self.failed}"
            f"{' running' if self._running() else ''}{' stopped' if self.stopped else ''}>"
        )

    # -- the Worker protocol ------------------------------------------------------------------
    async def run_once(self) -> Sequence[Change]:
        """Start a download round when there is something new (or a rescan is due); never waits.

        Downloads change no task status, so this returns no changes.
        """
        now = self.clock.time()
        succeeded = (await self.ledger.counts(batch=self.batch)).get(LocalStatus.SUCCEED, 0)
        if self._running():
            # New successes while a round runs: the round may not have them, so stay busy (an
            # engine running until done must not stop in between) and take them next time.
            if succeeded != self._last_count:
                self._pending = await self._opted_in()
            return []
        if succeeded == self._last_count and now < self._next_scan:
            return []
        if now < self._earliest_scan:
            # New successes, but the last scan was moments ago: take them next time.
            self._pending = await self._opted_in()
            return []
        self._pending = False
        self._last_count = succeeded
        self._earliest_scan = now + self.clock.scaled(self.min_scan_interval)
        self._next_scan = now + self.clock.scaled(self.rescan_interval)
        if now >= self._next_expiry_check:
            self._next_expiry_check = now + self.clock.scaled(self.rescan_interval)
            await self._watch_expiry(now)
        if self.stopped is not None and now < self._stopped_until:
            return []
        targets = await self.targets(now)
        if targets:
            self._round = asyncio.create_task(self._run_round(targets), name="klingwatch-downloads")
        return []

    def busy(self) -> bool:
        """True while a download round runs or new successes wait for the next one."""
        return self._running() or self._pending

    def _running(self) -> bool:
        return self._round is not None and not self._round.done()

    async def _opted_in(self) -> bool:
        if self.download_dir is not None:
            return True
        batches = await self.ledger.batches()
        return any(b.download_dir for b in batches if self.batch in (None, b.name))

    @staticmethod
    async def close_all(workers: Iterable[object]) -> None:
        """:meth:`aclose` every DownloadWorker among ``workers`` (e.g. ``monitor.workers``)."""
        for worker in workers:
            if isinstance(worker, DownloadWorker):
                await worker.aclose()

    async def aclose(self) -> None:
        """Stop a running round (its partial files are kept and resumed next time)."""
        if self._round is not None and not self._round.done():
            self._round.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._round

    async def wait(self) -> None:
        """Wait for the running round, if any, to finish."""
        if self._round is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._round)

    # -- what to download ---------------------------------------------------------------------
    async def targets(self, now: float) -> dict[Path, list[TaskRecord]]:
        """The succeeded tasks to collect now, by target folder (opted-in batches only)."""
        out: dict[Path, list[TaskRecord]] = {}
        for batch in await self.ledger.batches():
            if self.batch is not None and batch.name != self.batch:
                continue
            folder = batch.download_dir or self.download_dir
            if folder is None:
                continue
            todo = [
                task
                for task in await self.ledger.tasks(status=LocalStatus.SUCCEED, batch=batch.name)
                if task.local_id not in self._finished
                and self._retry_after.get(task.local_id, float("-inf")) <= now
            ]
            if todo:
                out.setdefault(Path(folder), []).extend(todo)
        return out

    async def _run_round(self, targets: dict[Path, list[TaskRecord]]) -> None:
        self.rounds += 1
        try:
            async with Downloader(
                self.ledger,
                template=self.template,
                watermark=self.watermark,
                concurrency=self.concurrency,
                clock=self.clock,
                transport=self._transport,
                retry=self._retry,
                opener=self._opener,
            ) as downloader:
                for root, tasks in targets.items():
                    mine = await self._claim(tasks)
                    try:
                        async with self._kept(mine):
                            summary = await downloader.download(mine, root)
                    finally:
                        await self._release(mine)
                    self._absorb(mine, summary)
                    if summary.stopped is not None:
                        await self._stop(str(summary.stopped))
                        return
            if self.stopped is not None:
                self.stopped = None
                await self.ledger.clear_alerts(DOWNLOAD_ALERT)
        except asyncio.CancelledError:
            raise
        except TemplateError as exc:  # two files, one path: nothing is fetched until it is fixed
            await self._stop(str(exc))
        except Exception as exc:  # a bug or a ledger outage must not take the engine down
            self.last_error = exc
            logger.exception("download round failed")

    async def _claim(self, tasks: list[TaskRecord]) -> list[TaskRecord]:
        """The tasks this replica may collect now: all of them without an owner, else those
        the ledger leased to it; the others are looked at again once their lease has run out."""
        if self.owner is None or not tasks:
            return tasks
        now = self.clock.time()
        lease = lease_span(self.clock, self.lease_seconds)
        mine = await self.ledger.claim_succeeded(
            [t.local_id for t in tasks], now, owner=self.owner, lease_seconds=lease
        )
        if len(mine) < len(tasks):
            self._next_scan = min(self._next_scan, now + lease)
        return mine

    def _kept(self, tasks: list[TaskRecord]) -> AbstractAsyncContextManager[None]:
        if self.owner is None:
            return contextlib.nullcontext()
        ids = [t.local_id for t in tasks]
        return kept(
            self.ledger, self.clock, ids, owner=self.owner, lease_seconds=self.lease_seconds
        )

    async def _release(self, tasks: list[TaskRecord]) -> None:
        if self.owner is not None and tasks:
            await self.ledger.release([t.local_id for t in tasks], owner=self.owner)

    def _absorb(self, tasks: list[TaskRecord], summary: Summary) -> None:
        now = self.clock.time()
        outcomes: dict[int, list[str]] = {}
        for f in summary.files:
            outcomes.setdefault(f.task.local_id, []).append(f.outcome)
        for task in tasks:
            seen = outcomes.get(task.local_id)
            if seen is None:  # stopped before its turn, or no files at all
                if summary.stopped is None:
                    self._finished.add(task.local_id)
                continue
            if all(o in ("downloaded", "skipped", "expired") for o in seen):
                self._finished.add(task.local_id)
                self._retry_after.pop(task.local_id, None)
            else:
                self._retry_after[task.local_id] = now + self.clock.scaled(self.rescan_interval)
        self.downloaded += summary.count("downloaded")
        self.skipped += summary.count("skipped") + summary.count("busy")
        self.expired += summary.count("expired")
        self.failed += summary.count("failed")

    async def _stop(self, message: str) -> None:
        self.stopped = message
        self._stopped_until = self.clock.time() + self.clock.scaled(self.rescan_interval)
        await self.ledger.add_alert(
            DOWNLOAD_ALERT, f"downloads stopped: {message}", self.clock.time()
        )
        logger.error("downloads stopped: %s", message)

    async def _watch_expiry(self, now: float) -> None:
        summary = await self.ledger.read(collection, now, self.warn_days, batch=self.batch)
        if not summary.expiring:
            await self.ledger.clear_alerts(EXPIRY_ALERT)
            return
        first = summary.expiring[0]
        deadline = expires_at(first)
        when = format_when(deadline) if deadline is not None else "soon"
        await self.ledger.add_alert(
            EXPIRY_ALERT,
            f"{len(summary.expiring)} succeeded task(s) are not downloaded and Kling deletes "
            f"their results within {self.warn_days:g} days (first: {first.external_task_id} on "
            f"{when}); run `klingwatch download`",
            now,
        )
