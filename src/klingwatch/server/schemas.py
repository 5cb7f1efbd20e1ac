"""What the JSON API answers: pydantic models (they are also the OpenAPI schema at ``/docs``).

Times are Unix seconds (floats) as in the ledger; ``kling_*_ms`` keep Kling's epoch milliseconds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from klingwatch.store import (
    AlertRecord,
    DownloadRecord,
    EventRecord,
    LocalStatus,
    TaskRecord,
)

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


def prompt_of(request: dict[str, Any]) -> str | None:
    """The prompt of a request in either standard (``prompt`` or a ``contents[]`` prompt part)."""
    prompt = request.get("prompt")
    if isinstance(prompt, str):
        return prompt
    for part in request.get("contents") or ():
        if isinstance(part, dict) and part.get("type") == "prompt":
            text = part.get("text")
            if isinstance(text, str):
                return text
    return None


class MediaOut(BaseModel):
    """One result file: a video plays in the dashboard, an image is shown."""

    kind: Literal["video", "image", "audio"]
    url: str
    duration: float | None = None


def media_of(result: dict[str, Any] | None) -> list[MediaOut]:
    """Every playable result of a task, in order."""
    if not result:
        return []
    out: list[MediaOut] = []
    for key, kind in (("videos", "video"), ("images", "image"), ("audios", "audio")):
        for item in result.get(key) or ():
            if isinstance(item, dict) and isinstance(item.get("url"), str):
                duration = item.get("duration")
                out.append(
                    MediaOut(
                        kind=kind,
                        url=item["url"],
                        duration=float(duration) if isinstance(duration, int | float) else None,
                    )
                )
    return out


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
    queued_at: float
    submitted_at: float | None
    processing_at: float | None
    finished_at: float | None
    detected_at: float | None
    kling_created_ms: int | None
    kling_updated_ms: int | None
    units: str | None
    polls: int
    stuck: bool
    stuck_reason: str | None
    retry_of: int | None
    source_line: str | None
    media: list[MediaOut]

    @classmethod
    def of(cls, r: TaskRecord) -> TaskOut:
        return cls(
            local_id=r.local_id,
            batch=r.batch,
            external_task_id=r.external_task_id,
            task_id=r.task_id,
            product=r.product,
            family=r.family,
            model=r.model,
            mode=r.mode,
            duration=r.duration,
            status=r.status,
            status_msg=r.status_msg,
            prompt=prompt_of(r.request),
            queued_at=r.queued_at,
            submitted_at=r.submitted_at,
            processing_at=r.processing_at,
            finished_at=r.finished_at,
            detected_at=r.detected_at,
            kling_created_ms=r.kling_created_ms,
            kling_updated_ms=r.kling_updated_ms,
            units=r.units,
            polls=r.polls,
            stuck=r.stuck,
            stuck_reason=r.stuck_reason,
            retry_of=r.retry_of,
            source_line=r.source_line,
            media=media_of(r.result),
        )


class EventOut(BaseModel):
    """One line of a timeline (``from_status`` is null for the creation event)."""

    id: int
    local_id: int | None
    at: float
    from_status: LocalStatus | None
    to_status: LocalStatus
    source: str
    detail: str | None
    #: For the stream of changes: which task (external id and product), when known.
    external_task_id: str | None = None
    product: str | None = None
    batch: str | None = None

    @classmethod
    def of(cls, e: EventRecord, task: TaskRecord | None = None) -> EventOut:
        return cls(
            id=e.id,
            local_id=e.local_id,
            at=e.at,
            from_status=e.from_status,
            to_status=e.to_status,
            source=str(e.source),
            detail=e.detail,
            external_task_id=task.external_task_id if task else None,
            product=task.product if task else None,
            batch=task.batch if task else None,
        )


class DownloadOut(BaseModel):
    index: int
    url: str
    path: str | None
    size: int | None
    sha256: str | None
    state: str
    error: str | None
    at: float

    @classmethod
    def of(cls, d: DownloadRecord) -> DownloadOut:
        return cls(
            index=d.index,
            url=d.url,
            path=d.path,
            size=d.size,
            sha256=d.sha256,
            state=d.state,
            error=d.error,
            at=d.at,
        )


class TaskDetail(TaskOut):
    """One task with everything known about it."""

    request: dict[str, Any]
    result: dict[str, Any] | None
    sent_at: float | None
    send_attempts: int
    last_polled_at: float | None
    next_look_at: float | None
    #: When Kling deletes the results (30 days after the task ended), if it succeeded.
    expires_at: float | None
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
    created_at: float
    download_dir: str | None
    counts: dict[LocalStatus, int]
    total: int
    done: int
    succeeded: int
    failed: int
    progress: float = Field(description="share of tasks in a final status, 0..1")
    rate_per_min: float | None = Field(description="tasks finished per minute recently")
    eta_seconds: float | None = Field(description="seconds until every task is final, estimated")


class AlertOut(BaseModel):
    kind: str
    message: str
    at: float
    last_at: float
    count: int

    @classmethod
    def of(cls, a: AlertRecord) -> AlertOut:
        return cls(kind=a.kind, message=a.message, at=a.at, last_at=a.last_at, count=a.count)


class DurationGroup(BaseModel):
    """How long finished tasks of one product/model/mode took (seconds)."""

    product: str
    model: str | None
    mode: str | None
    n: int
    queue_p50: float | None
    run_p50: float | None
    run_p95: float | None
    #: Histogram of total time (submit to final): ``counts[i]`` tasks took <= ``bounds[i]``
    #: seconds (and more than the bound before); the last count is everything above.
    bounds: list[float]
    counts: list[int]


class ThroughputOut(BaseModel):
    """Tasks that reached a final status, per bucket, ending now."""

    bucket_seconds: float
    start: float
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
    generated_at: float
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


class TrackIn(BaseModel):
    """A task created elsewhere (by its Kling ``task_id``) that klingwatch should follow."""

    task_id: str = Field(min_length=1)
    product: str = Field(default="text2video", description="the product that created it")
    batch: str = Field(default="tracked", min_length=1)


class TrackOut(BaseModel):
    local_id: int
    task: TaskOut


class RetryOut(BaseModel):
    """The new task queued to retry the given one."""

    retry_of: int
    task: TaskOut


class ResumeOut(BaseModel):
    paused: bool
    cleared_alerts: list[str]
