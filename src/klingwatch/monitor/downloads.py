"""Collect the result files of succeeded tasks, safely, with a sidecar and a ledger record each.

:class:`Downloader` takes :class:`~klingwatch.store.TaskRecord` s and, for every result file
(:func:`~klingwatch.monitor.layout.result_files`), at most ``concurrency`` at a time:

1. names it with a :class:`~klingwatch.monitor.layout.PathTemplate` under the target folder;
2. takes the file's destination lock (one writer per file, also across processes);
3. skips it when it is already complete: on disk with the size and sha256 the ledger recorded
   (or, with no record, when its first bytes are the media expected: then it is recorded); a
   file the ledger has complete in another folder (a different ``--dir``) is skipped there too;
4. marks it ``expired`` without a request when the result is past Kling's 30 days, or when the
   ledger already saw this very URL answer 403/404;
5. else fetches it (:class:`~klingwatch.monitor.fetch.Fetcher`: ``.part`` file, Range resume,
   verification), writes ``<file>.json`` beside it (request, result, timeline, download facts)
   and records the outcome with ``Ledger.record_download``.

A file the ledger has ``complete`` stays complete whatever a later run finds: when it is gone
from where it was written and cannot be fetched again, the outcome is ``missing`` (reported, and
the record kept), never ``failed``.

A full disk or an unwritable folder stops every download at once: :meth:`Downloader.download`
returns a summary whose ``stopped`` holds the one :class:`~klingwatch.monitor.fetch.StorageError`
to show.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeGuard

import httpx

from klingwatch.clock import Clock, RealClock
from klingwatch.monitor.expiry import expires_at, format_when
from klingwatch.monitor.fetch import (
    ExpiredURL,
    Fetcher,
    FetchError,
    Opener,
    RetryPolicy,
    StorageError,
    open_part,
    storage_error,
)
from klingwatch.monitor.layout import (
    DEFAULT_TEMPLATE,
    PathTemplate,
    ResultFile,
    TemplateError,
    result_files,
)
from klingwatch.monitor.locks import FileBusy, destination_lock
from klingwatch.monitor.media import HEAD_BYTES, accepts
from klingwatch.monitor.sidecar import read_sidecar, sidecar_path, write_sidecar
from klingwatch.store.async_ledger import AsyncLedger
from klingwatch.store.records import DownloadRecord, TaskRecord

__all__ = ["Downloader", "FileOutcome", "Outcome", "Summary"]

logger = logging.getLogger(__name__)

#: What happened to one file (``missing``: recorded complete, gone from disk, not fetched again).
Outcome = Literal["downloaded", "skipped", "expired", "failed", "busy", "missing"]


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """The fate of one result file in one run."""

    task: TaskRecord
    file: ResultFile
    path: Path
    outcome: Outcome
    size: int | None = None
    sha256: str | None = None
    message: str | None = None
    resumed: bool = False


@dataclass(slots=True)
class Summary:
    """Everything one :meth:`Downloader.download` call did."""

    files: list[FileOutcome] = field(default_factory=list)
    #: Set when a full disk or unwritable folder stopped the run; the one message to show.
    stopped: StorageError | None = None

    def count(self, outcome: Outcome) -> int:
        return sum(1 for f in self.files if f.outcome == outcome)

    @property
    def bytes_downloaded(self) -> int:
        return sum(f.size or 0 for f in self.files if f.outcome == "downloaded")

    @property
    def ok(self) -> bool:
        """Nothing failed or went missing, and nothing stopped the run (expired files are not
        failures)."""
        return self.stopped is None and self.count("failed") == 0 and self.count("missing") == 0


class Downloader:
    """Downloads the result files of succeeded tasks (see the module docstring).

    One instance may serve many :meth:`download` calls; close it (or use ``async with``) to
    release its HTTP client when it made one.
    """

    def __init__(
        self,
        ledger: AsyncLedger,
        *,
        template: str | PathTemplate = DEFAULT_TEMPLATE,
        watermark: bool = False,
        concurrency: int = 4,
        clock: Clock | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        opener: Opener = open_part,
        on_file: Callable[[FileOutcome], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.ledger = ledger
        self.template = template if isinstance(template, PathTemplate) else PathTemplate(template)
        self.watermark = watermark
        self.concurrency = concurrency
        self.clock: Clock = clock or RealClock()
        self._own_client = http_client is None
        self._client = http_client or httpx.AsyncClient(
            transport=transport,
            follow_redirects=True,
            timeout=httpx.Timeout(60.0, connect=15.0),
        )
        self._fetcher = Fetcher(self._client, clock=self.clock, retry=retry, opener=opener)
        self._on_file = on_file
        self._slots = asyncio.Semaphore(concurrency)
        self.downloaded = self.skipped = self.failed = self.expired = 0

    async def __aenter__(self) -> Downloader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    def plan(
        self, tasks: Iterable[TaskRecord], root: Path
    ) -> list[tuple[TaskRecord, ResultFile, Path]]:
        """Every (task, file, destination) the tasks have, refusing a template that collides."""
        plan: list[tuple[TaskRecord, ResultFile, Path]] = []
        owners: dict[Path, str] = {}
        for task in tasks:
            for file in result_files(task.result, watermark=self.watermark):
                dest = self.template.destination(root, task, file)
                who = f"{task.external_task_id} #{file.index} {file.variant}".rstrip()
                if dest in owners:
                    raise TemplateError(
                        f"template {self.template.template!r} gives {owners[dest]} and {who} the "
                        f"same path {dest}; add {{external_task_id}} and {{index}} to it"
                    )
                owners[dest] = who
                plan.append((task, file, dest))
        return plan

    async def download(self, tasks: Iterable[TaskRecord], root: Path | str) -> Summary:
        """Collect every result file of ``tasks`` under ``root``; see the module docstring.

        Tasks that did not succeed, or have no result files, contribute nothing.
        """
        plan = self.plan(tasks, _absolute(root))
        known = {(d.local_id, d.index): d for d in await self.ledger.downloads()} if plan else {}
        # Which file each path on disk belongs to, so a file is never taken for another's.
        owners = {d.path: (d.local_id, d.index) for d in known.values() if d.state == "complete"}
        summary = Summary()
        stop = asyncio.Event()

        async def one(task: TaskRecord, file: ResultFile, dest: Path) -> None:
            record = known.get((task.local_id, file.ledger_index))
            result = await self._one(task, file, dest, record, owners.get(str(dest)), stop)
            if result is None:
                return
            summary.files.append(result)
            self._count(result)
            if self._on_file is not None:
                self._on_file(result)

        try:
            async with asyncio.TaskGroup() as group:
                for task, file, dest in plan:
                    group.create_task(one(task, file, dest))
        except BaseExceptionGroup as group:
            # One clear error, not a group: a storage stop is reported in the summary, anything
            # else (the ledger unreachable, a bug) is raised as itself.
            for exc in group.exceptions:
                if not isinstance(exc, StorageError):
                    raise exc from None
            first = group.exceptions[0]
            assert isinstance(first, StorageError)
            summary.stopped = first
            logger.error("downloads stopped: %s", first)
        return summary

    async def _one(
        self,
        task: TaskRecord,
        file: ResultFile,
        dest: Path,
        record: DownloadRecord | None,
        owner: tuple[int, int] | None,
        stop: asyncio.Event,
    ) -> FileOutcome | None:
        """One file's outcome; ``None`` when a storage failure elsewhere stopped the run first."""
        if stop.is_set():
            return None
        if _complete(record) and record.path != str(dest):
            # Collected before into another folder (another --dir): if it is still there,
            # that is the file, and nothing is written here (not even a folder).
            kept = await self._complete_elsewhere(task, file, record)
            if kept is not None:
                return kept
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            async with destination_lock(dest), self._slots:
                if stop.is_set():
                    return None
                # Another caller may have finished this file while we waited for the lock.
                record = await self._fresh_record(task, file) or record
                return await self._collect(task, file, dest, record, owner)
        except FileBusy as exc:
            return FileOutcome(task, file, dest, "busy", message=str(exc))
        except StorageError as exc:
            stop.set()  # before anything that yields: no other file may start meanwhile
            await self._record(task, file, dest, "failed", error=str(exc))
            raise
        except OSError as exc:
            err = storage_error(exc, dest, file.url)
            if err is None:
                await self._record(task, file, dest, "failed", error=str(exc))
                return FileOutcome(
                    task, file, dest, "failed", message=f"cannot write {dest}: {exc}"
                )
            stop.set()
            raise err from exc

    async def _collect(
        self,
        task: TaskRecord,
        file: ResultFile,
        dest: Path,
        record: DownloadRecord | None,
        owner: tuple[int, int] | None = None,
    ) -> FileOutcome:
        done = await self._already_complete(task, file, dest, record, owner)
        if done is not None:
            return done
        got = await self._fetch(task, file, dest, record)
        if _complete(record) and got.outcome in ("failed", "expired"):
            # The ledger keeps the record complete (its door never downgrades one): say so.
            return FileOutcome(
                task,
                file,
                dest,
                "missing",
                message=f"the ledger has this file complete at {record.path}, but it is no "
                f"longer there as downloaded, and fetching it again did not work ({got.message}); "
                "the record stays complete: put the file back, or download into its folder",
            )
        return got

    async def _complete_elsewhere(
        self, task: TaskRecord, file: ResultFile, record: DownloadRecord
    ) -> FileOutcome | None:
        """``skipped`` when the file the ledger has complete is intact where it was written."""
        assert record.path is not None
        where = Path(record.path)
        found = await asyncio.to_thread(_inspect, where)
        if found is None or found[0] != record.size or found[1] != record.sha256:
            return None
        return FileOutcome(
            task,
            file,
            where,
            "skipped",
            size=record.size,
            sha256=record.sha256,
            message=f"already complete at {where}",
        )

    async def _fetch(
        self, task: TaskRecord, file: ResultFile, dest: Path, record: DownloadRecord | None
    ) -> FileOutcome:
        """Fetch the file into ``dest`` (unless its result expired) and record the outcome."""
        now = self.clock.time()
        deadline = expires_at(task)
        if deadline is not None and now >= deadline:
            message = (
                f"the result expired on {format_when(deadline)} (Kling deletes results 30 days "
                "after the task ends); it can no longer be downloaded"
            )
            await self._record(task, file, dest, "expired", error=message)
            return FileOutcome(task, file, dest, "expired", message=message)
        if record is not None and record.state == "expired" and record.url == file.url:
            # This very URL already answered 403/404: do not ask again on every run.
            return FileOutcome(task, file, dest, "expired", message=record.error)
        try:
            got = await self._fetcher.fetch(file.url, dest, file.kind)
        except StorageError:
            raise
        except ExpiredURL as exc:
            await self._record(task, file, dest, "expired", error=str(exc))
            return FileOutcome(task, file, dest, "expired", message=str(exc))
        except FetchError as exc:  # NotMedia, TransferFailed
            await self._record(task, file, dest, "failed", error=str(exc))
            return FileOutcome(task, file, dest, "failed", message=str(exc))
        at = self.clock.time()
        await self._write_sidecar(task, file, dest, got.size, got.sha256, at, got.content_type)
        await self._record(task, file, dest, "complete", size=got.size, sha256=got.sha256, at=at)
        logger.info(
            "downloaded %s (%d bytes%s)", dest, got.size, ", resumed" if got.resumed else ""
        )
        return FileOutcome(
            task, file, dest, "downloaded", size=got.size, sha256=got.sha256, resumed=got.resumed
        )

    async def _already_complete(
        self,
        task: TaskRecord,
        file: ResultFile,
        dest: Path,
        record: DownloadRecord | None,
        owner: tuple[int, int] | None,
    ) -> FileOutcome | None:
        """The ``skipped`` outcome when ``dest`` already holds this file whole, else ``None``.

        A file at ``dest`` that belongs to another task (by the ledger or by its sidecar) is
        never overwritten nor taken for this one: that is a ``failed`` outcome.
        """
        found = await asyncio.to_thread(_inspect, dest)
        if found is None:
            return None
        size, digest, head, sidecar = found
        other = _other_owner(task, file, owner, sidecar)
        if other is not None:
            message = (
                f"{dest} already holds the file of {other}; use a template with "
                "{external_task_id} and {index} so that every file gets its own name"
            )
            await self._record(task, file, dest, "failed", error=message)
            return FileOutcome(task, file, dest, "failed", message=message)
        if record is not None and record.state == "complete" and record.path == str(dest):
            if record.size != size or record.sha256 != digest:
                logger.warning("%s does not match its ledger record; downloading it again", dest)
                return None
        elif not accepts(file.kind, head):
            logger.warning("%s exists but is not a %s file; downloading it again", dest, file.kind)
            return None
        else:
            # A complete file the ledger does not know (an older ledger, another machine).
            await self._record(task, file, dest, "complete", size=size, sha256=digest)
        if sidecar is None:
            await self._write_sidecar(task, file, dest, size, digest, self.clock.time(), None)
        return FileOutcome(task, file, dest, "skipped", size=size, sha256=digest)

    async def _fresh_record(self, task: TaskRecord, file: ResultFile) -> DownloadRecord | None:
        for rec in await self.ledger.downloads(task.local_id):
            if rec.index == file.ledger_index:
                return rec
        return None

    async def _write_sidecar(
        self,
        task: TaskRecord,
        file: ResultFile,
        dest: Path,
        size: int,
        sha256: str,
        at: float,
        content_type: str | None,
    ) -> None:
        events = await self.ledger.events(task.local_id)
        try:
            await asyncio.to_thread(
                partial(
                    write_sidecar,
                    dest,
                    task=task,
                    file=file,
                    events=events,
                    size=size,
                    sha256=sha256,
                    downloaded_at=at,
                    content_type=content_type,
                )
            )
        except OSError as exc:
            err = storage_error(exc, sidecar_path(dest), file.url)
            if err is not None:
                raise err from exc
            raise

    async def _record(
        self,
        task: TaskRecord,
        file: ResultFile,
        dest: Path,
        state: str,
        *,
        size: int | None = None,
        sha256: str | None = None,
        error: str | None = None,
        at: float | None = None,
    ) -> None:
        await self.ledger.record_download(
            task.local_id,
            file.ledger_index,
            url=file.url,
            path=str(dest),
            size=size,
            sha256=sha256,
            state=state,
            error=error,
            at=self.clock.time() if at is None else at,
        )

    def _count(self, result: FileOutcome) -> None:
        if result.outcome == "downloaded":
            self.downloaded += 1
        elif result.outcome in ("skipped", "busy"):
            self.skipped += 1
        elif result.outcome == "expired":
            self.expired += 1
        else:  # failed, missing
            self.failed += 1

    def __repr__(self) -> str:
        return (
            f"Downloader(downloaded={self.downloaded}, skipped={self.skipped}, "
            f"expired={self.expired}, failed={self.failed}, concurrency={self.concurrency})"
        )


def _complete(record: DownloadRecord | None) -> TypeGuard[DownloadRecord]:
    """The ledger has this file as collected (at ``record.path``)."""
    return record is not None and record.state == "complete" and record.path is not None


def _absolute(root: Path | str) -> Path:
    return Path(root).expanduser().absolute()


def _other_owner(
    task: TaskRecord,
    file: ResultFile,
    owner: tuple[int, int] | None,
    sidecar: dict[str, Any] | None,
) -> str | None:
    """Who else the file on disk belongs to, if not to (``task``, ``file``)."""
    if owner is not None and owner != (task.local_id, file.ledger_index):
        return f"task {owner[0]} (file {owner[1]})"
    if sidecar is None:
        return None
    try:
        theirs = (
            sidecar["task"]["external_task_id"],
            sidecar["file"]["index"],
            sidecar["file"]["variant"] or "",
        )
    except (KeyError, TypeError):
        return None  # not a sidecar of ours: the file's own bytes decide
    if theirs != (task.external_task_id, file.index, file.variant):
        return f"task {theirs[0]} (file {theirs[1]})"
    return None


def _inspect(path: Path) -> tuple[int, str, bytes, dict[str, Any] | None] | None:
    """An existing file's size, sha256, first bytes, and its sidecar (if it has one)."""
    hasher = hashlib.sha256()
    head = b""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            while block := fh.read(1 << 20):
                if not head:
                    head = block[:HEAD_BYTES]
                hasher.update(block)
    except FileNotFoundError:
        return None
    try:
        sidecar = read_sidecar(path)
    except (OSError, ValueError):
        sidecar = None
    return size, hasher.hexdigest(), head, sidecar
