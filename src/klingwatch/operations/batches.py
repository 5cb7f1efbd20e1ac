"""One batch as a whole: where it stands (the dashboard's batch page), and collecting its results.

:class:`BatchOperations` is mixed into :class:`~klingwatch.operations.Operations`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from klingwatch.clock import Clock
from klingwatch.errors import ConfigurationError
from klingwatch.monitor.downloads import Downloader, Summary
from klingwatch.monitor.eta import estimate, progress
from klingwatch.operations.results import BatchReport
from klingwatch.operations.spend import SpendRequestError, budget_result, summarize_spend
from klingwatch.settings import Settings
from klingwatch.store import Ledger, LocalStatus
from klingwatch.store.async_ledger import AsyncLedger

__all__ = ["NO_REASON", "BatchOperations"]

#: How a failure without a message from Kling is grouped.
NO_REASON = "(no reason given)"


def _report(ledger: Ledger, name: str, now: float) -> BatchReport | None:
    found = next((b for b in ledger.batches() if b.name == name), None)
    budget = ledger.budget(name)
    if found is None or budget is None:
        return None
    reasons: Counter[str] = Counter()
    for task in ledger.tasks(batch=name, status=(LocalStatus.FAILED, LocalStatus.REJECTED)):
        reasons[task.status_msg or NO_REASON] += 1
    lines = ledger.spend_lines(batch=name)
    return BatchReport(
        name=name,
        created_at=found.created_at,
        download_dir=found.download_dir,
        counts=dict(found.counts),
        eta=estimate(progress(ledger, name, now)),
        budget=budget_result(budget),
        spend=summarize_spend(lines, ()).total,
        spend_by_day=summarize_spend(lines, ("day",)).rows,
        failure_reasons=reasons.most_common(),
    )


class BatchOperations:
    """Batch-wide operations (mixed into :class:`~klingwatch.operations.Operations`)."""

    ledger: AsyncLedger
    clock: Clock
    settings: Settings

    async def batch_report(self, name: str) -> BatchReport:
        """Where batch ``name`` stands: counts, ETA, budget and spend, failures by reason.
        Raises :class:`~klingwatch.operations.SpendRequestError` for an unknown batch."""
        report = await self.ledger.read(_report, name, self.clock.time())
        if report is None:
            raise SpendRequestError(f"no batch {name!r} in the ledger (see `klingwatch status`)")
        return report

    def download_folder(self, report: BatchReport) -> Path:
        """Where the batch's results go: its own folder, else ``KLINGWATCH_DOWNLOAD_DIR``."""
        folder = report.download_dir or self.settings.download_dir
        if not folder:
            raise ConfigurationError(
                f"batch {report.name!r} has no download folder: set KLINGWATCH_DOWNLOAD_DIR, "
                "or run `klingwatch download --batch NAME --dir DIR`"
            )
        return Path(folder)

    async def download_batch(self, name: str) -> Summary:
        """Download every succeeded result of batch ``name`` into :meth:`download_folder`
        (files already complete are skipped; a file another process is fetching is left to
        it). Raises :class:`~klingwatch.errors.ConfigurationError` when there is no folder."""
        folder = self.download_folder(await self.batch_report(name))
        tasks = await self.ledger.tasks(batch=name, status=LocalStatus.SUCCEED)
        async with Downloader(
            self.ledger, template=self.settings.download_template, clock=self.clock
        ) as downloader:
            return await downloader.download(tasks, folder)
