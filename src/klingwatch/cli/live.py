"""How the engine's progress reaches a terminal.

Three reporters share one small interface (:class:`Reporter`):

* :class:`LiveView`: a Rich live display for a person at a terminal: per-batch progress bars with
  ETA, counts by status, the latest changes, stuck and failed tasks with their reasons, alerts.
* :class:`PlainReporter`: one line per change, for logs and pipes (stdout is not a terminal).
* :class:`JsonReporter`: one JSON object per change (``--json``), for scripts.

:func:`make_reporter` picks one. The engine calls :meth:`Reporter.changes` with what the ledger's
door accepted, and :meth:`Reporter.tick` once per sweep so the live view can refresh from the
ledger (reads are throttled; the ledger is never read more than a few times a second). Every read
goes through the async ledger (one composite read per refresh), so a slow disk or a busy
PostgreSQL never freezes the engine that shares the event loop.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import IO, Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from klingwatch import clock
from klingwatch.clock import Clock, RealClock
from klingwatch.monitor.eta import Eta, estimate, progress
from klingwatch.store import AlertRecord, BatchRecord, Change, Ledger, LocalStatus, TaskRecord
from klingwatch.store.async_ledger import AsyncLedger

__all__ = [
    "JsonReporter",
    "LiveView",
    "PlainReporter",
    "Reporter",
    "Snapshot",
    "describe_change",
    "format_duration",
    "make_reporter",
    "snapshot",
]

STATUS_STYLE: dict[LocalStatus, str] = {
    LocalStatus.QUEUED: "bright_black",
    LocalStatus.UNKNOWN: "magenta",
    LocalStatus.SUBMITTED: "cyan",
    LocalStatus.PROCESSING: "blue",
    LocalStatus.SUCCEED: "green",
    LocalStatus.FAILED: "red",
    LocalStatus.REJECTED: "yellow",
}


class Reporter(Protocol):
    """What the engine tells whoever is watching (an async context manager)."""

    async def __aenter__(self) -> Reporter: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def changes(self, changes: Sequence[Change]) -> None:
        """Status changes the ledger just accepted."""
        ...

    async def tick(self) -> None:
        """Called once per engine sweep; a chance to refresh."""
        ...


def format_duration(seconds: float | None) -> str:
    """``75`` -> ``1m15s``; ``None`` -> ``-``."""
    return "-" if seconds is None else clock.format_duration(seconds)


def describe_change(change: Change) -> str:
    """``<external id>  submitted -> processing`` plus the reason of a failure or rejection."""
    label = change.external_task_id
    if change.task_id:
        label += f" ({change.task_id})"
    text = f"{label}  {change.old} -> {change.new}"
    reason = change.state.status_msg if change.state is not None else None
    if change.new in (LocalStatus.FAILED, LocalStatus.REJECTED) and reason:
        text += f"  reason: {reason}"
    return text


class _LineReporter:
    """A reporter that writes one line per status change to a stream."""

    def __init__(
        self, ledger: AsyncLedger, *, clock: Clock | None = None, stream: IO[str] | None = None
    ) -> None:
        self._ledger = ledger
        self._clock = clock or RealClock()
        self._stream = stream or sys.stdout

    async def __aenter__(self) -> _LineReporter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stream.flush()

    async def changes(self, changes: Sequence[Change]) -> None:
        at = self._clock.time()
        for change in changes:
            if change.status_changed:
                self._stream.write(await self.line(change, at) + "\n")
        self._stream.flush()

    async def line(self, change: Change, at: float) -> str:
        raise NotImplementedError

    async def tick(self) -> None:
        return None


class PlainReporter(_LineReporter):
    """One line per status change: ``HH:MM:SS  <task>  old -> new``."""

    async def line(self, change: Change, at: float) -> str:
        stamp = datetime.fromtimestamp(at).strftime("%H:%M:%S")
        return f"{stamp}  {describe_change(change)}"


class JsonReporter(_LineReporter):
    """One JSON object per status change (JSON Lines)."""

    async def line(self, change: Change, at: float) -> str:
        record = await self._ledger.task(change.local_id)
        return json.dumps(
            {
                "at": round(at, 3),
                "local_id": change.local_id,
                "external_task_id": change.external_task_id,
                "task_id": change.task_id,
                "batch": record.batch if record else None,
                "from": str(change.old),
                "to": str(change.new),
                "status_msg": record.status_msg if record else None,
            }
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one refresh of the live view shows, read from the ledger in one go."""

    batches: list[BatchRecord]
    alerts: list[AlertRecord]
    stuck: list[TaskRecord]
    failed: list[TaskRecord]
    #: Each shown batch's ETA (:mod:`klingwatch.monitor.eta`, as ``status`` and the dashboard).
    etas: dict[str, Eta]


def snapshot(ledger: Ledger, batch: str | None, now: float, limit: int = 5) -> Snapshot:
    """The live view's composite read (run on a ledger reader thread)."""
    batches = [b for b in ledger.batches() if batch is None or b.name == batch]
    return Snapshot(
        batches=batches,
        etas={
            b.name: estimate(progress(ledger, b.name, now))
            for b in batches
            if any(not s.is_final and n for s, n in b.counts.items())
        },
        alerts=ledger.alerts(active=True),
        stuck=ledger.tasks(stuck=True, batch=batch, limit=limit),
        failed=ledger.tasks(
            status=[LocalStatus.FAILED, LocalStatus.REJECTED], batch=batch, limit=limit
        ),
    )


@dataclass(frozen=True, slots=True)
class _BatchLine:
    name: str
    total: int
    done: int
    counts: dict[LocalStatus, int]
    eta: float | None


class LiveView:
    """A Rich live display of the ledger, refreshed as the engine works."""

    #: Seconds of real time between two reads of the ledger.
    refresh_every = 0.25

    def __init__(
        self,
        ledger: AsyncLedger,
        *,
        batch: str | None = None,
        console: Console | None = None,
        clock: Clock | None = None,
        recent: int = 8,
    ) -> None:
        self._ledger = ledger
        self._batch = batch
        self._console = console or Console()
        self._clock = clock or RealClock()
        self._recent: deque[tuple[float, str, LocalStatus]] = deque(maxlen=recent)
        self._live = Live(console=self._console, auto_refresh=False, transient=False)
        self._last_read = 0.0

    async def __aenter__(self) -> LiveView:
        self._live.start()
        await self.refresh(force=True)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.refresh(force=True)
        finally:
            self._live.stop()

    async def changes(self, changes: Sequence[Change]) -> None:
        at = self._clock.time()
        for change in changes:
            if change.status_changed:
                self._recent.append((at, describe_change(change), change.new))
        await self.refresh()

    async def tick(self) -> None:
        await self.refresh()

    async def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()  # throttle on real time: it is about the reader's screen
        if not force and now - self._last_read < self.refresh_every:
            return
        self._last_read = now
        snap = await self._ledger.read(snapshot, self._batch, self._clock.time())
        self._live.update(self.render(snap), refresh=True)

    # -- rendering ------------------------------------------------------------------------------
    def render(self, snap: Snapshot) -> RenderableType:
        """The whole view, from one snapshot of the ledger."""
        parts: list[RenderableType] = [self._batches_table(snap)]
        alerts = snap.alerts
        if alerts:
            text = Text()
            for alert in alerts:
                text.append(f"! {alert.kind}: ", style="bold red")
                text.append(alert.message + "\n")
            parts.append(Panel(text, title="alerts", border_style="red"))
        if self._recent:
            recent = Table.grid(padding=(0, 2))
            for at, line, status in self._recent:
                stamp = datetime.fromtimestamp(at).strftime("%H:%M:%S")
                recent.add_row(stamp, Text(line, style=STATUS_STYLE.get(status, "")))
            parts.append(Panel(recent, title="latest changes", border_style="bright_black"))
        trouble = self._trouble_table(snap)
        if trouble is not None:
            parts.append(trouble)
        return Group(*parts)

    def _batch_lines(self, snap: Snapshot) -> list[_BatchLine]:
        lines: list[_BatchLine] = []
        for batch in snap.batches:
            total = sum(batch.counts.values())
            if total == 0:
                continue
            done = sum(n for status, n in batch.counts.items() if status.is_final)
            eta = snap.etas.get(batch.name)
            seconds = eta.seconds if eta is not None else None
            lines.append(_BatchLine(batch.name, total, done, dict(batch.counts), seconds))
        return lines

    def _batches_table(self, snap: Snapshot) -> Table:
        table = Table(title="klingwatch", expand=True, title_justify="left")
        table.add_column("batch", no_wrap=True)
        table.add_column("progress", ratio=2)
        table.add_column("done", justify="right", no_wrap=True)
        table.add_column("by status", ratio=3)
        table.add_column("ETA", justify="right", no_wrap=True)
        lines = self._batch_lines(snap)
        if not lines:
            table.add_row("-", "", "", Text("no tasks yet", style="dim"), "")
        for line in lines:
            counts = Text()
            for status in LocalStatus:
                n = line.counts.get(status, 0)
                if n:
                    counts.append(f"{status} {n}  ", style=STATUS_STYLE[status])
            eta = "done" if line.done == line.total else format_duration(line.eta)
            table.add_row(
                line.name,
                ProgressBar(total=line.total, completed=line.done),
                f"{line.done}/{line.total}",
                counts,
                eta,
            )
        return table

    def _trouble_table(self, snap: Snapshot) -> Table | None:
        stuck, failed = snap.stuck, snap.failed
        if not stuck and not failed:
            return None
        table = Table(title="needs a look", expand=True, title_justify="left")
        table.add_column("task", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("why")
        for record in stuck:
            table.add_row(
                record.external_task_id, Text("stuck", "bold yellow"), record.stuck_reason
            )
        for record in failed:
            style = STATUS_STYLE[record.status]
            table.add_row(
                record.external_task_id, Text(str(record.status), style), record.status_msg or ""
            )
        return table


def make_reporter(
    ledger: AsyncLedger,
    *,
    json_lines: bool = False,
    batch: str | None = None,
    console: Console | None = None,
    clock: Clock | None = None,
) -> Reporter:
    """JSON lines with ``--json``; a live view on a terminal; plain lines otherwise."""
    console = console or Console()
    if json_lines:
        return JsonReporter(ledger, clock=clock, stream=console.file)
    if console.is_terminal:
        return LiveView(ledger, batch=batch, console=console, clock=clock)
    return PlainReporter(ledger, clock=clock, stream=console.file)
