"""The ledger's vocabulary: statuses, sources, observations and the records it hands back.

Everything here is plain data (``StrEnum`` and frozen, slotted dataclasses); nothing touches a
database. Times are Unix seconds (``float``) except ``kling_*_ms``, which keep Kling's epoch
milliseconds as they came.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

__all__ = [
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
    "STATE_FIELDS",
    "AddResult",
    "AlertRecord",
    "BatchRecord",
    "Change",
    "DownloadRecord",
    "DurationStats",
    "EventRecord",
    "LocalStatus",
    "NewTask",
    "Observation",
    "Source",
    "TaskRecord",
    "TaskState",
]


class LocalStatus(StrEnum):
    """Where a task stands in the ledger.

    Ordered by :attr:`rank`:
    ``queued < unknown < submitted < processing < succeed | failed | rejected``.
    """

    QUEUED = "queued"
    UNKNOWN = "unknown"
    SUBMITTED = "submitted"
    PROCESSING = "processing"
    SUCCEED = "succeed"
    FAILED = "failed"
    REJECTED = "rejected"

    @property
    def rank(self) -> int:
        """Position in the lifecycle; the three final statuses share the top rank."""
        return _RANK[self]

    @property
    def is_final(self) -> bool:
        """``succeed``, ``failed`` or ``rejected``: this status never changes again."""
        return self in FINAL_STATUSES

    @property
    def is_active(self) -> bool:
        """``unknown``, ``submitted`` or ``processing``: sent, outcome not yet learned."""
        return self in ACTIVE_STATUSES


_RANK = {
    LocalStatus.QUEUED: 0,
    LocalStatus.UNKNOWN: 1,
    LocalStatus.SUBMITTED: 2,
    LocalStatus.PROCESSING: 3,
    LocalStatus.SUCCEED: 4,
    LocalStatus.FAILED: 4,
    LocalStatus.REJECTED: 4,
}

#: Statuses that never change again.
FINAL_STATUSES = frozenset({LocalStatus.SUCCEED, LocalStatus.FAILED, LocalStatus.REJECTED})
#: Statuses of tasks that were sent and whose outcome is still to be learned.
ACTIVE_STATUSES = frozenset({LocalStatus.UNKNOWN, LocalStatus.SUBMITTED, LocalStatus.PROCESSING})


class Source(StrEnum):
    """Where a status report (or an event) came from."""

    CREATE = "create"  # the answer to a create request
    GET = "get"  # a single-task query (or a many-by-id query)
    LIST = "list"  # a list page
    CALLBACK = "callback"  # Kling's callback
    RECOVERY = "recovery"  # a lookup by external_task_id after an ambiguous create
    MANUAL = "manual"  # a person or a command (add, adopt)
    MONITOR = "monitor"  # the engine's own notes that are not status reports (stuck, unstuck)


@dataclass(frozen=True, slots=True)
class Observation:
    """One status report about one task, as klingwatch learned it.

    The task is identified by ``local_id``, else ``external_task_id``, else Kling's ``task_id``
    (the first of these that matches a row wins).
    """

    status: LocalStatus
    source: Source
    #: Unix seconds when klingwatch learned it (``clock.time()``).
    at: float
    local_id: int | None = None
    external_task_id: str | None = None
    #: Kling's id; attached to the row when first seen.
    task_id: str | None = None
    #: Failure or rejection reason.
    status_msg: str | None = None
    kling_created_ms: int | None = None
    kling_updated_ms: int | None = None
    #: JSON: ``{"videos": [{id, url, watermark_url, duration}], "images": [...], "audios": [...]}``.
    result: Mapping[str, Any] | None = None
    #: Units charged, a decimal as a string.
    units: str | None = None
    #: Cash charged (``billing[]`` items of ``charge_type`` cash), a decimal as a string, and
    #: its currency (``None`` when Kling names none, as the legacy API's balance deduction).
    cash_amount: str | None = None
    cash_currency: str | None = None
    #: Free text kept on the event.
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class TaskState:
    """The part of a task row the door reads and writes."""

    status: LocalStatus
    task_id: str | None = None
    status_msg: str | None = None
    kling_created_ms: int | None = None
    kling_updated_ms: int | None = None
    kling_processing_ms: int | None = None
    result: Mapping[str, Any] | None = None
    units: str | None = None
    cash_amount: str | None = None
    cash_currency: str | None = None
    submitted_at: float | None = None
    processing_at: float | None = None
    finished_at: float | None = None
    detected_at: float | None = None
    stuck: bool = False
    stuck_reason: str | None = None


#: The names of :class:`TaskState`'s fields, which are also the task table's column names.
STATE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(TaskState))


@dataclass(frozen=True, slots=True)
class Change:
    """What :meth:`Ledger.apply` accepted for one task."""

    local_id: int
    external_task_id: str
    task_id: str | None
    old: LocalStatus
    new: LocalStatus
    #: ``False`` when only fields (updated time, task_id, result, ...) changed.
    status_changed: bool
    #: The row's state after the change (what the door wrote), so a caller never re-derives it.
    state: TaskState | None = None


@dataclass(frozen=True, slots=True)
class NewTask:
    """An intent: committed as ``queued`` before anything is sent."""

    product: str
    request: Mapping[str, Any]
    external_task_id: str
    model: str | None = None
    mode: str | None = None
    duration: str | None = None
    family: str = "video"
    #: Concurrency slots the task holds while active (an image task with ``n`` images holds n).
    slot_cost: int = 1
    callback_url: str | None = None
    #: Local id of the task this one retries.
    retry_of: int | None = None
    #: Where the request came from, e.g. ``"prompts.jsonl:12"``.
    source_line: str | None = None
    #: Units this task is expected to cost (a decimal string), estimated when it is queued; a
    #: batch's budget cap counts it once the task is sent.
    units_estimated: str | None = None


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One task row, as read."""

    local_id: int
    batch: str
    external_task_id: str
    task_id: str | None
    product: str
    family: str
    request: dict[str, Any]
    model: str | None
    mode: str | None
    duration: str | None
    slot_cost: int
    status: LocalStatus
    status_msg: str | None
    kling_created_ms: int | None
    kling_updated_ms: int | None
    #: Kling's updated time of the first ``processing`` report (when Kling started the work).
    kling_processing_ms: int | None
    queued_at: float
    sent_at: float | None
    #: First seen ``submitted``.
    submitted_at: float | None
    #: First seen ``processing``.
    processing_at: float | None
    #: Kling's updated time of the final status (seconds), else when it was learned.
    finished_at: float | None
    #: When klingwatch learned the final status.
    detected_at: float | None
    result: dict[str, Any] | None
    units: str | None
    polls: int
    last_polled_at: float | None
    next_look_at: float | None
    stuck: bool
    stuck_reason: str | None
    callback_url: str | None
    retry_of: int | None
    source_line: str | None
    send_attempts: int
    #: The replica holding this task (``claim_due`` / ``claim_queued``), and until when.
    lease_owner: str | None = None
    lease_until: float | None = None
    #: The unit estimate made when it was queued, and the cash Kling charged (``billing[]``).
    units_estimated: str | None = None
    cash_amount: str | None = None
    cash_currency: str | None = None
    #: Why this queued task is not sent now ("held: budget cap 120 units, 118 sent"), or None.
    hold_reason: str | None = None

    def with_state(self, state: TaskState) -> TaskRecord:
        """This record with the door's view of it replaced by ``state`` (a :class:`Change`'s)."""
        return replace(self, **{name: getattr(state, name) for name in STATE_FIELDS})


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One line of a task's timeline.

    ``from_status`` is ``None`` for the creation event. ``local_id`` is ``None`` only for an
    *orphan*: a report about a task the ledger does not know (``detail`` says which one).
    Events with ``from_status == to_status`` are notes (stuck, unstuck), not status changes.
    """

    id: int
    local_id: int | None
    at: float
    from_status: LocalStatus | None
    to_status: LocalStatus
    source: Source
    detail: str | None


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """A named group of tasks; ``counts`` is filled by :meth:`Ledger.batches`."""

    name: str
    created_at: float
    download_dir: str | None
    counts: dict[LocalStatus, int] = field(default_factory=dict)
    #: The budget cap in units (a decimal string), or ``None``.
    max_units: str | None = None


@dataclass(frozen=True, slots=True)
class AddResult:
    """Local ids of the tasks :meth:`Ledger.add_tasks` inserted and of those already there."""

    added: list[int]
    existing: list[int]


@dataclass(frozen=True, slots=True)
class DownloadRecord:
    """One result file of one task: ``state`` is ``complete``, ``expired`` or ``failed``."""

    local_id: int
    index: int
    url: str
    path: str | None
    size: int | None
    sha256: str | None
    state: str
    error: str | None
    at: float


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """Something an operator should see. One active alert per ``kind``; raising it again
    updates ``message`` and ``last_at`` and bumps ``count``."""

    id: int
    kind: str
    message: str
    #: When it was first raised.
    at: float
    last_at: float
    count: int
    active: bool
    cleared_at: float | None


@dataclass(frozen=True, slots=True)
class DurationStats:
    """What the ledger learned about how long tasks of one (product, model, mode) take.

    ``queue_*`` is the wait before processing starts, ``run_*`` the processing itself, both in
    seconds, from the last finished successful tasks. ``n`` is how many finished tasks were
    looked at; ``queue_n`` / ``run_n`` how many of them had the times needed for each figure.
    A percentile is ``None`` when nothing was learned for it (``n == 0`` on a cold start).
    """

    n: int
    queue_n: int = 0
    queue_p50: float | None = None
    queue_p95: float | None = None
    queue_p99: float | None = None
    run_n: int = 0
    run_p50: float | None = None
    run_p95: float | None = None
    run_p99: float | None = None
