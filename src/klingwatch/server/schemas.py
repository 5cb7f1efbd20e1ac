"""What the JSON API answers: pydantic models (they are also the OpenAPI schema at ``/docs``).

Every instant is a pair of fields, ``<name>_ms`` (integer epoch milliseconds, UTC) and
``<name>_iso`` (ISO-8601 UTC, ``2026-01-01T00:00:00.000Z``), both null when unknown (see
:mod:`klingwatch.timestamps`); durations are seconds, in fields ending ``_seconds``. The models
are filled from dicts (``model_validate``) so that each pair comes from one :func:`stamp` call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

from klingwatch.kling.products import PRODUCTS
from klingwatch.operations.queries import prompt_of
from klingwatch.server.deps import NO_NUL
from klingwatch.server.media import MediaOut, file_url, local_file, media_of
from klingwatch.store import (
    AlertRecord,
    DownloadRecord,
    EventRecord,
    LocalStatus,
    TaskRecord,
)
from klingwatch.timestamps import stamp, stamp_ms

__all__ = [
    "AlertOut",
    "BatchOut",
    "DownloadOut",
    "DurationGroup",
    "EngineOut",
    "EventOut",
    "EventPage",
    "MediaOut",
    "ResumeOut",
    "RetryIn",
    "RetryOut",
    "StatsOut",
    "TaskDetail",
    "TaskOut",
    "TaskPage",
    "ThroughputOut",
    "TrackIn",
    "TrackOut",
    "prompt_of",
]

Ms = int | None
Iso = str | None


class TaskOut(BaseModel):
    """One task as listed."""

    local_id: int
    batch: str
    external_task_id: str
    task_id: str | None
    product: str
    family: str
    model: str | None
    mode: str | None
    duration: str | None
    status: LocalStatus
    status_msg: str | None
    prompt: str | None
    queued_at_ms: int
    queued_at_iso: str
    submitted_at_ms: Ms
    submitted_at_iso: Iso
    processing_at_ms: Ms
    processing_at_iso: Iso
    finished_at_ms: Ms = Field(description="when the task ended, by Kling's clock when known")
    finished_at_iso: Iso
    detected_at_ms: Ms = Field(description="when klingwatch learned the final status")
    detected_at_iso: Iso
    kling_created_at_ms: Ms
    kling_created_at_iso: Iso
    kling_updated_at_ms: Ms
    kling_updated_at_iso: Iso
    units: str | None
    units_estimated: str | None = Field(description="units estimated when it was queued")
    cash_amount: str | None = Field(description="cash Kling charged (billing[]), if any")
    cash_currency: str | None
    hold_reason: str | None = Field(description="why a queued task is not sent (a budget cap)")
    polls: int
    stuck: bool
    stuck_reason: str | None
    retry_of: int | None
    source_line: str | None
    media: list[MediaOut]

    @classmethod
    def of(cls, r: TaskRecord, downloads: Iterable[DownloadRecord] = ()) -> TaskOut:
        """``r`` as listed; its media point at downloaded copies found in ``downloads``."""
        return cls.model_validate(task_fields(r, downloads))


def task_fields(r: TaskRecord, downloads: Iterable[DownloadRecord] = ()) -> dict[str, Any]:
    """The fields of :class:`TaskOut` for ``r``."""
    return {
        "local_id": r.local_id,
        "batch": r.batch,
        "external_task_id": r.external_task_id,
        "task_id": r.task_id,
        "product": r.product,
        "family": r.family,
        "model": r.model,
        "mode": r.mode,
        "duration": r.duration,
        "status": r.status,
        "status_msg": r.status_msg,
        "prompt": prompt_of(r.request),
        **stamp("queued_at", r.queued_at),
        **stamp("submitted_at", r.submitted_at),
        **stamp("processing_at", r.processing_at),
        **stamp("finished_at", r.finished_at),
        **stamp("detected_at", r.detected_at),
        **stamp_ms("kling_created_at", r.kling_created_ms),
        **stamp_ms("kling_updated_at", r.kling_updated_ms),
        "units": r.units,
        "units_estimated": r.units_estimated,
        "cash_amount": r.cash_amount,
        "cash_currency": r.cash_currency,
        "hold_reason": r.hold_reason if r.status is LocalStatus.QUEUED else None,
        "polls": r.polls,
        "stuck": r.stuck,
        "stuck_reason": r.stuck_reason,
        "retry_of": r.retry_of,
        "source_line": r.source_line,
        "media": media_of(r, downloads),
    }


class EventOut(BaseModel):
    """One line of a timeline (``from_status`` is null for the creation event)."""

    id: int
    local_id: int | None
    at_ms: int
    at_iso: str
    from_status: LocalStatus | None
    to_status: LocalStatus
    source: str
    detail: str | None
    #: Which task (its name, product and batch), when known: the change feed names tasks so.
    external_task_id: str | None = None
    product: str | None = None
    batch: str | None = None

    @classmethod
    def of(cls, e: EventRecord, task: TaskRecord | None = None) -> EventOut:
        return cls.model_validate(
            {
                "id": e.id,
                "local_id": e.local_id,
                **stamp("at", e.at),
                "from_status": e.from_status,
                "to_status": e.to_status,
                "source": str(e.source),
                "detail": e.detail,
                "external_task_id": task.external_task_id if task else None,
                "product": task.product if task else None,
                "batch": task.batch if task else None,
            }
        )


class DownloadOut(BaseModel):
    """One result file's download: where it went, or why it did not."""

    index: int
    url: str
    path: str | None
    #: Where ``serve`` serves the file, while it is complete and on disk.
    file_url: str | None
    size: int | None
    sha256: str | None
    state: str
    error: str | None
    at_ms: int
    at_iso: str

    @classmethod
    def of(cls, d: DownloadRecord) -> DownloadOut:
        return cls.model_validate(
            {
                "index": d.index,
                "url": d.url,
                "path": d.path,
                "file_url": file_url(d.local_id, d.index) if local_file(d) else None,
                "size": d.size,
                "sha256": d.sha256,
                "state": d.state,
                "error": d.error,
                **stamp("at", d.at),
            }
        )


class TaskDetail(TaskOut):
    """One task with everything known about it."""

    request: dict[str, Any]
    result: dict[str, Any] | None
    sent_at_ms: Ms
    sent_at_iso: Iso
    send_attempts: int
    last_polled_at_ms: Ms
    last_polled_at_iso: Iso
    next_look_at_ms: Ms
    next_look_at_iso: Iso
    expires_at_ms: Ms = Field(description="when Kling deletes the results (30 days after)")
    expires_at_iso: Iso
    timeline: list[EventOut]
    downloads: list[DownloadOut]


class TaskPage(BaseModel):
    items: list[TaskOut]
    total: int
    limit: int
    offset: int


class EventPage(BaseModel):
    """Events after ``after_id``, oldest first; ask again with ``last_id``."""

    items: list[EventOut]
    last_id: int | None


class BatchOut(BaseModel):
    """A batch and how far it has come."""

    name: str
    created_at_ms: int
    created_at_iso: str
    download_dir: str | None
    counts: dict[LocalStatus, int]
    total: int
    done: int
    succeeded: int
    failed: int
    progress: float = Field(description="share of tasks in a final status, 0..1")
    rate_per_min: float | None = Field(description="tasks finished per minute recently")
    eta_seconds: float | None = Field(description="seconds until every task is final, estimated")
    units_estimated: str = Field(default="0", description="units estimated when queued")
    units_spent: str = Field(default="0", description="units Kling deducted")
    max_units: str | None = Field(default=None, description="its budget cap, null when none")
    held: int = Field(default=0, description="queued tasks its budget cap holds back")


class AlertOut(BaseModel):
    kind: str
    message: str
    at_ms: int = Field(description="when it was first raised")
    at_iso: str
    last_at_ms: int = Field(description="when it was last raised")
    last_at_iso: str
    count: int

    @classmethod
    def of(cls, a: AlertRecord) -> AlertOut:
        return cls.model_validate(
            {
                "kind": a.kind,
                "message": a.message,
                **stamp("at", a.at),
                **stamp("last_at", a.last_at),
                "count": a.count,
            }
        )


class DurationGroup(BaseModel):
    """How long finished tasks of one product/model/mode took."""

    product: str
    model: str | None
    mode: str | None
    n: int
    queue_p50_seconds: float | None
    run_p50_seconds: float | None
    run_p95_seconds: float | None
    #: Histogram of total time (submit to final): ``counts[i]`` tasks took <= ``bounds[i]``
    #: seconds (and more than the bound before); the last count is everything above.
    bounds_seconds: list[float]
    counts: list[int]


class ThroughputOut(BaseModel):
    """Tasks that reached a final status, per bucket, ending now."""

    bucket_seconds: float
    start_at_ms: int = Field(description="where the first bucket begins")
    start_at_iso: str
    succeeded: list[int]
    failed: list[int]


class EngineOut(BaseModel):
    """What this process's engine and Kling client did since it started."""

    running: bool
    requests: int = Field(description="HTTP requests sent to Kling (retries included)")
    retries: int
    sweeps: int
    looks: int = Field(description="task statuses read")
    changes: int
    errors: int


class StatsOut(BaseModel):
    generated_at_ms: int
    generated_at_iso: str
    total: int
    counts: dict[LocalStatus, int]
    #: ``{product: {model: {status: n}}}`` (model ``""`` when unset).
    by_product: dict[str, dict[str, dict[str, int]]]
    slots_in_use: dict[str, int]
    stuck: int
    paused: bool
    pause_reason: str | None
    #: Kling's code that paused submissions (1102: the resource pack is exhausted).
    pause_code: int | None
    pack_exhausted: bool
    alerts: list[AlertOut]
    expiring_downloads: int
    durations: list[DurationGroup]
    throughput: ThroughputOut
    callbacks: dict[str, int]
    engine: EngineOut | None


def _text(max_length: int, default: str | None = None, **kw: Any) -> Any:
    """A request text field: no longer than the ledger's column, no NUL (PostgreSQL cannot
    store one)."""
    if default is not None:
        kw["default"] = default
    return Field(min_length=1, max_length=max_length, pattern=NO_NUL, **kw)


class TrackIn(BaseModel):
    """A task created elsewhere (by its Kling ``task_id``) that klingwatch should follow."""

    # The ledger keeps it as "adopted-<task_id>" in a 200-character column, and alone in 100.
    task_id: str = _text(100)
    product: str = _text(
        100,
        "text2video",
        description="the product that created it",
        json_schema_extra={"enum": sorted(PRODUCTS)},
    )
    batch: str = _text(200, "tracked")


class TrackOut(BaseModel):
    local_id: int
    task: TaskOut


class RetryIn(BaseModel):
    """How to retry. A succeeded task is retried only with ``force``: it is paid for again."""

    force: bool = Field(default=False, description="also retry a succeeded task (pays again)")


class RetryOut(BaseModel):
    """The new task queued to retry the given one."""

    retry_of: int
    task: TaskOut


class ResumeOut(BaseModel):
    paused: bool
    cleared_alerts: list[str]
