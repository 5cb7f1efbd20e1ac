"""What the operations hand back: plain, frozen records every face renders its own way."""

from __future__ import annotations

from dataclasses import dataclass, field

from klingwatch.monitor.gates import PauseState
from klingwatch.store import TaskRecord

__all__ = ["NotifyResult", "ResumeResult", "RetryResult", "TrackResult"]


@dataclass(frozen=True, slots=True)
class TrackResult:
    """Tasks adopted by :meth:`Operations.track <klingwatch.operations.Operations.track>`."""

    #: Each task Kling knows, as recorded in the ledger (in the order asked).
    tracked: list[TaskRecord] = field(default_factory=list)
    #: Ids Kling does not know (nothing was recorded for them).
    missing: list[str] = field(default_factory=list)
    #: Requests sent to Kling to read them.
    requests: int = 0


@dataclass(frozen=True, slots=True)
class RetryResult:
    """What :meth:`Operations.retry <klingwatch.operations.Operations.retry>` queued."""

    #: ``(the task retried, the new task queued for it)``.
    queued: list[tuple[TaskRecord, TaskRecord]] = field(default_factory=list)
    #: Tasks picked by a filter but already retried once (retry the newest attempt instead).
    skipped: list[TaskRecord] = field(default_factory=list)
    #: With ``dry_run``: the tasks that would be queued again (nothing was written).
    would_retry: list[TaskRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ResumeResult:
    """What :meth:`Operations.resume <klingwatch.operations.Operations.resume>` cleared."""

    #: The pause that was in force (``None``: sending was not paused).
    was: PauseState | None
    #: Learned slot limits forgotten (with ``forget_slots``), by pack family.
    forgotten: dict[str, int]
    #: Tasks waiting to be sent now.
    queued: int


@dataclass(frozen=True, slots=True)
class NotifyResult:
    """One target of :meth:`Operations.notify_test <klingwatch.operations.Operations.
    notify_test>`: an alert URL (``KLINGWATCH_NOTIFY``) or the events URL."""

    #: ``alerts`` or ``events``
    kind: str
    #: the URL with its secrets elided
    target: str
    ok: bool
    #: what went wrong, when it did not go
    error: str | None = None
