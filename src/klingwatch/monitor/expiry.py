"""Kling deletes results 30 days after a task ends: which uncollected tasks are running out.

:func:`expiring` lists succeeded tasks whose files are not all on disk and whose deletion date
(Kling's updated time + 30 days) falls within the next ``within_days``; :func:`collection`
summarises downloads and expiry in one read for ``status``, the dashboard and ``/metrics``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from klingwatch.kling.models import RESULT_RETENTION
from klingwatch.monitor.layout import WATERMARK_INDEX_OFFSET, result_files
from klingwatch.store import Ledger
from klingwatch.store.records import DownloadRecord, LocalStatus, TaskRecord

__all__ = [
    "DEFAULT_WARN_DAYS",
    "RETENTION_SECONDS",
    "Collection",
    "collection",
    "expires_at",
    "expiring",
    "format_when",
    "is_collected",
]

RETENTION_SECONDS = RESULT_RETENTION.total_seconds()

#: Warn this many days before Kling deletes an uncollected result.
DEFAULT_WARN_DAYS = 5.0


def expires_at(task: TaskRecord) -> float | None:
    """When Kling deletes ``task``'s results (Unix seconds), or ``None`` when not known/ended."""
    if task.status is not LocalStatus.SUCCEED:
        return None
    if task.kling_updated_ms is not None:
        return task.kling_updated_ms / 1000.0 + RETENTION_SECONDS
    if task.finished_at is not None:
        return task.finished_at + RETENTION_SECONDS
    return None


def format_when(seconds: float) -> str:
    """A Unix time as ``2026-01-31 12:00 UTC``."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def is_collected(task: TaskRecord, records: Iterable[DownloadRecord]) -> bool:
    """Whether every result file of ``task`` (watermarked variants aside) is on disk, complete."""
    complete = {r.index for r in records if r.state == "complete"}
    files = result_files(task.result)
    return bool(files) and all(f.ledger_index in complete for f in files)


@dataclass(slots=True)
class Collection:
    """Downloads and expiry across the succeeded tasks of a ledger (or of one batch)."""

    #: Succeeded tasks with result files.
    tasks: int = 0
    #: ... of which every file is on disk.
    collected: int = 0
    #: Result files (not counting watermarked variants) and their download states.
    files: int = 0
    files_complete: int = 0
    files_expired: int = 0
    files_failed: int = 0
    bytes_complete: int = 0
    #: Uncollected tasks deleted by Kling within ``within_days``, soonest first.
    expiring: list[TaskRecord] = field(default_factory=list)
    #: Uncollected tasks whose results Kling has already deleted.
    lost: int = 0

    @property
    def files_pending(self) -> int:
        """Files neither complete, expired nor failed: not tried yet."""
        return self.files - self.files_complete - self.files_expired - self.files_failed


def collection(
    ledger: Ledger, now: float, within_days: float = DEFAULT_WARN_DAYS, *, batch: str | None = None
) -> Collection:
    """Summarise downloads and expiry (two ledger reads)."""
    by_task: dict[int, list[DownloadRecord]] = defaultdict(list)
    for record in ledger.downloads():
        by_task[record.local_id].append(record)
    out = Collection()
    horizon = now + within_days * 86400.0
    soon: list[tuple[float, TaskRecord]] = []
    for task in ledger.tasks(status=LocalStatus.SUCCEED, batch=batch):
        files = result_files(task.result)
        if not files:
            continue
        records = {
            r.index: r for r in by_task.get(task.local_id, ()) if r.index < WATERMARK_INDEX_OFFSET
        }
        out.tasks += 1
        out.files += len(files)
        for f in files:
            rec = records.get(f.ledger_index)
            if rec is None:
                continue
            if rec.state == "complete":
                out.files_complete += 1
                out.bytes_complete += rec.size or 0
            elif rec.state == "expired":
                out.files_expired += 1
            else:
                out.files_failed += 1
        if is_collected(task, records.values()):
            out.collected += 1
            continue
        deadline = expires_at(task)
        if deadline is None:
            continue
        if deadline <= now:
            out.lost += 1
        elif deadline <= horizon:
            soon.append((deadline, task))
    soon.sort(key=lambda pair: (pair[0], pair[1].local_id))
    out.expiring = [task for _, task in soon]
    return out


def expiring(
    ledger: Ledger, now: float, within_days: float = DEFAULT_WARN_DAYS, *, batch: str | None = None
) -> list[TaskRecord]:
    """Succeeded tasks not fully collected that Kling deletes within ``within_days`` of ``now``.

    Soonest first; tasks already past deletion are not included (see :attr:`Collection.lost`).
    """
    return collection(ledger, now, within_days, batch=batch).expiring
